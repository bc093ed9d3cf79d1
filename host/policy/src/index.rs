//! Every rule of every watched list, indexed for matching: literal entities
//! in hash maps, hashed entities (MSC4205) by their hash, and the globs of
//! each kind behind one Aho-Corasick automaton over each glob's longest
//! literal piece, so matching an entity runs the automaton once and checks
//! only the globs whose piece occurs in it. The index changes by deltas; the
//! automaton is rebuilt lazily, the first time it is needed after a change.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, OnceLock};

use aho_corasick::AhoCorasick;
use hashbrown::HashTable;

use crate::list::{Change, Delta};
use crate::rule::{EntityKind, EntityRef, Rule, sha256};

/// Rules by their own entity (a literal's text, or a hash): the table holds
/// only the rules, nothing twice. Rules naming the same entity (in two
/// lists) sit side by side under one hash.
#[derive(Default)]
struct ByEntity {
    table: HashTable<Arc<Rule>>,
}

/// What a rule is filed under, if it is filed by entity.
fn filed_under(rule: &Rule) -> Option<EntityRef<'_>> {
    match rule.entity() {
        EntityRef::Glob(_) => None,
        filed => Some(filed),
    }
}

impl ByEntity {
    fn hash(hasher: &RandomState, entity: EntityRef<'_>) -> u64 {
        match entity {
            EntityRef::Literal(text) | EntityRef::Glob(text) => hasher.hash_one(text),
            EntityRef::Hashed(hash) => hasher.hash_one(hash),
        }
    }

    fn rehash(hasher: &RandomState) -> impl Fn(&Arc<Rule>) -> u64 + '_ {
        |rule: &Arc<Rule>| ByEntity::hash(hasher, rule.entity())
    }

    fn insert(&mut self, hasher: &RandomState, rule: Arc<Rule>) {
        let hash = ByEntity::hash(hasher, rule.entity());
        self.table.insert_unique(hash, rule, ByEntity::rehash(hasher));
    }

    /// Removes the rule for `rule`'s slot (see `KindIndex::remove`).
    fn remove(&mut self, hasher: &RandomState, rule: &Rule) {
        let entity = rule.entity();
        let found =
            self.table.find_entry(ByEntity::hash(hasher, entity), |r| r.entity() == entity && same_slot(r, rule));
        if let Ok(found) = found {
            found.remove();
            if self.table.capacity() > 64 && self.table.len() < self.table.capacity() / 4 {
                self.table.shrink_to_fit(ByEntity::rehash(hasher));
            }
        }
    }

    fn matching<'a>(&'a self, hasher: &RandomState, entity: EntityRef<'_>, out: &mut Vec<&'a Arc<Rule>>) {
        out.extend(self.table.iter_hash(ByEntity::hash(hasher, entity)).filter(|r| r.entity() == entity));
    }
}

/// Whether two rules stand for the same (list, state key).
fn same_slot(a: &Rule, b: &Rule) -> bool {
    a.list == b.list && a.state_key() == b.state_key()
}

#[derive(Default)]
struct KindIndex {
    literal: ByEntity,
    hashed: ByEntity,
    globs: Vec<Arc<Rule>>,
    compiled: OnceLock<Compiled>,
}

/// The automaton over the globs' keys.
struct Compiled {
    automaton: Option<AhoCorasick>,
    /// Per automaton pattern: the globs (indices into `globs`) with that key.
    by_key: Vec<Vec<u32>>,
    /// Globs without a literal piece (`*`, `??`): checked every time.
    always: Vec<u32>,
}

impl KindIndex {
    fn insert(&mut self, hasher: &RandomState, rule: Arc<Rule>) {
        match filed_under(&rule) {
            Some(EntityRef::Hashed(_)) => self.hashed.insert(hasher, rule),
            Some(_) => self.literal.insert(hasher, rule),
            None => {
                self.globs.push(rule);
                self.compiled = OnceLock::new();
            }
        }
    }

