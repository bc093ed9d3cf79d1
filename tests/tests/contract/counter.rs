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

/// The watcher compiles a changed file once it has settled, skips a
/// write that leaves the content as it was, and reports removals.
#[test]
fn the_watcher_reports_settled_changes() {
    use gleipnir_runtime::watch::{Change, WatchConfig, Watcher};
    let dir = std::env::temp_dir().join(format!("gleipnir-watch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("counter.wasm");
    let (tx, rx) = std::sync::mpsc::channel();
    let config = WatchConfig {
        plugins: gleipnir_runtime::Folder::open(&dir).unwrap(),
        settings_file: Some(dir.join("settings.toml")),
        settle: std::time::Duration::from_millis(100),
        known: Default::default(),
    };
    let _watcher = Watcher::start(gleipnir_tests::runtime(), config, move |c| tx.send(c).unwrap()).unwrap();
    let wait = || rx.recv_timeout(std::time::Duration::from_secs(20)).expect("a change");
    std::fs::write(&file, std::fs::read(plugins::COUNTER).unwrap()).unwrap();
    match wait() {
        Change::Compiled { result: Ok(p), .. } => assert_eq!(p.descriptor().version, "1.0.0"),
        other => panic!("{other:?}"),
    }
    // Same bytes again (a touch): nothing. Then new bytes: compiled.
    std::fs::write(&file, std::fs::read(plugins::COUNTER).unwrap()).unwrap();
    std::fs::write(dir.join(".counter.wasm.tmp"), b"ignored").unwrap();
    std::fs::write(&file, std::fs::read(plugins::COUNTER_NEXT).unwrap()).unwrap();
    match wait() {
        Change::Compiled { result: Ok(p), .. } => assert_eq!(p.descriptor().version, "2.0.0"),
        other => panic!("{other:?}"),
    }
    std::fs::write(&file, b"not wasm").unwrap();
    assert!(matches!(wait(), Change::Compiled { result: Err(_), .. }));
    std::fs::write(dir.join("settings.toml"), "[counter]\n").unwrap();
    assert!(matches!(wait(), Change::Settings { .. }));
    std::fs::remove_file(&file).unwrap();
    assert!(matches!(wait(), Change::Removed { .. }));
    let _ = std::fs::remove_dir_all(&dir);
}
