//! Handling a sync: its inputs (from `ingest`) fed to the room cache, the
//! policy engine and the protections in order; commands and reactions of
//! the management room; invites; the missed events of a gap.

use std::collections::HashMap;
use std::time::Instant;

use gleipnir_runtime::event;

use super::history::Backwards;
use super::ingest::{self, Input};
use super::propagation;
use super::route::{self, Route};
use super::{Bot, Lost, MAX_GAP_PAGES};

impl Bot {
    /// Handles one sync: its inputs (see `ingest`) in order, then the rooms
    /// lost while doing so, then the policy engine's decisions.
    pub(super) async fn handle_sync(&mut self, parts: ingest::Parts<'_>, since: &str) {
        let policy = &self.session.policy;
        let watched = ingest::Watched {
            bot: &self.matrix.bot_user,
            management: self.matrix.management.as_str(),
            protected: &self.protected,
            is_list: &|room| policy.is_list(room),
        };
        for input in ingest::ingest(parts, &watched) {
            match input {
                Input::Invite(room, inviter) => {
                    // The replacement of an upgraded protected room: follow the upgrade.
                    if let Some((old, new)) = self.pending_upgrades.iter().find(|(_, n)| n == room).cloned() {
                        self.follow_upgrade(&old, &new).await;
                    } else {
                        self.consider_invite(room, inviter).await;
                    }
                }
                Input::State { room, json } => {
                    if let Some(user) = self.state_event(room, json) {
                        self.check_newcomer(room, &user);
                    }
                }
                Input::Gap { room, prev_batch } => {
                    for json in self.gap(room, prev_batch, since).await {
                        self.handle_timeline_event(room, &json).await;
                    }
                }
                Input::Timeline { room, json } => self.handle_timeline_event(room, json).await,
                Input::LeftState { room, json } => {
                    self.state_event(room, json);
                }
                Input::Lost(room) => {
                    if !self.lost.iter().any(|lost| lost.room == room) {
                        self.lost.push(Lost { room: room.to_owned(), why: "I am no longer in the room".to_owned() });
                    }
                }
            }
        }
        for Lost { room, why } in std::mem::take(&mut self.lost) {
            if self.protected.contains(&room) {
                self.lost_protected_room(&room, &why).await;
            } else {
                self.lost_list(&room, &why).await;
            }
        }
        for (old, new) in std::mem::take(&mut self.upgrades) {
            self.follow_upgrade(&old, &new).await;
        }
        self.follow_space_changes().await;
        self.apply_policy().await;
    }

    /// Applies the state (and state in timelines) of the first sync (a full
    /// state sync) to the room cache, and keeps it for the first start, which
    /// needs each protected room's whole state again and so asks the
    /// homeserver for none of it.
    pub(super) fn absorb_state(&mut self, parts: &ingest::Parts<'_>) {
        for joined in &parts.joined {
            let events: Vec<String> =
                joined.state.iter().chain(&joined.timeline).map(|json| (*json).to_owned()).collect();
            for json in &events {
                self.state_event(joined.room, json);
            }
            self.first_state.synced(joined.room, events);
        }
    }

    /// Applies the rooms' state kept from the last run (see `room_log`) to
    /// the room cache, read an event at a time, and keeps where it is for
    /// the first start, like [`absorb_state`](Bot::absorb_state) (which then
    /// adds what the first sync changed). Returns the rooms whose kept state
    /// could not be read: to be read again from the homeserver.
    pub(super) fn absorb_kept(&mut self, kept: super::room_log::Rooms) -> Vec<String> {
        let mut unread = Vec::new();
        for (room, kept) in kept.into_rooms() {
            match self.apply_read_state(&room, kept.events()) {
                Ok(()) => self.first_state.kept(room, kept),
                Err(e) => {
                    tracing::warn!(room, "cannot read the room's kept state ({e}); reading it from the homeserver");
                    unread.push(room);
                }
            }
        }
        unread
    }

    /// Applies state events as they are read (from the kept state), as sync
    /// state; a failed read stops it.
    pub(super) fn apply_read_state(
        &mut self,
        room: &str,
        events: impl Iterator<Item = std::io::Result<String>>,
    ) -> std::io::Result<()> {
        for json in events {
            self.state_event(room, &json?);
        }
        Ok(())
    }

