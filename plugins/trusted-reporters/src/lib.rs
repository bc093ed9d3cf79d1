//! Trusted reporters: abuse reports on one event from members the
//! moderators trust (`mxids`) are counted, each reporter once, and at each
//! threshold the protection acts: tell the management room
//! (`alert-threshold`), redact the event (`redact-threshold`), ban its
//! sender from the room (`ban-threshold`). A threshold of 0 is off. Each
//! action happens once per event, when the count reaches it.
//!
//! Reports from anyone else are not counted (the report itself still
//! reaches the management room through the host). Room moderators and the
//! bot are never redacted or banned. Counts are kept across a restart and a
//! swap, for up to `remember` per event.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use gleipnir_sdk::prelude::*;

gleipnir_sdk::settings! {
    pub struct Config {
        /// The members whose reports count.
        mxids: Vec<User> = Vec::new();
        /// Tell the management room once this many trusted members reported an event (0: never).
        alert_threshold: u32 = 3, min 0, max 1000;
        /// Redact the event once this many trusted members reported it (0: never).
        redact_threshold: u32 = 0, min 0, max 1000;
        /// Ban the event's sender from the room once this many trusted members reported it (0: never).
        ban_threshold: u32 = 0, min 0, max 1000;
        /// How long reports on an event are counted after the first.
        remember: Duration = Duration::from_secs(7 * 24 * 3600);
        /// The reason given with redactions and bans.
        reason: String = "reported by trusted members".to_owned();
    }
}

/// The reports counted on one event.
#[derive(Debug, Default, Clone, PartialEq)]
struct Reported {
    room: String,
    /// The event's sender, when the host knew it.
    sender: Option<String>,
    /// When the first counted report came (ms).
    first: u64,
    reporters: BTreeSet<String>,
}

/// At most this many reported events are remembered (the oldest go first).
const MAX_EVENTS: usize = 10_000;

#[derive(Default)]
pub struct TrustedReporters {
    config: Config,
    events: BTreeMap<String, Reported>,
}

impl TrustedReporters {
    fn trusted(&self, user: &str) -> bool {
        self.config.mxids.iter().any(|u| u.0 == user)
    }

    /// Forgets events first reported before `before`, and the oldest beyond [`MAX_EVENTS`].
    fn forget(&mut self, before: u64) {
        self.events.retain(|_, r| r.first >= before);
        while self.events.len() > MAX_EVENTS {
            let oldest = self.events.iter().min_by_key(|(_, r)| r.first).map(|(id, _)| id.clone());
            match oldest {
                Some(id) => self.events.remove(&id),
                None => break,
            };
        }
    }
}

impl Protection for TrustedReporters {
    const NAME: &'static str = "trusted-reporters";
    const SUMMARY: &'static str =
        "Acts on an event once enough trusted members report it: tells the moderators, redacts it, bans its sender.";
    const CAPABILITIES: &'static [Capability] = &[Capability::Redact, Capability::Ban, Capability::NotifyManagement];
    const EVENTS: &'static [EventClass] = &[EventClass::Report];
    type Settings = Config;

    fn configure(&mut self, config: Config) -> Result<(), String> {
        for user in &config.mxids {
            if !user.0.starts_with('@') || !user.0.contains(':') {
                return Err(format!("mxids: `{}` is not a user id (@user:server)", user.0));
            }
        }
        self.config = config;
        Ok(())
    }

