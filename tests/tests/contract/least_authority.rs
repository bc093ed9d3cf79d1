//! Contract tests of `least-authority`, with the host's join times and message counts.

use super::*;
use gleipnir_runtime::SettingValue;

pub(super) fn covered() {}

const ROOM: &str = "!r:test";

fn join(id: usize, user: &str, ms: u64) -> String {
    json!({
        "room_id": ROOM, "event_id": format!("$j{id}"), "sender": user, "type": "m.room.member",
        "state_key": user, "origin_server_ts": ms, "content": {"membership": "join"},
    })
    .to_string()
}

/// Through the real runtime: the host's join times and message counts
/// decide who is a newcomer.
#[test]
fn newcomers_are_gated_by_time_and_host_counted_messages() {
    gated_by_time_and_counted_messages(&load(plugins::LEAST_AUTHORITY));
}

/// The component built for contract 0.1.0 decides as it always did.
#[test]
fn the_0_1_0_build_still_gates_newcomers() {
    gated_by_time_and_counted_messages(&load(gleipnir_tests::fixtures::LEAST_AUTHORITY_0_1_0));
}

fn gated_by_time_and_counted_messages(plugin: &Plugin) {
    assert_eq!(plugin.declared().to_string(), "redact, send-notice, notify-management");
    let (mut instance, rooms, queries) = start(
        plugin,
        &[
            ("messages-before-trusted", SettingValue::Integer(2)),
            ("explanation", SettingValue::Text("{user}: no {what}".into())),
        ],
    );
    let base = 1_700_000_000_000u64;
    // @old joined before the host began counting; @new after.
    run(
        &mut instance,
        &rooms,
        &queries.clock,
        &[join(1, "@old:test", base - 10_000), join(2, "@new:test", base + 1_000)],
    );
    rooms.count_from(ROOM, base);
    let link = |id: usize, user: &str, seconds: u64| {
        json!({
            "room_id": ROOM, "event_id": format!("$e{id}"), "sender": user, "type": "m.room.message",
            "origin_server_ts": base + seconds * 1000, "content": {"msgtype": "m.text", "body": "https://x.example"},
        })
        .to_string()
    };
    assert_eq!(
        run(&mut instance, &rooms, &queries.clock, &[link(10, "@new:test", 5), link(11, "@old:test", 5)]),
        "redact !r:test $e10 (least-authority: newcomers may not post links yet)\n\
         send-notice !r:test @new:test: no links (least-authority: newcomers may not post links yet)"
    );
    // Two days later, with two messages counted by the host: free.
    rooms.count_message(ROOM, "@new:test", "$m1");
    rooms.count_message(ROOM, "@new:test", "$m2");
    assert_eq!(run(&mut instance, &rooms, &queries.clock, &[link(12, "@new:test", 2 * 86_400)]), "");
    // One of them removed: gated again.
    rooms.uncount("$m2");
    assert!(run(&mut instance, &rooms, &queries.clock, &[link(13, "@new:test", 2 * 86_400 + 1)]).starts_with("redact"));
}

/// Swapped for a rebuilt copy of itself, or from the 0.1.0 build to this
/// one, least-authority still knows whom it told: no second explanation.
#[test]
fn a_swap_keeps_who_was_told() {
    let link = |id: usize, ms: u64| {
        json!({
            "room_id": ROOM, "event_id": format!("$e{id}"), "sender": "@new:test", "type": "m.room.message",
            "origin_server_ts": ms, "content": {"msgtype": "m.text", "body": "https://x.example"},
        })
        .to_string()
    };
    let base = 1_700_000_000_000u64;
    for from in [load(plugins::LEAST_AUTHORITY), load(gleipnir_tests::fixtures::LEAST_AUTHORITY_0_1_0)] {
        let (mut old, rooms, queries) = start(&from, &[]);
        rooms.count_from(ROOM, base);
        run(&mut old, &rooms, &queries.clock, &[join(1, "@new:test", base + 1_000)]);
        let first = run(&mut old, &rooms, &queries.clock, &[link(2, base + 5_000)]);
        assert!(first.contains("send-notice"), "{first}");
        let overrides = old.overrides().to_vec();
        let (mut new, handover) = old.successor(&load(plugins::LEAST_AUTHORITY), &overrides).expect("swaps");
        assert_eq!(handover.state_refused, None);
        let second = run(&mut new, &rooms, &queries.clock, &[link(3, base + 65_000)]);
        assert!(second.starts_with("redact") && !second.contains("send-notice"), "told again after a swap: {second}");
    }
}
