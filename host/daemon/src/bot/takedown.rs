//! Room takedowns (MSC4204): a takedown rule for a room in a watched list
//! blocks the room on the bot's own homeserver (no local user can join it
//! again) and purges it (its events and local state are deleted), through
//! the Synapse admin API. Only when the operator turned it on
//! (`[policy] room_takedowns = true`), and the bot's account must be a
//! server admin. User takedowns are the `takedown` protection's.
//!
//! Never taken down: a protected room, the management room, a watched list.
//! A glob never names a room here (it could match rooms nobody meant); a
//! hashed rule (MSC4205) is matched against the rooms the homeserver knows.

use std::fmt::Write;

use gleipnir_policy::rule::{EntityKind, EntityRef, Recommendation, Rule};

use super::Bot;
use super::executor::{Act, Origin, Outcome, query};

/// Pages of the homeserver's room list read to find a hashed room.
const MAX_ROOM_PAGES: usize = 40;

impl Bot {
    /// Acts on the room takedown rules among a sync's rule changes.
    pub(crate) async fn room_takedowns(&mut self, delta: &gleipnir_policy::Delta) {
        if !self.config.room_takedowns {
            return;
        }
        for change in &delta.changes {
            if matches!(change, gleipnir_policy::Change::Removed(_)) {
                continue;
            }
            let Some(rule) = change.new_rule() else { continue };
            if rule.kind != EntityKind::Room || rule.recommendation != Recommendation::Takedown {
                continue;
            }
            let text = self.take_down_room(rule).await;
            self.matrix.notify(&text).await;
        }
    }

    async fn take_down_room(&mut self, rule: &Rule) -> String {
        let head = format!("Room takedown rule for {} in {}", rule.entity(), rule.list);
        let rooms = match rule.entity() {
            EntityRef::Literal(id) if id.starts_with('!') => vec![id.to_string()],
            EntityRef::Literal(alias) => match self.matrix.resolve(alias).await {
                Some(id) => vec![id],
                None => return format!("{head}: {alias} does not resolve to a room; nothing done."),
            },
            EntityRef::Glob(_) => {
                return format!(
                    "{head}: a glob never names rooms to take down (it could match rooms nobody meant); nothing done."
                );
            }
            EntityRef::Hashed(hash) => match self.rooms_with_hash(hash).await {
                Ok(rooms) => rooms,
                Err(e) => return format!("{head}: cannot list this homeserver's rooms to match the hash: {e}"),
            },
        };
        if rooms.is_empty() {
            return format!("{head}: no room on this homeserver matches; nothing done.");
        }
        let mut text = head;
        for room in rooms {
            let act = Act::TakeDownRoom { room: room.clone(), reason: rule.reason.to_string() };
            let outcome = match self.act(&Origin::Policy, act).await {
                Outcome::Done(note) => {
                    tracing::info!(room, "room taken down");
                    note.unwrap_or_else(|| "taken down".to_owned())
                }
                other => other.text(),
            };
            let _ = write!(text, "\n- {room}: {outcome}");
        }
        text
    }

    /// The rooms this homeserver knows whose id hashes to `hash` (MSC4205).
    async fn rooms_with_hash(&self, hash: &[u8; 32]) -> Result<Vec<String>, String> {
        let mut found = Vec::new();
        let mut from = 0u64;
        for _ in 0..MAX_ROOM_PAGES {
            let path = format!("/_synapse/admin/v1/rooms?from={from}&limit=500");
            let reply = query(&self.matrix.client, &path).await.map_err(|e| e.to_string())?;
            let rooms = reply.get("rooms").and_then(|r| r.as_array()).cloned().unwrap_or_default();
            for room in &rooms {
                if let Some(id) = room.get("room_id").and_then(|r| r.as_str())
                    && gleipnir_policy::rule::sha256(id) == *hash
                {
                    found.push(id.to_owned());
                }
            }
            match reply.get("next_batch").and_then(|n| n.as_u64()) {
                Some(next) if !rooms.is_empty() => from = next,
                _ => break,
            }
        }
        Ok(found)
    }
}
