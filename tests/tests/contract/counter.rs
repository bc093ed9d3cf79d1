//! Contract tests of `counter` (version 1 of the hot-swap test plugin): counting, and
//! `Instance::successor` and the watcher, which swap it for version 2.

use super::*;
use gleipnir_runtime::SettingValue;

pub(super) fn covered() {}

fn report(instance: &mut Instance, rooms: &RoomStates, queries: &gleipnir_runtime::host::StateQueries) -> String {
    run(instance, rooms, &queries.clock, &[message("!r:test", "@a:test", 9, "counter report", 9999)])
}

#[test]
fn counts_each_event_once() {
    let lines: Vec<String> = (0..4).map(|i| message("!r:test", "@a:test", i, "hi", i as usize)).collect();
    let mut lines = lines;
    lines.push(message("!r:test", "@a:test", 5, "again", 2));
    lines.push(message("!r:test", "@a:test", 6, "counter report", 100));
    check(
        &load(plugins::COUNTER),
        &[],
        &lines,
        "notify-management counter 1.0.0 counter: seen 4, duplicates 1, restored 0 (report)",
    );
}

/// `Instance::successor`: version 2 takes over version 1's state, the
/// settings that still fit, grants and key-value store; a setting
/// version 2 lacks is dropped and named.
#[test]
fn a_new_version_takes_over_state_and_settings() {
    let (mut old, rooms, queries) = start(
        &load(plugins::COUNTER),
        &[("label", SettingValue::Text("alpha".into())), ("old-only", SettingValue::Flag(true))],
    );
    let lines: Vec<String> = (0..3).map(|i| message("!r:test", "@a:test", i, "hi", i as usize)).collect();
    run(&mut old, &rooms, &queries.clock, &lines);
    let overrides = old.overrides().to_vec();
    let (mut new, handover) = old.successor(&load(plugins::COUNTER_NEXT), &overrides).expect("swaps");
    assert!(handover.state_bytes > 0, "{handover:?}");
    assert_eq!(handover.dropped.len(), 1, "{handover:?}");
    assert_eq!(handover.dropped[0].0, "old-only");
    assert_eq!(handover.added, vec!["fresh".to_owned()]);
    assert_eq!(new.allowed(), old.allowed());
    run(&mut new, &rooms, &queries.clock, &[message("!r:test", "@a:test", 5, "hi", 3)]);
    assert_eq!(
        report(&mut new, &rooms, &queries),
        "notify-management counter 2.0.0 alpha: seen 4, duplicates 0, restored 3 (report)"
    );
    // The old instance was left as it was.
    assert_eq!(
        report(&mut old, &rooms, &queries),
        "notify-management counter 1.0.0 alpha: seen 3, duplicates 0, restored 0 (report)"
    );
}

/// A new version that refuses its settings, or is another protection,
/// does not take over; the old instance keeps its state.
#[test]
fn a_refused_successor_leaves_the_old_instance_running() {
    let (mut old, rooms, queries) = start(&load(plugins::COUNTER), &[]);
    run(&mut old, &rooms, &queries.clock, &[message("!r:test", "@a:test", 1, "hi", 1)]);
    let refuse = vec![("label".to_owned(), SettingValue::Text("refuse".into()))];
    let e = old.successor(&load(plugins::COUNTER_NEXT), &refuse).unwrap_err();
    assert!(e.to_string().contains("the label `refuse` is refused"), "{e}");
    let e = old.successor(&load(plugins::FLOODING), &[]).unwrap_err();
    assert_eq!(e.to_string(), "the new file is protection `flooding`, not `counter`");
    assert_eq!(
        report(&mut old, &rooms, &queries),
        "notify-management counter 1.0.0 counter: seen 1, duplicates 0, restored 0 (report)"
    );
}
