//! One policy list (a room's rule state) and the revisions it goes through.
//! Every change to the room's rule state becomes a [`Change`] of the rule in
//! effect for that (kind, state key); a batch of them is a [`Delta`], and the
//! index, the ban applier and the ACL all work from deltas.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use crate::rule::{self, Content, EntityKind, Generation, Rule};

/// One rule in effect that appeared, changed meaning, or went away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added(Arc<Rule>),
    Modified { old: Arc<Rule>, new: Arc<Rule> },
    Removed(Arc<Rule>),
}

impl Change {
    /// The rule in effect after the change, if any.
    pub fn new_rule(&self) -> Option<&Arc<Rule>> {
        match self {
            Change::Added(r) | Change::Modified { new: r, .. } => Some(r),
            Change::Removed(_) => None,
        }
    }

    /// The rule in effect before the change, if any.
    pub fn old_rule(&self) -> Option<&Arc<Rule>> {
        match self {
            Change::Removed(r) | Change::Modified { old: r, .. } => Some(r),
            Change::Added(_) => None,
        }
    }
}

/// The changes from one revision of a list to the next.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    pub changes: Vec<Change>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn extend(&mut self, other: Delta) {
        self.changes.extend(other.changes);
    }
}

/// What the three generations of event type hold for one (kind, state
/// key): per generation a rule, an event without a usable rule (`{}` or
/// invalid content, which removes the rule, including one an older type
/// holds), or nothing. Nearly every slot holds one rule of the newest type
/// and nothing else, and is held as that rule alone.
#[derive(Debug)]
enum Slot {
    Stable(Arc<Rule>),
    Mixed(Box<Mixed>),
}

#[derive(Debug)]
struct Mixed {
    key: Box<str>,
    rules: [Option<Arc<Rule>>; 3],
    /// Bit `generation`: that generation's event holds no usable rule.
    cleared: u8,
}

impl Slot {
    fn key(&self) -> &str {
        match self {
            Slot::Stable(rule) => rule.state_key(),
            Slot::Mixed(mixed) => &mixed.key,
        }
    }

    /// The newest generation with an event decides: its rule, or none when
    /// that event holds no usable rule (Mjolnir's "soft redacted" rules:
    /// `{}` under `m.policy.rule.user` removes a rule under `m.room.rule.user`).
    fn effective(&self) -> Option<&Arc<Rule>> {
        let mixed = match self {
            Slot::Stable(rule) => return Some(rule),
            Slot::Mixed(mixed) => mixed,
        };
        for g in [Generation::Stable, Generation::Room, Generation::Mjolnir] {
            let g = g as usize;
            if mixed.rules[g].is_some() || mixed.cleared & (1 << g) != 0 {
                return mixed.rules[g].as_ref();
            }
        }
        None
    }

    /// The rules each generation holds.
    fn rules(&self) -> impl Iterator<Item = &Arc<Rule>> {
        let (stable, mixed) = match self {
            Slot::Stable(rule) => (Some(rule), None),
            Slot::Mixed(mixed) => (None, Some(mixed.rules.iter().flatten())),
        };
        stable.into_iter().chain(mixed.into_iter().flatten())
    }

    /// The slot once `generation`'s event holds `rule` (`None`: no usable
    /// rule); `None` when nothing that can matter is left.
    fn set(slot: Option<Slot>, key: &str, generation: Generation, rule: Option<Arc<Rule>>) -> Option<Slot> {
        // The common case: a rule of the newest type, alone.
        if generation == Generation::Stable
            && let Some(rule) = &rule
            && matches!(slot, None | Some(Slot::Stable(_)))
        {
            return Some(Slot::Stable(rule.clone()));
        }
        let mut mixed = match slot {
            None => Mixed { key: key.into(), rules: Default::default(), cleared: 0 },
            Some(Slot::Stable(rule)) => Mixed { key: key.into(), rules: [Some(rule), None, None], cleared: 0 },
            Some(Slot::Mixed(mixed)) => *mixed,
        };
        let g = generation as usize;
        mixed.cleared &= !(1 << g);
        if rule.is_none() {
            mixed.cleared |= 1 << g;
        }
        mixed.rules[g] = rule;
        // A cleared oldest type shadows nothing: only what can matter is kept.
        let oldest = Generation::Mjolnir as usize;
        if mixed.rules[oldest].is_none() {
            mixed.cleared &= !(1 << oldest);
        }
        match mixed.rules {
            _ if mixed.cleared != 0 => Some(Slot::Mixed(Box::new(mixed))),
            [None, None, None] => None,
            [Some(rule), None, None] => Some(Slot::Stable(rule)),
            _ => Some(Slot::Mixed(Box::new(mixed))),
        }
    }
}

