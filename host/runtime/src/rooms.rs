//! The room state protections can query while they handle an event:
//! membership, join times, power levels. Fed with client-format state events;
//! answered from memory, so a query never waits on the network.

use std::collections::HashMap;
use std::sync::RwLock;

use serde::Deserialize;

use crate::event::parse_membership;
use crate::{Membership, RoomLevels};

pub use crate::event::DEFAULT_LEVELS;

#[derive(Debug, Clone, Default)]
struct Room {
    members: HashMap<String, Member>,
    levels: Option<RoomLevels>,
    users: HashMap<String, i64>,
    /// Power levels set for particular event types (`events` of `m.room.power_levels`).
    event_levels: HashMap<String, i64>,
    /// `m.room.join_rules`' `join_rule`, as last seen.
    join_rule: Option<String>,
    /// Room version 12 and later: creators outrank every power level.
    creators: Vec<String>,
    /// `m.room.name`'s `name` and `m.room.canonical_alias`' `alias`, when set.
    name: Option<String>,
    alias: Option<String>,
}

#[derive(Debug, Clone, Copy)]
struct Member {
    membership: Membership,
    joined_at: Option<u64>,
}

/// Every room's state, shared between the sync loop (writer) and the
/// protections (readers).
#[derive(Debug, Default)]
pub struct RoomStates {
    rooms: RwLock<HashMap<String, Room>>,
    counts: RwLock<Counts>,
}

/// Most recent counted messages remembered, so that removing one (a
/// redaction) takes it off its sender's count.
const RECENT_COUNTED: usize = 50_000;

/// Messages per member that the host saw and that were not removed, per
/// room, since the host began counting there, and when the host saw each
/// member join. Kept across restarts by the daemon ([`RoomStates::counts_to_json`]).
#[derive(Debug, Default, serde::Serialize, Deserialize)]
struct Counts {
    /// When counting began in each room (ms since the epoch).
    since: HashMap<String, u64>,
    /// Room → user → messages.
    messages: HashMap<String, HashMap<String, u32>>,
    /// Room → joined member → when the host first saw them joined (ms; 0 for
    /// members vouched for when the room became protected). `None` in files
    /// written before join times were kept.
    #[serde(default)]
    joined: Option<HashMap<String, HashMap<String, u64>>>,
    /// Counts were lost (a damaged file): nobody is vouched for, so every
    /// member is a newcomer until seen long enough (fail closed).
    #[serde(skip)]
    distrust: bool,
    /// Recently counted messages: event id → (room, sender), oldest first.
    #[serde(skip)]
    recent: HashMap<String, (String, String)>,
    #[serde(skip)]
    order: std::collections::VecDeque<String>,
    #[serde(skip)]
    dirty: bool,
}

/// What a state event changed, if it was one this cache tracks.
#[derive(Debug, PartialEq)]
pub enum Applied {
    Ignored,
    Membership {
        user: String,
        previous: Option<Membership>,
        now: Membership,
    },
    PowerLevels,
    Create,
    JoinRule,
    /// The room's name or canonical alias.
    Name,
}

