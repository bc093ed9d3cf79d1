//! Live operation: plugin files replaced while the bot runs (compiled off
//! the event path by `gleipnir_runtime::watch`, swapped in here between two
//! events), the operator's settings file applied live, and capabilities that
//! moderators may grant.
//!
//! Settings are layered: a protection's default ◄ the operator's settings
//! file ◄ what moderators set with commands. Every way in goes through the
//! same validate → configure path, and a refused change leaves what runs as
//! it was.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use gleipnir_runtime::watch::{Change, WatchConfig, Watcher};
use gleipnir_runtime::{CapabilitySet, Plugin, SettingKind, SettingSpec, SettingValue, capability, settings};
use serde_json::{Value, json};

use super::store::FileIn;
use super::{Bot, sandboxed, store};

/// Account data: capabilities moderators granted, by protection.
pub(crate) const GRANTS: &str = "org.gleipnir.protection_grants";

/// Setting values by key.
type Overrides = Vec<(String, SettingValue)>;

/// How long a changed file must stay unchanged before it is read.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(250);

/// One component file in the plugin folder.
#[derive(Debug, Clone, Default)]
pub(crate) struct PluginFile {
    /// The protection this file provides, as running now (name, version, hash).
    pub(crate) running: Option<(String, String, String)>,
    /// The file's newest content was refused: its hash and why.
    pub(crate) refused: Option<(String, String)>,
}

/// Where settings come from besides each protection's defaults.
#[derive(Debug, Default)]
pub(crate) struct Layers {
    /// The operator's settings file, by protection (checked against each
    /// protection's spec whenever it is applied).
    pub(crate) file: BTreeMap<String, toml::Table>,
    /// What moderators set, by protection.
    pub(crate) moderator: BTreeMap<String, Vec<(String, SettingValue)>>,
    /// The settings file's text when last read: an unchanged file is not applied again.
    pub(crate) file_text: Option<String>,
}

/// Reads the operator's settings file: one table per protection. A file
/// that does not exist holds no settings.
pub(crate) fn read_settings_file(file: &FileIn) -> Result<BTreeMap<String, toml::Table>, String> {
    parse_settings_file(&file.shown(), &settings_file_text(file)?)
}

/// The settings file's text; empty when there is no file.
pub(crate) fn settings_file_text(file: &FileIn) -> Result<String, String> {
    match file.text() {
        Ok(t) => Ok(t.unwrap_or_default()),
        Err(e) => Err(format!("cannot read {}: {e}", file.shown().display())),
    }
}

fn parse_settings_file(path: &Path, text: &str) -> Result<BTreeMap<String, toml::Table>, String> {
    let root: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let message = e.message().to_owned();
        match e.span() {
            Some(span) => {
                let line = text.get(..span.start).unwrap_or(text).matches('\n').count() + 1;
                format!("{} line {line}: {message}", path.display())
            }
            None => format!("{}: {message}", path.display()),
        }
    })?;
    let mut out = BTreeMap::new();
    for (name, value) in root {
        match value {
            toml::Value::Table(table) => {
                out.insert(name, table);
            }
            _ => return Err(format!("`{name}`: must be a table of settings, like [{name}]")),
        }
    }
    Ok(out)
}

/// One value from the settings file, checked against its spec.
pub(crate) fn toml_value(spec: &SettingSpec, value: &toml::Value) -> Result<SettingValue, String> {
    use toml::Value as T;
    let strings = |items: &[T]| -> Result<Vec<String>, String> {
        items
            .iter()
            .enumerate()
            .map(|(i, v)| v.as_str().map(str::to_owned).ok_or_else(|| format!("item {} must be a string", i + 1)))
            .collect()
    };
    let converted = match (&spec.kind, value) {
        (SettingKind::Flag, T::Boolean(b)) => SettingValue::Flag(*b),
        (SettingKind::Integer(_), T::Integer(i)) => SettingValue::Integer(*i),
        (SettingKind::Number(_), T::Float(f)) => SettingValue::Number(*f),
        (SettingKind::Number(_), T::Integer(i)) => SettingValue::Number(*i as f64),
        (SettingKind::Duration, T::Integer(ms)) if *ms >= 0 => SettingValue::Duration(*ms as u64),
        (SettingKind::Duration, T::String(text)) => SettingValue::Duration(settings::parse_duration(text)?),
        (SettingKind::Text, T::String(t)) => SettingValue::Text(t.clone()),
        (SettingKind::UserId, T::String(t)) => SettingValue::UserId(t.clone()),
        (SettingKind::RoomId, T::String(t)) => SettingValue::RoomId(t.clone()),
        (SettingKind::Choice(_), T::String(t)) => SettingValue::Choice(t.clone()),
        (SettingKind::TextList, T::Array(items)) => SettingValue::TextList(strings(items)?),
        (SettingKind::UserIds, T::Array(items)) => SettingValue::UserIds(strings(items)?),
        (SettingKind::RoomIds, T::Array(items)) => SettingValue::RoomIds(strings(items)?),
        (kind, value) => {
            return Err(format!("expected {}, got a TOML {}", settings::format_kind(kind), value.type_str()));
        }
    };
    settings::check_value(spec, &converted).map_err(|e| e.problem)?;
    Ok(converted)
}

