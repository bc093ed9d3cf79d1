//! The trait a protection implements.

use crate::Host;
use crate::prelude::*;
use crate::settings::Settings;

/// A protection: describe yourself once, take settings, turn events into actions.
///
/// The host creates one instance with `Default`, calls
/// [`configure`](Protection::configure) with validated settings before the
/// first event, and then [`handle`](Protection::handle) for each event of the
/// classes listed in [`EVENTS`](Protection::EVENTS), in order, one at a time.
pub trait Protection: Default + 'static {
    /// The name moderators type: lower-case kebab-case, e.g. `flooding`.
    const NAME: &'static str;
    /// One sentence saying what the protection does.
    const SUMMARY: &'static str;
    /// Every kind of action the protection may return. Actions outside this
    /// list are refused by the host.
    const CAPABILITIES: &'static [Capability];
    /// The classes of event the host should deliver.
    const EVENTS: &'static [EventClass];
    /// Typed settings, usually declared with [`settings!`](crate::settings!);
    /// `()` when there are none.
    type Settings: Settings;

    /// Take new settings. Returning an error keeps the previous settings.
    fn configure(&mut self, settings: Self::Settings) -> Result<(), String> {
        let _ = settings;
        Ok(())
    }

    /// Decide what to do about one event.
    fn handle(&mut self, event: &Event, host: &dyn Host) -> Vec<Action>;

    /// State to hand to the next version of this protection on a hot swap.
    fn snapshot(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Take over the state from [`snapshot`](Protection::snapshot) of an earlier
    /// instance (possibly an older version of this protection).
    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let _ = state;
        Ok(())
    }
}
