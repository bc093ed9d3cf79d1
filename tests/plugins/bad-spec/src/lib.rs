//! A protection whose settings spec is invalid: its default is outside its
//! own bounds. The host must refuse to load it and say which key is wrong.

use gleipnir_sdk::prelude::*;

gleipnir_sdk::settings! {
    pub struct Config {
        /// Declared with a default below its minimum.
        threshold: u32 = 0, min 5, max 10;
    }
}

#[derive(Default)]
pub struct BadSpec;

impl Protection for BadSpec {
    const NAME: &'static str = "bad-spec";
    const SUMMARY: &'static str = "Declares an invalid settings spec (test plugin).";
    const CAPABILITIES: &'static [Capability] = &[];
    const EVENTS: &'static [EventClass] = &[EventClass::Message];
    type Settings = Config;

    fn handle(&mut self, _: &Event, _: &dyn Host) -> Vec<Action> {
        Vec::new()
    }
}

gleipnir_sdk::export_protection!(BadSpec);
