//! The state of every room the bot is in, kept in `data_dir/room-state.log`
//! as the syncs brought it, so that a restart needs no full-state sync: it
//! takes the rooms' state as of the stored sync token from here and asks the
//! homeserver only for what changed since (a full-state sync of 1,000 rooms
//! took Synapse 5.4 s; see `docs/benchmarks.md`).
//!
//! One JSON object a line, appended after each sync is handled and before
//! its token is saved:
//! - `{"j": ROOM}`: the bot is in ROOM (every room a sync names);
//! - `{"r": ROOM, "e": EVENT}`: a state event of ROOM, in sync order (the
//!   state section, then the state events of the timeline);
//! - `{"l": ROOM}`: the bot left ROOM (its state is dropped);
//! - `{"x": ROOM}`: something in ROOM was redacted. A sync does not send a
//!   redacted state event again, so the kept state may hold content the
//!   homeserver no longer has (a policy rule withdrawn by redaction): the
//!   room's kept state is not used, and the start reads it again from the
//!   homeserver and appends it ([`RoomLog::refreshed`]);
//! - `{"t": TOKEN}`: everything above is the state as of TOKEN.
//!
//! Reading folds the lines up to the marker of the token the bot resumes
//! from; anything after it (a sync handled but whose token was never saved)
//! is left out, and a log without that marker (missing, damaged, cut short
//! by a crash of the machine) is not used at all: the bot then asks for a
//! full-state sync, as on a first start. A full-state sync rewrites the log;
//! it is compacted (rewritten as its fold) when it has grown to several
//! times what it holds.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::Write;

use gleipnir_runtime::Folder;

use super::ingest::Parts;

const FILE: &str = "room-state.log";

/// Appended bytes beyond which the log is compacted, whatever it holds.
const COMPACT_AFTER: u64 = 64 << 20;

/// Each joined room's state events, in the order they were seen (a later
/// event of the same type and state key in place of the earlier).
#[derive(Debug, Default)]
pub(crate) struct Rooms {
    pub(crate) rooms: HashMap<String, Vec<String>>,
    /// Per room, where in its events each (type, state key) is, by hash
    /// alone: the key is read from the event itself when the hashes meet
    /// (a 100,000-rule list's keys would otherwise be held twice).
    index: HashMap<String, hashbrown::HashTable<u32>>,
    hasher: std::hash::RandomState,
    /// Rooms with a redaction since their state was last read whole: their
    /// kept state is not to be trusted (the start reads it again).
    pub(crate) stale: HashSet<String>,
}

impl Rooms {
    fn joined(&mut self, room: &str) {
        if !self.rooms.contains_key(room) {
            self.rooms.insert(room.to_owned(), Vec::new());
            self.index.insert(room.to_owned(), hashbrown::HashTable::new());
        }
    }

    fn left(&mut self, room: &str) {
        self.rooms.remove(room);
        self.index.remove(room);
        self.stale.remove(room);
    }

    /// Takes in a state event of `room`; false when `json` is no state event.
    fn state(&mut self, room: &str, json: &str) -> bool {
        let Some(State { key, json }) = State::of(json) else { return false };
        self.joined(room);
        let (events, index) = (self.rooms.get_mut(room), self.index.get_mut(room));
        let (Some(events), Some(index)) = (events, index) else { return false };
        let hash_of = |kind: &str, key: &str| std::hash::BuildHasher::hash_one(&self.hasher, (kind, key));
        let hash = hash_of(&key.0, &key.1);
        let same = |at: &u32| State::key_of(&events[*at as usize]).is_some_and(|(k, s)| k == key.0 && s == key.1);
        match index.find(hash, same) {
            Some(&at) => events[at as usize] = json,
            None => {
                let Ok(at) = u32::try_from(events.len()) else { return false };
                let rehash = |at: &u32| State::key_of(&events[*at as usize]).map_or(0, |(k, s)| hash_of(&k, &s));
                index.insert_unique(hash, at, rehash);
                events.push(json);
            }
        }
        true
    }

    /// The log's lines for these rooms, then the marker of `token`.
    fn lines(&self, token: &str) -> String {
        let mut out = String::new();
        for (room, events) in &self.rooms {
            line(&mut out, &serde_json::json!({"j": room}));
            for json in events {
                state_line(&mut out, room, json);
            }
            if self.stale.contains(room) {
                line(&mut out, &serde_json::json!({"x": room}));
            }
        }
        line(&mut out, &serde_json::json!({"t": token}));
        out
    }

    fn len(&self) -> usize {
        self.rooms.values().map(|events| events.iter().map(|e| e.len() + 40).sum::<usize>()).sum()
    }
}

