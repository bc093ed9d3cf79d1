//! Each joined room's whole state for the first start, which needs every
//! protected room's and every watched list's state once: the state kept
//! from the last run (read from `room_log` when it is used, an event at a
//! time), then what the first sync brought; on a first start (a full-state
//! sync), the first sync's state alone.

use std::collections::HashMap;
use std::io;

use super::room_log::Kept;

#[derive(Debug, Default)]
pub(crate) struct FirstState {
    rooms: HashMap<String, Source>,
}

/// One room's state for the first start.
#[derive(Debug, Default)]
pub(crate) struct Source {
    kept: Option<Kept>,
    synced: Vec<String>,
}

impl FirstState {
    /// A room's state kept from the last run.
    pub(crate) fn kept(&mut self, room: String, kept: Kept) {
        self.rooms.insert(room, Source { kept: Some(kept), synced: Vec::new() });
    }

    /// State events of the first sync, after what the room has.
    pub(crate) fn synced(&mut self, room: &str, events: Vec<String>) {
        self.rooms.entry(room.to_owned()).or_default().synced.extend(events);
    }

    /// A room's whole state as just read, in place of what it had.
    pub(crate) fn replace(&mut self, room: String, state: Vec<String>) {
        self.rooms.insert(room, Source { kept: None, synced: state });
    }

    pub(crate) fn remove(&mut self, room: &str) {
        self.rooms.remove(room);
    }

    pub(crate) fn contains(&self, room: &str) -> bool {
        self.rooms.contains_key(room)
    }

    pub(crate) fn take(&mut self, room: &str) -> Option<Source> {
        self.rooms.remove(room)
    }

    /// Once the first start is over: later the state would be stale.
    pub(crate) fn clear(&mut self) {
        self.rooms = HashMap::new();
    }
}

impl Source {
    /// The events, in order; a failed read of the kept state ends them with
    /// its error (the room's state is then to be read from the homeserver).
    pub(crate) fn events(&mut self) -> impl Iterator<Item = io::Result<String>> + '_ {
        let kept = self.kept.iter().flat_map(Kept::events);
        kept.chain(self.synced.iter_mut().map(|json| Ok(std::mem::take(json))))
    }
}