    /// Reads again the whole state of rooms whose kept state is stale (a
    /// redaction since; see `room_log`), the requests going out at once (at
    /// most `executor::AT_ONCE`): into the room cache, the first start's
    /// state (in place of the kept state and what the first sync changed)
    /// and the log. A room that cannot be read is left out of the first
    /// start's state, so the start reads it again where it needs it.
    pub(super) async fn read_stale(&mut self, rooms: &[String]) {
        use futures_util::StreamExt;
        let matrix = &self.matrix;
        let read: Vec<(&String, anyhow::Result<Vec<String>>)> = futures_util::stream::iter(rooms)
            .map(|room| async move { (room, matrix.room_state(room).await) })
            .buffer_unordered(super::executor::AT_ONCE)
            .collect()
            .await;
        for (room, state) in read {
            match state {
                Ok(state) => {
                    for json in &state {
                        self.state_event(room, json);
                    }
                    self.room_log.refreshed(room, &state);
                    self.first_state.replace(room.clone(), state);
                }
                Err(e) => {
                    tracing::warn!(room, "cannot read the room's state again after a redaction: {e}");
                    self.first_state.remove(room);
                }
            }
        }
    }

    /// Reads a room's whole state into the room cache; the state as read
    /// (empty when it could not be read, which is logged).
    pub(super) async fn load_room_state(&mut self, room: &str) -> Vec<String> {
        match self.matrix.room_state(room).await {
            Ok(state) => {
                for json in &state {
                    self.state_event(room, json);
                }
                state
            }
            Err(e) => {
                tracing::warn!(room, "cannot load room state: {e}");
                Vec::new()
            }
        }
    }

    /// Reads the whole state of several rooms into the room cache: from the
    /// first sync for the first start, else from the homeserver, the
    /// requests going out at once (at most `executor::AT_ONCE`); the state is
    /// applied room by room in the order given.
    pub(super) async fn load_room_states(&mut self, rooms: &[String]) {
        use futures_util::StreamExt;
        // The first sync's full state (or the kept state and what the first
        // sync changed), where this start comes right after it; the
        // homeserver is asked only for the other rooms.
        let mut first = std::mem::take(&mut self.first_state);
        let matrix = &self.matrix;
        let asked = rooms.iter().filter(|room| !first.contains(room));
        let mut read: HashMap<&String, anyhow::Result<Vec<String>>> = futures_util::stream::iter(asked)
            .map(|room| async move { (room, matrix.room_state(room).await) })
            .buffer_unordered(super::executor::AT_ONCE)
            .collect()
            .await;
        let mut unread = Vec::new();
        for room in rooms {
            if let Some(mut source) = first.take(room) {
                if let Err(e) = self.apply_read_state(room, source.events()) {
                    tracing::warn!(room, "cannot read the room's kept state ({e}); reading it from the homeserver");
                    unread.push(room);
                }
                continue;
            }
            match read.remove(room) {
                Some(Ok(state)) => {
                    for json in &state {
                        self.state_event(room, json);
                    }
                }
                Some(Err(e)) => tracing::warn!(room, "cannot load room state: {e}"),
                None => {}
            }
        }
        for room in unread {
            self.load_room_state(room).await;
        }
        // The rest is for the watched lists (see `load_list`).
        self.first_state = first;
    }

    /// The events between the previous sync (`since`) and the start of a
    /// limited timeline (`prev_batch`), oldest first.
    async fn gap(&self, room: &str, prev_batch: &str, since: &str) -> Vec<String> {
        let Ok(pages) = Backwards::new(room, MAX_GAP_PAGES) else { return Vec::new() };
        let mut pages = pages.from(prev_batch).until(since);
        let mut events = Vec::new();
        loop {
            match pages.next(&self.matrix.client, 100).await {
                Ok(Some(chunk)) => events.extend(chunk.iter().map(|e| e.json().get().to_owned())),
                Ok(None) => break,
                Err(e) => {
                    let text = format!("could not fetch {room}'s missed events ({e}); some may not have been seen");
                    tracing::error!("{text}");
                    self.matrix.notify(&text).await;
                    break;
                }
            }
        }
        if pages.cut_short() {
            self.matrix
                .notify(&format!(
                    "{room}: more than {} events arrived at once; only the newest were checked",
                    MAX_GAP_PAGES * 100
                ))
                .await;
        }
        events.reverse();
        tracing::info!(room, events = events.len(), "filled a gap in the timeline");
        events
    }

