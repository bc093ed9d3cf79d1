//! Least authority for newcomers: until a member has been in the room for a
//! while *and* has sent some messages that were not removed, messages with
//! links, media, many mentions or formatted HTML are redacted, the member is
//! told why (once in a while, not on every message), and the management
//! room can be told. Moderators lift the gate for a member with the
//! protection's command `least-authority trust USER` (the `trusted` setting)
//! and put it back with `least-authority untrust USER` (the `gated` setting,
//! which holds whatever the thresholds say).
//!
//! Nothing is kept in the protection that a restart would lose: join times
//! come from room state and message counts from the host, which counts the
//! messages it sees and keeps the counts across restarts. Members who were in
//! the room before the host began counting there are not newcomers.

use std::collections::BTreeMap;
use std::time::Duration;

use gleipnir_sdk::prelude::*;

/// The kinds of content a newcomer may not post yet.
pub const KINDS: [&str; 4] = ["links", "media", "mentions", "html"];

gleipnir_sdk::settings! {
    pub struct Config {
        /// How long a member must have been in the room before the gate lifts.
        time_before_trusted: Duration = Duration::from_secs(24 * 3600);
        /// Messages (not removed) a member must have sent before the gate lifts.
        messages_before_trusted: u32 = 5, min 0, max 10_000;
        /// What newcomers may not post: any of links, media, mentions, html.
        restrict: Vec<String> = KINDS.iter().map(|k| (*k).to_owned()).collect();
        /// More mentions than this in one message (an @room mention counts as many) is restricted.
        max_mentions: u32 = 2, min 0, max 100;
        /// Tell the member, in the room, why the message was removed.
        explain: bool = true;
        /// The explanation; `{user}` is replaced by the member and `{what}` by what was restricted.
        explanation: String = "{user}: new members can post {what} after a while here. Your message was removed; plain text is welcome.".to_owned();
        /// At most one explanation per member this often.
        explain_every: Duration = Duration::from_secs(3600);
        /// Also tell the management room about each removal.
        notify: bool = false;
        /// Members the gate never applies to (`trust USER`).
        trusted: Vec<User> = Vec::new();
        /// Members the gate always applies to, whatever the thresholds (`untrust USER`).
        gated: Vec<User> = Vec::new();
    }
}

#[derive(Default)]
pub struct LeastAuthority {
    config: Config,
    /// When each member was last told (received time, ms), for rate-limiting.
    explained: BTreeMap<String, u64>,
}

/// What in a message a newcomer may not post yet, in the order of [`KINDS`].
pub fn restricted(message: &Message, max_mentions: u32) -> Vec<&'static str> {
    let mut found = Vec::new();
    let html = message.formatted_body.as_deref().unwrap_or_default();
    if has_link(&message.body) || html.contains("<a ") || html.contains("<a\n") {
        found.push("links");
    }
    let media =
        matches!(message.msgtype, Msgtype::Image | Msgtype::File | Msgtype::Audio | Msgtype::Video | Msgtype::Sticker)
            || message.media.is_some()
            || html.contains("<img");
    if media {
        found.push("media");
    }
    let mentions = message.mentions.as_ref().map_or(0, |m| {
        let everyone = if m.room { u32::MAX } else { 0 };
        (m.users.len() as u32).saturating_add(everyone)
    });
    if mentions > max_mentions {
        found.push("mentions");
    }
    if message.formatted_body.is_some() {
        found.push("html");
    }
    found
}

/// Whether `text` holds something a client would turn into a link:
/// a URL with a scheme, `www.`, or a `matrix.to` link.
pub fn has_link(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    ["http://", "https://", "www.", "matrix.to/", "ftp://", "mxc://"].iter().any(|p| lower.contains(p))
        || lower
            .split(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '(' || c == ')')
            .any(looks_like_domain)
}

/// `example.com`, `spam.example.org/path`: letters, a dot, and a known
/// top-level domain; not `e.g.` or `3.14`.
fn looks_like_domain(word: &str) -> bool {
    const TLDS: [&str; 16] =
        ["com", "net", "org", "io", "ru", "xyz", "top", "info", "biz", "co", "me", "gg", "ly", "app", "dev", "link"];
    let host = word.split('/').next().unwrap_or_default().trim_end_matches(['.', ',', '!', '?', ':', ';']);
    let Some((name, tld)) = host.rsplit_once('.') else { return false };
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && name.chars().any(|c| c.is_ascii_alphabetic())
        && TLDS.contains(&tld)
}

