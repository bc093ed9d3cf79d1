//! Native tests through the SDK harness.

use gleipnir_sdk::prelude::*;
use gleipnir_sdk::testing::{Harness, events};

use crate::JoinWave;

const ROOM: &str = "!room:test";
const MINUTE: u64 = 60_000;

fn harness() -> Harness<JoinWave> {
    let mut h = Harness::<JoinWave>::new();
    h.host.set_bot_user_id("@bot:test");
    h.set("max-per", SettingValue::Integer(3)).unwrap();
    h
}

fn join(who: &str, minute: u64) -> Event {
    events::membership(ROOM, who, Membership::Join).at(minute * MINUTE)
}

fn join_rule(sender: &str, rule: JoinRule, previous: Option<JoinRule>, minute: u64) -> Event {
    let mut event = events::membership(ROOM, sender, Membership::Join).at(minute * MINUTE);
    event.kind = EventKind::JoinRule(JoinRuleChange { rule, previous });
    event
}

fn tick(minute: u64) -> Event {
    let mut event = events::membership("", "", Membership::Join).at(minute * MINUTE);
    (event.room_id, event.event_id, event.sender, event.kind) =
        (String::new(), String::new(), String::new(), EventKind::Tick);
    event
}

#[test]
fn a_wave_closes_the_room_once_and_the_rule_it_had_comes_back_after_the_calm_period() {
    let mut h = harness();
    for (i, who) in ["@a:x", "@b:x", "@c:x"].iter().enumerate() {
        assert_eq!(events::render(&h.handle(&join(who, i as u64))), "", "three joins are within the limit");
    }
    let closing = events::render(&h.handle(&join("@d:x", 4)));
    assert!(
        closing.starts_with("set-join-rule !room:test JoinRule::Invite (too many joins at once (a join wave))"),
        "{closing}"
    );
    assert!(closing.contains("Join wave in !room:test: 4 joins within 1 hour (limit 3)"), "{closing}");
    assert!(closing.contains("It reopens after 30 minutes without joins"), "{closing}");
    assert_eq!(events::render(&h.handle(&join("@e:x", 5))), "", "closed once, not again");
    // The bot's own change tells the rule to put back.
    h.handle(&join_rule("@bot:test", JoinRule::Invite, Some(JoinRule::Public), 5));
    assert_eq!(events::render(&h.handle(&tick(20))), "", "not calm for 30 minutes yet (a join at minute 5)");
    let reopened = events::render(&h.handle(&tick(36)));
    assert!(
        reopened
            .starts_with("set-join-rule !room:test JoinRule::Public (too many joins at once (a join wave) is over)"),
        "{reopened}"
    );
    assert!(
        reopened.contains("Reopened !room:test: no joins for 30 minutes; put back its join rule (public)."),
        "{reopened}"
    );
    assert_eq!(events::render(&h.handle(&tick(40))), "", "reopened once");
    assert_eq!(events::render(&h.handle(&join("@f:x", 41))), "", "the count starts over after reopening");
}

#[test]
fn joins_outside_the_window_name_changes_and_moderators_do_not_count() {
    let mut h = harness();
    h.host.set_power_level(ROOM, "@mod:test", 100);
    h.handle(&join("@a:x", 0));
    h.handle(&join("@b:x", 1));
    h.handle(&join("@c:x", 2));
    assert_eq!(events::render(&h.handle(&join("@d:x", 61))), "", "@a's join left the hour-long window");
    let mut rename = join("@e:x", 62);
    if let EventKind::Membership(m) = &mut rename.kind {
        m.previous = Some(Membership::Join);
    }
    assert_eq!(events::render(&h.handle(&rename)), "", "a name change is no join");
    assert_eq!(events::render(&h.handle(&join("@mod:test", 62))), "", "a moderator is no join");
    assert_eq!(events::render(&h.handle(&join("@f:x", 62))), "", "@c (minute 2), @d and @f: three");
    assert!(events::render(&h.handle(&join("@g:x", 62))).starts_with("set-join-rule"));
}

#[test]
fn a_moderator_who_changes_the_rule_of_a_closed_room_takes_over() {
    let mut h = harness();
    for (i, who) in ["@a:x", "@b:x", "@c:x", "@d:x"].iter().enumerate() {
        h.handle(&join(who, i as u64));
    }
    h.handle(&join_rule("@bot:test", JoinRule::Invite, Some(JoinRule::Public), 4));
    let taken = events::render(&h.handle(&join_rule("@mod:test", JoinRule::Knock, Some(JoinRule::Invite), 5)));
    assert!(
        taken.contains("@mod:test set the join rule of !room:test to knock while join-wave had closed it"),
        "{taken}"
    );
    assert_eq!(events::render(&h.handle(&tick(120))), "", "not reopened over the moderator's rule");
}

