//! Contract tests of `join-wave`, through the real runtime.

use super::*;
use gleipnir_runtime::{Checked, Pending, PendingJoin, SettingValue};

pub(super) fn covered() {}

const ROOM: &str = "!room:test";
const T0: u64 = 1_700_000_000_000;

/// `user` joining at `minute`, as a homeserver serves it.
fn join(user: &str, minute: u64, id: usize) -> String {
    json!({
        "room_id": ROOM, "event_id": format!("$j{id}"), "sender": user, "type": "m.room.member",
        "state_key": user, "origin_server_ts": T0 + minute * 60_000, "content": {"membership": "join"},
    })
    .to_string()
}

/// A join rule change; the rule before in `unsigned.prev_content`, as Synapse serves it.
fn join_rule(sender: &str, rule: &str, previous: &str, minute: u64) -> String {
    json!({
        "room_id": ROOM, "event_id": format!("$r{minute}"), "sender": sender, "type": "m.room.join_rules",
        "state_key": "", "origin_server_ts": T0 + minute * 60_000, "content": {"join_rule": rule},
        "unsigned": {"prev_content": {"join_rule": previous}},
    })
    .to_string()
}

fn rendered(outcome: &gleipnir_runtime::Outcome) -> String {
    outcome.actions.iter().map(render_action).collect::<Vec<_>>().join("\n")
}

#[test]
fn describes_itself() {
    let p = load(plugins::JOIN_WAVE);
    let d = p.descriptor();
    let keys: Vec<_> = d.settings.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["max-per", "timescale", "close-to", "reopen", "calm-period", "reason"]);
    assert_eq!(p.declared().to_string(), "set-join-rule, notify-management");
    assert_eq!(d.commands.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["status", "reopen"]);
    assert_eq!(d.tick_ms, Some(5000));
    let described = json::descriptor(d, p.wit_version(), p.content_hash());
    assert_eq!(described["checks"], json!(["join"]));
    let max = d.settings.iter().find(|s| s.key == "max-per").unwrap();
    assert!(matches!(max.default, SettingValue::Integer(50)), "Draupnir's default: 50 joins per hour");
}

/// Four joins over a limit of three close the room to invite; the bot's own
/// change shows the rule it had (public), and a tick after the calm period
/// puts it back.
#[test]
fn a_wave_closes_the_room_and_a_calm_period_reopens_it() {
    let plugin = load(plugins::JOIN_WAVE);
    let overrides = [("max-per", SettingValue::Integer(3)), ("calm-period", SettingValue::Duration(10 * 60_000))];
    let (mut instance, rooms, queries) = start(&plugin, &overrides);
    rooms.apply(ROOM, "m.room.create", "", "@mod:test", 0, r#"{"creator":"@mod:test"}"#);
    let setup = [join_rule("@mod:test", "public", "invite", 0)];
    run(&mut instance, &rooms, &queries.clock, &setup);
    let joins: Vec<String> = (0..4).map(|i| join(&format!("@raider{i}:evil"), 1, i)).collect();
    let closed = run(&mut instance, &rooms, &queries.clock, &joins);
    assert_eq!(
        closed,
        "set-join-rule !room:test (too many joins at once (a join wave))\n\
         notify-management Join wave in !room:test: 4 joins within 1 hour (limit 3). Set its join rule to invite \
         so nobody else joins for now. It reopens after 10 minutes without joins; `!gleipnir join-wave reopen \
         !room:test` reopens it now. (too many joins at once (a join wave))"
    );
    // The host carries it out as the bot: the event comes back.
    run(&mut instance, &rooms, &queries.clock, &[join_rule("@gleipnir:test", "invite", "public", 2)]);
    let early = instance.handle(&event::tick(T0 + 8 * 60_000)).unwrap();
    assert!(early.actions.is_empty(), "not calm for 10 minutes yet");
    let reopened = instance.handle(&event::tick(T0 + 12 * 60_000)).unwrap();
    let reopened = rendered(&reopened);
    assert!(
        reopened.starts_with("set-join-rule !room:test (too many joins at once (a join wave) is over)"),
        "{reopened}"
    );
    assert!(reopened.contains("put back its join rule (public)"), "{reopened}");
}

/// With the homeserver's module the fourth join is refused before it
/// happens, and the room closed by the follow-up.
#[test]
fn the_join_over_the_limit_is_refused_before_it_lands() {
    let plugin = load(plugins::JOIN_WAVE);
    let (mut instance, rooms, queries) = start(&plugin, &[("max-per", SettingValue::Integer(3))]);
    let joins: Vec<String> = (0..3).map(|i| join(&format!("@raider{i}:evil"), 1, i)).collect();
    assert_eq!(run(&mut instance, &rooms, &queries.clock, &joins), "");
    let pending = Pending::Join(PendingJoin { room_id: ROOM.into(), user_id: "@raider3:evil".into() });
    match instance.check_pending(&pending).unwrap() {
        Checked::Deny { reason, follow_up } => {
            assert_eq!(reason, "!room:test is closed to new joins for now: too many joined at once");
            assert!(rendered(&follow_up).starts_with("set-join-rule !room:test"), "{}", rendered(&follow_up));
        }
        Checked::Allow => panic!("the fourth join is refused"),
    }
}
