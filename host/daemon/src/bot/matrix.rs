//! The bot's part of the homeserver: its client and user, the management
//! room and its notices, its account data, and joining rooms. Everything
//! else reaches Matrix through this (or, for moderation actions, through
//! the executor, which is handed the client).

use std::collections::HashSet;
use std::sync::RwLock;

use anyhow::Context;
use gleipnir_runtime::rooms::RoomStates;
use matrix_sdk::Client;
use matrix_sdk::ruma::{OwnedEventId, OwnedRoomId, RoomOrAliasId};
use serde_json::Value;

use super::{account, notices};

pub(crate) struct Matrix {
    pub(crate) client: Client,
    pub(crate) bot_user: String,
    pub(crate) management: OwnedRoomId,
    /// The management room's join rule, as last seen.
    pub(crate) management_rule: String,
    /// The management room's notices, sent off the event path.
    notices: notices::Notices,
    /// The rooms the bot is in, as the syncs (and its own joins) say. The
    /// bot keeps no room in the client's store: it reads the syncs itself.
    joined: RwLock<HashSet<String>>,
}

impl Matrix {
    pub(crate) fn new(client: Client, bot_user: String, management: OwnedRoomId, management_rule: String) -> Matrix {
        let notices = notices::Notices::start(client.clone(), management.clone());
        Matrix { client, bot_user, management, management_rule, notices, joined: RwLock::default() }
    }

    /// Whether the bot is in `room`.
    pub(crate) fn is_joined(&self, room: &str) -> bool {
        self.joined.read().unwrap_or_else(|e| e.into_inner()).contains(room)
    }

    /// The rooms the bot is in.
    pub(crate) fn joined_rooms(&self) -> Vec<String> {
        self.joined.read().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
    }