    /// Removes the rule in effect for `rule`'s list and state key. Not by
    /// pointer: a rule of a newer event type with the same meaning takes
    /// over a state key without a change (so without reaching the index),
    /// and the index still holds the rule it took over from.
    fn remove(&mut self, hasher: &RandomState, rule: &Rule) {
        match filed_under(rule) {
            Some(EntityRef::Hashed(_)) => self.hashed.remove(hasher, rule),
            Some(_) => self.literal.remove(hasher, rule),
            None => {
                if let Some(i) = self.globs.iter().position(|r| same_slot(r, rule)) {
                    self.globs.swap_remove(i);
                    self.compiled = OnceLock::new();
                }
            }
        }
    }

    fn compiled(&self) -> &Compiled {
        self.compiled.get_or_init(|| {
            let mut keys: Vec<&str> = Vec::new();
            let mut key_ids: HashMap<&str, usize> = HashMap::new();
            let mut by_key: Vec<Vec<u32>> = Vec::new();
            let mut always = Vec::new();
            for (i, rule) in self.globs.iter().enumerate() {
                let EntityRef::Glob(pattern) = rule.entity() else { continue };
                let key = crate::glob::key(pattern);
                if key.is_empty() {
                    always.push(i as u32);
                    continue;
                }
                let id = *key_ids.entry(key).or_insert_with(|| {
                    keys.push(key);
                    by_key.push(Vec::new());
                    keys.len() - 1
                });
                by_key[id].push(i as u32);
            }
            let automaton = (!keys.is_empty()).then(|| AhoCorasick::new(&keys).expect("glob keys build an automaton"));
            Compiled { automaton, by_key, always }
        })
    }

    /// Every rule matching `entity` (already lower-cased for servers);
    /// `as_seen` is the server name as it appeared, for hashed rules.
    fn matching<'a>(
        &'a self,
        hasher: &RandomState,
        kind: EntityKind,
        entity: &str,
        as_seen: Option<&str>,
        out: &mut Vec<&'a Arc<Rule>>,
    ) {
        self.literal.matching(hasher, EntityRef::Literal(entity), out);
        if !self.hashed.table.is_empty() {
            self.hashed.matching(hasher, EntityRef::Hashed(&sha256(entity)), out);
            // Peers hash a server name as it appears (`Banned.Example.com`).
            if let Some(seen) = as_seen.filter(|seen| *seen != entity) {
                self.hashed.matching(hasher, EntityRef::Hashed(&sha256(seen)), out);
            }
        }
        if self.globs.is_empty() {
            return;
        }
        let compiled = self.compiled();
        let check = |i: u32, out: &mut Vec<&'a Arc<Rule>>| {
            let rule = &self.globs[i as usize];
            if rule.entity().matches(kind, entity) {
                out.push(rule);
            }
        };
        for &i in &compiled.always {
            check(i, out);
        }
        if let Some(automaton) = &compiled.automaton {
            // A key can occur more than once in the entity: check its globs once.
            let mut seen: Vec<usize> = Vec::new();
            for found in automaton.find_overlapping_iter(entity) {
                let key = found.pattern().as_usize();
                if seen.contains(&key) {
                    continue;
                }
                seen.push(key);
                for &i in &compiled.by_key[key] {
                    check(i, out);
                }
            }
        }
    }

    fn len(&self) -> usize {
        self.literal.table.len() + self.hashed.table.len() + self.globs.len()
    }

    fn rules(&self) -> impl Iterator<Item = &Arc<Rule>> {
        self.literal.table.iter().chain(self.hashed.table.iter()).chain(self.globs.iter())
    }
}

/// All rules in effect, across lists, ready to match.
#[derive(Default)]
pub struct Index {
    kinds: [KindIndex; 3],
    hasher: RandomState,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("rules", &self.len()).finish()
    }
}

