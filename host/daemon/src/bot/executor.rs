//! Carries out actions: in order, without duplicate redactions, never against
//! room moderators or management-room members, checking the bot's own power
//! first (a missing permission is reported once per room and action), and
//! only reporting when the operator set `dry_run`.

use std::collections::HashSet;

use gleipnir_runtime::rooms::RoomStates;
use gleipnir_runtime::{Action, Membership, json};
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::{EventId, RoomId, UserId};
use matrix_sdk::{Client, Room};

/// One thing to do: an action from a protection (named), or a report.
pub(crate) enum Job {
    Act(String, Action),
    Report(String),
}

pub(crate) struct Executor {
    dry_run: bool,
    redacted: Recent,
    /// (room, action kind) pairs already reported as not permitted.
    denied: HashSet<(String, &'static str)>,
    unsupported: HashSet<&'static str>,
}

impl Executor {
    pub(crate) fn new(dry_run: bool) -> Executor {
        Executor { dry_run, redacted: Recent::default(), denied: HashSet::new(), unsupported: HashSet::new() }
    }

    /// Records that the bot redacts `event`; false when it already did.
    pub(crate) fn mark_redacted(&mut self, event: &str) -> bool {
        self.redacted.insert(event.to_owned())
    }

    /// Runs one job; returns what to tell the management room, if anything.
    pub(crate) async fn run(
        &mut self,
        client: &Client,
        rooms: &RoomStates,
        bot: &str,
        management: Option<&Room>,
        job: Job,
    ) -> Option<String> {
        let (protection, action) = match job {
            Job::Report(text) => return Some(text),
            Job::Act(p, a) => (p, a),
        };
        // For the actions carried out here, the capability's name is the action's.
        let kind = gleipnir_runtime::capability::name(gleipnir_runtime::capability::required(&action));

        // Who the action is against, and where.
        let (room, target) = match &action {
            Action::Ban(a) | Action::Kick(a) | Action::Unban(a) => (Some(a.room_id.clone()), Some(a.user_id.clone())),
            Action::Redact(a) => (Some(a.room_id.clone()), None),
            Action::SendNotice(a) => (Some(a.room_id.clone()), None),
            _ => (None, None),
        };
        if let (Some(room), Some(target)) = (&room, &target)
            && matches!(action, Action::Ban(_) | Action::Kick(_))
        {
            let levels = rooms.room_levels(room);
            if rooms.power_level(room, target) >= levels.ban || target == bot {
                return Some(format!("{protection}: not {kind}ning {target} in {room}: they are a moderator there."));
            }
            if let Some(management) = management
                && rooms.membership(management.room_id().as_str(), target) == Some(Membership::Join)
            {
                return Some(format!("{protection}: not {kind}ning {target}: they are in the management room."));
            }
        }
        if let Action::Redact(a) = &action
            && !self.redacted.insert(a.event_id.clone())
        {
            return None;
        }
        if self.dry_run {
            return Some(format!("{protection} (dry run, nothing done): {}", json::action(&action)));
        }
        // The bot's own power, from the room's state.
        if let Some(room) = &room {
            let levels = rooms.room_levels(room);
            let needed = match &action {
                Action::Ban(_) | Action::Unban(_) => Some(levels.ban),
                Action::Kick(_) => Some(levels.kick),
                Action::Redact(_) => Some(levels.redact),
                _ => None,
            };
            if let Some(needed) = needed
                && rooms.power_level(room, bot) < needed
            {
                return self.denied.insert((room.clone(), kind)).then(|| {
                    format!("{protection}: I cannot {kind} in {room}: that needs power level {needed}. (Said once per room.)")
                });
            }
        }

        let result = match &action {
            Action::Redact(a) => {
                match (client.get_room(&room_id(&a.room_id)?), <&EventId>::try_from(a.event_id.as_str())) {
                    (Some(r), Ok(event)) => {
                        r.redact(event, Some(&a.reason), None).await.map(|_| ()).map_err(|e| e.to_string())
                    }
                    _ => Err("not in that room".to_owned()),
                }
            }
            Action::Ban(a) | Action::Kick(a) | Action::Unban(a) => {
                match (client.get_room(&room_id(&a.room_id)?), <&UserId>::try_from(a.user_id.as_str())) {
                    (Some(r), Ok(user)) => {
                        let reason = Some(a.reason.as_str());
                        let done = match &action {
                            Action::Ban(_) => r.ban_user(user, reason).await,
                            Action::Kick(_) => r.kick_user(user, reason).await,
                            _ => r.unban_user(user, reason).await,
                        };
                        done.map_err(|e| e.to_string())
                    }
                    _ => Err("not in that room".to_owned()),
                }
            }
            Action::SendNotice(a) => match client.get_room(&room_id(&a.room_id)?) {
                Some(r) => {
                    r.send(RoomMessageEventContent::notice_plain(&a.body)).await.map(|_| ()).map_err(|e| e.to_string())
                }
                None => Err("not in that room".to_owned()),
            },
            Action::NotifyManagement(a) => return Some(format!("{protection}: {}", a.body)),
            Action::SetJoinRule(_)
            | Action::SetPowerLevel(_)
            | Action::AddPolicyRule(_)
            | Action::RemovePolicyRule(_)
            | Action::SuspendUser(_)
            | Action::DeactivateUser(_)
            | Action::DeleteUserMedia(_) => {
                let name = match &action {
                    Action::SetJoinRule(_) => "set-join-rule",
                    Action::SetPowerLevel(_) => "set-power-level",
                    Action::AddPolicyRule(_) | Action::RemovePolicyRule(_) => "policy rule edits",
                    _ => "server-admin actions",
                };
                return self.unsupported.insert(name).then(|| {
                    format!("{protection}: this version of Gleipnir cannot carry out {name} yet; refused. (Said once.)")
                });
            }
        };
        match result {
            Ok(()) => {
                tracing::info!(protection, action = %json::action(&action), "done");
                None
            }
            Err(e) => Some(format!("{protection}: {kind} failed: {e}")),
        }
    }
}

/// The event ids redacted lately: bounded, oldest forgotten first.
#[derive(Default)]
struct Recent {
    set: HashSet<String>,
    order: std::collections::VecDeque<String>,
}

impl Recent {
    const CAPACITY: usize = 50_000;

    fn insert(&mut self, id: String) -> bool {
        if self.set.contains(&id) {
            return false;
        }
        if self.order.len() == Self::CAPACITY
            && let Some(oldest) = self.order.pop_front()
        {
            self.set.remove(&oldest);
        }
        self.order.push_back(id.clone());
        self.set.insert(id)
    }
}

fn room_id(id: &str) -> Option<matrix_sdk::ruma::OwnedRoomId> {
    <&RoomId>::try_from(id).ok().map(ToOwned::to_owned)
}
