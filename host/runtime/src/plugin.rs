//! A loaded protection ([`Plugin`]: compiled, checked, described) and a
//! running one ([`Instance`]: its own `Store`, called under a deadline and a
//! memory cap, its actions checked against its capabilities).

use std::path::Path;
use std::sync::Arc;

use wasmtime::component::{Component, types::ComponentItem};
use wasmtime::{Store, Trap};

use crate::capability::{self, CapabilitySet, Refusal};
use crate::engine::Runtime;
use crate::error::{ConfigureError, Fault, LoadError, SwapError};
use crate::folder::Folder;
use crate::grants::QueryGrants;
use crate::guest;
use crate::host::{GuestState, HostQueries};
use crate::kv::KvStore;
use crate::limits::Limits;
use crate::settings;
use crate::store::{NoQueries, new_store};
use crate::text::truncate_bytes;
use crate::world::{Bindings, Pre, WIT_VERSIONS};
use crate::{Action, Descriptor, Event, EventClass, Setting, SettingValue, WIT_PACKAGE};

/// What one `handle` call produced: the actions to carry out, and those
/// refused with the reason.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub actions: Vec<Action>,
    pub refused: Vec<Refusal>,
}

mod calls;

pub use calls::{Checked, CommandOutcome};

/// A compiled, checked protection, ready to instantiate. Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Arc<Runtime>,
    pre: Pre,
    descriptor: Descriptor,
    declared: CapabilitySet,
    events: Vec<EventClass>,
    hash: String,
    /// What this protection may use (the runtime's, or the operator's for it).
    limits: Limits,
    deadline_ticks: u64,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.inner.descriptor.name)
            .field("version", &self.inner.descriptor.version)
            .field("hash", &self.inner.hash)
            .finish()
    }
}

/// The WIT version of the `protection` interface a component exports.
fn exported_version(runtime: &Runtime, component: &Component) -> Result<String, LoadError> {
    let ty = component.component_type();
    let mut names = Vec::new();
    for (name, item) in ty.exports(&runtime.engine) {
        if let (Some(rest), ComponentItem::ComponentInstance(_)) = (name.strip_prefix(WIT_PACKAGE), &item.ty)
            && let Some(version) = rest.strip_prefix("/protection@")
        {
            return Ok(version.to_owned());
        }
        names.push(name.to_owned());
    }
    Err(LoadError::NotAProtection(if names.is_empty() { "none".to_owned() } else { names.join(", ") }))
}

pub(crate) fn prepare(
    runtime: Arc<Runtime>,
    component: Component,
    hash: String,
    limits: Limits,
) -> Result<Plugin, LoadError> {
    let found = exported_version(&runtime, &component)?;
    let Some(&version) = WIT_VERSIONS.iter().find(|v| **v == found) else {
        return Err(LoadError::WitVersion { found });
    };
    let instance_pre = runtime.linker.instantiate_pre(&component).map_err(|e| {
        match crate::imports::missing(&runtime.engine, &component) {
            missing if missing.is_empty() => LoadError::Link(format!("{e:#}")),
            missing => LoadError::NeedsNewerHost { missing: missing.join(", "), version },
        }
    })?;
    let pre = Pre::new(version, instance_pre).map_err(|e| LoadError::Link(format!("{e:#}")))?;

    // Describe in a scratch store: a protection may not do anything yet.
    let scratch = Arc::new(NoQueries);
    let mut store = new_store(&runtime, &limits, "(describing)".into(), scratch, KvStore::new(limits.kv));
    let bindings = instantiate(&pre, &mut store, &limits).map_err(LoadError::Instantiate)?;
    store.set_epoch_deadline(limits.deadline_ticks());
    store.data_mut().begin_call();
    let descriptor = guest::enter(|| bindings.describe(&mut store))
        .map_err(|e| LoadError::Describe(classify("describe", e, &limits)))?;
    check_descriptor(&descriptor)?;
    settings::validate_specs(&descriptor.settings).map_err(LoadError::SettingsSpec)?;
    let declared = descriptor.capabilities.iter().copied().collect();
    let mut events = descriptor.events.clone();
    events.dedup();
    let deadline_ticks = limits.deadline_ticks();
    let inner = Inner { runtime, pre, descriptor, declared, events, hash, limits, deadline_ticks };
    let plugin = Plugin { inner: Arc::new(inner) };

    // A protection that refuses its own defaults cannot be enabled; say so now.
    plugin.instantiate(Arc::new(NoQueries), CapabilitySet::EMPTY).map_err(LoadError::Defaults)?;
    Ok(plugin)
}

