//! Flooding: stops one user from sending too many messages in one room.
//!
//! Per room and per user, the protection keeps the messages of the last
//! minute. When a user sends more than `max-per-minute` of them, it acts:
//! by default it redacts those messages and bans the user; `consequence`
//! can instead only redact, or only tell the management room. While a user
//! stays flagged (until a minute passes without a message from them), every
//! further message is redacted too, but the ban and the notice are sent once.
//!
//! Room moderators (power level at or above the room's ban level) and the
//! bot itself are never acted on. Redactions are not messages and are not
//! counted. Time is when the host received the event, not the sender's
//! claimed timestamp, so a spammer cannot spread messages out on paper.

use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};

use gleipnir_sdk::prelude::*;
use hashbrown::HashTable;

/// Messages count toward the limit for this long.
const WINDOW_MS: u64 = 60_000;
/// Forget idle users after this many handled events, to bound memory.
const SWEEP_EVERY: u32 = 4096;

gleipnir_sdk::choice! {
    /// What happens when a user floods a room.
    pub enum Consequence {
        RedactAndBan = "redact-and-ban",
        Redact = "redact",
        Notify = "notify",
    }
}

gleipnir_sdk::settings! {
    pub struct Config {
        /// How many messages one user may send in one room within a minute; one more is a flood.
        max_per_minute: u32 = 10, min 1, max 10_000;
        /// What happens to a flooder: redact their recent messages and ban them, only redact, or only notify the management room.
        consequence: Consequence = Consequence::RedactAndBan;
        /// The reason given with redactions and bans.
        reason: String = "flooding".to_owned();
    }
}

#[derive(Debug, Default)]
struct Sender {
    /// When and what this user sent within the window, oldest first.
    recent: VecDeque<(u64, String)>,
    /// Acted on until this time; each new message extends it.
    flagged_until: Option<u64>,
}

/// Recent messages of one user in one room.
#[derive(Debug)]
struct Entry {
    room: String,
    user: String,
    sender: Sender,
}

/// Hashes a (room, user) pair; the same for borrowed and owned strings.
fn hash_of(hasher: &RandomState, room: &str, user: &str) -> u64 {
    hasher.hash_one((room, user))
}

#[derive(Default)]
pub struct Flooding {
    config: Config,
    /// (room, user) → recent messages, found with one hash and no
    /// allocation. SipHash with a random key (std's `RandomState`), since
    /// user ids are chosen by whoever floods.
    senders: HashTable<Entry>,
    hasher: RandomState,
    bot: Option<String>,
    since_sweep: u32,
}

impl Protection for Flooding {
    const NAME: &'static str = "flooding";
    const SUMMARY: &'static str = "Redacts and bans users who send too many messages in a room within a minute.";
    const CAPABILITIES: &'static [Capability] = &[Capability::Redact, Capability::Ban, Capability::NotifyManagement];
    const EVENTS: &'static [EventClass] = &[EventClass::Message];
    type Settings = Config;

    fn configure(&mut self, config: Config) -> Result<(), String> {
        self.config = config;
        Ok(())
    }

    fn handle(&mut self, event: &Event, host: &dyn Host) -> Vec<Action> {
        let EventKind::Message(_) = &event.kind else { return Vec::new() };
        let now = event.received_ts;
        self.maybe_sweep(now);

        let max = self.config.max_per_minute as usize;
        let sender = self.sender_mut(&event.room_id, &event.sender);
        while sender.recent.front().is_some_and(|(ts, _)| now.saturating_sub(*ts) >= WINDOW_MS) {
            sender.recent.pop_front();
        }
        sender.recent.push_back((now, event.event_id.clone()));
        let flagged = sender.flagged_until.is_some_and(|until| now < until);
        if sender.recent.len() <= max && !flagged {
            return Vec::new();
        }

        let bot = self.bot.get_or_insert_with(|| host.bot_user_id());
        if event.sender == *bot || host.is_moderator(&event.room_id, &event.sender) {
            // Keep the window bounded for users we never act on.
            let sender = self.sender_mut(&event.room_id, &event.sender);
            while sender.recent.len() > max {
                sender.recent.pop_front();
            }
            return Vec::new();
        }

        let consequence = self.config.consequence;
        let reason = self.config.reason.clone();
        let sender = self.sender_mut(&event.room_id, &event.sender);
        sender.flagged_until = Some(now + WINDOW_MS);
        let count = sender.recent.len();
        let mut actions = Vec::new();
        if flagged {
            // Already acted on: clean up what keeps coming, say nothing new.
            if consequence != Consequence::Notify {
                actions.push(Action::redact(event, &reason));
            }
            sender.recent.clear();
            return actions;
        }
        if consequence != Consequence::Notify {
            for (_, event_id) in sender.recent.drain(..) {
                actions.push(Action::Redact(RedactEvent {
                    room_id: event.room_id.clone(),
                    event_id,
                    reason: reason.clone(),
                }));
            }
        } else {
            sender.recent.clear();
        }
        if consequence == Consequence::RedactAndBan {
            actions.push(Action::ban(&event.room_id, &event.sender, &reason));
        }
        let what = match consequence {
            Consequence::RedactAndBan => "redacted their messages and banned them",
            Consequence::Redact => "redacted their messages",
            Consequence::Notify => "took no action (consequence is notify)",
        };
        actions.push(Action::notify(
            &format!(
                "{} sent {count} messages within a minute in {} (limit {max}); {what}.",
                event.sender, event.room_id
            ),
            &reason,
        ));
        actions
    }

