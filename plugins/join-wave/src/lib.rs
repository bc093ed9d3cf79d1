//! Join wave: more than `max-per` joins to one room within `timescale`
//! closes the room (its join rule set to invite, or knock) and tells the
//! management room; after `calm-period` without joins the rule it had is put
//! back (`reopen`, a setting). Moderators see each room's rate with
//! `!gleipnir join-wave status` and reopen a room at once with
//! `!gleipnir join-wave reopen ROOM`.
//!
//! Joins are counted as the host received them; a member whose membership
//! was already `join` (a name change) is not a join, nor are room moderators
//! and the bot. With the homeserver's module, the join that would go over
//! the limit is refused before it happens and the room closed at once; the
//! room ends up closed either way.
//!
//! The rule the room had is learned from the join-rule event the bot's own
//! change produces (the host tells its previous rule), and kept with the rest
//! of the state, so a restart or a swap still reopens the room. A moderator
//! who changes the join rule of a closed room takes over: the protection
//! no longer reopens it.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use gleipnir_sdk::prelude::*;
use gleipnir_sdk::text;

gleipnir_sdk::choice! {
    /// The join rule a room is closed to.
    pub enum CloseTo {
        Invite = "invite",
        Knock = "knock",
    }
}

gleipnir_sdk::settings! {
    pub struct Config {
        /// More joins than this to one room within `timescale` closes it.
        max_per: u32 = 50, min 1, max 10_000;
        /// The window joins are counted in.
        timescale: Duration = Duration::from_secs(60 * 60);
        /// The join rule a closed room gets: invite, or knock (people may ask to join).
        close_to: CloseTo = CloseTo::Invite;
        /// Put back the rule a room had once `calm-period` passed without joins.
        reopen: bool = true;
        /// How long a closed room stays closed without a join or a knock before it reopens.
        calm_period: Duration = Duration::from_secs(30 * 60);
        /// The reason given with the join rule change.
        reason: String = "too many joins at once (a join wave)".to_owned();
    }
}

/// A room the protection closed.
#[derive(Debug, Clone, PartialEq)]
struct Closed {
    /// When it was closed (ms).
    at: u64,
    /// The last join or knock seen since (ms); the calm period runs from here.
    last_seen: u64,
    /// The rule the room had, once the bot's own change showed it.
    previous: Option<JoinRule>,
}

#[derive(Debug, Default)]
struct Room {
    /// When recent joins arrived (ms), oldest first; at most `max-per` + 1.
    joins: VecDeque<u64>,
    closed: Option<Closed>,
}

#[derive(Default)]
pub struct JoinWave {
    config: Config,
    rooms: BTreeMap<String, Room>,
}

fn window_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn rule_name(rule: JoinRule) -> &'static str {
    match rule {
        JoinRule::Public => "public",
        JoinRule::Invite => "invite",
        JoinRule::Knock => "knock",
        JoinRule::Restricted => "restricted",
        JoinRule::Private => "private",
    }
}

fn rule_from(name: &str) -> Option<JoinRule> {
    [JoinRule::Public, JoinRule::Invite, JoinRule::Knock, JoinRule::Restricted, JoinRule::Private]
        .into_iter()
        .find(|r| rule_name(*r) == name)
}

impl JoinWave {
    fn close_rule(&self) -> JoinRule {
        match self.config.close_to {
            CloseTo::Invite => JoinRule::Invite,
            CloseTo::Knock => JoinRule::Knock,
        }
    }

    /// Joins to `room` within the window ending at `now`.
    fn recent(&mut self, room: &str, now: u64) -> usize {
        let since = now.saturating_sub(window_ms(self.config.timescale));
        let Some(state) = self.rooms.get_mut(room) else { return 0 };
        while state.joins.front().is_some_and(|t| *t < since) {
            state.joins.pop_front();
        }
        state.joins.len()
    }

    /// Closes `room` at `now` with `count` joins counted: what to do, and the room remembered as closed.
    fn close(&mut self, room: &str, count: usize, now: u64) -> Vec<Action> {
        let rule = self.close_rule();
        let state = self.rooms.entry(room.to_owned()).or_default();
        state.closed = Some(Closed { at: now, last_seen: now, previous: None });
        let after = if self.config.reopen {
            format!(
                "It reopens after {} without joins; `!gleipnir {} reopen {room}` reopens it now.",
                text::duration(self.config.calm_period),
                Self::NAME
            )
        } else {
            format!("`!gleipnir {} reopen {room}` puts the rule it had back.", Self::NAME)
        };
        vec![
            Action::SetJoinRule(SetJoinRule { room_id: room.to_owned(), rule, reason: self.config.reason.clone() }),
            Action::notify(
                &format!(
                    "Join wave in {room}: {count} joins within {} (limit {}). Set its join rule to {} so nobody \
                     else joins for now. {after}",
                    text::duration(self.config.timescale),
                    self.config.max_per,
                    rule_name(rule),
                ),
                &self.config.reason,
            ),
        ]
    }

