//! The policy rules already handed to protections and to room takedowns,
//! kept in the data directory. Every start loads every watched list again and
//! sees each rule as added; without this, each restart would take every user
//! and room down again (history re-read, users suspended again, media deleted
//! again, rooms blocked again). A rule added or changed while the bot was
//! stopped is new, and is delivered.
//!
//! Bans of members for rules are not filtered here: they are decided from the
//! members present, and a member already banned is not banned again.
//!
//! Kept in `policy-delivered.log`, one line a change (`+KEY`: delivered,
//! `-KEY`: delivered no more), appended after each sync that changed it and
//! before that sync's token is saved, so a sync's cost is its own changes and
//! not the whole set (100,000 rules: 3.5 MB written again after every sync
//! was 4 s of CPU per 1,000 rule changes); written whole once it holds twice
//! as many lines as keys. A file of the earlier form, `policy-delivered.json`
//! (a list of keys), is read once and replaced.

use std::collections::HashSet;
use std::io::Write;

use gleipnir_policy::{Change, Delta, Rule};
use gleipnir_runtime::Folder;

const DELIVERED: &str = "policy-delivered.log";
/// The earlier form: the whole set as a JSON list of keys.
const DELIVERED_JSON: &str = "policy-delivered.json";

pub(crate) struct Delivered {
    data: Folder,
    /// Each rule's key, the first 16 bytes of a hash (written as hex).
    keys: HashSet<u128>,
    /// Changes to the set not written yet, in order (`true`: added).
    pending: Vec<(bool, u128)>,
    /// Lines appended since the file was last written whole.
    appended: usize,
    /// The file is to be written whole at the next save (it is in the
    /// earlier form, or its end is not a whole line).
    rewrite: bool,
    /// The file could not be read (not missing, not damaged): it is not
    /// overwritten, so nothing in it is lost for a passing error.
    unreadable: bool,
}

impl Delivered {
    /// Reads the set; a damaged file starts it over (every rule is then
    /// delivered once more) and says so.
    pub(crate) fn load(data: &Folder) -> (Delivered, Option<String>) {
        let mut delivered = Delivered {
            data: data.clone(),
            keys: HashSet::new(),
            pending: Vec::new(),
            appended: 0,
            rewrite: false,
            unreadable: false,
        };
        let (name, text) = match data.read_to_string(DELIVERED) {
            Ok(text) => (DELIVERED, text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match data.read_to_string(DELIVERED_JSON) {
                Ok(text) => {
                    delivered.rewrite = true;
                    (DELIVERED_JSON, text)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (delivered, None),
                Err(e) => return delivered.unreadable(DELIVERED_JSON, &e),
            },
            Err(e) => return delivered.unreadable(DELIVERED, &e),
        };
        let read = if name == DELIVERED { delivered.read_log(&text) } else { read_json(&text) };
        match read {
            Ok(keys) => {
                delivered.keys = keys;
                (delivered, None)
            }
            Err(e) => {
                let moved = super::files::set_aside(data, name, &format!("{name}.damaged"));
                let why = format!(
                    "{} is damaged ({e}; {moved}); takedown rules already acted on will be acted on once more",
                    data.shown(name).display()
                );
                (delivered, Some(why))
            }
        }
    }

    fn unreadable(mut self, name: &str, e: &std::io::Error) -> (Delivered, Option<String>) {
        self.unreadable = true;
        let why = format!(
            "cannot read {} ({e}); takedown rules already acted on will be acted on once more, and the file is left \
             as it is",
            self.data.shown(name).display()
        );
        (self, Some(why))
    }

    /// The set from the log's lines. A last line cut short (a crash while
    /// appending, before the sync's token was saved) is left out.
    fn read_log(&mut self, text: &str) -> Result<HashSet<u128>, String> {
        let mut keys = HashSet::new();
        let whole = text.rsplit_once('\n').map_or("", |(whole, _)| whole);
        if !text.is_empty() && !text.ends_with('\n') {
            self.rewrite = true;
        }
        for (number, line) in whole.lines().enumerate() {
            match (line.as_bytes().first(), line.get(1..).and_then(read_key)) {
                (Some(b'+'), Some(key)) => keys.insert(key),
                (Some(b'-'), Some(key)) => keys.remove(&key),
                _ => return Err(format!("line {} is not a change: {line:?}", number + 1)),
            };
            self.appended += 1;
        }
        Ok(keys)
    }

    /// The changes of `delta` not delivered before; they count as delivered from now on.
    pub(crate) fn fresh(&mut self, delta: &Delta) -> Delta {
        let mut fresh = Delta::default();
        for change in &delta.changes {
            match change {
                Change::Added(rule) | Change::Modified { new: rule, .. } => {
                    if let Change::Modified { old, .. } = change {
                        self.forget(key(old));
                    }
                    let key = key(rule);
                    if self.keys.insert(key) {
                        self.pending.push((true, key));
                        fresh.changes.push(change.clone());
                    }
                }
                Change::Removed(rule) => {
                    self.forget(key(rule));
                    fresh.changes.push(change.clone());
                }
            }
        }
        fresh
    }

    fn forget(&mut self, key: u128) {
        if self.keys.remove(&key) {
            self.pending.push((false, key));
        }
    }

    /// Writes what changed: appended, or the whole set when that is due.
    pub(crate) fn save(&mut self) -> anyhow::Result<()> {
        if self.pending.is_empty() && !self.rewrite || self.unreadable {
            return Ok(());
        }
        // Written whole once the file would hold twice as many lines as keys:
        // as many changes again as there are keys pay for one whole write.
        if self.rewrite || self.appended + self.pending.len() > (2 * self.keys.len()).max(4096) {
            let mut keys: Vec<u128> = self.keys.iter().copied().collect();
            keys.sort_unstable();
            let mut text = String::with_capacity(keys.len() * 34);
            for key in keys {
                text.push_str(&format!("+{key:032x}\n"));
            }
            self.data.write_durably(DELIVERED, text.as_bytes(), false)?;
            if self.data.exists(DELIVERED_JSON) {
                self.data.remove(DELIVERED_JSON)?;
            }
            (self.appended, self.rewrite) = (self.keys.len(), false);
            self.pending.clear();
            return Ok(());
        }
        let mut text = String::with_capacity(self.pending.len() * 34);
        for (added, key) in &self.pending {
            text.push_str(&format!("{}{key:032x}\n", if *added { '+' } else { '-' }));
        }
        let written = self.data.append(DELIVERED).and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_data()
        });
        match written {
            Ok(()) => {
                self.appended += self.pending.len();
                self.pending.clear();
                Ok(())
            }
            Err(e) => {
                // Part of it may be there: the next save writes it whole.
                self.rewrite = true;
                Err(anyhow::anyhow!("cannot append to {}: {e}", self.data.shown(DELIVERED).display()))
            }
        }
    }
}

