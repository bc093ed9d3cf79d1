//! What `GET /metrics` shows, in the Prometheus text format: counters the
//! bot and the checks add to as they work, and gauges set from the bot's
//! state after each sync. Also what `GET /healthz` answers from.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

pub(crate) struct Metrics {
    registry: Registry,
    events: Family<Labels, Counter>,
    actions: Family<Labels, Counter>,
    refusals: Family<Labels, Counter>,
    faults: Family<Labels, Counter>,
    quarantines: Family<Labels, Counter>,
    callbacks: Family<Labels, Histogram>,
    verdicts: Family<Labels, Counter>,
    rules: Family<Labels, Gauge>,
    protected_rooms: Gauge,
    sync_lag: Gauge<f64, AtomicU64>,
    /// When the last sync was handled, for the lag and `/healthz`.
    last_sync: Mutex<Option<Instant>>,
    safe_mode: AtomicBool,
    /// Before the first sync: what the bot is doing (and what stands in its way), for `/healthz`.
    starting: Mutex<Option<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("gleipnir");
        let events = Family::<Labels, Counter>::default();
        registry.register("events_handled", "Events handed to each protection", events.clone());
        let actions = Family::<Labels, Counter>::default();
        registry.register("actions", "Actions by kind and outcome (done, failed, refused, dry run…)", actions.clone());
        let refusals = Family::<Labels, Counter>::default();
        registry.register("capability_refusals", "Actions refused for lack of a capability", refusals.clone());
        let faults = Family::<Labels, Counter>::default();
        registry.register("faults", "Faults of each protection (traps, deadlines, memory)", faults.clone());
        let quarantines = Family::<Labels, Counter>::default();
        registry.register("quarantines", "Times each protection was quarantined", quarantines.clone());
        let callbacks = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25])
        });
        registry.register("antispam_callback_seconds", "Time to answer each spam-checker callback", callbacks.clone());
        let verdicts = Family::<Labels, Counter>::default();
        registry.register("antispam_verdicts", "Spam-checker answers by callback and verdict", verdicts.clone());
        let rules = Family::<Labels, Gauge>::default();
        registry.register("policy_rules", "Rules in each watched list", rules.clone());
        let protected_rooms = Gauge::default();
        registry.register("protected_rooms", "Rooms protected now", protected_rooms.clone());
        let sync_lag = Gauge::<f64, AtomicU64>::default();
        registry.register("sync_lag_seconds", "Seconds since the last sync was handled", sync_lag.clone());
        Metrics {
            registry,
            events,
            actions,
            refusals,
            faults,
            quarantines,
            callbacks,
            verdicts,
            rules,
            protected_rooms,
            sync_lag,
            last_sync: Mutex::new(None),
            starting: Mutex::new(None),
            safe_mode: AtomicBool::new(false),
        }
    }

    pub(crate) fn event_handled(&self, protection: &str) {
        self.events.get_or_create(&labels(&[("protection", protection)])).inc();
    }

    pub(crate) fn action(&self, kind: &str, outcome: &str) {
        self.actions.get_or_create(&labels(&[("kind", kind), ("outcome", outcome)])).inc();
    }

    pub(crate) fn capability_refusal(&self, protection: &str) {
        self.refusals.get_or_create(&labels(&[("protection", protection)])).inc();
    }

    pub(crate) fn fault(&self, protection: &str, quarantined: bool) {
        self.faults.get_or_create(&labels(&[("protection", protection)])).inc();
        if quarantined {
            self.quarantines.get_or_create(&labels(&[("protection", protection)])).inc();
        }
    }

    pub(crate) fn callback(&self, callback: &str, verdict: &str, took: Duration) {
        self.callbacks.get_or_create(&labels(&[("callback", callback)])).observe(took.as_secs_f64());
        self.verdicts.get_or_create(&labels(&[("callback", callback), ("verdict", verdict)])).inc();
    }

    /// After each sync: the state gauges.
    pub(crate) fn synced(&self, protected_rooms: usize, rules: &[(String, usize)], safe_mode: bool) {
        *self.last_sync.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        self.protected_rooms.set(protected_rooms as i64);
        self.rules.clear();
        for (list, count) in rules {
            self.rules.get_or_create(&labels(&[("list", list)])).set(*count as i64);
        }
        self.safe_mode.store(safe_mode, std::sync::atomic::Ordering::Relaxed);
    }

    /// `Ok` with a note while healthy (synced within `within`; safe mode is
    /// healthy: a restart would not end it, a moderator does), else why not.
    /// What the bot is doing before its first sync, for `/healthz`.
    pub(crate) fn starting(&self, note: impl Into<String>) {
        *self.starting.lock().unwrap_or_else(|e| e.into_inner()) = Some(note.into());
    }

    pub(crate) fn health(&self, within: Duration) -> Result<&'static str, String> {
        let last = *self.last_sync.lock().unwrap_or_else(|e| e.into_inner());
        match last {
            None => match self.starting.lock().unwrap_or_else(|e| e.into_inner()).as_deref() {
                Some(note) => Err(format!("not synced yet: {note}")),
                None => Err("not synced yet".to_owned()),
            },
            Some(at) if at.elapsed() > within => {
                Err(format!("the last sync was {} s ago (more than {} s)", at.elapsed().as_secs(), within.as_secs()))
            }
            Some(_) if self.safe_mode.load(std::sync::atomic::Ordering::Relaxed) => {
                Ok("ok (safe mode: nothing is protected until a moderator says `restart`)")
            }
            Some(_) => Ok("ok"),
        }
    }

    /// The text format, for `GET /metrics`.
    pub(crate) fn render(&self) -> String {
        let lag = self.last_sync.lock().unwrap_or_else(|e| e.into_inner()).map(|at| at.elapsed().as_secs_f64());
        self.sync_lag.set(lag.unwrap_or(f64::NAN));
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_show_in_the_text_format() {
        let m = Metrics::new();
        m.event_handled("flooding");
        m.event_handled("flooding");
        m.action("ban", "done");
        m.callback("check_event_for_spam", "deny", Duration::from_micros(700));
        m.synced(3, &[("coc".to_owned(), 12)], false);
        let text = m.render();
        assert!(text.contains("gleipnir_events_handled_total{protection=\"flooding\"} 2"), "{text}");
        assert!(text.contains("gleipnir_actions_total{kind=\"ban\",outcome=\"done\"} 1"), "{text}");
        assert!(
            text.contains("gleipnir_antispam_verdicts_total{callback=\"check_event_for_spam\",verdict=\"deny\"} 1")
        );
        assert!(
            text.contains(
                "gleipnir_antispam_callback_seconds_bucket{le=\"0.001\",callback=\"check_event_for_spam\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("gleipnir_protected_rooms 3"), "{text}");
        assert!(text.contains("gleipnir_policy_rules{list=\"coc\"} 12"), "{text}");
        assert_eq!(m.health(Duration::from_secs(60)), Ok("ok"));
        assert!(Metrics::new().health(Duration::from_secs(60)).unwrap_err().contains("not synced"));
        m.synced(3, &[], true);
        assert!(m.health(Duration::from_secs(60)).unwrap().contains("safe mode"));
    }
}
