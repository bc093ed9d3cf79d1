//! A protection that panics (after writing to stderr, as every panic does)
//! while it is instantiated, before any export is called: its `_initialize`,
//! which the component's start function calls, panics. The host must refuse
//! it with a load error and carry on.
//!
//! (A Rust static constructor would not do: in a `cdylib` they run at the
//! first export call, not at instantiation.)

use gleipnir_sdk::prelude::*;

/// wit-component makes the component's start function call `_initialize`.
#[cfg(target_arch = "wasm32")]
#[unsafe(no_mangle)]
pub extern "C" fn _initialize() {
    panic!("asked to panic while instantiated");
}

#[derive(Default)]
pub struct PanicInConstructor;

impl Protection for PanicInConstructor {
    const NAME: &'static str = "panic-in-constructor";
    const SUMMARY: &'static str = "Panics while it is instantiated (test plugin).";
    const CAPABILITIES: &'static [Capability] = &[];
    const EVENTS: &'static [EventClass] = &[EventClass::Message];
    type Settings = ();

    fn handle(&mut self, _: &Event, _: &dyn Host) -> Vec<Action> {
        Vec::new()
    }
}

gleipnir_sdk::export_protection!(PanicInConstructor);
