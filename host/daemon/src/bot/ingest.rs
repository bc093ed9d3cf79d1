//! One sync response → the ordered inputs the bot handles, decided without
//! I/O: invites first; then each joined room's state, missed events (a gap
//! to fetch) and timeline, the management room last (so commands see this
//! sync's rule and state changes); then rooms the bot protected or watched
//! and is no longer in.
//!
//! A room the bot has just joined comes with some of its past: what
//! happened before the bot's own join (and the state before it) is history,
//! never seen live, and is left out (the room's whole state is read when it
//! is protected or watched; replaying the past would make old joins look new).

use std::borrow::Cow;

use matrix_sdk::ruma::api::client::sync::sync_events::v3::{Response, State};

use super::protected::Protected;

/// What the bot watches, as ingest needs it.
pub(crate) struct Watched<'a> {
    pub(crate) bot: &'a str,
    pub(crate) management: &'a str,
    pub(crate) protected: &'a Protected,
    pub(crate) is_list: &'a dyn Fn(&str) -> bool,
}

impl Watched<'_> {
    fn watches(&self, room: &str) -> bool {
        room == self.management || self.protected.contains(room) || (self.is_list)(room)
    }
}

/// A joined room's part of a sync.
#[derive(Debug, Default)]
pub(crate) struct Joined<'a> {
    pub(crate) room: &'a str,
    pub(crate) state: Vec<&'a str>,
    pub(crate) timeline: Vec<&'a str>,
    pub(crate) limited: bool,
    pub(crate) prev_batch: Option<&'a str>,
}

/// A left room's part of a sync: its state, then its timeline.
#[derive(Debug, Default)]
pub(crate) struct Left<'a> {
    pub(crate) room: &'a str,
    pub(crate) events: Vec<&'a str>,
}

/// One thing to handle, in order.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Input<'a> {
    /// An invite (the room, and who sent it as the invite's own member
    /// event says): accepted from management-room members only.
    Invite(&'a str, Option<&'a str>),
    /// A state event of a joined room's state section.
    State {
        room: &'a str,
        json: &'a str,
    },
    /// More happened before a watched room's timeline than the sync
    /// returned: fetch the missed events, oldest first, and handle each as
    /// [`Input::Timeline`].
    Gap {
        room: &'a str,
        prev_batch: &'a str,
    },
    Timeline {
        room: &'a str,
        json: &'a str,
    },
    /// The last state of a protected room or watched list the bot left.
    LeftState {
        room: &'a str,
        json: &'a str,
    },
    /// The bot is no longer in a room it protected or watched.
    Lost(&'a str),
}

/// The parts of a sync response ingest reads.
pub(crate) struct Parts<'a> {
    /// Rooms the bot is invited to, each with its inviter if the invite says.
    pub(crate) invited: Vec<(&'a str, Option<&'a str>)>,
    pub(crate) joined: Vec<Joined<'a>>,
    pub(crate) left: Vec<Left<'a>>,
}

impl<'a> Parts<'a> {
    /// The parts of `response`; `bot` is the bot's user id (its invites' inviters).
    pub(crate) fn of(response: &'a Response, bot: &str) -> Parts<'a> {
        let state = |s: &'a State| match s {
            State::Before(s) | State::After(s) => s.events.iter().map(|e| e.json().get()).collect::<Vec<_>>(),
            _ => Vec::new(),
        };
        let joined = response
            .rooms
            .join
            .iter()
            .map(|(room, update)| Joined {
                room: room.as_str(),
                state: state(&update.state),
                timeline: update.timeline.events.iter().map(|e| e.json().get()).collect(),
                limited: update.timeline.limited,
                prev_batch: update.timeline.prev_batch.as_deref(),
            })
            .collect();
        let left = response
            .rooms
            .leave
            .iter()
            .map(|(room, update)| {
                let mut events = state(&update.state);
                events.extend(update.timeline.events.iter().map(|e| e.json().get()));
                Left { room: room.as_str(), events }
            })
            .collect();
        let invited = (response.rooms.invite.iter())
            .map(|(room, invite)| {
                let events = invite.invite_state.events.iter().map(|e| e.json().get());
                (room.as_str(), events.filter_map(|json| inviter(json, bot)).next_back())
            })
            .collect();
        Parts { invited, joined, left }
    }
}

