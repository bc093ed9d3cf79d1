//! Pre-emptive decisions: what the homeserver's spam-checker module asks
//! before it accepts a join, an invite, a room or an event (`http.rs`
//! serves the calls). The answers come from the same state the bot acts
//! on: the watched lists' rules (one shared index), the protected rooms,
//! the room states, and the enabled protections' own instances (their
//! `check` export, called between the bot's own calls to them), so a
//! protection decides the same way whether it sees an event before or
//! after the homeserver accepts it.
//!
//! Never refused: the bot, members of the management room, and the
//! moderators of the room concerned; nothing in a room that is not
//! protected is refused but a join to a room taken down by a list.
//!
//! Messages are handled before they land: every enabled protection that
//! reads messages and does not check events itself gets the event through
//! its ordinary `handle`, once (the bot skips it when the event arrives in
//! sync), and the event is refused when a protection's answer redacts it.
//! So the verdict is the protection's own, the same with or without the
//! module, and its other actions (the ban, the notice, the redaction of the
//! flood before it) are carried out as they would be. A protection that
//! exports `check` for events decides for itself instead.
//!
//! A denial's follow-up actions and each refusal go to the bot as
//! [`News`]: the follow-ups are carried out by the executor like any
//! protection's actions, and the refusals are said in the management room,
//! coalesced.

use std::sync::{Arc, RwLock};

use gleipnir_policy::{EntityKind, Recommendation, Rule};
use gleipnir_runtime::rooms::RoomStates;
use gleipnir_runtime::{CheckClass, Checked, Membership, Pending, PendingEvent, PendingInvite, PendingJoin};
use tokio::sync::mpsc::UnboundedSender;

use super::policy::SharedIndex;
use super::protected::Protected;
use super::protections::Slot;

/// What the bot publishes for the checks after each change (see `publish`).
#[derive(Clone, Default)]
pub(crate) struct View {
    /// False in safe mode and before the first start: nothing is refused.
    pub(crate) active: bool,
    pub(crate) index: SharedIndex,
    /// The enabled protections that check something, not quarantined.
    pub(crate) checkers: Vec<Checker>,
    /// The enabled protections that read messages and do not check events
    /// themselves: they handle a message before it lands.
    pub(crate) handlers: Vec<Checker>,
}

/// An enabled protection with a `check` export.
#[derive(Clone)]
pub(crate) struct Checker {
    pub(crate) name: String,
    pub(crate) slot: Slot,
    pub(crate) classes: Vec<CheckClass>,
    /// The Matrix error code its denials carry (`[protections.NAME] errcode`).
    pub(crate) errcode: String,
}

/// The answer to one callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    Allow,
    Deny { errcode: String, reason: String },
}

impl Answer {
    fn forbidden(reason: String) -> Answer {
        Answer::Deny { errcode: "M_FORBIDDEN".to_owned(), reason }
    }
}

/// What the checks tell the bot.
#[derive(Debug)]
pub(crate) enum News {
    /// Something was refused: said in the management room (coalesced), and
    /// the follow-up actions carried out as the protection's.
    Refused {
        by: String,
        room: String,
        user: String,
        what: String,
        reason: String,
        follow_up: Vec<gleipnir_runtime::Action>,
    },
    /// What protections decided on a message they handled before it
    /// landed, other than refusing it: carried out as theirs.
    Acted { by: String, actions: Vec<gleipnir_runtime::Action> },
    /// Actions a protection decided in a check or before a message landed
    /// that it may not take (a capability not declared or not granted, a
    /// field out of bounds): counted and said as on the sync path.
    Refusals { by: String, refused: Vec<gleipnir_runtime::Refusal> },
    /// A protection faulted in `check` (it was restarted when the fault killed it).
    Fault { protection: String, fault: String },
    /// A member's abuse report, forwarded to the listener and accepted by
    /// the homeserver (its id is 0: the homeserver's is not known).
    Report(super::reports::Listed),
}

/// Whether a check's answer still counts, for a check that may outlast its
/// deadline: the listener gives up on it, or the check finishes first.
#[derive(Debug, Default)]
pub(crate) struct Lateness(std::sync::Mutex<Late>);

#[derive(Debug, Default, Clone, Copy)]
enum Late {
    #[default]
    Waiting,
    Finished,
    /// The deadline passed and this was answered instead (true: allowed).
    GaveUp(bool),
}

impl Lateness {
    fn lock(&self) -> std::sync::MutexGuard<'_, Late> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The check is done: `None` when its answer is still awaited, else
    /// what was answered instead (true: the event was allowed).
    pub(crate) fn finish(&self) -> Option<bool> {
        let mut late = self.lock();
        match *late {
            Late::GaveUp(allowed) => Some(allowed),
            _ => {
                *late = Late::Finished;
                None
            }
        }
    }

