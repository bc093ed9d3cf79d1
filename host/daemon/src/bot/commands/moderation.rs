//! `ban`/`kick`/`unban` in rooms and `redact`: plans of single operations,
//! carried out through the executor (after a ✅ when large).

use std::fmt::Write;

use serde_json::Value;

use super::super::Bot;
use super::super::executor::{Act, Origin, Outcome};
use super::super::history::Backwards;
use super::super::matrix::Matrix;
use super::super::plan::{Op, OpAct, Plan};
use super::super::protected::Protected;
use super::{Reply, Verb, list};
use crate::parse::{RedactTarget, RoomRef};

/// `redact USER` without `--limit`: this many events per room.
const DEFAULT_REDACT_LIMIT: u32 = 1000;

/// Pages of 100 events read back per room when looking for a user's events.
const MAX_PAGES: usize = 100;

/// The rooms a command names, or every protected room.
pub(crate) async fn target_rooms(
    m: &Matrix,
    protected: &Protected,
    room: Option<RoomRef>,
) -> Result<Vec<String>, String> {
    let rooms: Vec<String> = match room {
        Some(room) => vec![m.room_id(&room).await?],
        None => protected.rooms(),
    };
    if rooms.is_empty() {
        return Err("No protected rooms to act in; name a room or add one with `rooms add`.".to_owned());
    }
    Ok(rooms)
}

/// `kick --glob PATTERN`: every joined member of the target rooms the glob
/// matches, leaving out the bot, management-room members and the room's
/// moderators (named in the plan, so the preview shows them).
pub(crate) async fn kick_glob_plan(
    m: &Matrix,
    protected: &Protected,
    rooms: &gleipnir_runtime::rooms::RoomStates,
    pattern: &str,
    room: Option<RoomRef>,
    reason: Option<String>,
) -> Reply {
    let Some(glob) = gleipnir_policy::glob::Glob::new(pattern) else {
        return Reply::Done(format!("`{pattern}` is not a glob. Nothing changed."));
    };
    let targets = match target_rooms(m, protected, room).await {
        Ok(r) => r,
        Err(e) => return Reply::Done(e),
    };
    let management = m.management.as_str();
    let mut plan = Plan::default();
    for room in targets {
        let kick = rooms.room_levels(&room).kick;
        for user in rooms.joined(&room).into_iter().filter(|u| glob.matches(u)) {
            if user == m.bot_user
                || rooms.membership(management, &user) == Some(gleipnir_runtime::Membership::Join)
                || rooms.power_level(&room, &user) >= kick
            {
                plan.skipped.push(format!("{user} in {room}: a moderator, a management-room member or me"));
                continue;
            }
            plan.ops.push(Op::Kick { room: room.clone(), user, reason: reason.clone() });
        }
    }
    if plan.ops.is_empty() {
        let mut out =
            format!("No member of the protected rooms matches `{pattern}` who may be kicked. Nothing changed.");
        for skipped in &plan.skipped {
            let _ = write!(out, "\n- left out: {skipped}");
        }
        return Reply::Done(out);
    }
    Reply::Plan(plan)
}

pub(crate) async fn membership_plan(
    m: &Matrix,
    protected: &Protected,
    verb: Verb,
    user: &str,
    room: Option<RoomRef>,
    reason: Option<String>,
) -> Reply {
    let rooms = match target_rooms(m, protected, room).await {
        Ok(r) => r,
        Err(e) => return Reply::Done(e),
    };
    let mut plan = Plan::default();
    for room in rooms {
        if !m.is_joined(&room) {
            plan.skipped.push(format!("{room}: I am not in that room"));
            continue;
        }
        let (user, reason) = (user.to_owned(), reason.clone());
        plan.ops.push(match verb {
            Verb::Ban => Op::Ban { room, user, reason },
            Verb::Kick => Op::Kick { room, user, reason },
            Verb::Unban => Op::Unban { room, user },
        });
    }
    Reply::Plan(plan)
}

pub(crate) async fn redact_plan(
    m: &Matrix,
    protected: &Protected,
    target: RedactTarget,
    limit: Option<u32>,
    room: Option<RoomRef>,
) -> Reply {
    let mut plan = Plan::default();
    match target {
        RedactTarget::Event { room: event_room, event_id } => {
            let room = match target_rooms(m, protected, Some(event_room)).await {
                Ok(mut r) => r.remove(0),
                Err(e) => return Reply::Done(e),
            };
            if !m.is_joined(&room) {
                return Reply::Done(format!("I am not in {room}, so I cannot redact there. Nothing changed."));
            }
            plan.ops.push(Op::Redact { room, event: event_id, reason: None });
        }
        RedactTarget::User(user) => {
            let rooms = match target_rooms(m, protected, room).await {
                Ok(r) => r,
                Err(e) => return Reply::Done(e),
            };
            let limit = limit.unwrap_or(DEFAULT_REDACT_LIMIT) as usize;
            for room in rooms {
                match events_by(m, &room, &user, limit, None).await {
                    Ok(events) => plan.ops.extend(events.into_iter().map(|event| Op::Redact {
                        room: room.clone(),
                        event,
                        reason: None,
                    })),
                    Err(e) => plan.skipped.push(format!("{room}: {e}")),
                }
            }
            if plan.ops.is_empty() {
                let mut out = format!("Found nothing of {user}'s to redact. Nothing changed.");
                for skipped in &plan.skipped {
                    let _ = write!(out, "\n- left out: {skipped}");
                }
                return Reply::Done(out);
            }
        }
    }
    Reply::Plan(plan)
}