impl Protection for LeastAuthority {
    const NAME: &'static str = "least-authority";
    const SUMMARY: &'static str =
        "Newcomers earn links, media, mentions and formatting by time in the room and messages that stayed up.";
    const CAPABILITIES: &'static [Capability] =
        &[Capability::Redact, Capability::SendNotice, Capability::NotifyManagement];
    const EVENTS: &'static [EventClass] = &[EventClass::Message];
    const COMMANDS: &'static [Command] = &[
        Command { name: "trust", args: "USER", help: "lift the newcomer gate for USER (the `trusted` setting)" },
        Command {
            name: "untrust",
            args: "USER",
            help: "gate USER whatever their time and messages (the `gated` setting), until `trust`",
        },
    ];
    type Settings = Config;

    /// `trust USER` / `untrust USER`: moves USER between `trusted` and
    /// `gated`; the host saves the settings like a moderator's change.
    fn command(&mut self, name: &str, args: &[String], _: &Caller, _: &dyn Host) -> Result<CommandReply, String> {
        let [user] = args else { return Err(format!("usage: {} {name} USER", Self::NAME)) };
        if !user.starts_with('@') || !user.contains(':') {
            return Err(format!("`{user}` is not a user id (@user:server)"));
        }
        let trust = name == "trust";
        let (mut trusted, mut gated): (Vec<String>, Vec<String>) = (
            self.config.trusted.iter().map(|u| u.0.clone()).filter(|u| u != user).collect(),
            self.config.gated.iter().map(|u| u.0.clone()).filter(|u| u != user).collect(),
        );
        let reply = if trust {
            trusted.push(user.clone());
            format!(
                "{user} is trusted: {} no longer restricts what they post. `{} untrust {user}` puts the gate back.",
                Self::NAME,
                Self::NAME
            )
        } else {
            gated.push(user.clone());
            format!(
                "{user} is gated: {} restricts their links, media, mentions and formatting whatever their time and \
                 messages. `{} trust {user}` lifts it.",
                Self::NAME,
                Self::NAME
            )
        };
        Ok(CommandReply::say(reply)
            .with_setting("trusted", SettingValue::UserIds(trusted))
            .with_setting("gated", SettingValue::UserIds(gated)))
    }

    fn configure(&mut self, config: Config) -> Result<(), String> {
        for kind in &config.restrict {
            if !KINDS.contains(&kind.as_str()) {
                return Err(format!("restrict: `{kind}` is not one of {}", KINDS.join(", ")));
            }
        }
        self.config = config;
        Ok(())
    }

    fn handle(&mut self, event: &Event, host: &dyn Host) -> Vec<Action> {
        let EventKind::Message(message) = &event.kind else { return Vec::new() };
        let (room, user) = (event.room_id.as_str(), event.sender.as_str());
        let gated = self.config.gated.iter().any(|u| u.0 == user);
        if !gated && self.config.trusted.iter().any(|u| u.0 == user) {
            return Vec::new();
        }
        let found: Vec<&str> = restricted(message, self.config.max_mentions)
            .into_iter()
            .filter(|k| self.config.restrict.iter().any(|r| r == k))
            .collect();
        if found.is_empty() {
            return Vec::new();
        }
        // No count means a member from before the host began counting in the
        // room (or whose join time is unknown): an established member.
        let count = host.message_count(room, user);
        let window = u64::try_from(self.config.time_before_trusted.as_millis()).unwrap_or(u64::MAX);
        let recent = host.joined_at(room, user).is_some_and(|at| event.received_ts.saturating_sub(at) < window);
        let newcomer = count.is_some_and(|n| recent || n < self.config.messages_before_trusted);
        if !(gated || newcomer) || host.is_exempt(room, user) {
            return Vec::new();
        }
        let what = found.join(", ");
        let reason = format!("least-authority: newcomers may not post {what} yet");
        let mut actions = vec![Action::redact(event, &reason)];
        let every = u64::try_from(self.config.explain_every.as_millis()).unwrap_or(u64::MAX);
        let last = self.explained.get(user).copied();
        if self.config.explain && last.is_none_or(|at| event.received_ts.saturating_sub(at) >= every) {
            if self.explained.len() >= 10_000 {
                let now = event.received_ts;
                self.explained.retain(|_, at| now.saturating_sub(*at) < every);
            }
            self.explained.insert(user.to_owned(), event.received_ts);
            let body = self.config.explanation.replace("{user}", user).replace("{what}", &what);
            actions.push(Action::notice(room, &body, &reason));
        }
        if self.config.notify {
            let why = if gated {
                "gated by a moderator".to_owned()
            } else {
                let minutes = host.joined_at(room, user).map(|at| event.received_ts.saturating_sub(at) / 60_000);
                format!(
                    "in the room {} min, {} message(s) so far",
                    minutes.map_or("?".to_owned(), |m| m.to_string()),
                    count.map_or("?".to_owned(), |c| c.to_string())
                )
            };
            actions.push(Action::notify(&format!("Removed {what} from newcomer {user} in {room} ({why})."), &reason));
        }
        actions
    }

    /// When each member was last told, so a swap or a restart does not
    /// explain again at once: `least-authority-v1`, then `ms user` per line.
    fn snapshot(&self) -> Vec<u8> {
        let mut out = format!("{STATE_V1}\n");
        for (user, at) in &self.explained {
            out.push_str(&format!("{at} {user}\n"));
        }
        out.into_bytes()
    }

    /// Reads this version's state and the unversioned one of 0.1.0 builds;
    /// a newer version's is refused, saying so (explanations start over).
    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(state).map_err(|_| "the state is not UTF-8".to_owned())?;
        let mut lines = text.lines().peekable();
        match lines.peek() {
            Some(&STATE_V1) => {
                lines.next();
            }
            Some(header) if header.starts_with("least-authority-v") => {
                return Err(format!(
                    "the state was written by a newer version ({header}); when members were last told is forgotten"
                ));
            }
            _ => {}
        }
        for line in lines {
            let (at, user) = line.split_once(' ').ok_or("a line of the state has no space")?;
            self.explained.insert(user.to_owned(), at.parse().map_err(|_| "a time in the state is not a number")?);
        }
        Ok(())
    }
}

/// The first line of the state this version writes.
const STATE_V1: &str = "least-authority-v1";

gleipnir_sdk::export_protection!(LeastAuthority);

#[cfg(test)]
mod tests;