    /// The deadline passed: true when `allowed` is answered instead; false
    /// when the check finished just now (its answer stands).
    pub(crate) fn give_up(&self, allowed: bool) -> bool {
        let mut late = self.lock();
        match *late {
            Late::Finished => false,
            _ => {
                *late = Late::GaveUp(allowed);
                true
            }
        }
    }
}

/// Messages handled before they landed: event id → the protections that
/// had them. Bounded: an id is looked up once, when its event arrives in
/// sync, normally within a second.
#[derive(Debug, Default)]
struct Handled {
    by_event: std::collections::HashMap<String, Vec<String>>,
    order: std::collections::VecDeque<String>,
}

/// Message ids remembered as handled before they landed, at most.
const HANDLED_KEPT: usize = 10_000;

/// The pre-emptive side of the bot; cheap to clone.
#[derive(Clone)]
pub(crate) struct Gate(Arc<Shared>);

struct Shared {
    bot: String,
    management: String,
    protected: Protected,
    rooms: Arc<RoomStates>,
    block_invites_from_banned: bool,
    view: RwLock<View>,
    news: UnboundedSender<News>,
    handled: std::sync::Mutex<Handled>,
    metrics: Arc<super::metrics::Metrics>,
}

impl Gate {
    pub(crate) fn new(
        bot: String,
        management: String,
        protected: Protected,
        rooms: Arc<RoomStates>,
        block_invites_from_banned: bool,
        news: UnboundedSender<News>,
        metrics: Arc<super::metrics::Metrics>,
    ) -> Gate {
        Gate(Arc::new(Shared {
            bot,
            management,
            protected,
            rooms,
            block_invites_from_banned,
            view: RwLock::new(View::default()),
            news,
            handled: std::sync::Mutex::new(Handled::default()),
            metrics,
        }))
    }

    /// Replaces what the checks see (the bot calls it after every change).
    pub(crate) fn publish(&self, view: View) {
        *self.0.view.write().unwrap_or_else(|e| e.into_inner()) = view;
    }