pub(crate) struct RoomLog {
    data: Folder,
    /// Bytes appended since the log was last written whole, and its size then.
    appended: u64,
    base: u64,
    /// Appending failed: nothing more is appended (the log would have a
    /// hole) until the next full-state sync rewrites it.
    broken: bool,
}

impl RoomLog {
    pub(crate) fn new(data: &Folder) -> RoomLog {
        RoomLog { data: data.clone(), appended: 0, base: 0, broken: true }
    }

    /// The rooms' state as of `token`, if the log holds it.
    pub(crate) fn load(&mut self, token: &str) -> Option<Rooms> {
        let file = match self.data.open_file(FILE) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!("cannot read {}: {e}; the first sync takes every room's whole state", self.shown());
                return None;
            }
        };
        // Read a line at a time: the file is never held whole beside its fold.
        let size = file.metadata().map_or(0, |m| m.len());
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(file));
        let Some(rooms) = fold(&mut lines, token) else {
            tracing::info!("{} does not reach the stored sync token; the first sync takes every room's state", FILE);
            return None;
        };
        let n = rooms.rooms.len();
        tracing::info!(
            "the state of {n} room(s) as of the stored sync token from {FILE}: the first sync asks for what changed"
        );
        self.broken = false;
        self.base = size;
        self.appended = 0;
        // What came after the token, or a log grown well past what it holds:
        // written again as it stands at the token.
        let held = rooms.len() as u64;
        if lines.next().is_some() || self.base > 3 * held + (1 << 20) {
            self.rewrite(&rooms, token);
        }
        Some(rooms)
    }

    /// Records a sync after it was handled, before its token is saved. A
    /// full-state sync (`full`) starts the log over.
    pub(crate) fn record(&mut self, parts: &Parts<'_>, token: &str, full: bool) {
        if full {
            let mut rooms = Rooms::default();
            for joined in &parts.joined {
                rooms.joined(joined.room);
                for json in joined.state.iter().chain(&joined.timeline) {
                    rooms.state(joined.room, json);
                }
            }
            self.rewrite(&rooms, token);
            return;
        }
        if self.broken {
            return;
        }
        let mut out = String::new();
        for joined in &parts.joined {
            line(&mut out, &serde_json::json!({"j": joined.room}));
            // Timeline events: only state (a quick look first: most are messages).
            let timeline = joined.timeline.iter().filter(|json| json.contains("\"state_key\""));
            for state in joined.state.iter().chain(timeline).filter_map(|json| State::of(json)) {
                state_line(&mut out, joined.room, &state.json);
            }
            if joined.timeline.iter().any(|json| is_redaction(json)) {
                line(&mut out, &serde_json::json!({"x": joined.room}));
            }
        }
        for left in &parts.left {
            line(&mut out, &serde_json::json!({"l": left.room}));
        }
        out.push_str(&marker(token));
        if !self.append(&out) {
            return;
        }
        if self.appended > COMPACT_AFTER.max(2 * self.base) {
            self.compact(token);
        }
    }

    /// A room's whole state as just read from the homeserver (it was
    /// stale): appended, to count from the next sync's marker on.
    pub(crate) fn refreshed(&mut self, room: &str, state: &[String]) {
        if self.broken {
            return;
        }
        let mut out = String::new();
        line(&mut out, &serde_json::json!({"l": room}));
        line(&mut out, &serde_json::json!({"j": room}));
        for state in state.iter().filter_map(|json| State::of(json)) {
            state_line(&mut out, room, &state.json);
        }
        self.append(&out);
    }

    /// Appends `out`; false when that failed. A hole in the log would make a
    /// restart take stale state: then nothing more is appended and the next
    /// start takes every room's state again.
    fn append(&mut self, out: &str) -> bool {
        match self.data.append(FILE).and_then(|mut file| file.write_all(out.as_bytes())) {
            Ok(()) => {
                self.appended += out.len() as u64;
                true
            }
            Err(e) => {
                tracing::warn!("cannot append to {}: {e}; the next start takes every room's state", self.shown());
                self.broken = true;
                let _ = self.data.remove(FILE);
                false
            }
        }
    }

    /// The log read back and written as its fold.
    fn compact(&mut self, token: &str) {
        let file = self.data.open_file(FILE);
        let rooms = file.ok().and_then(|file| {
            let mut lines = std::io::BufRead::lines(std::io::BufReader::new(file));
            fold(&mut lines, token)
        });
        match rooms {
            Some(rooms) => self.rewrite(&rooms, token),
            None => {
                tracing::warn!("{} could not be read back; the next start takes every room's state", self.shown());
                self.broken = true;
                let _ = self.data.remove(FILE);
            }
        }
    }

    fn rewrite(&mut self, rooms: &Rooms, token: &str) {
        let text = rooms.lines(token);
        match self.data.write_durably(FILE, text.as_bytes(), false) {
            Ok(()) => {
                self.broken = false;
                self.base = text.len() as u64;
                self.appended = 0;
            }
            Err(e) => {
                tracing::warn!("{e}; the next start takes every room's state");
                self.broken = true;
                let _ = self.data.remove(FILE);
            }
        }
    }

    fn shown(&self) -> String {
        self.data.shown(FILE).display().to_string()
    }
}

