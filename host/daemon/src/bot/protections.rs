//! The protections part: the plugins loaded and the files they came from,
//! the enabled instances with their settings layers and grants, and each
//! one's health. It holds no client: events go in, jobs come out (carried
//! out by the executor like every action); its only I/O is loading plugin
//! files from the plugin folder.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use gleipnir_runtime::{CapabilitySet, Event, Folder, Instance, Plugin, QueryGrants, Runtime, SettingValue, event};

use super::executor::Job;
use super::health::Health;
use super::layers::{Layers, Overrides, file_values, merge};
use super::protected::Protected;
use super::queries::BotQueries;
use super::sandboxed;
use crate::config::Config;
use crate::state::{Kind, Path, Problem};

mod turn;

use turn::{Turn, handle_instance};
pub(crate) use turn::{only_in_protected_rooms, refusal_reports};

/// An enabled protection's instance, shared with the pre-emptive checks
/// (`gate.rs`), which call it between the bot's own calls: a guard is
/// taken for one call and never held across an `await`.
#[derive(Clone)]
pub(crate) struct Slot(Arc<Mutex<Instance>>);

impl Slot {
    pub(crate) fn new(instance: Instance) -> Slot {
        Slot(Arc::new(Mutex::new(instance)))
    }

    /// The instance for one call. A panic in a call cannot leave it half
    /// changed for the host (guest state is the guest's): the poison is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Instance> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn plugin(&self) -> Plugin {
        self.lock().plugin().clone()
    }

    /// Its settings in force.
    pub(crate) fn settings(&self) -> Vec<gleipnir_runtime::Setting> {
        self.lock().settings().to_vec()
    }

    /// The values it was configured with (file ◄ moderators).
    pub(crate) fn overrides(&self) -> Vec<(String, SettingValue)> {
        self.lock().overrides().to_vec()
    }

    /// The fault that stopped it, if one did (said as text).
    pub(crate) fn fault(&self) -> Option<String> {
        self.lock().fault().map(ToString::to_string)
    }
}

/// What the operator's config gives protections.
#[derive(Clone)]
struct Operator {
    grants: BTreeMap<String, CapabilitySet>,
    query_grants: BTreeMap<String, QueryGrants>,
    /// The sandbox limits of each protection (`[protections.NAME]`, else `[sandbox]`).
    limits: crate::config::PluginLimits,
}

pub(crate) struct Protections {
    runtime: Arc<Runtime>,
    metrics: Arc<super::metrics::Metrics>,
    queries: Arc<BotQueries>,
    operator: Operator,
    pub(crate) plugins: BTreeMap<String, Plugin>,
    /// The component files of the plugin folder and what each provides.
    pub(crate) files: BTreeMap<PathBuf, PluginFile>,
    /// Plugin files that did not load at start and that no enabled protection needs.
    pub(crate) unloaded: Vec<Unloaded>,
    pub(crate) enabled: BTreeMap<String, Slot>,
    /// Settings from the operator's file and from moderators.
    pub(crate) layers: Layers,
    /// Capabilities moderators granted (within what the config allows).
    pub(crate) moderator_grants: BTreeMap<String, CapabilitySet>,
    /// Draupnir's protections without a counterpart, found in the enabled
    /// list: kept there when Gleipnir saves it.
    pub(crate) foreign: Vec<String>,
    /// Faults, quarantines and refusals per protection (kept across starts).
    pub(crate) health: BTreeMap<String, Health>,
}

/// One component file in the plugin folder.
#[derive(Debug, Clone, Default)]
pub(crate) struct PluginFile {
    /// The protection this file provides, as running now.
    pub(crate) running: Option<Provided>,
    /// The file's newest content was refused.
    pub(crate) refused: Option<Refused>,
}

/// The protection a plugin file provides.
#[derive(Debug, Clone)]
pub(crate) struct Provided {
    pub(crate) name: String,
    pub(crate) version: String,
    /// sha256 of the file, hex.
    pub(crate) hash: String,
}

/// A plugin file's content that was not loaded, and why.
#[derive(Debug, Clone)]
pub(crate) struct Refused {
    /// sha256 of the content, hex (empty when it could not be read).
    pub(crate) hash: String,
    pub(crate) why: String,
}

/// A plugin file that did not load at start, and why.
pub(crate) struct Unloaded {
    pub(crate) file: PathBuf,
    pub(crate) why: String,
}

