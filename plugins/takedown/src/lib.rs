//! Takedowns (MSC4204, with MSC4205 hashed rules): when a watched policy
//! list gains a takedown rule for a user, remove what they posted. In every
//! protected room the protection reads back through the user's recent
//! events (checking the sender of each itself, whatever the homeserver
//! filtered), redacts them, bans the user, and reports what was removed. On
//! the bot's own homeserver, with the server-admin capabilities granted, it
//! also suspends the user and deletes their media.
//!
//! Room takedown rules are the host's (`[policy] room_takedowns`): blocking
//! and purging a room needs server-admin actions this contract version does
//! not have, so this protection only says where they went.

use gleipnir_sdk::prelude::*;

gleipnir_sdk::settings! {
    pub struct Config {
        /// How many of the user's most recent events to look back through, per protected room.
        history_limit: u32 = 500, min 0, max 1000;
        /// Ban the user in every protected room.
        ban: bool = true;
        /// For a user of the bot's own homeserver: suspend them and delete their media (needs the suspend-user and delete-user-media grants and a server-admin bot account).
        server_admin: bool = true;
    }
}

/// The recommendations that mean a takedown.
pub const TAKEDOWN: [&str; 2] = ["m.takedown", "org.matrix.msc4204.takedown"];

/// Actions one takedown returns at most (the host refuses a reply with more
/// than its limit, 1,000 by default).
const MAX_ACTIONS: usize = 900;

#[derive(Default)]
pub struct Takedown {
    config: Config,
}

/// The server part of a user id.
fn server_of(user: &str) -> &str {
    user.split_once(':').map_or("", |(_, server)| server)
}

/// Whether a rule's entity names exactly one user (no glob characters).
fn literal_user(rule: &PolicyRule) -> Option<&str> {
    let entity = rule.entity.as_deref()?;
    (entity.starts_with('@') && !entity.contains(['*', '?'])).then_some(entity)
}

/// Whether a rule names exactly one user: a literal id, or a hash (MSC4205) of one.
fn names_one_user(rule: &PolicyRule) -> bool {
    match rule.entity.as_deref() {
        Some(entity) => !entity.contains(['*', '?']),
        None => rule.entity_sha256.is_some(),
    }
}

impl Protection for Takedown {
    const NAME: &'static str = "takedown";
    const SUMMARY: &'static str =
        "Acts on takedown rules (MSC4204, hashed MSC4205): removes the user's recent events, bans, reports.";
    const CAPABILITIES: &'static [Capability] = &[
        Capability::Redact,
        Capability::Ban,
        Capability::NotifyManagement,
        Capability::SuspendUser,
        Capability::DeleteUserMedia,
    ];
    const EVENTS: &'static [EventClass] = &[EventClass::Policy];
    type Settings = Config;

    fn configure(&mut self, config: Config) -> Result<(), String> {
        self.config = config;
        Ok(())
    }

    fn handle(&mut self, event: &Event, host: &dyn Host) -> Vec<Action> {
        let EventKind::Policy(change) = &event.kind else { return Vec::new() };
        let rule = &change.rule;
        if change.change == RuleChange::Removed || !TAKEDOWN.contains(&rule.recommendation.as_str()) {
            return Vec::new();
        }
        let named = rule
            .entity
            .clone()
            .unwrap_or_else(|| format!("sha256:{}", rule.entity_sha256.as_deref().unwrap_or_default()));
        let reason = if rule.reason.is_empty() { "takedown".to_owned() } else { format!("takedown: {}", rule.reason) };
        match rule.kind {
            RuleKind::User => {}
            RuleKind::Room => {
                return vec![Action::notify(
                    &format!(
                        "Takedown rule for room {named} in {}: not for this protection; the host blocks and purges \
                         the room when the operator set `[policy] room_takedowns = true`.",
                        event.room_id
                    ),
                    &reason,
                )];
            }
            RuleKind::Server => return Vec::new(),
        }
        let mut users = host.members_matching(rule);
        if let Some(user) = literal_user(rule)
            && !users.iter().any(|u| u == user)
        {
            users.push(user.to_owned());
        }
        let rooms = host.protected_rooms();
        let own_server = server_of(&host.bot_user_id()).to_owned();
        let mut actions = Vec::new();
        let mut report = Vec::new();
        for user in &users {
            if rooms.iter().any(|room| host.is_exempt(room, user)) {
                report.push(format!("{user}: a moderator (or the bot) in a protected room; not acted on"));
                continue;
            }
            let (mut removed, mut banned, mut problems) = (0, 0, Vec::new());
            for room in &rooms {
                match host.history(room, user, self.config.history_limit) {
                    Ok(events) => {
                        // The homeserver's sender filter is not trusted: each event is checked.
                        for e in events.iter().filter(|e| e.sender == *user && !e.redacted && !e.is_state) {
                            if actions.len() >= MAX_ACTIONS {
                                break;
                            }
                            actions.push(Action::Redact(RedactEvent {
                                room_id: room.clone(),
                                event_id: e.event_id.clone(),
                                reason: reason.clone(),
                            }));
                            removed += 1;
                        }
                    }
                    Err(why) => problems.push(format!("{room}: {why}")),
                }
                if self.config.ban
                    && host.membership(room, user) != Some(Membership::Ban)
                    && actions.len() < MAX_ACTIONS
                {
                    actions.push(Action::ban(room, user, &reason));
                    banned += 1;
                }
            }
            let mut line = format!(
                "{user}: {removed} event(s) redacted across {} protected room(s), banned in {banned}",
                rooms.len()
            );
            // A glob may name people nobody meant (`@*:own` names every user
            // of this homeserver): only a rule naming one user reaches accounts.
            if self.config.server_admin && server_of(user) == own_server {
                if names_one_user(rule) {
                    actions.push(Action::SuspendUser(ServerUser { user_id: user.clone(), reason: reason.clone() }));
                    actions.push(Action::DeleteUserMedia(ServerUser { user_id: user.clone(), reason: reason.clone() }));
                    line.push_str("; suspension and media deletion asked for (a user of this homeserver)");
                } else {
                    line.push_str("; not suspended: a glob rule never reaches accounts, only a rule naming one user");
                }
            }
            if actions.len() >= MAX_ACTIONS {
                line.push_str("; stopped at the action limit, more may remain (`redact USER` removes the rest)");
            }
            if !problems.is_empty() {
                line.push_str(&format!("; history not read in {}", problems.join(", ")));
            }
            report.push(line);
        }
        let summary = if users.is_empty() {
            format!("Takedown rule for {named} in {}: no member of a protected room matches.", event.room_id)
        } else {
            format!("Takedown rule for {named} in {}:\n- {}", event.room_id, report.join("\n- "))
        };
        actions.push(Action::notify(&summary, &reason));
        actions
    }
}

gleipnir_sdk::export_protection!(Takedown);

#[cfg(test)]
mod tests;
