//! The one place where the bot acts on Matrix: every ban, kick, unban,
//! redaction, notice, server ACL, rule removal and admin API action, whoever
//! decided it (a protection, a policy rule, a moderator's command), goes
//! through [`Executor::act`]. The origin picks the safety rules (see
//! `reach`); then the bot's own power is checked, repeats are dropped, every
//! reason is capped, and `dry_run` only says what would have been done.

mod admin_api;
mod perform;
mod reach;
mod recent;
mod said;
mod send;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gleipnir_runtime::rooms::RoomStates;
use gleipnir_runtime::{Action, Membership, RoomAction, SetJoinRule, json};
use matrix_sdk::Client;
use serde_json::Value;

pub(crate) use admin_api::{AdminError, query, urlencode};
use perform::{Performed, perform, sender_of};
pub(crate) use reach::account_target;
use recent::Recent;
pub(crate) use said::Outcome;
use said::{audit_fields, describe, room_said, said};
pub(crate) use send::{AT_ONCE, together};
use send::{MOST_TRIES, Pace, send_together};

/// Who decided an action. Automatic origins (protections, rules) get every
/// safety rule; a moderator's command may act on anyone but the bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A protection, by name.
    Protection(String),
    /// A rule of a watched policy list.
    Policy,
    /// A moderator's command.
    Moderator { user: String, command: String },
}

impl Origin {
    fn automatic(&self) -> bool {
        !matches!(self, Origin::Moderator { .. })
    }

    /// How the journal names it.
    pub(crate) fn key(&self) -> &str {
        match self {
            Origin::Protection(name) => name,
            Origin::Policy => "policy",
            Origin::Moderator { command, .. } => command,
        }
    }

    /// The journal's name back (an automatic origin).
    pub(crate) fn from_key(key: &str) -> Origin {
        if key == "policy" { Origin::Policy } else { Origin::Protection(key.to_owned()) }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Protection(name) => f.write_str(name),
            Origin::Policy => f.write_str("policy"),
            Origin::Moderator { user, command } => write!(f, "{user} (`{command}`)"),
        }
    }
}

/// One thing to do after a sync: an action (with who decided it), or a
/// report for the management room.
pub(crate) enum Job {
    Act(Origin, Action),
    Report(String),
}

/// What the executor can do: the contract's actions, and what only the
/// host decides.
#[derive(Debug, Clone)]
pub(crate) enum Act {
    Contract(Action),
    /// A protected room's `m.room.server_acl`, as the policy engine compiled it.
    ServerAcl {
        room: String,
        content: Value,
    },
    /// Blocks a room on this homeserver and purges it (a room takedown rule).
    TakeDownRoom {
        room: String,
        reason: String,
    },
    /// Writes a rule's state in a policy list (`{}` removes the rule).
    WriteRule {
        list: String,
        event_type: String,
        state_key: String,
        content: Value,
    },
}

impl Act {
    /// The capability's name for a contract action, or the host act's.
    fn kind(&self) -> &'static str {
        match self {
            Act::Contract(action) => gleipnir_runtime::capability::name(gleipnir_runtime::capability::required(action)),
            Act::ServerAcl { .. } => "set the server ACL",
            Act::TakeDownRoom { .. } => "take down a room",
            Act::WriteRule { .. } => "write a policy rule",
        }
    }
}

/// What the executor needs to know of the bot to check an action.
pub(crate) struct Context<'a> {
    pub(crate) client: &'a Client,
    pub(crate) rooms: &'a RoomStates,
    pub(crate) bot: &'a str,
    pub(crate) management: Option<&'a str>,
    pub(crate) protected: &'a super::protected::Protected,
    /// Whether a room is a watched policy list.
    pub(crate) is_list: &'a dyn Fn(&str) -> bool,
}

/// How long a server-admin answer ("is this user an admin?") is trusted.
const ADMIN_STATUS_TTL: Duration = Duration::from_secs(10 * 60);

