//! Redaction on ban (Draupnir's `automaticallyRedactForReasons`): when a
//! ban whose reason matches one of `[policy] redact_on_ban_reasons` (globs,
//! case-insensitive) is carried out for a policy rule or a moderator (a
//! command, or a ban made with a client), the user's recent messages in
//! every protected room are redacted, bounded by count and age, through the
//! executor. Only events whose sender is the banned user are taken (checked
//! on each event, whatever the homeserver's filter did: Draupnir's version
//! redacted innocents where the filter was ignored, their issue #1072), and
//! the executor checks each one again; the count is said in the management
//! room.

use std::collections::BTreeMap;

use super::Bot;
use super::commands::moderation::events_by;
use super::executor::{Act, BanDone, Origin, Outcome};
use crate::config::RedactOnBan;

impl Bot {
    /// Redacts the recent messages of users just banned for a matching
    /// reason (once per user, however many rooms the ban covered).
    pub(super) async fn redact_after_bans(&mut self) {
        let bans = self.executor.take_bans();
        let Some(rule) = self.config.redact_on_ban.clone() else { return };
        let mut users: BTreeMap<String, (BanDone, String)> = BTreeMap::new();
        for ban in bans {
            if let Some(pattern) = rule.matching(&ban.reason) {
                let pattern = pattern.to_owned();
                users.entry(ban.user.clone()).or_insert((ban, pattern));
            }
        }
        for (user, (ban, pattern)) in users {
            self.redact_recent(&user, &ban, &pattern, &rule).await;
        }
    }

    /// A ban made with a client (`propagation.rs`), for the same rule.
    pub(super) async fn client_ban_redaction(&mut self, room: &str, user: &str, reason: &str, by: &str) {
        let ban =
            BanDone { room: room.to_owned(), user: user.to_owned(), reason: reason.to_owned(), origin: by.to_owned() };
        let Some(rule) = self.config.redact_on_ban.clone() else { return };
        if let Some(pattern) = rule.matching(reason).map(str::to_owned) {
            self.redact_recent(user, &ban, &pattern, &rule).await;
        }
    }

    async fn redact_recent(&mut self, user: &str, ban: &BanDone, pattern: &str, rule: &RedactOnBan) {
        let now = self.queries.state.clock.now_ms();
        let since = now.saturating_sub(u64::try_from(rule.age.as_millis()).unwrap_or(u64::MAX));
        let reason = format!("redacted on ban: {}", ban.reason);
        let (mut redacted, mut rooms, mut problems) = (0usize, 0usize, Vec::new());
        for room in self.protected.rooms() {
            let events = match events_by(&self.matrix, &room, user, rule.limit, Some(since)).await {
                Ok(events) => events,
                Err(e) => {
                    problems.push(format!("{room}: {e}"));
                    continue;
                }
            };
            let before = redacted;
            // Automatic redactions: the executor checks the sender again and
            // leaves anyone out of reach alone. A room's go out at once.
            let acts: Vec<(Origin, Act)> = events
                .iter()
                .map(|event| {
                    let redact = gleipnir_runtime::RedactEvent {
                        room_id: room.clone(),
                        event_id: event.clone(),
                        reason: reason.clone(),
                    };
                    (Origin::Policy, Act::Contract(gleipnir_runtime::Action::Redact(redact)))
                })
                .collect();
            for (event, outcome) in events.iter().zip(self.act_together(acts).await) {
                match outcome {
                    Outcome::Done(_) | Outcome::Unneeded => redacted += 1,
                    other => problems.push(format!("{event} in {room}: {}", other.text())),
                }
            }
            rooms += usize::from(redacted > before);
        }
        let mut said = format!(
            "Redacted {redacted} message(s) of {user} from the last {} in {rooms} room(s): banned by {} for \
             “{}”, which matches `{pattern}` ([policy] redact_on_ban_reasons).",
            gleipnir_runtime::settings::format_duration(u64::try_from(rule.age.as_millis()).unwrap_or(u64::MAX)),
            ban.origin,
            ban.reason
        );
        for problem in problems.iter().take(10) {
            said.push_str(&format!("\n- not redacted: {problem}"));
        }
        self.matrix.notify(&said).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn reasons_match_whole_and_case_insensitively_with_globs() {
        let rule = RedactOnBan::new(&["spam".into(), "advert*".into()], 100, Duration::from_secs(3600));
        assert_eq!(rule.matching("Spam"), Some("spam"));
        assert_eq!(rule.matching(" SPAM "), Some("spam"));
        assert_eq!(rule.matching("advertising links"), Some("advert*"));
        assert_eq!(rule.matching("not spam"), None, "the whole reason, not a part of it");
        assert_eq!(rule.matching(""), None);
    }
}
