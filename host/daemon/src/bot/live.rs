//! Live operation: plugin files replaced while the bot runs (compiled off
//! the event path by the watcher (`watch.rs`), swapped in here between two
//! events) and the operator's settings file applied live (see `layers`).

use std::fmt::Write;
use std::path::Path;
use std::time::Instant;

use super::watch::{Change, WatchConfig, Watcher};
use gleipnir_runtime::{Plugin, settings};

use super::files::FileIn;
use super::layers::{Overrides, file_values, merge, parse_settings_file, settings_file_text};
use super::protections::{Provided, Refused};
use super::{Bot, account, sandboxed};

/// How long a changed file must stay unchanged before it is read.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(250);

impl Bot {
    /// Starts watching the plugin folder and the settings file.
    pub(crate) fn start_watcher(&mut self) {
        if self.watcher.is_some() || !self.config.watch {
            return;
        }
        let known = self
            .protections
            .files
            .iter()
            .filter_map(|(path, f)| f.running.as_ref().map(|p| (path.clone(), p.hash.clone())))
            .collect();
        let config = WatchConfig {
            plugins: self.folders.plugins.clone(),
            settings_file: self.folders.settings.as_ref().map(FileIn::shown),
            settle: SETTLE,
            known,
            limits: self.config.plugin_limits.clone(),
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
            Change::Settings => self.apply_settings_file(),
            Change::Failed(e) => format!("Plugin files are no longer watched: {e}"),
        };
        if !text.is_empty() {
            self.matrix.notify(&text).await;
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
        let entry = self.protections.files.entry(path.to_owned()).or_default();
        let previous = entry.running.clone();
        if previous.as_ref().is_some_and(|p| p.hash == hash) {
            entry.refused = None;
            return String::new();
        }
        let plugin = match result {
            Ok(p) => p,
            Err(e) => {
                entry.refused = Some(Refused { hash, why: e.to_string() });
                return match previous {
                    Some(Provided { name, version, .. }) => {
                        format!("{file} changed, but the new file does not load: {e}. {name} {version} keeps running.")
                    }
                    None => format!("{file} does not load: {e}"),
                };
            }
        };
        let (name, version) = (plugin.name().to_owned(), plugin.descriptor().version.clone());
        let refuse = |bot: &mut Bot, why: String| {
            if let Some(f) = bot.protections.files.get_mut(path) {
                f.refused = Some(Refused { hash: hash.clone(), why: why.clone() });
            }
            why
        };
        if let Some(Provided { name: old, version: old_version, .. }) = &previous
            && *old != name
        {
            let why = format!(
                "{file} now holds protection `{name}`, not `{old}`: not swapped ({old} {old_version} keeps running). \
                 A new protection needs a file of its own."
            );
            return refuse(self, why);
        }
        if previous.is_none()
            && let Some((other, _)) = self
                .protections
                .files
                .iter()
                .find(|(p, f)| *p != path && f.running.as_ref().is_some_and(|r| r.name == name))
        {
            let why = format!("{file} holds `{name}`, which {} already provides: not loaded.", file_name(other));
            return refuse(self, why);
        }

        let mut text = String::new();
        let compiled = format!("compiled in {} ms", took.as_millis());
        if let Some(slot) = self.protections.enabled.get(&name).cloned() {
            let old_version = slot.plugin().descriptor().version.clone();
            let (file_values, file_problems) =
                file_values(&name, self.protections.layers.file.get(&name), &plugin.descriptor().settings);
            let moderator = self.protections.layers.moderator.get(&name).cloned().unwrap_or_default();
            let overrides = merge(file_values, &moderator);
            let started = Instant::now();
            // One lock over the swap: no check nor event reaches either
            // version while the state moves.
            let swapped = {
                let mut instance = slot.lock();
                sandboxed(|| instance.successor(&plugin, &overrides)).map(|(new, handover)| {
                    *instance = new;
                    handover
                })
            };
            match swapped {
                Ok(handover) => {
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
                    if let Some(m) = self.protections.layers.moderator.get_mut(&name) {
                        let before = m.len();
                        m.retain(|(k, _)| !handover.dropped.iter().any(|(d, _)| d == k));
                        if m.len() != before {
                            let _ = super::layers::save_moderator(&self.matrix, &self.protections.layers, &name).await;
                        }
                    }
                    if let Some(health) = self.protections.health.get_mut(&name) {
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
                Some(Provided { version: old_version, .. }) => {
                    let _ =
                        write!(text, "{name} {old_version} → {version} loaded from {file} ({compiled}); not enabled.");
                }
                None => {
                    let _ = write!(text, "New protection {name} {version} loaded from {file} ({compiled}).");
                }
            }
        }
        self.protections.plugins.insert(name.clone(), plugin);
        if let Some(f) = self.protections.files.get_mut(path) {
            f.running = Some(Provided { name: name.clone(), version, hash });
            f.refused = None;
        }
        if previous.is_none() && !self.protections.enabled.contains_key(&name) && !self.safe_mode {
            if self.config.enable_new {
                let _ = write!(
                    text,
                    " {}",
                    super::commands::set_enabled(&self.matrix, &mut self.protections, &name, true).await
                );
            } else {
                let _ = write!(text, " `protections enable {name}` turns it on.");
            }
        }
        text
    }

    /// A component file was removed: its protection stops.
    async fn removed(&mut self, path: &Path) -> String {
        let file = file_name(path);
        let Some(entry) = self.protections.files.remove(path) else { return String::new() };
        let Some(Provided { name, version, .. }) = entry.running else { return String::new() };
        self.protections.plugins.remove(&name);
        if self.protections.enabled.remove(&name).is_none() {
            return format!("{file} was removed: {name} {version} is no longer loaded.");
        }
        let names = self.protections.enabled_names();
        let saved = match self.matrix.set_account(account::ENABLED_PROTECTIONS, account::enabled_content(&names)).await
        {
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
        if self.protections.layers.file_text.as_ref() == Some(&text) {
            return String::new();
        }
        self.protections.layers.file_text = Some(text.clone());
        let new = match parse_settings_file(&path, &text) {
            Ok(t) => t,
            Err(e) => return format!("The settings file was not applied: {e}. The previous settings stay."),
        };
        let mut problems = Vec::new();
        let mut waiting = Vec::new();
        for (name, table) in &new {
            match self.protections.plugins.get(name) {
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
        let old = std::mem::replace(&mut self.protections.layers.file, new);
        let targets: Vec<(String, Overrides)> = self
            .protections
            .enabled
            .iter()
            .map(|(name, i)| (name.clone(), self.protections.effective(name, &i.plugin()).0))
            .filter(|(name, overrides)| self.protections.enabled[name].overrides() != overrides.as_slice())
            .collect();
        // (name, overrides before, settings before) of each protection changed so far.
        let mut done: Vec<(String, Overrides, Vec<gleipnir_runtime::Setting>)> = Vec::new();
        for (name, overrides) in targets {
            let slot = self.protections.enabled.get(&name).expect("listed from enabled");
            let (before, values) = (slot.overrides(), slot.settings());
            if let Err(e) = sandboxed(|| slot.lock().configure(&overrides)) {
                // Put back what changed already.
                self.protections.layers.file = old;
                for (name, before, _) in done {
                    if let Some(i) = self.protections.enabled.get_mut(&name) {
                        let _ = sandboxed(|| i.lock().configure(&before));
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
            let after = self.protections.enabled[name].settings();
            for setting in after {
                let old = before.iter().find(|s| s.key == setting.key).map(|s| settings::format_value(&s.value));
                let new = settings::format_value(&setting.value);
                if old.as_deref() != Some(new.as_str()) {
                    let _ = write!(
                        text,
                        "\n- {name}.{}: {} → {new} ({})",
                        setting.key,
                        old.unwrap_or_default(),
                        self.protections.source(name, &setting.key)
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
        if self.protections.files.is_empty() {
            return format!("No plugin files in {}.", self.folders.plugins.path().display());
        }
        let mut out =
            format!("Plugin files in {} ({}):", self.folders.plugins.path().display(), self.protections.files.len());
        for (path, f) in &self.protections.files {
            let _ = write!(out, "\n- {}: ", file_name(path));
            match &f.running {
                Some(Provided { name, version, hash }) => {
                    let status =
                        if self.protections.enabled.contains_key(name) { "enabled" } else { "loaded, not enabled" };
                    let _ = write!(out, "{name} {version}, sha256 {}, {status}", &hash[..hash.len().min(12)]);
                }
                None => out.push_str("not loaded"),
            }
            if let Some(Refused { hash, why }) = &f.refused {
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
            .protections
            .files
            .iter()
            .find(|(_, f)| f.running.as_ref().is_some_and(|r| r.name == name))
            .map(|(p, _)| p.clone())
        else {
            return format!("No loaded protection is named `{name}`; `plugins` lists the files.");
        };
        match &self.watcher {
            Some(watcher) => {
                // The same content is swapped in again: a fresh instance, quarantine lifted.
                if let Some(running) = self.protections.files.get_mut(&path).and_then(|f| f.running.as_mut()) {
                    running.hash.clear();
                }
                watcher.reload(path.clone());
                format!("Reloading {name} from {}; the result follows.", file_name(&path))
            }
            None => "The plugin folder is not watched (plugins.watch = false): `restart` reads it again.".to_owned(),
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}
