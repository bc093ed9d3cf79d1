//! Protected spaces. `rooms add #space:server` protects the space and the
//! rooms in it, found through the hierarchy API down to `[rooms]
//! space_depth` levels, and follows it: a room added to the space (an
//! `m.space.child` with servers in its `via`) is joined and protected, a
//! room removed from it (its `via` emptied) stops being protected when it
//! was protected because of the space. Spaces inside it are followed the
//! same way, within the depth.
//!
//! What came from which space is kept in the bot's account data
//! (`org.gleipnir.protected_spaces`: the spaces moderators added, each
//! room's parent space, and the rooms moderators took out with `rooms
//! remove`, which a space does not bring back). Every start reads each
//! protected room's state, `m.space.child` events included, so a change made
//! while the bot was stopped is followed at the next start.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write;

use serde_json::{Value, json};

use super::Bot;
use crate::state::{EXCLUDED_FROM_SPACES, Kind, PROTECTED_SPACES, Path, Problem, Recovery, check_room_id};

/// The longest parent chain followed (a loop in stored data ends there).
const MAX_CHAIN: usize = 16;

/// Pages of the hierarchy API read for one space (50 rooms each).
const MAX_PAGES: usize = 40;

/// Which protected rooms came from which space.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Spaces {
    /// The spaces moderators added with `rooms add`.
    pub(crate) top: BTreeSet<String>,
    /// Each room (or space inside a space) protected because it is in a
    /// followed space: the space it was found in.
    pub(crate) parent: BTreeMap<String, String>,
    /// Rooms of followed spaces that moderators stopped protecting.
    pub(crate) excluded: BTreeSet<String>,
}

/// An `m.space.child` state event seen in a protected room.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChildEvent {
    pub(crate) space: String,
    pub(crate) child: String,
    /// Servers to join through; empty when the child was removed.
    pub(crate) via: Vec<String>,
}

impl ChildEvent {
    /// From an `m.space.child` event's state key and content (`None` when
    /// the state key is no room id).
    pub(crate) fn of(space: &str, child: &str, content: &str) -> Option<ChildEvent> {
        check_room_id(child).ok()?;
        let content = serde_json::from_str::<Value>(content).unwrap_or_default();
        // A child whose `via` is absent, empty or not a list is no longer in the space.
        let via = content
            .get("via")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        Some(ChildEvent { space: space.to_owned(), child: child.to_owned(), via })
    }
}

/// What a change to a followed space asks of the bot.
#[derive(Debug, PartialEq)]
pub(crate) enum Change {
    /// Join and protect `child`, found in `parent`.
    Protect {
        child: String,
        parent: String,
        via: Vec<String>,
    },
    /// Stop protecting these rooms (a room taken out of a space, and the
    /// rooms that came from it when it is a space itself).
    Stop {
        rooms: Vec<String>,
    },
    Nothing,
}

impl Spaces {
    /// From the stored content; a problem for each part that cannot be read.
    /// Absent content is no spaces.
    pub(crate) fn read(content: Option<&Value>) -> (Spaces, Vec<Problem>) {
        let Some(stored) = content else { return (Spaces::default(), Vec::new()) };
        let (top, mut problems) = PROTECTED_SPACES.read(content);
        let mut spaces = Spaces { top: top.into_iter().map(|(_, room)| room).collect(), ..Spaces::default() };
        if stored.get("excluded").is_some() {
            let (excluded, bad) = EXCLUDED_FROM_SPACES.read(content);
            spaces.excluded = excluded.into_iter().map(|(_, room)| room).collect();
            problems.extend(bad);
        }
        match stored.get("rooms") {
            None => {}
            Some(Value::Object(rooms)) => {
                for (room, parent) in rooms {
                    match parent.as_str().filter(|p| check_room_id(room).is_ok() && check_room_id(p).is_ok()) {
                        Some(parent) => {
                            spaces.parent.insert(room.clone(), parent.to_owned());
                        }
                        None => problems.push(Problem {
                            store: PROTECTED_SPACES.key,
                            path: Path::default().key("rooms").key(room),
                            kind: Kind::Parse,
                            message: format!("`{room}`: {parent} is not a room id's space"),
                            options: vec![Recovery::Remove {
                                store: PROTECTED_SPACES.key,
                                path: Path::default().key("rooms").key(room),
                                value: parent.clone(),
                            }],
                        }),
                    }
                }
            }
            Some(other) => problems.push(Problem {
                store: PROTECTED_SPACES.key,
                path: Path::default().key("rooms"),
                kind: Kind::Parse,
                message: format!("`rooms` is {}, not an object", gleipnir_runtime::event::type_name(other)),
                options: vec![Recovery::Reset {
                    store: PROTECTED_SPACES.key,
                    current: Some(stored.clone()),
                    default: Spaces::default().content(),
                }],
            }),
        }
        (spaces, problems)
    }

