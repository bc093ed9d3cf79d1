//! Abuse reports in the management room. Each report read from the
//! homeserver (`reports.rs`) in a protected room is posted once: who
//! reported, the reason, the room, the reported sender and a quote of the
//! reported message (plain text: the notice is HTML-escaped like every
//! other), with reactions a moderator clicks: 🗑️ redact it, 🔨 ban the
//! sender in that room, 🌍 ban them in every protected room (and write the
//! ban to `[policy] propagate_bans_to`'s list when one is set, or offer the
//! lists the bot can edit for a numbered reaction, as a client ban is), 🙈 ignore. A
//! reaction carries out exactly what it names, through the executor and its
//! checks, and the notice is edited to say who handled it and how. Which
//! notice is which report is kept in the data folder, so a reaction after a
//! restart still works, and a report is handled once.

use std::collections::{BTreeMap, VecDeque};

use gleipnir_runtime::Folder;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Bot;
use super::commands::{Reply, Verb, moderation};
use super::executor::{Act, Origin, Outcome};
use super::reports::Listed;

/// Where the posted reports are kept (`data_dir`).
pub(crate) const FILE: &str = "report-notices.json";
/// Posted reports remembered; older notices no longer take reactions.
const KEPT: usize = 1000;
/// The longest quote of a reported message, in characters.
const QUOTE: usize = 300;

/// What a moderator may do about a report, and the reaction that says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    Redact,
    BanHere,
    BanEverywhere,
    Ignore,
}

/// The reactions offered, in order.
pub(crate) const CHOICES: [(&str, Choice); 4] =
    [("🗑️", Choice::Redact), ("🔨", Choice::BanHere), ("🌍", Choice::BanEverywhere), ("🙈", Choice::Ignore)];

impl Choice {
    /// The choice a reaction key names (with or without the emoji variation selector).
    pub(crate) fn of(key: &str) -> Option<Choice> {
        let bare = |k: &str| k.trim_end_matches('\u{fe0f}').to_owned();
        CHOICES.iter().find(|(k, _)| bare(k) == bare(key)).map(|(_, c)| *c)
    }
}

/// One report as posted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Posted {
    pub(crate) id: u64,
    pub(crate) room: String,
    pub(crate) event: String,
    pub(crate) sender: Option<String>,
    pub(crate) reporter: String,
    pub(crate) reason: Option<String>,
    /// The notice as first posted (an edit keeps it and adds who handled it).
    pub(crate) text: String,
    /// Who handled it and how, once someone did.
    pub(crate) handled: Option<String>,
}

/// The posted reports, by the event id of their notice.
#[derive(Debug, Default)]
pub(crate) struct ReportNotices {
    by_notice: BTreeMap<String, Posted>,
    order: VecDeque<String>,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    /// Oldest first: (notice event id, report).
    posted: Vec<(String, Posted)>,
}

impl ReportNotices {
    /// What the data folder holds; a damaged file starts over (said in the log:
    /// older notices then take no reactions, and nothing is acted on wrongly).
    pub(crate) fn load(folder: &Folder) -> ReportNotices {
        let text = match folder.read_to_string(FILE) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return ReportNotices::default(),
            Err(e) => {
                tracing::warn!("cannot read {FILE} ({e}); reactions to earlier report notices are not taken");
                return ReportNotices::default();
            }
        };
        match serde_json::from_str::<Stored>(&text) {
            Ok(stored) => {
                let mut notices = ReportNotices::default();
                for (notice, posted) in stored.posted {
                    notices.insert(notice, posted);
                }
                notices
            }
            Err(e) => {
                tracing::warn!("{FILE} is damaged ({e}); reactions to earlier report notices are not taken");
                ReportNotices::default()
            }
        }
    }

    pub(crate) fn save(&self, folder: &Folder) -> anyhow::Result<()> {
        let posted = self.order.iter().filter_map(|n| self.by_notice.get(n).map(|p| (n.clone(), p.clone()))).collect();
        let text = serde_json::to_string(&Stored { posted })?;
        Ok(folder.write_durably(FILE, text.as_bytes(), false)?)
    }

    pub(crate) fn insert(&mut self, notice: String, posted: Posted) {
        if self.by_notice.insert(notice.clone(), posted).is_none() {
            self.order.push_back(notice);
        }
        while self.order.len() > KEPT {
            if let Some(oldest) = self.order.pop_front() {
                self.by_notice.remove(&oldest);
            }
        }
    }

    /// Whether this report was posted already: read again after a crash
    /// between posting it and saving the position, or forwarded to the
    /// listener and then read from the admin API too (the same reporter
    /// and event).
    pub(crate) fn has_report(&self, report: &Listed) -> bool {
        self.by_notice.values().any(|p| {
            (report.id != 0 && p.id == report.id) || (p.event == report.event_id && p.reporter == report.reporter)
        })
    }

    pub(crate) fn get(&self, notice: &str) -> Option<&Posted> {
        self.by_notice.get(notice)
    }

    fn get_mut(&mut self, notice: &str) -> Option<&mut Posted> {
        self.by_notice.get_mut(notice)
    }
}