impl Index {
    pub fn new() -> Index {
        Index::default()
    }

    fn kind(&self, kind: EntityKind) -> &KindIndex {
        &self.kinds[kind as usize]
    }

    pub fn apply(&mut self, delta: &Delta) {
        for change in &delta.changes {
            self.apply_change(change);
        }
    }

    pub fn apply_change(&mut self, change: &Change) {
        if let Some(old) = change.old_rule() {
            self.kinds[old.kind as usize].remove(&self.hasher, old);
        }
        if let Some(new) = change.new_rule() {
            self.kinds[new.kind as usize].insert(&self.hasher, new.clone());
        }
    }

    /// Drops every rule of one list (it is no longer watched).
    pub fn remove_list(&mut self, list: &str) {
        for kind in &mut self.kinds {
            let doomed: Vec<Arc<Rule>> = kind.rules().filter(|r| &*r.list == list).cloned().collect();
            for rule in &doomed {
                kind.remove(&self.hasher, rule);
            }
        }
    }

    /// Every rule of `kind` matching `entity`: literal, hashed, then globs.
    pub fn matching(&self, kind: EntityKind, entity: &str) -> Vec<&Arc<Rule>> {
        let mut out = Vec::new();
        let index = self.kind(kind);
        if kind == EntityKind::Server {
            index.matching(&self.hasher, kind, &entity.to_ascii_lowercase(), Some(entity), &mut out);
        } else {
            index.matching(&self.hasher, kind, entity, None, &mut out);
        }
        out
    }

    /// The first rule asking to ban (or take down) `entity`, if any.
    pub fn acting(&self, kind: EntityKind, entity: &str) -> Option<&Arc<Rule>> {
        self.matching(kind, entity).into_iter().find(|r| r.recommendation.acts())
    }

    /// Every rule of one kind.
    pub fn rules(&self, kind: EntityKind) -> impl Iterator<Item = &Arc<Rule>> {
        self.kind(kind).rules()
    }

