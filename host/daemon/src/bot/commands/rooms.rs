//! `rooms`, `rooms add`, `rooms remove`: the protected rooms.

use std::fmt::Write;

use serde_json::{Value, json};

use super::super::{Bot, account};
use crate::parse::RoomRef;

/// The stored protected-rooms content with `room` added or removed (`same`
/// tells whether a stored entry names it).
fn edit_rooms(stored: Option<Value>, room: &str, add: bool, same: impl Fn(&str) -> bool) -> anyhow::Result<Value> {
    let mut content = stored.unwrap_or_else(|| json!({"rooms": []}));
    let Some(rooms) = content.get_mut("rooms").and_then(Value::as_array_mut) else {
        anyhow::bail!(
            "{} is not {{\"rooms\": [...]}} (it is {content}); `restart` offers to fix it",
            account::PROTECTED_ROOMS
        );
    };
    let present = rooms.iter().any(|r| r.as_str().is_some_and(&same));
    if add && !present {
        rooms.push(Value::String(room.to_owned()));
    } else if !add {
        rooms.retain(|r| !r.as_str().is_some_and(&same));
    }
    Ok(content)
}

impl Bot {
    pub(crate) async fn rooms_add(&mut self, room: &RoomRef) -> String {
        let id = match self.matrix.join(&room.to_string()).await {
            Ok(id) => id.to_string(),
            Err(e) => return format!("Could not join {room}: {e:#}. Nothing changed."),
        };
        // Moderators protect by hand a room they once took out of a space.
        let was_excluded = self.session.spaces.excluded.remove(&id);
        let (mut out, about) = match self.protect_joined(&id).await {
            Err(why) => return format!("Joined {room} but {why}. It is not protected."),
            Ok(Some(about)) => {
                let mut out = format!("Now protecting {}.", about.name(&id));
                if about.encrypted {
                    out.push_str(
                        " It is encrypted: protections that read messages cannot read it (memberships, policy lists \
                         and server ACLs still apply).",
                    );
                }
                let missing = self.missing_power(&id);
                if !missing.is_empty() {
                    let _ = write!(
                        out,
                        " With my power level here ({}) I cannot: {}. Raise it to act on everything.",
                        self.rooms.power_level(&id, &self.matrix.bot_user),
                        missing.join(", ")
                    );
                }
                (out, about)
            }
            Ok(None) => {
                let about = RoomAbout::of(&self.matrix.room_state(&id).await.unwrap_or_default());
                (format!("{} is already protected.", about.name(&id)), about)
            }
        };
        if about.space && !self.session.spaces.top.contains(&id) {
            out.push_str(&self.follow_space(&id).await);
        } else if was_excluded && let Err(e) = self.save_spaces().await {
            let _ = write!(out, " (Saving the spaces failed: {e:#}.)");
        }
        out
    }

    /// Protects a room the bot is in: saved in the room list, its state
    /// read, its members vouched for. What its state says about it;
    /// `None` when it was protected already; the reason when the room list
    /// could not be saved (then it is not protected).
    pub(crate) async fn protect_joined(&mut self, id: &str) -> Result<Option<RoomAbout>, String> {
        if !self.protected.insert(id) {
            return Ok(None);
        }
        if let Err(e) = self.save_rooms(id, true).await {
            self.protected.remove(id);
            return Err(format!("could not save the room list: {e:#}"));
        }
        let state = self.load_room_state(id).await;
        // The members here now are the ones the moderators chose to protect.
        if self.rooms.count_from(id, self.queries.state.clock.now_ms()) {
            self.rooms.vouch_for_members(id);
        }
        Ok(Some(RoomAbout::of(&state)))
    }

    /// `rooms`: each protected room by name, with the space it came from.
    pub(crate) fn rooms_list(&self) -> String {
        if self.protected.is_empty() {
            return "No protected rooms. Add one with `rooms add ROOM` (a space brings its rooms).".to_owned();
        }
        let spaces = &self.session.spaces;
        let mut out = format!("Protected rooms ({}):", self.protected.len());
        for room in self.protected.rooms() {
            let _ = write!(out, "\n- {}", self.room_name(&room));
            if spaces.top.contains(&room) {
                let _ = write!(out, " (space: its rooms are protected, {} level(s) deep)", self.config.space_depth);
            } else if let Some(parent) = spaces.parent.get(&room) {
                let _ = write!(out, " (from the space {}", self.room_name(parent));
                match spaces.top_of(&room) {
                    Some(top) if top != parent => {
                        let _ = write!(out, ", in {})", self.room_name(top));
                    }
                    _ => out.push(')'),
                }
            }
        }
        out
    }

