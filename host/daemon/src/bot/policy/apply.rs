//! The policy engine at work in the bot: lists joined and read whole,
//! the rule changes of each sync turned into bans, room takedowns and
//! protections' policy events, and server ACLs sent once rules settle.

use std::time::Instant;

use gleipnir_policy::{EntityKind, EntityRef};

use super::super::{Bot, executor};

/// Why a list could not be watched (or read again).
#[derive(Debug)]
pub(crate) enum WatchError {
    /// The reference names no room.
    Reference(crate::parse::ParseError),
    /// The bot could not join the list.
    Join(anyhow::Error),
    /// The list's state could not be read.
    Read(anyhow::Error),
}

impl std::fmt::Display for WatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WatchError::Reference(e) => write!(f, "{e}"),
            WatchError::Join(e) => write!(f, "{e:#}"),
            WatchError::Read(e) => write!(f, "cannot read it: {e:#}"),
        }
    }
}

impl Bot {
    pub(crate) fn own_server(&self) -> &str {
        self.matrix.bot_user.split_once(':').map_or("", |(_, server)| server)
    }

    /// Joins a list by reference (permalink, id or alias), loads its rules
    /// and applies them. Returns the room id.
    pub(crate) async fn watch_reference(&mut self, reference: &str) -> Result<String, WatchError> {
        let room = crate::parse::room_ref(reference).map_err(WatchError::Reference)?;
        // A Draupnir permalink's `via` servers are how a room id is reached.
        let via = crate::parse::via_servers(reference);
        let room_id = match &room {
            // A room the bot is in already needs no join.
            crate::parse::RoomRef::Id(id) if self.matrix.is_joined(id) => id.clone(),
            _ => self.matrix.join_via(&room.to_string(), &via).await.map_err(WatchError::Join)?.to_string(),
        };
        self.load_list(&room_id).await?;
        self.session.policy.watching(&room_id, reference);
        Ok(room_id)
    }

    /// Reads a list room's whole state (from the first sync and the kept
    /// state, on a first start; else from the homeserver) and applies the
    /// difference to what is known of it (after a failed read of the kept
    /// state, the rules it did read that are gone are withdrawn).
    async fn load_list(&mut self, room_id: &str) -> Result<(), WatchError> {
        // The first start's state, read an event at a time (a list of
        // 100,000 rules is never held whole), into a list that holds no
        // rules yet (so none can be gone from it).
        if let Some(mut source) = self.first_state.take(room_id)
            && self.session.policy.open(room_id)
        {
            match self.apply_read_state(room_id, source.events()) {
                Ok(()) => return Ok(()),
                Err(e) => tracing::warn!(room_id, "cannot read the list's kept state ({e}); reading it again"),
            }
        }
        let state = self.matrix.room_state(room_id).await.map_err(WatchError::Read)?;
        // Rules that are gone from the state (lost while away) are removed,
        // under the event type they came in.
        for (event_type, state_key) in self.session.policy.gone_from(room_id, &state) {
            self.session.policy.on_rule_state(room_id, &event_type, &state_key, "{}", "");
        }
        // Everything else goes the way sync state does: the room cache (power
        // levels, to tell whether rules can be written), the shortcode, and
        // each rule into the list, the index and the pending delta.
        for json in &state {
            self.state_event(room_id, json);
        }
        Ok(())
    }

    /// Bans a user who joined or knocked, if a rule says so (carried out
    /// with the sync's other actions).
    pub(crate) fn check_newcomer(&mut self, room: &str, user: &str) {
        if self.rooms.membership(room, user) == Some(gleipnir_runtime::Membership::Ban) {
            return;
        }
        let jobs = self.session.policy.newcomer(room, user);
        self.jobs.extend(jobs);
    }

    /// After a sync: reload lists that saw redactions, apply the rule changes
    /// (bans), and send ACLs once the server rules have settled.
    pub(crate) async fn apply_policy(&mut self) {
        for room in self.session.policy.take_reloads() {
            if let Err(e) = self.load_list(&room).await {
                tracing::warn!(room, "cannot reload the list: {e}");
            }
        }
        let delta = self.session.policy.take_pending();
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
        if let Some(report) = self.session.policy.change_report(&fresh) {
            self.matrix.notify(&report).await;
        }
        let bans = self.session.policy.bans(&delta);
        self.jobs.extend(bans);
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
            let failed: Vec<&String> = self.session.policy.failed().collect();
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
}

/// A rule change as the contract's event: `room-id` is the list.
fn policy_event(change: &gleipnir_policy::Change) -> gleipnir_runtime::Event {
    use gleipnir_runtime::{EventKind, PolicyChange, PolicyRule, RuleChange, RuleKind};
    let (what, rule) = match change {
        gleipnir_policy::Change::Added(r) => (RuleChange::Added, r),
        gleipnir_policy::Change::Modified { new, .. } => (RuleChange::Modified, new),
        gleipnir_policy::Change::Removed(r) => (RuleChange::Removed, r),
    };
    let (entity, entity_sha256) = match rule.entity() {
        EntityRef::Hashed(h) => (None, Some(gleipnir_policy::rule::hash_base64(h))),
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
                reason: rule.reason.to_string(),
            },
        }),
    }
}