/// The rooms' state up to the marker of `token` (the lines after it are
/// left unread); `None` without that marker or with a damaged line before it.
fn fold(lines: &mut impl Iterator<Item = std::io::Result<String>>, token: &str) -> Option<Rooms> {
    #[derive(serde::Deserialize)]
    struct Line<'a> {
        #[serde(borrow)]
        j: Option<Cow<'a, str>>,
        #[serde(borrow)]
        r: Option<Cow<'a, str>>,
        #[serde(borrow)]
        e: Option<&'a serde_json::value::RawValue>,
        #[serde(borrow)]
        l: Option<Cow<'a, str>>,
        #[serde(borrow)]
        x: Option<Cow<'a, str>>,
        #[serde(borrow)]
        t: Option<Cow<'a, str>>,
    }
    let mut rooms = Rooms::default();
    for text in lines {
        let text = text.ok()?;
        let line: Line<'_> = serde_json::from_str(&text).ok()?;
        match line {
            Line { t: Some(t), .. } if t == token => return Some(rooms),
            Line { t: Some(_), .. } => {}
            Line { j: Some(room), .. } => rooms.joined(&room),
            Line { r: Some(room), e: Some(event), .. } => {
                if !rooms.state(&room, event.get()) {
                    return None;
                }
            }
            Line { l: Some(room), .. } => rooms.left(&room),
            Line { x: Some(room), .. } => {
                rooms.joined(&room);
                rooms.stale.insert(room.into_owned());
            }
            _ => return None,
        }
    }
    None
}

/// A state event as the log keeps it: its type, state key, sender and
/// content, all the bot reads of room state (no ids, timestamps or
/// `unsigned`, which made up most of an event), on one line.
struct State {
    key: (String, String),
    json: String,
}

impl State {
    /// `None` for anything but a state event with content.
    fn of(json: &str) -> Option<State> {
        #[derive(serde::Deserialize)]
        struct Event<'a> {
            #[serde(rename = "type")]
            kind: String,
            state_key: String,
            #[serde(default)]
            sender: String,
            #[serde(borrow)]
            content: &'a serde_json::value::RawValue,
        }
        let event: Event<'_> = serde_json::from_str(json).ok()?;
        let content = match event.content.get() {
            one_line if !one_line.contains('\n') => one_line.to_owned(),
            lines => serde_json::from_str::<serde_json::Value>(lines).ok()?.to_string(),
        };
        let text = |s: &str| serde_json::Value::from(s).to_string();
        let json = format!(
            "{{\"type\":{},\"state_key\":{},\"sender\":{},\"content\":{content}}}",
            text(&event.kind),
            text(&event.state_key),
            text(&event.sender)
        );
        Some(State { key: (event.kind, event.state_key), json })
    }

    /// The type and state key of an event as the log keeps it.
    fn key_of(json: &str) -> Option<(Cow<'_, str>, Cow<'_, str>)> {
        #[derive(serde::Deserialize)]
        struct Key<'a> {
            #[serde(rename = "type", borrow)]
            kind: Cow<'a, str>,
            #[serde(borrow)]
            state_key: Cow<'a, str>,
        }
        let key: Key<'_> = serde_json::from_str(json).ok()?;
        Some((key.kind, key.state_key))
    }
}

/// Whether a timeline event is a redaction (a quick look first: most are messages).
fn is_redaction(json: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        #[serde(rename = "type", borrow)]
        kind: Cow<'a, str>,
    }
    json.contains("m.room.redaction")
        && serde_json::from_str::<Head<'_>>(json).is_ok_and(|head| head.kind == "m.room.redaction")
}

fn marker(token: &str) -> String {
    let mut out = String::new();
    line(&mut out, &serde_json::json!({"t": token}));
    out
}

fn line(out: &mut String, value: &serde_json::Value) {
    out.push_str(&value.to_string());
    out.push('\n');
}

/// A state event's line (`json` as [`State`] wrote it: on one line).
fn state_line(out: &mut String, room: &str, json: &str) {
    let room = serde_json::Value::from(room).to_string();
    out.push_str(&format!("{{\"r\":{room},\"e\":{json}}}\n"));
}

#[cfg(test)]
mod tests;