fn check_descriptor(d: &Descriptor) -> Result<(), LoadError> {
    let bad = |m: String| Err(LoadError::Descriptor(m));
    if !settings::is_kebab(&d.name) || d.name.len() > 64 {
        return bad(format!("name `{}` must be 1–64 characters of a-z, 0-9 and inner hyphens", d.name.escape_debug()));
    }
    if d.version.is_empty() || d.version.len() > 64 || d.version.contains(char::is_whitespace) {
        return bad(format!("version `{}` must be 1–64 characters without spaces", d.version.escape_debug()));
    }
    if d.summary.len() > 1000 {
        return bad(format!("summary is {} bytes; at most 1000", d.summary.len()));
    }
    Ok(())
}

impl Plugin {
    pub fn descriptor(&self) -> &Descriptor {
        &self.inner.descriptor
    }
    pub fn name(&self) -> &str {
        &self.inner.descriptor.name
    }
    /// sha256 of the component file, hex.
    pub fn content_hash(&self) -> &str {
        &self.inner.hash
    }
    pub fn declared(&self) -> CapabilitySet {
        self.inner.declared
    }
    /// What this protection may use.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }
    pub fn wants(&self, class: EventClass) -> bool {
        self.inner.events.contains(&class)
    }
    /// The contract version the component was built for.
    pub fn wit_version(&self) -> &'static str {
        self.inner.pre.version()
    }

    /// A new instance in its own store, configured with the defaults.
    /// `granted` is what the operator allows; the protection may use
    /// only what it declared *and* was granted.
    pub fn instantiate(
        &self,
        queries: Arc<dyn HostQueries>,
        granted: CapabilitySet,
    ) -> Result<Instance, ConfigureError> {
        let (runtime, limits) = (&self.inner.runtime, &self.inner.limits);
        let kv = KvStore::new(limits.kv);
        let mut store = new_store(runtime, limits, self.name().into(), queries, kv);
        let bindings = instantiate(&self.inner.pre, &mut store, limits).map_err(ConfigureError::Fault)?;
        let mut instance = Instance {
            plugin: self.clone(),
            store,
            bindings,
            granted,
            settings: Vec::new(),
            overrides: Vec::new(),
            fault: None,
        };
        instance.configure(&[])?;
        Ok(instance)
    }
}

/// Instantiates a protection in `store`; its constructors run here.
fn instantiate(pre: &Pre, store: &mut Store<GuestState>, limits: &Limits) -> Result<Bindings, Fault> {
    guest::enter(|| pre.instantiate(&mut *store)).map_err(|e| classify("instantiate", e, limits))
}

/// Turns a wasmtime error from a call into the fault moderators read.
fn classify(call: &'static str, error: wasmtime::Error, limits: &Limits) -> Fault {
    if let Some(Trap::Interrupt) = error.downcast_ref::<Trap>() {
        let deadline = if call == "check" { limits.check_deadline } else { limits.call_deadline };
        return Fault::Timeout { call, deadline };
    }
    // The sandbox's own refusals say what happened; the backtrace adds nothing.
    if let Some(denied) = error.downcast_ref::<crate::wasi::Denied>() {
        return Fault::Trap { call, message: denied.to_string() };
    }
    let text = format!("{error:#}");
    if text.contains("resource limit exceeded") {
        let hint = "this protection needs more than its sandbox allows: raise `instances`, `tables` or \
                    `table_elements` in its `[protections.NAME]` section";
        return Fault::Trap { call, message: format!("{} ({hint})", shorten(text)) };
    }
    if let Some(panicked) = error.downcast_ref::<guest::HostPanicked>() {
        return Fault::Trap { call, message: shorten(panicked.to_string()) };
    }
    let message = format!("{error:#}");
    if message.contains("forcing trap when growing memory") || message.contains("memory minimum size") {
        return Fault::OutOfMemory { call, limit: limits.memory_bytes };
    }
    // The trap itself says what happened; the wasm backtrace goes to the log.
    if let Some(trap) = error.downcast_ref::<Trap>() {
        tracing::debug!(call, "protection trapped: {message}");
        let hint = match trap {
            Trap::MemoryOutOfBounds | Trap::StackOverflow => " (a stack overflow or a memory bug in the protection)",
            Trap::UnreachableCodeReached => " (the protection panicked or aborted)",
            _ => "",
        };
        return Fault::Trap { call, message: format!("{trap}{hint}") };
    }
    Fault::Trap { call, message: shorten(message) }
}

