//! Persisted state, described once: each piece of account data the bot keeps
//! has a key, a default and a reader that yields the usable items plus a
//! problem for every one that is not, naming the exact item (key path and
//! index) and whether it does not fit the schema (*parse*) or fits but could
//! not be used (*use*, e.g. a room that cannot be joined). Every problem
//! carries numbered recovery options that show the value they would change;
//! applying one checks that the value is still what was shown, so recovery
//! never removes anything it did not show. Pure: no Matrix, no I/O.

use std::collections::BTreeMap;
use std::fmt::{self, Write};

use gleipnir_runtime::event::type_name;
use serde_json::{Value, json};

/// Whether the data does not fit its schema, or fits but could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Parse,
    Use,
}

/// One step of a JSON path: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

/// A path into a store's content, e.g. `rooms[2]` or `flooding.max-per-minute`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Path(pub(crate) Vec<Step>);

impl Path {
    pub(crate) fn key(mut self, key: &str) -> Path {
        self.0.push(Step::Key(key.to_owned()));
        self
    }

    pub(crate) fn index(mut self, i: usize) -> Path {
        self.0.push(Step::Index(i));
        self
    }

    fn get_mut<'a>(&self, value: &'a mut Value) -> Option<&'a mut Value> {
        self.0.iter().try_fold(value, |v, step| match step {
            Step::Key(k) => v.get_mut(k),
            Step::Index(i) => v.get_mut(i),
        })
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, step) in self.0.iter().enumerate() {
            match step {
                Step::Key(k) if n == 0 => f.write_str(k)?,
                Step::Key(k) => write!(f, ".{k}")?,
                Step::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

/// A change that recovers from a problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Recovery {
    /// Remove one item (array element or object key) whose value is `value`.
    Remove { store: &'static str, path: Path, value: Value },
    /// Replace the whole store's content (`current`) with its default.
    Reset { store: &'static str, current: Option<Value>, default: Value },
    /// Rename a plugin file to `FILE.disabled` so it is no longer loaded.
    SetAside { file: String },
}

impl Recovery {
    pub(crate) fn store(&self) -> &'static str {
        match self {
            Recovery::Remove { store, .. } | Recovery::Reset { store, .. } => store,
            Recovery::SetAside { .. } => "plugins.dir",
        }
    }

    /// What it changes, showing the value it changes.
    pub(crate) fn describe(&self) -> String {
        match self {
            Recovery::Remove { store, path, value } => format!("remove {store} {path} (now {value})"),
            Recovery::Reset { store, current, default } => match current {
                Some(c) => format!("reset {store} to {default} (now {})", shorten(&c.to_string())),
                None => format!("reset {store} to {default}"),
            },
            Recovery::SetAside { file } => format!("set the plugin file aside: rename {file} to {file}.disabled"),
        }
    }

    /// The store's new content, given its content now. Refused when the
    /// content no longer holds what the option showed.
    pub(crate) fn apply(&self, now: Option<&Value>) -> Result<Value, String> {
        match self {
            Recovery::SetAside { file } => Err(format!("{file} is a file, not stored state")),
            Recovery::Reset { store, current, default } => {
                if now != current.as_ref() {
                    return Err(format!("{store} changed since this option was offered; run `status` again"));
                }
                Ok(default.clone())
            }
            Recovery::Remove { store, path, value } => {
                let changed = || format!("{store} {path} changed since this option was offered; run `status` again");
                let now = now.ok_or_else(changed)?;
                let (last, parent_path) = path.0.split_last().ok_or_else(changed)?;
                let mut content = now.clone();
                let parent = Path(parent_path.to_vec()).get_mut(&mut content).ok_or_else(changed)?;
                match (last, parent) {
                    (Step::Key(k), Value::Object(map)) if map.get(k) == Some(value) => {
                        map.remove(k);
                    }
                    (Step::Index(i), Value::Array(items)) => {
                        // Another option may have removed an earlier item of this
                        // list: then the item shown is found by its value, if it
                        // is there exactly once.
                        let at = if items.get(*i) == Some(value) {
                            *i
                        } else {
                            let found: Vec<usize> =
                                items.iter().enumerate().filter(|(_, v)| *v == value).map(|(n, _)| n).collect();
                            match found[..] {
                                [one] => one,
                                _ => return Err(changed()),
                            }
                        };
                        items.remove(at);
                    }
                    _ => return Err(changed()),
                }
                Ok(content)
            }
        }
    }
}

fn shorten(text: &str) -> String {
    const MAX: usize = 120;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Something stored that cannot be parsed or used, and how to recover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) store: &'static str,
    pub(crate) path: Path,
    pub(crate) kind: Kind,
    pub(crate) message: String,
    pub(crate) options: Vec<Recovery>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Parse => "cannot be read",
            Kind::Use => "cannot be used",
        };
        if self.path.0.is_empty() {
            write!(f, "{} {kind}: {}", self.store, self.message)
        } else {
            write!(f, "{} {} {kind}: {}", self.store, self.path, self.message)
        }
    }
}

