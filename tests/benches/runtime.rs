//! Dispatch cost through the real runtime, sandbox on (epoch deadline,
//! memory cap, capability checks): `cargo bench -p gleipnir-tests --bench runtime`.
//!
//! Prints, for each case, the median of several rounds in ns per event and
//! events per second. Without `--bench` (as `cargo test` runs it) it does a
//! few iterations only, to prove it works.

use std::hint::black_box;
use std::time::Instant;

use gleipnir_runtime::{Event, event};
use gleipnir_tests::{load, plugins, queries};

fn messages(count: usize, users: usize) -> Vec<Event> {
    (0..count)
        .map(|i| {
            let json = serde_json::json!({
                "room_id": "!HTwZpTKsrmUzZbWNuZ:example.org",
                "event_id": format!("$Zx9yJ4lqD2ePGOi5mWb8{i:08}"),
                "sender": format!("@user{}:example.org", i % users),
                "type": "m.room.message",
                "origin_server_ts": 1_700_000_000_000u64 + i as u64 * 50,
                "content": {"msgtype": "m.text", "body": "Hello everyone, has anyone tried the new release yet?"},
            })
            .to_string();
            event::from_json(&json, None, &|_, _| None).unwrap().unwrap()
        })
        .collect()
}

/// Median ns per item over `rounds` rounds of `f(round)` over `n` items.
fn measure(rounds: usize, n: usize, mut f: impl FnMut(u64)) -> f64 {
    let mut samples: Vec<f64> = (0..rounds as u64)
        .map(|round| {
            let start = Instant::now();
            f(round);
            start.elapsed().as_nanos() as f64 / n as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// GLEIPNIR_BENCH_ONLY=text runs only the cases whose name contains it.
fn wanted(name: &str) -> bool {
    std::env::var("GLEIPNIR_BENCH_ONLY").map_or(true, |only| name.contains(&only))
}

fn report(name: &str, ns: f64) {
    println!("{name:<58} {ns:>9.0} ns/event {:>12.0} events/s", 1e9 / ns);
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    // GLEIPNIR_BENCH_EVENTS sets the events per round (e.g. small, under callgrind).
    let n = std::env::var("GLEIPNIR_BENCH_EVENTS").ok().and_then(|v| v.parse().ok());
    let (n, rounds) = if full { (n.unwrap_or(100_000), 15) } else { (n.unwrap_or(200), 2) };
    // 1000 users taking turns, one message every 50 ms: each user sends one
    // message every 50 s, under any flood limit. The events are reused in
    // turn, as a live event is hot in cache when it is dispatched.
    let events = messages(1000, 1000);
    let event = |i: usize| &events[i % events.len()];

    // An empty `handle`: the fixed cost of crossing into the sandbox with a message.
    let noop = load(plugins::NOOP);
    let (q, _) = queries();
    let mut instance = noop.instantiate(q, noop.declared()).unwrap();
    for e in &events {
        instance.handle(e).unwrap();
    }
    if wanted("empty handle (noop protection, one message event)") {
        report(
            "empty handle (noop protection, one message event)",
            measure(rounds, n, |_| {
                for i in 0..n {
                    black_box(instance.handle(event(i)).unwrap());
                }
            }),
        );
    }

    // The same message without its raw content: what copying the content costs.
    let bare: Vec<Event> = events.iter().map(|e| Event { content: String::new(), ..e.clone() }).collect();
    if wanted("empty handle (noop protection, message event, empty content)") {
        report(
            "empty handle (noop protection, message event, empty content)",
            measure(rounds, n, |_| {
                for i in 0..n {
                    black_box(instance.handle(&bare[i % bare.len()]).unwrap());
                }
            }),
        );
    }

    // The same with a tick: no strings to copy, so the rest is the call itself.
    let tick = event::tick(1);
    if wanted("empty handle (noop protection, tick event)") {
        report(
            "empty handle (noop protection, tick event)",
            measure(rounds, n, |_| {
                for _ in 0..n {
                    black_box(instance.handle(&tick).unwrap());
                }
            }),
        );
    }

    // Flooding: the clock advances 50 ms per event; each round starts a day
    // later, so windows of earlier rounds have passed.
    let flooding = load(plugins::FLOODING);
    let (q, _) = queries();
    let clock = q.clone();
    let mut instance = flooding.instantiate(q, flooding.declared()).unwrap();
    let mut live = events.clone();
    if wanted("flooding, message event, no action") {
        report(
            "flooding, message event, no action",
            measure(rounds, n, |round| {
                for i in 0..n {
                    let now = 1_700_000_000_000 + round * 86_400_000 + i as u64 * 50;
                    clock.clock.set(now);
                    let index = i % live.len();
                    live[index].received_ts = now;
                    let outcome = instance.handle(&live[index]).unwrap();
                    assert!(outcome.actions.is_empty());
                }
            }),
        );
    }

    // Flooding through `handle-batch`: the same stream, in batches of 1, 16
    // and 64 events per call (the SDK runs `handle` for each inside the
    // sandbox), so the fixed cost of a call is shared by the batch.
    for size in [1usize, 16, 64] {
        let name = format!("flooding, message events in batches of {size}");
        if !wanted(&name) {
            continue;
        }
        let (q, _) = queries();
        let clock = q.clone();
        let mut instance = flooding.instantiate(q, flooding.declared()).unwrap();
        // The batches are built once; a round only moves their times, as the
        // one-at-a-time case does.
        let mut batches: Vec<Vec<Event>> = (0..n)
            .collect::<Vec<_>>()
            .chunks(size)
            .map(|c| c.iter().map(|j| live[j % live.len()].clone()).collect())
            .collect();
        report(
            &name,
            measure(rounds, n, |round| {
                let mut j = 0u64;
                for batch in &mut batches {
                    for e in batch.iter_mut() {
                        e.received_ts = 1_700_000_000_000 + round * 86_400_000 + j * 50;
                        j += 1;
                    }
                    clock.clock.set(batch.last().map_or(0, |e| e.received_ts));
                    let outcomes = instance.handle_batch(batch).unwrap();
                    assert!(outcomes.iter().all(|o| o.actions.is_empty()));
                }
            }),
        );
    }

    // The protection written in Python (componentize-py), when built: the
    // same stream of quiet messages, then its pre-emptive check.
    if let Some(path) = plugins::SHOUTING.filter(|_| wanted("shouting")) {
        let limits = gleipnir_runtime::Limits {
            instances: 16,
            check_deadline: std::time::Duration::from_millis(100),
            ..Default::default()
        };
        let runtime = gleipnir_tests::runtime_with(limits);
        let start = Instant::now();
        let shouting = gleipnir_tests::load_with(&runtime, path);
        println!(
            "{:<58} {:>9.1} ms",
            "load shouting.wasm (Python), from the disk cache",
            start.elapsed().as_secs_f64() * 1e3
        );
        let (q, _) = queries();
        let mut instance = shouting.instantiate(q, shouting.declared()).unwrap();
        report(
            "shouting (Python), message event, no action",
            measure(rounds, n.min(20_000), |_| {
                for i in 0..n.min(20_000) {
                    let outcome = instance.handle(event(i)).unwrap();
                    assert!(outcome.actions.is_empty());
                }
            }),
        );
        let pending = gleipnir_runtime::Pending::Event(gleipnir_runtime::PendingEvent {
            room_id: "!r:bench".into(),
            sender: "@a:bench".into(),
            event_type: "m.room.message".into(),
            state_key: None,
            content: r#"{"msgtype":"m.text","body":"a quiet message of several words"}"#.into(),
        });
        report(
            "shouting (Python), pre-emptive check of a message",
            measure(rounds, n.min(20_000), |_| {
                for _ in 0..n.min(20_000) {
                    black_box(instance.check_pending(&pending).unwrap());
                }
            }),
        );
    }

    // Loading a protection: compiling it, and taking it from the disk cache
    // (what a restart does).
    if wanted("load") {
        let dir = std::env::temp_dir().join(format!("gleipnir-bench-cache-{}", std::process::id()));
        let load_rounds = if full { 5 } else { 1 };
        let mut compile = Vec::new();
        let mut cached = Vec::new();
        for _ in 0..load_rounds {
            let _ = std::fs::remove_dir_all(&dir);
            let runtime = gleipnir_runtime::Runtime::new(gleipnir_runtime::RuntimeConfig {
                cache: Some(gleipnir_runtime::Folder::create(&dir).unwrap()),
                ..Default::default()
            })
            .unwrap();
            let start = Instant::now();
            runtime.load_file(plugins::FLOODING.as_ref()).unwrap();
            compile.push(start.elapsed().as_secs_f64() * 1e3);
            let start = Instant::now();
            runtime.load_file(plugins::FLOODING.as_ref()).unwrap();
            cached.push(start.elapsed().as_secs_f64() * 1e3);
        }
        let _ = std::fs::remove_dir_all(&dir);
        compile.sort_by(f64::total_cmp);
        cached.sort_by(f64::total_cmp);
        println!("{:<58} {:>9.1} ms", "load flooding.wasm, compiling (cold cache)", compile[compile.len() / 2]);
        println!("{:<58} {:>9.2} ms", "load flooding.wasm, from the disk cache (restart)", cached[cached.len() / 2]);
    }

    // Converting the client-format JSON once per event (shared by all protections).
    let lines: Vec<String> = events
        .iter()
        .map(|e| {
            serde_json::json!({"room_id": e.room_id, "event_id": e.event_id, "sender": e.sender, "type": "m.room.message",
                "origin_server_ts": e.origin_ts, "content": serde_json::from_str::<serde_json::Value>(&e.content).unwrap()})
            .to_string()
        })
        .collect();
    if wanted("event conversion from client-format JSON (host, once per event)") {
        report(
            "event conversion from client-format JSON (host, once per event)",
            measure(rounds, n, |_| {
                for i in 0..n {
                    black_box(event::from_json(&lines[i % lines.len()], None, &|_, _| None).unwrap());
                }
            }),
        );
    }
}