/// The notice for a report: plain text (the notice sender escapes it).
pub(crate) fn render(report: &Listed, room_name: Option<&str>, content: Option<&Value>) -> String {
    let room = match room_name {
        Some(name) => format!("{name} ({})", report.room_id),
        None => report.room_id.clone(),
    };
    let reason = report.reason.as_deref().map_or("no reason given".to_owned(), |r| format!("“{}”", one_line(r, QUOTE)));
    let score = report.score.map(|s| format!(", score {s}")).unwrap_or_default();
    let sender = report.sender.as_deref().unwrap_or("an unknown sender");
    let quote = content.and_then(|c| c.get("body")).and_then(Value::as_str).map(|b| one_line(b, QUOTE));
    let quote = match quote {
        Some(body) => format!("> {body}"),
        None => "(the reported event's text could not be read)".to_owned(),
    };
    // A forwarded report has no number of the homeserver's.
    let number = if report.id == 0 { String::new() } else { format!(" {}", report.id) };
    format!(
        "Report{number} by {} in {room}: {reason}{score}\n{sender} wrote ({}):\n{quote}\n\
         React: 🗑️ redact it · 🔨 ban {sender} in this room · 🌍 ban {sender} in every protected room · 🙈 ignore",
        report.reporter, report.event_id
    )
}

/// `text` on one line, at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

impl Bot {
    /// Posts a report read in a protected room, offers the reactions, and
    /// remembers which notice it is.
    pub(super) async fn post_report(&mut self, report: &Listed, content: Option<&Value>) {
        let name = self.rooms.name(&report.room_id).0;
        let text = render(report, name.as_deref(), content);
        let Some(notice) = self.matrix.send_notice(&text).await else { return };
        for (key, _) in CHOICES {
            if let Err(e) = self.matrix.react(&notice, key).await {
                tracing::warn!("cannot offer {key} on report {}: {e:#}", report.id);
            }
        }
        let posted = Posted {
            id: report.id,
            room: report.room_id.clone(),
            event: report.event_id.clone(),
            sender: report.sender.clone(),
            reporter: report.reporter.clone(),
            reason: report.reason.clone(),
            text,
            handled: None,
        };
        self.report_notices.insert(notice.to_string(), posted);
        self.save_report_notices().await;
    }

    /// A reaction to a report notice, if `notice` is one: carries out what
    /// the key names and edits the notice. False when it is not a report.
    pub(super) async fn report_reaction(&mut self, moderator: &str, notice: &str, key: &str) -> bool {
        let Some(posted) = self.report_notices.get(notice).cloned() else { return false };
        let Some(choice) = Choice::of(key) else { return true };
        if let Some(handled) = &posted.handled {
            self.matrix.notify(&format!("Report {} was handled already ({handled}).", posted.id)).await;
            return true;
        }
        let origin = Origin::Moderator { user: moderator.to_owned(), command: format!("report {}", posted.id) };
        let reason = format!("reported: {}", posted.reason.as_deref().unwrap_or("no reason given"));
        let done = match (choice, posted.sender.as_deref()) {
            (Choice::Ignore, _) => "ignored".to_owned(),
            (Choice::Redact, _) => {
                let act = Act::Contract(gleipnir_runtime::Action::Redact(gleipnir_runtime::RedactEvent {
                    room_id: posted.room.clone(),
                    event_id: posted.event.clone(),
                    reason: reason.clone(),
                }));
                match self.act(&origin, act).await {
                    Outcome::Done(_) | Outcome::Unneeded => format!("redacted {}", posted.event),
                    other => format!("redacting {} did not happen: {}", posted.event, other.text()),
                }
            }
            (Choice::BanHere | Choice::BanEverywhere, None) => {
                self.matrix
                    .notify(&format!("Report {}: the reported sender is unknown; nobody banned.", posted.id))
                    .await;
                return true;
            }
            (Choice::BanHere, Some(sender)) => {
                let act = Act::Contract(gleipnir_runtime::Action::Ban(gleipnir_runtime::TargetUser {
                    room_id: posted.room.clone(),
                    user_id: sender.to_owned(),
                    reason: reason.clone(),
                }));
                match self.act(&origin, act).await {
                    Outcome::Done(_) | Outcome::Unneeded => format!("banned {sender} in {}", posted.room),
                    other => format!("banning {sender} did not happen: {}", other.text()),
                }
            }
            (Choice::BanEverywhere, Some(sender)) => {
                let plan = moderation::membership_plan(
                    &self.matrix,
                    &self.protected,
                    Verb::Ban,
                    sender,
                    None,
                    Some(reason.clone()),
                )
                .await;
                match plan {
                    Reply::Done(text) => format!("banning {sender} everywhere did not happen: {text}"),
                    Reply::Plan(mut plan) => {
                        plan.command = format!("report {}: ban {sender} everywhere", posted.id);
                        let rooms = plan.ops.len();
                        let said = self.carry_out(moderator, plan).await;
                        self.matrix.notify(&said).await;
                        // And in a list, so it holds wherever the list is watched: the
                        // one bans go to, or the one a moderator picks.
                        let command = format!("report {}: ban {sender} everywhere", posted.id);
                        let rule = self.propose_ban("every protected room", sender, moderator, &reason, &command).await;
                        format!("banned {sender} in every protected room ({rooms}){rule}")
                    }
                }
            }
        };
        let handled = format!("handled by {moderator}: {done}");
        if let Some(posted) = self.report_notices.get_mut(notice) {
            posted.handled = Some(handled.clone());
        }
        self.save_report_notices().await;
        let edited = format!("{}\n✔ {handled}", posted.text.lines().take(3).collect::<Vec<_>>().join("\n"));
        if let Err(e) = self.matrix.edit_notice(notice, &edited).await {
            tracing::warn!("cannot edit report notice {notice}: {e:#}");
            self.matrix.notify(&format!("Report {}: {handled}.", posted.id)).await;
        }
        true
    }