/// The settings file's values for one protection, and the problems with
/// the others (`name.key: why`).
pub(crate) fn file_values(
    name: &str,
    table: Option<&toml::Table>,
    specs: &[SettingSpec],
) -> (Vec<(String, SettingValue)>, Vec<String>) {
    let (mut values, mut problems) = (Vec::new(), Vec::new());
    for (key, value) in table.into_iter().flatten() {
        match specs.iter().find(|s| s.key == *key) {
            None => problems.push(format!("{name}.{key}: {name} has no such setting")),
            Some(spec) => match toml_value(spec, value) {
                Ok(v) => values.push((key.clone(), v)),
                Err(why) => problems.push(format!("{name}.{key}: {why}")),
            },
        }
    }
    (values, problems)
}

/// The file's values with the moderators' on top.
pub(crate) fn merge(
    file: Vec<(String, SettingValue)>,
    moderator: &[(String, SettingValue)],
) -> Vec<(String, SettingValue)> {
    let mut out: Vec<_> = file.into_iter().filter(|(k, _)| !moderator.iter().any(|(m, _)| m == k)).collect();
    out.extend(moderator.iter().cloned());
    out
}

impl Bot {
    /// The effective overrides of a protection (file ◄ moderators), checked
    /// against `plugin`'s spec, and the problems with the file's values.
    pub(crate) fn effective(&self, name: &str, plugin: &Plugin) -> (Vec<(String, SettingValue)>, Vec<String>) {
        let (file, problems) = file_values(name, self.layers.file.get(name), &plugin.descriptor().settings);
        let moderator = self.layers.moderator.get(name).map(Vec::as_slice).unwrap_or_default();
        (merge(file, moderator), problems)
    }