    /// Who sent what lately and who is flagged: the host keeps this across
    /// a swap and a restart, so a flood that straddles one is still a flood.
    /// One line per (room, user): `room \t user \t flagged-until or - \t ts:event …`
    /// (Matrix ids hold no tabs, spaces or line breaks).
    fn snapshot(&self) -> Vec<u8> {
        let mut out = String::from("flooding-v1\n");
        for Entry { room, user, sender } in &self.senders {
            if sender.recent.is_empty() && sender.flagged_until.is_none() {
                continue;
            }
            let flagged = sender.flagged_until.map_or("-".to_owned(), |t| t.to_string());
            let recent: Vec<String> = sender.recent.iter().map(|(ts, id)| format!("{ts}:{id}")).collect();
            out.push_str(&format!("{room}\t{user}\t{flagged}\t{}\n", recent.join(" ")));
        }
        out.into_bytes()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(state).map_err(|_| "the state is not UTF-8".to_owned())?;
        let mut lines = text.lines();
        if lines.next() != Some("flooding-v1") {
            return Err("not a state this version of flooding wrote".to_owned());
        }
        for line in lines {
            let mut fields = line.split('\t');
            let (Some(room), Some(user), Some(flagged), Some(recent)) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(format!("a line of the state has too few fields: {line}"));
            };
            let flagged_until = match flagged {
                "-" => None,
                t => Some(t.parse().map_err(|_| format!("`{t}` is not a time"))?),
            };
            let mut messages = VecDeque::new();
            for item in recent.split(' ').filter(|i| !i.is_empty()) {
                let (ts, id) = item.split_once(':').ok_or_else(|| format!("`{item}` is not time:event"))?;
                messages.push_back((ts.parse().map_err(|_| format!("`{ts}` is not a time"))?, id.to_owned()));
            }
            let sender = self.sender_mut(room, user);
            sender.flagged_until = flagged_until;
            sender.recent = messages;
        }
        Ok(())
    }
}

impl Flooding {
    fn sender_mut(&mut self, room: &str, user: &str) -> &mut Sender {
        // One hash, and an allocation only for a sender not seen in the window.
        let hasher = &self.hasher;
        let hash = hash_of(hasher, room, user);
        let entry =
            self.senders.entry(hash, |e| e.room == room && e.user == user, |e| hash_of(hasher, &e.room, &e.user));
        &mut entry
            .or_insert_with(|| Entry { room: room.to_owned(), user: user.to_owned(), sender: Sender::default() })
            .into_mut()
            .sender
    }

    /// Forget users with nothing in the window and no flag.
    fn maybe_sweep(&mut self, now: u64) {
        self.since_sweep += 1;
        if self.since_sweep < SWEEP_EVERY {
            return;
        }
        self.since_sweep = 0;
        self.senders.retain(|Entry { sender: s, .. }| {
            let recent = s.recent.back().is_some_and(|(ts, _)| now.saturating_sub(*ts) < WINDOW_MS);
            let flagged = s.flagged_until.is_some_and(|until| now < until);
            recent || flagged
        });
    }
}

gleipnir_sdk::export_protection!(Flooding);

#[cfg(test)]
mod tests;
