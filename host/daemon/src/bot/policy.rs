//! Policy lists in the running bot: the watched lists (account data
//! `org.matrix.mjolnir.watched_lists`, Draupnir's shape), their rules kept
//! current from sync, bans when a rule appears and when a matching user
//! joins or knocks, and the server ACL of every protected room.
//!
//! ACL invariants: the bot's own server is never denied; no ACL is sent
//! while any watched list failed to load; an unchanged ACL is not re-sent; a
//! burst of rule changes gives one ACL update per room (sent once a sync
//! brings no further server-rule change); ACL edits by others are corrected.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write;

use std::sync::Arc;

use gleipnir_policy::rule::{sha256, sha256_base64, state_key_for};
use gleipnir_policy::{Delta, Entity, EntityKind, Index, Members, PolicyList, Recommendation, Rule, ServerAcl};
use gleipnir_runtime::{Action, TargetUser};
use matrix_sdk::ruma::OwnedRoomId;
use serde_json::{Value, json};

use super::commands::{Reply, Verb};
use super::plan::{Op, Plan};
use super::{Bot, executor, store};
use crate::commands::parse::RoomRef;

/// Account data listing the watched policy lists.
pub(crate) const WATCHED_LISTS: &str = "org.matrix.mjolnir.watched_lists";

/// How long server rules must stay unchanged before the ACL they make is sent.
const ACL_SETTLE: std::time::Duration = std::time::Duration::from_millis(1500);

/// The state event naming a list's shortcode (Mjolnir's and Draupnir's).
const SHORTCODE: &str = "org.matrix.mjolnir.shortcode";

#[derive(Default)]
pub(crate) struct Policy {
    /// By room id.
    pub(crate) lists: BTreeMap<String, PolicyList>,
    /// Room id → the reference as stored (a matrix.to permalink).
    pub(crate) references: BTreeMap<String, String>,
    /// Lists that could not be loaded: reference → why. While any is here,
    /// no ACL is sent.
    pub(crate) failed: BTreeMap<String, String>,
    pub(crate) index: Index,
    pub(crate) members: Members,
    /// Rule changes whose bans are not yet made (collected over one sync;
    /// the index has them already).
    pending: Delta,
    /// Server rules changed in the sync being handled.
    server_rules_changed: bool,
    /// When a server rule last changed: the ACL waits until they have been quiet a while.
    last_server_change: Option<std::time::Instant>,
    /// An ACL is due once the rule changes settle.
    acl_due: bool,
    /// A list room's rule was redacted: reload its state.
    reload: BTreeSet<String>,
    /// The ACL of each protected room, and who set it.
    acls: HashMap<String, (ServerAcl, String)>,
    /// Rooms whose ACL could not be set, reported once.
    acl_denied: BTreeSet<String>,
    /// List shortcodes (`org.matrix.mjolnir.shortcode`) → list room id.
    pub(crate) shortcodes: BTreeMap<String, String>,
}

impl Policy {
    pub(crate) fn is_list(&self, room: &str) -> bool {
        self.lists.contains_key(room)
    }

    /// Whether the sync loop should come back soon to send a settled ACL.
    pub(crate) fn acl_due(&self) -> bool {
        self.acl_due
    }
}

/// A permalink for a room id, as Draupnir stores watched lists.
pub(crate) fn permalink(room_id: &str) -> String {
    format!("https://matrix.to/#/{room_id}")
}

impl Bot {
    fn own_server(&self) -> &str {
        self.bot_user.split_once(':').map_or("", |(_, server)| server)
    }

    /// Joins a list by reference (permalink, id or alias), loads its rules
    /// and applies them. Returns the room id.
    pub(crate) async fn watch_reference(&mut self, reference: &str) -> Result<String, String> {
        let room = crate::commands::parse::room_ref(reference).map_err(|e| e.to_string())?;
        let room_id = super::join(&self.client, &room.to_string()).await.map_err(|e| format!("{e:#}"))?.to_string();
        self.load_list(&room_id).await?;
        self.policy.references.insert(room_id.clone(), reference.to_owned());
        self.policy.failed.remove(reference);
        Ok(room_id)
    }