/// What came of giving an enabled protection its settings.
pub(crate) struct Configured {
    /// Values of the settings file that do not fit (left out).
    pub(crate) file_problems: Vec<String>,
    /// The protection refused the values together (it keeps its defaults).
    pub(crate) refused: Option<gleipnir_runtime::ConfigureError>,
}

impl Protections {
    pub(crate) fn new(
        runtime: Arc<Runtime>,
        queries: Arc<BotQueries>,
        config: &Config,
        metrics: Arc<super::metrics::Metrics>,
    ) -> Protections {
        let operator = Operator {
            grants: config.grants.clone(),
            query_grants: config.query_grants.clone(),
            limits: config.plugin_limits.clone(),
        };
        Protections::empty(runtime, queries, operator, BTreeMap::new(), metrics)
    }

    fn empty(
        runtime: Arc<Runtime>,
        queries: Arc<BotQueries>,
        operator: Operator,
        health: BTreeMap<String, Health>,
        metrics: Arc<super::metrics::Metrics>,
    ) -> Protections {
        Protections {
            runtime,
            metrics,
            queries,
            operator,
            plugins: BTreeMap::new(),
            files: BTreeMap::new(),
            unloaded: Vec::new(),
            enabled: BTreeMap::new(),
            layers: Layers::default(),
            moderator_grants: BTreeMap::new(),
            foreign: Vec::new(),
            health,
        }
    }

    /// A new start (or safe mode): nothing loaded, nothing enabled, no
    /// settings nor grants; only each protection's health carries over.
    pub(crate) fn start_over(&mut self) {
        let health = std::mem::take(&mut self.health);
        *self = Protections::empty(
            self.runtime.clone(),
            self.queries.clone(),
            self.operator.clone(),
            health,
            self.metrics.clone(),
        );
    }

    /// Safe mode: no protection runs, and no settings nor grants are in
    /// use; the plugins stay loaded (`plugins` and `status` show them).
    pub(crate) fn stop_all(&mut self) {
        self.enabled.clear();
        self.layers = Layers::default();
        self.moderator_grants.clear();
    }

    /// Loads every `.wasm` in the plugin folder. Returns the problems (the
    /// folder cannot be read); the files that do not load are in `unloaded`.
    pub(crate) fn load(&mut self, folder: &Folder) -> Vec<Problem> {
        let names = match folder.names() {
            Ok(names) => names,
            Err(e) => {
                return vec![Problem {
                    store: "plugins.dir",
                    path: Path::default(),
                    kind: Kind::Use,
                    message: format!("cannot list {}: {e}", folder.path().display()),
                    options: Vec::new(),
                }];
            }
        };
        // Sorted by name; a name starting with `.` is a file being written.
        for name in names.into_iter().filter(|n| n.ends_with(".wasm") && !n.starts_with('.')) {
            let path = folder.shown(&name);
            match self.runtime.load_from(folder, &name, self.operator.limits.for_file(&name)) {
                Ok(plugin) if self.plugins.contains_key(plugin.name()) => {
                    let why = format!("protection `{}` is provided by another file already", plugin.name());
                    tracing::error!(file = %path.display(), "{why}");
                    self.record_file(path.clone(), Err(why.clone()));
                    self.unloaded.push(Unloaded { file: path, why });
                }
                Ok(plugin) => {
                    tracing::info!(name = plugin.name(), file = %path.display(), "loaded protection");
                    self.record_file(path, Ok(&plugin));
                    self.plugins.insert(plugin.name().to_owned(), plugin);
                }
                Err(e) => {
                    self.record_file(path.clone(), Err(e.to_string()));
                    tracing::error!(file = %path.display(), "cannot load protection: {e}");
                    self.unloaded.push(Unloaded { file: path, why: format!("the plugin does not load: {e}") });
                }
            }
        }
        Vec::new()
    }

    /// Records what a plugin file provides, or why it was refused (for `plugins` and the watcher).
    pub(crate) fn record_file(&mut self, path: PathBuf, outcome: Result<&Plugin, String>) {
        let entry = self.files.entry(path).or_default();
        match outcome {
            Ok(p) => {
                let (name, version, hash) =
                    (p.name().to_owned(), p.descriptor().version.clone(), p.content_hash().to_owned());
                entry.running = Some(Provided { name, version, hash });
                entry.refused = None;
            }
            Err(why) => entry.refused = Some(Refused { hash: String::new(), why }),
        }
    }

