//! Native tests: event streams in, actions out, through the SDK harness.

use gleipnir_sdk::prelude::*;
use gleipnir_sdk::testing::{Harness, events};

use crate::Flooding;

const ROOM: &str = "!room:test";

/// `script` is one message per line: `SECONDS SENDER [ROOM]`. Event ids are
/// `$1`, `$2`, … in order.
fn check(setup: impl FnOnce(&mut Harness<Flooding>), script: &str, expected: &str) {
    let mut harness = Harness::<Flooding>::new();
    setup(&mut harness);
    let mut actions = Vec::new();
    for (i, line) in script.lines().map(str::trim).filter(|l| !l.is_empty()).enumerate() {
        let mut parts = line.split_whitespace();
        let seconds: u64 = parts.next().unwrap().parse().unwrap();
        let sender = parts.next().unwrap();
        let room = parts.next().unwrap_or(ROOM);
        let event = events::message(room, sender, "hi").at(1_000_000 + seconds * 1000).with_id(&format!("${}", i + 1));
        actions.extend(harness.handle(&event));
    }
    let got = events::render(&actions);
    assert_eq!(got.trim(), expected.trim(), "\n--- got ---\n{got}\n");
}

fn repeat(sender: &str, times: usize, every_seconds: u64) -> String {
    (0..times).map(|i| format!("{} {sender}\n", i as u64 * every_seconds)).collect()
}

fn defaults(_: &mut Harness<Flooding>) {}

#[test]
fn ten_messages_in_a_minute_are_fine() {
    check(defaults, &repeat("@a:test", 10, 1), "");
}

#[test]
fn the_eleventh_message_is_a_flood() {
    check(
        defaults,
        &repeat("@a:test", 12, 1),
        "
redact !room:test $1 (flooding)
redact !room:test $2 (flooding)
redact !room:test $3 (flooding)
redact !room:test $4 (flooding)
redact !room:test $5 (flooding)
redact !room:test $6 (flooding)
redact !room:test $7 (flooding)
redact !room:test $8 (flooding)
redact !room:test $9 (flooding)
redact !room:test $10 (flooding)
redact !room:test $11 (flooding)
ban !room:test @a:test (flooding)
notify: @a:test sent 11 messages within a minute in !room:test (limit 10); redacted their messages and banned them. (flooding)
redact !room:test $12 (flooding)",
    );
}

#[test]
fn messages_spread_over_time_are_fine() {
    check(defaults, &repeat("@a:test", 30, 7), "");
}

#[test]
fn rooms_and_users_are_counted_apart() {
    let mut script = String::new();
    for i in 0..6 {
        script += &format!("{i} @a:test\n{i} @b:test\n{i} @a:test !other:test\n");
    }
    check(
        |h| {
            h.set("max-per-minute", SettingValue::Integer(6)).unwrap();
        },
        &script,
        "",
    );
}

#[test]
fn lower_limit_and_redact_only() {
    check(
        |h| {
            h.set("max-per-minute", SettingValue::Integer(3)).unwrap();
            h.set("consequence", SettingValue::Choice("redact".into())).unwrap();
        },
        &repeat("@a:test", 5, 1),
        "
redact !room:test $1 (flooding)
redact !room:test $2 (flooding)
redact !room:test $3 (flooding)
redact !room:test $4 (flooding)
notify: @a:test sent 4 messages within a minute in !room:test (limit 3); redacted their messages. (flooding)
redact !room:test $5 (flooding)",
    );
}

#[test]
fn notify_only_tells_once() {
    check(
        |h| {
            h.set("max-per-minute", SettingValue::Integer(2)).unwrap();
            h.set("consequence", SettingValue::Choice("notify".into())).unwrap();
        },
        &repeat("@a:test", 6, 1),
        "notify: @a:test sent 3 messages within a minute in !room:test (limit 2); took no action (consequence is notify). (flooding)",
    );
}

#[test]
fn moderators_are_never_acted_on() {
    check(|h| h.host.set_power_level(ROOM, "@mod:test", 50), &repeat("@mod:test", 30, 1), "");
}

