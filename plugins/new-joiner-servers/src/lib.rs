//! New joiner servers: someone joining a protected room from a server listed
//! in `servers` (globs: `*.example.org`) is banned, or kicked, with
//! `reason`. With the homeserver's module the join is refused before it
//! happens instead. Draupnir's NewJoinerProtection, which matches exact names
//! only and checks first joins only: here globs, and every join (a rejoin
//! after a leave too). Room moderators and the bot are never acted on.

use gleipnir_sdk::prelude::*;
use gleipnir_sdk::text::glob;

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
    }
}

#[derive(Default)]
pub struct NewJoinerServers {
    config: Config,
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
}

impl Protection for NewJoinerServers {
    const NAME: &'static str = "new-joiner-servers";
    const SUMMARY: &'static str = "Bans or kicks people who join from listed servers (globs), or refuses their join.";
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
        let Some(pattern) = self.listed(&change.target) else { return Vec::new() };
        let (room, user, reason) = (event.room_id.as_str(), change.target.as_str(), self.config.reason.as_str());
        let (action, done) = match self.config.consequence {
            Consequence::Ban => (Action::ban(room, user, reason), "banned"),
            Consequence::Kick => (Action::kick(room, user, reason), "kicked"),
        };
        let mut actions = vec![action];
        if self.config.notify {
            actions.push(Action::notify(
                &format!("{user} joined {room} from a server listed as `{pattern}`: {done} them."),
                reason,
            ));
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
