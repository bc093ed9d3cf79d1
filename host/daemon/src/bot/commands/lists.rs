//! The list commands: `watch`, `unwatch`, `rules`, and those that write
//! rules or act on them: `ban ENTITY LIST`, `takedown`, `unban` (with a
//! preview), `list create`. Rules are written
//! through the executor; bans follow when the rule comes back in sync.

use std::fmt::Write;
use std::sync::Arc;

use gleipnir_policy::{EntityKind, Recommendation};
use serde_json::json;

use super::super::plan::{Op, Plan};
use super::super::policy::{SHORTCODE, Unwatched, WATCHED_LISTS, permalink};
use super::super::{Bot, executor};
use super::{Reply, Verb};
use crate::parse::RoomRef;

impl Bot {
    /// A watched list named by shortcode, room id, alias or matrix.to link.
    pub(crate) async fn find_list(&self, word: &str) -> Option<String> {
        if let Some(room) = self.session.policy.shortcode(word) {
            return Some(room.to_owned());
        }
        let room = match crate::parse::room_ref(word).ok()? {
            RoomRef::Id(id) => id,
            RoomRef::Alias(alias) => self.matrix.resolve(&alias).await?,
        };
        self.session.policy.is_list(&room).then_some(room)
    }

    /// Whether the bot may write rules in a list.
    pub(crate) fn can_edit(&self, list: &str) -> bool {
        self.rooms.power_level(list, &self.matrix.bot_user) >= self.rooms.room_levels(list).state_default
    }

    pub(crate) fn list_names(&self) -> String {
        self.session.policy.list_names()
    }

    /// Writes a rule into a watched list; bans follow when it comes back in sync.
    pub(crate) async fn add_rule(
        &mut self,
        origin: &executor::Origin,
        list: &str,
        entity: &str,
        recommendation: Recommendation,
        reason: &str,
        hashed: bool,
    ) -> String {
        if !self.can_edit(list) {
            return format!("I cannot write rules in {list}: my power level there is too low. Nothing changed.");
        }
        let kind = EntityKind::of(entity);
        let hashed = hashed && !gleipnir_policy::glob::is_glob(entity);
        let published = gleipnir_policy::rule::publish(entity, &recommendation, reason, hashed);
        if !self.matrix.is_joined(list) {
            return format!("I am not in {list}. Nothing changed.");
        }
        let act = executor::Act::WriteRule {
            list: list.to_owned(),
            event_type: published.event_type.to_owned(),
            state_key: published.state_key,
            content: published.content,
        };
        match self.act(origin, act).await {
            executor::Outcome::DryRun(what) => format!("Dry run, nothing done: would {what}"),
            executor::Outcome::Done(_) => {
                let how = if hashed { " (hashed: only its sha256 is published)" } else { "" };
                format!(
                    "Added to {list}: {} {entity} {}{how}. Bans in protected rooms follow.",
                    kind.name(),
                    recommendation.published()
                )
            }
            other => format!("Could not write the rule to {list}: {}. Nothing changed.", other.text()),
        }
    }

    /// `ban ENTITY [ROOM|LIST] [reason]`
    pub(crate) async fn ban_command(
        &mut self,
        origin: &executor::Origin,
        entity: &str,
        room: Option<RoomRef>,
        reason: Option<String>,
    ) -> Reply {
        if let Some(r) = &room
            && let Some(list) = self.find_list(&r.to_string()).await
        {
            let reason = reason.unwrap_or_default();
            return Reply::Done(self.add_rule(origin, &list, entity, Recommendation::Ban, &reason, false).await);
        }
        if room.is_none()
            && let Some(reason) = &reason
        {
            let (first, rest) = reason.split_once(' ').unwrap_or((reason, ""));
            if let Some(list) = self.session.policy.shortcode(first).map(str::to_owned) {
                return Reply::Done(self.add_rule(origin, &list, entity, Recommendation::Ban, rest, false).await);
            }
        }
        if gleipnir_runtime::event::check_user_id(entity).is_ok() {
            return super::moderation::membership_plan(&self.matrix, &self.protected, Verb::Ban, entity, room, reason)
                .await;
        }
        Reply::Done(format!(
            "`{entity}` is not a user, so it can only be banned through a policy list: `ban {entity} LIST [reason]` (lists: {}).",
            self.list_names()
        ))
    }

