//! Reports every policy-list change it receives to the management room:
//! proves protections get the host's rule deltas.

use gleipnir_sdk::prelude::*;

#[derive(Default)]
pub struct PolicyEcho;

impl Protection for PolicyEcho {
    const NAME: &'static str = "policy-echo";
    const SUMMARY: &'static str = "Reports each policy change (test plugin).";
    const CAPABILITIES: &'static [Capability] = &[Capability::NotifyManagement];
    const EVENTS: &'static [EventClass] = &[EventClass::Policy];
    type Settings = ();

    fn handle(&mut self, event: &Event, _: &dyn Host) -> Vec<Action> {
        let EventKind::Policy(p) = &event.kind else { return Vec::new() };
        let change = match p.change {
            RuleChange::Added => "added",
            RuleChange::Modified => "modified",
            RuleChange::Removed => "removed",
        };
        let entity = p.rule.entity.clone().or_else(|| p.rule.entity_sha256.clone().map(|h| format!("sha256:{h}")));
        let body = format!(
            "policy-echo: {change} {} {} in {}",
            p.rule.recommendation,
            entity.unwrap_or_default(),
            event.room_id
        );
        vec![Action::notify(&body, "test")]
    }
}

gleipnir_sdk::export_protection!(PolicyEcho);
