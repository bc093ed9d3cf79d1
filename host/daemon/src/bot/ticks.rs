//! When each protection that asks for `tick` events gets its next one: every
//! `protections.NAME.tick` (a minute unless the operator says otherwise),
//! counted from when it was first seen ticking. Pure: time comes in.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How often a protection that asks for ticks gets one, unless configured.
pub(crate) const DEFAULT_TICK: Duration = Duration::from_secs(60);
/// The shortest interval a protection may ask for (`tick-ms`).
pub(crate) const MIN_TICK: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub(crate) struct Ticks {
    next: BTreeMap<String, Instant>,
}

impl Ticks {
    /// The protections due a tick at `now`, among those `ticking` (name and
    /// interval); each is due again one interval later. A protection seen
    /// ticking for the first time is due one interval from now; one no
    /// longer ticking is forgotten.
    pub(crate) fn due(&mut self, now: Instant, ticking: &[(String, Duration)]) -> Vec<String> {
        self.schedule(now, ticking);
        let mut due = Vec::new();
        for (name, every) in ticking {
            let next = self.next.get_mut(name).expect("scheduled above");
            if *next <= now {
                due.push(name.clone());
                // After a long pause, one tick, not one per missed interval.
                *next = (*next + *every).max(now + *every / 2);
            }
        }
        due
    }

    /// Starts counting for protections ticking for the first time (due one
    /// interval from now) and forgets those no longer ticking.
    pub(crate) fn schedule(&mut self, now: Instant, ticking: &[(String, Duration)]) {
        self.next.retain(|name, _| ticking.iter().any(|(n, _)| n == name));
        for (name, every) in ticking {
            self.next.entry(name.clone()).or_insert(now + *every);
        }
    }

    /// When the next tick is due, if any protection ticks.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.next.values().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_protection_ticks_at_its_own_interval_once_per_interval() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let ticking = vec![("fast".to_owned(), Duration::from_secs(10)), ("slow".to_owned(), Duration::from_secs(60))];
        let mut ticks = Ticks::default();
        assert!(ticks.due(at(0), &ticking).is_empty(), "not at once");
        assert_eq!(ticks.next_due(), Some(at(10)));
        assert_eq!(ticks.due(at(10), &ticking), ["fast"]);
        assert!(ticks.due(at(15), &ticking).is_empty());
        assert_eq!(ticks.due(at(60), &ticking), ["fast", "slow"]);
        // A long pause gives one tick, not a burst of the missed ones.
        assert_eq!(ticks.due(at(300), &ticking), ["fast", "slow"]);
        assert!(ticks.due(at(301), &ticking).is_empty());
        // No longer ticking: forgotten; ticking again: a full interval first.
        assert!(ticks.due(at(400), &ticking[..1]).contains(&"fast".to_owned()));
        assert_eq!(ticks.next.len(), 1);
        assert!(ticks.due(at(401), &ticking).is_empty());
        assert_eq!(ticks.due(at(461), &ticking), ["fast", "slow"]);
    }
}