    /// Puts `room`'s rule back and forgets its wave; `why` is said to the management room.
    fn reopen_room(&mut self, room: &str, why: &str) -> Vec<Action> {
        let Some(state) = self.rooms.get_mut(room) else { return Vec::new() };
        let Some(closed) = state.closed.take() else { return Vec::new() };
        state.joins.clear();
        let reason = format!("{} is over", self.config.reason);
        let put_back = match closed.previous {
            Some(rule) => Action::SetJoinRule(SetJoinRule { room_id: room.to_owned(), rule, reason: reason.clone() }),
            None => Action::RestoreJoinRule(RoomAction { room_id: room.to_owned(), reason: reason.clone() }),
        };
        let rule =
            closed.previous.map_or("the join rule it had".to_owned(), |r| format!("its join rule ({})", rule_name(r)));
        vec![put_back, Action::notify(&format!("Reopened {room}: {why}; put back {rule}."), &reason)]
    }

    fn on_membership(&mut self, event: &Event, change: &MembershipChange, host: &dyn Host) -> Vec<Action> {
        let room = event.room_id.as_str();
        let now = event.received_ts;
        let joined = change.membership == Membership::Join && change.previous != Some(Membership::Join);
        let knocked = change.membership == Membership::Knock;
        if !(joined || knocked) || host.is_exempt(room, &change.target) {
            return Vec::new();
        }
        let limit = self.config.max_per as usize;
        let state = self.rooms.entry(room.to_owned()).or_default();
        if let Some(closed) = &mut state.closed {
            closed.last_seen = closed.last_seen.max(now);
        }
        if !joined {
            return Vec::new();
        }
        state.joins.push_back(now);
        while state.joins.len() > limit + 1 {
            state.joins.pop_front();
        }
        let closed = state.closed.is_some();
        let count = self.recent(room, now);
        if count > limit && !closed { self.close(room, count, now) } else { Vec::new() }
    }

    fn on_join_rule(&mut self, event: &Event, change: &JoinRuleChange, host: &dyn Host) -> Vec<Action> {
        let close_rule = self.close_rule();
        let Some(state) = self.rooms.get_mut(&event.room_id) else { return Vec::new() };
        let Some(closed) = &mut state.closed else { return Vec::new() };
        if event.sender == host.bot_user_id() {
            // The bot's own change: it tells the rule to put back.
            if change.rule == close_rule && closed.previous.is_none() {
                closed.previous = change.previous.filter(|p| *p != close_rule);
            }
            return Vec::new();
        }
        state.closed = None;
        vec![Action::notify(
            &format!(
                "{} set the join rule of {} to {} while {} had closed it: it stays as they set it, and {} will \
                 not reopen it.",
                event.sender,
                event.room_id,
                rule_name(change.rule),
                Self::NAME,
                Self::NAME
            ),
            "a moderator took over",
        )]
    }

    fn on_tick(&mut self, now: u64) -> Vec<Action> {
        if !self.config.reopen {
            return Vec::new();
        }
        let calm = window_ms(self.config.calm_period);
        let due: Vec<String> = self
            .rooms
            .iter()
            .filter(|(_, s)| s.closed.as_ref().is_some_and(|c| now.saturating_sub(c.last_seen) >= calm))
            .map(|(room, _)| room.clone())
            .collect();
        let why = format!("no joins for {}", text::duration(self.config.calm_period));
        due.iter().flat_map(|room| self.reopen_room(room, &why)).collect()
    }

    fn status(&mut self, now: u64) -> String {
        let rooms: Vec<String> = self.rooms.keys().cloned().collect();
        let mut lines = Vec::new();
        for room in rooms {
            let count = self.recent(&room, now);
            let Some(state) = self.rooms.get(&room) else { continue };
            match &state.closed {
                Some(closed) => {
                    let since = text::duration(Duration::from_secs(now.saturating_sub(closed.at) / 1000));
                    let when = if self.config.reopen {
                        let left =
                            window_ms(self.config.calm_period).saturating_sub(now.saturating_sub(closed.last_seen));
                        format!("reopens in {}", text::duration(Duration::from_secs(left.div_ceil(1000))))
                    } else {
                        "stays closed until reopened".to_owned()
                    };
                    lines.push(format!("- {room}: closed {since} ago, {when} ({count} joins in the window)"));
                }
                None if count > 0 => lines.push(format!("- {room}: {count} of {} joins", self.config.max_per)),
                None => {}
            }
        }
        let window = text::duration(self.config.timescale);
        if lines.is_empty() {
            return format!("No joins within the last {window} in any protected room (limit {}).", self.config.max_per);
        }
        format!("Joins within the last {window} (limit {}):\n{}", self.config.max_per, lines.join("\n"))
    }
}

