//! Contract tests of `mention-limit`, through the real runtime.

use super::*;
use gleipnir_runtime::SettingValue;

pub(super) fn covered() {}

const ROOM: &str = "!room:test";

/// A message as a homeserver serves it, mentioning `n` users in `m.mentions`.
fn mentioning(sender: &str, n: usize, minute: u64, id: usize) -> String {
    let users: Vec<String> = (0..n).map(|i| format!("@user{i}:test")).collect();
    json!({
        "room_id": ROOM, "event_id": format!("$e{id}"), "sender": sender, "type": "m.room.message",
        "origin_server_ts": 1_700_000_000_000u64 + minute * 60_000,
        "content": {"msgtype": "m.text", "body": "hello", "m.mentions": {"user_ids": users}},
    })
    .to_string()
}

#[test]
fn describes_itself() {
    let p = load(plugins::MENTION_LIMIT);
    let keys: Vec<_> = p.descriptor().settings.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["max-mentions", "warning-text", "include-legacy-mentions", "repeat-within", "reason"]);
    assert_eq!(p.declared().to_string(), "redact, ban, send-notice, notify-management");
}

/// Four mentions: redacted and warned; again within 30 minutes: banned;
/// three mentions, or a moderator's many, are left alone.
#[test]
fn too_many_mentions_are_redacted_then_banned_on_a_repeat() {
    let plugin = load(plugins::MENTION_LIMIT);
    let moderator = state(ROOM, "@mod:test", "m.room.power_levels", "", json!({"users": {"@mod:test": 100}}), 1);
    check(
        &plugin,
        &[("warning-text", SettingValue::Text("{user}: too many".into()))],
        &[
            moderator,
            mentioning("@spam:test", 3, 0, 1),
            mentioning("@mod:test", 20, 0, 2),
            mentioning("@spam:test", 4, 1, 3),
            mentioning("@spam:test", 4, 10, 4),
        ],
        "redact !room:test $e3 (too many mentions)\n\
         send-notice !room:test @spam:test: too many (too many mentions)\n\
         ban !room:test @spam:test (too many mentions)\n\
         redact !room:test $e4 (too many mentions)\n\
         notify-management @spam:test mentioned 4 users in !room:test a second time within 30 minutes: banned them (limit 3). (too many mentions)",
    );
}
