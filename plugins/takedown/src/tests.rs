//! Native tests through the SDK harness.

use gleipnir_sdk::prelude::*;
use gleipnir_sdk::testing::{Harness, events};

use crate::Takedown;

const LIST: &str = "!list:test";

fn history(id: &str, sender: &str) -> HistoryEvent {
    HistoryEvent {
        event_id: id.to_owned(),
        sender: sender.to_owned(),
        event_type: "m.room.message".to_owned(),
        is_state: false,
        redacted: false,
    }
}

fn rule(entity: &str, recommendation: &str) -> Event {
    let mut event = events::message(LIST, "@admin:test", "");
    event.kind = EventKind::Policy(PolicyChange {
        change: RuleChange::Added,
        rule: PolicyRule {
            kind: RuleKind::User,
            entity: Some(entity.to_owned()),
            entity_sha256: None,
            recommendation: recommendation.to_owned(),
            reason: "spam".to_owned(),
        },
    });
    event
}

fn harness() -> Harness<Takedown> {
    let mut h = Harness::<Takedown>::new();
    h.host.set_bot_user_id("@bot:test");
    h.host.set_protected_rooms(&["!a:test", "!b:test"]);
    h.host.set_membership("!a:test", "@spam:elsewhere", Membership::Join, Some(1));
    // The homeserver's filter is not trusted: the history holds others' events too.
    h.host.set_history(
        "!a:test",
        vec![history("$1", "@spam:elsewhere"), history("$2", "@bob:test"), history("$3", "@spam:elsewhere")],
    );
    h.host.set_history("!b:test", vec![history("$4", "@bob:test")]);
    h
}

#[test]
fn a_takedown_redacts_the_users_events_bans_and_reports() {
    let mut h = harness();
    assert_eq!(
        events::render(&h.handle(&rule("@spam:elsewhere", "m.takedown"))),
        "redact !a:test $1 (takedown: spam)\n\
         redact !a:test $3 (takedown: spam)\n\
         ban !a:test @spam:elsewhere (takedown: spam)\n\
         ban !b:test @spam:elsewhere (takedown: spam)\n\
         notify: Takedown rule for @spam:elsewhere in !list:test:\n\
         - @spam:elsewhere: 2 event(s) redacted across 2 protected room(s), banned in 2 (takedown: spam)"
    );
}

#[test]
fn a_local_user_is_also_suspended_and_their_media_deleted() {
    let mut h = harness();
    h.host.set_history("!a:test", vec![history("$9", "@spam:test")]);
    let out = events::render(&h.handle(&rule("@spam:test", "org.matrix.msc4204.takedown")));
    assert!(out.contains("redact !a:test $9"), "{out}");
    assert!(out.contains("suspend @spam:test (takedown: spam)"), "{out}");
    assert!(out.contains("delete-media @spam:test (takedown: spam)"), "{out}");
    h.set("server-admin", SettingValue::Flag(false)).unwrap();
    assert!(!events::render(&h.handle(&rule("@spam:test", "m.takedown"))).contains("suspend"));
}

#[test]
fn globs_reach_matching_members_and_bans_alone_are_not_takedowns() {
    let mut h = harness();
    let out = events::render(&h.handle(&rule("@spam:*", "m.takedown")));
    assert!(out.contains("redact !a:test $1") && out.contains("- @spam:elsewhere: 2 event(s)"), "{out}");
    assert_eq!(events::render(&h.handle(&rule("@spam:elsewhere", "m.ban"))), "");
    let mut removed = rule("@spam:elsewhere", "m.takedown");
    if let EventKind::Policy(p) = &mut removed.kind {
        p.change = RuleChange::Removed;
    }
    assert_eq!(events::render(&h.handle(&removed)), "");
}

#[test]
fn moderators_are_never_taken_down_and_room_rules_are_reported() {
    let mut h = harness();
    h.host.set_power_level("!a:test", "@spam:elsewhere", 100);
    let out = events::render(&h.handle(&rule("@spam:elsewhere", "m.takedown")));
    assert!(!out.contains("redact") && !out.contains("ban "), "{out}");
    assert!(out.contains("a moderator (or the bot) in a protected room; not acted on"), "{out}");
    let mut room_rule = rule("!bad:test", "m.takedown");
    if let EventKind::Policy(p) = &mut room_rule.kind {
        p.rule.kind = RuleKind::Room;
    }
    assert!(events::render(&h.handle(&room_rule)).contains("the host blocks and purges the room"));
}

#[test]
fn a_history_that_cannot_be_read_is_reported() {
    let mut h = harness();
    h.host.set_protected_rooms(&["!a:test", "!c:test"]);
    let out = events::render(&h.handle(&rule("@spam:elsewhere", "m.takedown")));
    assert!(out.contains("history not read in !c:test: no history set for !c:test"), "{out}");
}

#[test]
fn a_glob_never_reaches_accounts() {
    let mut h = harness();
    h.host.set_membership("!a:test", "@spam:test", Membership::Join, Some(1));
    h.host.set_history("!a:test", vec![history("$9", "@spam:test")]);
    // `@*:test` names every user of the homeserver: members are banned and
    // their events redacted, but nobody's account is suspended.
    let out = events::render(&h.handle(&rule("@*:test", "m.takedown")));
    assert!(out.contains("redact !a:test $9") && out.contains("ban !a:test @spam:test"), "{out}");
    assert!(!out.contains("suspend @") && !out.contains("delete-media"), "{out}");
    assert!(out.contains("not suspended: a glob rule never reaches accounts"), "{out}");
}