    /// The bot is in these rooms now, and no longer in those.
    pub(crate) fn joined_and_left<'a>(
        &self,
        joined: impl IntoIterator<Item = &'a str>,
        left: impl IntoIterator<Item = &'a str>,
    ) {
        let mut rooms = self.joined.write().unwrap_or_else(|e| e.into_inner());
        rooms.extend(joined.into_iter().map(str::to_owned));
        for room in left {
            rooms.remove(room);
        }
    }

    /// Leaves `room`; true when the homeserver agreed.
    pub(crate) async fn leave(&self, room: &str) -> bool {
        use matrix_sdk::ruma::api::client::membership::leave_room;
        let Ok(id) = OwnedRoomId::try_from(room) else { return false };
        let left = self.client.send(leave_room::v3::Request::new(id)).await.is_ok();
        if left {
            self.joined_and_left([], [room]);
        }
        left
    }

    /// Sends an event of `event_type` with `content` to `room`; its id.
    pub(crate) async fn send_raw(&self, room: &str, event_type: &str, content: &Value) -> anyhow::Result<OwnedEventId> {
        super::raw::send_raw(&self.client, room, event_type, content).await
    }

    /// A notice in the management room, queued (see `notices`): never waits.
    pub(crate) async fn notify(&self, text: &str) {
        self.notices.notify(text);
    }

    /// A notice in the management room; its event id once sent (in order
    /// with the notices queued before it).
    pub(crate) async fn send_notice(&self, text: &str) -> Option<OwnedEventId> {
        self.notices.send(text).await
    }

    /// Reacts to an event of the management room with `key` (an annotation).
    pub(crate) async fn react(&self, event: &matrix_sdk::ruma::EventId, key: &str) -> anyhow::Result<()> {
        let content = serde_json::json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": event, "key": key}});
        self.send_raw(self.management.as_str(), "m.reaction", &content).await?;
        Ok(())
    }

    /// Replaces the text of one of the bot's notices in the management room (an edit).
    pub(crate) async fn edit_notice(&self, event: &str, text: &str) -> anyhow::Result<()> {
        let html = super::html::render(text);
        let new = serde_json::json!({
            "msgtype": "m.notice", "body": text, "format": "org.matrix.custom.html", "formatted_body": html,
        });
        let content = serde_json::json!({
            "msgtype": "m.notice",
            "body": format!("* {text}"),
            "m.new_content": new,
            "m.relates_to": {"rel_type": "m.replace", "event_id": event},
        });
        self.send_raw(self.management.as_str(), "m.room.message", &content).await?;
        Ok(())
    }

    /// An account data event's content; `None` when it was never set.
    pub(crate) async fn account(&self, key: &str) -> anyhow::Result<Option<Value>> {
        account::read(&self.client, key).await
    }

    pub(crate) async fn set_account(&self, key: &str, content: Value) -> anyhow::Result<()> {
        account::write(&self.client, key, content).await
    }

    /// A room's whole current state, each event as client-format JSON.
    pub(crate) async fn room_state(&self, room: &str) -> anyhow::Result<Vec<String>> {
        use matrix_sdk::ruma::api::client::state::get_state_events;
        let id = OwnedRoomId::try_from(room).with_context(|| format!("`{room}` is not a room id"))?;
        let response = self.client.send(get_state_events::v3::Request::new(id)).await?;
        // Each event's text moved out, not copied (a list of many rules is a large answer).
        Ok(response.room_state.into_iter().map(|raw| Box::<str>::from(raw.into_json()).into_string()).collect())
    }

    /// The room an alias names now, if it resolves.
    pub(crate) async fn resolve(&self, alias: &str) -> Option<String> {
        let alias = <&matrix_sdk::ruma::RoomAliasId>::try_from(alias).ok()?;
        self.client.resolve_room_alias(alias).await.ok().map(|r| r.room_id.to_string())
    }

    /// The room id a command's room reference names: an id as it is, an
    /// alias as it resolves now; `Err` is the reply when it does not.
    pub(crate) async fn room_id(&self, room: &crate::parse::RoomRef) -> Result<String, String> {
        match room {
            crate::parse::RoomRef::Id(id) => Ok(id.clone()),
            crate::parse::RoomRef::Alias(alias) => {
                self.resolve(alias).await.ok_or_else(|| format!("Could not resolve {alias}. Nothing changed."))
            }
        }
    }

    /// Joins a room by id or alias and returns its id.
    pub(crate) async fn join(&self, room: &str) -> anyhow::Result<OwnedRoomId> {
        let joined = join(&self.client, room).await?;
        self.joined_and_left([joined.as_str()], []);
        Ok(joined)
    }

    /// Joins a room through the servers `via` names (a permalink's `via`,
    /// needed for a room id this homeserver is not in yet).
    pub(crate) async fn join_via(&self, room: &str, via: &[String]) -> anyhow::Result<OwnedRoomId> {
        let id = <&RoomOrAliasId>::try_from(room).with_context(|| format!("`{room}` is not a room id or alias"))?;
        let servers: Vec<matrix_sdk::ruma::OwnedServerName> =
            via.iter().filter_map(|s| matrix_sdk::ruma::OwnedServerName::try_from(s.as_str()).ok()).collect();
        let joined =
            self.client.join_room_by_id_or_alias(id, &servers).await.with_context(|| format!("cannot join {room}"))?;
        self.joined_and_left([joined.room_id().as_str()], []);
        Ok(joined.room_id().to_owned())
    }
}

/// Joins a room by id or alias and returns its id.
pub(crate) async fn join(client: &Client, room: &str) -> anyhow::Result<OwnedRoomId> {
    let id = <&RoomOrAliasId>::try_from(room).with_context(|| format!("`{room}` is not a room id or alias"))?;
    let joined = client.join_room_by_id_or_alias(id, &[]).await.with_context(|| format!("cannot join {room}"))?;
    Ok(joined.room_id().to_owned())
}

/// A room's name (`m.room.name`), or its canonical alias, as the bot last
/// saw them; `None` when it has neither or is not known.
pub(crate) fn room_name(rooms: &RoomStates, room: &str) -> Option<String> {
    let (name, alias) = rooms.name(room);
    name.or(alias)
}