/// The rule state of one policy room.
#[derive(Debug)]
pub struct PolicyList {
    room: Arc<str>,
    /// Per kind, the slots by state key.
    slots: [HashTable<Slot>; 3],
    hasher: RandomState,
    /// Rules in effect.
    rules: usize,
    revision: u64,
    /// Rule events that could not be used, by (event type, state key): why.
    invalid: HashMap<(String, String), String>,
    /// The reasons the list's rules give, each held once: a large list gives
    /// a handful ("spam", "ban evasion") to thousands of rules.
    reasons: Reasons,
}

/// Reasons held once each; those no rule gives any more are dropped now
/// and then (when the set has doubled since the last sweep).
#[derive(Debug, Default)]
struct Reasons {
    held: std::collections::HashSet<Arc<str>>,
    after_sweep: usize,
}

impl Reasons {
    fn intern(&mut self, reason: Arc<str>) -> Arc<str> {
        if let Some(held) = self.held.get(&reason) {
            return held.clone();
        }
        if self.held.len() >= 2 * self.after_sweep + 64 {
            self.held.retain(|r| Arc::strong_count(r) > 1);
            self.after_sweep = self.held.len();
        }
        self.held.insert(reason.clone());
        reason
    }
}

impl PolicyList {
    pub fn new(room: &str) -> PolicyList {
        PolicyList {
            room: Arc::from(room),
            slots: Default::default(),
            hasher: RandomState::new(),
            rules: 0,
            revision: 0,
            invalid: HashMap::new(),
            reasons: Reasons::default(),
        }
    }

    pub fn room(&self) -> &str {
        &self.room
    }

    /// Bumped by every change to a rule in effect.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Applies one state event; the change to the rule in effect, if any.
    /// Events that are not rules are ignored.
    pub fn apply(&mut self, event_type: &str, state_key: &str, content: &str) -> Option<Change> {
        let (kind, generation) = rule::rule_type(event_type)?;
        let (before, after) = self.apply_one(kind, generation, event_type, state_key, content);
        changed(before, after)
    }

    /// Applies one rule event; the rule in effect for its slot before and after.
    fn apply_one(
        &mut self,
        kind: EntityKind,
        generation: Generation,
        event_type: &str,
        state_key: &str,
        content: &str,
    ) -> (Option<Arc<Rule>>, Option<Arc<Rule>>) {
        let place = rule::Place { list: &self.room, kind, generation, state_key };
        let new = match rule::parse_keyed(&place, content) {
            Content::Rule(mut r) => {
                if !self.invalid.is_empty() {
                    self.invalid.remove(&(event_type.to_owned(), state_key.to_owned()));
                }
                r.reason = self.reasons.intern(r.reason);
                Some(Arc::new(r))
            }
            Content::Empty => {
                if !self.invalid.is_empty() {
                    self.invalid.remove(&(event_type.to_owned(), state_key.to_owned()));
                }
                None
            }
            Content::Invalid(why) => {
                self.invalid.insert((event_type.to_owned(), state_key.to_owned()), why);
                None
            }
        };
        let hasher = &self.hasher;
        let hash = hasher.hash_one(state_key);
        let entry = self.slots[kind as usize].entry(hash, |s| s.key() == state_key, |s| hasher.hash_one(s.key()));
        let (before, after) = match entry {
            Entry::Occupied(occupied) => {
                let (slot, vacant) = occupied.remove();
                let before = slot.effective().cloned();
                let slot = Slot::set(Some(slot), state_key, generation, new);
                let after = slot.as_ref().and_then(Slot::effective).cloned();
                if let Some(slot) = slot {
                    vacant.insert(slot);
                }
                (before, after)
            }
            Entry::Vacant(vacant) => {
                let slot = Slot::set(None, state_key, generation, new);
                let after = slot.as_ref().and_then(Slot::effective).cloned();
                if let Some(slot) = slot {
                    vacant.insert(slot);
                }
                (None, after)
            }
        };
        let change = match (&before, &after) {
            (None, None) => false,
            (None, Some(_)) => {
                self.rules += 1;
                true
            }
            (Some(_), None) => {
                self.rules -= 1;
                true
            }
            (Some(old), Some(new)) => !old.same_meaning(new),
        };
        if change {
            self.revision += 1;
        }
        (before, after)
    }

