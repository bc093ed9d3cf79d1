//! Fuzz test of event conversion: event JSON of any shape, as a homeserver
//! relays what any room member (or a remote server) sent. Run longer with
//! `cargo xtask fuzz`.

use gleipnir_fuzz::structured::{self, Vocabulary, chance, pick};
use gleipnir_fuzz::{Unstructured, arbitrary};
use serde_json::{Map, Value, json};

use super::*;

const TYPES: &[&str] = &[
    "m.room.message",
    "m.sticker",
    "m.reaction",
    "m.room.redaction",
    "m.room.member",
    "m.policy.rule.user",
    "m.policy.rule.server",
    "m.room.rule.room",
    "org.matrix.mjolnir.rule.user",
    "m.room.encrypted",
    "m.room.topic",
    "m.room.power_levels",
    "m.room.create",
    "",
];

const KEYS: &[&str] = &[
    "msgtype",
    "body",
    "format",
    "formatted_body",
    "m.mentions",
    "user_ids",
    "room",
    "m.relates_to",
    "rel_type",
    "event_id",
    "key",
    "m.in_reply_to",
    "m.new_content",
    "url",
    "file",
    "info",
    "mimetype",
    "size",
    "membership",
    "reason",
    "displayname",
    "redacts",
    "entity",
    "recommendation",
    "hashes",
    "sha256",
    "org.matrix.msc4205.hashes",
    "users",
    "users_default",
    "ban",
    "kick",
    "state_default",
    "room_version",
    "additional_creators",
];

const STRINGS: &[&str] = &[
    "m.text",
    "m.notice",
    "m.image",
    "org.matrix.custom.html",
    "m.replace",
    "m.annotation",
    "$event",
    "@user:example.org",
    "!room:example.org",
    "join",
    "leave",
    "ban",
    "invite",
    "knock",
    "m.ban",
    "m.takedown",
    "@*:evil.example",
    "mxc://example.org/media",
    "image/png",
    "hello",
    "<b>hi</b>",
    "abc=",
];

/// `value` most of the time; else absent or anything at all (a remote
/// server can send any top level).
fn usually(u: &mut Unstructured<'_>, top: &mut Map<String, Value>, key: &str, value: Value) -> arbitrary::Result<()> {
    let vocabulary = Vocabulary { keys: KEYS, strings: STRINGS };
    match u.int_in_range(0..=19u8)? {
        0 => {}
        1 => {
            top.insert(key.to_owned(), structured::value(u, vocabulary, 1)?);
        }
        _ => {
            top.insert(key.to_owned(), value);
        }
    }
    Ok(())
}

/// An event: a mostly well-formed top level (so the content is reached)
/// around content built from known fields with values of any type.
fn event(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let vocabulary = Vocabulary { keys: KEYS, strings: STRINGS };
    let mut top = Map::new();
    if chance(u, 50)? {
        usually(u, &mut top, "room_id", json!("!room:example.org"))?;
    }
    usually(u, &mut top, "event_id", json!("$event"))?;
    usually(u, &mut top, "sender", json!("@user:example.org"))?;
    let kind = json!(pick(u, TYPES)?);
    usually(u, &mut top, "type", kind)?;
    usually(u, &mut top, "origin_server_ts", json!(1_700_000_000_000u64))?;
    if chance(u, 40)? {
        let key = structured::text(u, &["", "@user:example.org", "k"])?;
        usually(u, &mut top, "state_key", json!(key))?;
    }
    let mut content = structured::object(u, vocabulary, 3)?;
    if chance(u, 60)? {
        content.insert("body".into(), json!(structured::text(u, STRINGS)?));
    }
    usually(u, &mut top, "content", Value::Object(content))?;
    if chance(u, 20)? {
        top.insert("redacts".into(), structured::value(u, vocabulary, 1)?);
    }
    if chance(u, 30)? {
        let unsigned = structured::object(
            u,
            Vocabulary { keys: &["prev_content", "redacted_because", "membership"], strings: STRINGS },
            2,
        )?;
        top.insert("unsigned".into(), Value::Object(unsigned));
    }
    structured::maybe_truncated(u, Value::Object(top).to_string())
}

/// Whether `input` is a message a client would show: a well-formed top
/// level, not redacted, and a string body.
fn shown_message(input: &str) -> bool {
    let Ok(Value::Object(top)) = serde_json::from_str::<Value>(input) else { return false };
    let text = |key: &str| top.get(key).and_then(Value::as_str);
    let room_ok = match top.get("room_id") {
        None | Some(Value::Null) => true,
        Some(Value::String(id)) => check_room_id(id).is_ok(),
        Some(_) => false,
    };
    room_ok
        && text("event_id").is_some_and(|id| check_event_id(id).is_ok())
        && text("sender").is_some_and(|id| check_user_id(id).is_ok())
        && matches!(text("type"), Some("m.room.message" | "m.sticker"))
        && top.get("state_key").is_none_or(Value::is_null)
        && top.get("origin_server_ts").and_then(Value::as_u64).is_some()
        && top.get("unsigned").and_then(|u| u.get("redacted_because")).is_none_or(Value::is_null)
        && top.get("content").and_then(|c| c.get("body")).is_some_and(Value::is_string)
}

/// State events also go into the room state the host answers queries from.
fn apply_state(input: &str) {
    let Ok(Value::Object(top)) = serde_json::from_str::<Value>(input) else { return };
    let text = |key: &str| top.get(key).and_then(Value::as_str).unwrap_or_default();
    let (Some(kind), Some(key)) =
        (top.get("type").and_then(Value::as_str), top.get("state_key").and_then(Value::as_str))
    else {
        return;
    };
    let rooms = crate::rooms::RoomStates::new();
    let ts = top.get("origin_server_ts").and_then(Value::as_u64).unwrap_or(0);
    let content = top.get("content").map(Value::to_string).unwrap_or_default();
    let _ = rooms.apply("!r", kind, key, text("sender"), ts, &content);
    let _ = (rooms.power_level("!r", key), rooms.room_levels("!r"), rooms.membership("!r", key), rooms.joined("!r"));
}

fn check(input: &str) {
    apply_state(input);
    let converted = from_json(input, Some("!fallback"), &|_, _| Some(Membership::Join));
    if shown_message(input) {
        match &converted {
            Ok(Some(Event { kind: EventKind::Message(_), .. })) => {}
            // The top level is read strictly: a repeated field is refused.
            Err(EventError::Json(e)) if e.contains("duplicate field") => {}
            other => panic!("a message clients show was not converted: {other:?}"),
        }
    }
}

#[test]
fn fuzz_event_json() {
    gleipnir_fuzz::fuzz("event-json", event, check);
}
