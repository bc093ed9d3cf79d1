//! Client-format Matrix events (as a homeserver serves them) → the contract's
//! [`Event`]. Converted once per event, then shared by every protection.
//!
//! Content is read leniently, field by field: any room member can send
//! content of any shape, the homeserver accepts it and clients show what
//! they understand, so an optional field of the wrong type reads as absent
//! (a message with a body is never dropped because of its `format` or
//! `m.mentions`). A required field (one without which the event means
//! nothing: its type, sender, a reaction's target, a membership) missing or
//! of the wrong type is an error naming the field; an event no protection
//! can act on (encrypted, already redacted, an unknown non-state type) is
//! `Ok(None)`.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::{
    Event, EventClass, EventKind, JoinRuleChange, MediaInfo, Membership, MembershipChange, Mentions, Message, Msgtype,
    PolicyChange, PolicyRule, PowerLevelsChange, Reaction, Redaction, RuleChange, RuleKind, StateChange, UserLevel,
};

/// Why an event could not be converted.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EventError {
    #[error("not a JSON event: {0}")]
    Json(String),
    #[error("field `{field}`: {problem}")]
    Field { field: &'static str, problem: String },
}

fn field(field: &'static str, problem: impl Into<String>) -> EventError {
    EventError::Field { field, problem: problem.into() }
}

/// The top level, each field still untyped so that a wrong type can be
/// named (required fields) or ignored (optional ones). `content` stays raw:
/// it is handed to protections as it came.
#[derive(Deserialize)]
struct RawEvent<'a> {
    room_id: Option<Value>,
    event_id: Option<Value>,
    sender: Option<Value>,
    #[serde(rename = "type")]
    kind: Option<Value>,
    state_key: Option<Value>,
    origin_server_ts: Option<Value>,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    redacts: Option<Value>,
    unsigned: Option<Value>,
}

