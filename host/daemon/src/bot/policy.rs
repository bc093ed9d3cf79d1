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
use std::time::Instant;

use gleipnir_policy::{Delta, Entity, EntityKind, Index, Members, PolicyList, Rule, ServerAcl};
use gleipnir_runtime::{Action, TargetUser};
use serde_json::{Value, json};

use super::{Bot, executor};
use crate::parse::RoomRef;

/// Account data listing the watched policy lists.
pub(crate) const WATCHED_LISTS: &str = "org.matrix.mjolnir.watched_lists";

/// How long server rules must stay unchanged before the ACL they make is sent.
const ACL_SETTLE: std::time::Duration = std::time::Duration::from_millis(1500);

/// The state event naming a list's shortcode (Mjolnir's and Draupnir's).
pub(crate) const SHORTCODE: &str = "org.matrix.mjolnir.shortcode";

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

    /// A state event of a watched list: the rule it sets, changes or removes
    /// goes into the list, the index and the sync's pending delta.
    pub(crate) fn on_rule_state(&mut self, room: &str, event_type: &str, state_key: &str, content: &str) {
        let Some(list) = self.lists.get_mut(room) else { return };
        if let Some(change) = list.apply(event_type, state_key, content) {
            if change.new_rule().or(change.old_rule()).is_some_and(|r| r.kind == EntityKind::Server) {
                self.server_rules_changed = true;
            }
            self.index.apply_change(&change);
            self.pending.changes.push(change);
        }
    }

    /// An `m.room.server_acl` seen in a protected room. One set by someone
    /// other than `bot` makes an ACL due: ours is put back if it differs.
    pub(crate) fn on_acl(&mut self, room: &str, sender: &str, content: &str, bot: &str) {
        let Some(acl) = serde_json::from_str(content).ok().as_ref().and_then(ServerAcl::from_content) else { return };
        if sender != bot {
            self.acl_due = true;
        }
        self.acls.insert(room.to_owned(), (acl, sender.to_owned()));
    }

    /// After a sync: whether the ACL is to be sent now. Server rules that
    /// changed in this sync make it due once they have been quiet for
    /// [`ACL_SETTLE`], so a burst of rule edits gives one ACL.
    pub(crate) fn acl_ready(&mut self, now: Instant) -> bool {
        if std::mem::take(&mut self.server_rules_changed) {
            self.last_server_change = Some(now);
            self.acl_due = true;
            return false;
        }
        if self.acl_due && self.last_server_change.is_some_and(|t| now.saturating_duration_since(t) < ACL_SETTLE) {
            return false;
        }
        std::mem::take(&mut self.acl_due)
    }

    /// The ACL the rules make, and the protected rooms to send it to: those
    /// whose ACL differs, leaving alone rooms without server rules and
    /// without an ACL of ours. `None` while a watched list failed to load
    /// (an ACL from part of the rules would let banned servers back in).
    pub(crate) fn acl_updates(
        &self,
        protected: &[String],
        own_server: &str,
        bot: &str,
    ) -> Option<(ServerAcl, Vec<String>)> {
        if !self.failed.is_empty() {
            return None;
        }
        let compiled = gleipnir_policy::compile_acl(&self.index, own_server);
        for left_out in &compiled.left_out {
            tracing::warn!("server rule left out of the ACL: {left_out}");
        }
        let rooms = protected
            .iter()
            .filter(|room| {
                let current = self.acls.get(room.as_str());
                let ours = current.is_some_and(|(_, sender)| sender == bot);
                (!compiled.acl.deny.is_empty() || ours) && !current.is_some_and(|(acl, _)| acl.same_as(&compiled.acl))
            })
            .cloned()
            .collect();
        Some((compiled.acl, rooms))
    }

    /// The ACL was set in `room` by `bot`.
    pub(crate) fn acl_sent(&mut self, room: &str, acl: &ServerAcl, bot: &str) {
        self.acls.insert(room.to_owned(), (acl.clone(), bot.to_owned()));
        self.acl_denied.remove(room);
    }

    /// The ACL could not be set in `room`; true the first time (to say so once).
    pub(crate) fn acl_refused(&mut self, room: &str) -> bool {
        self.acl_denied.insert(room.to_owned())
    }

    /// A room is no longer protected: its members are no longer matched.
    pub(crate) fn unprotected(&mut self, room: &str) {
        self.members.remove_room(room);
    }

    /// The watched lists, for `status`: how many, their rules, and those that failed to load.
    pub(crate) fn lists_status(&self) -> String {
        let failed = if self.failed.is_empty() {
            String::new()
        } else {
            format!("; {} FAILED to load, so no server ACL is sent (see `rules`)", self.failed.len())
        };
        format!("{} ({} rules){failed}", self.lists.len(), self.index.len())
    }

    /// Where the server ACL stands, for `status`.
    pub(crate) fn acl_status(&self) -> String {
        if self.acl_due {
            "update due (sent once rule changes have settled)".to_owned()
        } else if !self.failed.is_empty() {
            format!("not sent while {} watched list(s) failed to load", self.failed.len())
        } else {
            "up to date".to_owned()
        }
    }
}