    async fn save_report_notices(&mut self) {
        match self.report_notices.save(&self.folders.data) {
            Ok(()) => {
                self.write_failures.remove("report notices");
            }
            Err(e) => self.write_failed("report notices", &format!("{e:#}")).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Listed {
        Listed {
            id: 7,
            room_id: "!r:x".into(),
            event_id: "$bad".into(),
            reporter: "@reporter:x".into(),
            sender: Some("@spammer:x".into()),
            reason: Some("spam\nand more".into()),
            score: Some(-100),
            received_ts: 1,
        }
    }

    #[test]
    fn a_report_notice_says_who_what_where_and_quotes_plain_text() {
        let content = serde_json::json!({"body": "<b>buy</b>   now\n\nplease", "format": "org.matrix.custom.html"});
        let text = render(&report(), Some("Lobby"), Some(&content));
        assert_eq!(
            text,
            "Report 7 by @reporter:x in Lobby (!r:x): “spam and more”, score -100\n\
             @spammer:x wrote ($bad):\n\
             > <b>buy</b> now please\n\
             React: 🗑️ redact it · 🔨 ban @spammer:x in this room · 🌍 ban @spammer:x in every protected room · 🙈 ignore"
        );
        let long = serde_json::json!({"body": "x".repeat(1000)});
        assert!(render(&report(), None, Some(&long)).contains(&format!("> {}…", "x".repeat(300))));
        assert!(render(&report(), None, None).contains("could not be read"));
    }

    #[test]
    fn reactions_name_choices_with_or_without_the_variation_selector() {
        assert_eq!(Choice::of("🗑️"), Some(Choice::Redact));
        assert_eq!(Choice::of("🗑"), Some(Choice::Redact));
        assert_eq!(Choice::of("🔨"), Some(Choice::BanHere));
        assert_eq!(Choice::of("👍"), None);
    }

    #[test]
    fn posted_reports_are_kept_across_a_restart_and_bounded() {
        let dir = std::env::temp_dir().join(format!("gleipnir-report-notices-{}", std::process::id()));
        let folder = Folder::create(&dir).unwrap();
        let mut notices = ReportNotices::default();
        let posted = |id| Posted {
            id,
            room: "!r:x".into(),
            event: format!("$e{id}"),
            sender: None,
            reporter: "@r:x".into(),
            reason: None,
            text: "t".into(),
            handled: None,
        };
        for id in 0..(KEPT as u64 + 5) {
            notices.insert(format!("$n{id}"), posted(id));
        }
        notices.get_mut("$n10").unwrap().handled = Some("handled by @m:x: ignored".into());
        notices.save(&folder).unwrap();
        let back = ReportNotices::load(&folder);
        assert!(back.get("$n0").is_none(), "the oldest are forgotten");
        assert_eq!(back.get("$n10").unwrap().handled.as_deref(), Some("handled by @m:x: ignored"));
        assert_eq!(back.order.len(), KEPT);
        let listed = |id: u64, event: &str, reporter: &str| Listed {
            id,
            room_id: "!r:x".into(),
            event_id: event.into(),
            reporter: reporter.into(),
            sender: None,
            reason: None,
            score: None,
            received_ts: 0,
        };
        assert!(back.has_report(&listed(10, "$other", "@r:x")), "by the homeserver's number");
        assert!(!back.has_report(&listed(0, "$e0", "@r:x")), "forgotten");
        // Forwarded first (no number), then read from the admin API: posted once.
        assert!(back.has_report(&listed(0, "$e20", "@r:x")) && back.has_report(&listed(77, "$e20", "@r:x")));
        assert!(!back.has_report(&listed(0, "$e20", "@someone-else:x")), "another member's report of it");
        folder.write_durably(FILE, b"{not json", false).unwrap();
        assert!(ReportNotices::load(&folder).get("$n10").is_none(), "a damaged file starts over");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
