//! Contract tests of `invalid-event`, through the real runtime.

use super::*;

pub(super) fn covered() {}

const ROOM: &str = "!room:test";

/// A message with `content` as written, as a homeserver serves it.
fn raw(sender: &str, content: serde_json::Value, id: usize) -> String {
    json!({
        "room_id": ROOM, "event_id": format!("$e{id}"), "sender": sender, "type": "m.room.message",
        "origin_server_ts": 1_700_000_000_000u64 + id as u64 * 1000, "content": content,
    })
    .to_string()
}

#[test]
fn describes_itself() {
    let p = load(plugins::INVALID_EVENT);
    let keys: Vec<_> = p.descriptor().settings.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["warning-text", "max-body-bytes", "repeat-within", "copy-to-management", "reason", "ban-reason"]);
    assert_eq!(p.declared().to_string(), "redact, ban, send-notice, notify-management");
}

/// `"format": 1` (the message the first wave could not see) is redacted and
/// warned; a mention that is no user id from the same sender bans; a valid
/// message stays.
#[test]
fn invalid_messages_are_redacted_then_banned_on_a_repeat() {
    let plugin = load(plugins::INVALID_EVENT);
    let (mut instance, rooms, queries) =
        start(&plugin, &[("copy-to-management", gleipnir_runtime::SettingValue::Flag(false))]);
    let got = run(
        &mut instance,
        &rooms,
        &queries.clock,
        &[
            raw("@a:x", json!({"msgtype": "m.text", "body": "hi"}), 1),
            raw("@a:x", json!({"msgtype": "m.text", "body": "x", "format": 1, "formatted_body": "<b>x</b>"}), 2),
            raw("@a:x", json!({"msgtype": "m.text", "body": "x", "m.mentions": {"user_ids": [7]}}), 3),
        ],
    );
    assert_eq!(
        got,
        "redact !room:test $e2 (invalid event)\n\
         send-notice !room:test @a:x: you sent an invalid event that could cause problems in some Matrix clients, so it was removed. (invalid event)\n\
         notify-management Removed an invalid message from @a:x in !room:test ($e2): `format` is a number, not a string. (invalid event)\n\
         ban !room:test @a:x (sending invalid events)\n\
         redact !room:test $e3 (invalid event)\n\
         notify-management Removed an invalid message from @a:x in !room:test ($e3): `m.mentions.user_ids` holds a number, not a user id. A second within 30 minutes: banned them. (invalid event)"
    );
}