/// The newest `limit` events `user` sent in `room` that are not state and
/// not redacted yet, newest first; with `since` (ms), none older than that.
/// The homeserver is asked to filter by sender, and each event's sender is
/// checked here as well: a server that ignores the filter must not get
/// someone else's messages redacted (Draupnir's issue #1072).
pub(crate) async fn events_by(
    m: &Matrix,
    room: &str,
    user: &str,
    limit: usize,
    since: Option<u64>,
) -> Result<Vec<String>, String> {
    if !m.is_joined(room) {
        return Err("I am not in that room".to_owned());
    }
    let mut pages = Backwards::new(room, MAX_PAGES)?.by(user)?;
    let mut found = Vec::new();
    while let Some(chunk) = pages.next(&m.client, 100).await? {
        for raw in &chunk {
            if let Some(event) = redactable(raw.json().get(), user, since) {
                found.push(event);
                if found.len() == limit {
                    return Ok(found);
                }
            }
        }
    }
    Ok(found)
}

/// The id of a history event (client-format JSON) that `redact USER` may
/// take: sent by `user` (whatever the homeserver's filter did), not state,
/// not redacted yet, and with `since`, not older than that. The sender's
/// server sets the timestamp: an old one is passed over, not taken as the
/// end of what is recent.
fn redactable(json: &str, user: &str, since: Option<u64>) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Seen {
        event_id: String,
        sender: String,
        #[serde(default)]
        origin_server_ts: u64,
        state_key: Option<serde::de::IgnoredAny>,
        #[serde(default)]
        content: serde_json::Map<String, Value>,
        #[serde(default)]
        unsigned: serde_json::Map<String, Value>,
    }
    let seen = serde_json::from_str::<Seen>(json).ok()?;
    if since.is_some_and(|since| seen.origin_server_ts < since) {
        return None;
    }
    let redacted = seen.content.is_empty() || seen.unsigned.contains_key("redacted_because");
    (seen.sender == user && seen.state_key.is_none() && !redacted).then_some(seen.event_id)
}

impl Bot {
    /// Carries out a plan, in order, through the executor (as `moderator`'s
    /// command; actions on accounts a protection asked for stay the
    /// protection's), and says what happened. With `dry_run` it only says
    /// what it would have done.
    pub(crate) async fn carry_out(&mut self, moderator: &str, plan: Plan) -> String {
        if self.config.dry_run {
            let mut out = format!("Dry run, nothing done. `{}` would carry out:", plan.command);
            for op in &plan.ops {
                let _ = write!(out, "\n- {} in {}", op.describe(), op.room());
            }
            return out;
        }
        let moderator = Origin::Moderator { user: moderator.to_owned(), command: plan.command.clone() };
        let mut failed = Vec::new();
        for op in &plan.ops {
            if let Op::Protect { room } = op {
                return self.rooms_add(&RoomRef::Id(room.clone())).await;
            }
            if let Op::Watch { reference, .. } = op {
                return match crate::parse::room_ref(reference) {
                    Ok(room) => self.watch(&room).await,
                    Err(e) => format!("Could not watch {reference}: {e}. Nothing changed."),
                };
            }
            if let Op::Recover { recovery, .. } = op {
                match self.recover(recovery).await {
                    // Option numbers stay as shown until `restart`.
                    Ok(done) => return format!("{done} `restart` to start with it."),
                    Err(e) => return format!("Recovery refused: {e:#}. Nothing changed."),
                }
            }
            let (origin, act) = match op.act() {
                Some(OpAct::Protection { origin, action }) => (Origin::Protection(origin), Act::Contract(action)),
                Some(OpAct::Moderator(act)) => (moderator.clone(), act),
                None => continue,
            };
            let outcome = self.act(&origin, act).await;
            match outcome {
                Outcome::Done(_) | Outcome::Unneeded => {}
                Outcome::Notice(text) => failed.push(text),
                other => failed.push(format!("{} in {}: {}", op.describe(), op.room(), other.text())),
            }
        }
        let rooms: std::collections::BTreeSet<&str> = plan.ops.iter().map(Op::room).collect();
        let mut out = format!(
            "`{}`: {} of {} operation(s) done in {} room(s).",
            plan.command,
            plan.ops.len() - failed.len(),
            plan.ops.len(),
            rooms.len()
        );
        if !failed.is_empty() {
            let _ = write!(out, "\nFailed:\n{}", list(failed.iter().take(20)));
            if failed.len() > 20 {
                let _ = write!(out, "\n- … and {} more", failed.len() - 20);
            }
        }
        for skipped in &plan.skipped {
            let _ = write!(out, "\n- left out: {skipped}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_users_own_live_recent_messages_are_redactable() {
        let event = |sender: &str, ts: u64, extra: serde_json::Value| {
            let mut e = serde_json::json!({"event_id": "$e", "sender": sender, "origin_server_ts": ts,
                "type": "m.room.message", "content": {"body": "x"}});
            e.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            e.to_string()
        };
        let none = serde_json::json!({});
        assert_eq!(redactable(&event("@bad:x", 10, none.clone()), "@bad:x", None).as_deref(), Some("$e"));
        // A homeserver that ignored the sender filter: someone else's message is not taken.
        assert_eq!(redactable(&event("@innocent:x", 10, none.clone()), "@bad:x", None), None);
        assert_eq!(redactable(&event("@bad:x", 10, none.clone()), "@bad:x", Some(11)), None);
        assert_eq!(redactable(&event("@bad:x", 10, serde_json::json!({"state_key": ""})), "@bad:x", None), None);
        assert_eq!(redactable(&event("@bad:x", 10, serde_json::json!({"content": {}})), "@bad:x", None), None);
    }
}
