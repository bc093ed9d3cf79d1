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
use std::fs::File;
use std::io::{self, BufRead as _, Write};
use std::sync::Arc;

use gleipnir_runtime::Folder;

use super::ingest::{Parts, state_key_of};

const FILE: &str = "room-state.log";

/// Appended bytes beyond which the log is compacted, whatever it holds.
const COMPACT_AFTER: u64 = 64 << 20;

/// The rooms' state as of a token, as the log holds it: where each joined
/// room's state events are in the log (one per type and state key, the
/// latest), in the order they were first seen. The events themselves are
/// read from the log when they are used, a room at a time and an event at
/// a time: a 100,000-rule list is never held whole (it was 31.6 MB of log).
#[derive(Debug)]
pub(crate) struct Rooms {
    rooms: HashMap<String, Vec<Span>>,
    /// Rooms with a redaction since their state was last read whole: their
    /// kept state is not to be trusted (the start reads it again).
    stale: HashSet<String>,
    /// The log as it was read: its events stay readable through this handle
    /// when the log is written anew (the new file replaces the name only).
    file: Arc<File>,
}

/// Where a kept state event is in the log: its bytes from `at`.
#[derive(Debug, Clone, Copy)]
struct Span {
    at: u64,
    len: u32,
}

impl Rooms {
    /// The joined rooms.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.rooms.keys().map(String::as_str)
    }

    /// The rooms whose kept state is stale, taken out.
    pub(crate) fn take_stale(&mut self) -> Vec<String> {
        let stale: Vec<String> = self.stale.drain().collect();
        for room in &stale {
            self.rooms.remove(room);
        }
        stale
    }

    /// Each room's kept state, to be read.
    pub(crate) fn into_rooms(self) -> impl Iterator<Item = (String, Kept)> {
        let file = self.file;
        self.rooms.into_iter().map(move |(room, spans)| (room, Kept { file: file.clone(), spans }))
    }

    /// About what the state takes on a line each.
    fn held(&self) -> u64 {
        self.rooms.values().flatten().map(|span| u64::from(span.len) + 40).sum()
    }

    /// Writes the log's lines for these rooms, then the marker of `token`;
    /// the bytes written.
    fn write(&self, out: &mut dyn Write, token: &str) -> io::Result<u64> {
        let mut written = 0;
        let mut put = |out: &mut dyn Write, text: &str| {
            written += text.len() as u64;
            out.write_all(text.as_bytes())
        };
        let mut read = Reader::new(&self.file);
        for (room, spans) in &self.rooms {
            put(out, &line(&serde_json::json!({"j": room})))?;
            for span in spans {
                put(out, &state_line(room, read.event(*span)?))?;
            }
            if self.stale.contains(room) {
                put(out, &line(&serde_json::json!({"x": room})))?;
            }
        }
        put(out, &marker(token))?;
        Ok(written)
    }
}

/// One room's kept state events, read from the log when asked for.
#[derive(Debug)]
pub(crate) struct Kept {
    file: Arc<File>,
    spans: Vec<Span>,
}

impl Kept {
    /// The events, in order, read from the log one at a time (a failed read
    /// ends them with its error).
    pub(crate) fn events(&self) -> Events<'_> {
        Events { reader: Reader::new(&self.file), spans: self.spans.iter() }
    }
}

pub(crate) struct Events<'a> {
    reader: Reader<'a>,
    spans: std::slice::Iter<'a, Span>,
}

impl Iterator for Events<'_> {
    type Item = io::Result<String>;

    fn next(&mut self) -> Option<io::Result<String>> {
        let span = *self.spans.next()?;
        Some(self.reader.event(span).map(str::to_owned))
    }
}

/// Reads events from the log by where they are, a window of the file at a
/// time: a room's events mostly lie one after the other.
struct Reader<'a> {
    file: &'a File,
    window: Vec<u8>,
    at: u64,
}

impl<'a> Reader<'a> {
    const WINDOW: usize = 64 << 10;

