//! Membership churn: a member who changes their own membership in a room
//! (joins, leaves, knocks, and with `count-profile-changes` changes their
//! display name or avatar) more than `max-changes` times within `timescale`
//! is banned from it; at 60% of the limit they are warned in the room, once
//! per window. Draupnir's MembershipChangeProtection, with its defaults;
//! here the management room is told of each ban, and room moderators and
//! the bot are never acted on. Changes others make (kicks, bans, invites)
//! do not count.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use gleipnir_sdk::prelude::*;
use gleipnir_sdk::text;

gleipnir_sdk::settings! {
    pub struct Config {
        /// More changes than this within `timescale` bans the member.
        max_changes: u32 = 7, min 1, max 1000;
        /// The window changes are counted in.
        timescale: Duration = Duration::from_secs(60 * 60);
        /// Said to the member in the room at 60% of the limit; `{user}` is replaced by them.
        warning_text: String = "{user}: you are changing your room membership too frequently, and may be banned as an automated precaution if you continue.".to_owned();
        /// Count display name and avatar changes too.
        count_profile_changes: bool = true;
        /// The reason given with the ban.
        reason: String = "You are changing your membership too frequently and have been removed as a precaution.".to_owned();
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
struct Churn {
    /// When recent changes arrived (ms), oldest first; at most `max-changes` + 1.
    changes: VecDeque<u64>,
    /// When the member was last warned (ms).
    warned: Option<u64>,
}

#[derive(Default)]
pub struct MembershipChurn {
    config: Config,
    members: BTreeMap<(String, String), Churn>,
}

/// The change count that brings a warning: 60% of the limit (4 of 7), at least 1.
pub fn warn_at(max: u32) -> usize {
    ((max as usize * 6) / 10).max(1)
}

impl MembershipChurn {
    fn window(&self) -> u64 {
        u64::try_from(self.config.timescale.as_millis()).unwrap_or(u64::MAX)
    }

    /// Forgets members with no change since `before` (bounded memory).
    fn forget(&mut self, before: u64) {
        if self.members.len() > 10_000 {
            self.members.retain(|_, c| c.changes.back().is_some_and(|t| *t >= before));
        }
    }
}

impl Protection for MembershipChurn {
    const NAME: &'static str = "membership-churn";
    const SUMMARY: &'static str =
        "Warns, then bans, a member who joins and leaves (or changes their name) too often in a short time.";
    const CAPABILITIES: &'static [Capability] =
        &[Capability::Ban, Capability::SendNotice, Capability::NotifyManagement];
    const EVENTS: &'static [EventClass] = &[EventClass::Membership];
    type Settings = Config;

    fn configure(&mut self, config: Config) -> Result<(), String> {
        self.config = config;
        Ok(())
    }

    fn handle(&mut self, event: &Event, host: &dyn Host) -> Vec<Action> {
        let EventKind::Membership(change) = &event.kind else { return Vec::new() };
        let own = event.sender == change.target;
        let profile = change.membership == Membership::Join && change.previous == Some(Membership::Join);
        let counts = matches!(change.membership, Membership::Join | Membership::Leave | Membership::Knock)
            && (!profile || self.config.count_profile_changes);
        let room = event.room_id.as_str();
        if !own || !counts || host.is_exempt(room, &change.target) {
            return Vec::new();
        }
        let (now, window, max) = (event.received_ts, self.window(), self.config.max_changes as usize);
        self.forget(now.saturating_sub(window));
        let churn = self.members.entry((room.to_owned(), change.target.clone())).or_default();
        churn.changes.push_back(now);
        let since = now.saturating_sub(window);
        while churn.changes.front().is_some_and(|t| *t < since) || churn.changes.len() > max + 1 {
            churn.changes.pop_front();
        }
        let count = churn.changes.len();
        let warned_recently = churn.warned.is_some_and(|t| t >= since);
        let mut actions = Vec::new();
        let user = change.target.as_str();
        if count >= warn_at(self.config.max_changes) && !warned_recently {
            churn.warned = Some(now);
            let warning = self.config.warning_text.replace("{user}", user);
            actions.push(Action::notice(room, &warning, "membership changes too frequent"));
        }
        if count > max {
            churn.changes.clear();
            churn.warned = None;
            let reason = self.config.reason.clone();
            actions.insert(0, Action::ban(room, user, &reason));
            actions.push(Action::notify(
                &format!(
                    "{user} changed their membership in {room} {count} times within {} (limit {max}): banned them.",
                    text::duration(self.config.timescale)
                ),
                &reason,
            ));
        }
        actions
    }

    /// `membership-churn-v1`, then per member `ROOM USER WARNED|- T1,T2,…`.
    fn snapshot(&self) -> Vec<u8> {
        let mut out = String::new();
        for ((room, user), churn) in &self.members {
            let warned = churn.warned.map_or("-".to_owned(), |t| t.to_string());
            let times: Vec<String> = churn.changes.iter().map(u64::to_string).collect();
            out.push_str(&format!("{room} {user} {warned} {}\n", times.join(",")));
        }
        gleipnir_sdk::state::tagged(STATE_V1, out.as_bytes())
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let (_, body) = gleipnir_sdk::state::expect(state, &[STATE_V1])?;
        let text = std::str::from_utf8(body).map_err(|_| "the state is not UTF-8".to_owned())?;
        let time = |t: &str| t.parse::<u64>().map_err(|_| format!("`{t}` is not a time"));
        let mut members = BTreeMap::new();
        for line in text.lines() {
            let words: Vec<&str> = line.split(' ').collect();
            let [room, user, warned, times] = words.as_slice() else {
                return Err(format!("a line of the state is not `room user warned times`: {line}"));
            };
            let warned = if *warned == "-" { None } else { Some(time(warned)?) };
            let changes = if times.is_empty() {
                VecDeque::new()
            } else {
                times.split(',').map(time).collect::<Result<VecDeque<u64>, String>>()?
            };
            members.insert(((*room).to_owned(), (*user).to_owned()), Churn { changes, warned });
        }
        self.members = members;
        Ok(())
    }
}

/// The format tag of the state this version writes (`gleipnir_sdk::state`).
const STATE_V1: &str = "membership-churn-v1";

gleipnir_sdk::export_protection!(MembershipChurn);

#[cfg(test)]
mod tests;