    /// `takedown ENTITY LIST [reason]`
    pub(crate) async fn takedown_command(
        &mut self,
        origin: &executor::Origin,
        entity: &str,
        list: &str,
        reason: Option<String>,
    ) -> String {
        match self.find_list(list).await {
            Some(room) => {
                self.add_rule(origin, &room, entity, Recommendation::Takedown, &reason.unwrap_or_default(), true).await
            }
            None => format!("`{list}` is not a watched list (lists: {}). Nothing changed.", self.list_names()),
        }
    }

    /// `unban ENTITY [ROOM]`: removes the rules naming the entity from lists
    /// the bot can edit and unbans matching users, after a preview.
    pub(crate) async fn unban_command(&mut self, entity: &str, room: Option<RoomRef>) -> Reply {
        let kind = EntityKind::of(entity);
        let naming = self.session.policy.naming(entity);
        if naming.is_empty() {
            if gleipnir_runtime::event::check_user_id(entity).is_ok() {
                return super::moderation::membership_plan(
                    &self.matrix,
                    &self.protected,
                    Verb::Unban,
                    entity,
                    room,
                    None,
                )
                .await;
            }
            return Reply::Done(format!("No rule in a watched list names {entity}. Nothing changed."));
        }
        let mut plan = Plan { always_confirm: true, ..Plan::default() };
        for rule in &naming {
            if self.can_edit(&rule.list) {
                // Under every type that holds it, so no reader falls back to an older one.
                let types = self.session.policy.rule_types(rule);
                for event_type in &types {
                    let shown = if types.len() > 1 { format!("{rule} under {event_type}") } else { rule.to_string() };
                    plan.ops.push(Op::RemoveRule {
                        room: rule.list.to_string(),
                        event_type: event_type.clone(),
                        state_key: rule.state_key().to_string(),
                        rule: shown,
                    });
                }
            } else {
                plan.skipped.push(format!("{rule}: I cannot edit {}", rule.list));
            }
        }
        if kind == EntityKind::User {
            let rooms = match super::moderation::target_rooms(&self.matrix, &self.protected, room).await {
                Ok(r) => r,
                Err(e) => return Reply::Done(e),
            };
            let glob = gleipnir_policy::glob::Glob::new(entity);
            for room in rooms {
                for user in self.rooms.with_membership(&room, gleipnir_runtime::Membership::Ban) {
                    let matches = match &glob {
                        Some(g) => g.matches(&user),
                        None => user == entity,
                    };
                    if matches {
                        plan.ops.push(Op::Unban { room: room.clone(), user });
                    }
                }
            }
        }
        // Say which other rules will still apply.
        let still: Vec<String> = self
            .session
            .policy
            .matching(entity)
            .into_iter()
            .filter(|r| r.recommendation.acts() && !naming.iter().any(|n| Arc::ptr_eq(n, r)))
            .map(|r| format!("{r}: still matches (not removed)"))
            .collect();
        plan.skipped.extend(still);
        if plan.ops.is_empty() {
            let mut out = format!("Nothing I can change for {entity}.");
            for s in &plan.skipped {
                let _ = write!(out, "\n- {s}");
            }
            return Reply::Done(out);
        }
        Reply::Plan(plan)
    }

    /// `list create SHORTCODE ALIAS_LOCALPART`
    pub(crate) async fn list_create(&mut self, shortcode: &str, localpart: &str) -> String {
        use matrix_sdk::ruma::api::client::room::{Visibility, create_room};
        use matrix_sdk::ruma::serde::Raw;
        if let Some(room) = self.session.policy.shortcode(shortcode) {
            return format!("The shortcode `{shortcode}` is already used by {room}. Nothing changed.");
        }
        let mut request = create_room::v3::Request::new();
        request.room_alias_name = Some(localpart.to_owned());
        request.name = Some(format!("{shortcode} (policy list)"));
        request.topic = Some("Moderation policy rules, kept by Gleipnir.".to_owned());
        request.preset = Some(create_room::v3::RoomPreset::PublicChat);
        request.visibility = Visibility::Private;
        // Only moderators (power 50) write rules or post; the creator (the bot) keeps its power.
        let levels =
            json!({"events_default": 50, "state_default": 50, "invite": 50, "kick": 50, "ban": 50, "redact": 50});
        request.power_level_content_override = Raw::new(&levels).ok().map(Raw::cast_unchecked);
        let shortcode_event = json!({"type": SHORTCODE, "state_key": "", "content": {"shortcode": shortcode}});
        request.initial_state = Raw::new(&shortcode_event).ok().map(Raw::cast_unchecked).into_iter().collect();
        let room = match self.matrix.client.create_room(request).await {
            Ok(room) => room.room_id().to_string(),
            Err(e) => return format!("Could not create the list: {e}. Nothing changed."),
        };
        let reference = permalink(&room);
        if let Err(e) = self.watch_reference(&reference).await {
            return format!("Created {room} but could not watch it: {e}");
        }
        self.session.policy.name_list(shortcode, &room);
        let alias = format!("#{localpart}:{}", self.own_server());
        match self.save_watched().await {
            Ok(()) => {
                format!("Created the policy list {alias} ({room}) with shortcode `{shortcode}`, and watching it.")
            }
            Err(e) => format!("Created {alias} ({room}) and watching it for now, but saving failed: {e:#}"),
        }
    }