    /// A protected room was upgraded (its tombstone names `new`): the
    /// replacement is joined and protected, and the old room no longer is.
    /// When the replacement cannot be joined (not invited to an invite-only
    /// room), the old one stays protected and the moderators are told.
    pub(crate) async fn follow_upgrade(&mut self, old: &str, new: &str) {
        if self.protected.contains(new) {
            return;
        }
        let added = self.rooms_add(&RoomRef::Id(new.to_owned())).await;
        if !self.protected.contains(new) {
            self.matrix
                .notify(&format!(
                    "{old} was upgraded to {new}, but I could not protect the new room ({added}); invite me there \
                     and I will. {old} stays protected until then."
                ))
                .await;
            if !self.pending_upgrades.iter().any(|(_, n)| n == new) {
                self.pending_upgrades.push((old.to_owned(), new.to_owned()));
            }
            return;
        }
        self.pending_upgrades.retain(|(_, n)| n != new);
        // The replacement takes the old room's place in its space.
        if let Some(space) = self.session.spaces.parent.get(old).cloned() {
            self.session.spaces.parent.insert(new.to_owned(), space);
        }
        let removed = self.rooms_remove(&RoomRef::Id(old.to_owned())).await;
        self.matrix.notify(&format!("{old} was upgraded: {added} {removed}")).await;
    }

    /// What the bot cannot do in `room` with its power level there, each
    /// with the level it needs.
    pub(crate) fn missing_power(&self, room: &str) -> Vec<String> {
        let mine = self.rooms.power_level(room, &self.matrix.bot_user);
        let levels = self.rooms.room_levels(room);
        let needs = [
            ("ban", levels.ban),
            ("kick", levels.kick),
            ("redact others' messages", levels.redact),
            ("set the server ACL", self.rooms.state_level(room, "m.room.server_acl")),
            ("change the join rule", self.rooms.state_level(room, "m.room.join_rules")),
        ];
        needs
            .into_iter()
            .filter(|(_, needed)| mine < *needed)
            .map(|(what, needed)| format!("{what} (needs {needed})"))
            .collect()
    }

    pub(crate) async fn rooms_remove(&mut self, room: &RoomRef) -> String {
        let id = match self.matrix.room_id(room).await {
            Ok(id) => id,
            Err(reply) => return reply,
        };
        if !self.protected.contains(&id) {
            return format!("{room} is not protected.");
        }
        let name = self.room_name(&id);
        let left = match self.unprotect(&id).await {
            Ok(left) => left,
            Err(why) => return format!("{why}. {room} is still protected."),
        };
        let mut out = format!("No longer protecting {name}{}.", if left { "; left the room" } else { "" });
        // A space's rooms go with it; a room of a followed space stays out of it.
        let spaces = &mut self.session.spaces;
        let from_space = spaces.parent.get(&id).cloned();
        let came_from_it: Vec<String> = spaces.subtree(&id).into_iter().skip(1).collect();
        let was_top = spaces.top.remove(&id);
        spaces.forget(&came_from_it);
        spaces.parent.remove(&id);
        if from_space.is_some() {
            spaces.excluded.insert(id.clone());
        }
        let mut stopped = Vec::new();
        for child in &came_from_it {
            let name = self.room_name(child);
            match self.unprotect(child).await {
                Ok(_) => stopped.push(name),
                Err(why) => {
                    let _ = write!(out, " {name} stays protected: {why}.");
                }
            }
        }
        if !stopped.is_empty() {
            let _ = write!(out, " The rooms that came from it are no longer protected either: {}.", stopped.join(", "));
        }
        if let Some(space) = &from_space {
            let _ = write!(
                out,
                " It is in the space {}: I will not protect it again while it is there, unless you `rooms add` it.",
                self.room_name(space)
            );
        }
        if (was_top || !came_from_it.is_empty() || from_space.is_some())
            && let Err(e) = self.save_spaces().await
        {
            let _ = write!(out, " (Saving the spaces failed: {e:#}.)");
        }
        out
    }

