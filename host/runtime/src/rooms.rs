//! The room state protections can query while they handle an event:
//! membership, join times, power levels. Fed with client-format state events;
//! answered from memory, so a query never waits on the network.

use std::collections::HashMap;
use std::sync::RwLock;

use serde::Deserialize;

use crate::event::parse_membership;
use crate::{Membership, RoomLevels};

/// The levels the spec assumes when a room's power levels do not set them.
pub const DEFAULT_LEVELS: RoomLevels =
    RoomLevels { ban: 50, kick: 50, redact: 50, invite: 0, state_default: 50, events_default: 0, users_default: 0 };

#[derive(Debug, Clone, Default)]
struct Room {
    members: HashMap<String, Member>,
    levels: Option<RoomLevels>,
    users: HashMap<String, i64>,
    /// Room version 12 and later: creators outrank every power level.
    creators: Vec<String>,
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
}

/// What a state event changed, if it was one this cache tracks.
#[derive(Debug, PartialEq)]
pub enum Applied {
    Ignored,
    Membership { user: String, previous: Option<Membership>, now: Membership },
    PowerLevels,
    Create,
}

impl RoomStates {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in one state event (`type`, `state_key`, `content`, `sender`, `origin_server_ts`).
    /// Unparseable content is ignored: the previous state stays.
    pub fn apply(
        &self,
        room_id: &str,
        event_type: &str,
        state_key: &str,
        sender: &str,
        origin_ts: u64,
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
                let joined_at = match (previous, membership) {
                    (Some(Membership::Join), Membership::Join) => room.members.get(state_key).and_then(|m| m.joined_at),
                    (_, Membership::Join) => Some(origin_ts),
                    _ => None,
                };
                room.members.insert(state_key.to_owned(), Member { membership, joined_at });
                Applied::Membership { user: state_key.to_owned(), previous, now: membership }
            }
            "m.room.power_levels" if state_key.is_empty() => {
                let Ok(content) = serde_json::from_str::<serde_json::Value>(content) else { return Applied::Ignored };
                let level = |key: &str, default: i64| content.get(key).and_then(as_level).unwrap_or(default);
                let levels = RoomLevels {
                    ban: level("ban", DEFAULT_LEVELS.ban),
                    kick: level("kick", DEFAULT_LEVELS.kick),
                    redact: level("redact", DEFAULT_LEVELS.redact),
                    invite: level("invite", DEFAULT_LEVELS.invite),
                    state_default: level("state_default", DEFAULT_LEVELS.state_default),
                    events_default: level("events_default", DEFAULT_LEVELS.events_default),
                    users_default: level("users_default", DEFAULT_LEVELS.users_default),
                };
                let users = content
                    .get("users")
                    .and_then(|u| u.as_object())
                    .map(|u| u.iter().filter_map(|(k, v)| as_level(v).map(|l| (k.clone(), l))).collect())
                    .unwrap_or_default();
                let mut rooms = self.rooms.write().unwrap_or_else(|e| e.into_inner());
                let room = rooms.entry(room_id.to_owned()).or_default();
                room.levels = Some(levels);
                room.users = users;
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
            _ => Applied::Ignored,
        }
    }

    pub fn membership(&self, room: &str, user: &str) -> Option<Membership> {
        let rooms = self.rooms.read().unwrap_or_else(|e| e.into_inner());
        rooms.get(room)?.members.get(user).map(|m| m.membership)
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

    pub fn room_levels(&self, room: &str) -> RoomLevels {
        let rooms = self.rooms.read().unwrap_or_else(|e| e.into_inner());
        rooms.get(room).and_then(|r| r.levels).unwrap_or(DEFAULT_LEVELS)
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

/// Room versions from 12 on give creators unlimited power (MSC4289).
fn creators_are_privileged(version: &str) -> bool {
    version.parse::<u32>().is_ok_and(|v| v >= 12)
}

/// Power levels are integers, but older rooms may hold them as strings.
fn as_level(value: &serde_json::Value) -> Option<i64> {
    value.as_i64().or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOM: &str = "!r:test";

    #[test]
    fn power_levels_with_defaults_and_string_values() {
        let states = RoomStates::new();
        assert_eq!(states.power_level(ROOM, "@a:test"), 0);
        states.apply(
            ROOM,
            "m.room.power_levels",
            "",
            "@c:test",
            1,
            r#"{"ban": 75, "users": {"@a:test": 80, "@b:test": "60"}, "users_default": 5}"#,
        );
        assert_eq!(states.power_level(ROOM, "@a:test"), 80);
        assert_eq!(states.power_level(ROOM, "@b:test"), 60);
        assert_eq!(states.power_level(ROOM, "@x:test"), 5);
        assert_eq!(states.room_levels(ROOM).ban, 75);
        assert_eq!(states.room_levels(ROOM).kick, 50);
    }

    #[test]
    fn creators_of_v12_rooms_outrank_everyone() {
        let states = RoomStates::new();
        states.apply(
            "!v12",
            "m.room.create",
            "",
            "@c:test",
            1,
            r#"{"room_version": "12", "additional_creators": ["@d:test"]}"#,
        );
        states.apply("!v11:test", "m.room.create", "", "@c:test", 1, r#"{"room_version": "11"}"#);
        assert_eq!(states.power_level("!v12", "@c:test"), i64::MAX);
        assert_eq!(states.power_level("!v12", "@d:test"), i64::MAX);
        assert_eq!(states.power_level("!v11:test", "@c:test"), 0);
    }

    #[test]
    fn join_time_survives_profile_changes() {
        let states = RoomStates::new();
        let join = r#"{"membership": "join"}"#;
        assert_eq!(
            states.apply(ROOM, "m.room.member", "@a:test", "@a:test", 100, join),
            Applied::Membership { user: "@a:test".into(), previous: None, now: Membership::Join }
        );
        states.apply(ROOM, "m.room.member", "@a:test", "@a:test", 200, r#"{"membership": "join", "displayname": "A"}"#);
        assert_eq!(states.joined_at(ROOM, "@a:test"), Some(100));
        states.apply(ROOM, "m.room.member", "@a:test", "@a:test", 300, r#"{"membership": "leave"}"#);
        assert_eq!(states.joined_at(ROOM, "@a:test"), None);
        states.apply(ROOM, "m.room.member", "@a:test", "@a:test", 400, join);
        assert_eq!(states.joined_at(ROOM, "@a:test"), Some(400));
        assert_eq!(states.joined(ROOM), vec!["@a:test".to_owned()]);
    }

    #[test]
    fn garbage_leaves_state_alone() {
        let states = RoomStates::new();
        states.apply(ROOM, "m.room.power_levels", "", "@c:test", 1, r#"{"users": {"@a:test": 80}}"#);
        assert_eq!(states.apply(ROOM, "m.room.power_levels", "", "@c:test", 2, "not json"), Applied::Ignored);
        assert_eq!(
            states.apply(ROOM, "m.room.member", "@a:test", "@a:test", 2, r#"{"membership": "dancing"}"#),
            Applied::Ignored
        );
        assert_eq!(states.power_level(ROOM, "@a:test"), 80);
    }
}
