//! What one protection may use and what a ban may lead to, as the operator
//! configures it: the sandbox limits (`[sandbox]`, and `[protections.NAME]`
//! for one protection) and redaction on ban (`[policy]`).

use std::collections::BTreeMap;
use std::time::Duration;

use gleipnir_runtime::Limits;

use super::reader::{self, parse_size};

/// What the operator set: the reasons, and how far back and how many.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RedactOnBan {
    /// Lower-case patterns (globs or literals).
    reasons: Vec<String>,
    pub(crate) limit: usize,
    pub(crate) age: Duration,
}

impl RedactOnBan {
    pub(crate) fn new(reasons: &[String], limit: usize, age: Duration) -> RedactOnBan {
        RedactOnBan { reasons: reasons.iter().map(|r| r.to_lowercase()).collect(), limit, age }
    }

    /// The pattern `reason` matches, if any (the whole reason, case-insensitive).
    pub(crate) fn matching(&self, reason: &str) -> Option<&str> {
        let reason = reason.trim().to_lowercase();
        self.reasons
            .iter()
            .find(|pattern| match gleipnir_policy::glob::Glob::new(pattern) {
                Some(glob) => glob.matches(&reason),
                None => **pattern == reason,
            })
            .map(String::as_str)
    }
}

/// The keys of `[sandbox]`, which `[protections.NAME]` may set for one protection.
pub(super) const LIMIT_KEYS: &[&str] =
    &["call_deadline", "check_deadline", "memory", "max_actions", "instances", "tables", "table_elements"];

/// `base` with what `table` (at `path`) sets of [`LIMIT_KEYS`].
pub(super) fn read_limits(r: &mut reader::Reader, table: &toml::Table, path: &str, base: Limits) -> Limits {
    let mut limits = base;
    let deadline = |r: &mut reader::Reader, key: &str, max_ms: u64, out: &mut Duration| {
        if let Some(d) = r.duration(table, path, key, 1, max_ms) {
            *out = d;
        }
    };
    deadline(r, "call_deadline", 10_000, &mut limits.call_deadline);
    deadline(r, "check_deadline", 1_000, &mut limits.check_deadline);
    if let Some(value) = table.get("memory") {
        match parse_size(value) {
            Ok(bytes) if (1 << 20..=4 << 30).contains(&bytes) => limits.memory_bytes = bytes,
            Ok(_) => r.problem(&format!("{path}.memory"), "must be between 1MiB and 4GiB"),
            Err(e) => r.problem(&format!("{path}.memory"), e),
        }
    }
    let counts: [(&str, usize, &mut usize); 4] = [
        ("max_actions", 100_000, &mut limits.max_actions),
        ("instances", 64, &mut limits.instances),
        ("tables", 64, &mut limits.tables),
        ("table_elements", 1_000_000, &mut limits.table_elements),
    ];
    for (key, max, out) in counts {
        if let Some(value) = table.get(key) {
            match value.as_integer().and_then(|n| usize::try_from(n).ok()) {
                Some(n) if (1..=max).contains(&n) => *out = n,
                _ => r.problem(&format!("{path}.{key}"), format!("must be a whole number from 1 to {max}")),
            }
        }
    }
    limits
}

/// Limits from `KEY=VALUE` pairs (the command line's `--limit`), read as
/// `[sandbox]` reads them; a number is a number, anything else text.
pub(crate) fn limits_from_pairs(pairs: &[String]) -> Result<Limits, String> {
    let mut table = toml::Table::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else { return Err(format!("`{pair}`: write KEY=VALUE")) };
        let value = match value.trim().parse::<i64>() {
            Ok(n) => toml::Value::Integer(n),
            Err(_) => toml::Value::String(value.trim().to_owned()),
        };
        table.insert(key.trim().to_owned(), value);
    }
    let mut r = reader::Reader { problems: Vec::new() };
    r.known_keys("limit", &table, LIMIT_KEYS);
    let limits = read_limits(&mut r, &table, "limit", Limits::default());
    match r.problems.is_empty() {
        true => Ok(limits),
        false => Err(r.problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")),
    }
}

/// What each protection may use: the `[sandbox]` limits, or a protection's
/// own where `[protections.NAME]` sets any. A component file is known by its
/// name (`NAME.wasm`) before it is loaded, and that is how it is looked up.
#[derive(Debug, Clone, Default)]
pub(crate) struct PluginLimits {
    pub(crate) default: Limits,
    pub(crate) by_name: BTreeMap<String, Limits>,
}

impl PluginLimits {
    /// The limits for the component file `file` (`NAME.wasm`).
    pub(crate) fn for_file(&self, file: &str) -> Limits {
        let name = file.strip_suffix(".wasm").unwrap_or(file);
        self.by_name.get(name).copied().unwrap_or(self.default)
    }
}