    /// The content to store.
    pub(crate) fn content(&self) -> Value {
        json!({"spaces": self.top, "rooms": self.parent, "excluded": self.excluded})
    }

    /// How deep in a followed space `room` is: 0 for a space moderators
    /// added, 1 for a room in it, …; `None` when it is in none.
    pub(crate) fn depth(&self, room: &str) -> Option<u32> {
        let mut at = room;
        for depth in 0..MAX_CHAIN {
            if self.top.contains(at) {
                return Some(depth as u32);
            }
            at = self.parent.get(at)?;
        }
        None
    }

    /// The space moderators added that `room` came from.
    pub(crate) fn top_of(&self, room: &str) -> Option<&str> {
        let mut at = room;
        for _ in 0..MAX_CHAIN {
            if self.top.contains(at) {
                return Some(self.top.get(at)?.as_str());
            }
            at = self.parent.get(at)?;
        }
        None
    }

    /// `room` and every room that came from it, through spaces inside it
    /// (the room itself first).
    pub(crate) fn subtree(&self, room: &str) -> Vec<String> {
        let mut out = vec![room.to_owned()];
        let mut at = 0;
        while at < out.len() {
            let space = out[at].clone();
            let children: Vec<String> = self
                .parent
                .iter()
                .filter(|(child, p)| **p == space && !out.contains(child))
                .map(|(c, _)| c.clone())
                .collect();
            out.extend(children);
            at += 1;
        }
        out
    }

    /// What an `m.space.child` event asks, with spaces followed `max_depth`
    /// levels deep. `protected` tells whether a room is protected now.
    pub(crate) fn change(&self, event: &ChildEvent, max_depth: u32, protected: impl Fn(&str) -> bool) -> Change {
        let ChildEvent { space, child, via } = event;
        let Some(depth) = self.depth(space) else { return Change::Nothing };
        if via.is_empty() {
            return match self.parent.get(child) {
                Some(parent) if parent == space => Change::Stop { rooms: self.subtree(child) },
                _ => Change::Nothing,
            };
        }
        if depth >= max_depth || child == space || self.top.contains(child) || self.excluded.contains(child) {
            return Change::Nothing;
        }
        if protected(child) {
            return Change::Nothing;
        }
        Change::Protect { child: child.clone(), parent: space.clone(), via: via.clone() }
    }

    /// Forgets that these rooms came from a space.
    pub(crate) fn forget(&mut self, rooms: &[String]) {
        for room in rooms {
            self.parent.remove(room);
        }
    }
}

/// One room of a hierarchy API answer: its id, name and children.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Chunk {
    pub(crate) room: String,
    pub(crate) children: Vec<ChildEvent>,
}