impl RoomStates {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in one state event (`type`, `state_key`, `content`, `sender`),
    /// which the host saw at `seen_ms` by its own clock. Unparseable content
    /// is ignored: the previous state stays.
    ///
    /// A join's time is when the host first saw the member joined, never the
    /// event's own timestamp (the sender's server sets that, and a join dated
    /// 1970 would look established): a member first seen through a later
    /// change (a new display name, the state section of a sync) is as new as
    /// that sighting, unless the host saw their join in an earlier run.
    pub fn apply(
        &self,
        room_id: &str,
        event_type: &str,
        state_key: &str,
        sender: &str,
        seen_ms: u64,
        content: &str,
    ) -> Applied {
        match event_type {
            "m.room.member" => {
                #[derive(Deserialize)]
                struct Content {
                    membership: String,
                }
                let Ok(content) = serde_json::from_str::<Content>(content) else { return Applied::Ignored };
                let Some(membership) = parse_membership(&content.membership) else { return Applied::Ignored };
                let mut rooms = self.rooms.write().unwrap_or_else(|e| e.into_inner());
                let room = rooms.entry(room_id.to_owned()).or_default();
                let previous = room.members.get(state_key).map(|m| m.membership);
                let mut counts = self.counts.write().unwrap_or_else(|e| e.into_inner());
                let joined_at = match (previous, membership) {
                    (Some(Membership::Join), Membership::Join) => room.members.get(state_key).and_then(|m| m.joined_at),
                    (None, Membership::Join) => {
                        // Seen joined in an earlier run: that sighting stands.
                        let known = counts.joined.as_ref().and_then(|j| j.get(room_id)?.get(state_key)).copied();
                        Some(known.unwrap_or(seen_ms))
                    }
                    (_, Membership::Join) => Some(seen_ms),
                    _ => None,
                };
                if counts.since.contains_key(room_id) {
                    let joined = counts.joined.get_or_insert_default().entry(room_id.to_owned()).or_default();
                    let changed = match joined_at {
                        Some(at) => joined.insert(state_key.to_owned(), at) != Some(at),
                        None => joined.remove(state_key).is_some(),
                    };
                    counts.dirty |= changed;
                }
                drop(counts);
                room.members.insert(state_key.to_owned(), Member { membership, joined_at });
                Applied::Membership { user: state_key.to_owned(), previous, now: membership }
            }
            "m.room.power_levels" if state_key.is_empty() => {
                let Ok(content) = serde_json::from_str::<serde_json::Value>(content) else { return Applied::Ignored };
                let (levels, users, event_levels) = crate::event::power_levels(&content);
                let mut rooms = self.rooms.write().unwrap_or_else(|e| e.into_inner());
                let room = rooms.entry(room_id.to_owned()).or_default();
                room.levels = Some(levels);
                room.users = users;
                room.event_levels = event_levels;
                Applied::PowerLevels
            }
            "m.room.create" if state_key.is_empty() => {
                let Ok(content) = serde_json::from_str::<serde_json::Value>(content) else { return Applied::Ignored };
                let version = content.get("room_version").and_then(|v| v.as_str()).unwrap_or("1");
                let mut rooms = self.rooms.write().unwrap_or_else(|e| e.into_inner());
                let room = rooms.entry(room_id.to_owned()).or_default();
                room.creators.clear();
                if creators_are_privileged(version) {
                    room.creators.push(sender.to_owned());
                    if let Some(extra) = content.get("additional_creators").and_then(|a| a.as_array()) {
                        room.creators.extend(extra.iter().filter_map(|u| u.as_str().map(str::to_owned)));
                    }
                }
                Applied::Create
            }
            "m.room.join_rules" if state_key.is_empty() => {
                let Ok(content) = serde_json::from_str::<serde_json::Value>(content) else { return Applied::Ignored };
                let rule = content.get("join_rule").and_then(|r| r.as_str()).map(str::to_owned);
                let mut rooms = self.rooms.write().unwrap_or_else(|e| e.into_inner());
                rooms.entry(room_id.to_owned()).or_default().join_rule = rule;
                Applied::JoinRule
            }
            "m.room.name" | "m.room.canonical_alias" if state_key.is_empty() => {
                let field = if event_type == "m.room.name" { "name" } else { "alias" };
                let Ok(content) = serde_json::from_str::<serde_json::Value>(content) else { return Applied::Ignored };
                let text = content.get(field).and_then(|n| n.as_str()).filter(|n| !n.is_empty()).map(str::to_owned);
                let mut rooms = self.rooms.write().unwrap_or_else(|e| e.into_inner());
                let room = rooms.entry(room_id.to_owned()).or_default();
                *(if field == "name" { &mut room.name } else { &mut room.alias }) = text;
                Applied::Name
            }
            _ => Applied::Ignored,
        }
    }

    /// The room's name and canonical alias, each if set.
    pub fn name(&self, room: &str) -> (Option<String>, Option<String>) {
        let rooms = self.rooms.read().unwrap_or_else(|e| e.into_inner());
        rooms.get(room).map_or((None, None), |r| (r.name.clone(), r.alias.clone()))
    }

    pub fn membership(&self, room: &str, user: &str) -> Option<Membership> {
        let rooms = self.rooms.read().unwrap_or_else(|e| e.into_inner());
        rooms.get(room)?.members.get(user).map(|m| m.membership)
    }

    /// The members of `room` present now were there when the moderators
    /// chose to protect it: they are established (joined "at 0"). Does
    /// nothing after the counts were lost (fail closed: see `distrust_counts`).
    pub fn vouch_for_members(&self, room: &str) {
        let mut rooms = self.rooms.write().unwrap_or_else(|e| e.into_inner());
        let mut counts = self.counts.write().unwrap_or_else(|e| e.into_inner());
        if counts.distrust {
            return;
        }
        let Some(r) = rooms.get_mut(room) else { return };
        let joined = counts.joined.get_or_insert_default().entry(room.to_owned()).or_default();
        for (user, member) in r.members.iter_mut().filter(|(_, m)| m.membership == Membership::Join) {
            member.joined_at = Some(0);
            joined.insert(user.clone(), 0);
        }
        counts.dirty = true;
    }