/// Converts one client-format event; `received_ts` is set to the event's
/// own timestamp, which a caller receiving live events replaces with its
/// clock. `room_id` is used when the JSON has none
/// (the sync API leaves it out of timeline events); `previous` looks up a
/// user's membership before this event when `unsigned.prev_content` lacks it.
pub fn from_json(
    json: &str,
    room_id: Option<&str>,
    previous: &dyn Fn(&str, &str) -> Option<Membership>,
) -> Result<Option<Event>, EventError> {
    let raw: RawEvent<'_> = serde_json::from_str(json).map_err(|e| EventError::Json(e.to_string()))?;
    let room_id = match (raw.room_id, room_id) {
        (None | Some(Value::Null), Some(id)) => id.to_owned(),
        (id, _) => need_string(id, "room_id")?,
    };
    check_room_id(&room_id).map_err(|e| field("room_id", e))?;
    let event_id = need_string(raw.event_id, "event_id")?;
    check_event_id(&event_id).map_err(|e| field("event_id", e))?;
    let sender = need_string(raw.sender, "sender")?;
    check_user_id(&sender).map_err(|e| field("sender", e))?;
    let kind = need_string(raw.kind, "type")?;
    let origin_ts = match raw.origin_server_ts {
        None | Some(Value::Null) => return Err(field("origin_server_ts", "missing")),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| field("origin_server_ts", format!("`{n}` is not a timestamp (whole milliseconds)")))?,
        Some(other) => {
            return Err(field(
                "origin_server_ts",
                format!("is {}, not a timestamp (whole milliseconds)", type_name(&other)),
            ));
        }
    };
    let state_key = match raw.state_key {
        None | Some(Value::Null) => None,
        key => Some(need_string(key, "state_key")?),
    };
    let content = raw.content.ok_or_else(|| field("content", "missing"))?;
    if !content.get().trim_start().starts_with('{') {
        return Err(field("content", "not an object"));
    }
    let unsigned = raw.unsigned.as_ref().and_then(Value::as_object);
    if unsigned.and_then(|u| u.get("redacted_because")).is_some_and(|r| !r.is_null()) {
        return Ok(None);
    }
    let prev_content = unsigned.and_then(|u| object(u, "prev_content"));

    let kind = match (kind.as_str(), state_key) {
        ("m.room.message", None) => EventKind::Message(message(&object_of(content)?, false)),
        ("m.sticker", None) => EventKind::Message(message(&object_of(content)?, true)),
        ("m.reaction", None) => EventKind::Reaction(reaction(&object_of(content)?)?),
        ("m.room.redaction", None) => {
            let top_level = raw.redacts.as_ref().and_then(Value::as_str);
            EventKind::Redaction(redaction(&object_of(content)?, top_level))
        }
        ("m.room.member", Some(target)) => {
            check_user_id(&target).map_err(|e| field("state_key", e))?;
            let prev = prev_content
                .and_then(|p| string(p, "membership"))
                .and_then(parse_membership)
                .or_else(|| previous(&room_id, &target));
            EventKind::Membership(member(&object_of(content)?, target, prev)?)
        }
        ("m.room.join_rules", Some(key)) if key.is_empty() => {
            let content = object_of(content)?;
            match join_rule_of(&content) {
                Some(rule) => {
                    EventKind::JoinRule(JoinRuleChange { rule, previous: prev_content.and_then(join_rule_of) })
                }
                // A rule the contract has no word for (e.g. `knock_restricted`).
                None => EventKind::State(StateChange { event_type: "m.room.join_rules".to_owned(), state_key: key }),
            }
        }
        ("m.room.power_levels", Some(key)) if key.is_empty() => {
            let content = Value::Object(object_of(content)?);
            let (levels, users, _) = power_levels(&content);
            let mut users: Vec<UserLevel> = users.into_iter().map(|(user, level)| UserLevel { user, level }).collect();
            users.sort_by(|a, b| a.user.cmp(&b.user));
            let previous = prev_content.filter(|p| !p.is_empty()).map(|p| power_levels(&Value::Object(p.clone())).0);
            EventKind::PowerLevels(PowerLevelsChange { levels, users, previous })
        }
        (kind, Some(state_key)) => match rule_kind(kind) {
            Some(rule_kind) => {
                let prev = prev_content.filter(|p| !p.is_empty());
                match policy(&object_of(content)?, rule_kind, prev)? {
                    Some(change) => EventKind::Policy(change),
                    None => return Ok(None),
                }
            }
            None => EventKind::State(StateChange { event_type: kind.to_owned(), state_key }),
        },
        // Encrypted, call and unknown message-like events: nothing to act on.
        (_, None) => return Ok(None),
    };
    Ok(Some(Event {
        room_id,
        event_id,
        sender,
        origin_ts,
        received_ts: origin_ts,
        content: content.get().to_owned(),
        kind,
    }))
}

/// `join_rule` of `m.room.join_rules` content, when the contract has a word for it.
fn join_rule_of(content: &Map<String, Value>) -> Option<crate::JoinRule> {
    string(content, "join_rule").and_then(parse_join_rule)
}

/// A join rule as `m.room.join_rules` writes it, when the contract has a word for it.
pub fn parse_join_rule(text: &str) -> Option<crate::JoinRule> {
    use crate::JoinRule;
    Some(match text {
        "public" => JoinRule::Public,
        "invite" => JoinRule::Invite,
        "knock" => JoinRule::Knock,
        "restricted" => JoinRule::Restricted,
        "private" => JoinRule::Private,
        _ => return None,
    })
}

/// The levels the spec assumes when a room's power levels do not set them.
pub const DEFAULT_LEVELS: crate::RoomLevels = crate::RoomLevels {
    ban: 50,
    kick: 50,
    redact: 50,
    invite: 0,
    state_default: 50,
    events_default: 0,
    users_default: 0,
};