    /// Reads a list room's whole state and applies the difference to what
    /// is known of it.
    async fn load_list(&mut self, room_id: &str) -> Result<(), String> {
        use matrix_sdk::ruma::api::client::state::get_state_events;
        let id = OwnedRoomId::try_from(room_id).map_err(|e| e.to_string())?;
        let response = self
            .client
            .send(get_state_events::v3::Request::new(id))
            .await
            .map_err(|e| format!("cannot read it: {e}"))?;
        #[derive(serde::Deserialize)]
        struct Key {
            #[serde(rename = "type")]
            kind: String,
            state_key: String,
        }
        let list = self.policy.lists.entry(room_id.to_owned()).or_insert_with(|| PolicyList::new(room_id));
        // Rules that are gone from the state (lost while away) are removed,
        // under the event type they came in.
        let keys: Vec<Key> =
            response.room_state.iter().filter_map(|raw| serde_json::from_str(raw.json().get()).ok()).collect();
        let present: HashSet<(EntityKind, &str)> = keys
            .iter()
            .filter_map(|e| gleipnir_policy::rule::rule_type(&e.kind).map(|(k, _)| (k, e.state_key.as_str())))
            .collect();
        let stale: Vec<(String, String)> = list
            .rules()
            .filter(|r| !present.contains(&(r.kind, r.state_key.as_str())))
            .map(|r| (rule_event_type(r), r.state_key.clone()))
            .collect();
        for (event_type, state_key) in &stale {
            self.list_state(room_id, event_type, state_key, "{}");
        }
        // Everything else goes the way sync state does: the room cache (power
        // levels, to tell whether rules can be written), the shortcode, and
        // each rule into the list, the index and the pending delta.
        for raw in &response.room_state {
            self.state_event(room_id, raw.json().get());
        }
        Ok(())
    }

    fn note_shortcode(&mut self, room: &str, content: &str) {
        let code = serde_json::from_str::<Value>(content).ok().and_then(|v| v["shortcode"].as_str().map(str::to_owned));
        self.policy.shortcodes.retain(|_, r| r != room);
        if let Some(code) = code {
            self.policy.shortcodes.insert(code, room.to_owned());
        }
    }

    /// A state event (from sync) in a watched list.
    pub(crate) fn list_state(&mut self, room: &str, event_type: &str, state_key: &str, content: &str) {
        if event_type == SHORTCODE {
            self.note_shortcode(room, content);
        }
        let Some(list) = self.policy.lists.get_mut(room) else { return };
        if let Some(change) = list.apply(event_type, state_key, content) {
            if change.new_rule().or(change.old_rule()).is_some_and(|r| r.kind == EntityKind::Server) {
                self.policy.server_rules_changed = true;
            }
            self.policy.index.apply_change(&change);
            self.policy.pending.changes.push(change);
        }
    }

    /// A redaction in a watched list: the rule it removed is found by
    /// reloading the list's state.
    pub(crate) fn list_redaction(&mut self, room: &str) {
        if self.policy.is_list(room) {
            self.policy.reload.insert(room.to_owned());
        }
    }

    /// A membership change in a protected room.
    pub(crate) fn member_state(&mut self, room: &str, user: &str, membership: gleipnir_runtime::Membership) -> bool {
        use gleipnir_runtime::Membership::{Invite, Join, Knock};
        let present = matches!(membership, Join | Invite | Knock);
        self.policy.members.set(room, user, present);
        matches!(membership, Join | Knock)
    }

    /// An `m.room.server_acl` in a protected room.
    pub(crate) fn acl_state(&mut self, room: &str, sender: &str, content: &str) {
        let Some(acl) = serde_json::from_str(content).ok().as_ref().and_then(ServerAcl::from_content) else { return };
        if sender != self.bot_user {
            // Someone else edited it: put ours back if it differs.
            self.policy.acl_due = true;
        }
        self.policy.acls.insert(room.to_owned(), (acl, sender.to_owned()));
    }

