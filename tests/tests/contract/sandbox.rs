//! The sandbox's limits through the real runtime, with the `hostile` test
//! plugin: WASI calls that would wait, guest code entered from inside Tokio
//! runtimes, the deadline around `history`, the query grants, and the limits
//! every real plugin runs within.

use std::time::{Duration, Instant};

use super::*;
use gleipnir_runtime::host::HostQueries;
use gleipnir_runtime::{ConfigureError, HistoryEvent, PolicyRule, QueryGrant, QueryGrants, SettingValue, SwapError};
use gleipnir_tests::{TEST_DEADLINE, within};

const ROOM: &str = "!room:test";

/// Longer than any call may take: a call still running then has hung.
const HUNG: Duration = Duration::from_secs(20);

fn event(body: &str) -> gleipnir_runtime::Event {
    event::from_json(&message(ROOM, "@a:test", 1, body, 1), None, &|_, _| None).unwrap().unwrap()
}

fn rendered(outcome: gleipnir_runtime::Outcome) -> Vec<String> {
    outcome
        .actions
        .iter()
        .map(render_action)
        .chain(outcome.refused.iter().map(|r| format!("refused: {}", r.why)))
        .collect()
}

/// Hands `body` to `instance` on another thread; what came back and how long it took.
fn timed(mut instance: Instance, body: &'static str) -> (Result<Vec<String>, Fault>, Duration) {
    within(HUNG, move || {
        let started = Instant::now();
        let result = instance.handle(&event(body)).map(rendered);
        (result, started.elapsed())
    })
}

fn hostile() -> Instance {
    start(&load(plugins::HOSTILE), &[]).0
}

#[test]
fn waiting_through_wasi_faults_at_once() {
    for body in ["sleep", "poll"] {
        let (result, took) = timed(hostile(), body);
        assert!(
            matches!(&result, Err(Fault::Trap { call: "handle", message }) if message.contains("a protection may not wait")),
            "{body}: {result:?}"
        );
        assert!(took < TEST_DEADLINE, "{body} took {took:?}");
    }
}

#[test]
fn stdin_is_closed_and_reading_it_ends_at_once() {
    let (result, took) = timed(hostile(), "stdin");
    assert_eq!(result.unwrap(), ["notify-management stdin: Ok(0) (stdin)"]);
    assert!(took < TEST_DEADLINE, "took {took:?}");
}

/// Misbehaviour in `configure`, `handle` and `restore`, and printing: each
/// faults only the protection (or nothing), wherever the host calls from.
fn misbehaviour_faults_alone() {
    let plugin = load(plugins::HOSTILE);
    let (mut instance, _, _) = start(&plugin, &[]);
    assert_eq!(instance.handle(&event("print")).map(rendered).unwrap(), ["notify-management printed (print)"]);
    let err = instance.configure(&[("panic-in-configure".into(), SettingValue::Flag(true))]).unwrap_err();
    assert!(matches!(&err, ConfigureError::Fault(Fault::Trap { call: "configure", .. })), "{err:?}");
    instance.restart().expect("restarts");
    let fault = instance.handle(&event("panic")).unwrap_err();
    assert!(matches!(&fault, Fault::Trap { call: "handle", message } if message.contains("panicked")), "{fault:?}");
    instance.restart().expect("restarts");
    assert_eq!(
        instance.handle(&event("arm-restore")).map(rendered).unwrap(),
        ["notify-management armed (arm-restore)"]
    );
    let err = instance.successor(&plugin, &[]).unwrap_err();
    assert!(matches!(&err, SwapError::Restore(Fault::Trap { call: "restore", .. })), "{err:?}");
    assert!(instance.fault().is_none(), "the old instance runs on");
}

#[test]
fn misbehaviour_outside_tokio_faults_alone() {
    misbehaviour_faults_alone();
}

#[tokio::test(flavor = "multi_thread")]
async fn misbehaviour_on_a_multi_thread_runtime_faults_alone() {
    tokio::spawn(async { misbehaviour_faults_alone() }).await.expect("no panic on a worker");
    misbehaviour_faults_alone();
}

