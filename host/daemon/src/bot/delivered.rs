//! The policy rules already handed to protections and to room takedowns,
//! kept in the data directory. Every start loads every watched list again and
//! sees each rule as added; without this, each restart would take every user
//! and room down again (history re-read, users suspended again, media deleted
//! again, rooms blocked again). A rule added or changed while the bot was
//! stopped is new, and is delivered.
//!
//! Bans of members for rules are not filtered here: they are decided from the
//! members present, and a member already banned is not banned again.

use std::collections::HashSet;

use gleipnir_policy::{Change, Delta, Rule};
use gleipnir_runtime::Folder;

const DELIVERED: &str = "policy-delivered.json";

pub(crate) struct Delivered {
    data: Folder,
    /// Each rule's key, the first 16 bytes of a hash (written as hex).
    keys: HashSet<u128>,
    dirty: bool,
    /// The file could not be read (not missing, not damaged): it is not
    /// overwritten, so nothing in it is lost for a passing error.
    unreadable: bool,
}

impl Delivered {
    /// Reads the set; a damaged file starts it over (every rule is then
    /// delivered once more) and says so.
    pub(crate) fn load(data: &Folder) -> (Delivered, Option<String>) {
        let shown = data.shown(DELIVERED);
        let mut delivered = Delivered { data: data.clone(), keys: HashSet::new(), dirty: false, unreadable: false };
        let text = match data.read_to_string(DELIVERED) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (delivered, None),
            Err(e) => {
                delivered.unreadable = true;
                let why = format!(
                    "cannot read {} ({e}); takedown rules already acted on will be acted on once more, and the \
                     file is left as it is",
                    shown.display()
                );
                return (delivered, Some(why));
            }
        };
        let keys = serde_json::from_str::<Vec<&str>>(&text).map_err(|e| e.to_string()).and_then(|keys| {
            let read = |hex: &str| (hex.len() == 32).then(|| u128::from_str_radix(hex, 16).ok()).flatten();
            keys.iter()
                .map(|hex| read(hex).ok_or(format!("{hex:?} is not a key")))
                .collect::<Result<HashSet<u128>, _>>()
        });
        match keys {
            Ok(keys) => {
                delivered.keys = keys;
                (delivered, None)
            }
            Err(e) => {
                let moved = super::files::set_aside(data, DELIVERED, "policy-delivered.json.damaged");
                let why = format!(
                    "{} is damaged ({e}; {moved}); takedown rules already acted on will be acted on once more",
                    shown.display()
                );
                (delivered, Some(why))
            }
        }
    }

    /// The changes of `delta` not delivered before; they count as delivered from now on.
    pub(crate) fn fresh(&mut self, delta: &Delta) -> Delta {
        let mut fresh = Delta::default();
        for change in &delta.changes {
            match change {
                Change::Added(rule) | Change::Modified { new: rule, .. } => {
                    if let Change::Modified { old, .. } = change {
                        self.dirty |= self.keys.remove(&key(old));
                    }
                    if self.keys.insert(key(rule)) {
                        self.dirty = true;
                        fresh.changes.push(change.clone());
                    }
                }
                Change::Removed(rule) => {
                    self.dirty |= self.keys.remove(&key(rule));
                    fresh.changes.push(change.clone());
                }
            }
        }
        fresh
    }

    /// Writes the set if it changed.
    pub(crate) fn save(&mut self) -> anyhow::Result<()> {
        if !self.dirty || self.unreadable {
            return Ok(());
        }
        let mut keys: Vec<u128> = self.keys.iter().copied().collect();
        keys.sort_unstable();
        let keys: Vec<String> = keys.iter().map(|key| format!("{key:032x}")).collect();
        let text = serde_json::to_string(&keys)?;
        self.data.write_durably(DELIVERED, text.as_bytes(), false)?;
        self.dirty = false;
        Ok(())
    }
}

