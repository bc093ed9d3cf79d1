//! Display names: a member whose display name holds one of `words`, or
//! reads the same as a room moderator's name (impersonation), is kicked,
//! banned, or reported to the management room (`consequence`). Checked when
//! they join and whenever they change their name or avatar; with the
//! homeserver's module the change (or the join) is refused before it lands.
//!
//! Names are compared folded (`gleipnir_sdk::text::fold`: case, accents,
//! look-alike letters from other scripts, styled alphabets and invisible
//! characters), so `Аdmin` with a Cyrillic А is `admin`. A name impersonates
//! a moderator when, folded and with everything but letters and digits left
//! out, it equals a moderator's display name or the local part of their
//! user id (names of fewer than three letters are never taken for one).
//! Moderators' display names are learned from their membership events as
//! they arrive and kept across restarts; their user ids are always known.
//!
//! Room moderators and the bot are never acted on.

use std::collections::BTreeMap;

use gleipnir_sdk::json;
use gleipnir_sdk::prelude::*;
use gleipnir_sdk::text::{contains_phrase, fold};

gleipnir_sdk::choice! {
    /// What happens to a member with a name that is not permitted.
    pub enum Consequence {
        Kick = "kick",
        Ban = "ban",
        Report = "report",
    }
}

gleipnir_sdk::settings! {
    pub struct Config {
        /// Words and phrases not permitted in display names (matched as whole words, folded).
        words: Vec<String> = Vec::new();
        /// Act on names that read the same as a room moderator's name or user id.
        impersonation: bool = true;
        /// kick, ban, or report (tell the management room only).
        consequence: Consequence = Consequence::Kick;
        /// The reason given with kicks and bans; why is added.
        reason: String = "display name not permitted here".to_owned();
    }
}

/// Names shorter than this (as keys) are never taken for an impersonation.
const MIN_KEY: usize = 3;

#[derive(Default)]
pub struct DisplayNames {
    config: Config,
    folded: Vec<String>,
    /// Moderators' display names as keys, per room: room → user → key.
    moderators: BTreeMap<String, BTreeMap<String, String>>,
    /// Moderators' user ids with their local parts as keys, per room, and
    /// when they were read (`members` is one call for the whole room: asked
    /// at most once per [`IDS_FOR`]).
    moderator_ids: BTreeMap<String, (u64, Vec<(String, String)>)>,
}

/// How long a room's moderators read with `members` are used (ms).
const IDS_FOR: u64 = 5 * 60_000;

/// What a name is compared by: folded, letters and digits only.
pub fn key(name: &str) -> String {
    fold(name).chars().filter(|c| c.is_alphanumeric()).collect()
}

/// `@local:server` → `local`.
fn localpart(user: &str) -> &str {
    user.trim_start_matches('@').split(':').next().unwrap_or_default()
}

impl DisplayNames {
    /// Why `name`, `user`'s display name in `room`, is not permitted, if it is not.
    fn why(&mut self, room: &str, user: &str, name: &str, now: u64, host: &dyn Host) -> Option<String> {
        let folded = fold(name);
        if let Some(word) = self.config.words.iter().zip(&self.folded).find(|(_, f)| contains_phrase(&folded, f)) {
            return Some(format!("the watched word `{}`", word.0));
        }
        if !self.config.impersonation {
            return None;
        }
        let mine = key(name);
        if mine.chars().count() < MIN_KEY {
            return None;
        }
        let named = self.moderators.get(room).into_iter().flatten().find(|(m, k)| m.as_str() != user && **k == mine);
        if let Some((moderator, _)) = named {
            return Some(format!("the name of the room moderator {moderator}"));
        }
        let fresh = self.moderator_ids.get(room).is_some_and(|(at, _)| now.saturating_sub(*at) < IDS_FOR);
        if !fresh {
            let ids = host
                .members(room)
                .into_iter()
                .filter(|m| m.membership == Membership::Join && host.is_moderator(room, &m.user_id))
                .map(|m| {
                    let k = key(localpart(&m.user_id));
                    (m.user_id, k)
                })
                .collect();
            self.moderator_ids.insert(room.to_owned(), (now, ids));
        }
        let (_, ids) = self.moderator_ids.get(room)?;
        ids.iter()
            .find(|(id, k)| id != user && *k == mine)
            .map(|(id, _)| format!("the user id of the room moderator {id}"))
    }

    fn act(&self, room: &str, user: &str, name: &str, why: &str) -> Vec<Action> {
        let reason = format!("{}: it reads as {why}", self.config.reason);
        let (action, done) = match self.config.consequence {
            Consequence::Kick => (Some(Action::kick(room, user, &reason)), "kicked them"),
            Consequence::Ban => (Some(Action::ban(room, user, &reason)), "banned them"),
            Consequence::Report => (None, "nothing done (consequence = report)"),
        };
        let mut actions: Vec<Action> = action.into_iter().collect();
        actions
            .push(Action::notify(&format!("{user} in {room} took the display name “{name}”, {why}: {done}."), &reason));
        actions
    }
}

