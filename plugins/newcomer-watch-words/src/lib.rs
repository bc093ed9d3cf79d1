//! Newcomer watch words: members who joined recently and say a watched word
//! or phrase have the message redacted (and, if set, are banned); the
//! management room is told either way. Matching folds case, accents,
//! look-alike letters of other scripts, styled alphabets and invisible
//! characters, so `ＢＵＹ`, `bυy` and `b\u{200B}uy` are all "buy"; it reads
//! the body, the formatted (HTML) body and the new text of edits, and
//! matches whole words. Room moderators and the bot are never acted on.

use gleipnir_sdk::prelude::*;

pub use gleipnir_sdk::text::{contains_phrase, fold, strip_html};

gleipnir_sdk::choice! {
    /// What happens when a newcomer says a watched word.
    pub enum Consequence {
        Redact = "redact",
        RedactAndBan = "redact-and-ban",
        Notify = "notify",
    }
}

gleipnir_sdk::settings! {
    pub struct Config {
        /// The words or phrases to watch for (matched as whole words, ignoring case, accents and look-alike letters).
        words: Vec<String> = Vec::new();
        /// Members who joined less than this many minutes ago are newcomers; 0 watches everyone.
        minutes_before_trusting: u32 = 1440, min 0, max 525_600;
        /// What happens: redact the message, redact it and ban the member, or only notify the management room.
        consequence: Consequence = Consequence::Redact;
        /// The reason given with redactions and bans.
        reason: String = "watched word from a newcomer".to_owned();
    }
}

#[derive(Default)]
pub struct NewcomerWatchWords {
    config: Config,
    /// The watched words, folded once when configured.
    folded: Vec<String>,
}

impl Protection for NewcomerWatchWords {
    const NAME: &'static str = "newcomer-watch-words";
    const SUMMARY: &'static str = "Redacts watched words from members who joined recently, however they are disguised.";
    const CAPABILITIES: &'static [Capability] = &[Capability::Redact, Capability::Ban, Capability::NotifyManagement];
    const EVENTS: &'static [EventClass] = &[EventClass::Message];
    type Settings = Config;

    fn configure(&mut self, config: Config) -> Result<(), String> {
        let folded: Vec<String> = config.words.iter().map(|w| fold(w)).filter(|w| !w.is_empty()).collect();
        if folded.len() != config.words.len() {
            return Err("a watched word is empty once spaces and invisible characters are removed".to_owned());
        }
        self.folded = folded;
        self.config = config;
        Ok(())
    }

    fn handle(&mut self, event: &Event, host: &dyn Host) -> Vec<Action> {
        let EventKind::Message(message) = &event.kind else { return Vec::new() };
        if self.folded.is_empty() {
            return Vec::new();
        }
        let window_ms = u64::from(self.config.minutes_before_trusting) * 60_000;
        let joined = host.joined_at(&event.room_id, &event.sender);
        // A member whose join time is unknown is treated as a newcomer.
        let newcomer = window_ms == 0 || joined.is_none_or(|at| event.received_ts.saturating_sub(at) < window_ms);
        if !newcomer {
            return Vec::new();
        }
        let mut text = fold(&message.body);
        if let Some(html) = &message.formatted_body {
            text.push('\n');
            text.push_str(&fold(&strip_html(html)));
        }
        let Some(word) =
            self.config.words.iter().zip(&self.folded).find(|(_, f)| contains_phrase(&text, f)).map(|(w, _)| w)
        else {
            return Vec::new();
        };
        if host.is_exempt(&event.room_id, &event.sender) {
            return Vec::new();
        }
        let reason = &self.config.reason;
        let mut actions = Vec::new();
        let what = match self.config.consequence {
            Consequence::Redact => {
                actions.push(Action::redact(event, reason));
                "redacted the message"
            }
            Consequence::RedactAndBan => {
                actions.push(Action::redact(event, reason));
                actions.push(Action::ban(&event.room_id, &event.sender, reason));
                "redacted the message and banned them"
            }
            Consequence::Notify => "took no action (consequence is notify)",
        };
        let since = match joined {
            Some(at) => format!("joined {} min ago", event.received_ts.saturating_sub(at) / 60_000),
            None => "join time unknown".to_owned(),
        };
        actions.push(Action::notify(
            &format!("{} ({since}) said the watched phrase \"{word}\" in {}; {what}.", event.sender, event.room_id),
            reason,
        ));
        actions
    }
}

gleipnir_sdk::export_protection!(NewcomerWatchWords);

#[cfg(test)]
mod tests;