    /// Where a setting's value comes from, for `protections show`.
    pub(crate) fn source(&self, name: &str, key: &str) -> &'static str {
        if self.layers.moderator.get(name).is_some_and(|m| m.iter().any(|(k, _)| k == key)) {
            "set by a moderator"
        } else if self.layers.file.get(name).is_some_and(|t| t.contains_key(key)) {
            "operator settings file"
        } else {
            "default"
        }
    }

    /// What a protection may do: the operator's grants and the moderators'.
    /// The host queries the operator grants `name` (`read-history`, `read-members`).
    pub(crate) fn query_grants(&self, name: &str) -> gleipnir_runtime::QueryGrants {
        self.config.query_grants.get(name).copied().unwrap_or_default()
    }

    pub(crate) fn granted(&self, name: &str) -> CapabilitySet {
        let mut set = self.config.grants.get(name).copied().unwrap_or_default();
        for c in self.moderator_grants.get(name).copied().unwrap_or_default().iter() {
            set.insert(c);
        }
        set
    }

    /// Starts watching the plugin folder and the settings file.
    pub(crate) fn start_watcher(&mut self) {
        if self.watcher.is_some() || !self.config.watch {
            return;
        }
        let known = self
            .files
            .iter()
            .filter_map(|(path, f)| f.running.as_ref().map(|(_, _, hash)| (path.clone(), hash.clone())))
            .collect();
        let config = WatchConfig {
            plugins: self.folders.plugins.clone(),
            settings_file: self.folders.settings.as_ref().map(FileIn::shown),
            settle: SETTLE,
            known,
        };
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        match Watcher::start(self.runtime.clone(), config, move |change| {
            let _ = tx.send(change);
        }) {
            Ok(watcher) => {
                self.watcher = Some(watcher);
                self.changes = Some(rx);
            }
            Err(e) => tracing::error!("plugins will not be swapped live: {e}"),
        }
    }

    /// Handles one change the watcher saw, between two events.
    pub(crate) async fn live_change(&mut self, change: Change) {
        let text = match change {
            Change::Compiled { path, hash, result, took, written } => {
                let text = self.compiled(&path, hash, result, took).await;
                tracing::info!(file = %path.display(), since_written = ?written.elapsed(), "{text}");
                text
            }
            Change::Removed { path } => self.removed(&path).await,
            Change::Settings { .. } => self.apply_settings_file(),
            Change::Failed(e) => format!("Plugin files are no longer watched: {e}"),
        };
        if !text.is_empty() {
            self.notify(&text).await;
        }
    }

    /// A component file was written: load the new protection, or swap a new
    /// version of a running one in. A version that does not load or start
    /// leaves the old one running.
    async fn compiled(
        &mut self,
        path: &Path,
        hash: String,
        result: Result<Plugin, gleipnir_runtime::LoadError>,
        took: std::time::Duration,
    ) -> String {
        let file = file_name(path);
        let entry = self.files.entry(path.to_owned()).or_default();
        let previous = entry.running.clone();
        if previous.as_ref().is_some_and(|(_, _, h)| *h == hash) {
            entry.refused = None;
            return String::new();
        }
        let plugin = match result {
            Ok(p) => p,
            Err(e) => {
                entry.refused = Some((hash, e.to_string()));
                return match previous {
                    Some((name, version, _)) => {
                        format!("{file} changed, but the new file does not load: {e}. {name} {version} keeps running.")
                    }
                    None => format!("{file} does not load: {e}"),
                };
            }
        };
        let (name, version) = (plugin.name().to_owned(), plugin.descriptor().version.clone());
        let refuse = |bot: &mut Bot, why: String| {
            if let Some(f) = bot.files.get_mut(path) {
                f.refused = Some((hash.clone(), why.clone()));
            }
            why
        };
        if let Some((old, old_version, _)) = &previous
            && *old != name
        {
            let why = format!(
                "{file} now holds protection `{name}`, not `{old}`: not swapped ({old} {old_version} keeps running). \
                 A new protection needs a file of its own."
            );
            return refuse(self, why);
        }
        if previous.is_none()
            && let Some((other, _)) =
                self.files.iter().find(|(p, f)| *p != path && f.running.as_ref().is_some_and(|(n, _, _)| *n == name))
        {
            let why = format!("{file} holds `{name}`, which {} already provides: not loaded.", file_name(other));
            return refuse(self, why);
        }

        let mut text = String::new();
        let compiled = format!("compiled in {} ms", took.as_millis());
        if let Some(instance) = self.enabled.get_mut(&name) {
            let old_version = instance.plugin().descriptor().version.clone();
            let (file_values, file_problems) =
                file_values(&name, self.layers.file.get(&name), &plugin.descriptor().settings);
            let moderator = self.layers.moderator.get(&name).cloned().unwrap_or_default();
            let overrides = merge(file_values, &moderator);
            let started = Instant::now();
            match sandboxed(|| instance.successor(&plugin, &overrides)) {
                Ok((new, handover)) => {
                    *instance = new;
                    let swap = started.elapsed();
                    let _ = write!(
                        text,
                        "{name} {old_version} → {version} swapped in from {file} ({compiled}; swap {} µs)",
                        swap.as_micros()
                    );
                    match (&handover.state_refused, handover.state_bytes) {
                        (Some(why), _) => {
                            let _ = write!(text, "; its state was not carried over: {why}");
                        }
                        (None, 0) => {}
                        (None, n) => {
                            let _ = write!(text, "; state carried over ({n} bytes)");
                        }
                    }
                    text.push('.');
                    for (key, why) in &handover.dropped {
                        let _ = write!(text, "\nSetting `{key}` dropped: {why}.");
                    }
                    for problem in file_problems {
                        let _ = write!(text, "\nIgnored from the settings file: {problem}.");
                    }
                    if !handover.added.is_empty() {
                        let _ = write!(text, "\nNew settings (at their defaults): {}.", handover.added.join(", "));
                    }
                    // Moderators' values the new version cannot take are forgotten.
                    if let Some(m) = self.layers.moderator.get_mut(&name) {
                        let before = m.len();
                        m.retain(|(k, _)| !handover.dropped.iter().any(|(d, _)| d == k));
                        if m.len() != before {
                            let _ = self.save_moderator_settings(&name).await;
                        }
                    }
                    if let Some(health) = self.health.get_mut(&name) {
                        health.clear();
                    }
                }
                Err(e) => {
                    let why = format!(
                        "{file}: {name} {version} was not swapped in ({compiled}): {e}. {name} {old_version} keeps running."
                    );
                    return refuse(self, why);
                }
            }
        } else {
            match &previous {
                Some((_, old_version, _)) => {
                    let _ =
                        write!(text, "{name} {old_version} → {version} loaded from {file} ({compiled}); not enabled.");
                }
                None => {
                    let _ = write!(text, "New protection {name} {version} loaded from {file} ({compiled}).");
                }
            }
        }
        self.plugins.insert(name.clone(), plugin);
        if let Some(f) = self.files.get_mut(path) {
            f.running = Some((name.clone(), version, hash));
            f.refused = None;
        }
        if previous.is_none() && !self.enabled.contains_key(&name) && !self.safe_mode {
            if self.config.enable_new {
                let _ = write!(text, " {}", self.set_enabled(&name, true).await);
            } else {
                let _ = write!(text, " `protections enable {name}` turns it on.");
            }
        }
        text
    }

    /// A component file was removed: its protection stops.
    async fn removed(&mut self, path: &Path) -> String {
        let file = file_name(path);
        let Some(entry) = self.files.remove(path) else { return String::new() };
        let Some((name, version, _)) = entry.running else { return String::new() };
        self.plugins.remove(&name);
        if self.enabled.remove(&name).is_none() {
            return format!("{file} was removed: {name} {version} is no longer loaded.");
        }
        let names: Vec<String> = self.enabled.keys().cloned().collect();
        let saved = match store::write(&self.client, store::ENABLED_PROTECTIONS, store::enabled_content(&names)).await {
            Ok(()) => "",
            Err(_) => " (saving the list of enabled protections failed)",
        };
        format!(
            "{file} was removed: {name} {version} is disabled{saved}. Put the file back and `protections enable {name}` to turn it on again."
        )
    }

    /// Applies the operator's settings file to every protection, or to none:
    /// a value that does not fit, or a protection refusing its new settings,
    /// leaves every protection's settings as they were.
    pub(crate) fn apply_settings_file(&mut self) -> String {
        let Some(file) = self.folders.settings.clone() else { return String::new() };
        let path = file.shown();
        let shown = path.display();
        let text = match settings_file_text(&file) {
            Ok(t) => t,
            Err(e) => return format!("The settings file was not applied: {e}. The previous settings stay."),
        };
        if self.layers.file_text.as_ref() == Some(&text) {
            return String::new();
        }
        self.layers.file_text = Some(text.clone());
        let new = match parse_settings_file(&path, &text) {
            Ok(t) => t,
            Err(e) => return format!("The settings file was not applied: {e}. The previous settings stay."),
        };
        let mut problems = Vec::new();
        let mut waiting = Vec::new();
        for (name, table) in &new {
            match self.plugins.get(name) {
                Some(p) => problems.extend(file_values(name, Some(table), &p.descriptor().settings).1),
                None => waiting.push(name.clone()),
            }
        }
        if !problems.is_empty() {
            return format!(
                "The settings file {shown} was not applied:\n- {}\nThe previous settings stay.",
                problems.join("\n- ")
            );
        }
        let old = std::mem::replace(&mut self.layers.file, new);
        let targets: Vec<(String, Overrides)> = self
            .enabled
            .iter()
            .map(|(name, i)| (name.clone(), self.effective(name, i.plugin()).0))
            .filter(|(name, overrides)| self.enabled[name].overrides() != overrides.as_slice())
            .collect();
        // (name, overrides before, settings before) of each protection changed so far.
        let mut done: Vec<(String, Overrides, Vec<gleipnir_runtime::Setting>)> = Vec::new();
        for (name, overrides) in targets {
            let instance = self.enabled.get_mut(&name).expect("listed from enabled");
            let (before, values) = (instance.overrides().to_vec(), instance.settings().to_vec());
            if let Err(e) = sandboxed(|| instance.configure(&overrides)) {
                // Put back what changed already.
                self.layers.file = old;
                for (name, before, _) in done {
                    if let Some(i) = self.enabled.get_mut(&name) {
                        let _ = sandboxed(|| i.configure(&before));
                    }
                }
                return format!("The settings file {shown} was not applied: {name}: {e}. The previous settings stay.");
            }
            done.push((name, before, values));
        }
        let mut text = format!("Applied the settings file {shown}.");
        if done.is_empty() {
            text.push_str(" No running protection's settings changed.");
        }
        for (name, _, before) in &done {
            let after = self.enabled[name].settings();
            for setting in after {
                let old = before.iter().find(|s| s.key == setting.key).map(|s| settings::format_value(&s.value));
                let new = settings::format_value(&setting.value);
                if old.as_deref() != Some(new.as_str()) {
                    let _ = write!(
                        text,
                        "\n- {name}.{}: {} → {new} ({})",
                        setting.key,
                        old.unwrap_or_default(),
                        self.source(name, &setting.key)
                    );
                }
            }
        }
        if !waiting.is_empty() {
            let _ = write!(
                text,
                "\nNo protection is loaded for: {} (their settings wait until one is).",
                waiting.join(", ")
            );
        }
        text
    }

    /// `plugins`: the component files, what each provides, and problems.
    pub(crate) fn plugins_report(&self) -> String {
        if self.files.is_empty() {
            return format!("No plugin files in {}.", self.folders.plugins.path().display());
        }
        let mut out = format!("Plugin files in {} ({}):", self.folders.plugins.path().display(), self.files.len());
        for (path, f) in &self.files {
            let _ = write!(out, "\n- {}: ", file_name(path));
            match &f.running {
                Some((name, version, hash)) => {
                    let status = if self.enabled.contains_key(name) { "enabled" } else { "loaded, not enabled" };
                    let _ = write!(out, "{name} {version}, sha256 {}, {status}", &hash[..hash.len().min(12)]);
                }
                None => out.push_str("not loaded"),
            }
            if let Some((hash, why)) = &f.refused {
                let _ = write!(
                    out,
                    "; the file's current content (sha256 {}) was refused: {why}",
                    &hash[..hash.len().min(12)]
                );
            }
        }
        if self.watcher.is_none() {
            out.push_str("\nThe folder is not watched: changes are read at `restart` or `plugins reload NAME`.");
        }
        out
    }

    /// `plugins reload NAME`: read NAME's file again (even if unchanged).
    pub(crate) fn reload(&mut self, name: &str) -> String {
        let Some(path) = self
            .files
            .iter()
            .find(|(_, f)| f.running.as_ref().is_some_and(|(n, _, _)| n == name))
            .map(|(p, _)| p.clone())
        else {
            return format!("No loaded protection is named `{name}`; `plugins` lists the files.");
        };
        match &self.watcher {
            Some(watcher) => {
                // The same content is swapped in again: a fresh instance, quarantine lifted.
                if let Some((_, _, hash)) = self.files.get_mut(&path).and_then(|f| f.running.as_mut()) {
                    hash.clear();
                }
                watcher.reload(path.clone());
                format!("Reloading {name} from {}; the result follows.", file_name(&path))
            }
            None => "The plugin folder is not watched (plugins.watch = false): `restart` reads it again.".to_owned(),
        }
    }

    /// `protections grant|revoke NAME CAPABILITY`.
    pub(crate) async fn grant(&mut self, name: &str, capability_name: &str, grant: bool) -> String {
        // Read first: a failed read must not become "nothing stored" and be written back.
        let stored = match store::read(&self.client, GRANTS).await {
            Ok(stored) => stored,
            Err(e) => return format!("Cannot read the stored grants ({e:#}). Nothing changed."),
        };
        let Some(plugin) = self.plugins.get(name) else { return format!("No protection named `{name}` is loaded.") };
        let cap = match capability::parse(capability_name) {
            Ok(c) => c,
            Err(e) => return format!("{e}. Nothing changed."),
        };
        let operator = self.config.grants.get(name).copied().unwrap_or_default();
        let mut mine = self.moderator_grants.get(name).copied().unwrap_or_default();
        if grant {
            if operator.contains(cap) || mine.contains(cap) {
                return format!("{name} already has `{capability_name}`.");
            }
            if !self.config.grantable.get(name).copied().unwrap_or_default().contains(cap) {
                return format!(
                    "The operator does not let moderators grant `{capability_name}` to {name} \
                     (protections.{name}.grantable in the config). Nothing changed."
                );
            }
            if !plugin.declared().contains(cap) {
                return format!(
                    "{name} does not declare `{capability_name}`, so it could not use it. Nothing changed."
                );
            }
            mine.insert(cap);
        } else {
            if !mine.contains(cap) {
                return if operator.contains(cap) {
                    format!(
                        "`{capability_name}` is granted to {name} by the operator (protections.{name}.grants in the config); \
                         only the config can take it back. Nothing changed."
                    )
                } else {
                    format!("{name} does not have `{capability_name}`. Nothing changed.")
                };
            }
            mine.remove(cap);
        }
        self.moderator_grants.insert(name.to_owned(), mine);
        let granted = self.granted(name);
        if let Some(instance) = self.enabled.get_mut(name) {
            instance.set_granted(granted);
        }
        // Only this protection's entry changes: what is stored for others
        // (even grants the config no longer allows) stays as it is.
        let entry = json!(mine.iter().map(capability::name).collect::<Vec<_>>());
        let saved = match with_entry(stored, GRANTS, name, entry) {
            Ok(content) => match store::write(&self.client, GRANTS, content).await {
                Ok(()) => String::new(),
                Err(e) => format!(" (live, but saving failed: {e:#}; it will not survive a restart)"),
            },
            Err(e) => format!(" (live, but not saved: {e})"),
        };
        let verb = if grant { "granted to" } else { "revoked from" };
        format!(
            "`{capability_name}` {verb} {name}{saved}. It may now use: {}.",
            self.granted(name).intersection(plugin_declared(self, name))
        )
    }

    /// Reads the grants moderators gave; those the config no longer allows are left out.
    pub(crate) async fn load_grants(&mut self) -> Vec<String> {
        self.moderator_grants.clear();
        let mut dropped = Vec::new();
        let content = match store::read(&self.client, GRANTS).await {
            Ok(content) => content,
            Err(e) => {
                // Fewer powers than granted, never more: said, and `restart` reads again.
                dropped.push(format!("every grant moderators gave (cannot read {GRANTS}: {e:#})"));
                None
            }
        };
        let Some(Value::Object(map)) = content else { return dropped };
        for (name, caps) in map {
            let allowed = self.config.grantable.get(&name).copied().unwrap_or_default();
            let mut set = CapabilitySet::EMPTY;
            for cap in caps.as_array().into_iter().flatten() {
                match cap.as_str().map(capability::parse) {
                    Some(Ok(c)) if allowed.contains(c) => set.insert(c),
                    _ => dropped.push(format!("{name}: {cap}")),
                }
            }
            self.moderator_grants.insert(name, set);
        }
        dropped
    }

    /// Saves what moderators set for one protection, as text.
    pub(crate) async fn save_moderator_settings(&self, name: &str) -> anyhow::Result<()> {
        // A failed read is not "nothing saved": writing then would lose every
        // other protection's settings.
        let all = store::read(&self.client, store::SETTINGS).await?;
        let saved: serde_json::Map<String, Value> = self
            .layers
            .moderator
            .get(name)
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), Value::String(settings::format_value(v))))
            .collect();
        let all = with_entry(all, store::SETTINGS, name, Value::Object(saved)).map_err(anyhow::Error::msg)?;
        store::write(&self.client, store::SETTINGS, all).await
    }

    /// Records the files loaded at start (for `plugins` and the watcher).
    pub(crate) fn record_file(&mut self, path: PathBuf, outcome: Result<&Plugin, String>) {
        let entry = self.files.entry(path).or_default();
        match outcome {
            Ok(p) => {
                entry.running =
                    Some((p.name().to_owned(), p.descriptor().version.clone(), p.content_hash().to_owned()));
                entry.refused = None;
            }
            Err(why) => entry.refused = Some((String::new(), why)),
        }
    }
}