    /// Bans a user who joined or knocked, if a rule says so (carried out
    /// with the sync's other actions).
    pub(crate) fn check_newcomer(&mut self, room: &str, user: &str) {
        let Some(rule) = self.policy.index.acting(EntityKind::User, user).cloned() else { return };
        if self.rooms.membership(room, user) == Some(gleipnir_runtime::Membership::Ban) {
            return;
        }
        self.jobs.push(executor::Job::Report(format!("Policy: banning {user} in {room} on joining ({rule}).")));
        let action =
            Action::Ban(TargetUser { room_id: room.to_owned(), user_id: user.to_owned(), reason: rule.reason.clone() });
        self.jobs.push(executor::Job::Act(executor::Origin::Policy, action));
    }

    /// After a sync: reload lists that saw redactions, apply the rule changes
    /// (bans), and send ACLs once the server rules have settled.
    pub(crate) async fn apply_policy(&mut self) {
        for room in std::mem::take(&mut self.policy.reload) {
            if let Err(e) = self.load_list(&room).await {
                tracing::warn!(room, "cannot reload the list: {e}");
            }
        }
        let delta = std::mem::take(&mut self.policy.pending);
        // Protections that asked for policy events, and room takedowns, get
        // the rules not acted on before (every start loads every rule again).
        let fresh = self.delivered.fresh(&delta);
        let wanted = self.enabled.values().any(|i| i.plugin().wants(gleipnir_runtime::EventClass::Policy));
        if wanted {
            for change in &fresh.changes {
                self.dispatch(policy_event(change)).await;
            }
        }
        self.room_takedowns(&fresh).await;
        if !delta.is_empty() {
            let bans = gleipnir_policy::bans_for(&delta, &self.policy.members);
            if !bans.is_empty() {
                let mut text = format!("Policy: {} ban(s) for the rules that changed:", bans.len());
                for ban in bans.iter().take(10) {
                    let _ = write!(text, "\n- {} in {} ({})", ban.user, ban.room, ban.rule);
                }
                if bans.len() > 10 {
                    let _ = write!(text, "\n- … and {} more", bans.len() - 10);
                }
                text.push_str("\nA ban that cannot be made is reported on its own.");
                self.jobs.push(executor::Job::Report(text));
            }
            for ban in &bans {
                let action = Action::Ban(TargetUser {
                    room_id: ban.room.to_string(),
                    user_id: ban.user.clone(),
                    reason: ban.rule.reason.clone(),
                });
                self.jobs.push(executor::Job::Act(executor::Origin::Policy, action));
            }
        }
        if std::mem::take(&mut self.policy.server_rules_changed) {
            self.policy.last_server_change = Some(std::time::Instant::now());
            // Wait for a sync without further server-rule changes.
            self.policy.acl_due = true;
            return;
        }
        // A burst of rule edits (someone adding several rules one by one) gives one ACL.
        if self.policy.acl_due && self.policy.last_server_change.is_some_and(|t| t.elapsed() < ACL_SETTLE) {
            return;
        }
        if std::mem::take(&mut self.policy.acl_due) {
            self.sync_acls().await;
        }
    }

