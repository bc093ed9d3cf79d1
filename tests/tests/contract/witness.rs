//! Contract tests of what 0.2.0 adds, through the `witness` test plugin:
//! commands, pre-emptive checks (with their deadline and without
//! `history`), several events in one call, the new event kinds and the
//! `members` query.

use std::time::{Duration, Instant};

use super::*;
use gleipnir_runtime::{
    Caller, CapabilitySet, Checked, Pending, PendingEvent, PendingInvite, PendingJoin, QueryGrant, QueryGrants,
    SettingValue,
};

pub(super) fn covered() {}

const ROOM: &str = "!r:test";

fn start() -> (Instance, Arc<RoomStates>) {
    let plugin = load(plugins::WITNESS);
    assert_eq!(plugin.wit_version(), "0.2.0");
    let (queries, rooms) = queries();
    let instance = plugin.instantiate(queries, plugin.declared()).expect("starts");
    (instance, rooms)
}

fn moderator() -> Caller {
    Caller { user_id: "@mod:test".into(), power_level: 100 }
}

fn words(list: &[&str]) -> Vec<String> {
    list.iter().map(|w| (*w).to_owned()).collect()
}

fn event(room: &str, sender: &str, content: &str) -> Pending {
    Pending::Event(PendingEvent {
        room_id: room.into(),
        sender: sender.into(),
        event_type: "m.room.message".into(),
        state_key: None,
        content: content.into(),
    })
}

#[test]
fn the_descriptor_carries_commands_checks_and_a_tick() {
    let plugin = load(plugins::WITNESS);
    let d = plugin.descriptor();
    let names: Vec<&str> = d.commands.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["say", "close", "reopen", "invite", "members", "set", "many"]);
    assert_eq!(d.tick_ms, Some(2000));
    assert_eq!(d.checks.len(), 3);
    let described = json::descriptor(d, plugin.wit_version(), plugin.content_hash());
    assert_eq!(described["wit"], "gleipnir:protection@0.2.0");
    assert_eq!(described["checks"], json!(["event", "join", "invite"]));
}

#[test]
fn a_command_replies_acts_and_changes_settings_checked_like_handle() {
    let (mut instance, _) = start();
    let said = instance.command("say", &words(&["hello", "there"]), &moderator()).unwrap().unwrap();
    assert_eq!(said.reply, "witness says: hello there");
    assert!(said.outcome.actions.is_empty() && said.settings.is_empty());

    let closed = instance.command("close", &words(&[ROOM]), &moderator()).unwrap().unwrap();
    assert_eq!(
        closed.outcome.actions.iter().map(render_action).collect::<Vec<_>>(),
        ["set-join-rule !r:test (asked by @mod:test)"]
    );
    let set = instance.command("set", &words(&["7"]), &moderator()).unwrap().unwrap();
    assert_eq!(set.settings, [("level".to_owned(), SettingValue::Integer(7))]);

    // The protection's own refusal, an undeclared command, and a capability
    // the operator did not grant: nothing done, each said.
    assert_eq!(instance.command("set", &words(&["x"]), &moderator()).unwrap().unwrap_err(), "`x` is not a number");
    let unknown = instance.command("explode", &[], &moderator()).unwrap().unwrap_err();
    assert_eq!(unknown, "`witness` has no command `explode`; it has: say, close, reopen, invite, members, set, many");
    instance.set_granted(CapabilitySet::EMPTY);
    let refused = instance.command("invite", &words(&[ROOM, "@a:test"]), &moderator()).unwrap().unwrap();
    assert!(refused.outcome.actions.is_empty());
    assert!(refused.outcome.refused[0].why.contains("operator has not granted"), "{:?}", refused.outcome.refused);
}