    /// Applies many state events (e.g. the room's whole state at load) as
    /// one revision: one change per rule, from before the first event to
    /// after the last, in the order rules were first touched.
    pub fn apply_all<'a>(&mut self, events: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>) -> Delta {
        let events = events.into_iter();
        // Each (kind, state key) touched, with the rule in effect before.
        let mut touched: Vec<(EntityKind, &'a str, Option<Arc<Rule>>)> = Vec::with_capacity(events.size_hint().0);
        let mut seen: HashSet<(EntityKind, &'a str)> = HashSet::with_capacity(events.size_hint().0);
        for (event_type, state_key, content) in events {
            let Some((kind, generation)) = rule::rule_type(event_type) else { continue };
            let (before, _) = self.apply_one(kind, generation, event_type, state_key, content);
            if seen.insert((kind, state_key)) {
                touched.push((kind, state_key, before));
            }
        }
        drop(seen);
        let changes = touched
            .into_iter()
            .filter_map(|(kind, key, before)| changed(before, self.get(kind, key).cloned()))
            .collect();
        Delta { changes }
    }

    /// Every rule in effect.
    pub fn rules(&self) -> impl Iterator<Item = &Arc<Rule>> {
        self.slots.iter().flat_map(HashTable::iter).filter_map(Slot::effective)
    }

    /// The rules in effect.
    pub fn len(&self) -> usize {
        self.rules
    }

    pub fn is_empty(&self) -> bool {
        self.rules == 0
    }

    /// Rule events that could not be used: `(event type, state key, why)`.
    pub fn invalid(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.invalid.iter().map(|((t, k), why)| (t.as_str(), k.as_str(), why.as_str()))
    }

    fn slot(&self, kind: EntityKind, state_key: &str) -> Option<&Slot> {
        self.slots[kind as usize].find(self.hasher.hash_one(state_key), |s| s.key() == state_key)
    }

    /// The rule in effect for a state key, if any.
    pub fn get(&self, kind: EntityKind, state_key: &str) -> Option<&Arc<Rule>> {
        self.slot(kind, state_key).and_then(Slot::effective)
    }

    /// The event types under which a rule stands for a state key (the one in
    /// effect and any older one it shadows): clearing a rule clears them
    /// all, so a peer that falls back to an older type finds nothing either.
    pub fn event_types(&self, kind: EntityKind, state_key: &str) -> Vec<String> {
        let Some(slot) = self.slot(kind, state_key) else { return Vec::new() };
        slot.rules().map(|rule| rule::event_type(rule)).collect()
    }
}

/// The change from the rule in effect before to the one after, if any.
fn changed(before: Option<Arc<Rule>>, after: Option<Arc<Rule>>) -> Option<Change> {
    match (before, after) {
        (None, None) => None,
        (None, Some(new)) => Some(Change::Added(new)),
        (Some(old), None) => Some(Change::Removed(old)),
        (Some(old), Some(new)) if old.same_meaning(&new) => None,
        (Some(old), Some(new)) => Some(Change::Modified { old, new }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::{EntityRef, Recommendation};

    const BAN_A: &str = r#"{"entity": "@a:x", "recommendation": "m.ban", "reason": "spam"}"#;
    const BAN_B: &str = r#"{"entity": "@b:x", "recommendation": "m.ban"}"#;

    fn entity(change: &Change) -> String {
        change.new_rule().or(change.old_rule()).unwrap().entity().to_string()
    }

    #[test]
    fn a_reason_is_held_once_and_dropped_when_no_rule_gives_it() {
        let mut list = PolicyList::new("!list");
        let ban = |i: usize, reason: &str| {
            format!(r#"{{"entity": "@u{i}:x", "recommendation": "m.ban", "reason": "{reason}"}}"#)
        };
        for i in 0..10 {
            list.apply("m.policy.rule.user", &format!("k{i}"), &ban(i, "spam"));
        }
        let reasons: Vec<&Arc<str>> = list.rules().map(|r| &r.reason).collect();
        assert!(reasons.iter().all(|r| Arc::ptr_eq(r, reasons[0])), "one allocation for ten rules");
        assert_eq!(&*list.get(EntityKind::User, "k3").unwrap().reason, "spam");
        // Many reasons come and go (a hostile list): the set does not keep them all.
        for round in 0..1000 {
            list.apply("m.policy.rule.user", "churn", &ban(0, &format!("reason {round}")));
        }
        assert!(list.reasons.held.len() < 200, "{} reasons held", list.reasons.held.len());
        assert!(list.reasons.held.iter().any(|r| &**r == "spam"), "a reason still given stays");
        assert_eq!(&*list.get(EntityKind::User, "churn").unwrap().reason, "reason 999");
    }

    #[test]
    fn added_modified_removed() {
        let mut list = PolicyList::new("!list");
        let added = list.apply("m.policy.rule.user", "k", BAN_A).unwrap();
        assert!(matches!(added, Change::Added(_)));
        assert_eq!(list.revision(), 1);
        // The same content again changes nothing.
        assert_eq!(list.apply("m.policy.rule.user", "k", BAN_A), None);
        assert_eq!(list.revision(), 1);
        let modified = list.apply("m.policy.rule.user", "k", BAN_B).unwrap();
        assert!(
            matches!(&modified, Change::Modified { old, new } if old.entity().to_string() == "@a:x" && new.entity().to_string() == "@b:x")
        );
        let removed = list.apply("m.policy.rule.user", "k", "{}").unwrap();
        assert_eq!(entity(&removed), "@b:x");
        assert!(matches!(removed, Change::Removed(_)));
        assert!(list.is_empty());
        assert_eq!(list.apply("m.room.topic", "", r#"{"topic": "x"}"#), None);
    }

    #[test]
    fn for_one_state_key_the_newer_type_wins() {
        let mut list = PolicyList::new("!list");
        list.apply("org.matrix.mjolnir.rule.user", "k", BAN_A).unwrap();
        let change = list.apply("m.policy.rule.user", "k", BAN_B).unwrap();
        assert!(matches!(change, Change::Modified { .. }));
        // An older type under the same key does not override the newer one.
        assert_eq!(list.apply("m.room.rule.user", "k", BAN_A), None);
        assert_eq!(list.get(EntityKind::User, "k").unwrap().entity(), EntityRef::Literal("@b:x"));
        assert_eq!(
            list.event_types(EntityKind::User, "k"),
            ["m.policy.rule.user", "m.room.rule.user", "org.matrix.mjolnir.rule.user"]
        );
        // Clearing the newest removes the rule: the older types it shadows do
        // not come back (Mjolnir's "soft redacted" rules).
        let gone = list.apply("m.policy.rule.user", "k", "{}").unwrap();
        assert!(matches!(&gone, Change::Removed(old) if old.generation == Generation::Stable));
        assert!(list.get(EntityKind::User, "k").is_none());
        assert!(list.is_empty());
        // An older type written again under the cleared key stays shadowed.
        assert_eq!(list.apply("m.room.rule.user", "k", BAN_B), None);
        // A rule of the newest type brings the key back.
        assert!(matches!(list.apply("m.policy.rule.user", "k", BAN_A), Some(Change::Added(_))));
        // Clearing an older type leaves the newest in effect (Mjolnir: "a rule of
        // the most recent type won't be deleted when an old rule is deleted").
        assert_eq!(list.apply("m.room.rule.user", "k", "{}"), None);
        assert!(list.get(EntityKind::User, "k").is_some());
        // Same key, other kind: another rule.
        assert!(matches!(
            list.apply("m.policy.rule.server", "k", r#"{"entity": "evil.com", "recommendation": "m.ban"}"#),
            Some(Change::Added(_))
        ));
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn an_invalid_event_removes_the_rule_and_is_remembered() {
        let mut list = PolicyList::new("!list");
        list.apply("m.policy.rule.user", "k", BAN_A).unwrap();
        let removed = list.apply("m.policy.rule.user", "k", r#"{"entity": "@a:x"}"#).unwrap();
        assert!(matches!(removed, Change::Removed(_)));
        let invalid: Vec<_> = list.invalid().collect();
        assert_eq!(invalid, [("m.policy.rule.user", "k", "no recommendation")]);
        list.apply("m.policy.rule.user", "k", BAN_A).unwrap();
        assert_eq!(list.invalid().count(), 0);
    }

    #[test]
    fn a_batch_folds_changes_per_rule() {
        let mut list = PolicyList::new("!list");
        list.apply("m.policy.rule.user", "gone", BAN_B);
        let delta = list.apply_all([
            ("m.policy.rule.user", "k", BAN_A),
            ("m.policy.rule.user", "k", BAN_B),
            ("m.policy.rule.user", "flash", BAN_A),
            ("m.policy.rule.user", "flash", "{}"),
            ("m.policy.rule.user", "gone", "{}"),
        ]);
        assert_eq!(delta.changes.len(), 2, "{delta:#?}");
        assert!(matches!(&delta.changes[0], Change::Added(r) if r.entity().to_string() == "@b:x"));
        assert!(matches!(&delta.changes[1], Change::Removed(r) if r.recommendation == Recommendation::Ban));
    }
}
