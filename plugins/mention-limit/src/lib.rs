//! Mention limit: a message that mentions more than `max-mentions` users
//! is redacted and its sender warned in the room; a second one within
//! `repeat-within` bans them. For every member, newcomers or not (the
//! least-authority protection keeps its own, stricter rule for newcomers);
//! room moderators and the bot are never acted on.
//!
//! Mentions are the users in the message's `m.mentions` (an edit's new
//! content counts the same way). With `include-legacy-mentions`, user ids
//! written in the body (`@name:server`) count too, for clients that do not
//! send `m.mentions`; each user counts once however often they are named.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use gleipnir_sdk::prelude::*;

gleipnir_sdk::settings! {
    pub struct Config {
        /// More users than this mentioned in one message is too many.
        max_mentions: u32 = 3, min 0, max 1000;
        /// Said to the sender in the room when their message is removed; `{user}` is replaced by them.
        warning_text: String = "{user}: you have mentioned too many users in this message, so it was removed.".to_owned();
        /// Also count user ids written in the body (`@name:server`), for clients that do not send `m.mentions`.
        include_legacy_mentions: bool = false;
        /// A second message with too many mentions within this time bans the sender.
        repeat_within: Duration = Duration::from_secs(30 * 60);
        /// The reason given with redactions and bans.
        reason: String = "too many mentions".to_owned();
    }
}

/// Who was warned, and when (received time, ms), per room.
#[derive(Default)]
pub struct MentionLimit {
    config: Config,
    warned: BTreeMap<(String, String), u64>,
}

/// The users `message` mentions: `m.mentions`, and with `legacy` the user
/// ids written in its body; each once.
pub fn mentioned(message: &Message, legacy: bool) -> BTreeSet<String> {
    let mut users: BTreeSet<String> = message.mentions.iter().flat_map(|m| m.users.iter().cloned()).collect();
    if legacy {
        users.extend(message.body.split(|c: char| c.is_whitespace() || ",;()<>\"'".contains(c)).filter_map(user_id));
    }
    users
}

/// `word` as a user id (`@local:server`, trailing punctuation left out).
fn user_id(word: &str) -> Option<String> {
    let word = word.trim_end_matches(['.', '!', '?', ':']);
    let (local, server) = word.strip_prefix('@')?.split_once(':')?;
    let local_ok = !local.is_empty() && local.chars().all(|c| c.is_ascii_alphanumeric() || "._=-/+".contains(c));
    let server_ok = !server.is_empty() && server.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
    (local_ok && server_ok).then(|| word.to_owned())
}

impl Protection for MentionLimit {
    const NAME: &'static str = "mention-limit";
    const SUMMARY: &'static str =
        "Redacts a message that mentions too many users and warns the sender; a second one soon after bans them.";
    const CAPABILITIES: &'static [Capability] =
        &[Capability::Redact, Capability::Ban, Capability::SendNotice, Capability::NotifyManagement];
    const EVENTS: &'static [EventClass] = &[EventClass::Message];
    type Settings = Config;

    fn configure(&mut self, config: Config) -> Result<(), String> {
        self.config = config;
        Ok(())
    }

    fn handle(&mut self, event: &Event, host: &dyn Host) -> Vec<Action> {
        let EventKind::Message(message) = &event.kind else { return Vec::new() };
        let count = mentioned(message, self.config.include_legacy_mentions).len();
        if count <= self.config.max_mentions as usize || host.is_exempt(&event.room_id, &event.sender) {
            return Vec::new();
        }
        let now = event.received_ts;
        let window = u64::try_from(self.config.repeat_within.as_millis()).unwrap_or(u64::MAX);
        self.forget_before(now.saturating_sub(window));
        let key = (event.room_id.clone(), event.sender.clone());
        let reason = self.config.reason.clone();
        let mut actions = vec![Action::redact(event, &reason)];
        match self.warned.get(&key) {
            Some(at) if now.saturating_sub(*at) < window => {
                self.warned.remove(&key);
                actions.insert(0, Action::ban(&event.room_id, &event.sender, &reason));
                actions.push(Action::notify(
                    &format!(
                        "{} mentioned {count} users in {} a second time within {}: banned them (limit {}).",
                        event.sender,
                        event.room_id,
                        gleipnir_sdk::text::duration(self.config.repeat_within),
                        self.config.max_mentions
                    ),
                    &reason,
                ));
            }
            _ => {
                self.warned.insert(key, now);
                let warning = self.config.warning_text.replace("{user}", &event.sender);
                actions.push(Action::notice(&event.room_id, &warning, &reason));
            }
        }
        actions
    }

    /// Who was warned when, so a swap or a restart keeps the second
    /// strike: `mention-limit-v1`, then `ms room user` per line.
    fn snapshot(&self) -> Vec<u8> {
        let mut out = String::new();
        for ((room, user), at) in &self.warned {
            out.push_str(&format!("{at} {room} {user}\n"));
        }
        gleipnir_sdk::state::tagged(STATE_V1, out.as_bytes())
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let (_, body) = gleipnir_sdk::state::expect(state, &[STATE_V1])?;
        let text = std::str::from_utf8(body).map_err(|_| "the state is not UTF-8".to_owned())?;
        for line in text.lines() {
            let mut parts = line.split(' ');
            let (Some(at), Some(room), Some(user), None) = (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(format!("a line of the state is not `ms room user`: {line}"));
            };
            let at = at.parse().map_err(|_| format!("`{at}` is not a time"))?;
            self.warned.insert((room.to_owned(), user.to_owned()), at);
        }
        Ok(())
    }
}

impl MentionLimit {
    /// Forgets warnings older than `before` (they no longer lead to a ban).
    fn forget_before(&mut self, before: u64) {
        if self.warned.len() > 1000 {
            self.warned.retain(|_, at| *at >= before);
        }
    }
}

/// The format tag of the state this version writes (`gleipnir_sdk::state`).
const STATE_V1: &str = "mention-limit-v1";

gleipnir_sdk::export_protection!(MentionLimit);

#[cfg(test)]
mod tests;