#[test]
fn members_come_in_one_query_with_join_times_and_levels() {
    let (mut instance, rooms) = start();
    rooms.apply(ROOM, "m.room.member", "@a:test", "@a:test", 5, r#"{"membership":"join"}"#);
    rooms.apply(ROOM, "m.room.member", "@b:test", "@b:test", 6, r#"{"membership":"invite"}"#);
    rooms.apply(ROOM, "m.room.power_levels", "", "@a:test", 7, r#"{"users":{"@a:test":100}}"#);
    let members = instance.command("members", &words(&[ROOM]), &moderator()).unwrap().unwrap();
    assert_eq!(members.reply, "witness: 2 member(s), 1 joined");
    let listed = rooms.members(ROOM, 10);
    let a = listed.iter().find(|m| m.user_id == "@a:test").unwrap();
    assert_eq!((a.joined_at, a.power_level), (Some(5), 100));
}

#[test]
fn check_decides_joins_invites_and_events_and_its_follow_up_is_checked() {
    let (mut instance, _) = start();
    let verdict = |instance: &mut Instance, pending: &Pending| match instance.check_pending(pending).unwrap() {
        Checked::Allow => "allow".to_owned(),
        Checked::Deny { reason, follow_up } => {
            format!("deny: {reason} ({} follow-up)", follow_up.actions.len())
        }
    };
    assert_eq!(verdict(&mut instance, &event(ROOM, "@a:test", r#"{"body":"hi"}"#)), "allow");
    assert_eq!(
        verdict(&mut instance, &event(ROOM, "@a:test", r#"{"body":"forbidden"}"#)),
        "deny: forbidden word (1 follow-up)"
    );
    let join = |user: &str| Pending::Join(PendingJoin { room_id: ROOM.into(), user_id: user.into() });
    assert_eq!(verdict(&mut instance, &join("@banned1:test")), "deny: banned name (1 follow-up)");
    assert_eq!(verdict(&mut instance, &join("@fine:test")), "allow");
    let invite = Pending::Invite(PendingInvite {
        room_id: ROOM.into(),
        inviter: "@spammer:x".into(),
        invitee: "@a:test".into(),
    });
    assert_eq!(verdict(&mut instance, &invite), "deny: invites from spammers (1 follow-up)");
}

#[test]
fn check_may_not_read_history_even_when_granted() {
    let (mut instance, _) = start();
    instance.set_query_grants([QueryGrant::ReadHistory].into_iter().collect::<QueryGrants>());
    match instance.check_pending(&event(ROOM, "@a:test", r#"{"body":"history"}"#)).unwrap() {
        Checked::Deny { reason, .. } => {
            assert_eq!(reason, r#"history: Err("`history` is not available in `check`")"#)
        }
        Checked::Allow => panic!("the witness denies when asked about history"),
    }
}

#[test]
fn check_has_a_far_shorter_deadline_than_handle() {
    let runtime = gleipnir_tests::runtime_with(Limits { call_deadline: Duration::from_secs(2), ..Limits::default() });
    let plugin = gleipnir_tests::load_with(&runtime, plugins::WITNESS);
    let (queries, _) = queries();
    let mut instance = plugin.instantiate(queries, plugin.declared()).unwrap();
    instance.configure(&[("check-spin".to_owned(), SettingValue::Flag(true))]).unwrap();
    let started = Instant::now();
    let fault = match instance.check_pending(&event(ROOM, "@a:test", "{}")) {
        Err(fault) => fault,
        Ok(_) => panic!("a spinning check returned"),
    };
    assert_eq!(fault, Fault::Timeout { call: "check", deadline: Duration::from_millis(5) });
    assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());
}

#[test]
fn a_batch_is_the_same_as_one_call_per_event() {
    let lines: Vec<String> = (0..64).map(|i| message(ROOM, "@a:test", i, &format!("m{i}"), i as usize)).collect();
    let events: Vec<gleipnir_runtime::Event> =
        lines.iter().map(|l| event::from_json(l, None, &|_, _| None).unwrap().unwrap()).collect();
    let (mut one_by_one, _) = start();
    let singly: Vec<String> =
        events.iter().flat_map(|e| one_by_one.handle(e).unwrap().actions).map(|a| render_action(&a)).collect();
    let (mut batched, _) = start();
    let outcomes = batched.handle_batch(&events).unwrap();
    assert_eq!(outcomes.len(), 64);
    let together: Vec<String> = outcomes.into_iter().flat_map(|o| o.actions).map(|a| render_action(&a)).collect();
    assert_eq!(singly, together);
    assert_eq!(together[63], "notify-management message from @a:test: m63 (witness)");
}

#[test]
fn join_rule_and_power_level_changes_reach_a_0_2_0_protection_with_what_was_before() {
    let (mut instance, rooms) = start();
    let rule = json!({
        "room_id": ROOM, "event_id": "$j", "sender": "@mod:test", "type": "m.room.join_rules", "state_key": "",
        "origin_server_ts": 1, "content": {"join_rule": "invite"}, "unsigned": {"prev_content": {"join_rule": "public"}},
    });
    let levels =
        state(ROOM, "@mod:test", "m.room.power_levels", "", json!({"ban": 40, "users": {"@mod:test": 100}}), 2);
    let seen: Vec<String> = [rule.to_string(), levels]
        .iter()
        .map(|l| event::from_json(l, None, &|r, u| rooms.membership(r, u)).unwrap().unwrap())
        .flat_map(|e| instance.handle(&e).unwrap().actions)
        .map(|a| render_action(&a))
        .collect();
    assert_eq!(
        seen,
        [
            "notify-management join rule in !r:test: JoinRule::Invite (was Some(JoinRule::Public)) (witness)",
            "notify-management power levels in !r:test: ban 40 for 1 user(s) (witness)",
        ]
    );
}