/// The levels of an `m.room.power_levels` content (the spec's defaults for
/// what it leaves out), its users' levels and its event types' levels. A
/// level written as a string of digits counts (older rooms have them).
pub(crate) fn power_levels(
    content: &Value,
) -> (crate::RoomLevels, std::collections::HashMap<String, i64>, std::collections::HashMap<String, i64>) {
    let as_level = |value: &Value| value.as_i64().or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()));
    let level = |key: &str, default: i64| content.get(key).and_then(as_level).unwrap_or(default);
    let levels = crate::RoomLevels {
        ban: level("ban", DEFAULT_LEVELS.ban),
        kick: level("kick", DEFAULT_LEVELS.kick),
        redact: level("redact", DEFAULT_LEVELS.redact),
        invite: level("invite", DEFAULT_LEVELS.invite),
        state_default: level("state_default", DEFAULT_LEVELS.state_default),
        events_default: level("events_default", DEFAULT_LEVELS.events_default),
        users_default: level("users_default", DEFAULT_LEVELS.users_default),
    };
    let map = |key: &str| -> std::collections::HashMap<String, i64> {
        content
            .get(key)
            .and_then(|u| u.as_object())
            .map(|u| u.iter().filter_map(|(k, v)| as_level(v).map(|l| (k.clone(), l))).collect())
            .unwrap_or_default()
    };
    (levels, map("users"), map("events"))
}

/// A required string at the top level.
fn need_string(value: Option<Value>, name: &'static str) -> Result<String, EventError> {
    match value {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(field(name, "missing")),
        Some(other) => Err(field(name, format!("is {}, not a string", type_name(&other)))),
    }
}

/// A required string inside content: `name` is its path for the error.
fn need_str<'a>(map: &'a Map<String, Value>, key: &str, name: &'static str) -> Result<&'a str, EventError> {
    match map.get(key) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(field(name, "missing")),
        Some(other) => Err(field(name, format!("is {}, not a string", type_name(other)))),
    }
}

/// An optional string: absent when missing or of another type.
fn string<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key).and_then(Value::as_str)
}

/// An optional object: absent when missing or of another type.
fn object<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Map<String, Value>> {
    map.get(key).and_then(Value::as_object)
}

/// The content as an object (checked to start with `{` already).
fn object_of(content: &RawValue) -> Result<Map<String, Value>, EventError> {
    serde_json::from_str(content.get()).map_err(|e| field("content", e.to_string()))
}

/// How a JSON value's type is named in error messages ("is a number, not a string").
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The class a protection subscribes to for events of this kind.
pub fn class(kind: &EventKind) -> EventClass {
    match kind {
        EventKind::Message(_) => EventClass::Message,
        EventKind::Membership(_) => EventClass::Membership,
        EventKind::State(_) => EventClass::State,
        EventKind::Redaction(_) => EventClass::Redaction,
        EventKind::Reaction(_) => EventClass::Reaction,
        EventKind::Report(_) => EventClass::Report,
        EventKind::Policy(_) => EventClass::Policy,
        EventKind::Tick => EventClass::Tick,
        EventKind::PowerLevels(_) => EventClass::PowerLevels,
        EventKind::JoinRule(_) => EventClass::JoinRule,
    }
}

/// A tick event at `now_ms`.
pub fn tick(now_ms: u64) -> Event {
    Event {
        room_id: String::new(),
        event_id: String::new(),
        sender: String::new(),
        origin_ts: now_ms,
        received_ts: now_ms,
        content: "{}".to_owned(),
        kind: EventKind::Tick,
    }
}