    pub fn joined_at(&self, room: &str, user: &str) -> Option<u64> {
        let rooms = self.rooms.read().unwrap_or_else(|e| e.into_inner());
        rooms.get(room)?.members.get(user).and_then(|m| m.joined_at)
    }

    /// The user's level; creators of a v12+ room rank above every level.
    pub fn power_level(&self, room: &str, user: &str) -> i64 {
        let rooms = self.rooms.read().unwrap_or_else(|e| e.into_inner());
        let Some(room) = rooms.get(room) else { return DEFAULT_LEVELS.users_default };
        if room.creators.iter().any(|c| c == user) {
            return i64::MAX;
        }
        let default = room.levels.map_or(DEFAULT_LEVELS.users_default, |l| l.users_default);
        room.users.get(user).copied().unwrap_or(default)
    }

    /// The room's join rule (`public`, `invite`, `knock`, …), if seen.
    pub fn join_rule(&self, room: &str) -> Option<String> {
        let rooms = self.rooms.read().unwrap_or_else(|e| e.into_inner());
        rooms.get(room).and_then(|r| r.join_rule.clone())
    }

    /// The power level needed to send a state event of `event_type`: the
    /// level set for that type, else `state_default`.
    pub fn state_level(&self, room: &str, event_type: &str) -> i64 {
        let rooms = self.rooms.read().unwrap_or_else(|e| e.into_inner());
        let room = rooms.get(room);
        room.and_then(|r| r.event_levels.get(event_type).copied())
            .unwrap_or_else(|| room.and_then(|r| r.levels).unwrap_or(DEFAULT_LEVELS).state_default)
    }

    /// Whether the room's power levels have been seen (otherwise
    /// [`room_levels`](RoomStates::room_levels) gives the defaults).
    pub fn knows_levels(&self, room: &str) -> bool {
        self.rooms.read().unwrap_or_else(|e| e.into_inner()).get(room).is_some_and(|r| r.levels.is_some())
    }

    pub fn room_levels(&self, room: &str) -> RoomLevels {
        let rooms = self.rooms.read().unwrap_or_else(|e| e.into_inner());
        rooms.get(room).and_then(|r| r.levels).unwrap_or(DEFAULT_LEVELS)
    }

    /// Calls `f` with each user who has any membership in `room`, while it
    /// returns true; false when `f` stopped early. Nothing is copied, so a
    /// large room costs only what `f` does.
    pub fn for_each_member(&self, room: &str, mut f: impl FnMut(&str) -> bool) -> bool {
        let rooms = self.rooms.read().unwrap_or_else(|e| e.into_inner());
        let Some(r) = rooms.get(room) else { return true };
        r.members.keys().all(|user| f(user))
    }

    /// Everyone with a membership in `room` (at most `limit`), with join
    /// time and power level, in one read.
    pub fn members(&self, room: &str, limit: usize) -> Vec<crate::Member> {
        let rooms = self.rooms.read().unwrap_or_else(|e| e.into_inner());
        let Some(r) = rooms.get(room) else { return Vec::new() };
        let default = r.levels.map_or(DEFAULT_LEVELS.users_default, |l| l.users_default);
        let level = |user: &str| match r.creators.iter().any(|c| c == user) {
            true => i64::MAX,
            false => r.users.get(user).copied().unwrap_or(default),
        };
        let members = r.members.iter().take(limit);
        members
            .map(|(user, m)| crate::Member {
                user_id: user.clone(),
                membership: m.membership,
                joined_at: m.joined_at,
                power_level: level(user),
            })
            .collect()
    }

    /// The joined members of a room.
    pub fn joined(&self, room: &str) -> Vec<String> {
        self.with_membership(room, Membership::Join)
    }

    /// The users of a room with one membership (e.g. everyone banned).
    pub fn with_membership(&self, room: &str, membership: Membership) -> Vec<String> {
        let rooms = self.rooms.read().unwrap_or_else(|e| e.into_inner());
        rooms.get(room).map_or_else(Vec::new, |r| {
            r.members.iter().filter(|(_, m)| m.membership == membership).map(|(u, _)| u.clone()).collect()
        })
    }
}

