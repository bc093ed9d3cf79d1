//! Keeping a faulty protection from hurting the rest: faults are counted per
//! protection; three within a minute quarantine it (no events reach it) for
//! a time that doubles with each quarantine, from 30 s up to an hour.
//! `protections enable` (or disabling and enabling) lifts it. Actions a
//! protection is not granted are refused and reported once per kind, with a
//! count in `status`, not every time. Pure: time comes in as an argument.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Faults within this window count toward a quarantine.
const WINDOW: Duration = Duration::from_secs(60);
/// Faults within the window that quarantine.
const FAULTS: usize = 3;
const FIRST: Duration = Duration::from_secs(30);
const LONGEST: Duration = Duration::from_secs(3600);

#[derive(Debug, Default)]
pub(crate) struct Health {
    recent: VecDeque<Instant>,
    /// Quarantined until then.
    until: Option<Instant>,
    /// The next quarantine's length.
    next: Option<Duration>,
    pub(crate) faults: u64,
    pub(crate) last_fault: Option<String>,
    /// Refused action kinds and how often.
    pub(crate) refused: BTreeMap<String, u64>,
}

impl Health {
    /// Whether events should skip this protection now.
    pub(crate) fn quarantined(&self, now: Instant) -> bool {
        self.until.is_some_and(|until| now < until)
    }

    /// Until when, if quarantined.
    pub(crate) fn quarantined_for(&self, now: Instant) -> Option<Duration> {
        self.until.filter(|u| now < *u).map(|u| u - now)
    }

    /// Records a fault; the quarantine's length if this one starts one.
    pub(crate) fn fault(&mut self, what: String, now: Instant) -> Option<Duration> {
        self.faults += 1;
        self.last_fault = Some(what);
        self.recent.push_back(now);
        while self.recent.front().is_some_and(|t| now.duration_since(*t) > WINDOW) {
            self.recent.pop_front();
        }
        if self.recent.len() < FAULTS {
            return None;
        }
        self.recent.clear();
        let length = self.next.unwrap_or(FIRST);
        self.next = Some((length * 2).min(LONGEST));
        self.until = Some(now + length);
        Some(length)
    }

    /// Records a refused action kind; true the first time (report it then).
    pub(crate) fn refused(&mut self, kind: &str) -> bool {
        let count = self.refused.entry(kind.to_owned()).or_default();
        *count += 1;
        *count == 1
    }

    /// Lifts a quarantine and forgets the backoff.
    pub(crate) fn clear(&mut self) -> bool {
        let was = self.until.is_some();
        *self = Health { refused: std::mem::take(&mut self.refused), ..Health::default() };
        was
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_faults_in_a_minute_quarantine_with_doubling_backoff() {
        let start = Instant::now();
        let mut h = Health::default();
        let at = |s: u64| start + Duration::from_secs(s);
        assert_eq!(h.fault("trap".into(), at(0)), None);
        assert_eq!(h.fault("trap".into(), at(10)), None);
        // Spread out: the first fault is out of the window.
        assert_eq!(h.fault("trap".into(), at(65)), None);
        assert_eq!(h.fault("trap".into(), at(70)), Some(Duration::from_secs(30)));
        assert!(h.quarantined(at(99)));
        assert!(!h.quarantined(at(100)));
        for s in [101, 102] {
            assert_eq!(h.fault("timeout".into(), at(s)), None);
        }
        assert_eq!(h.fault("timeout".into(), at(103)), Some(Duration::from_secs(60)));
        assert_eq!(h.quarantined_for(at(113)), Some(Duration::from_secs(50)));
        assert!(h.clear());
        assert!(!h.quarantined(at(113)));
        for s in [200, 201] {
            h.fault("trap".into(), at(s));
        }
        assert_eq!(h.fault("trap".into(), at(202)), Some(Duration::from_secs(30)), "cleared backoff starts over");
    }

    #[test]
    fn refusals_are_reported_once_per_kind() {
        let mut h = Health::default();
        assert!(h.refused("ban"));
        assert!(!h.refused("ban"));
        assert!(h.refused("kick"));
        assert_eq!(h.refused["ban"], 2);
    }
}