    /// Saves the watched lists: those loaded and those that failed to load
    /// (a list that is unreachable now is not forgotten for that).
    pub(crate) async fn save_watched(&self) -> anyhow::Result<()> {
        let references = self.session.policy.references();
        self.matrix.set_account(WATCHED_LISTS, json!({ "references": references })).await
    }

    /// `watch LIST`
    /// `watch LIST`: what the list would ban among the protected rooms'
    /// members is shown first, behind a ✅, when it would ban anyone; a list
    /// that bans nobody here is watched at once.
    pub(crate) async fn watch_command(&mut self, room: &RoomRef) -> Reply {
        let list = match self.matrix.join(&room.to_string()).await {
            Ok(id) => id.to_string(),
            Err(e) => return Reply::Done(format!("Could not watch {room}: cannot join it ({e:#}). Nothing changed.")),
        };
        if self.session.policy.is_list(&list) {
            return Reply::Done(format!("{room} ({list}) is watched already."));
        }
        let state = match self.matrix.room_state(&list).await {
            Ok(state) => state,
            Err(e) => return Reply::Done(format!("Could not read {room}: {e:#}. Nothing changed.")),
        };
        let mut members = Vec::new();
        for protected in self.protected.rooms() {
            members.extend(self.rooms.joined(&protected).into_iter().map(|user| (protected.clone(), user)));
        }
        let (rules, banned) = super::super::policy::Policy::preview_list(&list, &state, &members);
        if banned.is_empty() {
            return Reply::Done(self.watch(room).await);
        }
        let reference = room.to_string();
        let mut plan = Plan {
            ops: vec![Op::Watch { room: list, reference, rules, banned: banned.len() }],
            always_confirm: true,
            ..Plan::default()
        };
        plan.notes.extend(banned.iter().take(10).map(|b| format!("it would ban {b}")));
        if banned.len() > 10 {
            plan.notes.push(format!("… and {} more would be banned", banned.len() - 10));
        }
        Reply::Plan(plan)
    }

    pub(crate) async fn watch(&mut self, room: &RoomRef) -> String {
        let reference = match room {
            RoomRef::Id(id) => permalink(id),
            RoomRef::Alias(alias) => permalink(alias),
        };
        let room_id = match self.watch_reference(&reference).await {
            Ok(id) => id,
            Err(e) => return format!("Could not watch {room}: {e}. Nothing changed."),
        };
        // Store the room id, so a moved alias cannot change what is watched.
        self.session.policy.pin(&room_id);
        if let Err(e) = self.save_watched().await {
            return format!("Watching {room} for now, but saving the list of watched lists failed: {e:#}");
        }
        let rules = self.session.policy.rule_count(&room_id);
        format!("Now watching {room} ({room_id}): {rules} rule(s). Bans and ACLs follow.")
    }

    /// `unwatch LIST`
    pub(crate) async fn unwatch(&mut self, room: &RoomRef) -> String {
        let room_id = match self.matrix.room_id(room).await {
            Ok(id) => id,
            Err(reply) => return reply,
        };
        let rules = match self.session.policy.unwatch(&room_id, &room.to_string()) {
            Unwatched::NotWatched => return format!("{room} is not a watched list."),
            Unwatched::Failed(reference) => {
                if let Err(e) = self.save_watched().await {
                    return format!("Forgot {reference} for now, but saving failed: {e:#}");
                }
                return format!("No longer watching {reference} (it had failed to load).");
            }
            Unwatched::Rules(rules) => rules,
        };
        if let Err(e) = self.save_watched().await {
            return format!("Stopped watching {room} for now, but saving failed: {e:#}");
        }
        format!("No longer watching {room} ({room_id}); its {} rule(s) no longer apply. Bans already made stay.", rules)
    }
}
