//! A protection that writes to stdout and stderr while it is instantiated, in
//! its static constructor, `describe`, `configure`, `handle`, `snapshot` and
//! `restore`, and otherwise behaves: printing must never fault a protection
//! or stop the host, inside a Tokio runtime or not.

use gleipnir_sdk::prelude::*;

fn shout(entry: &str) {
    println!("loud: {entry} on stdout");
    eprintln!("loud: {entry} on stderr");
}

// Runs while the component is instantiated: wit-component makes the
// component's start function call `_initialize`, which (like wasi-libc's
// reactor entry) runs the static constructors first.
#[cfg(target_arch = "wasm32")]
#[unsafe(no_mangle)]
pub extern "C" fn _initialize() {
    unsafe extern "C" {
        fn __wasm_call_ctors();
    }
    // SAFETY: the linker's constructor list, run once, before any export.
    unsafe { __wasm_call_ctors() };
    shout("instantiation");
}

// A static constructor: prints too.
#[cfg(target_arch = "wasm32")]
#[used]
#[unsafe(link_section = ".init_array")]
static SHOUT_IN_CONSTRUCTOR: extern "C" fn() = shout_in_constructor;

#[cfg(target_arch = "wasm32")]
extern "C" fn shout_in_constructor() {
    shout("constructor");
}

/// No settings, but reading their spec (in `describe`) prints.
#[derive(Default)]
pub struct Noise;

impl gleipnir_sdk::settings::Settings for Noise {
    fn specs() -> Vec<SettingSpec> {
        shout("describe");
        Vec::new()
    }
    fn from_values(_: &[Setting]) -> Result<Self, String> {
        Ok(Noise)
    }
}

#[derive(Default)]
pub struct Loud {
    restored: usize,
}

impl Protection for Loud {
    const NAME: &'static str = "loud";
    const SUMMARY: &'static str = "Writes to stdout and stderr everywhere (test plugin).";
    const CAPABILITIES: &'static [Capability] = &[Capability::NotifyManagement];
    const EVENTS: &'static [EventClass] = &[EventClass::Message];
    type Settings = Noise;

    fn configure(&mut self, _: Noise) -> Result<(), String> {
        shout("configure");
        Ok(())
    }

    fn handle(&mut self, event: &Event, _: &dyn Host) -> Vec<Action> {
        shout("handle");
        let EventKind::Message(message) = &event.kind else { return vec![] };
        vec![Action::notify(&format!("heard {} (restored {} bytes)", message.body, self.restored), "loud")]
    }

    fn snapshot(&self) -> Vec<u8> {
        shout("snapshot");
        b"loud state".to_vec()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        shout("restore");
        self.restored = state.len();
        Ok(())
    }
}

gleipnir_sdk::export_protection!(Loud);