/// The rooms under `top` in a hierarchy API answer, breadth first, no
/// deeper than `max_depth`: each with the space it is in and the servers to
/// join through. A child the answer does not describe (the homeserver does
/// not show the bot rooms it cannot see into) is still listed: the bot may
/// be able to join it.
pub(crate) fn tree(top: &str, chunks: &[Chunk], max_depth: u32) -> Vec<ChildEvent> {
    let by_room: BTreeMap<&str, &Chunk> = chunks.iter().map(|c| (c.room.as_str(), c)).collect();
    let mut seen = BTreeSet::from([top.to_owned()]);
    let mut queue = VecDeque::from([(top.to_owned(), 0u32)]);
    let mut found = Vec::new();
    while let Some((space, depth)) = queue.pop_front() {
        if depth >= max_depth {
            continue;
        }
        let Some(chunk) = by_room.get(space.as_str()) else { continue };
        for child in &chunk.children {
            if child.via.is_empty() || !seen.insert(child.child.clone()) {
                continue;
            }
            found.push(ChildEvent { space: space.clone(), ..child.clone() });
            queue.push_back((child.child.clone(), depth + 1));
        }
    }
    found
}

impl Bot {
    /// Saves which rooms came from which space.
    pub(crate) async fn save_spaces(&self) -> anyhow::Result<()> {
        self.matrix.set_account(PROTECTED_SPACES.key, self.session.spaces.content()).await
    }

    /// Reads the rooms in `space` through the hierarchy API.
    async fn hierarchy(&self, space: &str) -> anyhow::Result<Vec<Chunk>> {
        use matrix_sdk::ruma::api::client::space::get_hierarchy;
        let id = matrix_sdk::ruma::OwnedRoomId::try_from(space)?;
        let mut chunks = Vec::new();
        let mut from = None;
        for _ in 0..MAX_PAGES {
            let mut request = get_hierarchy::v1::Request::new(id.clone());
            request.from = from.take();
            request.limit = Some(50u32.into());
            request.max_depth = Some(self.config.space_depth.into());
            let response = self.matrix.client.send(request).await?;
            for room in response.rooms {
                let room_id = room.summary.room_id.to_string();
                let children = room
                    .children_state
                    .iter()
                    .filter_map(|raw| {
                        let event: Value = serde_json::from_str(raw.json().get()).ok()?;
                        let content = event.get("content").map(Value::to_string).unwrap_or_default();
                        ChildEvent::of(&room_id, event["state_key"].as_str()?, &content)
                    })
                    .collect();
                chunks.push(Chunk { room: room_id, children });
            }
            match response.next_batch {
                Some(next) => from = Some(next),
                None => break,
            }
        }
        Ok(chunks)
    }

    /// `rooms add` found `space` to be a space: it is followed from now on,
    /// and the rooms in it are protected. What happened, for the reply.
    pub(crate) async fn follow_space(&mut self, space: &str) -> String {
        self.session.spaces.top.insert(space.to_owned());
        self.session.spaces.parent.remove(space);
        let mut out = String::new();
        match self.hierarchy(space).await {
            Ok(chunks) => {
                let found = tree(space, &chunks, self.config.space_depth);
                let (mut added, mut failed) = (Vec::new(), Vec::new());
                for child in &found {
                    let event = ChildEvent { space: child.space.clone(), ..child.clone() };
                    match self.session.spaces.change(&event, self.config.space_depth, |r| self.protected.contains(r)) {
                        Change::Protect { child, parent, via } => match self.protect_child(&child, &parent, &via).await
                        {
                            Ok(Some(name)) => added.push(name),
                            Ok(None) => {}
                            Err(why) => failed.push(why),
                        },
                        Change::Stop { .. } | Change::Nothing => {}
                    }
                }
                // The space's own `m.space.child` state, read when it was
                // protected, has been followed by now.
                self.session.space_changes.retain(|c| c.space != space && !found.iter().any(|f| f.space == c.space));
                let depth = self.config.space_depth;
                let _ = write!(
                    out,
                    " It is a space: I follow it ({depth} level{} deep)",
                    if depth == 1 { "" } else { "s" }
                );
                if added.is_empty() {
                    out.push_str("; no rooms in it to protect yet.");
                } else {
                    let _ = write!(out, " and now protect the {} room(s) in it: {}.", added.len(), added.join(", "));
                }
                if !failed.is_empty() {
                    let _ = write!(out, " Not protected: {}.", failed.join("; "));
                }
            }
            Err(e) => {
                let _ = write!(
                    out,
                    " It is a space, but I could not list its rooms ({e:#}); rooms added to it from now on are \
                     protected, and the ones in it now at the next start."
                );
            }
        }
        if let Err(e) = self.save_spaces().await {
            let _ = write!(out, " Saving the spaces failed ({e:#}): after a restart I will not follow it.");
        }
        out
    }

