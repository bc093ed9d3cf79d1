//! One protection's turn at one event: what it decided, what it was
//! refused (said once per kind, rooms by name), and its faults.

use std::time::Instant;

use gleipnir_runtime::{Event, Instance, Refusal};

use crate::bot::executor::{Job, Origin};
use crate::bot::health::Health;
use crate::bot::protected::Protected;

/// What every protection's turn at one event shares.
#[derive(Clone, Copy)]
pub(super) struct Turn<'a> {
    pub(super) metrics: &'a crate::bot::metrics::Metrics,
    pub(super) protected: &'a Protected,
    /// For the names of rooms in what is said.
    pub(super) rooms: &'a gleipnir_runtime::rooms::RoomStates,
    pub(super) now: Instant,
}

/// Actions protection `name` was refused (see `Instance::handle`): each
/// counted, and said once per kind of action (rooms by name). The sync path
/// and the checks before an event lands (`gate`) alike.
pub(crate) fn refusal_reports(
    name: &str,
    refused: Vec<Refusal>,
    health: &mut Health,
    metrics: &crate::bot::metrics::Metrics,
    rooms: &gleipnir_runtime::rooms::RoomStates,
) -> Vec<Job> {
    let mut said = Vec::new();
    for refusal in refused {
        metrics.capability_refusal(name);
        let kind = gleipnir_runtime::capability::name(gleipnir_runtime::capability::required(&refusal.action));
        if health.refused(kind) {
            // The room as moderators know it, where the bot has a name for it.
            let room_name = |room: &str| crate::bot::say::room(crate::bot::matrix::room_name(rooms, room), room);
            let what =
                crate::bot::say::actions(std::slice::from_ref(&refusal.action), &|_| None, &room_name, 1).join(" ");
            said.push(Job::Report(format!(
                "{name}: refused {what}: {}. (Said once per kind of action; `status` counts them.)",
                refusal.why
            )));
        }
    }
    said
}

/// One protection's turn at an event, in guest code (see `sandboxed`): its
/// actions (outside protected rooms refused), refusals said once per kind,
/// and its fault, with the quarantine and restart that follow.
pub(super) fn handle_instance(
    name: &str,
    instance: &mut Instance,
    health: &mut Health,
    turn: &Turn<'_>,
    event: &Event,
) -> Vec<Job> {
    let Turn { metrics, protected, rooms, now } = *turn;
    let mut todo = Vec::new();
    if health.quarantined(now) {
        return todo;
    }
    metrics.event_handled(name);
    match instance.handle(event) {
        Ok(mut outcome) => {
            only_in_protected_rooms(&mut outcome, protected);
            todo.extend(refusal_reports(name, std::mem::take(&mut outcome.refused), health, metrics, rooms));
            todo.extend(outcome.actions.into_iter().map(|a| Job::Act(Origin::Protection(name.to_owned()), a)));
        }
        Err(fault) => {
            let mut report = format!("{name} faulted: {fault}");
            let quarantined = health.fault(fault.to_string(), now);
            metrics.fault(name, quarantined.is_some());
            if let Some(length) = quarantined {
                report.push_str(&format!(
                    ". It faulted 3 times within a minute: quarantined for {} s (no events reach it); \
                     `protections enable {name}` lifts it.",
                    length.as_secs()
                ));
            }
            todo.push(Job::Report(report));
            if fault.kills_instance()
                && let Err(e) = instance.restart()
            {
                todo.push(Job::Report(format!("{name} could not restart: {e}")));
            }
        }
    }
    todo
}

/// A protection acts in protected rooms only (never in a list, the
/// management room or a room joined on invite): other actions are refused.
pub(crate) fn only_in_protected_rooms(outcome: &mut gleipnir_runtime::Outcome, protected: &Protected) {
    let (kept, elsewhere): (Vec<_>, Vec<_>) = std::mem::take(&mut outcome.actions)
        .into_iter()
        .partition(|a| action_room(a).is_none_or(|r| protected.contains(r)));
    outcome.actions = kept;
    outcome.refused.extend(elsewhere.into_iter().map(|action| gleipnir_runtime::Refusal {
        why: format!("{} is not a protected room", action_room(&action).unwrap_or_default()),
        action,
    }));
}

/// The room an action acts in, if it acts in one (notices to the management
/// room, actions on a user's account and on a homeserver's rooms do not).
fn action_room(action: &gleipnir_runtime::Action) -> Option<&str> {
    use gleipnir_runtime::Action;
    match action {
        Action::Redact(a) => Some(&a.room_id),
        Action::Ban(a) | Action::Unban(a) | Action::Kick(a) | Action::Invite(a) => Some(&a.room_id),
        Action::SetJoinRule(a) => Some(&a.room_id),
        Action::RestoreJoinRule(a) => Some(&a.room_id),
        Action::SetPowerLevel(a) => Some(&a.room_id),
        Action::SendNotice(a) => Some(&a.room_id),
        Action::AddPolicyRule(a) | Action::RemovePolicyRule(a) => Some(&a.list_room),
        Action::NotifyManagement(_)
        | Action::SuspendUser(_)
        | Action::DeleteUserMedia(_)
        | Action::DeactivateUser(_)
        // A room to block or purge is one the bot does not protect (the
        // executor refuses protected rooms, the management room and lists).
        | Action::BlockRoom(_)
        | Action::PurgeRoom(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gleipnir_runtime::{Action, NotifyManagement, RedactEvent, ServerUser, TargetUser};

    #[test]
    fn protections_act_in_protected_rooms_only() {
        let protected = Protected::of(["!protected:x"]);
        let ban = |room: &str| {
            Action::Ban(TargetUser { room_id: room.into(), user_id: "@u:x".into(), reason: String::new() })
        };
        let mut outcome = gleipnir_runtime::Outcome {
            actions: vec![
                ban("!protected:x"),
                ban("!management:x"),
                Action::Redact(RedactEvent { room_id: "!list:x".into(), event_id: "$e".into(), reason: String::new() }),
                Action::NotifyManagement(NotifyManagement { body: "b".into(), reason: String::new() }),
                Action::SuspendUser(ServerUser { user_id: "@u:x".into(), reason: String::new() }),
            ],
            refused: Vec::new(),
        };
        only_in_protected_rooms(&mut outcome, &protected);
        let kept: Vec<String> =
            outcome.actions.iter().map(|a| gleipnir_runtime::json::action(a)["action"].to_string()).collect();
        assert_eq!(kept, ["\"ban\"", "\"notify-management\"", "\"suspend-user\""]);
        let why: Vec<&str> = outcome.refused.iter().map(|r| r.why.as_str()).collect();
        assert_eq!(why, ["!management:x is not a protected room", "!list:x is not a protected room"]);
    }
}