#[tokio::test(flavor = "current_thread")]
async fn misbehaviour_on_a_current_thread_runtime_faults_alone() {
    misbehaviour_faults_alone();
}

/// A host whose history and members queries answer at once.
struct InstantQueries;

impl HostQueries for InstantQueries {
    fn now_ms(&self) -> u64 {
        0
    }
    fn bot_user_id(&self) -> &str {
        "@bot:test"
    }
    no_room_state!();
    fn members_matching(&self, _: &PolicyRule) -> Vec<String> {
        vec!["@spam:test".into()]
    }
    fn history(&self, _: &str, sender: &str, _: u32) -> Result<Vec<HistoryEvent>, String> {
        let event = |id: &str| HistoryEvent {
            event_id: id.into(),
            sender: sender.into(),
            event_type: "m.room.message".into(),
            is_state: false,
            redacted: false,
        };
        Ok(vec![event("$1"), event("$2")])
    }
}

fn with_instant_queries(grants: QueryGrants) -> Instance {
    let plugin = load(plugins::HOSTILE);
    let mut instance = plugin.instantiate(Arc::new(InstantQueries), plugin.declared()).expect("instantiates");
    instance.set_query_grants(grants);
    instance
}

/// `history` extends a call's deadline only by the time the host waited:
/// a protection calling it between long computations is stopped at about
/// the deadline, not after a deadline per call.
#[test]
fn history_in_a_loop_is_stopped_at_the_deadline() {
    let instance = with_instant_queries(QueryGrants::all());
    let (result, took) = timed(instance, "history-loop");
    assert!(matches!(result, Err(Fault::Timeout { call: "handle", .. })), "{result:?}");
    assert!(took < TEST_DEADLINE * 2, "took {took:?}");
}

/// Without `read-history` and `read-members` the queries are refused (not
/// trapped); granted, they answer, and the grant outlives a restart and a swap.
#[test]
fn history_and_members_need_the_operators_grant() {
    let queries = |instance: &mut Instance| instance.handle(&event("queries")).map(rendered).unwrap().join("\n");
    let mut instance = with_instant_queries(QueryGrants::EMPTY);
    assert_eq!(
        queries(&mut instance),
        "notify-management history=Err(\"`history` needs `read-history`, which the operator has not granted\") members=0 (queries)"
    );
    assert!(instance.fault().is_none(), "a refused query is not a fault");

    instance.set_query_grants([QueryGrant::ReadMembers].into_iter().collect());
    assert_eq!(
        queries(&mut instance),
        "notify-management history=Err(\"`history` needs `read-history`, which the operator has not granted\") members=1 (queries)"
    );

    instance.set_query_grants(QueryGrants::all());
    assert_eq!(queries(&mut instance), "notify-management history=Ok(2) members=1 (queries)");
    instance.handle(&event("panic")).unwrap_err();
    instance.restart().expect("restarts");
    assert_eq!(instance.query_grants(), QueryGrants::all());
    let (mut next, _) = instance.successor(&load(plugins::HOSTILE), &[]).expect("swaps");
    assert_eq!(queries(&mut next), "notify-management history=Ok(2) members=1 (queries)");
}

/// What every real plugin needs fits the limits: each loads, starts and
/// handles an event under the default limits (memory, tables, instances,
/// stack, hostcall fuel).
#[test]
fn every_working_plugin_runs_within_the_limits() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/noop-built-before-message-count.wasm");
    for path in [
        plugins::FLOODING,
        plugins::NEWCOMER_WATCH_WORDS,
        plugins::LEAST_AUTHORITY,
        plugins::TAKEDOWN,
        plugins::HOSTILE,
        plugins::NOOP,
        plugins::POLICY_ECHO,
        plugins::COUNTER,
        plugins::COUNTER_NEXT,
        plugins::LOUD,
        fixture,
    ] {
        let plugin = load(path);
        let (mut instance, _, _) = start(&plugin, &[]);
        instance.handle(&event("hello")).unwrap_or_else(|fault| panic!("{path}: {fault}"));
    }
}
