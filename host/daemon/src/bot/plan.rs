//! Commands that act on many rooms, users or events work in two steps: the
//! command computes a [`Plan`] (every single operation, nothing done yet);
//! a small plan runs at once, a large one is shown as a preview and runs
//! only when a moderator reacts ✅ to the preview. What runs is exactly what
//! was shown: the plan is kept, not recomputed.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::time::{Duration, Instant};

use super::executor::Act;

/// How long a preview waits for its ✅.
pub(crate) const CONFIRM_WITHIN: Duration = Duration::from_secs(10 * 60);

/// Lines of a preview before "… and N more".
const PREVIEW_LINES: usize = 15;

/// What an [`Op`] comes to for the executor.
pub(crate) enum OpAct {
    /// An action a protection asked for (on an account, or from one of its
    /// commands), confirmed by a moderator: carried out with the
    /// protection as its origin, under the rules for protections.
    Protection { origin: String, action: gleipnir_runtime::Action },
    /// A moderator's own operation.
    Moderator(Act),
}

/// One operation a command carries out.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    Ban {
        room: String,
        user: String,
        reason: Option<String>,
    },
    Kick {
        room: String,
        user: String,
        reason: Option<String>,
    },
    Unban {
        room: String,
        user: String,
    },
    Redact {
        room: String,
        event: String,
        reason: Option<String>,
    },
    /// A recovery option; `room` is the store it changes.
    Recover {
        room: String,
        recovery: crate::state::Recovery,
    },
    /// An action a protection asked for: on a user's account (suspend,
    /// deactivate, delete media), held for a moderator's ✅, or returned by
    /// one of its commands.
    Protection {
        /// The protection that asked.
        origin: String,
        action: gleipnir_runtime::Action,
    },
    /// Protects a room the bot was invited to.
    Protect {
        room: String,
    },
    /// Watches a policy list (`room`), as `reference` names it; what it
    /// would ban was shown in the preview.
    Watch {
        room: String,
        reference: String,
        rules: usize,
        banned: usize,
    },
    /// Writes a rule into a policy list (`room`); `rule` says what it is.
    AddRule {
        room: String,
        event_type: String,
        state_key: String,
        content: serde_json::Value,
        rule: String,
    },
    /// Empties a rule's state in a policy list (`room`).
    RemoveRule {
        room: String,
        event_type: String,
        state_key: String,
        rule: String,
    },
}

impl Op {
    /// What the executor carries out for this operation; `None` for a
    /// recovery (it changes stored state, not rooms).
    pub(crate) fn act(&self) -> Option<OpAct> {
        use gleipnir_runtime::{Action, RedactEvent, TargetUser};
        let target = |room: &str, user: &str, reason: &Option<String>| TargetUser {
            room_id: room.to_owned(),
            user_id: user.to_owned(),
            reason: reason.clone().unwrap_or_default(),
        };
        let act = match self {
            Op::Ban { room, user, reason } => Act::Contract(Action::Ban(target(room, user, reason))),
            Op::Kick { room, user, reason } => Act::Contract(Action::Kick(target(room, user, reason))),
            Op::Unban { room, user } => Act::Contract(Action::Unban(target(room, user, &None))),
            Op::Redact { room, event, reason } => Act::Contract(Action::Redact(RedactEvent {
                room_id: room.clone(),
                event_id: event.clone(),
                reason: reason.clone().unwrap_or_default(),
            })),
            Op::AddRule { room, event_type, state_key, content, .. } => Act::WriteRule {
                list: room.clone(),
                event_type: event_type.clone(),
                state_key: state_key.clone(),
                content: content.clone(),
            },
            Op::RemoveRule { room, event_type, state_key, .. } => {
                let (list, event_type, state_key) = (room.clone(), event_type.clone(), state_key.clone());
                Act::WriteRule { list, event_type, state_key, content: serde_json::json!({}) }
            }
            Op::Protection { origin, action } => {
                return Some(OpAct::Protection { origin: origin.clone(), action: action.clone() });
            }
            Op::Recover { .. } | Op::Watch { .. } | Op::Protect { .. } => return None,
        };
        Some(OpAct::Moderator(act))
    }

    pub(crate) fn room(&self) -> &str {
        match self {
            Op::Protection { action, .. } => action_place(action),
            Op::Ban { room, .. }
            | Op::Kick { room, .. }
            | Op::Unban { room, .. }
            | Op::Redact { room, .. }
            | Op::RemoveRule { room, .. }
            | Op::AddRule { room, .. }
            | Op::Recover { room, .. }
            | Op::Watch { room, .. }
            | Op::Protect { room } => room,
        }
    }

