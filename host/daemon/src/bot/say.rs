//! Actions as moderators read them: grouped by room and by member, in
//! sentences ("in Lobby (!abc:example.org): ban @spammer:example.org and
//! redact their 15 messages (flooding)"), long lists folded with a count.
//! Pure: who sent a redacted event and what a room is called come in.

use std::collections::BTreeMap;

use gleipnir_runtime::{Action, json};

/// What one member is in for, in one room.
#[derive(Default)]
struct Member {
    /// ban, kick, unban, invite, in the order they came.
    verbs: Vec<&'static str>,
    redactions: usize,
    reason: Option<String>,
}

/// One room's acts: its members and what each is in for, and the other acts counted.
type Room = (String, Vec<(String, Member)>, Vec<(String, usize)>);

/// The sentences for `actions`, one per room and member plus one per other
/// kind of act (counted when repeated), at most `most` lines (then "… and N
/// more"). `sender_of` names who sent a redacted event, where known;
/// `room_name` says a room as moderators know it.
pub(crate) fn actions(
    actions: &[Action],
    sender_of: &dyn Fn(&str) -> Option<String>,
    room_name: &dyn Fn(&str) -> String,
    most: usize,
) -> Vec<String> {
    // Rooms, members and other acts, each in the order first seen.
    let mut rooms: Vec<Room> = Vec::new();
    let mut elsewhere: Vec<(String, usize)> = Vec::new();
    for action in actions {
        let (room, user, verb, reason) = match action {
            Action::Ban(a) => (&a.room_id, Some(a.user_id.clone()), Some("ban"), &a.reason),
            Action::Kick(a) => (&a.room_id, Some(a.user_id.clone()), Some("kick"), &a.reason),
            Action::Unban(a) => (&a.room_id, Some(a.user_id.clone()), Some("unban"), &a.reason),
            Action::Invite(a) => (&a.room_id, Some(a.user_id.clone()), Some("invite"), &a.reason),
            Action::Redact(a) => (&a.room_id, sender_of(&a.event_id), None, &a.reason),
            other => {
                let (room, phrase) = other_phrase(other);
                match room {
                    Some(room) => {
                        let at = room_at(&mut rooms, room);
                        count(&mut rooms[at].2, phrase);
                    }
                    None => count(&mut elsewhere, phrase),
                }
                continue;
            }
        };
        let at = room_at(&mut rooms, room);
        let Some(user) = user else {
            // A redaction of an event whose sender is not known here.
            let phrase = match action {
                Action::Redact(a) => format!("redact {}", a.event_id),
                _ => unreachable!("only redactions lack a user"),
            };
            count(&mut rooms[at].2, phrase);
            continue;
        };
        let members = &mut rooms[at].1;
        let index = match members.iter().position(|(u, _)| *u == user) {
            Some(i) => i,
            None => {
                members.push((user, Member::default()));
                members.len() - 1
            }
        };
        let member = &mut members[index].1;
        match verb {
            Some(verb) if !member.verbs.contains(&verb) => member.verbs.push(verb),
            Some(_) => {}
            None => member.redactions += 1,
        }
        if member.reason.is_none() && !reason.is_empty() {
            member.reason = Some(reason.clone());
        }
    }

    let mut lines = Vec::new();
    for (room, members, others) in &rooms {
        let place = room_name(room);
        for (user, m) in members {
            let mut parts: Vec<String> = m.verbs.iter().map(|v| format!("{v} {user}")).collect();
            match (m.redactions, parts.is_empty()) {
                (0, _) => {}
                (n, false) => parts.push(format!("redact their {n} message{}", plural(n))),
                (n, true) => parts.push(format!("redact {n} message{} of {user}", plural(n))),
            }
            let reason = m.reason.as_deref().map_or(String::new(), |r| format!(" ({r})"));
            lines.push(format!("in {place}: {}{reason}", parts.join(" and ")));
        }
        for (phrase, n) in others {
            lines.push(format!("in {place}: {phrase}{}", times(*n)));
        }
    }
    for (phrase, n) in &elsewhere {
        lines.push(format!("{phrase}{}", times(*n)));
    }
    if lines.len() > most {
        let more = lines.len() - most;
        lines.truncate(most);
        lines.push(format!("… and {more} more"));
    }
    lines
}

fn room_at(rooms: &mut Vec<Room>, room: &str) -> usize {
    match rooms.iter().position(|(r, _, _)| r == room) {
        Some(i) => i,
        None => {
            rooms.push((room.to_owned(), Vec::new(), Vec::new()));
            rooms.len() - 1
        }
    }
}

