//! The bot's side of the gate: what the checks decide from (`publish_gate`),
//! what they tell (`News`) carried out, and refusals said coalesced.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gleipnir_runtime::CheckClass;

use super::{Checker, News, View};

/// How often the refusals are said at most.
const SAY_EVERY: Duration = Duration::from_secs(5);

/// Refusals waiting to be said in the management room, counted by who
/// refused what from whom where.
#[derive(Debug, Default)]
pub(crate) struct Refusals {
    waiting: BTreeMap<(String, String, String, String), (usize, String)>,
    said_at: Option<Instant>,
}

impl Refusals {
    pub(crate) fn add(&mut self, by: &str, room: &str, user: &str, what: &str, reason: &str) {
        let key = (by.to_owned(), room.to_owned(), user.to_owned(), what.to_owned());
        self.waiting.entry(key).or_insert_with(|| (0, reason.to_owned())).0 += 1;
    }

    /// When the waiting refusals are to be said (`None`: none wait).
    pub(crate) fn due_at(&self) -> Option<Instant> {
        if self.waiting.is_empty() {
            return None;
        }
        Some(self.said_at.map_or_else(Instant::now, |at| at + SAY_EVERY))
    }

    /// The notice for everything waiting, once due.
    pub(crate) fn take(&mut self, now: Instant) -> Option<String> {
        if self.waiting.is_empty() || self.said_at.is_some_and(|at| at + SAY_EVERY > now) {
            return None;
        }
        self.said_at = Some(now);
        let lines: Vec<String> = std::mem::take(&mut self.waiting)
            .into_iter()
            .map(|((by, room, user, what), (count, reason))| {
                let place = if room.is_empty() { String::new() } else { format!(" in {room}") };
                let times = if count == 1 { String::new() } else { format!(" ×{count}") };
                format!("- {what} by {user}{place}{times} ({by}: {reason})")
            })
            .collect();
        Some(format!("Refused before the homeserver accepted it:\n{}", lines.join("\n")))
    }
}

impl crate::bot::Bot {
    /// Gives the checks what they decide from now: the rules, and the
    /// enabled protections that check something and are not quarantined.
    pub(crate) fn publish_gate(&self) {
        let Some(gate) = &self.gate else { return };
        let now = Instant::now();
        // Each enabled protection not quarantined, as a checker of `classes`.
        let ready =
            self.protections.enabled.iter().filter(|(name, _)| {
                self.protections.health.get(*name).is_none_or(|h| h.quarantined_for(now).is_none())
            });
        let checker = |name: &String, slot: &super::Slot, classes| Checker {
            name: name.clone(),
            slot: slot.clone(),
            classes,
            errcode: self.config.errcodes.get(name).cloned().unwrap_or_else(|| "M_FORBIDDEN".to_owned()),
        };
        let checkers = ready
            .clone()
            .filter_map(|(name, slot)| {
                let classes = slot.plugin().descriptor().checks.clone();
                (!classes.is_empty()).then(|| checker(name, slot, classes))
            })
            .collect();
        let handlers = ready
            .filter_map(|(name, slot)| {
                let plugin = slot.plugin();
                let reads = plugin.wants(gleipnir_runtime::EventClass::Message);
                let checks_itself = plugin.descriptor().checks.contains(&CheckClass::Event);
                (reads && !checks_itself).then(|| checker(name, slot, Vec::new()))
            })
            .collect();
        gate.publish(View { active: !self.safe_mode, index: self.session.policy.shared_index(), checkers, handlers });
    }

    /// What the checks told: refusals to say, follow-up actions to carry
    /// out (as the protection's, through the executor), faults to count.
    pub(crate) async fn gate_news(&mut self, news: News, token: &str) {
        match news {
            News::Refused { by, room, user, what, reason, follow_up } => {
                self.refusals.add(&by, &room, &user, &what, &reason);
                let origin = crate::bot::executor::Origin::Protection(by.clone());
                let jobs: Vec<_> =
                    follow_up.into_iter().map(|a| crate::bot::executor::Job::Act(origin.clone(), a)).collect();
                if !jobs.is_empty() && by != "policy" {
                    self.jobs.extend(jobs);
                    self.flush_jobs(token).await;
                }
            }
            News::Acted { by, actions } => {
                let origin = crate::bot::executor::Origin::Protection(by);
                self.jobs.extend(actions.into_iter().map(|a| crate::bot::executor::Job::Act(origin.clone(), a)));
                self.flush_jobs(token).await;
            }
            News::Refusals { by, refused } => {
                let health = self.protections.health.entry(by.clone()).or_default();
                let said = crate::bot::protections::refusal_reports(&by, refused, health, &self.metrics, &self.rooms);
                self.jobs.extend(said);
                self.flush_jobs(token).await;
            }
            News::Report(report) => self.forwarded_report(report, token).await,
            News::Fault { protection, fault } => {
                let health = self.protections.health.entry(protection.clone()).or_default();
                let quarantined = health.fault(fault.clone(), Instant::now());
                self.metrics.fault(&protection, quarantined.is_some());
                let mut text = format!("{protection} faulted in a pre-emptive check: {fault}");
                if let Some(length) = quarantined {
                    text.push_str(&format!(
                        ". It faulted 3 times within a minute: quarantined for {} s; `protections enable {protection}` \
                         lifts it.",
                        length.as_secs()
                    ));
                    self.publish_gate();
                }
                self.matrix.notify(&text).await;
            }
        }
    }

    /// Says the refusals waiting, when due.
    pub(crate) async fn say_refusals(&mut self) {
        if let Some(text) = self.refusals.take(Instant::now()) {
            self.matrix.notify(&text).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_said_at_once_then_coalesced() {
        let mut r = Refusals::default();
        let start = Instant::now();
        assert!(r.due_at().is_none() && r.take(start).is_none());
        r.add("policy", "!r:x", "@u:x", "join", "banned");
        assert!(r.due_at().is_some_and(|at| at <= Instant::now()));
        let said = r.take(start).unwrap();
        assert_eq!(said, "Refused before the homeserver accepted it:\n- join by @u:x in !r:x (policy: banned)");
        for _ in 0..3 {
            r.add("flooding", "!r:x", "@f:x", "m.room.message", "too fast");
        }
        assert!(r.take(start + Duration::from_secs(1)).is_none(), "said at most every 5 s");
        let said = r.take(start + SAY_EVERY).unwrap();
        assert!(said.ends_with("- m.room.message by @f:x in !r:x ×3 (flooding: too fast)"), "{said}");
    }
}
