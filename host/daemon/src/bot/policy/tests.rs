//! The ACL invariants, without a homeserver.

use std::time::Duration;

use super::*;

const BOT: &str = "@bot:own.example";
const OWN: &str = "own.example";

fn server_rule(policy: &mut Policy, key: &str, entity: &str) {
    let content = json!({"entity": entity, "recommendation": "m.ban"}).to_string();
    policy.on_rule_state("!list", "m.policy.rule.server", key, &content);
}

fn policy_with(rules: &[(&str, &str)]) -> Policy {
    let mut policy = Policy::default();
    policy.lists.insert("!list".to_owned(), PolicyList::new("!list"));
    for (key, entity) in rules {
        server_rule(&mut policy, key, entity);
    }
    policy
}

fn rooms(names: &[&str]) -> Vec<String> {
    names.iter().map(|r| (*r).to_owned()).collect()
}

#[test]
fn a_burst_of_rule_changes_gives_one_acl_once_they_settle() {
    let mut policy = policy_with(&[("a", "bad.example")]);
    let t0 = Instant::now();
    assert!(!policy.acl_ready(t0), "changed in this sync: wait");
    server_rule(&mut policy, "b", "worse.example");
    assert!(!policy.acl_ready(t0 + Duration::from_secs(1)), "changed again: wait again");
    assert!(!policy.acl_ready(t0 + Duration::from_secs(2)), "quiet for 1 s only");
    assert!(policy.acl_ready(t0 + Duration::from_millis(2600)), "quiet long enough");
    assert!(!policy.acl_ready(t0 + Duration::from_secs(3)), "sent once");
}

#[test]
fn the_own_server_is_never_denied_and_an_unchanged_acl_is_not_sent_again() {
    let mut policy = policy_with(&[("a", "bad.example"), ("own", OWN), ("glob", "*.example")]);
    let (acl, to) = policy.acl_updates(&rooms(&["!r1", "!r2"]), OWN, BOT).expect("no list failed");
    assert!(!acl.deny.iter().any(|d| d == OWN || d == "*.example"), "{:?}", acl.deny);
    assert!(acl.deny.iter().any(|d| d == "bad.example"), "{:?}", acl.deny);
    assert_eq!(to, rooms(&["!r1", "!r2"]));
    policy.acl_sent("!r1", &acl, BOT);
    let (_, to) = policy.acl_updates(&rooms(&["!r1", "!r2"]), OWN, BOT).unwrap();
    assert_eq!(to, rooms(&["!r2"]), "the room that has it already is left out");
}

#[test]
fn no_acl_is_sent_while_a_watched_list_failed_to_load() {
    let mut policy = policy_with(&[("a", "bad.example")]);
    policy.failed.insert("#other:own.example".to_owned(), "cannot join".to_owned());
    assert!(policy.acl_updates(&rooms(&["!r"]), OWN, BOT).is_none());
    assert!(policy.acl_status().starts_with("not sent while 1 watched list(s) failed"));
}

#[test]
fn rooms_without_server_rules_are_left_alone_unless_the_acl_there_is_ours() {
    let mut policy = policy_with(&[]);
    let (_, to) = policy.acl_updates(&rooms(&["!r"]), OWN, BOT).unwrap();
    assert!(to.is_empty(), "no rules, no ACL of ours: nothing to send");
    let ours = json!({"allow": ["*"], "deny": ["gone.example"], "allow_ip_literals": true}).to_string();
    policy.on_acl("!r", BOT, &ours, BOT);
    let (acl, to) = policy.acl_updates(&rooms(&["!r"]), OWN, BOT).unwrap();
    assert_eq!(to, rooms(&["!r"]), "our old ACL is cleared when its rules are gone");
    assert!(acl.deny.is_empty());
}

#[test]
fn an_acl_edited_by_someone_else_is_put_back() {
    let mut policy = policy_with(&[("a", "bad.example")]);
    let t0 = Instant::now();
    policy.acl_ready(t0);
    assert!(policy.acl_ready(t0 + Duration::from_secs(2)));
    let (acl, _) = policy.acl_updates(&rooms(&["!r"]), OWN, BOT).unwrap();
    policy.acl_sent("!r", &acl, BOT);
    // Our own echo makes nothing due.
    policy.on_acl("!r", BOT, &acl.content().to_string(), BOT);
    assert!(!policy.acl_ready(t0 + Duration::from_secs(3)));
    assert_eq!(policy.acl_status(), "up to date");
    // Someone else's edit does, and ours goes back.
    policy.on_acl("!r", "@mod:own.example", r#"{"allow": ["*"], "deny": []}"#, BOT);
    assert!(policy.acl_status().starts_with("update due"));
    assert!(policy.acl_ready(t0 + Duration::from_secs(4)));
    let (_, to) = policy.acl_updates(&rooms(&["!r"]), OWN, BOT).unwrap();
    assert_eq!(to, rooms(&["!r"]));
}