fn shorten(mut message: String) -> String {
    truncate_bytes(&mut message, 2000);
    message
}

/// One running protection: its own store, settings and faults.
pub struct Instance {
    plugin: Plugin,
    store: Store<GuestState>,
    bindings: Bindings,
    granted: CapabilitySet,
    /// Every key with its effective value, as last accepted.
    settings: Vec<Setting>,
    /// The values set explicitly, as last accepted.
    overrides: Vec<(String, SettingValue)>,
    fault: Option<Fault>,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance").field("plugin", &self.plugin).field("fault", &self.fault).finish_non_exhaustive()
    }
}

impl Instance {
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// The fault that stopped this instance, if it is stopped.
    pub fn fault(&self) -> Option<&Fault> {
        self.fault.as_ref()
    }

    /// What this instance may do: declared ∩ granted.
    pub fn allowed(&self) -> CapabilitySet {
        self.plugin.declared().intersection(self.granted)
    }

    /// Every setting with its effective value.
    pub fn settings(&self) -> &[Setting] {
        &self.settings
    }

    /// The values set explicitly (the rest are defaults).
    pub fn overrides(&self) -> &[(String, SettingValue)] {
        &self.overrides
    }

    /// Log lines the protection wrote beyond the per-call limit.
    pub fn logs_dropped(&self) -> u64 {
        self.store.data().logs_dropped
    }

    pub fn kv(&self) -> &KvStore {
        &self.store.data().kv
    }

    /// Every call into the running protection: refused when it has faulted,
    /// otherwise under a fresh deadline and through the one guarded entry.
    fn call<R: Send>(
        &mut self,
        call: &'static str,
        f: impl FnOnce(&Bindings, &mut Store<GuestState>) -> wasmtime::Result<R> + Send,
    ) -> Result<R, Fault> {
        if let Some(fault) = &self.fault {
            return Err(Fault::Faulted(Box::new(fault.clone())));
        }
        let ticks = match call {
            "check" => self.plugin.inner.limits.check_ticks(),
            _ => self.plugin.inner.deadline_ticks,
        };
        self.store.set_epoch_deadline(ticks);
        self.store.data_mut().begin_call();
        let (bindings, store) = (&self.bindings, &mut self.store);
        guest::enter(|| f(bindings, store)).map_err(|e| {
            let fault = classify(call, e, &self.plugin.inner.limits);
            self.fault = Some(fault.clone());
            fault
        })
    }

    /// Applies settings: `overrides` are validated against the spec and
    /// layered on the defaults; every key is passed to the protection. On any
    /// error the previous settings stay in force.
    pub fn configure(&mut self, overrides: &[(String, SettingValue)]) -> Result<(), ConfigureError> {
        let values =
            settings::resolve(&self.plugin.descriptor().settings, overrides).map_err(ConfigureError::Invalid)?;
        let result = self.call("configure", |b, s| b.configure(s, &values)).map_err(ConfigureError::Fault)?;
        result.map_err(|m| ConfigureError::Rejected(shorten(m)))?;
        self.settings = values;
        self.overrides = overrides.to_vec();
        Ok(())
    }

    /// Hands one event to the protection and checks what comes back.
    pub fn handle(&mut self, event: &Event) -> Result<Outcome, Fault> {
        let returned = self.call("handle", |b, s| b.handle(s, event))?;
        let limit = self.plugin.inner.limits.max_actions;
        if returned.len() > limit {
            return Err(Fault::TooManyActions { returned: returned.len(), limit });
        }
        Ok(self.check(returned))
    }