/// A piece of account data holding one list of strings under one field,
/// e.g. `{"rooms": [...]}`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ListStore {
    pub(crate) key: &'static str,
    pub(crate) field: &'static str,
    /// Checks one item's form; the reason it is unfit.
    pub(crate) check: fn(&str) -> Result<(), String>,
}

impl ListStore {
    pub(crate) fn default_content(&self) -> Value {
        json!({ self.field: [] })
    }

    fn reset(&self, current: Option<&Value>) -> Recovery {
        Recovery::Reset { store: self.key, current: current.cloned(), default: self.default_content() }
    }

    /// The usable items with their index, and a problem for each unusable one.
    /// Absent content is the default (an empty list).
    pub(crate) fn read(&self, content: Option<&Value>) -> (Vec<(usize, String)>, Vec<Problem>) {
        let Some(content) = content else { return (Vec::new(), Vec::new()) };
        let problem = |path: Path, message: String, options: Vec<Recovery>| Problem {
            store: self.key,
            path,
            kind: Kind::Parse,
            message,
            options,
        };
        let Some(items) = content.get(self.field).and_then(Value::as_array) else {
            let message = match content.get(self.field) {
                None => format!("`{}` is missing", self.field),
                Some(other) => format!("`{}` is {}, not a list", self.field, type_name(other)),
            };
            return (
                Vec::new(),
                vec![problem(Path::default().key(self.field), message, vec![self.reset(Some(content))])],
            );
        };
        let mut good = Vec::new();
        let mut problems = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = Path::default().key(self.field).index(i);
            let remove = Recovery::Remove { store: self.key, path: path.clone(), value: item.clone() };
            match item.as_str() {
                None => problems.push(problem(path, format!("is {}, not a string", type_name(item)), vec![remove])),
                Some(text) => match (self.check)(text) {
                    Ok(()) => good.push((i, text.to_owned())),
                    Err(why) => problems.push(problem(path, why, vec![remove, self.reset(Some(content))])),
                },
            }
        }
        (good, problems)
    }

    /// A usable-looking item that failed when used (e.g. a room that cannot be joined).
    pub(crate) fn use_problem(&self, content: Option<&Value>, index: usize, item: &str, why: String) -> Problem {
        let path = Path::default().key(self.field).index(index);
        Problem {
            store: self.key,
            path: path.clone(),
            kind: Kind::Use,
            message: format!("`{item}`: {why}"),
            options: vec![
                Recovery::Remove { store: self.key, path, value: Value::String(item.to_owned()) },
                self.reset(content),
            ],
        }
    }
}

/// A room id, alias or matrix.to link to one.
fn check_room(text: &str) -> Result<(), String> {
    crate::parse::room_ref(text).map(|_| ()).map_err(|e| e.to_string())
}

/// A room id (what the bot itself writes).
pub(crate) fn check_room_id(text: &str) -> Result<(), String> {
    <&matrix_sdk::ruma::RoomId>::try_from(text).map(|_| ()).map_err(|_| format!("`{text}` is not a room id"))
}

/// Whether `name` is written the way Draupnir names protections (CamelCase
/// letters and digits), not the way Gleipnir does.
pub(crate) fn is_draupnir_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase()) && name.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Gleipnir's protection names, and Draupnir's (CamelCase), which a moved
/// account holds: those are mapped or kept at start, not a problem.
fn check_protection(text: &str) -> Result<(), String> {
    if gleipnir_runtime::settings::is_kebab(text) || is_draupnir_name(text) {
        Ok(())
    } else {
        Err(format!("`{text}` is not a protection name"))
    }
}

pub(crate) const PROTECTED_ROOMS: ListStore =
    ListStore { key: "org.matrix.mjolnir.protected_rooms", field: "rooms", check: check_room };
pub(crate) const WATCHED_LISTS: ListStore =
    ListStore { key: "org.matrix.mjolnir.watched_lists", field: "references", check: check_room };
/// The spaces moderators added with `rooms add` (see `bot/spaces.rs`).
pub(crate) const PROTECTED_SPACES: ListStore =
    ListStore { key: "org.gleipnir.protected_spaces", field: "spaces", check: check_room_id };