/// What makes a rule the same rule: where it is and what it says to do to
/// whom (a new reason alone does not make it new). Hashed, so the file does
/// not list who was taken down.
fn key(rule: &Rule) -> u128 {
    let text = format!(
        "{}\n{:?}\n{}\n{}\n{}",
        rule.list,
        rule.kind,
        rule.state_key(),
        rule.entity(),
        rule.recommendation.as_str()
    );
    let hash = gleipnir_policy::rule::sha256(&text);
    u128::from_be_bytes(hash[..16].try_into().expect("16 of 32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gleipnir_policy::PolicyList;

    fn delta(list: &mut PolicyList, events: &[(&str, &str, &str)]) -> Delta {
        let mut delta = Delta::default();
        for (kind, key, content) in events {
            delta.changes.extend(list.apply(kind, key, content));
        }
        delta
    }

    #[test]
    fn a_restart_delivers_only_rules_not_acted_on_before() {
        let dir = std::env::temp_dir().join(format!("gleipnir-delivered-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let td = r#"{"entity": "@a:x", "recommendation": "m.takedown", "reason": "spam"}"#;
        let ban = r#"{"entity": "@b:x", "recommendation": "m.ban"}"#;
        let (mut delivered, problem) = Delivered::load(&Folder::open(&dir).unwrap());
        assert!(problem.is_none());
        let mut list = PolicyList::new("!list:x");
        let first = delta(&mut list, &[("m.policy.rule.user", "a", td), ("m.policy.rule.user", "b", ban)]);
        assert_eq!(delivered.fresh(&first).changes.len(), 2);
        delivered.save().unwrap();
        // The file lists each key as the first 16 bytes of its hash in hex, sorted.
        let text = std::fs::read_to_string(dir.join("policy-delivered.json")).unwrap();
        let mut expected: Vec<String> = first
            .changes
            .iter()
            .map(|c| {
                let rule = c.new_rule().unwrap();
                let text = format!(
                    "!list:x\n{:?}\n{}\n{}\n{}",
                    rule.kind,
                    rule.state_key(),
                    rule.entity(),
                    rule.recommendation.as_str()
                );
                gleipnir_policy::rule::sha256(&text).iter().take(16).map(|b| format!("{b:02x}")).collect()
            })
            .collect();
        expected.sort();
        assert_eq!(serde_json::from_str::<Vec<String>>(&text).unwrap(), expected);

        // The next start loads the same list again, and a new rule came meanwhile.
        let (mut delivered, _) = Delivered::load(&Folder::open(&dir).unwrap());
        let mut list = PolicyList::new("!list:x");
        let c = r#"{"entity": "@c:x", "recommendation": "m.takedown"}"#;
        let reasoned = r#"{"entity": "@a:x", "recommendation": "m.takedown", "reason": "other words"}"#;
        let again = delta(&mut list, &[("m.policy.rule.user", "a", reasoned), ("m.policy.rule.user", "b", ban)]);
        assert!(delivered.fresh(&again).is_empty(), "a new reason alone is not a new rule");
        let new = delta(&mut list, &[("m.policy.rule.user", "c", c)]);
        assert_eq!(delivered.fresh(&new).changes.len(), 1);
        // Removed, then added again: acted on again.
        let removed = delta(&mut list, &[("m.policy.rule.user", "c", "{}")]);
        assert_eq!(delivered.fresh(&removed).changes.len(), 1);
        let back = delta(&mut list, &[("m.policy.rule.user", "c", c)]);
        assert_eq!(delivered.fresh(&back).changes.len(), 1);

        std::fs::write(dir.join("policy-delivered.json"), r#"["not a key"]"#).unwrap();
        let (_, problem) = Delivered::load(&Folder::open(&dir).unwrap());
        assert!(problem.unwrap().contains("\"not a key\" is not a key"));
        std::fs::write(dir.join("policy-delivered.json"), "[1, 2").unwrap();
        let (delivered, problem) = Delivered::load(&Folder::open(&dir).unwrap());
        assert!(problem.unwrap().contains("is damaged"));
        assert!(delivered.keys.is_empty());
        assert!(dir.join("policy-delivered.json.damaged").exists(), "kept for whoever looks into it");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
