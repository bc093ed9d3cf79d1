//! The runtime's errors: loading, running, configuring and swapping a
//! protection, and starting the engine.

use std::path::PathBuf;
use std::time::Duration;

use crate::settings::SettingError;
use crate::{WIT_PACKAGE, WIT_VERSION};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot configure the WebAssembly engine: {0}")]
    Engine(String),
    #[error("cannot link the host interfaces: {0}")]
    Link(String),
}

/// Why a file could not be loaded as a protection.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error("not a valid WebAssembly component: {0}")]
    Compile(String),
    #[error("not a Gleipnir protection: it exports no `{WIT_PACKAGE}/protection` interface (exports: {0})")]
    NotAProtection(String),
    #[error(
        "the plugin speaks {WIT_PACKAGE}@{found}, this host speaks {}; rebuild the plugin with a gleipnir-sdk for {WIT_VERSION}",
        crate::world::spoken()
    )]
    WitVersion { found: String },
    #[error("the plugin needs imports this host does not offer: {0}")]
    Link(String),
    #[error(
        "the plugin was built for a newer host: it needs {missing}, which this host (contract {WIT_PACKAGE}@{version}) does not offer; upgrade Gleipnir, or rebuild the plugin with a gleipnir-sdk for {version}"
    )]
    NeedsNewerHost { missing: String, version: &'static str },
    #[error("it cannot be instantiated: {0}")]
    Instantiate(Fault),
    #[error("`describe` failed: {0}")]
    Describe(Fault),
    #[error("invalid descriptor: {0}")]
    Descriptor(String),
    #[error("invalid settings spec: {0}")]
    SettingsSpec(SettingError),
    #[error("its default settings were refused: {0}")]
    Defaults(ConfigureError),
}

/// A protection call that went wrong. Only the protection is affected.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum Fault {
    #[error("`{call}` took longer than {deadline:?} and was stopped")]
    Timeout { call: &'static str, deadline: Duration },
    #[error("`{call}` ran out of memory (limit {limit} bytes)")]
    OutOfMemory { call: &'static str, limit: usize },
    #[error("`{call}` trapped: {message}")]
    Trap { call: &'static str, message: String },
    #[error("`handle` returned {returned} actions, more than the limit of {limit}; none were carried out")]
    TooManyActions { returned: usize, limit: usize },
    #[error("the protection faulted earlier and has not been restarted: {0}")]
    Faulted(Box<Fault>),
}

impl Fault {
    /// Whether the instance is dead after this fault and must be restarted.
    pub fn kills_instance(&self) -> bool {
        match self {
            Fault::Timeout { .. } | Fault::OutOfMemory { .. } | Fault::Trap { .. } | Fault::Faulted(_) => true,
            Fault::TooManyActions { .. } => false,
        }
    }
}

/// Why new settings were not applied. The previous settings stay in force.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigureError {
    #[error("{0}")]
    Invalid(SettingError),
    #[error("the protection refused them: {0}")]
    Rejected(String),
    #[error("{0}")]
    Fault(Fault),
}

/// Why a new version could not take an instance's place.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SwapError {
    #[error("the new file is protection `{new}`, not `{old}`")]
    Name { old: String, new: String },
    #[error("the new version cannot start: {0}")]
    Start(ConfigureError),
    #[error("the new version faulted taking over the old one's state: {0}")]
    Restore(Fault),
}
