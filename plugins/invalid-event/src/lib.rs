//! Invalid events: a message whose content a client cannot render safely
//! (a known field of the wrong type, a body over `max-body-bytes`, mentions
//! that are not user ids, an edit whose new content is itself invalid) is
//! redacted, its sender warned in the room, and a copy of the content kept
//! in the management room (cut to a readable length); a second one from the
//! same sender within `repeat-within` bans them from the room. Draupnir's
//! InvalidEventProtection, which does not look inside edits, has no size
//! limit, and acts on moderators and the bot too; here they are never acted
//! on.

use std::collections::BTreeMap;
use std::time::Duration;

use gleipnir_sdk::json::{self, Value};
use gleipnir_sdk::prelude::*;
use gleipnir_sdk::text;

gleipnir_sdk::settings! {
    pub struct Config {
        /// Said to the sender in the room when their first invalid message is removed; `{user}` is replaced by them.
        warning_text: String = "{user}: you sent an invalid event that could cause problems in some Matrix clients, so it was removed.".to_owned();
        /// A body (or formatted body) longer than this many bytes is invalid (0: no limit).
        max_body_bytes: u32 = 32_768, min 0, max 1_000_000;
        /// A second invalid message within this time bans the sender.
        repeat_within: Duration = Duration::from_secs(30 * 60);
        /// Keep a copy of the invalid content in the management room.
        copy_to_management: bool = true;
        /// The reason given with redactions.
        reason: String = "invalid event".to_owned();
        /// The reason given with the ban.
        ban_reason: String = "sending invalid events".to_owned();
    }
}

/// The longest copy of content kept in the management room, in characters.
const COPY_CHARS: usize = 1000;

#[derive(Default)]
pub struct InvalidEvent {
    config: Config,
    /// When each sender last sent an invalid message (ms), per room.
    offences: BTreeMap<(String, String), u64>,
}

fn is_user_id(text: &str) -> bool {
    text.strip_prefix('@')
        .and_then(|rest| rest.split_once(':'))
        .is_some_and(|(local, server)| !local.is_empty() && !server.is_empty())
}

/// What is wrong with message `content` (the first problem found), if anything.
pub fn problem(content: &Value, max_body: usize) -> Option<String> {
    problem_in(content, max_body, "")
}

fn problem_in(content: &Value, max_body: usize, at: &str) -> Option<String> {
    let Value::Object(_) = content else { return Some(format!("{at}content is {}, not an object", content.kind())) };
    let not = |key: &str, v: &Value, want: &str| Some(format!("`{at}{key}` is {}, not {want}", v.kind()));
    for key in ["body", "formatted_body", "format", "msgtype", "url", "thumbnail_url"] {
        if let Some(v) = content.get(key).filter(|v| !matches!(v, Value::String(_))) {
            return not(key, v, "a string");
        }
    }
    if content.get("formatted_body").is_some() && content.get("format").is_none() {
        return Some(format!("`{at}formatted_body` comes without a `format`"));
    }
    for key in ["body", "formatted_body"] {
        let len = content.get(key).and_then(Value::as_str).map_or(0, str::len);
        if max_body > 0 && len > max_body {
            return Some(format!("`{at}{key}` is {len} bytes long, over the limit of {max_body}"));
        }
    }
    if let Some(file) = content.get("file") {
        if !file.is_object() {
            return not("file", file, "an object");
        }
        if file.get("url").and_then(Value::as_str).is_none() {
            return Some(format!("`{at}file` has no `url` string"));
        }
    }
    if let Some(mentions) = content.get("m.mentions") {
        if !mentions.is_object() {
            return not("m.mentions", mentions, "an object");
        }
        if let Some(room) = mentions.get("room").filter(|r| !matches!(r, Value::Bool(_))) {
            return not("m.mentions.room", room, "a boolean");
        }
        if let Some(users) = mentions.get("user_ids") {
            let Some(users) = users.as_array() else { return not("m.mentions.user_ids", users, "an array") };
            if let Some(bad) = users.iter().find(|u| !u.as_str().is_some_and(is_user_id)) {
                return Some(format!("`{at}m.mentions.user_ids` holds {}, not a user id", describe(bad)));
            }
        }
    }
    if let Some(blocks) = content.get("m.text") {
        let Some(blocks) = blocks.as_array() else { return not("m.text", blocks, "an array") };
        let bad = |b: &Value| {
            !b.is_object()
                || b.get("body").and_then(Value::as_str).is_none()
                || b.get("mimetype").is_some_and(|m| m.as_str().is_none())
        };
        if blocks.iter().any(bad) {
            return Some(format!("`{at}m.text` holds a block without a `body` string"));
        }
    }
    if let Some(new) = content.get("m.new_content") {
        if !new.is_object() {
            return not("m.new_content", new, "an object");
        }
        if at.is_empty() {
            return problem_in(new, max_body, "m.new_content.");
        }
    }
    None
}

