//! Client-format Matrix events (as a homeserver serves them) → the contract's
//! [`Event`]. Converted once per event, then shared by every protection.
//!
//! A malformed event is an error naming the field; an event no protection
//! can act on (encrypted, already redacted, an unknown non-state type) is
//! `Ok(None)`.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{
    Event, EventClass, EventKind, MediaInfo, Membership, MembershipChange, Mentions, Message, Msgtype, PolicyChange,
    PolicyRule, Reaction, Redaction, RuleChange, RuleKind, StateChange,
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

#[derive(Deserialize)]
struct RawEvent<'a> {
    room_id: Option<String>,
    event_id: Option<String>,
    sender: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    state_key: Option<String>,
    origin_server_ts: Option<u64>,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    redacts: Option<String>,
    #[serde(default)]
    unsigned: Unsigned,
}

#[derive(Deserialize, Default)]
struct Unsigned {
    redacted_because: Option<serde::de::IgnoredAny>,
    prev_content: Option<serde_json::Value>,
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
        (Some(id), _) => id,
        (None, Some(id)) => id.to_owned(),
        (None, None) => return Err(field("room_id", "missing")),
    };
    check_room_id(&room_id).map_err(|e| field("room_id", e))?;
    let event_id = raw.event_id.ok_or_else(|| field("event_id", "missing"))?;
    check_event_id(&event_id).map_err(|e| field("event_id", e))?;
    let sender = raw.sender.ok_or_else(|| field("sender", "missing"))?;
    check_user_id(&sender).map_err(|e| field("sender", e))?;
    let kind = raw.kind.ok_or_else(|| field("type", "missing"))?;
    let origin_ts = raw.origin_server_ts.ok_or_else(|| field("origin_server_ts", "missing"))?;
    let content = raw.content.ok_or_else(|| field("content", "missing"))?;
    if !content.get().trim_start().starts_with('{') {
        return Err(field("content", "not an object"));
    }
    if raw.unsigned.redacted_because.is_some() {
        return Ok(None);
    }

    let kind = match (kind.as_str(), raw.state_key) {
        ("m.room.message", None) => EventKind::Message(message(content.get(), false)?),
        ("m.sticker", None) => EventKind::Message(message(content.get(), true)?),
        ("m.reaction", None) => EventKind::Reaction(reaction(content.get())?),
        ("m.room.redaction", None) => EventKind::Redaction(redaction(content.get(), raw.redacts)?),
        ("m.room.member", Some(target)) => {
            check_user_id(&target).map_err(|e| field("state_key", e))?;
            let prev = raw
                .unsigned
                .prev_content
                .as_ref()
                .and_then(|p| p.get("membership"))
                .and_then(|m| m.as_str())
                .and_then(parse_membership)
                .or_else(|| previous(&room_id, &target));
            EventKind::Membership(member(content.get(), target, prev)?)
        }
        (kind, Some(state_key)) => match rule_kind(kind) {
            Some(rule_kind) => {
                let prev = raw.unsigned.prev_content.as_ref().filter(|p| p.as_object().is_some_and(|o| !o.is_empty()));
                match policy(content.get(), rule_kind, prev)? {
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

#[derive(Deserialize)]
struct MessageContent {
    msgtype: Option<String>,
    body: Option<serde_json::Value>,
    format: Option<String>,
    formatted_body: Option<String>,
    #[serde(rename = "m.mentions")]
    mentions: Option<RawMentions>,
    #[serde(rename = "m.relates_to")]
    relates_to: Option<RelatesTo>,
    #[serde(rename = "m.new_content")]
    new_content: Option<Box<MessageContent>>,
    url: Option<String>,
    file: Option<EncryptedFile>,
    info: Option<Info>,
}

#[derive(Deserialize, Default)]
struct RawMentions {
    #[serde(default)]
    user_ids: Vec<serde_json::Value>,
    #[serde(default)]
    room: bool,
}

#[derive(Deserialize)]
struct RelatesTo {
    rel_type: Option<String>,
    event_id: Option<String>,
    key: Option<String>,
    #[serde(rename = "m.in_reply_to")]
    in_reply_to: Option<InReplyTo>,
}

#[derive(Deserialize)]
struct InReplyTo {
    event_id: Option<String>,
}

#[derive(Deserialize)]
struct EncryptedFile {
    url: Option<String>,
}

#[derive(Deserialize)]
struct Info {
    mimetype: Option<String>,
    size: Option<serde_json::Value>,
}

fn content_of<'a, T: Deserialize<'a>>(json: &'a str) -> Result<T, EventError> {
    serde_json::from_str(json).map_err(|e| field("content", e.to_string()))
}

fn message(json: &str, sticker: bool) -> Result<Message, EventError> {
    let content: MessageContent = content_of(json)?;
    let relates = content.relates_to.as_ref();
    let replaces = relates.filter(|r| r.rel_type.as_deref() == Some("m.replace")).and_then(|r| r.event_id.clone());
    let in_reply_to = relates.and_then(|r| r.in_reply_to.as_ref()).and_then(|r| r.event_id.clone());
    // An edit's visible text is its new content; the fallback body is `* old`.
    let effective = match (&replaces, content.new_content) {
        (Some(_), Some(new)) => *new,
        (_, _) => MessageContent { relates_to: None, new_content: None, ..content },
    };
    let msgtype = if sticker { Msgtype::Sticker } else { msgtype(effective.msgtype.as_deref().unwrap_or("")) };
    // Some clients send a non-string body; protections still see its text.
    let body = match &effective.body {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let formatted_body =
        effective.formatted_body.filter(|_| effective.format.as_deref() == Some("org.matrix.custom.html"));
    let mentions = effective.mentions.unwrap_or_default();
    let users: Vec<String> = mentions.user_ids.into_iter().filter_map(|u| u.as_str().map(str::to_owned)).collect();
    let mentions = (!users.is_empty() || mentions.room).then_some(Mentions { users, room: mentions.room });
    let url = effective.url.or(effective.file.and_then(|f| f.url));
    let media = match (url, effective.info) {
        (None, None) => None,
        (url, info) => {
            let (mimetype, size) = info.map_or((None, None), |i| (i.mimetype, i.size.and_then(|s| s.as_u64())));
            Some(MediaInfo { url, mimetype, size })
        }
    };
    Ok(Message { msgtype, body, formatted_body, mentions, replaces, in_reply_to, media })
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

fn reaction(json: &str) -> Result<Reaction, EventError> {
    #[derive(Deserialize)]
    struct Content {
        #[serde(rename = "m.relates_to")]
        relates_to: Option<RelatesTo>,
    }
    let content: Content = content_of(json)?;
    let relates = content.relates_to.ok_or_else(|| field("content.m.relates_to", "missing"))?;
    Ok(Reaction {
        relates_to: relates.event_id.ok_or_else(|| field("content.m.relates_to.event_id", "missing"))?,
        key: relates.key.unwrap_or_default(),
    })
}

fn redaction(json: &str, top_level: Option<String>) -> Result<Redaction, EventError> {
    #[derive(Deserialize)]
    struct Content {
        redacts: Option<String>,
        reason: Option<String>,
    }
    let content: Content = content_of(json)?;
    // Room version 11 moved `redacts` into content; older versions have it on top.
    Ok(Redaction { redacts: content.redacts.or(top_level), reason: content.reason })
}

fn member(json: &str, target: String, previous: Option<Membership>) -> Result<MembershipChange, EventError> {
    #[derive(Deserialize)]
    struct Content {
        membership: Option<String>,
        reason: Option<String>,
        displayname: Option<serde_json::Value>,
    }
    let content: Content = content_of(json)?;
    let text = content.membership.ok_or_else(|| field("content.membership", "missing"))?;
    let membership = parse_membership(&text).ok_or_else(|| field("content.membership", format!("unknown `{text}`")))?;
    Ok(MembershipChange {
        target,
        membership,
        previous,
        reason: content.reason,
        displayname: content.displayname.and_then(|d| d.as_str().map(str::to_owned)),
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

fn policy(json: &str, kind: RuleKind, prev: Option<&serde_json::Value>) -> Result<Option<PolicyChange>, EventError> {
    #[derive(Deserialize)]
    struct Content {
        entity: Option<String>,
        recommendation: Option<String>,
        reason: Option<String>,
        hashes: Option<Hashes>,
        #[serde(rename = "org.matrix.msc4205.hashes")]
        msc4205_hashes: Option<Hashes>,
    }
    #[derive(Deserialize)]
    struct Hashes {
        sha256: Option<String>,
    }
    let value: serde_json::Map<String, serde_json::Value> = content_of(json)?;
    if value.is_empty() {
        // `{}` replaces a rule to remove it; say which rule when we know.
        let Some(prev) = prev else { return Ok(None) };
        let Ok(Some(mut removed)) = policy(&prev.to_string(), kind, None) else { return Ok(None) };
        removed.change = RuleChange::Removed;
        return Ok(Some(removed));
    }
    let content: Content = content_of(json)?;
    let sha256 = content.hashes.or(content.msc4205_hashes).and_then(|h| h.sha256);
    if content.entity.is_none() && sha256.is_none() {
        return Err(field("content.entity", "missing (and no hashes.sha256)"));
    }
    let recommendation = content.recommendation.ok_or_else(|| field("content.recommendation", "missing"))?;
    let rule = PolicyRule {
        kind,
        entity: content.entity,
        entity_sha256: sha256,
        recommendation,
        reason: content.reason.unwrap_or_default(),
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