    /// Splits actions into those allowed and those refused, with the reason.
    fn check(&self, returned: Vec<Action>) -> Outcome {
        let mut outcome = Outcome::default();
        for action in returned {
            let needed = capability::required(&action);
            let why = if !self.plugin.declared().contains(needed) {
                Some(format!("needs `{}`, which the protection did not declare", capability::name(needed)))
            } else if !self.granted.contains(needed) {
                Some(format!("needs `{}`, which the operator has not granted", capability::name(needed)))
            } else {
                capability::check_fields(&action).err()
            };
            match why {
                Some(why) => outcome.refused.push(Refusal { action, why }),
                None => outcome.actions.push(action),
            }
        }
        outcome
    }

    /// State to carry into a new instance (hot swap).
    pub fn snapshot(&mut self) -> Result<Vec<u8>, Fault> {
        self.call("snapshot", |b, s| b.snapshot(s))
    }

    /// Takes over state from [`snapshot`](Instance::snapshot).
    pub fn restore(&mut self, state: &[u8]) -> Result<Result<(), String>, Fault> {
        self.call("restore", |b, s| b.restore(s, state))
    }

    /// A fresh instance after a fault: same plugin, grants (query grants
    /// included), settings and key-value store; in-memory state of the
    /// protection is lost.
    pub fn restart(&mut self) -> Result<(), ConfigureError> {
        let (runtime, limits) = (self.plugin.inner.runtime.clone(), self.plugin.inner.limits);
        let data = self.store.data_mut();
        let kv = std::mem::take(&mut data.kv);
        let queries = data.queries.clone();
        let query_grants = data.query_grants;
        let mut store = new_store(&runtime, &limits, self.plugin.name().into(), queries, kv);
        store.data_mut().query_grants = query_grants;
        let bindings = instantiate(&self.plugin.inner.pre, &mut store, &limits).map_err(ConfigureError::Fault);
        let bindings = match bindings {
            Ok(b) => b,
            Err(e) => {
                // Keep the store's kv for the next attempt.
                let kv = std::mem::take(&mut store.data_mut().kv);
                self.store.data_mut().kv = kv;
                return Err(e);
            }
        };
        self.store = store;
        self.bindings = bindings;
        self.fault = None;
        let overrides = self.overrides.clone();
        self.configure(&overrides)
    }

    /// Changes what the operator grants, effective for the next call.
    pub fn set_granted(&mut self, granted: CapabilitySet) {
        self.granted = granted;
    }

    /// What the operator (and moderators) grant this instance.
    pub fn granted(&self) -> CapabilitySet {
        self.granted
    }

    /// Changes which host queries beyond the event (`history`,
    /// `members-matching`) the operator grants, effective for the next
    /// call. Kept across [`restart`](Instance::restart) and
    /// [`successor`](Instance::successor).
    pub fn set_query_grants(&mut self, grants: QueryGrants) {
        self.store.data_mut().query_grants = grants;
    }

    /// The host queries the operator grants this instance.
    pub fn query_grants(&self) -> QueryGrants {
        self.store.data().query_grants
    }

    /// A new instance of `next` (a new version of this protection) ready to
    /// take this one's place: same host queries, grants (query grants
    /// included) and key-value store;
    /// `overrides` that still fit `next`'s settings (the others are dropped
    /// and named in the [`Handover`]); and this instance's state through
    /// `snapshot` → `restore` when it has any.
    ///
    /// On an error this instance is left as it was (its key-value store
    /// included) and keeps running; only a fault in its own `snapshot` stops
    /// it, and then the new instance starts without the state.
    pub fn successor(
        &mut self,
        next: &Plugin,
        overrides: &[(String, SettingValue)],
    ) -> Result<(Instance, Handover), SwapError> {
        if next.name() != self.plugin.name() {
            return Err(SwapError::Name { old: self.plugin.name().to_owned(), new: next.name().to_owned() });
        }
        let mut handover = Handover::default();
        let specs = &next.descriptor().settings;
        let mut kept = Vec::new();
        for (key, value) in overrides {
            match specs.iter().find(|s| s.key == *key) {
                None => handover.dropped.push((key.clone(), "the new version has no such setting".to_owned())),
                Some(spec) => match settings::check_value(spec, value) {
                    Ok(()) => kept.push((key.clone(), value.clone())),
                    Err(e) => handover.dropped.push((key.clone(), format!("the value no longer fits: {}", e.problem))),
                },
            }
        }
        handover.added = specs
            .iter()
            .filter(|s| !self.plugin.descriptor().settings.iter().any(|o| o.key == s.key))
            .map(|s| s.key.clone())
            .collect();
        let queries = self.store.data().queries.clone();
        let mut new = next.instantiate(queries, self.granted).map_err(SwapError::Start)?;
        new.set_query_grants(self.query_grants());
        new.configure(&kept).map_err(SwapError::Start)?;

        // The key-value store moves with the protection.
        std::mem::swap(&mut self.store.data_mut().kv, &mut new.store.data_mut().kv);
        match self.snapshot() {
            Ok(state) if state.is_empty() => {}
            Ok(state) => match new.restore(&state) {
                Ok(Ok(())) => handover.state_bytes = state.len(),
                Ok(Err(why)) => handover.state_refused = Some(why),
                Err(fault) => {
                    std::mem::swap(&mut self.store.data_mut().kv, &mut new.store.data_mut().kv);
                    return Err(SwapError::Restore(fault));
                }
            },
            Err(fault) => handover.state_refused = Some(format!("the old version faulted in snapshot: {fault}")),
        }
        Ok((new, handover))
    }
}

