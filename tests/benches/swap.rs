//! Hot swap, measured: `cargo bench -p gleipnir-tests --bench swap`.
//!
//! Events are dispatched at a steady 1,000 per second to the `counter` test
//! plugin while its file is replaced by the other version. The dispatch loop
//! does what the bot does: the new file is compiled on another thread once
//! it has settled (the daemon's watcher waits the same 250 ms; the file
//! system's own notice, under a millisecond with inotify, is not counted),
//! and between two events the compiled plugin is swapped in with
//! `Instance::successor`. Printed per round:
//! - latency from the file written to the first event handled by the new
//!   version, and its parts: the settle wait, compiling (no disk cache: a
//!   new version is never cached), the swap itself;
//! - dispatch during the second after the write: events handled, the
//!   worst and 99th-percentile lateness against the 1 ms schedule;
//! - what the counter saw at the end: every event once (asserted).
//!
//! Without `--bench` (as `cargo test` runs it) one short round proves it works.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gleipnir_runtime::{Event, Runtime, RuntimeConfig, event};
use gleipnir_tests::{plugins, queries};

/// What the bot waits for a file to stay unchanged (`bot/live.rs`).
const SETTLE: Duration = Duration::from_millis(250);
const RATE: u64 = 1000;

fn message(i: usize, body: &str) -> Event {
    let json = serde_json::json!({
        "room_id": "!HTwZpTKsrmUzZbWNuZ:example.org",
        "event_id": format!("$Zx9yJ4lqD2ePGOi5mWb8{i:08}"),
        "sender": format!("@user{}:example.org", i % 100),
        "type": "m.room.message",
        "origin_server_ts": 1_700_000_000_000u64 + i as u64,
        "content": {"msgtype": "m.text", "body": body},
    })
    .to_string();
    event::from_json(&json, None, &|_, _| None).unwrap().unwrap()
}

struct Round {
    written_to_new: Duration,
    compile: Duration,
    swap: Duration,
    handled_in_second: usize,
    worst_late: Duration,
    p99_late: Duration,
}

fn round(runtime: &Arc<Runtime>, from: &str, to: &str, events: usize, write_at: usize) -> Round {
    let dir = std::env::temp_dir().join(format!("gleipnir-swap-bench-{}-{}", std::process::id(), events));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("counter.wasm");
    let old_bytes = std::fs::read(from).unwrap();
    std::fs::write(&file, &old_bytes).unwrap();
    let plugin = runtime.load_bytes(&old_bytes).unwrap();
    let (q, _) = queries();
    let mut instance = plugin.instantiate(q, plugin.declared()).unwrap();

    let folder = gleipnir_runtime::Folder::open(&dir).unwrap();
    let (tx, rx) = mpsc::channel();
    let new_bytes = std::fs::read(to).unwrap();
    let new_version = runtime.load_bytes(&new_bytes).map(|p| p.descriptor().version.clone()).unwrap_or_default();

    let batch: Vec<Event> = (0..events).map(|i| message(i, "hello")).collect();
    let start = Instant::now();
    let mut written = None;
    let (mut compile, mut swap, mut written_to_new) = (Duration::ZERO, Duration::ZERO, None);
    let mut lateness = Vec::new();
    for (i, event) in batch.iter().enumerate() {
        let due = start + Duration::from_micros(i as u64 * 1_000_000 / RATE);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        if i == write_at {
            std::fs::write(&file, &new_bytes).unwrap();
            written = Some(Instant::now());
            // As the watcher: once settled, compiled off the event path.
            let (runtime, folder, tx) = (runtime.clone(), folder.clone(), tx.clone());
            std::thread::spawn(move || {
                std::thread::sleep(SETTLE);
                let began = Instant::now();
                let compiled = runtime.load_from(&folder, "counter.wasm", runtime.limits());
                tx.send((compiled, began.elapsed())).unwrap();
            });
        }
        // Between two events: take what was compiled, swap it in.
        while let Ok((compiled, took)) = rx.try_recv() {
            if let Ok(next) = compiled {
                compile = took;
                let overrides = instance.overrides().to_vec();
                let began = Instant::now();
                let (new, _) = instance.successor(&next, &overrides).expect("the swap");
                swap = began.elapsed();
                instance = new;
            }
        }
        let outcome = instance.handle(event).expect("handled");
        assert!(outcome.actions.is_empty());
        if written_to_new.is_none()
            && let Some(w) = written
            && instance.plugin().descriptor().version == new_version
        {
            written_to_new = Some(w.elapsed());
        }
        if let Some(w) = written
            && w.elapsed() <= Duration::from_secs(1)
        {
            lateness.push(Instant::now().saturating_duration_since(due));
        }
    }
    // Every event seen once, across the swap.
    let report = instance.handle(&message(events + 1, "counter report")).unwrap();
    let body = match &report.actions[..] {
        [gleipnir_runtime::Action::NotifyManagement(n)] => n.body.clone(),
        other => panic!("{other:?}"),
    };
    assert!(body.contains(&format!("seen {events}, duplicates 0")), "{body}");
    assert!(body.starts_with(&format!("counter {new_version}")), "the new version never ran: {body}");
    let _ = std::fs::remove_dir_all(&dir);
    lateness.sort();
    let handled_in_second = lateness.len();
    Round {
        written_to_new: written_to_new.expect("the new version handled events"),
        compile,
        swap,
        handled_in_second,
        worst_late: lateness.last().copied().unwrap_or_default(),
        p99_late: lateness.get(lateness.len() * 99 / 100).copied().unwrap_or_default(),
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (rounds, events, write_at) = if full { (6, 3000, 1000) } else { (1, 1500, 300) };
    // No disk cache: a new version of a plugin has never been compiled before.
    let runtime = Runtime::new(RuntimeConfig { limits: Default::default(), cache: None }).unwrap();
    println!(
        "{:<6} {:>14} {:>10} {:>10} {:>9} {:>16} {:>11} {:>10}",
        "round", "written→new ms", "settle ms", "compile ms", "swap µs", "events in 1 s", "worst late", "p99 late"
    );
    let mut totals = Vec::new();
    for r in 0..rounds {
        let (from, to) = if r % 2 == 0 {
            (plugins::COUNTER, plugins::COUNTER_NEXT)
        } else {
            (plugins::COUNTER_NEXT, plugins::COUNTER)
        };
        let m = round(&runtime, from, to, events, write_at);
        println!(
            "{:<6} {:>14.1} {:>10} {:>10.1} {:>9} {:>16} {:>8.2} ms {:>7.2} ms",
            r + 1,
            m.written_to_new.as_secs_f64() * 1e3,
            SETTLE.as_millis(),
            m.compile.as_secs_f64() * 1e3,
            m.swap.as_micros(),
            m.handled_in_second,
            m.worst_late.as_secs_f64() * 1e3,
            m.p99_late.as_secs_f64() * 1e3,
        );
        totals.push(m.written_to_new);
    }
    totals.sort();
    println!(
        "median written→new {:.1} ms over {rounds} round(s); every event handled once in every round (asserted)",
        totals[totals.len() / 2].as_secs_f64() * 1e3
    );
}