fn plugin_declared(bot: &Bot, name: &str) -> CapabilitySet {
    bot.plugins.get(name).map(Plugin::declared).unwrap_or_default()
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// A store of one entry per protection (`key`'s content) with `name`'s entry
/// replaced and the others as stored. Content of another shape (edited by
/// hand, by another client) is refused, not overwritten.
fn with_entry(all: Option<Value>, key: &str, name: &str, entry: Value) -> Result<Value, String> {
    let mut all = all.unwrap_or_else(|| json!({}));
    let Some(map) = all.as_object_mut() else {
        return Err(format!("{key} is not an object (it is {all}); nothing was saved: `restart` offers to reset it"));
    };
    map.insert(name.to_owned(), entry);
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_settings_of_another_shape_are_refused_not_a_panic() {
        let one = |v: &str| json!({"k": v});
        let all = with_entry(Some(json!({"other": {"x": "1"}})), "s", "flooding", one("2")).unwrap();
        assert_eq!(all, json!({"other": {"x": "1"}, "flooding": {"k": "2"}}));
        assert_eq!(with_entry(None, "s", "flooding", one("2")).unwrap(), json!({"flooding": {"k": "2"}}));
        for shape in [json!([1, 2]), json!("text"), json!(3)] {
            let error = with_entry(Some(shape), "s", "flooding", one("2")).unwrap_err();
            assert!(error.contains("is not an object"), "{error}");
        }
    }
    use gleipnir_runtime::IntegerBounds;

    fn specs() -> Vec<SettingSpec> {
        let spec = |key: &str, kind, default| SettingSpec { key: key.into(), doc: String::new(), kind, default };
        vec![
            spec(
                "max-per-minute",
                SettingKind::Integer(IntegerBounds { min: Some(1), max: Some(100) }),
                SettingValue::Integer(10),
            ),
            spec("window", SettingKind::Duration, SettingValue::Duration(60_000)),
            spec("words", SettingKind::TextList, SettingValue::TextList(Vec::new())),
            spec("mode", SettingKind::Choice(vec!["a".into(), "b".into()]), SettingValue::Choice("a".into())),
        ]
    }

    fn file(text: &str) -> Result<BTreeMap<String, toml::Table>, String> {
        let path = std::env::temp_dir().join(format!("gleipnir-live-{}-{}.toml", std::process::id(), text.len()));
        std::fs::write(&path, text).unwrap();
        let read = read_settings_file(&FileIn::open(&path).unwrap());
        let _ = std::fs::remove_file(&path);
        read.map_err(|e| e.replace(&path.display().to_string(), "FILE"))
    }

    #[test]
    fn values_are_typed_and_checked_with_their_key_path() {
        let tables =
            file("[flooding]\nmax-per-minute = 5\nwindow = \"2m\"\nwords = [\"a b\", \"c\"]\nmode = \"b\"\n").unwrap();
        let (values, problems) = file_values("flooding", tables.get("flooding"), &specs());
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            values,
            vec![
                ("max-per-minute".to_owned(), SettingValue::Integer(5)),
                ("mode".to_owned(), SettingValue::Choice("b".into())),
                ("window".to_owned(), SettingValue::Duration(120_000)),
                ("words".to_owned(), SettingValue::TextList(vec!["a b".into(), "c".into()])),
            ]
        );
        let tables =
            file("[flooding]\nmax-per-minute = 500\nwindow = true\nwords = [1]\nmode = \"z\"\nnope = 1\n").unwrap();
        let (values, problems) = file_values("flooding", tables.get("flooding"), &specs());
        assert!(values.is_empty());
        assert_eq!(
            problems,
            [
                "flooding.max-per-minute: 500 is outside 1..=100",
                "flooding.mode: `z` is not one of: a, b",
                "flooding.nope: flooding has no such setting",
                "flooding.window: expected duration, got a TOML boolean",
                "flooding.words: item 1 must be a string",
            ]
        );
    }

    #[test]
    fn a_broken_file_is_refused_with_its_line() {
        assert_eq!(file("[flooding]\nmax-per-minute = \n").unwrap_err().split(':').next(), Some("FILE line 2"));
        assert_eq!(file("flooding = 3\n").unwrap_err(), "`flooding`: must be a table of settings, like [flooding]");
        let missing =
            read_settings_file(&FileIn::open(&std::env::temp_dir().join("gleipnir-no-such-settings.toml")).unwrap())
                .unwrap();
        assert!(missing.is_empty());
    }

    #[test]
    fn moderators_win_over_the_file() {
        let file = vec![("a".to_owned(), SettingValue::Integer(1)), ("b".to_owned(), SettingValue::Integer(2))];
        let moderator = [("b".to_owned(), SettingValue::Integer(3))];
        assert_eq!(
            merge(file, &moderator),
            vec![("a".to_owned(), SettingValue::Integer(1)), ("b".to_owned(), SettingValue::Integer(3))]
        );
    }
}
