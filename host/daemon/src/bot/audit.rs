//! The audit trail: every act the executor carries out, refuses or fails —
//! whoever decided it — as one JSON object per line in
//! `data_dir/audit.jsonl`, append-only, rotated by size (`audit.jsonl.1` …
//! `.3`, oldest dropped). Read back by `!gleipnir audit` and
//! `gleipnir audit`. A crash can leave the last line cut short: the reader
//! skips any line that is not a whole entry, and the writer starts its
//! first entry on a fresh line, so one torn line never hides the rest.

use std::io::Write;

use gleipnir_runtime::Folder;
use serde::{Deserialize, Serialize};

/// The current file, in the data folder.
pub(crate) const FILE: &str = "audit.jsonl";
/// Past this size the file is rotated.
const ROTATE_AT: u64 = 16 * 1024 * 1024;
/// How many rotated files are kept.
const KEEP: usize = 3;

/// One act and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// When, in ms since the Unix epoch.
    pub(crate) ts: u64,
    /// `protection`, `policy` or `moderator`.
    pub(crate) origin: String,
    /// The protection's name, `policy`, or the moderator's user id.
    pub(crate) by: String,
    /// The moderator's command, when a moderator decided it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) command: Option<String>,
    /// The kind of act: `ban`, `redact`, `set the server ACL`, …
    pub(crate) action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) room: Option<String>,
    /// The room's name or alias when the act was recorded, where it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) room_name: Option<String>,
    /// The user (or the event, for a redaction; the list entity, for a rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<String>,
    /// For a redaction: who sent the event, when the bot knew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sender: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    /// `done`, `unneeded`, `refused`, `unpermitted`, `unsupported`, `dry_run`, `notice`, `failed`.
    pub(crate) outcome: String,
    /// How it was done, or why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) detail: Option<String>,
}

pub(crate) struct Audit {
    data: Folder,
    open: Option<std::fs::File>,
    size: u64,
    /// A write failed and was said once; said again when one succeeds.
    failing: bool,
}

impl Audit {
    pub(crate) fn new(data: &Folder) -> Audit {
        Audit { data: data.clone(), open: None, size: 0, failing: false }
    }

    /// Appends `entry`; a failure is logged (once until writes work again),
    /// never stops the act it records.
    pub(crate) fn record(&mut self, entry: &Entry) {
        match self.write(entry) {
            Ok(()) if self.failing => {
                self.failing = false;
                tracing::info!("writing the audit trail works again");
            }
            Ok(()) => {}
            Err(e) => {
                self.open = None;
                if !self.failing {
                    self.failing = true;
                    tracing::warn!("cannot write the audit trail {}: {e}", self.data.shown(FILE).display());
                }
            }
        }
    }

    fn write(&mut self, entry: &Entry) -> std::io::Result<()> {
        if self.open.is_some() && self.size >= ROTATE_AT {
            self.open = None;
            self.rotate()?;
        }
        if self.open.is_none() {
            let file = self.data.append(FILE)?;
            self.size = file.metadata()?.len();
            // A crash may have cut the last entry short: start on a fresh line.
            if self.size > 0 && !self.ends_with_newline() {
                (&file).write_all(b"\n")?;
                self.size += 1;
            }
            self.open = Some(file);
        }
        let mut line = serde_json::to_string(entry).map_err(std::io::Error::other)?;
        line.push('\n');
        let file = self.open.as_mut().expect("opened above");
        // One write per entry: an entry is never interleaved with another.
        file.write_all(line.as_bytes())?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn ends_with_newline(&self) -> bool {
        self.data.read(FILE).map(|bytes| bytes.last() == Some(&b'\n')).unwrap_or(true)
    }

    /// `audit.jsonl` → `.1` → `.2` → `.3`; the oldest is dropped.
    fn rotate(&self) -> std::io::Result<()> {
        let _ = self.data.remove(&format!("{FILE}.{KEEP}"));
        for n in (1..KEEP).rev() {
            let from = format!("{FILE}.{n}");
            if self.data.exists(&from) {
                self.data.rename(&from, &format!("{FILE}.{}", n + 1))?;
            }
        }
        self.data.rename(FILE, &format!("{FILE}.1"))
    }
}

/// Every entry kept, oldest first, and how many lines were not entries
/// (cut short by a crash, or written by something else).
pub(crate) fn read(data: &Folder) -> (Vec<Entry>, usize) {
    let mut entries = Vec::new();
    let mut skipped = 0;
    let files = (1..=KEEP).rev().map(|n| format!("{FILE}.{n}")).chain([FILE.to_owned()]);
    for name in files {
        let Ok(bytes) = data.read(&name) else { continue };
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            match serde_json::from_slice::<Entry>(line) {
                Ok(entry) => entries.push(entry),
                Err(_) => skipped += 1,
            }
        }
    }
    (entries, skipped)
}

/// What to look for.
#[derive(Debug, Default, Clone)]
pub(crate) struct Filter {
    /// Entries about this user, room or event, or decided by this user or
    /// protection (any of `by`, `room`, `target`, `sender`).
    pub(crate) about: Option<String>,
    /// Entries at or after this time (ms).
    pub(crate) since: Option<u64>,
}