impl Protection for JoinWave {
    const NAME: &'static str = "join-wave";
    const SUMMARY: &'static str =
        "Closes a room to new joins (invite or knock) when too many join at once, and reopens it once calm.";
    const CAPABILITIES: &'static [Capability] = &[Capability::SetJoinRule, Capability::NotifyManagement];
    const EVENTS: &'static [EventClass] = &[EventClass::Membership, EventClass::JoinRule, EventClass::Tick];
    const COMMANDS: &'static [Command] = &[
        Command { name: "status", args: "", help: "each room's joins within the window, and which rooms are closed" },
        Command { name: "reopen", args: "ROOM", help: "put back the join rule of a room join-wave closed, now" },
    ];
    const CHECKS: &'static [CheckClass] = &[CheckClass::Join];
    const TICK: Option<Duration> = Some(Duration::from_secs(5));
    type Settings = Config;

    fn configure(&mut self, config: Config) -> Result<(), String> {
        self.config = config;
        Ok(())
    }

    fn handle(&mut self, event: &Event, host: &dyn Host) -> Vec<Action> {
        match &event.kind {
            EventKind::Membership(change) => self.on_membership(event, change, host),
            EventKind::JoinRule(change) => self.on_join_rule(event, change, host),
            EventKind::Tick => self.on_tick(event.received_ts),
            _ => Vec::new(),
        }
    }

    fn command(
        &mut self,
        name: &str,
        args: &[String],
        caller: &Caller,
        host: &dyn Host,
    ) -> Result<CommandReply, String> {
        let now = host.now_ms();
        match (name, args) {
            ("status", []) => Ok(CommandReply::say(self.status(now))),
            ("reopen", [room]) => {
                let closed = self.rooms.get(room).is_some_and(|s| s.closed.is_some());
                if !closed {
                    return Err(format!("{room} is not closed by {}: nothing to reopen", Self::NAME));
                }
                let actions = self.reopen_room(room, &format!("{} reopened it", caller.user_id));
                Ok(CommandReply::say(format!("Reopening {room}.")).with_actions(actions))
            }
            ("status", _) => Err(format!("usage: {} status", Self::NAME)),
            _ => Err(format!("usage: {} reopen ROOM", Self::NAME)),
        }
    }

    fn check(&mut self, pending: &Pending, host: &dyn Host) -> Verdict {
        let Pending::Join(join) = pending else { return Verdict::Allow };
        let room = join.room_id.as_str();
        if host.is_exempt(room, &join.user_id) {
            return Verdict::Allow;
        }
        let now = host.now_ms();
        let closed = self.rooms.get(room).is_some_and(|s| s.closed.is_some());
        let deny = |follow_up| {
            Verdict::Deny(Denial {
                reason: format!("{room} is closed to new joins for now: too many joined at once"),
                follow_up,
            })
        };
        if closed {
            return deny(Vec::new());
        }
        // The join that would go over the limit: refused, and the room closed as `handle` would.
        let count = self.recent(room, now);
        if count >= self.config.max_per as usize {
            return deny(self.close(room, count + 1, now));
        }
        Verdict::Allow
    }

    /// `join-wave-v1`, then per room `joins ROOM t1,t2,…` and `closed ROOM at last-seen previous|-`.
    fn snapshot(&self) -> Vec<u8> {
        let mut out = String::new();
        for (room, state) in &self.rooms {
            if !state.joins.is_empty() {
                let times: Vec<String> = state.joins.iter().map(u64::to_string).collect();
                out.push_str(&format!("joins {room} {}\n", times.join(",")));
            }
            if let Some(c) = &state.closed {
                let previous = c.previous.map_or("-", rule_name);
                out.push_str(&format!("closed {room} {} {} {previous}\n", c.at, c.last_seen));
            }
        }
        gleipnir_sdk::state::tagged(STATE_V1, out.as_bytes())
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let (_, body) = gleipnir_sdk::state::expect(state, &[STATE_V1])?;
        let text = std::str::from_utf8(body).map_err(|_| "the state is not UTF-8".to_owned())?;
        let time = |t: &str| t.parse::<u64>().map_err(|_| format!("`{t}` is not a time"));
        let mut rooms = BTreeMap::<String, Room>::new();
        for line in text.lines() {
            let words: Vec<&str> = line.split(' ').collect();
            match words.as_slice() {
                ["joins", room, times] => {
                    let joins = times.split(',').map(time).collect::<Result<VecDeque<u64>, String>>()?;
                    rooms.entry((*room).to_owned()).or_default().joins = joins;
                }
                ["closed", room, at, last_seen, previous] => {
                    let previous = match *previous {
                        "-" => None,
                        name => Some(rule_from(name).ok_or_else(|| format!("`{name}` is not a join rule"))?),
                    };
                    rooms.entry((*room).to_owned()).or_default().closed =
                        Some(Closed { at: time(at)?, last_seen: time(last_seen)?, previous });
                }
                _ => return Err(format!("a line of the state is not one this version writes: {line}")),
            }
        }
        self.rooms = rooms;
        Ok(())
    }
}

/// The format tag of the state this version writes (`gleipnir_sdk::state`).
const STATE_V1: &str = "join-wave-v1";

gleipnir_sdk::export_protection!(JoinWave);

#[cfg(test)]
mod tests;
