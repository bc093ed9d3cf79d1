//! A component of any contract version this host speaks, behind one set of
//! calls in the runtime's (0.2.0) types. 0.1.0 components go through
//! `adapt.rs`; what 0.1.0 lacks has a fixed answer (no commands, every
//! check allowed, a batch is one `handle` per event).

use wasmtime::Store;
use wasmtime::component::InstancePre;

use crate::adapt::{Adapt, event_down};
use crate::bindings::{v0_1, v0_2};
use crate::host::GuestState;
use crate::{Action, Caller, CommandReply, Descriptor, Event, Pending, Setting, Verdict};

/// The contract versions this host loads, oldest first.
pub const WIT_VERSIONS: &[&str] = &["0.1.0", "0.2.0"];

/// `@0.1.0 and @0.2.0`, for messages.
pub(crate) fn spoken() -> String {
    WIT_VERSIONS.iter().map(|v| format!("@{v}")).collect::<Vec<_>>().join(" and ")
}

/// A component checked against its world, ready to instantiate.
pub(crate) enum Pre {
    V0_1(v0_1::PluginPre<GuestState>),
    V0_2(v0_2::PluginPre<GuestState>),
}

impl Pre {
    /// `version` is one of [`WIT_VERSIONS`] (what the component exports).
    pub(crate) fn new(version: &str, pre: InstancePre<GuestState>) -> wasmtime::Result<Pre> {
        Ok(match version {
            "0.1.0" => Pre::V0_1(v0_1::PluginPre::new(pre)?),
            _ => Pre::V0_2(v0_2::PluginPre::new(pre)?),
        })
    }

    pub(crate) fn version(&self) -> &'static str {
        match self {
            Pre::V0_1(_) => "0.1.0",
            Pre::V0_2(_) => "0.2.0",
        }
    }

    /// Instantiates in `store`; the component's constructors run here.
    pub(crate) fn instantiate(&self, store: &mut Store<GuestState>) -> wasmtime::Result<Bindings> {
        Ok(match self {
            Pre::V0_1(pre) => Bindings::V0_1(pre.instantiate(store)?),
            Pre::V0_2(pre) => Bindings::V0_2(pre.instantiate(store)?),
        })
    }
}

/// One instantiated component's exports.
pub(crate) enum Bindings {
    V0_1(v0_1::Plugin),
    V0_2(v0_2::Plugin),
}

impl Bindings {
    pub(crate) fn describe(&self, s: &mut Store<GuestState>) -> wasmtime::Result<Descriptor> {
        match self {
            Bindings::V0_1(b) => Ok(b.gleipnir_protection_protection().call_describe(s)?.adapt()),
            Bindings::V0_2(b) => b.gleipnir_protection_protection().call_describe(s),
        }
    }

    pub(crate) fn configure(
        &self,
        s: &mut Store<GuestState>,
        values: &[Setting],
    ) -> wasmtime::Result<Result<(), String>> {
        match self {
            Bindings::V0_1(b) => {
                let values: Vec<_> = values.to_vec().adapt();
                b.gleipnir_protection_protection().call_configure(s, &values)
            }
            Bindings::V0_2(b) => b.gleipnir_protection_protection().call_configure(s, values),
        }
    }

    pub(crate) fn handle(&self, s: &mut Store<GuestState>, event: &Event) -> wasmtime::Result<Vec<Action>> {
        match self {
            Bindings::V0_1(b) => Ok(b.gleipnir_protection_protection().call_handle(s, &event_down(event))?.adapt()),
            Bindings::V0_2(b) => b.gleipnir_protection_protection().call_handle(s, event),
        }
    }

    pub(crate) fn handle_batch(
        &self,
        s: &mut Store<GuestState>,
        events: &[Event],
    ) -> wasmtime::Result<Vec<Vec<Action>>> {
        match self {
            Bindings::V0_1(_) => events.iter().map(|event| self.handle(s, event)).collect(),
            Bindings::V0_2(b) => b.gleipnir_protection_protection().call_handle_batch(s, events),
        }
    }

    pub(crate) fn command(
        &self,
        s: &mut Store<GuestState>,
        name: &str,
        args: &[String],
        caller: &Caller,
    ) -> wasmtime::Result<Result<CommandReply, String>> {
        match self {
            Bindings::V0_1(_) => Ok(Err(format!("`{name}`: a protection for contract 0.1.0 has no commands"))),
            Bindings::V0_2(b) => b.gleipnir_protection_protection().call_command(s, name, args, caller),
        }
    }

    pub(crate) fn check(&self, s: &mut Store<GuestState>, pending: &Pending) -> wasmtime::Result<Verdict> {
        match self {
            Bindings::V0_1(_) => Ok(Verdict::Allow),
            Bindings::V0_2(b) => b.gleipnir_protection_protection().call_check(s, pending),
        }
    }

    pub(crate) fn snapshot(&self, s: &mut Store<GuestState>) -> wasmtime::Result<Vec<u8>> {
        match self {
            Bindings::V0_1(b) => b.gleipnir_protection_protection().call_snapshot(s),
            Bindings::V0_2(b) => b.gleipnir_protection_protection().call_snapshot(s),
        }
    }

    pub(crate) fn restore(&self, s: &mut Store<GuestState>, state: &[u8]) -> wasmtime::Result<Result<(), String>> {
        match self {
            Bindings::V0_1(b) => b.gleipnir_protection_protection().call_restore(s, state),
            Bindings::V0_2(b) => b.gleipnir_protection_protection().call_restore(s, state),
        }
    }
}