    /// `ban @u:s`, `redact $event`: what this operation does, without the room.
    pub(crate) fn describe(&self) -> String {
        match self {
            Op::Ban { user, .. } => format!("ban {user}"),
            Op::Kick { user, .. } => format!("kick {user}"),
            Op::Unban { user, .. } => format!("unban {user}"),
            Op::Redact { event, .. } => format!("redact {event}"),
            Op::RemoveRule { rule, .. } => format!("remove the rule {rule}"),
            Op::AddRule { rule, .. } => format!("add the rule {rule}"),
            Op::Protection { action, .. } => describe_action(action),
            Op::Recover { recovery, .. } => recovery.describe(),
            Op::Protect { .. } => "protect this room (its protections, policy lists and ACLs apply)".to_owned(),
            Op::Watch { rules, banned, .. } => {
                format!("watch the list ({rules} rule(s)), which bans {banned} member(s) of the protected rooms")
            }
        }
    }
}

/// Where a protection's action acts, as a preview groups it.
fn action_place(action: &gleipnir_runtime::Action) -> &str {
    use gleipnir_runtime::Action;
    match action {
        Action::Redact(a) => &a.room_id,
        Action::Ban(a) | Action::Unban(a) | Action::Kick(a) | Action::Invite(a) => &a.room_id,
        Action::SetJoinRule(a) => &a.room_id,
        Action::SetPowerLevel(a) => &a.room_id,
        Action::SendNotice(a) => &a.room_id,
        Action::RestoreJoinRule(a) | Action::BlockRoom(a) | Action::PurgeRoom(a) => &a.room_id,
        Action::AddPolicyRule(a) | Action::RemovePolicyRule(a) => &a.list_room,
        Action::NotifyManagement(_) => "(the management room)",
        Action::SuspendUser(_) | Action::DeleteUserMedia(_) | Action::DeactivateUser(_) => {
            "(accounts on this homeserver)"
        }
    }
}

/// `suspend @u:s`, `set the join rule to invite`: a protection's action
/// without its room.
fn describe_action(action: &gleipnir_runtime::Action) -> String {
    use gleipnir_runtime::{Action, json};
    match action {
        Action::SuspendUser(a) => format!("suspend {}", a.user_id),
        Action::DeleteUserMedia(a) => format!("delete {}'s media", a.user_id),
        Action::DeactivateUser(a) if a.erase => format!("deactivate and erase {}", a.user_id),
        Action::DeactivateUser(a) => format!("deactivate {}", a.user_id),
        Action::Redact(a) => format!("redact {}", a.event_id),
        Action::Ban(a) => format!("ban {}", a.user_id),
        Action::Unban(a) => format!("unban {}", a.user_id),
        Action::Kick(a) => format!("kick {}", a.user_id),
        Action::Invite(a) => format!("invite {}", a.user_id),
        Action::SetJoinRule(a) => format!("set the join rule to {}", json::join_rule(a.rule)),
        Action::RestoreJoinRule(_) => "put back the join rule".to_owned(),
        Action::SetPowerLevel(a) => format!("set {}'s power level to {}", a.user_id, a.level),
        Action::SendNotice(_) => "send a notice".to_owned(),
        Action::NotifyManagement(_) => "tell the management room".to_owned(),
        Action::AddPolicyRule(a) => format!("add a rule for {}", a.entity),
        Action::RemovePolicyRule(a) => format!("remove the rule for {}", a.entity),
        Action::BlockRoom(_) => "block the room".to_owned(),
        Action::PurgeRoom(_) => "block and purge the room".to_owned(),
    }
}

/// Everything a command will do, and what it could not plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Plan {
    /// The command as the moderator gave it, for the preview and the result.
    pub(crate) command: String,
    pub(crate) ops: Vec<Op>,
    /// Rooms (or items) left out, and why.
    pub(crate) skipped: Vec<String>,
    /// What else the preview should say (what the operations lead to).
    pub(crate) notes: Vec<String>,
    /// Ask for a ✅ however small the plan is.
    pub(crate) always_confirm: bool,
}

impl Plan {
    /// What the plan would do, grouped by room, ending with how to go ahead.
    pub(crate) fn preview(&self) -> String {
        let mut out = format!("`{}` would carry out {} operation(s)", self.command, self.ops.len());
        let rooms = self.by_room();
        let _ = writeln!(out, " in {} room(s):", rooms.len());
        for (shown_rooms, (room, ops)) in rooms.iter().enumerate() {
            if shown_rooms == PREVIEW_LINES {
                let _ = writeln!(out, "- … and more in {} other room(s)", rooms.len() - PREVIEW_LINES);
                break;
            }
            let shown: Vec<String> = ops.iter().take(3).map(|op| op.describe()).collect();
            let more = if ops.len() > 3 { format!(", … ({} in all)", ops.len()) } else { String::new() };
            let _ = writeln!(out, "- {room}: {}{more}", shown.join(", "));
        }
        for skipped in &self.skipped {
            let _ = writeln!(out, "- left out: {skipped}");
        }
        for note in &self.notes {
            let _ = writeln!(out, "- {note}");
        }
        let minutes = CONFIRM_WITHIN.as_secs() / 60;
        let _ = write!(
            out,
            "React with ✅ to this message within {minutes} minutes to go ahead, or repeat the command with --no-confirm."
        );
        out
    }

    fn by_room(&self) -> BTreeMap<&str, Vec<&Op>> {
        let mut rooms: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
        for op in &self.ops {
            rooms.entry(op.room()).or_default().push(op);
        }
        rooms
    }
}