    /// Sends the compiled ACL to every protected room whose ACL differs.
    async fn sync_acls(&mut self) {
        if !self.policy.failed.is_empty() {
            let failed: Vec<&String> = self.policy.failed.keys().collect();
            tracing::warn!(?failed, "not sending server ACLs: a watched list failed to load");
            return;
        }
        let compiled = gleipnir_policy::compile_acl(&self.policy.index, self.own_server());
        for left_out in &compiled.left_out {
            tracing::warn!("server rule left out of the ACL: {left_out}");
        }
        let content = compiled.acl.content();
        for room in self.protected.clone() {
            let current = self.policy.acls.get(&room);
            let ours = current.is_some_and(|(_, sender)| *sender == self.bot_user);
            // Rooms without server rules and without an ACL of ours are left alone.
            if compiled.acl.deny.is_empty() && !ours {
                continue;
            }
            if current.is_some_and(|(acl, _)| acl.same_as(&compiled.acl)) {
                continue;
            }
            let act = executor::Act::ServerAcl { room: room.clone(), content: content.clone() };
            match self.act(&executor::Origin::Policy, act).await {
                executor::Outcome::Done(_) | executor::Outcome::Unneeded => {
                    self.policy.acls.insert(room.clone(), (compiled.acl.clone(), self.bot_user.clone()));
                    self.policy.acl_denied.remove(&room);
                    tracing::info!(room, deny = compiled.acl.deny.len(), "server ACL updated");
                }
                executor::Outcome::DryRun(what) => self.notify(&format!("Dry run, nothing done: would {what}")).await,
                other => {
                    if self.policy.acl_denied.insert(room.clone()) {
                        let e = other.text();
                        self.notify(&format!("Cannot set the server ACL of {room}: {e}. (Said once per room.)")).await;
                    }
                }
            }
        }
    }

    /// Saves the watched lists: those loaded and those that failed to load
    /// (a list that is unreachable now is not forgotten for that).
    async fn save_watched(&self) -> anyhow::Result<()> {
        let mut references: Vec<&String> = self.policy.references.values().collect();
        references.extend(self.policy.failed.keys().filter(|r| *r != WATCHED_LISTS));
        store::write(&self.client, WATCHED_LISTS, json!({ "references": references })).await
    }

    /// `watch LIST`
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
        self.policy.references.insert(room_id.clone(), permalink(&room_id));
        if let Err(e) = self.save_watched().await {
            return format!("Watching {room} for now, but saving the list of watched lists failed: {e:#}");
        }
        let rules = self.policy.lists.get(&room_id).map_or(0, PolicyList::len);
        format!("Now watching {room} ({room_id}): {rules} rule(s). Bans and ACLs follow.")
    }

    /// `unwatch LIST`
    pub(crate) async fn unwatch(&mut self, room: &RoomRef) -> String {
        let room_id = match room {
            RoomRef::Id(id) => id.clone(),
            RoomRef::Alias(alias) => match self.resolve(alias).await {
                Some(id) => id,
                None => return format!("Could not resolve {alias}. Nothing changed."),
            },
        };
        let Some(list) = self.policy.lists.remove(&room_id) else {
            // A list that failed to load is unwatched by the reference it was stored under.
            let failed = self.policy.failed.keys().find(|r| {
                crate::commands::parse::room_ref(r)
                    .is_ok_and(|parsed| parsed.to_string() == room.to_string() || parsed.to_string() == room_id)
            });
            let Some(reference) = failed.cloned() else { return format!("{room} is not a watched list.") };
            self.policy.failed.remove(&reference);
            if let Err(e) = self.save_watched().await {
                return format!("Forgot {reference} for now, but saving failed: {e:#}");
            }
            self.policy.acl_due = true;
            return format!("No longer watching {reference} (it had failed to load).");
        };
        let reference = self.policy.references.remove(&room_id);
        self.policy.index.remove_list(&room_id);
        self.policy.shortcodes.retain(|_, r| *r != room_id);
        if let Some(r) = &reference {
            self.policy.failed.remove(r);
        }
        if let Err(e) = self.save_watched().await {
            return format!("Stopped watching {room} for now, but saving failed: {e:#}");
        }
        // Its server rules are gone, or it was the failed list holding ACLs back.
        self.policy.acl_due = true;
        format!(
            "No longer watching {room} ({room_id}); its {} rule(s) no longer apply. Bans already made stay.",
            list.len()
        )
    }

    /// `rules` and `rules matching ENTITY`
    pub(crate) fn rules(&self, matching: Option<&str>) -> String {
        if let Some(entity) = matching {
            let kind = EntityKind::of(entity);
            let rules = self.policy.index.matching(kind, entity);
            if rules.is_empty() {
                return format!("No rule matches {entity}.");
            }
            let mut out = format!("{} rule(s) match {entity}:", rules.len());
            for rule in rules {
                let _ = write!(out, "\n- {rule}");
            }
            return out;
        }
        if self.policy.lists.is_empty() && self.policy.failed.is_empty() {
            return "No watched lists. Watch one with `watch LIST`.".to_owned();
        }
        let mut out = String::from("Watched lists:");
        for (room, list) in &self.policy.lists {
            let count = |kind| list.rules().filter(|r| r.kind == kind).count();
            let _ = write!(
                out,
                "\n- {room}: {} rule(s) ({} user, {} room, {} server)",
                list.len(),
                count(EntityKind::User),
                count(EntityKind::Room),
                count(EntityKind::Server)
            );
            let invalid = list.invalid().count();
            if invalid > 0 {
                let _ = write!(out, ", {invalid} unusable rule event(s)");
            }
        }
        for (reference, why) in &self.policy.failed {
            let _ = write!(out, "\n- {reference}: FAILED to load: {why}");
        }
        out
    }
}