/// A permalink for a room id, as Draupnir stores watched lists.
pub(crate) fn permalink(room_id: &str) -> String {
    format!("https://matrix.to/#/{room_id}")
}

impl Bot {
    pub(crate) fn own_server(&self) -> &str {
        self.matrix.bot_user.split_once(':').map_or("", |(_, server)| server)
    }

    /// Joins a list by reference (permalink, id or alias), loads its rules
    /// and applies them. Returns the room id.
    pub(crate) async fn watch_reference(&mut self, reference: &str) -> Result<String, String> {
        let room = crate::parse::room_ref(reference).map_err(|e| e.to_string())?;
        let room_id = self.matrix.join(&room.to_string()).await.map_err(|e| format!("{e:#}"))?.to_string();
        self.load_list(&room_id).await?;
        self.session.policy.references.insert(room_id.clone(), reference.to_owned());
        self.session.policy.failed.remove(reference);
        Ok(room_id)
    }

    /// Reads a list room's whole state and applies the difference to what
    /// is known of it.
    async fn load_list(&mut self, room_id: &str) -> Result<(), String> {
        let state = self.matrix.room_state(room_id).await.map_err(|e| format!("cannot read it: {e:#}"))?;
        #[derive(serde::Deserialize)]
        struct Key {
            #[serde(rename = "type")]
            kind: String,
            state_key: String,
        }
        let list = self.session.policy.lists.entry(room_id.to_owned()).or_insert_with(|| PolicyList::new(room_id));
        // Rules that are gone from the state (lost while away) are removed,
        // under the event type they came in.
        let keys: Vec<Key> = state.iter().filter_map(|json| serde_json::from_str(json).ok()).collect();
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
        for json in &state {
            self.state_event(room_id, json);
        }
        Ok(())
    }

    fn note_shortcode(&mut self, room: &str, content: &str) {
        let code = serde_json::from_str::<Value>(content).ok().and_then(|v| v["shortcode"].as_str().map(str::to_owned));
        self.session.policy.shortcodes.retain(|_, r| r != room);
        if let Some(code) = code {
            self.session.policy.shortcodes.insert(code, room.to_owned());
        }
    }

    /// A state event (from sync) in a watched list.
    pub(crate) fn list_state(&mut self, room: &str, event_type: &str, state_key: &str, content: &str) {
        if event_type == SHORTCODE {
            self.note_shortcode(room, content);
        }
        self.session.policy.on_rule_state(room, event_type, state_key, content);
    }

    /// A redaction in a watched list: the rule it removed is found by
    /// reloading the list's state.
    pub(crate) fn list_redaction(&mut self, room: &str) {
        if self.session.policy.is_list(room) {
            self.session.policy.reload.insert(room.to_owned());
        }
    }

    /// A membership change in a protected room.
    pub(crate) fn member_state(&mut self, room: &str, user: &str, membership: gleipnir_runtime::Membership) -> bool {
        use gleipnir_runtime::Membership::{Invite, Join, Knock};
        let present = matches!(membership, Join | Invite | Knock);
        self.session.policy.members.set(room, user, present);
        matches!(membership, Join | Knock)
    }

    /// An `m.room.server_acl` in a protected room.
    pub(crate) fn acl_state(&mut self, room: &str, sender: &str, content: &str) {
        self.session.policy.on_acl(room, sender, content, &self.matrix.bot_user);
    }