pub(crate) struct Executor {
    dry_run: bool,
    /// Users of this homeserver known to be (or not be) server admins, and when asked.
    /// `None`: the homeserver would not say (the bot is no server admin).
    admins: HashMap<String, (Option<bool>, Instant)>,
    redacted: Recent<()>,
    /// (room, user) pairs the bot banned lately: a second ban (a protection
    /// and the policy engine acting on the same rule) is not sent again.
    banned: Recent<()>,
    /// Who sent the events protections saw lately, to check redactions against.
    senders: Recent<String>,
    /// (room, action kind) pairs already reported as not permitted.
    denied: HashSet<(String, &'static str)>,
    unsupported: HashSet<&'static str>,
    /// Per room, the join rule before the executor first changed it.
    join_rules_before: HashMap<String, String>,
    /// Bans carried out for the policy engine or a moderator since the bot
    /// last asked (`take_bans`): their messages may be due for redaction.
    bans_done: Vec<BanDone>,
    /// Actions by kind and outcome, for `/metrics`.
    metrics: Arc<super::metrics::Metrics>,
    /// Where every act is recorded, once the bot has its data folder.
    audit: Option<super::audit::Audit>,
    /// When the homeserver last said to slow down, every request waits.
    pace: Pace,
}

/// A ban the executor carried out, with who decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BanDone {
    pub(crate) room: String,
    pub(crate) user: String,
    pub(crate) reason: String,
    pub(crate) origin: String,
}

impl Executor {
    pub(crate) fn new(dry_run: bool, metrics: Arc<super::metrics::Metrics>) -> Executor {
        Executor {
            dry_run,
            metrics,
            admins: HashMap::new(),
            redacted: Recent::default(),
            banned: Recent::default(),
            senders: Recent::default(),
            denied: HashSet::new(),
            unsupported: HashSet::new(),
            join_rules_before: HashMap::new(),
            bans_done: Vec::new(),
            audit: None,
            pace: Pace::default(),
        }
    }

    /// Records every act from now on in `audit`.
    pub(crate) fn keep_audit(&mut self, audit: super::audit::Audit) {
        self.audit = Some(audit);
    }

    /// The bans carried out for a policy rule or a moderator since last asked.
    pub(crate) fn take_bans(&mut self) -> Vec<BanDone> {
        std::mem::take(&mut self.bans_done)
    }

    /// `user` is no longer banned in `room` (an unban seen in the room's
    /// state, whoever made it): a later ban there is new, not a repeat.
    pub(crate) fn unbanned(&mut self, room: &str, user: &str) {
        self.banned.remove(&format!("{room}\n{user}"));
    }

    /// Remembers who sent an event protections are about to see.
    pub(crate) fn saw(&mut self, event: &str, sender: &str) {
        self.senders.insert(event.to_owned(), sender.to_owned());
    }

    /// Runs jobs of a sync that may go out at once (see [`together`]; a
    /// single job is one that goes alone): each
    /// is checked in order, then they are sent concurrently (at most
    /// [`AT_ONCE`] requests, [`AT_ONCE_PER_ROOM`] per room), and what came
    /// of each is recorded in order. Returns, per job, what to tell the
    /// management room.
    /// `sent` is told each job's place as soon as its request has returned
    /// (so the journal marks it done even if the bot stops before the rest).
    pub(crate) async fn run_together(
        &mut self,
        ctx: &Context<'_>,
        jobs: Vec<Job>,
        sent: &(dyn Fn(usize) + Sync),
    ) -> Vec<Option<String>> {
        let mut reports = vec![None; jobs.len()];
        let mut acts = Vec::with_capacity(jobs.len());
        let mut places = Vec::with_capacity(jobs.len());
        for (place, job) in jobs.into_iter().enumerate() {
            match job {
                Job::Report(text) => reports[place] = Some(text),
                Job::Act(origin, action) => {
                    acts.push((origin, Act::Contract(action)));
                    places.push(place);
                }
            }
        }
        let kinds: Vec<&'static str> = acts.iter().map(|(_, act)| act.kind()).collect();
        let origins: Vec<Origin> = acts.iter().map(|(origin, _)| origin.clone()).collect();
        let outcomes = self.act_together(ctx, acts, &|i| sent(places[i])).await;
        for (((place, origin), kind), outcome) in places.into_iter().zip(origins).zip(kinds).zip(outcomes) {
            reports[place] = self.report(&origin, kind, outcome);
        }
        reports
    }

    /// What to tell the management room of one job's outcome.
    fn report(&mut self, origin: &Origin, kind: &'static str, outcome: Outcome) -> Option<String> {
        match outcome {
            Outcome::Done(_) | Outcome::Unneeded => None,
            Outcome::Refused(why) => Some(format!("{origin}: {why}")),
            Outcome::Unpermitted { room, kind, needed } => self.denied.insert((room.clone(), kind)).then(|| {
                format!("{origin}: I cannot {kind} in {room}: that needs power level {needed}. (Said once per room.)")
            }),
            Outcome::Unsupported(name) => self.unsupported.insert(name).then(|| {
                format!("{origin}: this version of Gleipnir cannot carry out {name} yet; refused. (Said once.)")
            }),
            Outcome::DryRun(what) => Some(format!("{origin} (dry run, nothing done): {what}")),
            Outcome::Notice(body) => Some(format!("{origin}: {body}")),
            Outcome::Failed(e) => Some(format!("{origin}: {kind} failed: {e}")),
        }
    }

