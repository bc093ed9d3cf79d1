//! The glue between the WIT exports and a [`Protection`]; used by
//! [`export_protection!`](crate::export_protection!), not by authors directly.

use std::cell::RefCell;
use std::thread::LocalKey;

use crate::Protection;
use crate::WasmHost;
use crate::bindings::gleipnir::protection::types::{CommandSpec, Descriptor};
use crate::prelude::*;
use crate::settings::Settings;

/// Where the one instance of a protection lives inside its sandbox.
pub type Slot<P> = LocalKey<RefCell<Option<P>>>;

fn with<P: Protection, R>(slot: &'static Slot<P>, f: impl FnOnce(&mut P) -> R) -> R {
    slot.with(|cell| {
        let mut guard = cell.borrow_mut();
        f(guard.get_or_insert_with(P::default))
    })
}

/// The descriptor of `P`, with the plugin crate's version.
pub fn describe<P: Protection>(version: &str) -> Descriptor {
    Descriptor {
        name: P::NAME.to_owned(),
        version: version.to_owned(),
        summary: P::SUMMARY.to_owned(),
        settings: P::Settings::specs(),
        capabilities: P::CAPABILITIES.to_vec(),
        events: P::EVENTS.to_vec(),
        commands: P::COMMANDS
            .iter()
            .map(|c| CommandSpec { name: c.name.to_owned(), args: c.args.to_owned(), help: c.help.to_owned() })
            .collect(),
        checks: P::CHECKS.to_vec(),
        tick_ms: P::TICK.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
    }
}

pub fn configure<P: Protection>(slot: &'static Slot<P>, values: Vec<Setting>) -> Result<(), String> {
    let settings = P::Settings::from_values(&values)?;
    with(slot, |p| p.configure(settings))
}

pub fn handle<P: Protection>(slot: &'static Slot<P>, event: Event) -> Vec<Action> {
    with(slot, |p| p.handle(&event, &WasmHost))
}

/// Several events, exactly as one `handle` each.
pub fn handle_batch<P: Protection>(slot: &'static Slot<P>, events: Vec<Event>) -> Vec<Vec<Action>> {
    with(slot, |p| events.iter().map(|event| p.handle(event, &WasmHost)).collect())
}

pub fn command<P: Protection>(
    slot: &'static Slot<P>,
    name: String,
    args: Vec<String>,
    caller: Caller,
) -> Result<CommandReply, String> {
    with(slot, |p| p.command(&name, &args, &caller, &WasmHost))
}

pub fn check<P: Protection>(slot: &'static Slot<P>, pending: Pending) -> Verdict {
    with(slot, |p| p.check(&pending, &WasmHost))
}

pub fn snapshot<P: Protection>(slot: &'static Slot<P>) -> Vec<u8> {
    with(slot, |p| p.snapshot())
}

pub fn restore<P: Protection>(slot: &'static Slot<P>, state: Vec<u8>) -> Result<(), String> {
    with(slot, |p| p.restore(&state))
}

/// Exports a [`Protection`](crate::Protection) as the component's
/// `gleipnir:protection/protection` interface. Use it once per plugin crate.
#[macro_export]
macro_rules! export_protection {
    ($ty:ty) => {
        const _: () = {
            use $crate::bindings::exports::gleipnir::protection::protection::Guest;
            use $crate::bindings::gleipnir::protection::types as t;

            ::std::thread_local! {
                static INSTANCE: ::core::cell::RefCell<::core::option::Option<$ty>> =
                    const { ::core::cell::RefCell::new(::core::option::Option::None) };
            }

            struct Export;

            impl Guest for Export {
                fn describe() -> t::Descriptor {
                    $crate::export::describe::<$ty>(env!("CARGO_PKG_VERSION"))
                }
                fn configure(
                    settings: ::std::vec::Vec<t::Setting>,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    $crate::export::configure::<$ty>(&INSTANCE, settings)
                }
                fn handle(event: t::Event) -> ::std::vec::Vec<t::Action> {
                    $crate::export::handle::<$ty>(&INSTANCE, event)
                }
                fn handle_batch(events: ::std::vec::Vec<t::Event>) -> ::std::vec::Vec<::std::vec::Vec<t::Action>> {
                    $crate::export::handle_batch::<$ty>(&INSTANCE, events)
                }
                fn command(
                    name: ::std::string::String,
                    args: ::std::vec::Vec<::std::string::String>,
                    caller: t::Caller,
                ) -> ::core::result::Result<t::CommandReply, ::std::string::String> {
                    $crate::export::command::<$ty>(&INSTANCE, name, args, caller)
                }
                fn check(pending: t::Pending) -> t::Verdict {
                    $crate::export::check::<$ty>(&INSTANCE, pending)
                }
                fn snapshot() -> ::std::vec::Vec<u8> {
                    $crate::export::snapshot::<$ty>(&INSTANCE)
                }
                fn restore(state: ::std::vec::Vec<u8>) -> ::core::result::Result<(), ::std::string::String> {
                    $crate::export::restore::<$ty>(&INSTANCE, state)
                }
            }

            // Natively (tests, `cargo build` of the workspace) there is nothing to
            // export to, and the export names are not valid native symbols.
            #[cfg(target_arch = "wasm32")]
    $crate::bindings::export!(Export with_types_in $crate::bindings);
        };
    };
}
