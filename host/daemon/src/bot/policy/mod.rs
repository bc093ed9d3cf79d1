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
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Instant;

use gleipnir_policy::{Delta, EntityKind, EntityRef, Index, Members, PolicyList, Rule, ServerAcl};
use gleipnir_runtime::{Action, TargetUser};
use serde_json::Value;

use super::executor::{Job, Origin};

/// Account data listing the watched policy lists.
pub(crate) const WATCHED_LISTS: &str = "org.matrix.mjolnir.watched_lists";

/// How long server rules must stay unchanged before the ACL they make is sent.
const ACL_SETTLE: std::time::Duration = std::time::Duration::from_millis(1500);

/// The state event naming a list's shortcode (Mjolnir's and Draupnir's).
pub(crate) const SHORTCODE: &str = "org.matrix.mjolnir.shortcode";

#[derive(Default)]
pub(crate) struct Policy {
    /// By room id.
    lists: BTreeMap<String, PolicyList>,
    /// Room id → the reference as stored (a matrix.to permalink).
    references: BTreeMap<String, String>,
    /// Lists that could not be loaded: reference → why. While any is here,
    /// no ACL is sent.
    failed: BTreeMap<String, String>,
    /// Shared with the pre-emptive checks (`gate.rs`), which read it
    /// between the bot's changes.
    index: SharedIndex,
    members: Members,
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
    shortcodes: BTreeMap<String, String>,
    /// Who changed rules in each list since the last change report.
    changed_by: BTreeMap<String, BTreeSet<String>>,
}

/// The rules of every watched list, indexed; read by the bot and the
/// pre-emptive checks, written by the bot only.
#[derive(Clone, Default)]
pub(crate) struct SharedIndex(Arc<RwLock<Index>>);

impl SharedIndex {
    /// A panic while writing cannot leave a half-applied change visible
    /// for long: the next change or reload rebuilds what it touches. The
    /// poison is ignored.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Index> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The first rule asking to ban (or take down) `entity`, if any.
    pub(crate) fn acting(&self, kind: EntityKind, entity: &str) -> Option<Arc<Rule>> {
        self.read().acting(kind, entity).cloned()
    }
}

impl Policy {
    /// The rules, for the pre-emptive checks.
    pub(crate) fn shared_index(&self) -> SharedIndex {
        self.index.clone()
    }

    pub(crate) fn is_list(&self, room: &str) -> bool {
        self.lists.contains_key(room)
    }

    /// Whether the sync loop should come back soon to send a settled ACL.
    pub(crate) fn acl_due(&self) -> bool {
        self.acl_due
    }

