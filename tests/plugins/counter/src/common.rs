// Shared by `counter` (version 1) and `counter-next` (version 2): the two
// builds of one protection, `counter`, that the hot-swap tests replace one
// with the other while events stream through. The including crate defines
// `Config` (whose settings differ between the versions).

use std::collections::BTreeSet;

use gleipnir_sdk::prelude::*;

/// Counts every message by event id; `counter report` in a protected room
/// makes it tell the management room what it saw.
#[derive(Default)]
pub struct Counter {
    config: Config,
    seen: BTreeSet<String>,
    duplicates: u32,
    /// Events taken over from an earlier instance through `restore`.
    restored: usize,
}

impl Protection for Counter {
    const NAME: &'static str = "counter";
    const SUMMARY: &'static str = "Counts messages by event id, across hot swaps (test plugin).";
    const CAPABILITIES: &'static [Capability] = &[Capability::NotifyManagement];
    const EVENTS: &'static [EventClass] = &[EventClass::Message];
    type Settings = Config;

    fn configure(&mut self, config: Config) -> Result<(), String> {
        if config.label == "refuse" {
            return Err("the label `refuse` is refused (test)".to_owned());
        }
        self.config = config;
        Ok(())
    }

    fn handle(&mut self, event: &Event, _: &dyn Host) -> Vec<Action> {
        let EventKind::Message(message) = &event.kind else { return Vec::new() };
        if message.body.trim() == "counter report" {
            let body = format!(
                "counter {} {}: seen {}, duplicates {}, restored {}",
                env!("CARGO_PKG_VERSION"),
                self.config.label,
                self.seen.len(),
                self.duplicates,
                self.restored
            );
            return vec![Action::notify(&body, "report")];
        }
        if !self.seen.insert(event.event_id.clone()) {
            self.duplicates += 1;
        }
        Vec::new()
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut state = format!("{}\n", self.duplicates);
        for id in &self.seen {
            state.push_str(id);
            state.push('\n');
        }
        state.into_bytes()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(state).map_err(|_| "the state is not UTF-8".to_owned())?;
        let mut lines = text.lines();
        let duplicates = lines.next().and_then(|l| l.parse::<u32>().ok()).ok_or("the state has no duplicate count")?;
        self.duplicates += duplicates;
        for id in lines {
            if !self.seen.insert(id.to_owned()) {
                self.duplicates += 1;
            }
            self.restored += 1;
        }
        Ok(())
    }
}

gleipnir_sdk::export_protection!(Counter);