/// The rooms of protected spaces that moderators stopped protecting.
pub(crate) const EXCLUDED_FROM_SPACES: ListStore =
    ListStore { key: "org.gleipnir.protected_spaces", field: "excluded", check: check_room_id };
pub(crate) const ENABLED_PROTECTIONS: ListStore =
    ListStore { key: "org.matrix.mjolnir.enabled_protections", field: "enabled", check: check_protection };

/// Settings moderators set with commands: `{protection: {key: "value as text"}}`.
pub(crate) const PROTECTION_SETTINGS: &str = "org.gleipnir.protection_settings";

/// Per protection, the `(key, value as text)` pairs moderators saved.
pub(crate) type SavedSettings = BTreeMap<String, Vec<(String, String)>>;

/// Per protection, its saved `(key, text)` pairs; a problem for each entry
/// that does not fit the shape.
pub(crate) fn read_settings(content: Option<&Value>) -> (SavedSettings, Vec<Problem>) {
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    let Some(content) = content else { return (out, problems) };
    let problem = |path: Path, message: String, options: Vec<Recovery>| Problem {
        store: PROTECTION_SETTINGS,
        path,
        kind: Kind::Parse,
        message,
        options,
    };
    let Some(all) = content.as_object() else {
        let reset = Recovery::Reset { store: PROTECTION_SETTINGS, current: Some(content.clone()), default: json!({}) };
        problems.push(problem(Path::default(), format!("is {}, not an object", type_name(content)), vec![reset]));
        return (out, problems);
    };
    for (name, entries) in all {
        let path = Path::default().key(name);
        let Some(entries) = entries.as_object() else {
            let remove = Recovery::Remove { store: PROTECTION_SETTINGS, path: path.clone(), value: entries.clone() };
            problems.push(problem(path, format!("is {}, not an object", type_name(entries)), vec![remove]));
            continue;
        };
        let mut pairs = Vec::new();
        for (key, value) in entries {
            match value.as_str() {
                Some(text) => pairs.push((key.clone(), text.to_owned())),
                None => {
                    let path = path.clone().key(key);
                    let remove =
                        Recovery::Remove { store: PROTECTION_SETTINGS, path: path.clone(), value: value.clone() };
                    problems.push(problem(path, format!("is {}, not text", type_name(value)), vec![remove]));
                }
            }
        }
        out.insert(name.clone(), pairs);
    }
    (out, problems)
}

/// A saved setting that reads but does not fit the protection's spec (an
/// unknown key, a value out of range): removing it restores the default.
pub(crate) fn setting_problem(protection: &str, key: &str, text: &str, why: String) -> Problem {
    let path = Path::default().key(protection).key(key);
    Problem {
        store: PROTECTION_SETTINGS,
        path: path.clone(),
        kind: Kind::Use,
        message: why,
        options: vec![Recovery::Remove { store: PROTECTION_SETTINGS, path, value: Value::String(text.to_owned()) }],
    }
}

/// The numbered options of a list of problems, in the order shown.
pub(crate) fn numbered(problems: &[Problem]) -> Vec<&Recovery> {
    problems.iter().flat_map(|p| p.options.iter()).collect()
}