    fn view(&self) -> View {
        self.0.view.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Never refused in `room`: the bot, the management room's members and
    /// the room's moderators (power to ban there).
    fn exempt(&self, user: &str, room: Option<&str>) -> bool {
        let s = &self.0;
        user == s.bot
            || s.rooms.membership(&s.management, user) == Some(Membership::Join)
            || room.is_some_and(|room| s.rooms.power_level(room, user) >= s.rooms.room_levels(room).ban)
    }

    /// The rule that bans `user` (by id, or their server), if one does.
    fn banning(index: &SharedIndex, user: &str) -> Option<Arc<Rule>> {
        index.acting(EntityKind::User, user).or_else(|| {
            let server = user.split_once(':').map(|(_, server)| server)?;
            index.acting(EntityKind::Server, server)
        })
    }

    /// `user_may_join_room`.
    pub(crate) fn join(&self, user: &str, room: &str) -> Answer {
        let view = self.view();
        if !view.active || self.exempt(user, Some(room)) {
            return Answer::Allow;
        }
        if let Some(rule) = view.index.acting(EntityKind::Room, room)
            && rule.recommendation == Recommendation::Takedown
        {
            return self.refused("policy", room, user, "join", format!("this room is taken down ({rule})"), Vec::new());
        }
        if !self.0.protected.contains(room) {
            return Answer::Allow;
        }
        if let Some(rule) = Self::banning(&view.index, user) {
            return self.refused("policy", room, user, "join", format!("banned by a policy list ({rule})"), Vec::new());
        }
        let pending = Pending::Join(PendingJoin { room_id: room.to_owned(), user_id: user.to_owned() });
        self.ask(&view, CheckClass::Join, &pending, room, user, "join")
    }

    /// `user_may_invite`.
    pub(crate) fn invite(&self, inviter: &str, invitee: &str, room: &str) -> Answer {
        let view = self.view();
        if !view.active || self.exempt(inviter, Some(room)) {
            return Answer::Allow;
        }
        if self.0.block_invites_from_banned
            && let Some(rule) = Self::banning(&view.index, inviter)
        {
            let reason = format!("you may not invite anyone: banned by a policy list ({rule})");
            return self.refused("policy", room, inviter, "invite", reason, Vec::new());
        }
        if !self.0.protected.contains(room) {
            return Answer::Allow;
        }
        if let Some(rule) = Self::banning(&view.index, invitee) {
            let reason = format!("{invitee} is banned by a policy list ({rule})");
            return self.refused("policy", room, inviter, "invite", reason, Vec::new());
        }
        let pending = Pending::Invite(PendingInvite {
            room_id: room.to_owned(),
            inviter: inviter.to_owned(),
            invitee: invitee.to_owned(),
        });
        self.ask(&view, CheckClass::Invite, &pending, room, inviter, "invite")
    }

    /// `user_may_create_room`: a user a watched list bans creates none.
    pub(crate) fn create_room(&self, user: &str) -> Answer {
        let view = self.view();
        if !view.active || self.exempt(user, None) {
            return Answer::Allow;
        }
        match Self::banning(&view.index, user) {
            Some(rule) => self.refused(
                "policy",
                "",
                user,
                "room creation",
                format!("banned by a policy list ({rule})"),
                Vec::new(),
            ),
            None => Answer::Allow,
        }
    }

    /// `check_event_for_spam`, with the event in client format (its id
    /// included). `late` tells whether the answer still counts when the
    /// protections are done.
    pub(crate) fn event(&self, event: &serde_json::Value, late: &Lateness) -> Answer {
        let text = |key: &str| event.get(key).and_then(serde_json::Value::as_str);
        let (Some(room), Some(sender), Some(kind)) = (text("room_id"), text("sender"), text("type")) else {
            late.finish();
            return Answer::Allow;
        };
        let view = self.view();
        if !view.active || !self.0.protected.contains(room) || self.exempt(sender, Some(room)) {
            late.finish();
            return Answer::Allow;
        }
        let pending = Pending::Event(PendingEvent {
            room_id: room.to_owned(),
            sender: sender.to_owned(),
            event_type: kind.to_owned(),
            state_key: text("state_key").map(str::to_owned),
            content: event.get("content").map_or_else(|| "{}".to_owned(), serde_json::Value::to_string),
        });
        let checked = self.ask(&view, CheckClass::Event, &pending, room, sender, kind);
        if checked != Answer::Allow {
            late.finish();
            return checked;
        }
        self.handle_before(&view, event, room, late)
    }

    /// A message handled by the protections before it lands (see the
    /// module's docs): refused when one of them redacts it.
    fn handle_before(&self, view: &View, json: &serde_json::Value, room: &str, late: &Lateness) -> Answer {
        let rooms = &self.0.rooms;
        let converted =
            gleipnir_runtime::event::from_json(&json.to_string(), Some(room), &|r, u| rooms.membership(r, u));
        let Ok(Some(mut event)) = converted else {
            late.finish();
            return Answer::Allow;
        };
        if !matches!(event.kind, gleipnir_runtime::EventKind::Message(_)) || event.event_id.is_empty() {
            late.finish();
            return Answer::Allow;
        }
        // When the host saw it, as for every event it handles.
        event.received_ts = gleipnir_runtime::Clock::System.now_ms();
        let class = gleipnir_runtime::event::class(&event.kind);
        let mut decided: Vec<(String, String, Vec<gleipnir_runtime::Action>)> = Vec::new();
        for handler in &view.handlers {
            if !self.claim(&event.event_id, &handler.name) {
                continue;
            }
            let outcome = {
                let mut instance = handler.slot.lock();
                if !instance.plugin().wants(class) {
                    continue;
                }
                self.0.metrics.event_handled(&handler.name);
                call(&handler.name, &mut instance, |i| i.handle(&event))
            };
            match outcome {
                Ok(mut outcome) => {
                    super::protections::only_in_protected_rooms(&mut outcome, &self.0.protected);
                    self.tell_refusals(&handler.name, outcome.refused);
                    if !outcome.actions.is_empty() {
                        decided.push((handler.name.clone(), handler.errcode.clone(), outcome.actions));
                    }
                }
                Err(fault) => self.tell(News::Fault { protection: handler.name.clone(), fault: fault.to_string() }),
            }
        }
        let redacts_it = |actions: &[gleipnir_runtime::Action]| {
            actions.iter().find_map(|a| match a {
                gleipnir_runtime::Action::Redact(r) if r.event_id == event.event_id => Some(r.reason.clone()),
                _ => None,
            })
        };
        let refusal = decided.iter().find_map(|(name, errcode, actions)| {
            redacts_it(actions).map(|reason| (name.clone(), errcode.clone(), reason))
        });
        // Refused in time (or by the fallback): the message never lands, so
        // its own redaction is left out; allowed, everything is carried out.
        let landed = match late.finish() {
            None => refusal.is_none(),
            Some(allowed) => allowed,
        };
        for (name, _, mut actions) in decided {
            if !landed {
                actions.retain(|a| !matches!(a, gleipnir_runtime::Action::Redact(r) if r.event_id == event.event_id));
            }
            if !actions.is_empty() {
                self.tell(News::Acted { by: name, actions });
            }
        }
        match refusal {
            Some((by, errcode, reason)) => {
                let reason = if reason.is_empty() { format!("refused by {by}") } else { reason };
                self.tell(News::Refused {
                    by,
                    room: room.to_owned(),
                    user: event.sender.clone(),
                    what: "a message".to_owned(),
                    reason: reason.clone(),
                    follow_up: Vec::new(),
                });
                Answer::Deny { errcode, reason }
            }
            None => Answer::Allow,
        }
    }

    /// Records that `protection` handles `event` now; false when it did already.
    fn claim(&self, event: &str, protection: &str) -> bool {
        let mut handled = self.0.handled.lock().unwrap_or_else(|e| e.into_inner());
        let handled = &mut *handled;
        let names = match handled.by_event.get_mut(event) {
            Some(names) => names,
            None => {
                handled.order.push_back(event.to_owned());
                while handled.order.len() > HANDLED_KEPT {
                    if let Some(old) = handled.order.pop_front() {
                        handled.by_event.remove(&old);
                    }
                }
                handled.by_event.entry(event.to_owned()).or_default()
            }
        };
        if names.iter().any(|n| n == protection) {
            return false;
        }
        names.push(protection.to_owned());
        true
    }

    /// The protections that handled `event` before it landed (it arrived
    /// in sync now: they do not get it again).
    pub(crate) fn handled_before(&self, event: &str) -> Vec<String> {
        let mut handled = self.0.handled.lock().unwrap_or_else(|e| e.into_inner());
        handled.by_event.remove(event).unwrap_or_default()
    }

    /// Asks each protection that checks `class`; the first denial wins.
    fn ask(&self, view: &View, class: CheckClass, pending: &Pending, room: &str, user: &str, what: &str) -> Answer {
        for checker in view.checkers.iter().filter(|c| c.classes.contains(&class)) {
            let checked = call(&checker.name, &mut checker.slot.lock(), |i| i.check_pending(pending));
            match checked {
                Ok(Checked::Allow) => {}
                Ok(Checked::Deny { reason, mut follow_up }) => {
                    super::protections::only_in_protected_rooms(&mut follow_up, &self.0.protected);
                    self.tell_refusals(&checker.name, follow_up.refused);
                    let answer = Answer::Deny { errcode: checker.errcode.clone(), reason: reason.clone() };
                    self.tell(News::Refused {
                        by: checker.name.clone(),
                        room: room.to_owned(),
                        user: user.to_owned(),
                        what: what.to_owned(),
                        reason,
                        follow_up: follow_up.actions,
                    });
                    return answer;
                }
                Err(fault) => {
                    self.tell(News::Fault { protection: checker.name.clone(), fault: fault.to_string() });
                }
            }
        }
        Answer::Allow
    }

    fn refused(
        &self,
        by: &str,
        room: &str,
        user: &str,
        what: &str,
        reason: String,
        follow_up: Vec<gleipnir_runtime::Action>,
    ) -> Answer {
        self.tell(News::Refused {
            by: by.to_owned(),
            room: room.to_owned(),
            user: user.to_owned(),
            what: what.to_owned(),
            reason: reason.clone(),
            follow_up,
        });
        Answer::forbidden(reason)
    }

    /// A forwarded abuse report the homeserver accepted.
    pub(crate) fn report(&self, report: super::reports::Listed) {
        self.tell(News::Report(report));
    }

    fn tell_refusals(&self, by: &str, refused: Vec<gleipnir_runtime::Refusal>) {
        if !refused.is_empty() {
            self.tell(News::Refusals { by: by.to_owned(), refused });
        }
    }

    fn tell(&self, news: News) {
        // The bot stopped listening only while it stops: nothing to tell then.
        let _ = self.0.news.send(news);
    }
}

/// One call into a protection's instance; an instance its fault killed is
/// started again at once (the fault itself goes to the bot as `News`).
fn call<T>(
    name: &str,
    instance: &mut gleipnir_runtime::Instance,
    f: impl FnOnce(&mut gleipnir_runtime::Instance) -> Result<T, gleipnir_runtime::Fault>,
) -> Result<T, gleipnir_runtime::Fault> {
    let result = f(instance);
    if let Err(fault) = &result
        && fault.kills_instance()
        && let Err(e) = instance.restart()
    {
        tracing::error!(protection = %name, "cannot restart after a fault: {e}");
    }
    result
}

mod news;

pub(crate) use news::Refusals;

#[cfg(test)]
mod tests;
