//! Contract tests of `takedown`, with a host whose history reads wait past the deadline.

use super::*;
use gleipnir_runtime::host::HostQueries;
use gleipnir_runtime::{HistoryEvent, PolicyRule};

pub(super) fn covered() {}

/// A host whose history read waits longer than a call's deadline.
struct SlowHistory {
    rooms: Vec<String>,
    wait: std::time::Duration,
}

impl HostQueries for SlowHistory {
    fn now_ms(&self) -> u64 {
        0
    }
    fn bot_user_id(&self) -> &str {
        "@bot:elsewhere"
    }
    no_room_state!();
    fn protected_rooms(&self) -> Vec<String> {
        self.rooms.clone()
    }
    fn members_matching(&self, rule: &PolicyRule) -> Vec<String> {
        // The hash of @spam:test, as MSC4205 publishes it.
        let hashed = rule.entity_sha256.as_deref() == Some(&gleipnir_policy::rule::sha256_base64("@spam:test"));
        if hashed { vec!["@spam:test".into()] } else { Vec::new() }
    }
    fn history(&self, room: &str, _: &str, limit: u32) -> Result<Vec<HistoryEvent>, String> {
        std::thread::sleep(self.wait);
        let event = |id: &str, sender: &str| HistoryEvent {
            event_id: id.into(),
            sender: sender.into(),
            event_type: "m.room.message".into(),
            is_state: false,
            redacted: false,
        };
        let all = vec![event(&format!("${room}-1"), "@spam:test"), event(&format!("${room}-2"), "@other:test")];
        Ok(all.into_iter().take(limit as usize).collect())
    }
}

fn takedown_rule() -> gleipnir_runtime::Event {
    let line = state(
        "!list:test",
        "@mod:test",
        "m.policy.rule.user",
        "k",
        json!({"hashes": {"sha256": gleipnir_policy::rule::sha256_base64("@spam:test")}, "recommendation": "m.takedown", "reason": "spam"}),
        1,
    );
    event::from_json(&line, None, &|_, _| None).unwrap().unwrap()
}

/// Through the real runtime: a hashed takedown rule reaches the members
/// the host matches, history reads that wait on the host (longer than
/// the call's deadline) do not time the call out, and only the user's
/// own events are redacted.
#[test]
fn a_hashed_takedown_reads_history_past_the_deadline() {
    hashed_takedown_past_the_deadline(&load(plugins::TAKEDOWN));
}

/// The component built for contract 0.1.0 decides as it always did.
#[test]
fn the_0_1_0_build_still_takes_down() {
    hashed_takedown_past_the_deadline(&load(gleipnir_tests::fixtures::TAKEDOWN_0_1_0));
}

fn hashed_takedown_past_the_deadline(plugin: &Plugin) {
    let host = Arc::new(SlowHistory {
        rooms: vec!["!a:test".into(), "!b:test".into()],
        wait: std::time::Duration::from_millis(120),
    });
    let mut instance = plugin.instantiate(host, plugin.declared()).expect("instantiates");
    instance.set_query_grants(gleipnir_runtime::QueryGrants::all());
    let outcome = instance.handle(&takedown_rule()).expect("no timeout: the waits are the host's");
    let lines: Vec<String> = outcome.actions.iter().map(render_action).collect();
    assert_eq!(
        lines,
        [
            "redact !a:test $!a:test-1 (takedown: spam)",
            "ban !a:test @spam:test (takedown: spam)",
            "redact !b:test $!b:test-1 (takedown: spam)",
            "ban !b:test @spam:test (takedown: spam)",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(std::iter::once(
            "notify-management Takedown rule for sha256:".to_owned()
                + &gleipnir_policy::rule::sha256_base64("@spam:test")
                + " in !list:test:\n- @spam:test: 2 event(s) redacted across 2 protected room(s), banned in 2 (takedown: spam)"
        ))
        .collect::<Vec<_>>()
    );
}

/// The time `history` waits on the host moves the call's deadline: two
/// reads of 300 ms each, under a deadline of 100 ms, finish the call.
#[test]
fn history_waits_longer_than_the_deadline_are_not_counted() {
    let limits = Limits { call_deadline: std::time::Duration::from_millis(100), ..Limits::default() };
    let plugin = gleipnir_tests::load_with(&gleipnir_tests::runtime_with(limits), plugins::TAKEDOWN);
    let host = Arc::new(SlowHistory {
        rooms: vec!["!a:test".into(), "!b:test".into()],
        wait: std::time::Duration::from_millis(300),
    });
    let mut instance = plugin.instantiate(host, plugin.declared()).expect("instantiates");
    instance.set_query_grants(gleipnir_runtime::QueryGrants::all());
    let outcome = instance.handle(&takedown_rule()).expect("no timeout: the waits are the host's");
    assert_eq!(outcome.actions.len(), 5, "{:?}", outcome.actions);
}

/// Without `read-members` (and `read-history`) the protection finds no one:
/// the refused query answers empty, and it acts on nothing but its report.
#[test]
fn without_the_query_grants_takedown_finds_no_one() {
    let plugin = load(plugins::TAKEDOWN);
    let host = Arc::new(SlowHistory { rooms: vec!["!a:test".into()], wait: std::time::Duration::ZERO });
    let mut instance = plugin.instantiate(host, plugin.declared()).expect("instantiates");
    let outcome = instance.handle(&takedown_rule()).expect("handles");
    let lines: Vec<String> = outcome.actions.iter().map(render_action).collect();
    assert_eq!(
        lines,
        [format!(
            "notify-management Takedown rule for sha256:{} in !list:test: no member of a protected room matches. (takedown: spam)",
            gleipnir_policy::rule::sha256_base64("@spam:test")
        )]
    );
}
