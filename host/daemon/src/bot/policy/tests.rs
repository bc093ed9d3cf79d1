//! The ACL invariants, without a homeserver.

use std::time::Duration;

use super::*;
use serde_json::json;

const BOT: &str = "@bot:own.example";
const OWN: &str = "own.example";

fn server_rule(policy: &mut Policy, key: &str, entity: &str) {
    let content = json!({"entity": entity, "recommendation": "m.ban"}).to_string();
    policy.on_rule_state("!list", "m.policy.rule.server", key, &content, "@mod:x");
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

fn user_rule(policy: &mut Policy, key: &str, entity: &str, recommendation: &str) {
    let content = json!({"entity": entity, "recommendation": recommendation, "reason": "spam"}).to_string();
    policy.on_rule_state("!list", "m.policy.rule.user", key, &content, "@mod:x");
}

fn kinds(jobs: &[Job]) -> Vec<String> {
    jobs.iter()
        .map(|job| match job {
            Job::Report(text) => format!("report: {}", text.lines().next().unwrap_or_default()),
            Job::Act(origin, action) => format!("{origin}: {}", gleipnir_runtime::json::action(action)),
        })
        .collect()
}

#[test]
fn a_newcomer_a_rule_names_is_banned_and_others_are_not() {
    let mut policy = policy_with(&[]);
    user_rule(&mut policy, "s", "@spam*:evil.example", "m.ban");
    assert!(policy.on_member("!r", "@spammer:evil.example", gleipnir_runtime::Membership::Join));
    let jobs = kinds(&policy.newcomer("!r", "@spammer:evil.example"));
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert!(jobs[0].starts_with("report: Policy: banning @spammer:evil.example in !r on joining"), "{jobs:?}");
    assert!(jobs[1].contains("\"ban\"") && jobs[1].contains("@spammer:evil.example"), "{jobs:?}");
    assert!(policy.newcomer("!r", "@friend:good.example").is_empty());
    // Leaving is no join to check.
    assert!(!policy.on_member("!r", "@spammer:evil.example", gleipnir_runtime::Membership::Leave));
}

#[test]
fn a_new_rule_bans_the_members_it_matches_once_taken() {
    let mut policy = policy_with(&[]);
    policy.on_member("!r1", "@a:evil.example", gleipnir_runtime::Membership::Join);
    policy.on_member("!r2", "@a:evil.example", gleipnir_runtime::Membership::Join);
    policy.on_member("!r1", "@b:good.example", gleipnir_runtime::Membership::Join);
    policy.take_pending();
    user_rule(&mut policy, "a", "@a:evil.example", "m.ban");
    let delta = policy.take_pending();
    let jobs = kinds(&policy.bans(&delta));
    assert_eq!(jobs.len(), 3, "a report and a ban in each room: {jobs:?}");
    assert!(jobs[0].starts_with("report: Policy: 2 ban(s)"), "{jobs:?}");
    assert!(policy.take_pending().is_empty(), "taken once");
    // A room no longer protected is no longer matched.
    policy.unprotected("!r2");
    assert_eq!(policy.bans(&delta).len(), 2);
}

#[test]
fn shortcodes_name_lists_and_unwatching_forgets_the_list_and_makes_the_acl_due() {
    let mut policy = policy_with(&[("a", "bad.example")]);
    policy.watching("!list", "https://matrix.to/#/#coc:own.example");
    policy.on_rule_state("!list", SHORTCODE, "", r#"{"shortcode": "coc"}"#, "@mod:x");
    assert_eq!(policy.shortcode("coc"), Some("!list"));
    assert_eq!(policy.list_names(), "coc");
    // A shortcode event in a room that is not a list names nothing.
    policy.on_rule_state("!other", SHORTCODE, "", r#"{"shortcode": "x"}"#, "@mod:x");
    assert_eq!(policy.shortcode("x"), None);
    policy.pin("!list");
    assert_eq!(policy.references(), ["https://matrix.to/#/!list"]);
    let t0 = Instant::now();
    policy.acl_ready(t0);
    policy.acl_ready(t0 + Duration::from_secs(2));
    assert!(matches!(policy.unwatch("!list", "#coc:own.example"), Unwatched::Rules(1)));
    assert!(policy.acl_due(), "its server rules are gone: the ACL changes");
    assert_eq!(policy.shortcode("coc"), None);
    assert!(policy.references().is_empty());
    assert!(policy.matching("bad.example").is_empty());
    assert!(matches!(policy.unwatch("!list", "!list"), Unwatched::NotWatched));
}

#[test]
fn a_list_lost_while_running_keeps_its_rules_holds_acls_back_and_is_still_stored() {
    let mut policy = policy_with(&[("a", "bad.example")]);
    policy.watching("!list", "https://matrix.to/#/!list");
    assert_eq!(policy.lost("!list", "I was banned").as_deref(), Some("https://matrix.to/#/!list"));
    assert!(policy.acl_updates(&rooms(&["!r"]), OWN, BOT).is_none());
    assert_eq!(policy.matching("bad.example").len(), 1, "its rules stay");
    assert_eq!(policy.references(), ["https://matrix.to/#/!list"], "stored once");
    assert_eq!(policy.lost("!unknown", "gone"), None);
    // Unwatching it (by the reference it failed under) lets ACLs go again.
    assert!(matches!(policy.unwatch("!list", "!list"), Unwatched::Rules(1)));
    assert!(policy.acl_updates(&rooms(&["!r"]), OWN, BOT).is_some());
}

#[test]
fn a_list_read_whole_drops_the_rules_gone_from_its_state() {
    let mut policy = policy_with(&[("a", "bad.example"), ("b", "worse.example")]);
    let state = vec![
        json!({"type": "m.policy.rule.server", "state_key": "a", "content": {}}).to_string(),
        json!({"type": "m.room.create", "state_key": "", "content": {}}).to_string(),
    ];
    assert_eq!(policy.gone_from("!list", &state), [("m.policy.rule.server".to_owned(), "b".to_owned())]);
    assert!(policy.gone_from("!new", &[]).is_empty());
    assert!(policy.is_list("!new"), "a list being read is watched");
}

#[test]
fn rules_matching_members_lists_the_members_a_rule_matches() {
    let mut policy = policy_with(&[]);
    let content = json!({"entity": "@spam*:evil.example", "recommendation": "m.ban", "reason": "spam"}).to_string();
    policy.on_rule_state("!list", "m.policy.rule.user", "u1", &content, "@mod:x");
    let members = vec![
        ("!room".to_owned(), "@spammer:evil.example".to_owned()),
        ("!room".to_owned(), "@friend:good.example".to_owned()),
    ];
    let report = policy.members_report(&members);
    assert!(report.starts_with("1 of the 2 member(s) of the protected rooms match a rule:"), "{report}");
    assert!(report.contains("- @spammer:evil.example in !room: "), "{report}");
    assert!(!report.contains("friend"), "{report}");
    let clean = policy.members_report(&members[1..]);
    assert_eq!(clean, "No rule matches any of the 1 member(s) of the protected rooms.");
}

#[test]
fn rule_changes_are_reported_once_per_batch_with_who_and_how_many_members() {
    let mut policy = policy_with(&[]);
    policy.on_rule_state("!list", SHORTCODE, "", r#"{"shortcode": "coc"}"#, "@mod:x");
    policy.on_member("!room", "@spammer:evil.example", gleipnir_runtime::Membership::Join);
    policy.on_member("!room", "@friend:good.example", gleipnir_runtime::Membership::Join);
    let ban = json!({"entity": "@spam*:evil.example", "recommendation": "m.ban", "reason": "spam"}).to_string();
    policy.on_rule_state("!list", "m.policy.rule.user", "u1", &ban, "@mod:x");
    let delta = policy.take_pending();
    let report = policy.change_report(&delta).expect("a report");
    assert_eq!(
        report,
        "Policy rules that changed or newly apply (1):\ncoc by @mod:x:\n- added user @spam*:evil.example m.ban (!list): spam; \
         matches 1 member(s) of the protected rooms"
    );
    // Reported once: the senders are forgotten, and nothing new is nothing to say.
    assert!(policy.change_report(&Delta::default()).is_none());
    policy.on_rule_state("!list", "m.policy.rule.user", "u1", "{}", "@other:x");
    let removal = policy.take_pending();
    let report = policy.change_report(&removal).unwrap();
    assert!(report.contains("coc by @other:x:\n- removed user @spam*:evil.example"), "{report}");
    assert!(!report.contains("@mod:x"), "{report}");
}

#[test]
fn watching_many_lists_at_once_is_reported_in_one_readable_notice() {
    let mut policy = Policy::default();
    for l in 0..100 {
        let list = format!("!list{l:03}");
        policy.lists.insert(list.clone(), PolicyList::new(&list));
        for r in 0..1000 {
            let ban = json!({"entity": format!("@held{l}x{r}:elsewhere.example"), "recommendation": "m.ban", "reason": "spam"});
            policy.on_rule_state(&list, "m.policy.rule.user", &format!("r{r}"), &ban.to_string(), "@mod:x");
        }
    }
    let delta = policy.take_pending();
    let report = policy.change_report(&delta).expect("a report");
    assert!(
        report.starts_with(
            "Policy rules that changed or newly apply (100000):\n!list000 by @mod:x:\n- added user @held0x"
        ),
        "{report}"
    );
    assert_eq!(report.lines().filter(|l| l.starts_with("- added")).count(), 40, "{report}");
    assert!(report.contains("\n!list003 by @mod:x:\n") && !report.contains("\n!list004 by"), "{report}");
    assert!(
        report.contains(
            "\n- … and 990 more\n… and 96000 change(s) in 96 more list(s): !list004 (1000), !list005 (1000), "
        ),
        "{report}"
    );
    assert!(report.ends_with("!list013 (1000), and 86 more. `!gleipnir rules` shows every list."), "{report}");
    assert!(report.len() < 8 * 1024, "{} bytes", report.len());
}