impl Bot {
    /// A watched list named by shortcode, room id, alias or matrix.to link.
    async fn find_list(&self, word: &str) -> Option<String> {
        if let Some(room) = self.policy.shortcodes.get(word) {
            return Some(room.clone());
        }
        let room = match crate::commands::parse::room_ref(word).ok()? {
            RoomRef::Id(id) => id,
            RoomRef::Alias(alias) => self.resolve(&alias).await?,
        };
        self.policy.is_list(&room).then_some(room)
    }

    /// Whether the bot may write rules in a list.
    fn can_edit(&self, list: &str) -> bool {
        self.rooms.power_level(list, &self.bot_user) >= self.rooms.room_levels(list).state_default
    }

    fn list_names(&self) -> String {
        let mut names: Vec<String> = self.policy.shortcodes.keys().cloned().collect();
        names.extend(self.policy.lists.keys().filter(|r| !self.policy.shortcodes.values().any(|v| v == *r)).cloned());
        if names.is_empty() { "none are watched".to_owned() } else { names.join(", ") }
    }

    /// Writes a rule into a watched list; bans follow when it comes back in sync.
    async fn add_rule(
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
        let glob = gleipnir_policy::glob::is_glob(entity);
        let hashed = hashed && !glob;
        let written_entity = if hashed { Entity::Hashed(sha256(entity)) } else { Entity::from_text(entity) };
        let state_key = state_key_for(&written_entity, &recommendation);
        let content = if hashed {
            json!({"recommendation": recommendation.as_str(), "reason": reason, "hashes": {"sha256": sha256_base64(entity)}})
        } else {
            json!({"entity": entity, "recommendation": recommendation.as_str(), "reason": reason})
        };
        if OwnedRoomId::try_from(list).ok().and_then(|id| self.client.get_room(&id)).is_none() {
            return format!("I am not in {list}. Nothing changed.");
        }
        let event_type = kind.event_type().to_owned();
        let act = executor::Act::WriteRule { list: list.to_owned(), event_type, state_key, content };
        match self.act(origin, act).await {
            executor::Outcome::DryRun(what) => format!("Dry run, nothing done: would {what}"),
            executor::Outcome::Done(_) => {
                let how = if hashed { " (hashed: only its sha256 is published)" } else { "" };
                format!(
                    "Added to {list}: {} {entity} {}{how}. Bans in protected rooms follow.",
                    kind.name(),
                    recommendation.as_str()
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
            if let Some(list) = self.policy.shortcodes.get(first).cloned() {
                return Reply::Done(self.add_rule(origin, &list, entity, Recommendation::Ban, rest, false).await);
            }
        }
        if gleipnir_runtime::event::check_user_id(entity).is_ok() {
            return self.membership_plan(Verb::Ban, entity, room, reason).await;
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
        let hash = sha256(entity);
        let naming: Vec<Arc<Rule>> = self
            .policy
            .index
            .rules(kind)
            .filter(|r| r.recommendation.acts())
            .filter(|r| match &r.entity {
                Entity::Hashed(h) => *h == hash,
                other => other.to_string() == entity,
            })
            .cloned()
            .collect();
        if naming.is_empty() {
            if gleipnir_runtime::event::check_user_id(entity).is_ok() {
                return self.membership_plan(Verb::Unban, entity, room, None).await;
            }
            return Reply::Done(format!("No rule in a watched list names {entity}. Nothing changed."));
        }
        let mut plan = Plan { always_confirm: true, ..Plan::default() };
        for rule in &naming {
            if self.can_edit(&rule.list) {
                plan.ops.push(Op::RemoveRule {
                    room: rule.list.to_string(),
                    event_type: rule_event_type(rule),
                    state_key: rule.state_key.clone(),
                    rule: rule.to_string(),
                });
            } else {
                plan.skipped.push(format!("{rule}: I cannot edit {}", rule.list));
            }
        }
        if kind == EntityKind::User {
            let rooms = match self.target_rooms(room).await {
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
            .policy
            .index
            .matching(kind, entity)
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
        if let Some(room) = self.policy.shortcodes.get(shortcode) {
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
        let room = match self.client.create_room(request).await {
            Ok(room) => room.room_id().to_string(),
            Err(e) => return format!("Could not create the list: {e}. Nothing changed."),
        };
        let reference = permalink(&room);
        if let Err(e) = self.watch_reference(&reference).await {
            return format!("Created {room} but could not watch it: {e}");
        }
        self.policy.shortcodes.insert(shortcode.to_owned(), room.clone());
        let alias = format!("#{localpart}:{}", self.own_server());
        match self.save_watched().await {
            Ok(()) => {
                format!("Created the policy list {alias} ({room}) with shortcode `{shortcode}`, and watching it.")
            }
            Err(e) => format!("Created {alias} ({room}) and watching it for now, but saving failed: {e:#}"),
        }
    }
}

/// A rule change as the contract's event: `room-id` is the list.
fn policy_event(change: &gleipnir_policy::Change) -> gleipnir_runtime::Event {
    use gleipnir_runtime::{EventKind, PolicyChange, PolicyRule, RuleChange, RuleKind};
    let (what, rule) = match change {
        gleipnir_policy::Change::Added(r) => (RuleChange::Added, r),
        gleipnir_policy::Change::Modified { new, .. } => (RuleChange::Modified, new),
        gleipnir_policy::Change::Removed(r) => (RuleChange::Removed, r),
    };
    let (entity, entity_sha256) = match &rule.entity {
        Entity::Hashed(h) => (None, Some(gleipnir_policy::rule::hash_base64(h))),
        other => (Some(other.to_string()), None),
    };
    gleipnir_runtime::Event {
        room_id: rule.list.to_string(),
        event_id: String::new(),
        sender: String::new(),
        origin_ts: 0,
        received_ts: 0,
        content: String::new(),
        kind: EventKind::Policy(PolicyChange {
            change: what,
            rule: PolicyRule {
                kind: match rule.kind {
                    EntityKind::User => RuleKind::User,
                    EntityKind::Room => RuleKind::Room,
                    EntityKind::Server => RuleKind::Server,
                },
                entity,
                entity_sha256,
                recommendation: rule.recommendation.as_str().to_owned(),
                reason: rule.reason.clone(),
            },
        }),
    }
}

/// The event type a rule was found under (the newest generation's otherwise).
fn rule_event_type(rule: &Rule) -> String {
    let kind = rule.kind.name();
    match rule.generation {
        gleipnir_policy::rule::Generation::Stable => format!("m.policy.rule.{kind}"),
        gleipnir_policy::rule::Generation::Room => format!("m.room.rule.{kind}"),
        gleipnir_policy::rule::Generation::Mjolnir => format!("org.matrix.mjolnir.rule.{kind}"),
    }
}