    /// Bans a user who joined or knocked, if a rule says so (carried out
    /// with the sync's other actions).
    pub(crate) fn check_newcomer(&mut self, room: &str, user: &str) {
        let Some(rule) = self.session.policy.index.acting(EntityKind::User, user).cloned() else { return };
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
        for room in std::mem::take(&mut self.session.policy.reload) {
            if let Err(e) = self.load_list(&room).await {
                tracing::warn!(room, "cannot reload the list: {e}");
            }
        }
        let delta = std::mem::take(&mut self.session.policy.pending);
        // Protections that asked for policy events, and room takedowns, get
        // the rules not acted on before (every start loads every rule again).
        let fresh = self.delivered.fresh(&delta);
        let wanted = self.protections.enabled.values().any(|i| i.plugin().wants(gleipnir_runtime::EventClass::Policy));
        if wanted {
            for change in &fresh.changes {
                self.dispatch(policy_event(change)).await;
            }
        }
        self.room_takedowns(&fresh).await;
        if !delta.is_empty() {
            let bans = gleipnir_policy::bans_for(&delta, &self.session.policy.members);
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
        if self.session.policy.acl_ready(Instant::now()) {
            self.sync_acls().await;
        }
    }

    /// Sends the compiled ACL to every protected room whose ACL differs.
    async fn sync_acls(&mut self) {
        let own_server = self.own_server().to_owned();
        let Some((acl, rooms)) =
            self.session.policy.acl_updates(&self.protected.rooms(), &own_server, &self.matrix.bot_user)
        else {
            let failed: Vec<&String> = self.session.policy.failed.keys().collect();
            tracing::warn!(?failed, "not sending server ACLs: a watched list failed to load");
            return;
        };
        let content = acl.content();
        for room in rooms {
            let act = executor::Act::ServerAcl { room: room.clone(), content: content.clone() };
            match self.act(&executor::Origin::Policy, act).await {
                executor::Outcome::Done(_) | executor::Outcome::Unneeded => {
                    self.session.policy.acl_sent(&room, &acl, &self.matrix.bot_user);
                    tracing::info!(room, deny = acl.deny.len(), "server ACL updated");
                }
                executor::Outcome::DryRun(what) => {
                    self.matrix.notify(&format!("Dry run, nothing done: would {what}")).await
                }
                other => {
                    if self.session.policy.acl_refused(&room) {
                        let e = other.text();
                        self.matrix
                            .notify(&format!("Cannot set the server ACL of {room}: {e}. (Said once per room.)"))
                            .await;
                    }
                }
            }
        }
    }

    /// Saves the watched lists: those loaded and those that failed to load
    /// (a list that is unreachable now is not forgotten for that).
    pub(crate) async fn save_watched(&self) -> anyhow::Result<()> {
        let mut references: Vec<&String> = self.session.policy.references.values().collect();
        references.extend(self.session.policy.failed.keys().filter(|r| *r != WATCHED_LISTS));
        self.matrix.set_account(WATCHED_LISTS, json!({ "references": references })).await
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
        self.session.policy.references.insert(room_id.clone(), permalink(&room_id));
        if let Err(e) = self.save_watched().await {
            return format!("Watching {room} for now, but saving the list of watched lists failed: {e:#}");
        }
        let rules = self.session.policy.lists.get(&room_id).map_or(0, PolicyList::len);
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
        let Some(list) = self.session.policy.lists.remove(&room_id) else {
            // A list that failed to load is unwatched by the reference it was stored under.
            let failed = self.session.policy.failed.keys().find(|r| {
                crate::parse::room_ref(r)
                    .is_ok_and(|parsed| parsed.to_string() == room.to_string() || parsed.to_string() == room_id)
            });
            let Some(reference) = failed.cloned() else { return format!("{room} is not a watched list.") };
            self.session.policy.failed.remove(&reference);
            if let Err(e) = self.save_watched().await {
                return format!("Forgot {reference} for now, but saving failed: {e:#}");
            }
            self.session.policy.acl_due = true;
            return format!("No longer watching {reference} (it had failed to load).");
        };
        let reference = self.session.policy.references.remove(&room_id);
        self.session.policy.index.remove_list(&room_id);
        self.session.policy.shortcodes.retain(|_, r| *r != room_id);
        if let Some(r) = &reference {
            self.session.policy.failed.remove(r);
        }
        if let Err(e) = self.save_watched().await {
            return format!("Stopped watching {room} for now, but saving failed: {e:#}");
        }
        // Its server rules are gone, or it was the failed list holding ACLs back.
        self.session.policy.acl_due = true;
        format!(
            "No longer watching {room} ({room_id}); its {} rule(s) no longer apply. Bans already made stay.",
            list.len()
        )
    }

    /// `rules` and `rules matching ENTITY`
    pub(crate) fn rules(&self, matching: Option<&str>) -> String {
        if let Some(entity) = matching {
            let kind = EntityKind::of(entity);
            let rules = self.session.policy.index.matching(kind, entity);
            if rules.is_empty() {
                return format!("No rule matches {entity}.");
            }
            let mut out = format!("{} rule(s) match {entity}:", rules.len());
            for rule in rules {
                let _ = write!(out, "\n- {rule}");
            }
            return out;
        }
        if self.session.policy.lists.is_empty() && self.session.policy.failed.is_empty() {
            return "No watched lists. Watch one with `watch LIST`.".to_owned();
        }
        let mut out = String::from("Watched lists:");
        for (room, list) in &self.session.policy.lists {
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
        for (reference, why) in &self.session.policy.failed {
            let _ = write!(out, "\n- {reference}: FAILED to load: {why}");
        }
        out
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
pub(crate) fn rule_event_type(rule: &Rule) -> String {
    let kind = rule.kind.name();
    match rule.generation {
        gleipnir_policy::rule::Generation::Stable => format!("m.policy.rule.{kind}"),
        gleipnir_policy::rule::Generation::Room => format!("m.room.rule.{kind}"),
        gleipnir_policy::rule::Generation::Mjolnir => format!("org.matrix.mjolnir.rule.{kind}"),
    }
}

#[cfg(test)]
mod tests;