impl Protection for DisplayNames {
    const NAME: &'static str = "display-names";
    const SUMMARY: &'static str =
        "Kicks, bans or reports members whose display name holds watched words or impersonates a room moderator.";
    const CAPABILITIES: &'static [Capability] = &[Capability::Kick, Capability::Ban, Capability::NotifyManagement];
    const EVENTS: &'static [EventClass] = &[EventClass::Membership];
    const CHECKS: &'static [CheckClass] = &[CheckClass::Event];
    type Settings = Config;

    fn configure(&mut self, config: Config) -> Result<(), String> {
        let folded: Vec<String> = config.words.iter().map(|w| fold(w)).collect();
        if let Some((word, _)) = config.words.iter().zip(&folded).find(|(_, f)| f.is_empty()) {
            return Err(format!("words: `{word}` is empty once case, accents and invisible characters are set aside"));
        }
        self.folded = folded;
        self.config = config;
        Ok(())
    }

    fn handle(&mut self, event: &Event, host: &dyn Host) -> Vec<Action> {
        let EventKind::Membership(change) = &event.kind else { return Vec::new() };
        if change.membership != Membership::Join || event.sender != change.target {
            return Vec::new();
        }
        let (room, user) = (event.room_id.as_str(), change.target.as_str());
        let Some(name) = change.displayname.as_deref().filter(|n| !n.trim().is_empty()) else { return Vec::new() };
        if host.is_exempt(room, user) {
            // A moderator's name is learned, to tell impersonations of it.
            if host.is_moderator(room, user) {
                self.moderators.entry(room.to_owned()).or_default().insert(user.to_owned(), key(name));
            }
            return Vec::new();
        }
        if let Some(names) = self.moderators.get_mut(room) {
            // No longer a moderator: their name is no longer protected.
            names.remove(user);
        }
        match self.why(room, user, name, event.received_ts, host) {
            Some(why) => self.act(room, user, name, &why),
            None => Vec::new(),
        }
    }

    /// A join or a profile change whose display name is not permitted is
    /// refused before it lands (the member keeps their old name, or stays out).
    fn check(&mut self, pending: &Pending, host: &dyn Host) -> Verdict {
        let Pending::Event(e) = pending else { return Verdict::Allow };
        if e.event_type != "m.room.member" || e.state_key.as_deref() != Some(e.sender.as_str()) {
            return Verdict::Allow;
        }
        if host.is_exempt(&e.room_id, &e.sender) {
            return Verdict::Allow;
        }
        let Ok(content) = json::parse(&e.content) else { return Verdict::Allow };
        if content.get("membership").and_then(json::Value::as_str) != Some("join") {
            return Verdict::Allow;
        }
        let Some(name) = content.get("displayname").and_then(json::Value::as_str).filter(|n| !n.trim().is_empty())
        else {
            return Verdict::Allow;
        };
        match self.why(&e.room_id, &e.sender, name, host.now_ms(), host) {
            Some(why) => Verdict::Deny(Denial {
                reason: format!("{}: it reads as {why}", self.config.reason),
                follow_up: vec![Action::notify(
                    &format!("Refused {}'s display name “{name}” in {}, {why}.", e.sender, e.room_id),
                    &self.config.reason,
                )],
            }),
            None => Verdict::Allow,
        }
    }

    /// `display-names-v1`, then per moderator name learned `ROOM USER KEY`.
    fn snapshot(&self) -> Vec<u8> {
        let mut out = String::new();
        for (room, names) in &self.moderators {
            for (user, key) in names {
                out.push_str(&format!("{room} {user} {key}\n"));
            }
        }
        gleipnir_sdk::state::tagged(STATE_V1, out.as_bytes())
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let (_, body) = gleipnir_sdk::state::expect(state, &[STATE_V1])?;
        let text = std::str::from_utf8(body).map_err(|_| "the state is not UTF-8".to_owned())?;
        let mut moderators: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for line in text.lines() {
            let words: Vec<&str> = line.split(' ').collect();
            let [room, user, key] = words.as_slice() else {
                return Err(format!("a line of the state is not `room user key`: {line}"));
            };
            moderators.entry((*room).to_owned()).or_default().insert((*user).to_owned(), (*key).to_owned());
        }
        self.moderators = moderators;
        Ok(())
    }
}

/// The format tag of the state this version writes (`gleipnir_sdk::state`).
const STATE_V1: &str = "display-names-v1";

gleipnir_sdk::export_protection!(DisplayNames);

#[cfg(test)]
mod tests;