impl RoomStates {
    /// Begins counting messages in `room` (from `now`, ms), unless it
    /// already counts there. True when counting begins now, or when the
    /// saved counts predate join times: then the members present are to be
    /// vouched for ([`vouch_for_members`](RoomStates::vouch_for_members)).
    pub fn count_from(&self, room: &str, now: u64) -> bool {
        let mut counts = self.counts.write().unwrap_or_else(|e| e.into_inner());
        let old_format = counts.joined.is_none();
        if !counts.since.contains_key(room) {
            counts.since.insert(room.to_owned(), now);
            counts.dirty = true;
            return true;
        }
        old_format
    }

    /// The saved counts were lost or damaged: nobody present is vouched for
    /// and counting starts over, so every member is a newcomer until they
    /// have been seen long enough (failing closed, not open).
    pub fn distrust_counts(&self) {
        let mut counts = self.counts.write().unwrap_or_else(|e| e.into_inner());
        counts.distrust = true;
        counts.joined.get_or_insert_default();
    }

    /// Counts one message of `sender` in `room` (if counting there).
    pub fn count_message(&self, room: &str, sender: &str, event_id: &str) {
        let mut counts = self.counts.write().unwrap_or_else(|e| e.into_inner());
        if !counts.since.contains_key(room) || counts.recent.contains_key(event_id) {
            return;
        }
        let n = counts.messages.entry(room.to_owned()).or_default().entry(sender.to_owned()).or_default();
        *n = n.saturating_add(1);
        counts.recent.insert(event_id.to_owned(), (room.to_owned(), sender.to_owned()));
        counts.order.push_back(event_id.to_owned());
        if counts.order.len() > RECENT_COUNTED
            && let Some(oldest) = counts.order.pop_front()
        {
            counts.recent.remove(&oldest);
        }
        counts.dirty = true;
    }

    /// A counted message was removed: it no longer counts.
    pub fn uncount(&self, event_id: &str) {
        let mut counts = self.counts.write().unwrap_or_else(|e| e.into_inner());
        let Some((room, sender)) = counts.recent.remove(event_id) else { return };
        if let Some(n) = counts.messages.get_mut(&room).and_then(|m| m.get_mut(&sender)) {
            *n = n.saturating_sub(1);
        }
        counts.dirty = true;
    }

    /// Messages `user` sent in `room` and not removed; `None` when the host
    /// does not count there, or the user's join time is unknown or before
    /// counting began (then the count would not be all their messages).
    pub fn message_count(&self, room: &str, user: &str) -> Option<u32> {
        let joined_at = self.joined_at(room, user)?;
        let counts = self.counts.read().unwrap_or_else(|e| e.into_inner());
        let since = *counts.since.get(room)?;
        if joined_at < since {
            return None;
        }
        Some(counts.messages.get(room).and_then(|m| m.get(user)).copied().unwrap_or(0))
    }

    /// The counts as JSON, if they changed since the last call.
    pub fn counts_to_json(&self) -> Option<String> {
        let mut counts = self.counts.write().unwrap_or_else(|e| e.into_inner());
        if !counts.dirty {
            return None;
        }
        counts.dirty = false;
        serde_json::to_string(&*counts).ok()
    }

    /// The counts last taken with [`counts_to_json`](RoomStates::counts_to_json)
    /// were not saved: take them again next time.
    pub fn counts_unsaved(&self) {
        self.counts.write().unwrap_or_else(|e| e.into_inner()).dirty = true;
    }

    /// Takes back counts saved by [`counts_to_json`](RoomStates::counts_to_json).
    pub fn counts_from_json(&self, json: &str) -> Result<(), String> {
        let loaded: Counts = serde_json::from_str(json).map_err(|e| e.to_string())?;
        // Members already applied (a sync before the counts were read) take
        // the join times saved for them.
        if let Some(joined) = &loaded.joined {
            let mut rooms = self.rooms.write().unwrap_or_else(|e| e.into_inner());
            for (room_id, members) in joined {
                let Some(room) = rooms.get_mut(room_id) else { continue };
                for (user, at) in members {
                    if let Some(member) = room.members.get_mut(user).filter(|m| m.membership == Membership::Join) {
                        member.joined_at = Some(*at);
                    }
                }
            }
        }
        *self.counts.write().unwrap_or_else(|e| e.into_inner()) = loaded;
        Ok(())
    }
}

/// Room versions from 12 on give creators unlimited power (MSC4289).
fn creators_are_privileged(version: &str) -> bool {
    version.parse::<u32>().is_ok_and(|v| v >= 12)
}

#[cfg(test)]
mod tests;
