//! One policy list (a room's rule state) and the revisions it goes through.
//! Every change to the room's rule state becomes a [`Change`] of the rule in
//! effect for that (kind, state key); a batch of them is a [`Delta`], and the
//! index, the ban applier and the ACL all work from deltas.

use std::collections::HashMap;
use std::sync::Arc;

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

/// What one generation of event type holds for a (kind, state key).
#[derive(Debug, Clone, Default)]
enum Held {
    /// No such event.
    #[default]
    Absent,
    /// An event without a usable rule (`{}`, or invalid content): it
    /// removes the rule, including one an older type holds.
    Cleared,
    Rule(Arc<Rule>),
}

/// The rule state of one policy room.
#[derive(Debug)]
pub struct PolicyList {
    room: Arc<str>,
    /// Per (kind, state key): what each generation of event type holds.
    slots: HashMap<(EntityKind, String), [Held; 3]>,
    /// Rules in effect.
    rules: usize,
    revision: u64,
    /// Rule events that could not be used, by (event type, state key): why.
    invalid: HashMap<(String, String), String>,
}

impl PolicyList {
    pub fn new(room: &str) -> PolicyList {
        PolicyList { room: Arc::from(room), slots: HashMap::new(), rules: 0, revision: 0, invalid: HashMap::new() }
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
        let parsed = rule::parse(&self.room, event_type, state_key, content)?;
        let (kind, generation) = rule::rule_type(event_type)?;
        let invalid_key = (event_type.to_owned(), state_key.to_owned());
        let new = match parsed {
            Content::Rule(r) => {
                self.invalid.remove(&invalid_key);
                Held::Rule(Arc::new(r))
            }
            Content::Empty => {
                self.invalid.remove(&invalid_key);
                Held::Cleared
            }
            Content::Invalid(why) => {
                self.invalid.insert(invalid_key, why);
                Held::Cleared
            }
        };
        let key = (kind, state_key.to_owned());
        let slot = self.slots.entry(key.clone()).or_default();
        let before = effective(slot).cloned();
        slot[generation as usize] = new;
        let after = effective(slot).cloned();
        // A cleared oldest type shadows nothing: only what can matter is kept.
        if let Held::Cleared = slot[Generation::Mjolnir as usize] {
            slot[Generation::Mjolnir as usize] = Held::Absent;
        }
        if slot.iter().all(|h| matches!(h, Held::Absent)) {
            self.slots.remove(&key);
        }
        match (&before, &after) {
            (None, Some(_)) => self.rules += 1,
            (Some(_), None) => self.rules -= 1,
            _ => {}
        }
        let change = match (before, after) {
            (None, None) => None,
            (None, Some(new)) => Some(Change::Added(new)),
            (Some(old), None) => Some(Change::Removed(old)),
            (Some(old), Some(new)) if old.same_meaning(&new) => None,
            (Some(old), Some(new)) => Some(Change::Modified { old, new }),
        };
        if change.is_some() {
            self.revision += 1;
        }
        change
    }

    /// Applies many state events (e.g. the room's whole state at load) as
    /// one revision.
    pub fn apply_all<'a>(&mut self, events: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>) -> Delta {
        let mut by_key: HashMap<(EntityKind, String), Change> = HashMap::new();
        let mut order = Vec::new();
        for (event_type, state_key, content) in events {
            let Some(change) = self.apply(event_type, state_key, content) else { continue };
            let rule = change.new_rule().or(change.old_rule()).expect("a change has a rule");
            let key = (rule.kind, rule.state_key.clone());
            // Fold several changes to one rule into one.
            let folded = match by_key.remove(&key) {
                None => {
                    order.push(key.clone());
                    Some(change)
                }
                Some(previous) => fold(previous, change),
            };
            if let Some(c) = folded {
                by_key.insert(key, c);
            }
        }
        Delta { changes: order.into_iter().filter_map(|k| by_key.remove(&k)).collect() }
    }

    /// Every rule in effect.
    pub fn rules(&self) -> impl Iterator<Item = &Arc<Rule>> {
        self.slots.values().filter_map(effective)
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

    /// The rule in effect for a state key, if any.
    pub fn get(&self, kind: EntityKind, state_key: &str) -> Option<&Arc<Rule>> {
        self.slots.get(&(kind, state_key.to_owned())).and_then(effective)
    }

    /// The event types under which a rule stands for a state key (the one in
    /// effect and any older one it shadows): clearing a rule clears them
    /// all, so a peer that falls back to an older type finds nothing either.
    pub fn event_types(&self, kind: EntityKind, state_key: &str) -> Vec<String> {
        let Some(slot) = self.slots.get(&(kind, state_key.to_owned())) else { return Vec::new() };
        slot.iter()
            .filter_map(|held| match held {
                Held::Rule(rule) => Some(rule::event_type(rule)),
                _ => None,
            })
            .collect()
    }
}

/// The newest generation with an event decides: its rule, or none when that
/// event holds no usable rule (Mjolnir's "soft redacted" rules: `{}` under
/// `m.policy.rule.user` removes a rule under `m.room.rule.user`).
fn effective(slot: &[Held; 3]) -> Option<&Arc<Rule>> {
    match [Generation::Stable, Generation::Room, Generation::Mjolnir]
        .iter()
        .map(|g| &slot[*g as usize])
        .find(|held| !matches!(held, Held::Absent))?
    {
        Held::Rule(rule) => Some(rule),
        _ => None,
    }
}

/// Two successive changes of one rule as one.
fn fold(first: Change, second: Change) -> Option<Change> {
    let before = first.old_rule().cloned();
    let after = second.new_rule().cloned();
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
    use crate::rule::{Entity, Recommendation};

    const BAN_A: &str = r#"{"entity": "@a:x", "recommendation": "m.ban", "reason": "spam"}"#;
    const BAN_B: &str = r#"{"entity": "@b:x", "recommendation": "m.ban"}"#;

    fn entity(change: &Change) -> String {
        change.new_rule().or(change.old_rule()).unwrap().entity.to_string()
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
            matches!(&modified, Change::Modified { old, new } if old.entity.to_string() == "@a:x" && new.entity.to_string() == "@b:x")
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
        assert_eq!(list.get(EntityKind::User, "k").unwrap().entity, Entity::Literal("@b:x".into()));
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
        assert!(matches!(&delta.changes[0], Change::Added(r) if r.entity.to_string() == "@b:x"));
        assert!(matches!(&delta.changes[1], Change::Removed(r) if r.recommendation == Recommendation::Ban));
    }
}