    pub fn len(&self) -> usize {
        self.kinds.iter().map(KindIndex::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::list::PolicyList;
    use crate::rule::sha256_base64;

    fn rule_json(entity: &str, recommendation: &str) -> String {
        format!(r#"{{"entity": "{entity}", "recommendation": "{recommendation}"}}"#)
    }

    fn index(rules: &[(&str, &str, &str)]) -> (PolicyList, Index) {
        let mut list = PolicyList::new("!list");
        let contents: Vec<(String, String, String)> =
            rules.iter().enumerate().map(|(i, (t, e, r))| (t.to_string(), format!("k{i}"), rule_json(e, r))).collect();
        let delta = list.apply_all(contents.iter().map(|(t, k, c)| (t.as_str(), k.as_str(), c.as_str())));
        let mut index = Index::new();
        index.apply(&delta);
        (list, index)
    }

    fn entities(rules: Vec<&Arc<Rule>>) -> Vec<String> {
        let mut out: Vec<String> = rules.iter().map(|r| r.entity().to_string()).collect();
        out.sort();
        out
    }

    /// Found by fuzzing: a rule of a newer event type with the same meaning
    /// takes over its state key without a change; the index kept the older
    /// rule, so the next change to that key left it there for good.
    #[test]
    fn a_rule_taken_over_by_a_newer_type_leaves_the_index_when_changed() {
        let mut list = PolicyList::new("!list");
        let mut index = Index::new();
        let spam = rule_json("@spam:x", "m.ban");
        let other = rule_json("@other:x", "m.ban");
        for (event_type, content) in [
            ("org.matrix.mjolnir.rule.user", spam.as_str()),
            ("m.policy.rule.user", spam.as_str()),
            ("m.policy.rule.user", other.as_str()),
        ] {
            if let Some(change) = list.apply(event_type, "k", content) {
                index.apply_change(&change);
            }
        }
        assert!(index.matching(EntityKind::User, "@spam:x").is_empty());
        assert_eq!(entities(index.matching(EntityKind::User, "@other:x")), ["@other:x"]);
        assert_eq!(index.len(), 1);
        for event_type in ["m.policy.rule.user", "org.matrix.mjolnir.rule.user"] {
            if let Some(change) = list.apply(event_type, "k", "{}") {
                index.apply_change(&change);
            }
        }
        assert!(index.is_empty(), "{index:?}");
    }

    #[test]
    fn literals_globs_and_hashes_match() {
        let (_, index) = index(&[
            ("m.policy.rule.user", "@spam:x", "m.ban"),
            ("m.policy.rule.user", "@*:evil.example", "m.ban"),
            ("m.policy.rule.user", "@bot*:*", "m.ban"),
            ("m.policy.rule.user", "*", "org.example.watch"),
            ("m.policy.rule.server", "*.evil.example", "m.ban"),
            ("m.policy.rule.server", "bad.example", "m.ban"),
        ]);
        assert_eq!(entities(index.matching(EntityKind::User, "@spam:x")), ["*", "@spam:x"]);
        assert_eq!(
            entities(index.matching(EntityKind::User, "@bot1:evil.example")),
            ["*", "@*:evil.example", "@bot*:*"]
        );
        assert_eq!(entities(index.matching(EntityKind::User, "@good:x")), ["*"]);
        assert!(index.acting(EntityKind::User, "@good:x").is_none(), "an unknown recommendation never acts");
        assert_eq!(index.acting(EntityKind::User, "@spam:x").unwrap().entity().to_string(), "@spam:x");
        assert_eq!(entities(index.matching(EntityKind::Server, "Matrix.EVIL.example")), ["*.evil.example"]);
        assert_eq!(entities(index.matching(EntityKind::Server, "bad.example")), ["bad.example"]);
        assert!(index.matching(EntityKind::Room, "!room").is_empty());
    }

    #[test]
    fn hashed_rules_match_by_hashing_what_the_bot_sees() {
        let mut list = PolicyList::new("!list");
        let content =
            format!(r#"{{"recommendation": "m.takedown", "hashes": {{"sha256": "{}"}}}}"#, sha256_base64("@csam:x"));
        let change = list.apply("m.policy.rule.user", "h", &content).unwrap();
        let mut index = Index::new();
        index.apply_change(&change);
        assert!(index.acting(EntityKind::User, "@csam:x").is_some());
        assert!(index.acting(EntityKind::User, "@other:x").is_none());
    }

    #[test]
    fn deltas_keep_the_index_in_step() {
        let (mut list, mut index) = index(&[("m.policy.rule.user", "@*:evil.example", "m.ban")]);
        assert_eq!(index.len(), 1);
        let modified = list.apply("m.policy.rule.user", "k0", &rule_json("@*:worse.example", "m.ban")).unwrap();
        index.apply_change(&modified);
        assert!(index.matching(EntityKind::User, "@a:evil.example").is_empty());
        assert_eq!(index.matching(EntityKind::User, "@a:worse.example").len(), 1);
        let removed = list.apply("m.policy.rule.user", "k0", "{}").unwrap();
        index.apply_change(&removed);
        assert!(index.is_empty());
        assert!(index.matching(EntityKind::User, "@a:worse.example").is_empty());
    }

    #[test]
    fn the_same_entity_in_two_lists_is_two_rules() {
        let mut index = Index::new();
        for room in ["!one", "!two"] {
            let mut list = PolicyList::new(room);
            index.apply_change(&list.apply("m.policy.rule.user", "k", &rule_json("@spam:x", "m.ban")).unwrap());
        }
        assert_eq!(index.matching(EntityKind::User, "@spam:x").len(), 2);
        index.remove_list("!one");
        let left = index.matching(EntityKind::User, "@spam:x");
        assert_eq!(left.len(), 1);
        assert_eq!(&*left[0].list, "!two");
    }
}
