//! New joiner servers: someone joining a protected room from a server listed
//! in `servers` (globs: `*.example.org`) is banned, or kicked, with
//! `reason`. With the homeserver's module the join is refused before it
//! happens instead. Draupnir's NewJoinerProtection, which matches exact names
//! only and checks first joins only: here globs, and every join (a rejoin
//! after a leave too). Room moderators and the bot are never acted on.
//!
//! Optionally (`younger-than`), accounts of the bot's own homeserver made
//! less than that long ago get the same consequence with `young-reason`:
//! only a homeserver knows when its accounts were made, and tells only a
//! server admin (`account-created`, granted with `read-accounts`). When the
//! homeserver cannot tell, nothing is done: an age never seen is no reason.

use std::time::Duration;

use gleipnir_sdk::prelude::*;
use gleipnir_sdk::text::{self, glob};

gleipnir_sdk::choice! {
    /// What happens to a joiner from a listed server.
    pub enum Consequence {
        Ban = "ban",
        Kick = "kick",
    }
}

gleipnir_sdk::settings! {
    pub struct Config {
        /// The servers whose users may not join: names or globs (`*.example.org`).
        servers: Vec<String> = Vec::new();
        /// ban, or kick (they may come back once the server is off the list).
        consequence: Consequence = Consequence::Ban;
        /// Told to the joiner with the ban or kick.
        reason: String = "Unfortunately we cannot accept new users from your homeserver at this time.".to_owned();
        /// Tell the management room about each joiner turned away.
        notify: bool = true;
        /// Also turn away accounts of the bot's homeserver made less than this
        /// long ago (0s: never). Needs the bot to be a server admin and the
        /// operator's `read-accounts` grant.
        younger_than: Duration = Duration::ZERO;
        /// Told to a joiner turned away for a young account.
        young_reason: String = "Your account is too new to join this room; please try again later.".to_owned();
    }
}

#[derive(Default)]
pub struct NewJoinerServers {
    config: Config,
    /// When the management room was last told that ages cannot be read
    /// (ms): told again at most hourly while it lasts, not at every join.
    age_unknown_told: Option<u64>,
}

/// How long the management room hears nothing more about ages that cannot be read.
const TELL_AGAIN_MS: u64 = 60 * 60 * 1000;

/// `age` down to its largest whole unit (day, hour, minute, second), to be said.
fn rough(age: Duration) -> Duration {
    let s = age.as_secs();
    let unit = [86_400, 3600, 60, 1].into_iter().find(|u| s >= *u).unwrap_or(1);
    Duration::from_secs(s - s % unit)
}

/// The server part of a user id (`@local:server` → `server`, with any port).
pub fn server_of(user: &str) -> Option<&str> {
    user.split_once(':').map(|(_, server)| server).filter(|s| !s.is_empty())
}

impl NewJoinerServers {
    /// The listed pattern `user`'s server matches, if any (compared in lower case).
    fn listed(&self, user: &str) -> Option<&str> {
        let server = server_of(user)?.to_ascii_lowercase();
        self.config.servers.iter().map(String::as_str).find(|p| glob(&p.to_ascii_lowercase(), &server))
    }

    /// How old `user`'s account is, when `younger-than` is set, the user
    /// is on the bot's own homeserver (no other can tell), the homeserver
    /// tells, and the account is younger than that. When the homeserver
    /// cannot tell, `told` gets a notice for the management room, at most
    /// hourly (an outage must not flood it): the setting does nothing until
    /// it is mended.
    fn too_young(&mut self, user: &str, host: &dyn Host, told: &mut Vec<Action>) -> Option<Duration> {
        if self.config.younger_than.is_zero() || server_of(user) != server_of(&host.bot_user_id()) {
            return None;
        }
        match host.account_created(user) {
            Ok(created) => {
                self.age_unknown_told = None;
                let age = Duration::from_millis(host.now_ms().saturating_sub(created));
                (age < self.config.younger_than).then_some(age)
            }
            Err(why) => {
                let now = host.now_ms();
                if self.age_unknown_told.is_none_or(|at| now.saturating_sub(at) >= TELL_AGAIN_MS) {
                    host.log(LogLevel::Warn, &format!("cannot check the account age of {user}: {why}"));
                    told.push(Action::notify(
                        &format!(
                            "new-joiner-servers cannot tell how old accounts are, so `younger-than` turns \
                             nobody away: {why}."
                        ),
                        "account ages unknown",
                    ));
                    self.age_unknown_told = Some(now);
                }
                None
            }
        }
    }
}

impl Protection for NewJoinerServers {
    const NAME: &'static str = "new-joiner-servers";
    const SUMMARY: &'static str = "Bans or kicks people who join from listed servers (globs) or with too young an account, or refuses their join.";
    const CAPABILITIES: &'static [Capability] = &[Capability::Ban, Capability::Kick, Capability::NotifyManagement];
    const EVENTS: &'static [EventClass] = &[EventClass::Membership];
    const CHECKS: &'static [CheckClass] = &[CheckClass::Join];
    type Settings = Config;

    fn configure(&mut self, config: Config) -> Result<(), String> {
        for pattern in &config.servers {
            let bad = pattern.is_empty()
                || pattern.contains(|c: char| c.is_whitespace() || c == '@' || c == '/')
                || pattern.chars().all(|c| c == '*' || c == '?');
            if bad {
                return Err(format!(
                    "servers: `{pattern}` is not a server name or glob (like `evil.example` or `*.evil.example`; \
                     a pattern of wildcards alone would turn everyone away)"
                ));
            }
        }
        self.config = config;
        Ok(())
    }

    fn handle(&mut self, event: &Event, host: &dyn Host) -> Vec<Action> {
        let EventKind::Membership(change) = &event.kind else { return Vec::new() };
        let joined = change.membership == Membership::Join && change.previous != Some(Membership::Join);
        if !joined || host.is_exempt(&event.room_id, &change.target) {
            return Vec::new();
        }
        let (room, user) = (event.room_id.as_str(), change.target.as_str());
        let mut told = Vec::new();
        let (why, reason) = if let Some(pattern) = self.listed(user) {
            (format!("from a server listed as `{pattern}`"), self.config.reason.as_str())
        } else if let Some(age) = self.too_young(user, host, &mut told) {
            let age = text::duration(rough(age));
            (
                format!("with an account made {age} ago (younger than {})", text::duration(self.config.younger_than)),
                self.config.young_reason.as_str(),
            )
        } else {
            return told;
        };
        let (action, done) = match self.config.consequence {
            Consequence::Ban => (Action::ban(room, user, reason), "banned"),
            Consequence::Kick => (Action::kick(room, user, reason), "kicked"),
        };
        let mut actions = vec![action];
        if self.config.notify {
            actions.push(Action::notify(&format!("{user} joined {room} {why}: {done} them."), reason));
        }
        actions
    }

    fn check(&mut self, pending: &Pending, host: &dyn Host) -> Verdict {
        let Pending::Join(join) = pending else { return Verdict::Allow };
        if host.is_exempt(&join.room_id, &join.user_id) {
            return Verdict::Allow;
        }
        match self.listed(&join.user_id) {
            Some(_) => Verdict::Deny(Denial { reason: self.config.reason.clone(), follow_up: Vec::new() }),
            None => Verdict::Allow,
        }
    }
}

gleipnir_sdk::export_protection!(NewJoinerServers);

#[cfg(test)]
mod tests;