    /// A state event of a watched list: the rule it sets, changes or removes
    /// goes into the list, the index and the sync's pending delta; a
    /// shortcode names the list.
    /// `sender` sent the event (empty when the bot read the state whole).
    pub(crate) fn on_rule_state(&mut self, room: &str, event_type: &str, state_key: &str, content: &str, sender: &str) {
        if event_type == SHORTCODE && self.is_list(room) {
            let code =
                serde_json::from_str::<Value>(content).ok().and_then(|v| v["shortcode"].as_str().map(str::to_owned));
            self.shortcodes.retain(|_, r| r != room);
            if let Some(code) = code {
                self.shortcodes.insert(code, room.to_owned());
            }
        }
        let Some(list) = self.lists.get_mut(room) else { return };
        if let Some(change) = list.apply(event_type, state_key, content) {
            if change.new_rule().or(change.old_rule()).is_some_and(|r| r.kind == EntityKind::Server) {
                self.server_rules_changed = true;
            }
            self.index.write().apply_change(&change);
            self.pending.changes.push(change);
            if !sender.is_empty() {
                self.changed_by.entry(room.to_owned()).or_default().insert(sender.to_owned());
            }
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
        let compiled = gleipnir_policy::compile_acl(&self.index.read(), own_server);
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
        format!("{} ({} rules){failed}", self.lists.len(), self.index.read().len())
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

    /// Starts (or goes on) watching a list loaded from `reference`.
    pub(crate) fn watching(&mut self, room_id: &str, reference: &str) {
        self.lists.entry(room_id.to_owned()).or_insert_with(|| PolicyList::new(room_id));
        self.references.insert(room_id.to_owned(), reference.to_owned());
        self.failed.remove(reference);
    }

    /// Stores a watched list under its room id, so a moved alias cannot change what is watched.
    pub(crate) fn pin(&mut self, room_id: &str) {
        if self.lists.contains_key(room_id) {
            self.references.insert(room_id.to_owned(), permalink(room_id));
        }
    }

    /// Starts keeping the rules of the list `room_id` if it was not yet
    /// (its state events then go into it); whether it holds no rules.
    pub(crate) fn open(&mut self, room_id: &str) -> bool {
        let list = self.lists.entry(room_id.to_owned()).or_insert_with(|| PolicyList::new(room_id));
        list.rules().next().is_none()
    }

    /// A list whose state is about to be read whole: the rules it holds that
    /// are not in `state` (lost while away), as (event type, state key), to
    /// be removed under the type they came in.
    pub(crate) fn gone_from(&mut self, room_id: &str, state: &[String]) -> Vec<(String, String)> {
        let list = self.lists.entry(room_id.to_owned()).or_insert_with(|| PolicyList::new(room_id));
        if list.rules().next().is_none() {
            return Vec::new();
        }
        // Borrowed from the events where they hold no escapes (a list of many rules is a large state).
        let keys: Vec<_> = state.iter().filter_map(|json| crate::bot::ingest::state_key_of(json)).collect();
        let present: HashSet<(EntityKind, &str)> = keys
            .iter()
            .filter_map(|(kind, key)| gleipnir_policy::rule::rule_type(kind).map(|(k, _)| (k, &**key)))
            .collect();
        list.rules()
            .filter(|r| !present.contains(&(r.kind, r.state_key())))
            .map(|r| (gleipnir_policy::rule::event_type(r), r.state_key().to_string()))
            .collect()
    }

    /// A watched list could not be reached while running: its rules stay,
    /// and no ACL is sent until it is back or unwatched. Returns the
    /// reference it is stored under.
    pub(crate) fn lost(&mut self, room: &str, why: &str) -> Option<String> {
        let reference = self.references.get(room).cloned()?;
        self.failed.insert(reference.clone(), why.to_owned());
        Some(reference)
    }

    /// Stops watching a list (by room id, or by the reference `named`
    /// matches if it failed to load): its rules no longer apply, and the
    /// ACL is due again.
    pub(crate) fn unwatch(&mut self, room_id: &str, named: &str) -> Unwatched {
        self.acl_due = true;
        let Some(list) = self.lists.remove(room_id) else {
            // A list that failed to load is unwatched by the reference it was stored under.
            let failed = self.failed.keys().find(|r| {
                crate::parse::room_ref(r)
                    .is_ok_and(|parsed| parsed.to_string() == named || parsed.to_string() == room_id)
            });
            let Some(reference) = failed.cloned() else {
                self.acl_due = false;
                return Unwatched::NotWatched;
            };
            self.failed.remove(&reference);
            return Unwatched::Failed(reference);
        };
        if let Some(r) = self.references.remove(room_id) {
            self.failed.remove(&r);
        }
        self.index.write().remove_list(room_id);
        self.shortcodes.retain(|_, r| r != room_id);
        Unwatched::Rules(list.len())
    }

    /// What to store as the watched lists: those loaded and those that
    /// failed to load (a list unreachable now is not forgotten for that).
    pub(crate) fn references(&self) -> Vec<String> {
        let mut references: Vec<String> = self.references.values().cloned().collect();
        // A list lost while running is in both: stored once.
        let failed = self.failed.keys().filter(|r| *r != WATCHED_LISTS && !references.contains(r)).cloned();
        references.extend(failed.collect::<Vec<_>>());
        references
    }

    pub(crate) fn list_count(&self) -> usize {
        self.lists.len()
    }

    /// The rules in one list.
    pub(crate) fn rule_count(&self, room: &str) -> usize {
        self.lists.get(room).map_or(0, PolicyList::len)
    }

    /// The lists that failed to load.
    pub(crate) fn failed(&self) -> impl Iterator<Item = &String> {
        self.failed.keys()
    }

    /// The watched list a shortcode names.
    pub(crate) fn shortcode(&self, code: &str) -> Option<&str> {
        self.shortcodes.get(code).map(String::as_str)
    }

    /// Names the list `room` by `code` (a list the bot just created).
    pub(crate) fn name_list(&mut self, code: &str, room: &str) {
        self.shortcodes.insert(code.to_owned(), room.to_owned());
    }

    /// Each watched list: its room id, and its shortcode when it has one.
    pub(crate) fn lists(&self) -> Vec<(String, Option<String>)> {
        self.lists
            .keys()
            .map(|room| (room.clone(), self.shortcodes.iter().find(|(_, r)| *r == room).map(|(code, _)| code.clone())))
            .collect()
    }

    /// Each watched list (by shortcode, else room id) with its rule count.
    pub(crate) fn rule_counts(&self) -> Vec<(String, usize)> {
        self.lists()
            .into_iter()
            .map(|(room, code)| {
                let count = self.lists.get(&room).map_or(0, PolicyList::len);
                (code.unwrap_or(room), count)
            })
            .collect()
    }

    /// The watched lists' names for a reply: shortcodes, and the room ids of lists without one.
    pub(crate) fn list_names(&self) -> String {
        let mut names: Vec<String> = self.shortcodes.keys().cloned().collect();
        names.extend(self.lists.keys().filter(|r| !self.shortcodes.values().any(|v| v == *r)).cloned());
        if names.is_empty() { "none are watched".to_owned() } else { names.join(", ") }
    }

    /// The acting rules that name `entity` itself (literally or by its hash),
    /// not by a glob.
    pub(crate) fn naming(&self, entity: &str) -> Vec<Arc<Rule>> {
        let hash = gleipnir_policy::rule::sha256(entity);
        self.index
            .read()
            .rules(EntityKind::of(entity))
            .filter(|r| r.recommendation.acts())
            .filter(|r| match r.entity() {
                EntityRef::Hashed(h) => *h == hash,
                other => other.to_string() == entity,
            })
            .cloned()
            .collect()
    }

    /// The event types under which `rule`'s state key holds a rule (the one
    /// in effect and the older ones it shadows): removing it clears each.
    pub(crate) fn rule_types(&self, rule: &Rule) -> Vec<String> {
        let types = self.lists.get(&*rule.list).map(|l| l.event_types(rule.kind, rule.state_key())).unwrap_or_default();
        if types.is_empty() { vec![gleipnir_policy::rule::event_type(rule)] } else { types }
    }

    /// Every rule that matches `entity` (globs and hashes included).
    pub(crate) fn matching(&self, entity: &str) -> Vec<Arc<Rule>> {
        self.index.read().matching(EntityKind::of(entity), entity).into_iter().cloned().collect()
    }

    /// A redaction in a watched list: the rule it removed is found by
    /// reloading the list's state after the sync.
    pub(crate) fn on_redaction(&mut self, room: &str) {
        if self.is_list(room) {
            self.reload.insert(room.to_owned());
        }
    }

    /// Lists to read again whole (a rule was redacted).
    pub(crate) fn take_reloads(&mut self) -> BTreeSet<String> {
        std::mem::take(&mut self.reload)
    }

    /// A membership change in a protected room. Returns whether the user
    /// just joined or knocked (to be checked against the rules).
    pub(crate) fn on_member(&mut self, room: &str, user: &str, membership: gleipnir_runtime::Membership) -> bool {
        use gleipnir_runtime::Membership::{Invite, Join, Knock};
        let present = matches!(membership, Join | Invite | Knock);
        self.members.set(room, user, present);
        matches!(membership, Join | Knock)
    }

    /// A user who joined or knocked on a protected room: banned (with a
    /// report) if a rule says so.
    pub(crate) fn newcomer(&self, room: &str, user: &str) -> Vec<Job> {
        let Some(rule) = self.index.acting(EntityKind::User, user) else { return Vec::new() };
        let action = Action::Ban(TargetUser {
            room_id: room.to_owned(),
            user_id: user.to_owned(),
            reason: rule.reason.to_string(),
        });
        vec![
            Job::Report(format!("Policy: banning {user} in {room} on joining ({rule}).")),
            Job::Act(Origin::Policy, action),
        ]
    }

    /// The rule changes of the sync just handled, taken to be acted on.
    pub(crate) fn take_pending(&mut self) -> Delta {
        std::mem::take(&mut self.pending)
    }

    /// The bans `delta` calls for among the members of protected rooms,
    /// with a report of them first.
    pub(crate) fn bans(&self, delta: &Delta) -> Vec<Job> {
        let bans = gleipnir_policy::bans_for(delta, &self.members);
        if bans.is_empty() {
            return Vec::new();
        }
        let mut text = format!("Policy: {} ban(s) for the rules that changed:", bans.len());
        for ban in bans.iter().take(10) {
            let _ = write!(text, "\n- {} in {} ({})", ban.user, ban.room, ban.rule);
        }
        if bans.len() > 10 {
            let _ = write!(text, "\n- … and {} more", bans.len() - 10);
        }
        text.push_str("\nA ban that cannot be made is reported on its own.");
        let mut jobs = vec![Job::Report(text)];
        jobs.extend(bans.iter().map(|ban| {
            let action = Action::Ban(TargetUser {
                room_id: ban.room.to_string(),
                user_id: ban.user.clone(),
                reason: ban.rule.reason.to_string(),
            });
            Job::Act(Origin::Policy, action)
        }));
        jobs
    }
}

/// A permalink for a room id, as Draupnir stores watched lists.
pub(crate) fn permalink(room_id: &str) -> String {
    format!("https://matrix.to/#/{room_id}")
}

/// What unwatching a list did.
pub(crate) enum Unwatched {
    /// It was not watched.
    NotWatched,
    /// It had failed to load; forgotten under this reference.
    Failed(String),
    /// It was watched with this many rules, which no longer apply.
    Rules(usize),
}

mod apply;
mod report;

#[cfg(test)]
mod tests;