/// Whether a reaction key says "yes": ✅ or ✔️, with or without the emoji
/// variation selector.
pub(crate) fn is_yes(key: &str) -> bool {
    matches!(key.trim_end_matches('\u{fe0f}'), "✅" | "✔")
}

/// The number of a keycap emoji reaction (`1️⃣` … `9️⃣`, `🔟`), if it is one.
pub(crate) fn keycap_number(key: &str) -> Option<usize> {
    if key == "🔟" {
        return Some(10);
    }
    let mut chars = key.chars();
    let digit = chars.next()?.to_digit(10).filter(|d| *d >= 1)?;
    let rest: String = chars.filter(|c| *c != '\u{fe0f}').collect();
    (rest == "\u{20e3}").then_some(digit as usize)
}

/// Plans waiting for a ✅, by the event id of their preview.
#[derive(Default)]
pub(crate) struct Confirmations {
    pending: HashMap<String, (Plan, Instant)>,
}

/// What a ✅ on an event means.
#[derive(Debug, PartialEq)]
pub(crate) enum Confirmed {
    /// Go ahead with this plan.
    Go(Plan),
    /// It was a preview, but too long ago.
    Expired(String),
    /// Not a preview of ours (or already carried out).
    NotAPreview,
}

impl Confirmations {
    pub(crate) fn hold(&mut self, preview_event: String, plan: Plan, now: Instant) {
        self.pending.retain(|_, (_, at)| now.duration_since(*at) < CONFIRM_WITHIN);
        self.pending.insert(preview_event, (plan, now));
    }

    /// Takes the plan previewed by `event`: each plan runs at most once.
    pub(crate) fn take(&mut self, event: &str, now: Instant) -> Confirmed {
        match self.pending.remove(event) {
            Some((plan, at)) if now.duration_since(at) < CONFIRM_WITHIN => Confirmed::Go(plan),
            Some((plan, _)) => Confirmed::Expired(plan.command),
            None => Confirmed::NotAPreview,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ban(room: &str) -> Op {
        Op::Ban { room: room.to_owned(), user: "@spam:x".to_owned(), reason: None }
    }

    #[test]
    fn a_preview_lists_each_room_and_how_to_go_ahead() {
        let mut plan = Plan { command: "redact @spam:x".to_owned(), ..Plan::default() };
        for i in 0..5 {
            plan.ops.push(Op::Redact { room: "!a".to_owned(), event: format!("$e{i}"), reason: None });
        }
        plan.ops.push(ban("!b"));
        plan.skipped.push("!c: not joined".to_owned());
        assert_eq!(
            plan.preview(),
            "`redact @spam:x` would carry out 6 operation(s) in 2 room(s):\n\
             - !a: redact $e0, redact $e1, redact $e2, … (5 in all)\n\
             - !b: ban @spam:x\n\
             - left out: !c: not joined\n\
             React with ✅ to this message within 10 minutes to go ahead, or repeat the command with --no-confirm."
        );
    }

    #[test]
    fn a_long_preview_is_cut() {
        let plan = Plan {
            command: "ban @spam:x".to_owned(),
            ops: (0..40).map(|i| ban(&format!("!room{i:02}"))).collect(),
            ..Plan::default()
        };
        let preview = plan.preview();
        assert_eq!(preview.lines().filter(|l| l.starts_with("- !room")).count(), 15);
        assert!(preview.contains("- … and more in 25 other room(s)"), "{preview}");
    }

    #[test]
    fn a_plan_runs_once_and_only_in_time() {
        let start = Instant::now();
        let plan = Plan { command: "ban @spam:x".to_owned(), ops: vec![ban("!a")], ..Plan::default() };
        let mut waiting = Confirmations::default();
        waiting.hold("$preview".to_owned(), plan.clone(), start);
        assert_eq!(waiting.take("$other", start), Confirmed::NotAPreview);
        assert_eq!(waiting.take("$preview", start + Duration::from_secs(5)), Confirmed::Go(plan.clone()));
        assert_eq!(waiting.take("$preview", start), Confirmed::NotAPreview);

        waiting.hold("$late".to_owned(), plan, start);
        assert_eq!(waiting.take("$late", start + CONFIRM_WITHIN), Confirmed::Expired("ban @spam:x".to_owned()));
    }

    #[test]
    fn keycaps_are_numbers() {
        assert_eq!(keycap_number("1\u{fe0f}\u{20e3}"), Some(1));
        assert_eq!(keycap_number("7\u{20e3}"), Some(7));
        assert_eq!(keycap_number("🔟"), Some(10));
        assert_eq!(keycap_number("0\u{fe0f}\u{20e3}"), None);
        assert_eq!(keycap_number("1"), None);
        assert_eq!(keycap_number("✅"), None);
    }

    #[test]
    fn yes_is_a_check_mark() {
        assert!(is_yes("✅"));
        assert!(is_yes("✔️"));
        assert!(is_yes("✔"));
        assert!(!is_yes("👎"));
        assert!(!is_yes("✅✅"));
    }
}
