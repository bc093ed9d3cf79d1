//! A protection that does nothing: the cost of a `handle` call with a real
//! message event, and nothing else.

use gleipnir_sdk::prelude::*;

#[derive(Default)]
pub struct Noop;

impl Protection for Noop {
    const NAME: &'static str = "noop";
    const SUMMARY: &'static str = "Does nothing (test plugin).";
    const CAPABILITIES: &'static [Capability] = &[];
    const EVENTS: &'static [EventClass] = &[EventClass::Message];
    type Settings = ();

    fn handle(&mut self, _: &Event, _: &dyn Host) -> Vec<Action> {
        Vec::new()
    }
}

gleipnir_sdk::export_protection!(Noop);
