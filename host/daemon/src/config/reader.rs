//! Reading the config's values: each one checked, each problem kept with
//! its key path.

use std::path::Path;

use gleipnir_runtime::{CapabilitySet, QueryGrant, QueryGrants, capability};
use toml::Value;

use super::{ConfigProblem, Credentials, MAX_SECRET_FILE, private_file};

pub(super) struct Reader {
    pub(super) problems: Vec<ConfigProblem>,
}

impl Reader {
    /// A list of capability names at `path.key`. With `queries`, the list may
    /// also name query grants (`read-history`, `read-members`), which only
    /// the operator gives: the contract cannot declare them as capabilities.
    pub(super) fn capabilities(
        &mut self,
        table: &toml::Table,
        path: &str,
        key: &str,
        mut queries: Option<&mut QueryGrants>,
    ) -> CapabilitySet {
        let mut set = CapabilitySet::EMPTY;
        match table.get(key) {
            None => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let at = format!("{path}.{key}[{i}]");
                    let Some(name) = item.as_str() else {
                        self.problem(&at, "must be a capability name");
                        continue;
                    };
                    match (QueryGrant::parse(name), queries.as_deref_mut()) {
                        (Some(grant), Some(queries)) => queries.insert(grant),
                        (Some(_), None) => {
                            self.problem(&at, format!("`{name}` is granted by the operator only, in `grants`"))
                        }
                        (None, _) => match capability::parse(name) {
                            Ok(c) => set.insert(c),
                            Err(e) => self.problem(&at, e),
                        },
                    }
                }
            }
            Some(_) => self.problem(&format!("{path}.{key}"), "must be a list of capability names"),
        }
        set
    }

    /// A duration key of `table` (`section.key`, e.g. "50ms", "2m"), from
    /// `min_ms` to `max_ms`; `None` when absent or wrong (a problem then).
    pub(super) fn duration(
        &mut self,
        table: &toml::Table,
        section: &str,
        key: &str,
        min_ms: u64,
        max_ms: u64,
    ) -> Option<std::time::Duration> {
        let text = self.string(table, section, key, false)?;
        let path = format!("{section}.{key}");
        match gleipnir_runtime::settings::parse_duration(text) {
            Ok(ms) if (min_ms..=max_ms).contains(&ms) => Some(std::time::Duration::from_millis(ms)),
            Ok(_) => {
                let (min, max) = (
                    gleipnir_runtime::settings::format_duration(min_ms),
                    gleipnir_runtime::settings::format_duration(max_ms),
                );
                self.problem(&path, format!("`{text}` must be between {min} and {max}"));
                None
            }
            Err(e) => {
                self.problem(&path, e);
                None
            }
        }
    }

    /// A true/false key of `table` (`section.key`); `default` when absent
    /// or not a boolean (a problem then).
    pub(super) fn flag(&mut self, table: Option<&toml::Table>, section: &str, key: &str, default: bool) -> bool {
        match table.and_then(|t| t.get(key)) {
            None => default,
            Some(v) => v.as_bool().unwrap_or_else(|| {
                self.problem(&format!("{section}.{key}"), "must be true or false");
                default
            }),
        }
    }

    pub(super) fn problem(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(ConfigProblem { path: path.to_owned(), message: message.into() });
    }

    pub(super) fn known_keys(&mut self, path: &str, table: &toml::Table, known: &[&str]) {
        for key in table.keys() {
            if !known.contains(&key.as_str()) {
                let full = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                self.problem(&full, format!("unknown key; expected one of: {}", known.join(", ")));
            }
        }
    }

    pub(super) fn table<'a>(&mut self, root: &'a toml::Table, key: &str, required: bool) -> Option<&'a toml::Table> {
        match root.get(key) {
            None if required => {
                self.problem(key, "missing section");
                None
            }
            None => None,
            Some(Value::Table(t)) => Some(t),
            Some(_) => {
                self.problem(key, "must be a table ([section])");
                None
            }
        }
    }

    pub(super) fn section<'a>(&mut self, root: &'a toml::Table, key: &str, known: &[&str]) -> Option<&'a toml::Table> {
        let table = self.table(root, key, false)?;
        self.known_keys(key, table, known);
        Some(table)
    }

    pub(super) fn string<'a>(
        &mut self,
        table: &'a toml::Table,
        section: &str,
        key: &str,
        required: bool,
    ) -> Option<&'a str> {
        match table.get(key) {
            None if required => {
                self.problem(&format!("{section}.{key}"), "missing");
                None
            }
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                self.problem(&format!("{section}.{key}"), "must be a string");
                None
            }
        }
    }

    pub(super) fn credentials(&mut self, m: &toml::Table, base: &Path, readable_allowed: bool) -> Option<Credentials> {
        let given: Vec<&str> = ["access_token", "access_token_file", "password", "password_file"]
            .into_iter()
            .filter(|k| m.contains_key(*k))
            .collect();
        if given.len() != 1 {
            let message = if given.is_empty() {
                "missing: give one of access_token, access_token_file, password, password_file".to_owned()
            } else {
                format!("give only one of {}", given.join(", "))
            };
            self.problem("matrix.access_token", message);
            return None;
        }
        let key = given[0];
        let value = self.string(m, "matrix", key, true)?;
        let secret = if key.ends_with("_file") {
            let file = base.join(value);
            if let Err(e) = private_file(&file, readable_allowed)
                && file.exists()
            {
                self.problem(&format!("matrix.{key}"), e);
                return None;
            }
            match read_secret(&file) {
                Ok(Some(s)) => s.trim().to_owned(),
                Ok(None) => {
                    let message =
                        format!("{} is larger than 64 KiB; it should hold one token or password", file.display());
                    self.problem(&format!("matrix.{key}"), message);
                    return None;
                }
                Err(e) => {
                    self.problem(&format!("matrix.{key}"), format!("cannot read {}: {e}", file.display()));
                    return None;
                }
            }
        } else {
            value.to_owned()
        };
        if secret.is_empty() {
            self.problem(&format!("matrix.{key}"), "is empty");
            return None;
        }
        Some(if key.starts_with("access_token") {
            Credentials::AccessToken(secret)
        } else {
            Credentials::Password(secret)
        })
    }
}

/// A secret file's text; `None` when it is larger than [`MAX_SECRET_FILE`]
/// (read no further: a path to a huge file or `/dev/zero` must not take all
/// memory).
pub(super) fn read_secret(file: &Path) -> std::io::Result<Option<String>> {
    let (folder, name) = gleipnir_runtime::Folder::of_file(file)?;
    folder.read_limited(&name, MAX_SECRET_FILE)
}

/// `33554432`, `"32MiB"`, `"64MB"`, `"512KiB"` → bytes.
pub(super) fn parse_size(value: &Value) -> Result<usize, String> {
    if let Some(n) = value.as_integer() {
        return usize::try_from(n).map_err(|_| format!("{n} is not a size"));
    }
    let text = value.as_str().ok_or("must be a size like \"32MiB\" or a number of bytes")?.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let number: usize = text[..digits].parse().map_err(|_| format!("`{text}` is not a size like \"32MiB\""))?;
    let factor: usize = match text[digits..].trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        unit => return Err(format!("unknown unit `{unit}`; use KiB, MiB or GiB")),
    };
    number.checked_mul(factor).ok_or_else(|| format!("`{text}` is too large"))
}