    fn handle(&mut self, event: &Event, host: &dyn Host) -> Vec<Action> {
        let EventKind::Report(report) = &event.kind else { return Vec::new() };
        let Some(reported) = report.reported_event.clone() else { return Vec::new() };
        if !self.trusted(&event.sender) {
            return Vec::new();
        }
        let now = event.received_ts;
        let window = u64::try_from(self.config.remember.as_millis()).unwrap_or(u64::MAX);
        self.forget(now.saturating_sub(window));
        let entry = self.events.entry(reported.clone()).or_insert_with(|| Reported {
            room: event.room_id.clone(),
            sender: None,
            first: now,
            reporters: BTreeSet::new(),
        });
        if entry.sender.is_none() {
            entry.sender.clone_from(&report.reported_user);
        }
        if !entry.reporters.insert(event.sender.clone()) {
            return Vec::new();
        }
        let count = entry.reporters.len() as u32;
        let (room, sender) = (entry.room.clone(), entry.sender.clone());
        let reporters: Vec<String> = entry.reporters.iter().cloned().collect();
        let reached = |threshold: u32| threshold > 0 && count == threshold;
        let exempt = sender.as_deref().is_some_and(|s| host.is_exempt(&room, s));
        let reason = self.config.reason.clone();
        let mut actions = Vec::new();
        let mut done = Vec::new();
        if reached(self.config.ban_threshold) && !exempt {
            match &sender {
                Some(sender) => {
                    actions.push(Action::ban(&room, sender, &reason));
                    done.push(format!("banned {sender}"));
                }
                None => done.push("could not ban the sender: the homeserver did not say who sent it".to_owned()),
            }
        }
        if reached(self.config.redact_threshold) && !exempt {
            actions.push(Action::Redact(RedactEvent {
                room_id: room.clone(),
                event_id: reported.clone(),
                reason: reason.clone(),
            }));
            done.push("redacted it".to_owned());
        }
        let acted = !done.is_empty();
        if reached(self.config.alert_threshold) || acted {
            let whose = sender.as_deref().map_or(String::new(), |s| format!(" by {s}"));
            let what = if acted {
                format!(": {}", done.join(", "))
            } else if exempt {
                " (a room moderator: nothing done)".to_owned()
            } else {
                String::new()
            };
            let note = report.reason.as_deref().map_or(String::new(), |r| format!(" Latest reason: “{r}”."));
            actions.push(Action::notify(
                &format!(
                    "{count} trusted member{} reported {reported}{whose} in {room} ({}){what}.{note}",
                    if count == 1 { "" } else { "s" },
                    reporters.join(", ")
                ),
                &reason,
            ));
        }
        actions
    }

    /// `trusted-reporters-v1`, then per event `EVENT ROOM SENDER|- FIRST REPORTER…`.
    fn snapshot(&self) -> Vec<u8> {
        let mut out = String::new();
        for (id, r) in &self.events {
            let reporters: Vec<&str> = r.reporters.iter().map(String::as_str).collect();
            let sender = r.sender.as_deref().unwrap_or("-");
            out.push_str(&format!("{id} {} {sender} {} {}\n", r.room, r.first, reporters.join(" ")));
        }
        gleipnir_sdk::state::tagged(STATE_V1, out.as_bytes())
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let (_, body) = gleipnir_sdk::state::expect(state, &[STATE_V1])?;
        let text = std::str::from_utf8(body).map_err(|_| "the state is not UTF-8".to_owned())?;
        let mut events = BTreeMap::new();
        for line in text.lines() {
            let words: Vec<&str> = line.split(' ').collect();
            let [id, room, sender, first, reporters @ ..] = words.as_slice() else {
                return Err(format!("a line of the state is not `event room sender first reporters…`: {line}"));
            };
            let first = first.parse().map_err(|_| format!("`{first}` is not a time"))?;
            let sender = (*sender != "-").then(|| (*sender).to_owned());
            let reporters = reporters.iter().map(|r| (*r).to_owned()).collect();
            events.insert((*id).to_owned(), Reported { room: (*room).to_owned(), sender, first, reporters });
        }
        self.events = events;
        Ok(())
    }
}

/// The format tag of the state this version writes (`gleipnir_sdk::state`).
const STATE_V1: &str = "trusted-reporters-v1";

gleipnir_sdk::export_protection!(TrustedReporters);

#[cfg(test)]
mod tests;