/// Never fails: every field of a message is optional.
fn message(content: &Map<String, Value>, sticker: bool) -> Message {
    let relates = object(content, "m.relates_to");
    let replaces = relates.filter(|r| string(r, "rel_type") == Some("m.replace")).and_then(|r| string(r, "event_id"));
    let in_reply_to = relates.and_then(|r| object(r, "m.in_reply_to")).and_then(|r| string(r, "event_id"));
    // An edit's visible text is its new content; the body `* new` is the
    // fallback for clients without edits, and what shows when the new
    // content has no body.
    let effective = match (replaces, object(content, "m.new_content")) {
        (Some(_), Some(new)) if new.get("body").is_some_and(|b| !b.is_null()) => new,
        _ => content,
    };
    let msgtype = if sticker { Msgtype::Sticker } else { msgtype(string(effective, "msgtype").unwrap_or("")) };
    // Some clients send a non-string body; protections still see its text.
    let body = match effective.get("body") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    };
    let formatted_body = string(effective, "formatted_body")
        .filter(|_| string(effective, "format") == Some("org.matrix.custom.html"))
        .map(str::to_owned);
    let mentions = object(effective, "m.mentions");
    let users: Vec<String> = mentions
        .and_then(|m| m.get("user_ids"))
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(|u| u.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let room = mentions.and_then(|m| m.get("room")).and_then(Value::as_bool).unwrap_or(false);
    let mentions = (!users.is_empty() || room).then_some(Mentions { users, room });
    let url = string(effective, "url").or_else(|| object(effective, "file").and_then(|f| string(f, "url")));
    let media = match (url, object(effective, "info")) {
        (None, None) => None,
        (url, info) => Some(MediaInfo {
            url: url.map(str::to_owned),
            mimetype: info.and_then(|i| string(i, "mimetype")).map(str::to_owned),
            size: info.and_then(|i| i.get("size")).and_then(Value::as_u64),
        }),
    };
    Message {
        msgtype,
        body,
        formatted_body,
        mentions,
        replaces: replaces.map(str::to_owned),
        in_reply_to: in_reply_to.map(str::to_owned),
        media,
    }
}

fn msgtype(text: &str) -> Msgtype {
    match text {
        "m.text" => Msgtype::Text,
        "m.notice" => Msgtype::Notice,
        "m.emote" => Msgtype::Emote,
        "m.image" => Msgtype::Image,
        "m.file" => Msgtype::File,
        "m.audio" => Msgtype::Audio,
        "m.video" => Msgtype::Video,
        "m.location" => Msgtype::Location,
        other => Msgtype::Other(other.to_owned()),
    }
}

/// A reaction names the event it reacts to, or it means nothing.
fn reaction(content: &Map<String, Value>) -> Result<Reaction, EventError> {
    let relates = match content.get("m.relates_to") {
        Some(Value::Object(relates)) => relates,
        None | Some(Value::Null) => return Err(field("content.m.relates_to", "missing")),
        Some(other) => {
            return Err(field("content.m.relates_to", format!("is {}, not an object", type_name(other))));
        }
    };
    Ok(Reaction {
        relates_to: need_str(relates, "event_id", "content.m.relates_to.event_id")?.to_owned(),
        key: string(relates, "key").unwrap_or_default().to_owned(),
    })
}

/// Room version 11 moved `redacts` into content; older versions have it on top.
fn redaction(content: &Map<String, Value>, top_level: Option<&str>) -> Redaction {
    Redaction {
        redacts: string(content, "redacts").or(top_level).map(str::to_owned),
        reason: string(content, "reason").map(str::to_owned),
    }
}

/// The membership is required (the homeserver's auth rules require it too).
fn member(
    content: &Map<String, Value>,
    target: String,
    previous: Option<Membership>,
) -> Result<MembershipChange, EventError> {
    let text = need_str(content, "membership", "content.membership")?;
    let membership = parse_membership(text).ok_or_else(|| field("content.membership", format!("unknown `{text}`")))?;
    Ok(MembershipChange {
        target,
        membership,
        previous,
        reason: string(content, "reason").map(str::to_owned),
        displayname: string(content, "displayname").map(str::to_owned),
    })
}

pub(crate) fn parse_membership(text: &str) -> Option<Membership> {
    Some(match text {
        "invite" => Membership::Invite,
        "join" => Membership::Join,
        "leave" => Membership::Leave,
        "ban" => Membership::Ban,
        "knock" => Membership::Knock,
        _ => return None,
    })
}