    fn new(file: &'a File) -> Reader<'a> {
        Reader { file, window: Vec::new(), at: 0 }
    }

    fn event(&mut self, span: Span) -> io::Result<&str> {
        let len = span.len as usize;
        let inside = span.at >= self.at && span.at + len as u64 <= self.at + self.window.len() as u64;
        if !inside {
            self.window.resize(len.max(Self::WINDOW), 0);
            let read = read_at(self.file, &mut self.window, span.at)?;
            self.window.truncate(read);
            self.at = span.at;
            if read < len {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the room state log was cut short"));
            }
        }
        let from = (span.at - self.at) as usize;
        std::str::from_utf8(&self.window[from..from + len]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

/// Reads into `buf` from `at`, until it is full or the file ends; how much was read.
fn read_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(file, &mut buf[done..], at + done as u64);
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_read(file, &mut buf[done..], at + done as u64);
        match n {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
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
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!("cannot read {}: {e}; the first sync takes every room's whole state", self.shown());
                return None;
            }
        };
        let size = file.metadata().map_or(0, |m| m.len());
        let Some(Folded { rooms, end }) = fold(file, token) else {
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
        if end < size || self.base > 3 * rooms.held() + (1 << 20) {
            self.rewrite(&rooms, token);
        }
        Some(rooms)
    }

    /// Records a sync after it was handled, before its token is saved. A
    /// full-state sync (`full`) starts the log over.
    pub(crate) fn record(&mut self, parts: &Parts<'_>, token: &str, full: bool) {
        if full {
            // Every room's state in sync order: a later event of a type and
            // state key replaces an earlier one when the log is read.
            let write = |out: &mut dyn Write| {
                let mut written = 0;
                for joined in &parts.joined {
                    let mut text = line(&serde_json::json!({"j": joined.room}));
                    for state in joined.state.iter().chain(&joined.timeline).filter_map(|json| kept(json)) {
                        text.push_str(&state_line(joined.room, &state));
                    }
                    out.write_all(text.as_bytes())?;
                    written += text.len() as u64;
                }
                let text = marker(token);
                out.write_all(text.as_bytes())?;
                Ok(written + text.len() as u64)
            };
            self.written(self.data.write_durably_with(FILE, false, write));
            return;
        }
        if self.broken {
            return;
        }
        let mut out = String::new();
        for joined in &parts.joined {
            out.push_str(&line(&serde_json::json!({"j": joined.room})));
            // Timeline events: only state (a quick look first: most are messages).
            let timeline = joined.timeline.iter().filter(|json| json.contains("\"state_key\""));
            for state in joined.state.iter().chain(timeline).filter_map(|json| kept(json)) {
                out.push_str(&state_line(joined.room, &state));
            }
            if joined.timeline.iter().any(|json| is_redaction(json)) {
                out.push_str(&line(&serde_json::json!({"x": joined.room})));
            }
        }
        for left in &parts.left {
            out.push_str(&line(&serde_json::json!({"l": left.room})));
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
        let mut out = line(&serde_json::json!({"l": room}));
        out.push_str(&line(&serde_json::json!({"j": room})));
        for state in state.iter().filter_map(|json| kept(json)) {
            out.push_str(&state_line(room, &state));
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
        match self.data.open_file(FILE).ok().and_then(|file| fold(file, token)) {
            Some(Folded { rooms, .. }) => self.rewrite(&rooms, token),
            None => {
                tracing::warn!("{} could not be read back; the next start takes every room's state", self.shown());
                self.broken = true;
                let _ = self.data.remove(FILE);
            }
        }
    }

    fn rewrite(&mut self, rooms: &Rooms, token: &str) {
        self.written(self.data.write_durably_with(FILE, false, |out| rooms.write(out, token)));
    }

    /// After the log was written whole (`size` bytes).
    fn written(&mut self, size: io::Result<u64>) {
        match size {
            Ok(size) => {
                self.broken = false;
                self.base = size;
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

/// The log folded up to the marker of a token, and where that marker ends.
struct Folded {
    rooms: Rooms,
    end: u64,
}

/// The rooms' state in `file` up to the marker of `token` (the lines after
/// it are left unread); `None` without that marker, with a damaged line
/// before it, or when the file cannot be read.
fn fold(file: File, token: &str) -> Option<Folded> {
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
    /// A room's events as folded so far, and where each (type, state key)
    /// is among them: by hash, the key itself read back from the log when
    /// the hashes meet (a 100,000-rule list's keys are never held).
    #[derive(Default)]
    struct Room {
        spans: Vec<Span>,
        index: hashbrown::HashTable<(u64, u32)>,
    }
    let file = Arc::new(file);
    let mut lines = io::BufReader::with_capacity(64 << 10, &*file);
    let mut keys = Reader::new(&file);
    let hasher = std::hash::RandomState::new();
    // Looked up by `&str`: a room's id is not allocated again for each line.
    let mut rooms: hashbrown::HashMap<String, Room, _> = hashbrown::HashMap::with_hasher(std::hash::RandomState::new());
    let mut stale = HashSet::new();
    let (mut text, mut at) = (String::new(), 0u64);
    loop {
        text.clear();
        let read = lines.read_line(&mut text).ok()?;
        if read == 0 {
            return None;
        }
        let start = at;
        at += read as u64;
        let line: Line<'_> = serde_json::from_str(&text).ok()?;
        match line {
            Line { t: Some(t), .. } if t == token => break,
            Line { t: Some(_), .. } => {}
            Line { j: Some(room), .. } => {
                rooms.entry_ref(&*room).or_default();
            }
            Line { r: Some(room), e: Some(event), .. } => {
                let json = event.get();
                let (kind, key) = state_key_of(json)?;
                let span = Span {
                    at: start + (json.as_ptr() as usize - text.as_ptr() as usize) as u64,
                    len: u32::try_from(json.len()).ok()?,
                };
                let Room { spans, index } = rooms.entry_ref(&*room).or_default();
                let hash = std::hash::BuildHasher::hash_one(&hasher, (&kind, &key));
                // The same hash: the same key unless what is there says otherwise.
                let mut unreadable = false;
                let same = |&(h, i): &(u64, u32)| {
                    h == hash
                        && match keys.event(spans[i as usize]) {
                            Ok(there) => state_key_of(there).is_some_and(|(k, s)| k == kind && s == key),
                            Err(_) => {
                                unreadable = true;
                                false
                            }
                        }
                };
                match index.find(hash, same) {
                    Some(&(_, i)) => spans[i as usize] = span,
                    None => {
                        let i = u32::try_from(spans.len()).ok()?;
                        index.insert_unique(hash, (hash, i), |&(h, _)| h);
                        spans.push(span);
                    }
                }
                if unreadable {
                    return None;
                }
            }
            Line { l: Some(room), .. } => {
                rooms.remove(&*room);
                stale.remove(&*room);
            }
            Line { x: Some(room), .. } => {
                let room = room.into_owned();
                rooms.entry(room.clone()).or_default();
                stale.insert(room);
            }
            _ => return None,
        }
    }
    drop((lines, keys));
    let rooms = rooms
        .into_iter()
        .map(|(room, Room { mut spans, .. })| {
            spans.shrink_to_fit();
            (room, spans)
        })
        .collect();
    Some(Folded { rooms: Rooms { rooms, stale, file }, end: at })
}

/// A state event as the log keeps it: its type, state key, sender and
/// content, all the bot reads of room state (no ids, timestamps or
/// `unsigned`, which made up most of an event), on one line. `None` for
/// anything but a state event with content.
fn kept(json: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Event<'a> {
        #[serde(rename = "type", borrow)]
        kind: Cow<'a, str>,
        #[serde(borrow)]
        state_key: Cow<'a, str>,
        #[serde(default, borrow)]
        sender: Cow<'a, str>,
        #[serde(borrow)]
        content: &'a serde_json::value::RawValue,
    }
    let event: Event<'_> = serde_json::from_str(json).ok()?;
    let content = match event.content.get() {
        one_line if !one_line.contains('\n') => one_line.to_owned(),
        lines => serde_json::from_str::<serde_json::Value>(lines).ok()?.to_string(),
    };
    let text = |s: &str| serde_json::Value::from(s).to_string();
    Some(format!(
        "{{\"type\":{},\"state_key\":{},\"sender\":{},\"content\":{content}}}",
        text(&event.kind),
        text(&event.state_key),
        text(&event.sender)
    ))
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
    line(&serde_json::json!({"t": token}))
}

fn line(value: &serde_json::Value) -> String {
    let mut out = value.to_string();
    out.push('\n');
    out
}

/// A state event's line (`json` as [`kept`] wrote it: on one line).
fn state_line(room: &str, json: &str) -> String {
    let room = serde_json::Value::from(room).to_string();
    format!("{{\"r\":{room},\"e\":{json}}}\n")
}

#[cfg(test)]
mod tests;