impl Filter {
    pub(crate) fn matches(&self, e: &Entry) -> bool {
        let about = self.about.as_deref().is_none_or(|a| {
            e.by == a
                || e.room.as_deref() == Some(a)
                || e.target.as_deref() == Some(a)
                || e.sender.as_deref() == Some(a)
        });
        about && self.since.is_none_or(|s| e.ts >= s)
    }
}

/// The newest `limit` entries that match, newest first.
pub(crate) fn query(entries: &[Entry], filter: &Filter, limit: usize) -> Vec<Entry> {
    entries.iter().rev().filter(|e| filter.matches(e)).take(limit).cloned().collect()
}

/// `2026-12-04 16:50:01 UTC` for ms since the epoch.
pub(crate) fn when(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{d:02} {h:02}:{m:02}:{s:02} UTC")
}

/// One entry as a line a moderator reads.
pub(crate) fn sentence(e: &Entry) -> String {
    let who = match &e.command {
        Some(command) => format!("{} (`{command}`)", e.by),
        None => e.by.clone(),
    };
    let mut what = e.action.clone();
    if let Some(target) = &e.target {
        what.push_str(&format!(" {target}"));
    }
    if let Some(sender) = &e.sender {
        what.push_str(&format!(" (sent by {sender})"));
    }
    match (&e.room, &e.room_name) {
        (Some(room), Some(name)) => what.push_str(&format!(" in {name} ({room})")),
        (Some(room), None) => what.push_str(&format!(" in {room}")),
        _ => {}
    }
    let reason = e.reason.as_deref().filter(|r| !r.is_empty()).map_or(String::new(), |r| format!(" “{r}”"));
    let detail = e.detail.as_deref().map_or(String::new(), |d| format!(": {d}"));
    format!("{} {who}: {what}{reason} → {}{detail}", when(e.ts), e.outcome.replace('_', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ts: u64, by: &str, target: &str) -> Entry {
        Entry {
            ts,
            origin: "protection".into(),
            by: by.into(),
            command: None,
            action: "ban".into(),
            room: Some("!r:x".into()),
            room_name: None,
            target: Some(target.into()),
            sender: None,
            reason: Some("flooding".into()),
            outcome: "done".into(),
            detail: None,
        }
    }

    fn folder() -> (Folder, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("gleipnir-audit-{}-{}", std::process::id(), rand_suffix()));
        (Folder::create(&dir).unwrap(), dir)
    }

    fn rand_suffix() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        N.fetch_add(1, Ordering::Relaxed)
    }

    #[test]
    fn entries_read_back_and_a_torn_line_hides_nothing_after_it() {
        let (data, dir) = folder();
        let mut audit = Audit::new(&data);
        audit.record(&entry(1, "flooding", "@a:x"));
        drop(audit);
        // A crash in the middle of the next entry.
        let mut torn = data.append(FILE).unwrap();
        torn.write_all(br#"{"ts":2,"origin":"protection","by":"flo"#).unwrap();
        drop(torn);
        let mut audit = Audit::new(&data);
        audit.record(&entry(3, "policy", "@b:x"));
        let (entries, skipped) = read(&data);
        assert_eq!(entries, [entry(1, "flooding", "@a:x"), entry(3, "policy", "@b:x")]);
        assert_eq!(skipped, 1, "the torn line, and only it");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_file_is_rotated_by_size_and_read_across_rotations() {
        let (data, dir) = folder();
        let mut audit = Audit::new(&data);
        audit.record(&entry(1, "flooding", "@a:x"));
        audit.size = ROTATE_AT;
        audit.record(&entry(2, "flooding", "@b:x"));
        assert!(data.exists(&format!("{FILE}.1")));
        let (entries, _) = read(&data);
        assert_eq!(entries.iter().map(|e| e.ts).collect::<Vec<_>>(), [1, 2], "oldest first, across files");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn queries_filter_by_who_what_and_when_newest_first() {
        let entries = vec![entry(1, "flooding", "@a:x"), entry(2, "policy", "@b:x"), entry(3, "flooding", "@a:x")];
        let about = |a: &str| Filter { about: Some(a.into()), since: None };
        assert_eq!(query(&entries, &about("@a:x"), 10).iter().map(|e| e.ts).collect::<Vec<_>>(), [3, 1]);
        assert_eq!(query(&entries, &about("policy"), 10).len(), 1);
        assert_eq!(query(&entries, &about("!r:x"), 2).iter().map(|e| e.ts).collect::<Vec<_>>(), [3, 2]);
        assert_eq!(query(&entries, &Filter { about: None, since: Some(2) }, 10).len(), 2);
        assert_eq!(when(1_764_867_001_000), "2025-12-04 16:50:01 UTC");
        assert_eq!(when(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            sentence(&entry(0, "flooding", "@a:x")),
            "1970-01-01 00:00:00 UTC flooding: ban @a:x in !r:x “flooding” → done"
        );
        let named = Entry { room_name: Some("Lobby".into()), ..entry(0, "flooding", "@a:x") };
        assert!(sentence(&named).contains("ban @a:x in Lobby (!r:x)"));
    }
}