#[test]
fn a_raised_ban_level_makes_a_fifty_an_ordinary_user() {
    check(
        |h| {
            h.set("max-per-minute", SettingValue::Integer(1)).unwrap();
            h.host.set_power_level(ROOM, "@helper:test", 50);
            h.host.set_room_levels(ROOM, RoomLevels { ban: 75, ..gleipnir_sdk::testing::default_room_levels() });
        },
        &repeat("@helper:test", 2, 1),
        "
redact !room:test $1 (flooding)
redact !room:test $2 (flooding)
ban !room:test @helper:test (flooding)
notify: @helper:test sent 2 messages within a minute in !room:test (limit 1); redacted their messages and banned them. (flooding)",
    );
}

#[test]
fn the_bot_itself_is_never_acted_on() {
    check(defaults, &repeat("@gleipnir:test", 30, 1), "");
}

#[test]
fn a_flag_expires_after_a_quiet_minute() {
    let mut script = repeat("@a:test", 3, 1);
    script += "200 @a:test\n201 @a:test\n";
    check(
        |h| {
            h.set("max-per-minute", SettingValue::Integer(2)).unwrap();
            h.set("consequence", SettingValue::Choice("redact".into())).unwrap();
        },
        &script,
        "
redact !room:test $1 (flooding)
redact !room:test $2 (flooding)
redact !room:test $3 (flooding)
notify: @a:test sent 3 messages within a minute in !room:test (limit 2); redacted their messages. (flooding)",
    );
}

#[test]
fn redactions_are_not_counted() {
    let mut harness = Harness::<Flooding>::new();
    harness.set("max-per-minute", SettingValue::Integer(1)).unwrap();
    let actions: Vec<Action> =
        (0..5).flat_map(|i| harness.handle(&events::redaction(ROOM, "@a:test", "$x").at(1000 + i))).collect();
    assert_eq!(events::render(&actions), "");
}

#[test]
fn out_of_range_settings_are_refused() {
    let mut harness = Harness::<Flooding>::new();
    let err = harness.set("max-per-minute", SettingValue::Integer(0)).unwrap_err();
    assert!(err.contains("max-per-minute"), "{err}");
    let err = harness.set("consequence", SettingValue::Choice("explode".into())).unwrap_err();
    assert!(err.contains("not one of"), "{err}");
}

#[test]
fn idle_users_are_forgotten() {
    let mut harness = Harness::<Flooding>::new();
    for i in 0..(crate::SWEEP_EVERY as u64 + 10) {
        harness.handle(&events::message(ROOM, &format!("@u{i}:test"), "hi").at(1_000_000 + i * 100));
    }
    let tracked = harness.protection.senders.len();
    assert!(tracked < 1000, "still tracking {tracked} users");
}

#[test]
fn a_flood_straddling_a_restart_is_still_a_flood() {
    let mut before = Harness::<Flooding>::new();
    for i in 1..=8 {
        let event = events::message(ROOM, "@a:test", "hi").at(1_000_000 + i * 1000).with_id(&format!("${i}"));
        assert!(before.handle(&event).is_empty());
    }
    let state = before.protection.snapshot();
    // A new instance (after a crash, a restart, a swap) takes the state back.
    let mut after = Harness::<Flooding>::new();
    after.protection.restore(&state).unwrap();
    let actions: Vec<Action> = (9..=11)
        .flat_map(|i| {
            let event = events::message(ROOM, "@a:test", "hi").at(1_000_000 + i * 1000).with_id(&format!("${i}"));
            after.handle(&event)
        })
        .collect();
    let got = events::render(&actions);
    assert!(got.contains("redact !room:test $1 ") && got.contains("ban !room:test @a:test"), "{got}");
    assert!(got.contains("sent 11 messages within a minute"), "{got}");
    assert!(Flooding::default().restore(b"something else").is_err());
    assert!(Flooding::default().restore(b"flooding-v1\n!r\t@u\tsoon\t\n").is_err());
}
