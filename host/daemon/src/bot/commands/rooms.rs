//! `rooms`, `rooms add`, `rooms remove`: the protected rooms.

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
        if !self.protected.insert(&id) {
            return format!("{room} ({id}) is already protected.");
        }
        if let Err(e) = self.save_rooms(&id, true).await {
            self.protected.remove(&id);
            return format!("Joined {room} but could not save the room list: {e:#}. It is not protected.");
        }
        self.load_room_state(&id).await;
        // The members here now are the ones the moderators chose to protect.
        if self.rooms.count_from(&id, self.queries.state.clock.now_ms()) {
            self.rooms.vouch_for_members(&id);
        }
        format!("Now protecting {room} ({id}).")
    }

    pub(crate) async fn rooms_remove(&mut self, room: &RoomRef) -> String {
        let id = match self.matrix.room_id(room).await {
            Ok(id) => id,
            Err(reply) => return reply,
        };
        if !self.protected.remove(&id) {
            return format!("{room} is not protected.");
        }
        if let Err(e) = self.save_rooms(&id, false).await {
            self.protected.insert(&id);
            return format!("Could not save the room list: {e:#}. {room} is still protected.");
        }
        let left = match self
            .matrix
            .client
            .get_room(&matrix_sdk::ruma::OwnedRoomId::try_from(id.as_str()).expect("validated"))
        {
            Some(r) => r.leave().await.is_ok(),
            None => false,
        };
        self.session.policy.unprotected(&id);
        format!("No longer protecting {room} ({id}){}.", if left { "; left the room" } else { "" })
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

#[cfg(test)]
mod tests {
    use super::*;

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