/// A value as a moderator reads it in a message: strings quoted and cut short.
fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("“{}”", s.chars().take(40).collect::<String>()),
        other => other.kind().to_owned(),
    }
}

impl Protection for InvalidEvent {
    const NAME: &'static str = "invalid-event";
    const SUMMARY: &'static str = "Redacts messages that clients cannot render (wrong field types, oversized bodies, bad mentions); bans on a repeat.";
    const CAPABILITIES: &'static [Capability] =
        &[Capability::Redact, Capability::Ban, Capability::SendNotice, Capability::NotifyManagement];
    const EVENTS: &'static [EventClass] = &[EventClass::Message];
    type Settings = Config;

    fn configure(&mut self, config: Config) -> Result<(), String> {
        self.config = config;
        Ok(())
    }

    fn handle(&mut self, event: &Event, host: &dyn Host) -> Vec<Action> {
        let EventKind::Message(_) = &event.kind else { return Vec::new() };
        let (room, user) = (event.room_id.as_str(), event.sender.as_str());
        if host.is_exempt(room, user) {
            return Vec::new();
        }
        let problem = match json::parse(&event.content) {
            Ok(content) => problem(&content, self.config.max_body_bytes as usize),
            Err(e) => Some(format!("its content is not JSON ({e})")),
        };
        let Some(problem) = problem else { return Vec::new() };
        let now = event.received_ts;
        let window = u64::try_from(self.config.repeat_within.as_millis()).unwrap_or(u64::MAX);
        if self.offences.len() > 10_000 {
            self.offences.retain(|_, at| now.saturating_sub(*at) < window);
        }
        let key = (room.to_owned(), user.to_owned());
        let repeat = self.offences.get(&key).is_some_and(|at| now.saturating_sub(*at) < window);
        let mut actions = Vec::new();
        if repeat {
            self.offences.remove(&key);
            actions.push(Action::ban(room, user, &self.config.ban_reason));
        } else {
            self.offences.insert(key, now);
        }
        actions.push(Action::redact(event, &self.config.reason));
        if !repeat {
            let warning = self.config.warning_text.replace("{user}", user);
            actions.push(Action::notice(room, &warning, &self.config.reason));
        }
        let banned = if repeat {
            format!(" A second within {}: banned them.", text::duration(self.config.repeat_within))
        } else {
            String::new()
        };
        let mut body =
            format!("Removed an invalid message from {user} in {room} ({}): {problem}.{banned}", event.event_id);
        if self.config.copy_to_management {
            let copy: String = event.content.chars().take(COPY_CHARS).collect();
            let cut = if copy.len() < event.content.len() { " (cut)" } else { "" };
            body.push_str(&format!("\nIts content{cut}:\n{copy}"));
        }
        actions.push(Action::notify(&body, &self.config.reason));
        actions
    }

    /// `invalid-event-v1`, then `MS ROOM USER` per recent offence.
    fn snapshot(&self) -> Vec<u8> {
        let mut out = String::new();
        for ((room, user), at) in &self.offences {
            out.push_str(&format!("{at} {room} {user}\n"));
        }
        gleipnir_sdk::state::tagged(STATE_V1, out.as_bytes())
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let (_, body) = gleipnir_sdk::state::expect(state, &[STATE_V1])?;
        let text = std::str::from_utf8(body).map_err(|_| "the state is not UTF-8".to_owned())?;
        let mut offences = BTreeMap::new();
        for line in text.lines() {
            let words: Vec<&str> = line.split(' ').collect();
            let [at, room, user] = words.as_slice() else {
                return Err(format!("a line of the state is not `ms room user`: {line}"));
            };
            let at = at.parse().map_err(|_| format!("`{at}` is not a time"))?;
            offences.insert(((*room).to_owned(), (*user).to_owned()), at);
        }
        self.offences = offences;
        Ok(())
    }
}

/// The format tag of the state this version writes (`gleipnir_sdk::state`).
const STATE_V1: &str = "invalid-event-v1";

gleipnir_sdk::export_protection!(InvalidEvent);

#[cfg(test)]
mod tests;