    /// Carries out one act after the safety rules of its origin: the only
    /// code that calls a moderation endpoint.
    pub(crate) async fn act(&mut self, ctx: &Context<'_>, origin: &Origin, act: Act) -> Outcome {
        let mut outcomes = self.act_together(ctx, vec![(origin.clone(), act)], &|_| {}).await;
        outcomes.pop().unwrap_or_else(|| Outcome::Failed("not carried out".to_owned()))
    }

    /// Carries out acts that may go out at once: each is checked in order
    /// (so the dedupe sees the ones before it), the ones to send are sent
    /// concurrently within the bounds, and each outcome is recorded in order.
    pub(crate) async fn act_together(
        &mut self,
        ctx: &Context<'_>,
        acts: Vec<(Origin, Act)>,
        sent: &(dyn Fn(usize) + Sync),
    ) -> Vec<Outcome> {
        let mut steps = Vec::with_capacity(acts.len());
        for (origin, act) in acts {
            let step = self.prepare(ctx, &origin, act).await;
            steps.push((origin, step));
        }
        let sends = steps.iter().map(|(_, step)| step.settled.is_none().then_some(&step.act));
        let results = send_together(sends, |act| perform(ctx.client, act), sent, &self.pace).await;
        let mut outcomes = Vec::with_capacity(steps.len());
        for ((origin, step), result) in steps.into_iter().zip(results) {
            outcomes.push(self.settle(ctx, &origin, step, result));
        }
        outcomes
    }

    /// Everything before the request: the reason capped, a join rule to
    /// put back looked up, the safety rules, `dry_run`.
    async fn prepare(&mut self, ctx: &Context<'_>, origin: &Origin, mut act: Act) -> Step {
        let kind = act.kind();
        let audited = self.audit.is_some().then(|| audit_fields(&act));
        let sender = match &act {
            Act::Contract(Action::Redact(a)) => self.senders.get(&a.event_id).cloned(),
            _ => None,
        };
        let settled = self.settled_before_sending(ctx, origin, &mut act).await;
        Step { kind, audited, sender, act, settled }
    }

    /// `Some` when the act is settled without a request: refused, a
    /// repeat, or a dry run.
    async fn settled_before_sending(&mut self, ctx: &Context<'_>, origin: &Origin, act: &mut Act) -> Option<Outcome> {
        // A reason may come from anywhere (a policy list, a protection): every one is capped alike.
        if let Act::Contract(action) = act {
            reach::cap_reason(action);
        }
        // Putting back a join rule is setting the one remembered.
        if let Act::Contract(Action::RestoreJoinRule(a)) = &act {
            let Some(rule) = self.join_rules_before.get(&a.room_id).and_then(|r| json::join_rule_from(r)) else {
                return Some(Outcome::Refused(format!(
                    "not restoring {}'s join rule: I have not changed it since I started (nothing to put back)",
                    a.room_id
                )));
            };
            *act = Act::Contract(Action::SetJoinRule(SetJoinRule {
                room_id: a.room_id.clone(),
                rule,
                reason: a.reason.clone(),
            }));
        }
        if let Some(refused) = self.check(ctx, origin, act).await {
            return Some(refused);
        }
        self.dry_run.then(|| Outcome::DryRun(said(ctx, act)))
    }