    /// The start notice's note on plugin files that did not load and that no
    /// enabled protection needs; empty when there are none.
    pub(crate) fn unloaded_note(&self) -> String {
        let mut text = String::new();
        for Unloaded { file, why } in &self.unloaded {
            let _ = write!(text, "\nNot loaded: {}: {why}.", file.display());
        }
        if !text.is_empty() {
            text.push_str("\nNo enabled protection needs these; everything else started. `plugins` lists them.");
        }
        text
    }

    /// Starts a protection with the operator's and moderators' grants.
    pub(crate) fn enable(&mut self, name: &str) -> anyhow::Result<()> {
        use anyhow::Context;
        let plugin = self.plugins.get(name).with_context(|| format!("no protection named `{name}` is loaded"))?;
        let granted = self.granted(name);
        let mut instance = sandboxed(|| plugin.instantiate(self.queries.clone(), granted))?;
        instance.set_query_grants(self.query_grants(name));
        self.enabled.insert(name.to_owned(), Slot::new(instance));
        Ok(())
    }

    /// The host queries the operator grants `name` (`read-history`, `read-members`).
    pub(crate) fn query_grants(&self, name: &str) -> QueryGrants {
        self.operator.query_grants.get(name).copied().unwrap_or_default()
    }

    /// What the operator grants a protection in the config.
    pub(crate) fn operator_granted(&self, name: &str) -> CapabilitySet {
        self.operator.grants.get(name).copied().unwrap_or_default()
    }

    /// What a protection may do: the operator's grants and the moderators'.
    pub(crate) fn granted(&self, name: &str) -> CapabilitySet {
        let mut set = self.operator.grants.get(name).copied().unwrap_or_default();
        for c in self.moderator_grants.get(name).copied().unwrap_or_default().iter() {
            set.insert(c);
        }
        set
    }

    /// Hands one event of a protected room to every enabled protection that
    /// wants its class and is not quarantined. Returns what they decided
    /// (actions outside protected rooms refused), their refusals (said once
    /// per kind) and their faults, as jobs.
    /// `handled` names the protections that had it already, before the
    /// homeserver accepted it (see `gate.rs`): they do not get it twice.
    pub(crate) fn handle(
        &mut self,
        event: &Event,
        protected: &Protected,
        now: Instant,
        handled: &[String],
    ) -> Vec<Job> {
        let class = event::class(&event.kind);
        let mut todo = Vec::new();
        let (enabled, health) = (&self.enabled, &mut self.health);
        let turn = Turn { metrics: &self.metrics, protected, rooms: &self.queries.state.rooms, now };
        sandboxed(|| {
            for (name, slot) in enabled.iter().filter(|(name, _)| !handled.contains(name)) {
                let mut instance = slot.lock();
                if !instance.plugin().wants(class) {
                    continue;
                }
                if !health.contains_key(name) {
                    health.insert(name.clone(), Health::default());
                }
                let health = health.get_mut(name).expect("inserted above");
                todo.extend(handle_instance(name, &mut instance, health, &turn, event));
            }
        });
        todo
    }

    /// Hands one event to one enabled protection (unless quarantined).
    pub(crate) fn handle_one(&mut self, name: &str, event: &Event, protected: &Protected, now: Instant) -> Vec<Job> {
        let Some(slot) = self.enabled.get(name) else { return Vec::new() };
        let health = self.health.entry(name.to_owned()).or_default();
        let turn = Turn { metrics: &self.metrics, protected, rooms: &self.queries.state.rooms, now };
        sandboxed(|| handle_instance(name, &mut slot.lock(), health, &turn, event))
    }

    /// What to save as the enabled protections: those enabled, and
    /// Draupnir's that Gleipnir keeps without running.
    pub(crate) fn enabled_names(&self) -> Vec<String> {
        self.enabled.keys().cloned().chain(self.foreign.iter().cloned()).collect()
    }

