//! The sandboxed protection runtime: loads WebAssembly components that speak
//! `gleipnir:protection`, checks what they declare, runs them with a deadline
//! and a memory cap, and checks every action they return against their
//! capabilities. No Matrix and no network here: events come in as data,
//! actions go out as data.
//!
//! The pieces, in the order an event meets them:
//! - [`event`]: client-format Matrix JSON → the contract's [`Event`].
//! - [`rooms`]: the room state protections may query (membership, power levels).
//! - [`Runtime`] / [`Plugin`] / [`Instance`]: compile (with an on-disk cache),
//!   instantiate one store per protection, call it under limits.
//! - [`capability`]: every returned action checked against declared ∩ granted.
//! - [`settings`]: specs validated on load, values validated before `configure`.
//! - [`Instance::successor`]: a new version swapped in between two events,
//!   its state carried over (the daemon watches the folder and compiles the
//!   new file off the event path).

mod adapt;
mod bindings;
mod cache;
pub mod capability;
mod engine;
mod error;
pub mod event;
pub mod folder;
mod grants;
mod guest;
pub mod host;
mod imports;
pub mod json;
mod kv;
mod limits;
mod plugin;
pub mod rooms;
pub mod settings;
mod store;
mod text;
mod wasi;
mod world;

/// Fuzz tests bound the memory each input takes, so this test binary counts
/// allocations.
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: gleipnir_fuzz::CountingAllocator = gleipnir_fuzz::CountingAllocator;

pub use bindings::v0_2::gleipnir::protection::host::{HistoryEvent, Member};
pub use bindings::v0_2::gleipnir::protection::types::{
    AbuseReport, Action, Caller, Capability, CheckClass, CommandReply, CommandSpec, Deactivate, Denial, Descriptor,
    Event, EventClass, EventKind, IntegerBounds, JoinRule, JoinRuleChange, KvError, LogLevel, MediaInfo, Membership,
    MembershipChange, Mentions, Message, Msgtype, NotifyManagement, NumberBounds, Pending, PendingEvent, PendingInvite,
    PendingJoin, PolicyChange, PolicyRule, PolicyRuleEdit, PowerLevelsChange, Reaction, RedactEvent, Redaction,
    RoomAction, RoomLevels, RuleChange, RuleKind, SendNotice, ServerUser, SetJoinRule, SetPowerLevel, Setting,
    SettingKind, SettingSpec, SettingValue, StateChange, TargetUser, UserLevel, Verdict,
};
pub use cache::content_hash;
pub use capability::{CapabilitySet, Refusal};
pub use engine::{Runtime, RuntimeConfig};
pub use error::{ConfigureError, Fault, LoadError, RuntimeError, SwapError};
pub use folder::Folder;
pub use grants::{QueryGrant, QueryGrants};
pub use host::{Clock, HostQueries};
pub use kv::{KvLimits, KvStore};
pub use limits::Limits;
pub use plugin::{Checked, CommandOutcome, Handover, Instance, Outcome, Plugin};

/// The WIT package this host speaks.
pub const WIT_PACKAGE: &str = "gleipnir:protection";
/// The newest contract version this host speaks (its types are the
/// runtime's); it loads every one of [`WIT_VERSIONS`].
pub const WIT_VERSION: &str = "0.2.0";
pub use world::WIT_VERSIONS;