    /// Everything after the request (`result`; `None` when none was sent):
    /// what the bot learnt, the metrics, one log line and the audit entry.
    fn settle(
        &mut self,
        ctx: &Context<'_>,
        origin: &Origin,
        step: Step,
        result: Option<Result<Option<String>, Performed>>,
    ) -> Outcome {
        let Step { kind, audited, sender, act, settled } = step;
        let outcome = match (settled, result) {
            (Some(outcome), _) => outcome,
            (None, None) => Outcome::Failed("not sent".to_owned()),
            (None, Some(result)) => self.performed(ctx, origin, &act, result),
        };
        self.metrics.action(kind, outcome.label());
        // One log line per act (a done one is logged where it is carried out).
        match &outcome {
            Outcome::Done(_) | Outcome::Notice(_) => {}
            Outcome::Failed(why) => tracing::warn!(%origin, action = kind, "failed: {why}"),
            other => tracing::info!(%origin, action = kind, outcome = other.label(), "{}", other.clone().text()),
        }
        if let (Some(audit), Some((room, target, reason))) = (&mut self.audit, audited) {
            let (origin_kind, by, command) = match origin {
                Origin::Protection(name) => ("protection", name.clone(), None),
                Origin::Policy => ("policy", "policy".to_owned(), None),
                Origin::Moderator { user, command } => ("moderator", user.clone(), Some(command.clone())),
            };
            let detail = match &outcome {
                Outcome::Done(None) | Outcome::Unneeded => None,
                other => Some(other.clone().text()),
            };
            // The room as moderators know it, where the bot has a name for it.
            let room_name = room.as_deref().and_then(|r| super::matrix::room_name(ctx.rooms, r));
            audit.record(&super::audit::Entry {
                ts: gleipnir_runtime::Clock::System.now_ms(),
                origin: origin_kind.to_owned(),
                by,
                command,
                action: kind.to_owned(),
                room_name,
                room,
                target,
                sender,
                reason,
                outcome: outcome.label().to_owned(),
                detail,
            });
        }
        outcome
    }

    /// The outcome of a request that was sent, and what the bot keeps of it.
    fn performed(
        &mut self,
        ctx: &Context<'_>,
        origin: &Origin,
        act: &Act,
        result: Result<Option<String>, Performed>,
    ) -> Outcome {
        match result {
            Ok(mut note) => {
                tracing::info!(%origin, act = %describe(act), "done");
                if let Act::Contract(Action::Ban(a)) = act
                    && !matches!(origin, Origin::Protection(_))
                {
                    self.bans_done.push(BanDone {
                        room: a.room_id.clone(),
                        user: a.user_id.clone(),
                        reason: a.reason.clone(),
                        origin: origin.to_string(),
                    });
                }
                if let Act::Contract(Action::Unban(a)) = act {
                    self.unbanned(&a.room_id, &a.user_id);
                }
                if let Act::Contract(Action::SetJoinRule(a)) = act {
                    note = Some(self.join_rule_set(ctx.rooms, &a.room_id, json::join_rule(a.rule)));
                }
                Outcome::Done(note)
            }
            Err(Performed::Notice(body)) => Outcome::Notice(body),
            Err(Performed::Unsupported(name)) => Outcome::Unsupported(name),
            Err(Performed::Failed(e)) => Outcome::Failed(e),
            Err(Performed::Again { why, .. }) => Outcome::Failed(format!("{why} (tried {MOST_TRIES} times)")),
        }
    }

    /// A join rule was set: the rule before the first change is remembered
    /// (to put back once the reason for the change has passed) until the
    /// room is back on it. Says what changed.
    fn join_rule_set(&mut self, rooms: &RoomStates, room: &str, now: &str) -> String {
        let before = rooms.join_rule(room).unwrap_or_else(|| "unknown".to_owned());
        let first = self.join_rules_before.entry(room.to_owned()).or_insert_with(|| before.clone()).clone();
        if first == now {
            self.join_rules_before.remove(room);
        }
        format!("{room}'s join rule: {before} → {now} (before any change: {first})")
    }