/// The rule kind of a policy event type, current or legacy.
pub fn rule_kind(event_type: &str) -> Option<RuleKind> {
    Some(match event_type {
        "m.policy.rule.user" | "m.room.rule.user" | "org.matrix.mjolnir.rule.user" => RuleKind::User,
        "m.policy.rule.room" | "m.room.rule.room" | "org.matrix.mjolnir.rule.room" => RuleKind::Room,
        "m.policy.rule.server" | "m.room.rule.server" | "org.matrix.mjolnir.rule.server" => RuleKind::Server,
        _ => return None,
    })
}

/// A rule needs an entity (or, MSC4205, the sha256 of one) and a
/// recommendation; its reason is optional.
fn policy(
    content: &Map<String, Value>,
    kind: RuleKind,
    prev: Option<&Map<String, Value>>,
) -> Result<Option<PolicyChange>, EventError> {
    if content.is_empty() {
        // `{}` replaces a rule to remove it; say which rule when we know.
        let Some(prev) = prev else { return Ok(None) };
        let Ok(Some(mut removed)) = policy(prev, kind, None) else { return Ok(None) };
        removed.change = RuleChange::Removed;
        return Ok(Some(removed));
    }
    // The first of the two hash fields that holds a sha256.
    let sha256 = ["hashes", "org.matrix.msc4205.hashes"]
        .iter()
        .find_map(|key| object(content, key).and_then(|h| string(h, "sha256")))
        .map(str::to_owned);
    let entity = string(content, "entity").map(str::to_owned);
    if entity.is_none() && sha256.is_none() {
        let problem = match content.get("entity") {
            None | Some(Value::Null) => "missing (and no hashes.sha256)".to_owned(),
            Some(other) => format!("is {}, not a string (and no hashes.sha256)", type_name(other)),
        };
        return Err(field("content.entity", problem));
    }
    let recommendation = need_str(content, "recommendation", "content.recommendation")?.to_owned();
    let rule = PolicyRule {
        kind,
        entity,
        entity_sha256: sha256,
        recommendation,
        reason: string(content, "reason").unwrap_or_default().to_owned(),
    };
    let change = if prev.is_none() { RuleChange::Added } else { RuleChange::Modified };
    Ok(Some(PolicyChange { change, rule }))
}

/// `@localpart:server`, at most 255 bytes.
pub fn check_user_id(id: &str) -> Result<(), String> {
    if id.len() > 255 {
        return Err(format!("`{}…` is longer than 255 bytes", truncate(id, 32)));
    }
    match id.strip_prefix('@').and_then(|rest| rest.split_once(':')) {
        Some((local, server)) if !local.is_empty() && !server.is_empty() && !id.contains(char::is_whitespace) => Ok(()),
        _ => Err(format!("`{}` is not a user id (@user:server)", truncate(id, 64))),
    }
}

/// `!opaque` or `!opaque:server`. Never parse a server out of it.
pub fn check_room_id(id: &str) -> Result<(), String> {
    if id.len() > 255 {
        return Err(format!("`{}…` is longer than 255 bytes", truncate(id, 32)));
    }
    match id.strip_prefix('!') {
        Some(rest) if !rest.is_empty() && !id.contains(char::is_whitespace) => Ok(()),
        _ => Err(format!("`{}` is not a room id (!room)", truncate(id, 64))),
    }
}

/// `$opaque`.
pub fn check_event_id(id: &str) -> Result<(), String> {
    if id.len() > 255 {
        return Err(format!("`{}…` is longer than 255 bytes", truncate(id, 32)));
    }
    match id.strip_prefix('$') {
        Some(rest) if !rest.is_empty() && !id.contains(char::is_whitespace) => Ok(()),
        _ => Err(format!("`{}` is not an event id ($event)", truncate(id, 64))),
    }
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz;