fn count(list: &mut Vec<(String, usize)>, phrase: String) {
    match list.iter_mut().find(|(p, _)| *p == phrase) {
        Some((_, n)) => *n += 1,
        None => list.push((phrase, 1)),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn times(n: usize) -> String {
    if n > 1 { format!(" ({n} times)") } else { String::new() }
}

/// A notice's text, cut to a readable length.
fn quote(text: &str) -> String {
    const MOST: usize = 120;
    let line = text.lines().next().unwrap_or_default();
    let cut: String = line.chars().take(MOST).collect();
    let more = if cut.len() < text.len() { "…" } else { "" };
    format!("“{cut}{more}”")
}

/// The room an act that is not about one member happens in (if any), and
/// what it does.
fn other_phrase(action: &Action) -> (Option<&str>, String) {
    match action {
        Action::SetJoinRule(a) => (Some(&a.room_id), format!("set the join rule to {}", json::join_rule(a.rule))),
        Action::RestoreJoinRule(a) => (Some(&a.room_id), "put back the join rule".to_owned()),
        Action::SetPowerLevel(a) => (Some(&a.room_id), format!("set {}'s power level to {}", a.user_id, a.level)),
        Action::SendNotice(a) => (Some(&a.room_id), format!("say {}", quote(&a.body))),
        Action::BlockRoom(a) => (Some(&a.room_id), "block the room on this homeserver".to_owned()),
        Action::PurgeRoom(a) => (Some(&a.room_id), "block and purge the room".to_owned()),
        Action::NotifyManagement(a) => (None, format!("tell the management room {}", quote(&a.body))),
        Action::AddPolicyRule(a) => (Some(&a.list_room), format!("add a {} rule for {}", a.recommendation, a.entity)),
        Action::RemovePolicyRule(a) => (Some(&a.list_room), format!("remove the rule for {}", a.entity)),
        Action::SuspendUser(a) => (None, format!("suspend {}'s account", a.user_id)),
        Action::DeleteUserMedia(a) => (None, format!("delete {}'s media", a.user_id)),
        Action::DeactivateUser(a) if a.erase => (None, format!("deactivate and erase {}'s account", a.user_id)),
        Action::DeactivateUser(a) => (None, format!("deactivate {}'s account", a.user_id)),
        Action::Redact(_) | Action::Ban(_) | Action::Kick(_) | Action::Unban(_) | Action::Invite(_) => {
            unreachable!("member acts are grouped")
        }
    }
}

/// Rooms said by name where the bot knows one, with the id.
pub(crate) fn room(name: Option<String>, id: &str) -> String {
    match name.filter(|n| !n.is_empty() && n != id) {
        Some(name) => format!("{name} ({id})"),
        None => id.to_owned(),
    }
}

/// Counts the members an act list is about (for a one-line summary).
pub(crate) fn members(actions: &[Action], sender_of: &dyn Fn(&str) -> Option<String>) -> usize {
    let mut seen = BTreeMap::new();
    for action in actions {
        let user = match action {
            Action::Ban(a) | Action::Kick(a) | Action::Unban(a) | Action::Invite(a) => Some(a.user_id.clone()),
            Action::Redact(a) => sender_of(&a.event_id),
            _ => None,
        };
        if let Some(user) = user {
            seen.insert(user, ());
        }
    }
    seen.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gleipnir_runtime::{NotifyManagement, RedactEvent, TargetUser};

    fn redact(event: &str) -> Action {
        Action::Redact(RedactEvent { room_id: "!r:x".into(), event_id: event.into(), reason: "flooding".into() })
    }

    #[test]
    fn a_flood_reads_as_one_sentence_per_member() {
        let mut acts: Vec<Action> = (0..15).map(|i| redact(&format!("$s{i}"))).collect();
        acts.insert(
            0,
            Action::Ban(TargetUser { room_id: "!r:x".into(), user_id: "@spam:x".into(), reason: "flooding".into() }),
        );
        acts.push(redact("$other"));
        acts.push(redact("$unknown"));
        for _ in 0..2 {
            acts.push(Action::NotifyManagement(NotifyManagement {
                body: "flood by @spam:x".into(),
                reason: "f".into(),
            }));
        }
        let sender = |e: &str| match e {
            "$other" => Some("@chat:x".to_owned()),
            "$unknown" => None,
            _ => Some("@spam:x".to_owned()),
        };
        let name = |r: &str| room(Some("Lobby".into()), r);
        assert_eq!(
            actions(&acts, &sender, &name, 10),
            [
                "in Lobby (!r:x): ban @spam:x and redact their 15 messages (flooding)",
                "in Lobby (!r:x): redact 1 message of @chat:x (flooding)",
                "in Lobby (!r:x): redact $unknown",
                "tell the management room “flood by @spam:x” (2 times)",
            ]
        );
        assert_eq!(members(&acts, &sender), 2);
        let folded = actions(&acts, &sender, &name, 2);
        assert_eq!(folded.last().map(String::as_str), Some("… and 2 more"));
        assert_eq!(room(None, "!r:x"), "!r:x");
    }
}