    /// Stops protecting a room and leaves it. Whether it was left; the
    /// reason when the room list could not be saved (then it stays protected).
    pub(crate) async fn unprotect(&mut self, id: &str) -> Result<bool, String> {
        if !self.protected.remove(id) {
            return Ok(false);
        }
        if let Err(e) = self.save_rooms(id, false).await {
            self.protected.insert(id);
            return Err(format!("Could not save the room list: {e:#}"));
        }
        let left = self.matrix.leave(id).await;
        self.session.policy.unprotected(id);
        Ok(left)
    }

    /// Adds `room` to the stored protected rooms (`add`) or removes it. The
    /// stored list is changed, not rewritten from memory: rooms lost while
    /// running (kept there for their recovery options) and entries this
    /// version cannot read stay as they are.
    pub(crate) async fn save_rooms(&self, room: &str, add: bool) -> anyhow::Result<()> {
        let stored = self.matrix.account(account::PROTECTED_ROOMS).await?;
        let content = edit_rooms(stored, room, add, |stored| self.same_room(stored, room))?;
        self.matrix.set_account(account::PROTECTED_ROOMS, content).await
    }
}

/// What a room's state says about it, for replies.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct RoomAbout {
    pub(crate) name: Option<String>,
    pub(crate) alias: Option<String>,
    pub(crate) encrypted: bool,
    /// A space (its creation names the type `m.space`).
    pub(crate) space: bool,
}

impl RoomAbout {
    /// From the room's state events (client-format JSON).
    pub(crate) fn of(state: &[String]) -> RoomAbout {
        let mut about = RoomAbout::default();
        for json in state {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(json) else { continue };
            let text = |key: &str| event["content"][key].as_str().filter(|t| !t.is_empty()).map(str::to_owned);
            match (event["type"].as_str(), event["state_key"].as_str()) {
                (Some("m.room.name"), Some("")) => about.name = text("name"),
                (Some("m.room.canonical_alias"), Some("")) => about.alias = text("alias"),
                (Some("m.room.encryption"), Some("")) => about.encrypted = true,
                (Some("m.room.create"), Some("")) => about.space = event["content"]["type"] == "m.space",
                _ => {}
            }
        }
        about
    }

    /// "Lobby (#lobby:server)", "#lobby:server", or the id when it has neither.
    pub(crate) fn name(&self, id: &str) -> String {
        match (&self.name, &self.alias) {
            (Some(name), Some(alias)) => format!("{name} ({alias})"),
            (Some(name), None) => format!("{name} ({id})"),
            (None, Some(alias)) => alias.clone(),
            (None, None) => id.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_is_named_by_its_name_or_alias_and_its_encryption_is_seen() {
        let state = |kind: &str, content: serde_json::Value| {
            serde_json::json!({"type": kind, "state_key": "", "content": content}).to_string()
        };
        let about = RoomAbout::of(&[
            state("m.room.name", serde_json::json!({"name": "Lobby"})),
            state("m.room.canonical_alias", serde_json::json!({"alias": "#lobby:x"})),
            state("m.room.encryption", serde_json::json!({"algorithm": "m.megolm.v1.aes-sha2"})),
        ]);
        assert_eq!(about.name("!r:x"), "Lobby (#lobby:x)");
        assert!(about.encrypted);
        let bare = RoomAbout::of(&[state("m.room.name", serde_json::json!({"name": ""}))]);
        assert_eq!(bare.name("!r:x"), "!r:x");
        assert!(!bare.encrypted);
    }

    #[test]
    fn the_stored_room_list_is_edited_not_rewritten() {
        let same = |room: &'static str| move |stored: &str| stored == room;
        let stored = json!({"rooms": ["!lost:x", 42, "!kept:x"], "note": "kept"});
        let added = edit_rooms(Some(stored.clone()), "!new:x", true, same("!new:x")).unwrap();
        assert_eq!(added, json!({"rooms": ["!lost:x", 42, "!kept:x", "!new:x"], "note": "kept"}));
        let removed = edit_rooms(Some(stored), "!kept:x", false, same("!kept:x")).unwrap();
        assert_eq!(removed, json!({"rooms": ["!lost:x", 42], "note": "kept"}));
        assert_eq!(edit_rooms(None, "!a:x", true, same("!a:x")).unwrap(), json!({"rooms": ["!a:x"]}));
        assert!(edit_rooms(Some(json!({"rooms": "!a:x"})), "!b:x", true, same("!b:x")).is_err());
    }
}