    /// On a first start (which acts on nothing from before it): the
    /// management room's messages sent since the process began, up to the
    /// first sync's position (`up_to`, its timeline's start), oldest first.
    /// That sync asks for no timeline, so they are read here: one page of
    /// 100 back from it.
    pub(super) async fn sent_while_loading(&self, up_to: Option<&str>) -> Vec<String> {
        let room = self.matrix.management.as_str();
        let Some(up_to) = up_to else {
            tracing::warn!(
                "the first sync gave no position for the management room: commands sent while starting are not run"
            );
            return Vec::new();
        };
        let Ok(pages) = Backwards::new(room, 1) else { return Vec::new() };
        let begun_ms = self.queries.state.clock.now_ms().saturating_sub(self.started.elapsed().as_millis() as u64);
        match pages.from(up_to).next(&self.matrix.client, 100).await {
            Ok(Some(newest_first)) => {
                let mut events = ingest::messages_since(newest_first.iter().map(|e| e.json().get()), begun_ms);
                events.reverse();
                events
            }
            Ok(None) => Vec::new(),
            Err(e) => {
                let text = format!("could not read the commands sent while Gleipnir started ({e}); send them again");
                tracing::warn!("{text}");
                self.matrix.notify(&text).await;
                Vec::new()
            }
        }
    }