/// The sender of `json` if it is the member event inviting `bot`.
fn inviter<'a>(json: &'a str, bot: &str) -> Option<&'a str> {
    #[derive(serde::Deserialize)]
    struct Member<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        state_key: Option<&'a str>,
        sender: Option<&'a str>,
        content: Option<Content<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Content<'a> {
        membership: Option<&'a str>,
    }
    let event = serde_json::from_str::<Member<'a>>(json).ok()?;
    let invite = event.content.and_then(|c| c.membership) == Some("invite");
    (event.kind == "m.room.member" && event.state_key == Some(bot) && invite).then_some(event.sender).flatten()
}

/// The inputs of one sync, in the order they are handled.
pub(crate) fn ingest<'a>(parts: Parts<'a>, watched: &Watched<'_>) -> Vec<Input<'a>> {
    let mut inputs: Vec<Input<'a>> = parts.invited.into_iter().map(|(room, by)| Input::Invite(room, by)).collect();
    let mut joined = parts.joined;
    joined.sort_by_key(|j| j.room == watched.management);
    for j in joined {
        let joined_at = j.timeline.iter().rposition(|json| is_own_join(json, watched.bot));
        if joined_at.is_none() {
            inputs.extend(j.state.iter().map(|json| Input::State { room: j.room, json }));
            // (A gap before the bot's own join is history too.)
            if j.limited
                && watched.watches(j.room)
                && let Some(prev_batch) = j.prev_batch
            {
                inputs.push(Input::Gap { room: j.room, prev_batch });
            }
        }
        let first = joined_at.unwrap_or(0);
        inputs.extend(j.timeline[first..].iter().map(|json| Input::Timeline { room: j.room, json }));
    }
    for l in parts.left {
        if !watched.protected.contains(l.room) && !(watched.is_list)(l.room) {
            continue;
        }
        inputs.extend(l.events.iter().map(|json| Input::LeftState { room: l.room, json }));
        inputs.push(Input::Lost(l.room));
    }
    inputs
}

/// The type and state key of a state event (borrowed where they hold no escapes).
pub(crate) fn state_key_of(json: &str) -> Option<(Cow<'_, str>, Cow<'_, str>)> {
    #[derive(serde::Deserialize)]
    struct Key<'a> {
        #[serde(rename = "type", borrow)]
        kind: Cow<'a, str>,
        #[serde(borrow)]
        state_key: Cow<'a, str>,
    }
    let key: Key<'_> = serde_json::from_str(json).ok()?;
    Some((key.kind, key.state_key))
}

/// Whether `json` is `bot` joining a room (not a profile change of the bot
/// already there).
pub(crate) fn is_own_join(json: &str, bot: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Member<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        state_key: Option<&'a str>,
        #[serde(default)]
        content: serde_json::Value,
        #[serde(default)]
        unsigned: serde_json::Value,
    }
    let Ok(event) = serde_json::from_str::<Member<'_>>(json) else { return false };
    let membership = |v: &serde_json::Value| v.get("membership").and_then(|m| m.as_str()).map(str::to_owned);
    event.kind == "m.room.member"
        && event.state_key == Some(bot)
        && membership(&event.content).as_deref() == Some("join")
        && event.unsigned.get("prev_content").and_then(membership).as_deref() != Some("join")
}