    /// Runs one of `name`'s own commands. `Err` says why nothing was done:
    /// not enabled, quarantined, no such command, the protection's refusal,
    /// or a fault (recorded in its health like one in `handle`).
    pub(crate) fn command(
        &mut self,
        name: &str,
        command: &str,
        args: &[String],
        caller: &gleipnir_runtime::Caller,
        protected: &Protected,
    ) -> Result<gleipnir_runtime::CommandOutcome, String> {
        let Some(slot) = self.enabled.get(name) else {
            return Err(format!("{name} is not enabled; `protections enable {name}` first. Nothing done."));
        };
        let mut instance = slot.lock();
        let health = self.health.entry(name.to_owned()).or_default();
        let now = Instant::now();
        if health.quarantined(now) {
            return Err(format!("{name} is quarantined after faults; `protections enable {name}` lifts it."));
        }
        match sandboxed(|| instance.command(command, args, caller)) {
            Ok(Ok(mut outcome)) => {
                only_in_protected_rooms(&mut outcome.outcome, protected);
                Ok(outcome)
            }
            Ok(Err(why)) => Err(format!("{name} {command}: {why}. Nothing done.")),
            Err(fault) => {
                health.fault(fault.to_string(), now);
                let mut why = format!("{name} faulted running `{command}`: {fault}. Nothing done.");
                if fault.kills_instance()
                    && let Err(e) = sandboxed(|| instance.restart())
                {
                    why.push_str(&format!(" It could not restart: {e}"));
                }
                Err(why)
            }
        }
    }

    /// The enabled protections that ask for ticks, with how often: the
    /// operator's `tick`, else what the protection asks for (at least a
    /// second), else a minute.
    pub(crate) fn ticking(&self, every: &BTreeMap<String, std::time::Duration>) -> Vec<(String, std::time::Duration)> {
        use std::time::Duration;
        self.enabled
            .iter()
            .map(|(name, slot)| (name, slot.lock().plugin().clone()))
            .filter(|(_, plugin)| plugin.wants(gleipnir_runtime::EventClass::Tick))
            .map(|(name, plugin)| {
                let asked = plugin.descriptor().tick_ms.map(|ms| Duration::from_millis(ms).max(super::ticks::MIN_TICK));
                (name.clone(), every.get(name).copied().or(asked).unwrap_or(super::ticks::DEFAULT_TICK))
            })
            .collect()
    }

    /// Each enabled protection's state (its `snapshot`), to keep. A
    /// protection that faults taking it is restarted and said in `faulted`.
    pub(crate) fn snapshots(&mut self, faulted: &mut Vec<String>) -> Vec<(String, Vec<u8>)> {
        let mut states = Vec::new();
        let enabled = &self.enabled;
        sandboxed(|| {
            for (name, slot) in enabled.iter() {
                let mut instance = slot.lock();
                if instance.fault().is_some() {
                    continue;
                }
                match instance.snapshot() {
                    Ok(state) => states.push((name.clone(), state)),
                    Err(fault) => {
                        faulted.push(format!("{name} faulted saving its state: {fault}"));
                        if let Err(e) = instance.restart() {
                            faulted.push(format!("{name} could not restart: {e}"));
                        }
                    }
                }
            }
        });
        states
    }

    /// Gives a protection that just started the state it had before a
    /// restart; a state it refuses is left out (and said in the log).
    pub(crate) fn restore(&mut self, name: &str, state: &[u8]) {
        let Some(slot) = self.enabled.get(name) else { return };
        let mut instance = slot.lock();
        match sandboxed(|| instance.restore(state)) {
            Ok(Ok(())) => tracing::info!(name, bytes = state.len(), "protection state restored"),
            Ok(Err(why)) => tracing::warn!(name, "the protection refused its kept state: {why}"),
            Err(fault) => {
                tracing::warn!(name, "the protection faulted taking its kept state back: {fault}");
                let _ = sandboxed(|| instance.restart());
            }
        }
    }

    /// Gives an enabled protection its settings, at start and when a
    /// moderator enables it: `moderator`'s values over the settings file
    /// over its defaults, each checked against its spec, then `configure`.
    pub(crate) fn configure_enabled(&mut self, name: &str, moderator: Overrides) -> Configured {
        self.layers.moderator.insert(name.to_owned(), moderator);
        let Some(plugin) = self.plugins.get(name).cloned() else {
            return Configured { file_problems: Vec::new(), refused: None };
        };
        let (overrides, file_problems) = self.effective(name, &plugin);
        let refused = self.enabled.get(name).and_then(|slot| sandboxed(|| slot.lock().configure(&overrides)).err());
        Configured { file_problems, refused }
    }

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
}
