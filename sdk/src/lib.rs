//! Write a Gleipnir protection: a trait, typed settings, one export macro and a
//! native test harness.
//!
//! A protection is data in, decisions out: it receives events and returns
//! actions; the host checks each action against the capabilities the
//! protection declared and the operator granted, then carries it out. It may
//! also answer its own commands in the management room and veto what has not
//! happened yet. Here is a complete protection that redacts messages with a
//! forbidden word, refuses them before they land when the homeserver asks,
//! and lets moderators change the word with `!gleipnir no-spam word WORD`:
//!
//! ```
//! use gleipnir_sdk::prelude::*;
//!
//! gleipnir_sdk::settings! {
//!     pub struct Config {
//!         /// The word that gets a message redacted.
//!         word: String = "spam".to_owned();
//!     }
//! }
//!
//! #[derive(Default)]
//! pub struct NoSpam {
//!     config: Config,
//! }
//!
//! impl Protection for NoSpam {
//!     const NAME: &'static str = "no-spam";
//!     const SUMMARY: &'static str = "Redacts messages that contain a forbidden word.";
//!     const CAPABILITIES: &'static [Capability] = &[Capability::Redact];
//!     const EVENTS: &'static [EventClass] = &[EventClass::Message];
//!     const COMMANDS: &'static [Command] =
//!         &[Command { name: "word", args: "WORD", help: "forbid WORD instead" }];
//!     const CHECKS: &'static [CheckClass] = &[CheckClass::Event];
//!     type Settings = Config;
//!
//!     fn configure(&mut self, settings: Config) -> Result<(), String> {
//!         self.config = settings;
//!         Ok(())
//!     }
//!
//!     fn handle(&mut self, event: &Event, host: &dyn Host) -> Vec<Action> {
//!         let EventKind::Message(message) = &event.kind else { return vec![] };
//!         if !message.body.contains(&self.config.word)
//!             || host.is_moderator(&event.room_id, &event.sender)
//!         {
//!             return vec![];
//!         }
//!         vec![Action::redact(event, "forbidden word")]
//!     }
//!
//!     // `!gleipnir no-spam word WORD`: the host saves the setting like a
//!     // moderator's `protections config`.
//!     fn command(&mut self, _: &str, args: &[String], _: &Caller, _: &dyn Host) -> Result<CommandReply, String> {
//!         let [word] = args else { return Err("usage: no-spam word WORD".to_owned()) };
//!         Ok(CommandReply::say(format!("now forbidding `{word}`"))
//!             .with_setting("word", SettingValue::Text(word.clone())))
//!     }
//!
//!     // Asked before the homeserver accepts an event (with Gleipnir's
//!     // Synapse module), under a deadline of a few milliseconds.
//!     fn check(&mut self, pending: &Pending, host: &dyn Host) -> Verdict {
//!         match pending {
//!             Pending::Event(e)
//!                 if e.content.contains(&self.config.word) && !host.is_moderator(&e.room_id, &e.sender) =>
//!             {
//!                 Verdict::Deny(Denial { reason: "forbidden word".to_owned(), follow_up: vec![] })
//!             }
//!             _ => Verdict::Allow,
//!         }
//!     }
//! }
//!
//! gleipnir_sdk::export_protection!(NoSpam);
//!
//! // Natively, with plain `cargo test`:
//! use gleipnir_sdk::testing::{Harness, events};
//! let mut harness = Harness::<NoSpam>::new();
//! let actions = harness.handle(&events::message("!room:x", "@bob:x", "buy spam now"));
//! assert_eq!(actions.len(), 1);
//! harness.command("@mod:x", "word", &["eggs"]).unwrap();
//! assert!(harness.handle(&events::message("!room:x", "@bob:x", "buy spam now")).is_empty());
//! let pending = Pending::Event(PendingEvent {
//!     room_id: "!room:x".into(),
//!     sender: "@bob:x".into(),
//!     event_type: "m.room.message".into(),
//!     state_key: None,
//!     content: r#"{"body":"fresh eggs"}"#.into(),
//! });
//! assert!(matches!(harness.check(&pending), Verdict::Deny(_)));
//! ```
//!
//! Build it for the host with `cargo build --release --target wasm32-wasip2`;
//! the output `.wasm` is a component that `gleipnir plugin inspect` can read.
//! [`Protection::handle`] is all the host needs for several events at once
//! (`handle-batch`): the export calls it for each, in order.
//!
//! State across a hot swap: [`Protection::snapshot`] and
//! [`Protection::restore`], tagged with a format by [`state::tagged`] so a
//! later version knows what it reads.
//!
//! Version check: the WIT package this SDK targets is [`WIT_VERSION`]; a host
//! that does not speak it refuses the plugin with a message naming both
//! versions.

extern crate self as gleipnir_sdk;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// The bindings generated from `wit/`; the types are re-exported in [`prelude`].
pub mod bindings {
    wit_bindgen::generate!({
        // A copy of `wit/0.2.0` kept in the crate so it publishes on its own
        // (`the_wit_is_the_contracts` checks they are equal).
        path: "wit",
        world: "plugin",
        pub_export_macro: true,
        default_bindings_module: "gleipnir_sdk::bindings",
        runtime_path: "gleipnir_sdk::__wit_bindgen::rt",
        additional_derives: [PartialEq],
    });
}

mod actions;
pub mod alloc;
#[doc(hidden)]
pub mod export;
mod host;
pub mod json;
mod protection;
pub mod settings;
pub mod state;
pub mod testing;
pub mod text;

pub use host::{Host, WasmHost};
pub use protection::{Command, Protection};

#[cfg(all(target_arch = "wasm32", feature = "small-object-allocator"))]
#[global_allocator]
static ALLOCATOR: alloc::SmallObjectAllocator = alloc::SmallObjectAllocator::new();

/// The version of the WIT package `gleipnir:protection` this SDK speaks.
pub const WIT_VERSION: &str = "0.2.0";

#[cfg(test)]
mod tests {
    /// The copy of the contract in this crate is the repository's `wit/0.2.0`.
    #[test]
    fn the_wit_is_the_contracts() {
        let here = include_str!("../wit/protection.wit");
        let contract = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../wit/0.2.0/protection.wit"));
        // Outside the repository (a published crate) there is nothing to compare with.
        if let Ok(contract) = contract {
            assert!(here == contract, "sdk/wit/protection.wit differs from wit/0.2.0/protection.wit: copy it again");
        }
        assert!(here.contains(&format!("package gleipnir:protection@{};", super::WIT_VERSION)));
    }
}

/// Everything a protection usually needs.
pub mod prelude {
    pub use crate::Host;
    pub use crate::bindings::gleipnir::protection::host::{HistoryEvent, Member};
    pub use crate::bindings::gleipnir::protection::types::{
        AbuseReport, Action, Caller, Capability, CheckClass, CommandReply, Deactivate, Denial, Event, EventClass,
        EventKind, JoinRule, JoinRuleChange, KvError, LogLevel, MediaInfo, Membership, MembershipChange, Mentions,
        Message, Msgtype, NotifyManagement, Pending, PendingEvent, PendingInvite, PendingJoin, PolicyChange,
        PolicyRule, PolicyRuleEdit, PowerLevelsChange, Reaction, RedactEvent, Redaction, RoomAction, RoomLevels,
        RuleChange, RuleKind, SendNotice, ServerUser, SetJoinRule, SetPowerLevel, Setting, SettingKind, SettingSpec,
        SettingValue, StateChange, TargetUser, UserLevel, Verdict,
    };
    pub use crate::settings::{Room, User};
    pub use crate::{Command, Protection};
    pub use std::time::Duration;
}
