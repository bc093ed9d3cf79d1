//! Media: what kinds of media a room allows, and from whom. One protection
//! for what Draupnir splits in three (MessageIsMedia, MessageIsVoice,
//! FirstMessageIsImage): `kinds` says what is removed (images, video,
//! audio, voice messages, files, stickers, images inline in HTML), `who`
//! from whom (everyone, newcomers, or a member's first message), and
//! `consequence` whether the sender is also banned.
//!
//! Room moderators and the bot are never acted on. A voice message is an
//! audio message marked as one (`org.matrix.msc3245.voice`); other audio is
//! `audio`.

use std::time::Duration;

use gleipnir_sdk::prelude::*;

/// The kinds of media `kinds` may name.
pub const KINDS: [&str; 7] = ["image", "video", "audio", "voice", "file", "sticker", "inline-image"];

gleipnir_sdk::choice! {
    /// Whose media is removed.
    pub enum Who {
        Everyone = "everyone",
        Newcomers = "newcomers",
        FirstMessage = "first-message",
    }
}

gleipnir_sdk::choice! {
    /// What happens besides the redaction.
    pub enum Consequence {
        Redact = "redact",
        RedactAndBan = "redact-and-ban",
    }
}

gleipnir_sdk::settings! {
    pub struct Config {
        /// What is removed: any of image, video, audio, voice, file, sticker, inline-image.
        kinds: Vec<String> = ["image", "video", "inline-image"].iter().map(|k| (*k).to_owned()).collect();
        /// From whom: everyone, newcomers (joined less than `newcomer-for` ago), or first-message (a member's first message in the room).
        who: Who = Who::Everyone;
        /// With `who = newcomers`: members who joined less than this ago.
        newcomer_for: Duration = Duration::from_secs(24 * 3600);
        /// redact, or redact-and-ban (the sender is banned from the room too).
        consequence: Consequence = Consequence::Redact;
        /// Tell the management room about each removal.
        notify: bool = true;
        /// The reason given with redactions and bans.
        reason: String = "this kind of media is not permitted here".to_owned();
    }
}

#[derive(Default)]
pub struct Media {
    config: Config,
}

/// The kinds of media in a message, in the order of [`KINDS`].
pub fn kinds_in(message: &Message, content: &str) -> Vec<&'static str> {
    let mut found = Vec::new();
    let voice = content.contains("\"org.matrix.msc3245.voice\"");
    match message.msgtype {
        Msgtype::Image => found.push("image"),
        Msgtype::Video => found.push("video"),
        Msgtype::Audio if voice => found.push("voice"),
        Msgtype::Audio => found.push("audio"),
        Msgtype::File => found.push("file"),
        Msgtype::Sticker => found.push("sticker"),
        _ => {}
    }
    let html = message.formatted_body.as_deref().unwrap_or_default().to_ascii_lowercase();
    if html.contains("<img") {
        found.push("inline-image");
    }
    found
}

impl Protection for Media {
    const NAME: &'static str = "media";
    const SUMMARY: &'static str = "Removes the kinds of media a room does not allow (images, video, audio, voice, files, stickers), from everyone, newcomers or first messages.";
    const CAPABILITIES: &'static [Capability] = &[Capability::Redact, Capability::Ban, Capability::NotifyManagement];
    const EVENTS: &'static [EventClass] = &[EventClass::Message];
    type Settings = Config;

    fn configure(&mut self, config: Config) -> Result<(), String> {
        for kind in &config.kinds {
            if !KINDS.contains(&kind.as_str()) {
                return Err(format!("kinds: `{kind}` is not one of {}", KINDS.join(", ")));
            }
        }
        self.config = config;
        Ok(())
    }

    fn handle(&mut self, event: &Event, host: &dyn Host) -> Vec<Action> {
        let EventKind::Message(message) = &event.kind else { return Vec::new() };
        let found: Vec<&str> = kinds_in(message, &event.content)
            .into_iter()
            .filter(|k| self.config.kinds.iter().any(|c| c == k))
            .collect();
        if found.is_empty() {
            return Vec::new();
        }
        let (room, user) = (event.room_id.as_str(), event.sender.as_str());
        let applies = match self.config.who {
            Who::Everyone => true,
            Who::Newcomers => {
                let window = u64::try_from(self.config.newcomer_for.as_millis()).unwrap_or(u64::MAX);
                host.joined_at(room, user).is_some_and(|at| event.received_ts.saturating_sub(at) < window)
            }
            // The host counts a member's messages that stayed; none yet: this is the first.
            Who::FirstMessage => host.message_count(room, user) == Some(0),
        };
        if !applies || host.is_exempt(room, user) {
            return Vec::new();
        }
        let reason = self.config.reason.clone();
        let what = found.join(", ");
        let mut actions = Vec::new();
        // The sender is stopped before the clean-up.
        let ban = self.config.consequence == Consequence::RedactAndBan;
        if ban {
            actions.push(Action::ban(room, user, &reason));
        }
        actions.push(Action::redact(event, &reason));
        if self.config.notify {
            let whose = match self.config.who {
                Who::Everyone => "",
                Who::Newcomers => " (a newcomer)",
                Who::FirstMessage => " (their first message)",
            };
            let banned = if ban { " and banned them" } else { "" };
            actions.push(Action::notify(
                &format!("Removed {what} from {user}{whose} in {room}{banned} ({}).", event.event_id),
                &reason,
            ));
        }
        actions
    }
}

gleipnir_sdk::export_protection!(Media);

#[cfg(test)]
mod tests;
