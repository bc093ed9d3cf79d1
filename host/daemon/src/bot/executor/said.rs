//! What came of an act (`Outcome`), and how acts are said: to moderators
//! as sentences with rooms by name, to the log as one line, to the audit
//! trail as fields.

use gleipnir_runtime::json;
use serde_json::Value;

use super::{Act, Context};

/// The room, the target and the reason of an act, for the audit trail.
pub(super) fn audit_fields(act: &Act) -> (Option<String>, Option<String>, Option<String>) {
    let text = |v: &Value, key: &str| v[key].as_str().map(str::to_owned);
    match act {
        Act::Contract(action) => {
            let v = json::action(action);
            let target = text(&v, "user_id").or_else(|| text(&v, "event_id")).or_else(|| text(&v, "entity"));
            (text(&v, "room_id").or_else(|| text(&v, "list_room")), target, text(&v, "reason"))
        }
        Act::ServerAcl { room, .. } => (Some(room.clone()), None, None),
        Act::TakeDownRoom { room, reason } => (Some(room.clone()), None, Some(reason.clone())),
        Act::WriteRule { list, state_key, content, .. } => {
            (Some(list.clone()), Some(state_key.clone()), text(content, "reason"))
        }
    }
}

/// What came of one act.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Done; with a note on how, where there is more to say.
    Done(Option<String>),
    /// Nothing to do: the bot did it already (a redaction, a ban).
    Unneeded,
    /// Not done, on purpose: the sentence says why.
    Refused(String),
    /// The bot's power level in the room is too low.
    Unpermitted { room: String, kind: &'static str, needed: i64 },
    /// This host cannot carry it out yet.
    Unsupported(&'static str),
    /// `dry_run`: what would have been done.
    DryRun(String),
    /// A `notify-management`: the text for the management room.
    Notice(String),
    /// Tried and failed: the homeserver's answer.
    Failed(String),
}

impl Outcome {
    /// One word for `/metrics` and the audit trail.
    pub(super) fn label(&self) -> &'static str {
        match self {
            Outcome::Done(_) => "done",
            Outcome::Unneeded => "unneeded",
            Outcome::Refused(_) => "refused",
            Outcome::Unpermitted { .. } => "unpermitted",
            Outcome::Unsupported(_) => "unsupported",
            Outcome::DryRun(_) => "dry_run",
            Outcome::Notice(_) => "notice",
            Outcome::Failed(_) => "failed",
        }
    }

    /// The outcome as a phrase for a report.
    pub(crate) fn text(self) -> String {
        match self {
            Outcome::Done(note) => note.unwrap_or_else(|| "done".to_owned()),
            Outcome::Unneeded => "already done".to_owned(),
            Outcome::Refused(why) | Outcome::Failed(why) | Outcome::Notice(why) => why,
            Outcome::Unpermitted { room, kind, needed } => {
                format!("I cannot {kind} in {room}: that needs power level {needed}")
            }
            Outcome::Unsupported(name) => format!("this version of Gleipnir cannot carry out {name} yet"),
            Outcome::DryRun(what) => format!("dry run, nothing done: would {what}"),
        }
    }
}

/// An act as moderators read it: a sentence, rooms by name where known.
pub(super) fn said(ctx: &Context<'_>, act: &Act) -> String {
    match act {
        Act::Contract(action) => {
            let sender = |_: &str| None;
            crate::bot::say::actions(std::slice::from_ref(action), &sender, &|room| room_said(ctx, room), 1).join(" ")
        }
        Act::ServerAcl { room, content } => format!("set {}'s server ACL to {content}", room_said(ctx, room)),
        Act::TakeDownRoom { room, .. } => format!("block and purge {room}"),
        Act::WriteRule { list, event_type, state_key, content } => {
            format!("write {event_type} {state_key} = {content} in {}", room_said(ctx, list))
        }
    }
}

/// A room as moderators know it: its name or alias where the bot has one,
/// with the id (`say::room`).
pub(super) fn room_said(ctx: &Context<'_>, id: &str) -> String {
    crate::bot::say::room(crate::bot::matrix::room_name(ctx.rooms, id), id)
}

/// One line saying what an act does, for logs and dry runs.
pub(super) fn describe(act: &Act) -> String {
    match act {
        Act::Contract(action) => json::action(action).to_string(),
        Act::ServerAcl { room, content } => format!("set {room}'s server ACL to {content}"),
        Act::TakeDownRoom { room, .. } => format!("block and purge {room}"),
        Act::WriteRule { list, event_type, state_key, content } => {
            format!("write {event_type} {state_key} = {content} in {list}")
        }
    }
}