#[test]
fn knock_instead_of_invite_and_no_reopening_when_asked() {
    let mut h = harness();
    h.set("close-to", SettingValue::Choice("knock".into())).unwrap();
    h.set("reopen", SettingValue::Flag(false)).unwrap();
    for (i, who) in ["@a:x", "@b:x", "@c:x"].iter().enumerate() {
        h.handle(&join(who, i as u64));
    }
    let closing = events::render(&h.handle(&join("@d:x", 3)));
    assert!(closing.starts_with("set-join-rule !room:test JoinRule::Knock"), "{closing}");
    assert!(closing.contains("`!gleipnir join-wave reopen !room:test` puts the rule it had back."), "{closing}");
    assert_eq!(events::render(&h.handle(&tick(600))), "", "stays closed");
}

#[test]
fn status_and_reopen_commands() {
    let mut h = harness();
    h.host.set_now(0);
    assert_eq!(
        h.command("@mod:test", "status", &[]).unwrap().reply,
        "No joins within the last 1 hour in any protected room (limit 3)."
    );
    h.handle(&join("@a:x", 0));
    h.handle(&events::membership("!other:test", "@z:x", Membership::Join).at(0));
    for (i, who) in ["@b:x", "@c:x", "@d:x"].iter().enumerate() {
        h.handle(&join(who, i as u64 + 1));
    }
    h.host.set_now(10 * MINUTE);
    let status = h.command("@mod:test", "status", &[]).unwrap().reply;
    assert!(status.contains("- !other:test: 1 of 3 joins"), "{status}");
    assert!(
        status.contains("- !room:test: closed 7 minutes ago, reopens in 23 minutes (4 joins in the window)"),
        "{status}"
    );
    let err = h.command("@mod:test", "reopen", &["!other:test"]).unwrap_err();
    assert_eq!(err, "!other:test is not closed by join-wave: nothing to reopen");
    let reply = h.command("@mod:test", "reopen", &["!room:test"]).unwrap();
    assert_eq!(reply.reply, "Reopening !room:test.");
    let actions = events::render(&reply.actions);
    assert!(actions.starts_with("restore-join-rule !room:test"), "no rule learned yet: the host's memory: {actions}");
    assert!(actions.contains("Reopened !room:test: @mod:test reopened it"), "{actions}");
}

#[test]
fn the_join_over_the_limit_is_refused_before_it_happens_and_the_room_closed() {
    let mut h = harness();
    h.host.set_now(3 * MINUTE);
    for (i, who) in ["@a:x", "@b:x", "@c:x"].iter().enumerate() {
        h.handle(&join(who, i as u64));
    }
    let pending = |user: &str| Pending::Join(PendingJoin { room_id: ROOM.into(), user_id: user.into() });
    let Verdict::Deny(denial) = h.check(&pending("@d:x")) else { panic!("the fourth join is refused") };
    assert_eq!(denial.reason, "!room:test is closed to new joins for now: too many joined at once");
    assert!(events::render(&denial.follow_up).starts_with("set-join-rule !room:test JoinRule::Invite"));
    let Verdict::Deny(again) = h.check(&pending("@e:x")) else { panic!("the room stays closed") };
    assert!(again.follow_up.is_empty(), "closed once");
    h.host.set_power_level(ROOM, "@mod:test", 100);
    assert!(matches!(h.check(&pending("@mod:test")), Verdict::Allow), "moderators are never refused");
}

#[test]
fn a_closed_room_reopens_after_a_swap_or_a_restart() {
    let mut h = harness();
    for (i, who) in ["@a:x", "@b:x", "@c:x", "@d:x"].iter().enumerate() {
        h.handle(&join(who, i as u64));
    }
    h.handle(&join_rule("@bot:test", JoinRule::Invite, Some(JoinRule::Restricted), 4));
    let state = h.protection.snapshot();
    let mut next = harness();
    next.protection.restore(&state).unwrap();
    assert_eq!(next.protection.snapshot(), state, "the state reads back whole");
    let reopened = events::render(&next.handle(&tick(40)));
    assert!(reopened.starts_with("set-join-rule !room:test JoinRule::Restricted"), "{reopened}");
    assert!(next.protection.restore(b"something else").is_err());
}