/// The safe-mode message: each problem, then its numbered options.
pub(crate) fn report(problems: &[Problem]) -> String {
    let mut out = format!(
        "Safe mode: {} problem(s) with stored state. Nothing is protected and no policy is applied until `restart` succeeds.",
        problems.len()
    );
    let mut n = 0;
    for problem in problems {
        let _ = write!(out, "\n\n{problem}");
        for option in &problem.options {
            n += 1;
            let _ = write!(out, "\n  {n}. {}", option.describe());
        }
    }
    out.push_str("\n\n`recover N` applies option N (after a preview); `restart` tries normal mode again.");
    out
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_type_offers_a_reset_showing_the_value() {
        let content = json!({"rooms": "!a:x"});
        let (good, problems) = PROTECTED_ROOMS.read(Some(&content));
        assert!(good.is_empty());
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].to_string(),
            "org.matrix.mjolnir.protected_rooms rooms cannot be read: `rooms` is a string, not a list"
        );
        assert_eq!(
            problems[0].options[0].describe(),
            r#"reset org.matrix.mjolnir.protected_rooms to {"rooms":[]} (now {"rooms":"!a:x"})"#
        );
        assert_eq!(problems[0].options[0].apply(Some(&content)).unwrap(), json!({"rooms": []}));
    }

    #[test]
    fn one_bad_item_among_good_ones_is_named_by_index() {
        let content = json!({"rooms": ["!good:x", 42, "not a room", "#alias:x"]});
        let (good, problems) = PROTECTED_ROOMS.read(Some(&content));
        assert_eq!(good, [(0, "!good:x".to_owned()), (3, "#alias:x".to_owned())]);
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(lines[0], "org.matrix.mjolnir.protected_rooms rooms[1] cannot be read: is a number, not a string");
        assert!(
            lines[1]
                .starts_with("org.matrix.mjolnir.protected_rooms rooms[2] cannot be read: `not a room` is not a room"),
            "{}",
            lines[1]
        );
        let remove = &problems[1].options[0];
        assert_eq!(remove.describe(), r#"remove org.matrix.mjolnir.protected_rooms rooms[2] (now "not a room")"#);
        assert_eq!(remove.apply(Some(&content)).unwrap(), json!({"rooms": ["!good:x", 42, "#alias:x"]}));
    }

    #[test]
    fn recovery_never_removes_what_it_did_not_show() {
        let content = json!({"rooms": ["!a:x", "!b:x"]});
        let problem = PROTECTED_ROOMS.use_problem(Some(&content), 1, "!b:x", "I was kicked".to_owned());
        assert_eq!(problem.kind, Kind::Use);
        assert_eq!(
            problem.to_string(),
            "org.matrix.mjolnir.protected_rooms rooms[1] cannot be used: `!b:x`: I was kicked"
        );
        // Someone changed the list meanwhile: the room shown is gone.
        let changed = json!({"rooms": ["!a:x", "!c:x"]});
        assert!(problem.options[0].apply(Some(&changed)).unwrap_err().contains("changed since"));
        assert!(problem.options[1].apply(Some(&changed)).unwrap_err().contains("changed since"));
        // An earlier item was removed: the room shown is found by its value.
        let shifted = json!({"rooms": ["!b:x", "!c:x"]});
        assert_eq!(problem.options[0].apply(Some(&shifted)).unwrap(), json!({"rooms": ["!c:x"]}));
        // Twice the same value: which one is ambiguous, so nothing is removed.
        let twice = json!({"rooms": ["!b:x", "!c:x", "!b:x"]});
        assert!(problem.options[0].apply(Some(&twice)).unwrap_err().contains("changed since"));
        assert_eq!(problem.options[0].apply(Some(&content)).unwrap(), json!({"rooms": ["!a:x"]}));
    }

    #[test]
    fn absent_state_is_the_default_and_no_problem() {
        let (good, problems) = WATCHED_LISTS.read(None);
        assert!(good.is_empty() && problems.is_empty());
        let (_, problems) = ENABLED_PROTECTIONS.read(Some(&json!({})));
        assert_eq!(
            problems[0].to_string(),
            "org.matrix.mjolnir.enabled_protections enabled cannot be read: `enabled` is missing"
        );
    }

    #[test]
    fn saved_settings_are_read_entry_by_entry() {
        let content = json!({"flooding": {"max-per-minute": "3", "reason": 7}, "watch": "words"});
        let (good, problems) = read_settings(Some(&content));
        assert_eq!(good["flooding"], [("max-per-minute".to_owned(), "3".to_owned())]);
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "org.gleipnir.protection_settings flooding.reason cannot be read: is a number, not text",
                "org.gleipnir.protection_settings watch cannot be read: is a string, not an object"
            ]
        );
        assert_eq!(
            problems[0].options[0].apply(Some(&content)).unwrap(),
            json!({"flooding": {"max-per-minute": "3"}, "watch": "words"})
        );
        let bad = setting_problem("flooding", "max-per-minute", "0", "0 is outside 1..=10000".to_owned());
        assert_eq!(
            bad.options[0].describe(),
            r#"remove org.gleipnir.protection_settings flooding.max-per-minute (now "0")"#
        );
        let (_, problems) = read_settings(Some(&json!([1])));
        assert_eq!(problems[0].options[0].apply(Some(&json!([1]))).unwrap(), json!({}));
    }

    #[test]
    fn the_report_numbers_every_option() {
        let content = json!({"rooms": [1, "!ok:x"]});
        let (_, mut problems) = PROTECTED_ROOMS.read(Some(&content));
        problems.push(ENABLED_PROTECTIONS.use_problem(None, 0, "flooding", "the plugin does not load".to_owned()));
        let report = report(&problems);
        assert!(report.contains("\n  1. remove org.matrix.mjolnir.protected_rooms rooms[0] (now 1)"), "{report}");
        assert!(
            report.contains("\n  2. remove org.matrix.mjolnir.enabled_protections enabled[0] (now \"flooding\")"),
            "{report}"
        );
        assert!(report.contains("\n  3. reset org.matrix.mjolnir.enabled_protections to {\"enabled\":[]}"), "{report}");
        assert_eq!(numbered(&problems).len(), 3);
    }
}