/// What [`Instance::successor`] carried over and what it could not.
#[derive(Debug, Default, Clone)]
pub struct Handover {
    /// Bytes of state handed over by `snapshot` → `restore` (0: none).
    pub state_bytes: usize,
    /// Why the state was not taken over, when there was some.
    pub state_refused: Option<String>,
    /// Settings that were set but do not fit the new version, with why.
    pub dropped: Vec<(String, String)>,
    /// Settings the new version has and the old did not (at their defaults).
    pub added: Vec<String>,
}

/// Loading protections: compile (or reuse the cached compilation), check
/// the contract version, describe, validate.
impl Runtime {
    /// Loads a protection from a `.wasm` component file named by the
    /// operator (a command-line argument, a test).
    pub fn load_file(self: &Arc<Self>, path: &Path) -> Result<Plugin, LoadError> {
        self.load_file_with(path, self.limits)
    }

    /// [`load_file`](Runtime::load_file) under limits of its own.
    pub fn load_file_with(self: &Arc<Self>, path: &Path, limits: Limits) -> Result<Plugin, LoadError> {
        let read = Folder::of_file(path).and_then(|(folder, name)| folder.read(&name));
        let bytes = read.map_err(|error| LoadError::Read { path: path.to_owned(), error })?;
        self.load_bytes_with(&bytes, limits)
    }

    /// Loads the protection `name` from a folder opened at start (the plugin
    /// folder), under `limits` (the operator's for it, or the runtime's).
    pub fn load_from(self: &Arc<Self>, folder: &Folder, name: &str, limits: Limits) -> Result<Plugin, LoadError> {
        let bytes = folder.read(name).map_err(|error| LoadError::Read { path: folder.shown(name), error })?;
        self.load_bytes_with(&bytes, limits)
    }

    /// Compiles every component in `folder` into the compiled cache (one
    /// there already is only checked), so that loading it later, at start,
    /// takes the cached compilation: run beside the first sync. What does
    /// not read or compile is left for the load to report.
    pub fn warm_cache(&self, folder: &Folder) {
        let Some(cache) = self.cache() else { return };
        let Ok(names) = folder.names() else { return };
        for name in names.iter().filter(|n| n.ends_with(".wasm") && !n.starts_with('.')) {
            if let Ok(bytes) = folder.read(name) {
                cache.warm(&self.engine, &bytes);
            }
        }
    }

    /// Loads a protection from component bytes under the runtime's limits.
    pub fn load_bytes(self: &Arc<Self>, bytes: &[u8]) -> Result<Plugin, LoadError> {
        self.load_bytes_with(bytes, self.limits)
    }

    /// Loads a protection from component bytes: compile (or reuse the cached
    /// compilation), check the contract version, describe and validate
    /// under `limits`, which its instances keep.
    pub fn load_bytes_with(self: &Arc<Self>, bytes: &[u8], limits: Limits) -> Result<Plugin, LoadError> {
        let (component, hash) = match self.cache() {
            Some(cache) => cache.load_or_compile(&self.engine, bytes)?,
            None => {
                let hash = crate::cache::content_hash(bytes);
                let component = wasmtime::component::Component::new(&self.engine, bytes)
                    .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
                (component, hash)
            }
        };
        prepare(self.clone(), component, hash, limits)
    }
}