fn read_key(hex: &str) -> Option<u128> {
    (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u128::from_str_radix(hex, 16).ok())
        .flatten()
}

/// The set from the earlier form of the file, a JSON list of keys.
fn read_json(text: &str) -> Result<HashSet<u128>, String> {
    let keys = serde_json::from_str::<Vec<&str>>(text).map_err(|e| e.to_string())?;
    keys.iter().map(|hex| read_key(hex).ok_or(format!("{hex:?} is not a key"))).collect()
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

    fn scratch(name: &str) -> (std::path::PathBuf, Folder) {
        let dir = std::env::temp_dir().join(format!("gleipnir-delivered-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let folder = Folder::open(&dir).unwrap();
        (dir, folder)
    }

    /// The key as written: the first 16 bytes of the hash of the rule's text, in hex.
    fn hex(list: &str, rule: &Rule) -> String {
        let text = format!(
            "{list}\n{:?}\n{}\n{}\n{}",
            rule.kind,
            rule.state_key(),
            rule.entity(),
            rule.recommendation.as_str()
        );
        gleipnir_policy::rule::sha256(&text).iter().take(16).map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn a_restart_delivers_only_rules_not_acted_on_before() {
        let (dir, data) = scratch("restart");
        let td = r#"{"entity": "@a:x", "recommendation": "m.takedown", "reason": "spam"}"#;
        let ban = r#"{"entity": "@b:x", "recommendation": "m.ban"}"#;
        let (mut delivered, problem) = Delivered::load(&data);
        assert!(problem.is_none());
        let mut list = PolicyList::new("!list:x");
        let first = delta(&mut list, &[("m.policy.rule.user", "a", td), ("m.policy.rule.user", "b", ban)]);
        assert_eq!(delivered.fresh(&first).changes.len(), 2);
        delivered.save().unwrap();
        let lines: Vec<String> =
            first.changes.iter().map(|c| format!("+{}\n", hex("!list:x", c.new_rule().unwrap()))).collect();
        assert_eq!(std::fs::read_to_string(dir.join(DELIVERED)).unwrap(), lines.concat());

        // The next start loads the same list again, and a new rule came meanwhile.
        let (mut delivered, _) = Delivered::load(&data);
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
        delivered.save().unwrap();
        let (mut delivered, _) = Delivered::load(&data);
        let back = delta(&mut list, &[("m.policy.rule.user", "c", c)]);
        assert_eq!(delivered.fresh(&back).changes.len(), 1, "its removal was written down");
        assert!(delivered.fresh(&again).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_sync_appends_its_own_changes_and_the_file_is_written_whole_once_it_holds_twice_the_keys() {
        let (dir, data) = scratch("append");
        let (mut delivered, _) = Delivered::load(&data);
        let mut list = PolicyList::new("!list:x");
        let held: Vec<String> =
            (0..5000).map(|i| format!(r#"{{"entity": "@held{i}:x", "recommendation": "m.ban"}}"#)).collect();
        let keys: Vec<String> = (0..5000).map(|i| format!("h{i}")).collect();
        let events: Vec<(&str, &str, &str)> =
            keys.iter().zip(&held).map(|(k, c)| ("m.policy.rule.user", k.as_str(), c.as_str())).collect();
        delivered.fresh(&delta(&mut list, &events));
        delivered.save().unwrap();
        let size = std::fs::metadata(dir.join(DELIVERED)).unwrap().len();
        assert_eq!(size, 5000 * 34);
        // One rule added: one line more, not the set again.
        let one =
            delta(&mut list, &[("m.policy.rule.user", "new", r#"{"entity": "@new:x", "recommendation": "m.ban"}"#)]);
        delivered.fresh(&one);
        delivered.save().unwrap();
        assert_eq!(std::fs::metadata(dir.join(DELIVERED)).unwrap().len(), size + 34);
        // After a restart (as many lines as keys), one rule changed: two lines more.
        let (mut delivered, _) = Delivered::load(&data);
        let changed = r#"{"entity": "@other:x", "recommendation": "m.ban"}"#;
        delivered.fresh(&delta(&mut list, &[("m.policy.rule.user", "h0", changed)]));
        delivered.save().unwrap();
        assert_eq!(std::fs::metadata(dir.join(DELIVERED)).unwrap().len(), size + 3 * 34);
        // A rule changed back and forth: past twice as many lines as keys, written whole.
        for i in 0..6000 {
            let content = if i % 2 == 0 { "{}" } else { r#"{"entity": "@new:x", "recommendation": "m.ban"}"# };
            delivered.fresh(&delta(&mut list, &[("m.policy.rule.user", "new", content)]));
            delivered.save().unwrap();
        }
        let size = std::fs::metadata(dir.join(DELIVERED)).unwrap().len();
        assert!(size < (5003 + 6000) * 34, "written whole on the way: {size} bytes");
        assert!(size <= 2 * 5001 * 34, "{size} bytes");
        let (reloaded, problem) = Delivered::load(&data);
        assert!(problem.is_none());
        assert_eq!(reloaded.keys, delivered.keys);
        assert_eq!(reloaded.keys.len(), 5001);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_earlier_json_form_is_read_once_and_replaced() {
        let (dir, data) = scratch("json");
        let mut list = PolicyList::new("!list:x");
        let ban = delta(&mut list, &[("m.policy.rule.user", "b", r#"{"entity": "@b:x", "recommendation": "m.ban"}"#)]);
        let key = hex("!list:x", ban.changes[0].new_rule().unwrap());
        std::fs::write(dir.join(DELIVERED_JSON), format!("[\"{key}\"]")).unwrap();
        let (mut delivered, problem) = Delivered::load(&data);
        assert!(problem.is_none());
        assert!(delivered.fresh(&ban).is_empty(), "delivered before the upgrade");
        delivered.save().unwrap();
        assert!(!dir.join(DELIVERED_JSON).exists());
        assert_eq!(std::fs::read_to_string(dir.join(DELIVERED)).unwrap(), format!("+{key}\n"));

        std::fs::remove_file(dir.join(DELIVERED)).unwrap();
        std::fs::write(dir.join(DELIVERED_JSON), r#"["not a key"]"#).unwrap();
        let (_, problem) = Delivered::load(&data);
        assert!(problem.unwrap().contains("\"not a key\" is not a key"));
        assert!(dir.join("policy-delivered.json.damaged").exists(), "kept for whoever looks into it");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_line_cut_short_at_the_end_is_left_out_and_one_damaged_before_it_sets_the_file_aside() {
        let (dir, data) = scratch("damaged");
        let (a, b) = ("0".repeat(32), "f".repeat(32));
        std::fs::write(dir.join(DELIVERED), format!("+{a}\n+{b}\n-{b}\n+{}", &b[..7])).unwrap();
        let (mut delivered, problem) = Delivered::load(&data);
        assert!(problem.is_none());
        assert_eq!(delivered.keys, HashSet::from([0]));
        delivered.save().unwrap();
        assert_eq!(std::fs::read_to_string(dir.join(DELIVERED)).unwrap(), format!("+{a}\n"), "written whole");

        std::fs::write(dir.join(DELIVERED), format!("+{a}\n+{}\n+{b}\n", &b[..7])).unwrap();
        let (delivered, problem) = Delivered::load(&data);
        assert!(problem.unwrap().contains("line 2 is not a change"));
        assert!(delivered.keys.is_empty());
        assert!(dir.join("policy-delivered.log.damaged").exists(), "kept for whoever looks into it");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
