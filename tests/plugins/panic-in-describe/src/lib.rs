//! A protection that panics in `describe` (while its settings spec is read),
//! so it panics every time the host loads it. The host must refuse it with a
//! load error and carry on.

use gleipnir_sdk::prelude::*;

#[derive(Default)]
pub struct Unspeakable;

impl gleipnir_sdk::settings::Settings for Unspeakable {
    fn specs() -> Vec<SettingSpec> {
        panic!("asked to panic in describe");
    }
    fn from_values(_: &[Setting]) -> Result<Self, String> {
        Ok(Unspeakable)
    }
}

#[derive(Default)]
pub struct PanicInDescribe;

impl Protection for PanicInDescribe {
    const NAME: &'static str = "panic-in-describe";
    const SUMMARY: &'static str = "Panics in describe (test plugin).";
    const CAPABILITIES: &'static [Capability] = &[];
    const EVENTS: &'static [EventClass] = &[EventClass::Message];
    type Settings = Unspeakable;

    fn handle(&mut self, _: &Event, _: &dyn Host) -> Vec<Action> {
        Vec::new()
    }
}

gleipnir_sdk::export_protection!(PanicInDescribe);