    /// Joins and protects a room found in a followed space. Its name when
    /// it was protected now, `None` when it is not for a space to protect
    /// (the management room, a policy list, protected already), the reason
    /// when it could not be.
    async fn protect_child(&mut self, child: &str, parent: &str, via: &[String]) -> Result<Option<String>, String> {
        if child == self.matrix.management.as_str()
            || self.session.policy.is_list(child)
            || self.protected.contains(child)
        {
            return Ok(None);
        }
        let id = match self.matrix.join_via(child, via).await {
            Ok(id) => id.to_string(),
            Err(e) => return Err(format!("{child}: {e:#}")),
        };
        match self.protect_joined(&id).await {
            Ok(Some(about)) => {
                self.session.spaces.parent.insert(id.clone(), parent.to_owned());
                let missing = self.missing_power(&id);
                let mut name = about.name(&id);
                if about.encrypted {
                    name.push_str(" (encrypted: messages unreadable)");
                }
                if !missing.is_empty() {
                    let _ = write!(name, " (cannot: {})", missing.join(", "));
                }
                Ok(Some(name))
            }
            Ok(None) => Ok(None),
            Err(why) => Err(format!("{child}: {why}")),
        }
    }

    /// Carries out the `m.space.child` changes seen (in a sync, or in the
    /// state of a room protected now or at start), each said in the
    /// management room. A space protected now brings its own children, so
    /// this runs until nothing is left.
    pub(crate) async fn follow_space_changes(&mut self) {
        let mut changed = false;
        for _ in 0..MAX_CHAIN {
            let events = std::mem::take(&mut self.session.space_changes);
            if events.is_empty() {
                break;
            }
            for event in events {
                let change =
                    self.session.spaces.change(&event, self.config.space_depth, |r| self.protected.contains(r));
                let space = self.room_name(&event.space);
                match change {
                    Change::Nothing => {}
                    Change::Protect { child, parent, via } => {
                        changed = true;
                        let text = match self.protect_child(&child, &parent, &via).await {
                            Ok(Some(name)) => format!("{child} was added to the space {space}: now protecting {name}."),
                            Ok(None) => continue,
                            Err(why) => {
                                format!("A room was added to the space {space}, but I could not protect it: {why}.")
                            }
                        };
                        self.matrix.notify(&text).await;
                    }
                    Change::Stop { rooms } => {
                        changed = true;
                        let names: Vec<String> = rooms.iter().map(|r| self.room_name(r)).collect();
                        let mut not_left = Vec::new();
                        for room in &rooms {
                            if let Err(why) = self.unprotect(room).await {
                                not_left.push(format!("{room}: {why}"));
                            }
                        }
                        self.session.spaces.forget(&rooms);
                        let mut text = format!(
                            "{} was removed from the space {space}: no longer protecting {}.",
                            event.child,
                            names.join(", ")
                        );
                        if !not_left.is_empty() {
                            let _ = write!(text, " Not changed: {}.", not_left.join("; "));
                        }
                        self.matrix.notify(&text).await;
                    }
                }
            }
        }
        if changed && let Err(e) = self.save_spaces().await {
            self.matrix.notify(&format!("Saving which rooms came from which space failed: {e:#}.")).await;
        }
    }

    /// A room's name for a reply: its name or alias as the client knows it,
    /// else its id.
    pub(crate) fn room_name(&self, room: &str) -> String {
        match self.rooms.name(room) {
            (Some(name), Some(alias)) => format!("{name} ({alias})"),
            (Some(name), None) => format!("{name} ({room})"),
            (None, Some(alias)) => alias,
            (None, None) => room.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests;