    /// The safety rules: `Some` when the act must not be carried out (or
    /// need not be).
    async fn check(&mut self, ctx: &Context<'_>, origin: &Origin, act: &Act) -> Option<Outcome> {
        let management = ctx.management;
        let kind = act.kind();
        match act {
            Act::Contract(action @ (Action::Ban(a) | Action::Kick(a))) => {
                let why = if origin.automatic() {
                    match reach::protected_from(ctx.rooms, management, &a.room_id, &a.user_id, ctx.bot) {
                        Some(why) => Some(why.to_owned()),
                        None => self.server_admin(ctx.client, ctx.bot, &a.user_id, false).await.err(),
                    }
                } else {
                    // A moderator may ban anyone but the bot.
                    (a.user_id == ctx.bot).then(|| "that is me".to_owned())
                };
                if let Some(why) = why {
                    let doing = if matches!(action, Action::Ban(_)) { "banning" } else { "kicking" };
                    let room = room_said(ctx, &a.room_id);
                    return Some(Outcome::Refused(format!("not {doing} {} in {room}: {why}.", a.user_id)));
                }
            }
            Act::Contract(action) if account_target(action).is_some() => {
                // Actions on a user's account reach every room: the same
                // people are out of reach as for bans, in every protected room.
                let target = account_target(action).unwrap_or_default();
                if let Some(why) = self.account_out_of_reach(ctx, target).await {
                    return Some(Outcome::Refused(format!("not acting on {target}'s account ({kind}): {why}.")));
                }
            }
            Act::Contract(Action::Redact(a)) => {
                if origin.automatic() {
                    // A protection may only redact what it can name the sender
                    // of, and never a moderator's or a management-room member's event.
                    let sender = match self.senders.get(&a.event_id) {
                        Some(s) => Some(s.clone()),
                        None => sender_of(ctx.client, &a.room_id, &a.event_id).await,
                    };
                    let Some(sender) = sender else {
                        return Some(Outcome::Refused(format!(
                            "not redacting {} in {}: I cannot tell who sent it.",
                            a.event_id,
                            room_said(ctx, &a.room_id)
                        )));
                    };
                    if let Some(why) = reach::protected_from(ctx.rooms, management, &a.room_id, &sender, ctx.bot) {
                        return Some(Outcome::Refused(format!(
                            "not redacting {sender}'s event {}: {why}.",
                            a.event_id
                        )));
                    }
                }
            }
            Act::TakeDownRoom { room, .. }
            | Act::Contract(
                Action::BlockRoom(RoomAction { room_id: room, .. })
                | Action::PurgeRoom(RoomAction { room_id: room, .. }),
            ) => {
                let why = if ctx.protected.contains(room) {
                    Some("I protect this room: not taken down (stop protecting it first)")
                } else if Some(room.as_str()) == management {
                    Some("this is the management room: not taken down")
                } else if (ctx.is_list)(room) {
                    Some("I watch this policy list: not taken down (unwatch it first)")
                } else {
                    None
                };
                if let Some(why) = why {
                    return Some(Outcome::Refused(why.to_owned()));
                }
            }
            Act::Contract(_) | Act::ServerAcl { .. } | Act::WriteRule { .. } => {}
        }
        // The bot's own power, from the room's state. A moderator may name a
        // room whose power levels the bot has not seen (joined on an invite,
        // not protected): there the homeserver decides.
        if let Act::Contract(action) = act
            && let Some((room, needed)) = needed_level(ctx.rooms, action)
            && (origin.automatic() || ctx.rooms.knows_levels(room))
            && ctx.rooms.power_level(room, ctx.bot) < needed
        {
            return Some(Outcome::Unpermitted { room: room_said(ctx, room), kind, needed });
        }
        // Repeats, recorded only for what is about to be carried out.
        let repeat = match act {
            Act::Contract(Action::Ban(a)) => {
                ctx.rooms.membership(&a.room_id, &a.user_id) == Some(Membership::Ban)
                    || !self.banned.insert(format!("{}\n{}", a.room_id, a.user_id), ())
            }
            Act::Contract(Action::Redact(a)) => !self.redacted.insert(a.event_id.clone(), ()),
            Act::Contract(Action::SetJoinRule(a)) => {
                ctx.rooms.join_rule(&a.room_id).as_deref() == Some(json::join_rule(a.rule))
            }
            Act::Contract(Action::Invite(a)) => {
                matches!(ctx.rooms.membership(&a.room_id, &a.user_id), Some(Membership::Join | Membership::Invite))
            }
            _ => false,
        };
        repeat.then_some(Outcome::Unneeded)
    }
}

/// One act on its way: checked, and settled already when it is not to be
/// sent (refused, a repeat, a dry run).
struct Step {
    kind: &'static str,
    audited: Option<(Option<String>, Option<String>, Option<String>)>,
    sender: Option<String>,
    act: Act,
    settled: Option<Outcome>,
}

/// The room and power level an action needs there, for those that need one.
fn needed_level<'a>(rooms: &RoomStates, action: &'a Action) -> Option<(&'a str, i64)> {
    let (room, pick): (&str, fn(&gleipnir_runtime::RoomLevels) -> i64) = match action {
        Action::Ban(a) | Action::Unban(a) => (&a.room_id, |l| l.ban),
        Action::Kick(a) => (&a.room_id, |l| l.kick),
        Action::Invite(a) => (&a.room_id, |l| l.invite),
        Action::Redact(a) => (&a.room_id, |l| l.redact),
        Action::SetJoinRule(a) => return Some((&a.room_id, rooms.state_level(&a.room_id, "m.room.join_rules"))),
        _ => return None,
    };
    Some((room, pick(&rooms.room_levels(room))))
}

#[cfg(test)]
mod tests;