    pub(super) async fn handle_timeline_event(&mut self, room: &str, json: &str) {
        let converted = event::from_json(json, Some(room), &|r, u| self.rooms.membership(r, u));
        // Messages, reactions and redactions are never state: skip parsing them again.
        let message_like = matches!(
            &converted,
            Ok(Some(gleipnir_runtime::Event {
                kind: gleipnir_runtime::EventKind::Message(_)
                    | gleipnir_runtime::EventKind::Reaction(_)
                    | gleipnir_runtime::EventKind::Redaction(_),
                ..
            }))
        );
        if !message_like && let Some(user) = self.state_event(room, json) {
            self.check_newcomer(room, &user);
        }
        let event = match converted {
            Ok(Some(e)) => e,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(room, "skipping a malformed event: {e}");
                return;
            }
        };
        if let gleipnir_runtime::EventKind::Redaction(redaction) = &event.kind {
            self.session.policy.on_redaction(room);
            // A removed message no longer counts towards its sender's standing.
            if let Some(id) = &redaction.redacts {
                self.rooms.uncount(id);
            }
        }
        let at = route::At {
            bot: &self.matrix.bot_user,
            management: self.matrix.management.as_str(),
            protected: &self.protected,
            replaying: self.replaying,
        };
        match route::route(room, event, &at) {
            Route::Command { sender, body } => self.command(&sender, &body).await,
            Route::NotRun { sender, body } => self.not_run(&sender, &body).await,
            Route::Reaction { sender, relates_to, key } => self.reaction(&sender, &relates_to, &key).await,
            Route::Protect { event, counted } => {
                // A ban or unban a moderator made with a client: offered for the lists
                // (not for what arrived while the bot was stopped and is long decided).
                let client = (!self.replaying).then(|| propagation::client_action(&event)).flatten();
                // Counted after the protections saw it: they see the messages before this one.
                self.dispatch(*event).await;
                if let Some(action) = client {
                    self.client_moderation(room, action).await;
                }
                if let Some(route::Counted { event_id, sender }) = counted {
                    self.rooms.count_message(room, &sender, &event_id);
                }
            }
            Route::Nowhere => {}
        }
    }

    async fn consider_invite(&mut self, room_id: &str, inviter: Option<&str>) {
        let inviter = inviter.map(str::to_owned);
        let management = self.matrix.management.as_str();
        let from_moderator = (inviter.as_deref())
            .is_some_and(|user| self.rooms.membership(management, user) == Some(gleipnir_runtime::Membership::Join));
        if from_moderator {
            match self.matrix.join(room_id).await {
                Ok(_) => tracing::info!(room = %room_id, inviter = ?inviter, "joined on a moderator's invite"),
                Err(e) => {
                    tracing::warn!(room = %room_id, "cannot join on invite: {e}");
                    return;
                }
            }
            let inviter = inviter.unwrap_or_default();
            if self.config.protect_on_invite || self.config.protect_all_joined {
                let added = self.rooms_add(&crate::parse::RoomRef::Id(room_id.to_owned())).await;
                self.matrix.notify(&format!("Invited by {inviter}: {added}")).await;
            } else {
                // Joined; whether to protect it is the moderators' call.
                let plan = super::plan::Plan {
                    command: format!("protect {room_id} (invited by {inviter})"),
                    ops: vec![super::plan::Op::Protect { room: room_id.to_owned() }],
                    always_confirm: true,
                    ..super::plan::Plan::default()
                };
                if let Some(preview) = self.matrix.send_notice(&plan.preview()).await {
                    self.confirmations.hold(preview.to_string(), plan, std::time::Instant::now());
                }
            }
        } else {
            tracing::info!(room = %room_id, inviter = ?inviter, "ignored an invite from someone outside the management room");
        }
    }

    pub(super) async fn dispatch(&mut self, mut event: gleipnir_runtime::Event) {
        let now_ms = self.queries.state.clock.now_ms();
        event.received_ts = match (self.replaying, self.stopped_at) {
            // Sent while the bot was stopped: at the time its server says,
            // but never before the bot stopped nor after now (a server may lie).
            (true, Some(stopped)) if stopped <= now_ms => event.origin_ts.clamp(stopped, now_ms),
            _ => now_ms,
        };
        if !event.event_id.is_empty() {
            self.executor.saw(&event.event_id, &event.sender);
        }
        let handled = match &self.gate {
            Some(gate) if !event.event_id.is_empty() => gate.handled_before(&event.event_id),
            _ => Vec::new(),
        };
        let jobs = self.protections.handle(&event, &self.protected, Instant::now(), &handled);
        self.jobs.extend(jobs);
    }

    /// Gives the protections due a tick their `tick` event (see `ticks`),
    /// and carries out what they decide, like a sync's jobs.
    pub(super) async fn tick(&mut self, token: &str) {
        let now = Instant::now();
        let ticking = self.protections.ticking(&self.config.ticks);
        let due = self.ticks.due(now, &ticking);
        if due.is_empty() {
            return;
        }
        let event = gleipnir_runtime::event::tick(self.queries.state.clock.now_ms());
        for name in due {
            let jobs = self.protections.handle_one(&name, &event, &self.protected, now);
            self.jobs.extend(jobs);
        }
        self.flush_jobs(token).await;
    }

    /// Feeds one client-format event, if it is state, to the room cache and
    /// the policy engine. Returns a user who just joined or knocked on a
    /// protected room.
    pub(super) fn state_event(&mut self, room: &str, json: &str) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct State<'a> {
            #[serde(rename = "type")]
            kind: String,
            state_key: Option<String>,
            sender: Option<String>,
            #[serde(borrow)]
            content: Option<&'a serde_json::value::RawValue>,
        }
        let Ok(State { kind, state_key: Some(key), sender, content: Some(content) }) =
            serde_json::from_str::<State<'_>>(json)
        else {
            return None;
        };
        let sender = sender.unwrap_or_default();
        // When the host saw it, never the sender's own timestamp.
        let seen = self.queries.state.clock.now_ms();
        let applied = self.rooms.apply(room, &kind, &key, &sender, seen, content.get());
        self.session.policy.on_rule_state(room, &kind, &key, content.get(), &sender);
        if kind == "m.room.tombstone" && key.is_empty() && self.protected.contains(room) {
            let replacement = serde_json::from_str::<serde_json::Value>(content.get())
                .ok()
                .and_then(|c| c.get("replacement_room").and_then(|r| r.as_str()).map(str::to_owned));
            if let Some(new) =
                replacement.filter(|new| new != room && !self.upgrades.iter().any(|(old, _)| old == room))
            {
                self.upgrades.push((room.to_owned(), new));
            }
        }
        if kind == "m.space.child"
            && self.protected.contains(room)
            && let Some(change) = super::spaces::ChildEvent::of(room, &key, content.get())
        {
            let changes = &mut self.session.space_changes;
            changes.retain(|c| !(c.space == change.space && c.child == change.child));
            changes.push(change);
        }
        if kind == "m.room.server_acl" && key.is_empty() && self.protected.contains(room) {
            self.session.policy.on_acl(room, &sender, content.get(), &self.matrix.bot_user);
        }
        if kind == "m.room.join_rules" && key.is_empty() && room == self.matrix.management.as_str() {
            let rule = serde_json::from_str::<serde_json::Value>(content.get())
                .ok()
                .and_then(|c| c.get("join_rule").and_then(|r| r.as_str()).map(str::to_owned));
            if let Some(rule) = rule {
                self.matrix.management_rule = rule;
            }
        }
        match applied {
            gleipnir_runtime::rooms::Applied::Membership { user, previous, now } => {
                if previous == Some(gleipnir_runtime::Membership::Ban) && now != gleipnir_runtime::Membership::Ban {
                    // Unbanned (by anyone): a later ban is a new one, not a repeat.
                    self.executor.unbanned(room, &user);
                }
                if self.lost_room_check(room, &user, now) {
                    let why = if now == gleipnir_runtime::Membership::Ban { "I was banned" } else { "I was removed" };
                    self.lost.push(Lost { room: room.to_owned(), why: format!("{why} by {sender}") });
                    return None;
                }
                if !self.protected.contains(room) {
                    return None;
                }
                self.session.policy.on_member(room, &user, now).then_some(user)
            }
            _ => None,
        }
    }
}
