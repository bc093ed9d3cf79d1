//! What the host offers a protection while it handles an event.

use crate::bindings::gleipnir::protection::host as imports;
use crate::prelude::*;

/// Queries the host answers from its cache, and a small private key-value
/// store. In a plugin this is [`WasmHost`]; in native tests it is
/// [`testing::TestHost`](crate::testing::TestHost).
pub trait Host {
    /// Milliseconds since the Unix epoch, as the host sees the current event.
    fn now_ms(&self) -> u64;
    /// The bot's own user id.
    fn bot_user_id(&self) -> String;
    /// The user's membership in the room, if the host knows the room.
    fn membership(&self, room: &str, user: &str) -> Option<Membership>;
    /// When the user last joined the room, in ms since the epoch, if known.
    fn joined_at(&self, room: &str, user: &str) -> Option<u64>;
    /// The user's power level in the room.
    fn power_level(&self, room: &str, user: &str) -> i64;
    /// The levels the room requires for moderation actions.
    fn room_levels(&self, room: &str) -> RoomLevels;
    /// Read a value from this protection's store.
    fn kv_get(&self, key: &str) -> Option<Vec<u8>>;
    /// Write a value to this protection's store.
    fn kv_set(&self, key: &str, value: &[u8]) -> Result<(), KvError>;
    /// Delete a value from this protection's store.
    fn kv_delete(&self, key: &str);
    /// Write to the host's log, attributed to this protection.
    fn log(&self, level: LogLevel, message: &str);
    /// Messages the user sent in the room that were not removed; `None` when
    /// the host does not count there or the user joined before it began counting.
    fn message_count(&self, room: &str, user: &str) -> Option<u32> {
        let _ = (room, user);
        None
    }
    /// The rooms the bot protects.
    fn protected_rooms(&self) -> Vec<String> {
        Vec::new()
    }
    /// Everyone with a membership in `room` (a protected room), with join
    /// time and power level, in one call: ask once rather than per member.
    fn members(&self, room: &str) -> Vec<Member> {
        let _ = room;
        Vec::new()
    }
    /// Users with any membership in a protected room that a user rule names
    /// (by id, glob or MSC4205 hash).
    fn members_matching(&self, rule: &PolicyRule) -> Vec<String> {
        let _ = rule;
        Vec::new()
    }
    /// Up to `limit` of `sender`'s most recent events in `room`, newest first.
    /// Waits on the homeserver; check each event's sender before acting.
    fn history(&self, room: &str, sender: &str, limit: u32) -> Result<Vec<HistoryEvent>, String> {
        let _ = (room, sender, limit);
        Err("this host does not read room history".to_owned())
    }
    /// When `user`'s account was created (ms since the epoch), as the bot's
    /// own homeserver tells it; an error says why not (another server's
    /// user, a bot that is not a server admin, no `read-accounts` grant).
    /// Waits on the homeserver the first time a user is asked about.
    fn account_created(&self, user: &str) -> Result<u64, String> {
        let _ = user;
        Err("this host does not know when accounts were created".to_owned())
    }

    /// Whether the user may ban in the room: moderators are never acted on.
    fn is_moderator(&self, room: &str, user: &str) -> bool {
        self.power_level(room, user) >= self.room_levels(room).ban
    }

    /// Whether the user is a moderator of the room or the bot itself.
    fn is_exempt(&self, room: &str, user: &str) -> bool {
        user == self.bot_user_id() || self.is_moderator(room, user)
    }
}

/// The host as seen from inside the sandbox: each call is a WIT import.
#[derive(Debug, Default, Clone, Copy)]
pub struct WasmHost;

impl Host for WasmHost {
    fn now_ms(&self) -> u64 {
        imports::now_ms()
    }
    fn bot_user_id(&self) -> String {
        imports::bot_user_id()
    }
    fn membership(&self, room: &str, user: &str) -> Option<Membership> {
        imports::membership_of(room, user)
    }
    fn joined_at(&self, room: &str, user: &str) -> Option<u64> {
        imports::joined_at(room, user)
    }
    fn power_level(&self, room: &str, user: &str) -> i64 {
        imports::power_level(room, user)
    }
    fn room_levels(&self, room: &str) -> RoomLevels {
        imports::required_levels(room)
    }
    fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        imports::kv_get(key)
    }
    fn kv_set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        imports::kv_set(key, value)
    }
    fn kv_delete(&self, key: &str) {
        imports::kv_delete(key)
    }
    fn log(&self, level: LogLevel, message: &str) {
        imports::log(level, message)
    }
    fn message_count(&self, room: &str, user: &str) -> Option<u32> {
        imports::message_count(room, user)
    }
    fn protected_rooms(&self) -> Vec<String> {
        imports::protected_rooms()
    }
    fn members(&self, room: &str) -> Vec<Member> {
        imports::members(room)
    }
    fn members_matching(&self, rule: &PolicyRule) -> Vec<String> {
        imports::members_matching(rule)
    }
    fn history(&self, room: &str, sender: &str, limit: u32) -> Result<Vec<HistoryEvent>, String> {
        imports::history(room, sender, limit)
    }
    fn account_created(&self, user: &str) -> Result<u64, String> {
        imports::account_created(user)
    }
}