/// The messages among `events` (JSON) that the homeserver stamped at or
/// after `since_ms`, in their order: on a first start, those a moderator
/// sent while the bot loaded.
pub(crate) fn messages_since<'a>(events: impl Iterator<Item = &'a str>, since_ms: u64) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        #[serde(rename = "type", borrow)]
        kind: &'a str,
        origin_server_ts: u64,
    }
    events
        .filter(|json| {
            serde_json::from_str::<Head<'_>>(json)
                .is_ok_and(|head| head.kind == "m.room.message" && head.origin_server_ts >= since_ms)
        })
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_since_a_time_are_those_stamped_at_or_after_it() {
        let event = |kind: &str, ts: u64, body: &str| {
            serde_json::json!({"type": kind, "origin_server_ts": ts, "sender": "@mod:x", "content": {"body": body}})
                .to_string()
        };
        let events = [
            event("m.room.message", 999, "before"),
            event("m.room.message", 1000, "at"),
            event("m.reaction", 1001, "a reaction"),
            "{\"type\": \"m.room.message\", \"origin_server_ts\": \"late\"}".to_owned(),
            event("m.room.message", 1002, "after"),
        ];
        let kept: Vec<String> = messages_since(events.iter().map(String::as_str), 1000)
            .iter()
            .map(|json| serde_json::from_str::<serde_json::Value>(json).unwrap()["content"]["body"].to_string())
            .collect();
        assert_eq!(kept, ["\"at\"", "\"after\""]);
        assert!(messages_since(events.iter().map(String::as_str), 5000).is_empty());
    }

    const BOT: &str = "@bot:x";

    fn join(who: &str, prev: Option<&str>) -> String {
        let mut e = serde_json::json!({"type": "m.room.member", "state_key": who, "content": {"membership": "join"}});
        if let Some(prev) = prev {
            e["unsigned"] = serde_json::json!({"prev_content": {"membership": prev}});
        }
        e.to_string()
    }

    #[test]
    fn the_bots_own_join_is_told_from_a_profile_change() {
        assert!(is_own_join(&join(BOT, None), BOT));
        assert!(is_own_join(&join(BOT, Some("invite")), BOT));
        assert!(!is_own_join(&join(BOT, Some("join")), BOT), "a new display name");
        assert!(!is_own_join(&join("@other:x", None), BOT));
        assert!(!is_own_join(r#"{"type": "m.room.message", "state_key": 5}"#, BOT));
    }

    fn watched<'a>(protected: &'a Protected, is_list: &'a dyn Fn(&str) -> bool) -> Watched<'a> {
        Watched { bot: BOT, management: "!m", protected, is_list }
    }

    #[test]
    fn invites_first_the_management_room_last_and_gaps_before_their_timeline() {
        let protected = Protected::of(["!p"]);
        let is_list = |room: &str| room == "!list";
        let parts = Parts {
            invited: vec![("!invited", Some("@mod:x"))],
            joined: vec![
                Joined {
                    room: "!m",
                    timeline: vec!["command"],
                    limited: true,
                    prev_batch: Some("t0"),
                    ..Default::default()
                },
                Joined {
                    room: "!p",
                    state: vec!["s1"],
                    timeline: vec!["e1", "e2"],
                    limited: true,
                    prev_batch: Some("t1"),
                },
                // Not watched: no gap is fetched for it.
                Joined {
                    room: "!other",
                    timeline: vec!["o1"],
                    limited: true,
                    prev_batch: Some("t2"),
                    ..Default::default()
                },
            ],
            left: vec![
                Left { room: "!list", events: vec!["kick"] },
                Left { room: "!unwatched", events: vec!["leave"] },
            ],
        };
        let inputs = ingest(parts, &watched(&protected, &is_list));
        assert_eq!(
            inputs,
            [
                Input::Invite("!invited", Some("@mod:x")),
                Input::State { room: "!p", json: "s1" },
                Input::Gap { room: "!p", prev_batch: "t1" },
                Input::Timeline { room: "!p", json: "e1" },
                Input::Timeline { room: "!p", json: "e2" },
                Input::Timeline { room: "!other", json: "o1" },
                Input::Gap { room: "!m", prev_batch: "t0" },
                Input::Timeline { room: "!m", json: "command" },
                Input::LeftState { room: "!list", json: "kick" },
                Input::Lost("!list"),
            ]
        );
    }

    #[test]
    fn an_invites_inviter_is_the_sender_of_the_bots_own_invite_event() {
        let invite = |who: &str, membership: &str| {
            serde_json::json!({"type": "m.room.member", "state_key": who, "sender": "@mod:x",
                "content": {"membership": membership}})
            .to_string()
        };
        assert_eq!(inviter(&invite(BOT, "invite"), BOT), Some("@mod:x"));
        assert_eq!(inviter(&invite("@other:x", "invite"), BOT), None, "someone else's invite");
        assert_eq!(inviter(&invite(BOT, "join"), BOT), None);
        assert_eq!(inviter(r#"{"type": "m.room.name", "content": {"name": "x"}}"#, BOT), None);
        assert_eq!(inviter("not json", BOT), None);
    }

    #[test]
    fn what_came_before_the_bots_own_join_is_history() {
        let protected = Protected::of(["!p"]);
        let is_list = |_: &str| false;
        let own_join = join(BOT, None);
        let parts = Parts {
            invited: Vec::new(),
            joined: vec![Joined {
                room: "!p",
                state: vec!["old state"],
                timeline: vec!["old message", &own_join, "new message"],
                limited: true,
                prev_batch: Some("t"),
            }],
            left: Vec::new(),
        };
        let inputs = ingest(parts, &watched(&protected, &is_list));
        assert_eq!(
            inputs,
            [Input::Timeline { room: "!p", json: &own_join }, Input::Timeline { room: "!p", json: "new message" }],
            "no state before the join, no gap, no earlier timeline"
        );
    }
}
