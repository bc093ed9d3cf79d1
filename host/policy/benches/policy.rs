//! Policy benchmarks; prints its figures. Run:
//! `cargo bench -p gleipnir-policy --bench policy`
//!
//! (a) 100,000 rules (80% literal users, 15% user globs, 5% servers) against
//!     1,000,000 member ids: one full match pass; time and peak heap.
//! (b) one rule added to a 100,000-rule list: time to compute the bans it
//!     calls for across 1,000 rooms of 1,000 members (a literal and a glob).
//! (c) loading a 100,000-rule list from its state events (parse, revisions,
//!     index, automaton).
//!
//! Heap is counted by a global allocator wrapper: bytes live at the peak,
//! above what was live when the step started.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gleipnir_policy::{EntityKind, Index, Members, PolicyList, bans_for};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size - layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f`, returning its result, the time, and the peak heap above the start.
fn measure<T>(f: impl FnOnce() -> T) -> (T, Duration, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let start = Instant::now();
    let out = f();
    let elapsed = start.elapsed();
    (out, elapsed, PEAK.load(Ordering::Relaxed) - base)
}

fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The rule events: (type, state key, content).
fn rule_events(n: u32) -> Vec<(String, String, String)> {
    let mut events = Vec::with_capacity(n as usize);
    for i in 0..n {
        let (kind, entity) = match i % 20 {
            // 80%: literal users, some of whom are members (every 7th of the first 1,000,000).
            0..16 => ("user", format!("@user{}:server{}.example", i * 7 % 1_200_000, i % 997)),
            // 15%: user globs: whole servers, and name prefixes anywhere.
            16..19 if i % 2 == 0 => ("user", format!("@*:spam{i}.example")),
            16..19 => ("user", format!("@troll{i}*:*")),
            // 5%: servers, literal and glob.
            _ if i % 3 == 0 => ("server", format!("*.bad{i}.example")),
            _ => ("server", format!("evil{i}.example")),
        };
        let content = format!(r#"{{"entity": "{entity}", "recommendation": "m.ban", "reason": "spam"}}"#);
        events.push((format!("m.policy.rule.{kind}"), format!("rule{i}"), content));
    }
    events
}

fn load(events: &[(String, String, String)]) -> (PolicyList, Index) {
    let mut list = PolicyList::new("!policy:example.org");
    let delta = list.apply_all(events.iter().map(|(t, k, c)| (t.as_str(), k.as_str(), c.as_str())));
    let mut index = Index::new();
    index.apply(&delta);
    // Build the automaton now, as the first match would.
    black_box(index.matching(EntityKind::User, "@warm:up"));
    (list, index)
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

/// Sizes: the figures with `cargo bench`; a small smoke run under `cargo test`.
struct Scale {
    rules: u32,
    members: u32,
    rooms: u32,
    per_room: u32,
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let scale = if full {
        Scale { rules: 100_000, members: 1_000_000, rooms: 1_000, per_room: 1_000 }
    } else {
        Scale { rules: 2_000, members: 20_000, rooms: 20, per_room: 100 }
    };
    let events = rule_events(scale.rules);

    // (c) Loading.
    let mut load_times = Vec::new();
    let (mut load_peak, mut load_held) = (0, 0);
    for _ in 0..5 {
        let base = LIVE.load(Ordering::Relaxed);
        let (loaded, took, peak) = measure(|| load(&events));
        load_times.push(took);
        load_peak = peak;
        load_held = LIVE.load(Ordering::Relaxed) - base;
        drop(loaded);
    }
    let (mut list, mut index) = load(&events);
    println!(
        "(c) load {} rules from state events: median {:.1} ms of 5 (heap held by list + index once loaded: {}, {} bytes a rule; peak while loading: {})",
        scale.rules,
        median(load_times).as_secs_f64() * 1e3,
        mib(load_held),
        load_held / scale.rules as usize,
        mib(load_peak)
    );

    // (a) A full pass: 1,000,000 member ids.
    let members: Vec<String> = (0..scale.members).map(|i| format!("@user{i}:server{}.example", i % 997)).collect();
    let mut pass_times = Vec::new();
    let mut pass_heap = 0;
    let mut hits = 0;
    for _ in 0..3 {
        let (found, took, heap) =
            measure(|| members.iter().filter(|m| index.acting(EntityKind::User, m).is_some()).count());
        pass_times.push(took);
        pass_heap = heap;
        hits = found;
    }
    let pass = median(pass_times);
    println!(
        "(a) full match pass, {} members against {} rules: median {:.0} ms of 3 ({:.0} ns/member, {hits} matched; peak extra heap {})",
        scale.members,
        scale.rules,
        pass.as_secs_f64() * 1e3,
        pass.as_nanos() as f64 / f64::from(scale.members),
        mib(pass_heap)
    );

    // (b) One rule added, 1,000 rooms of 1,000 members (from 400,000 distinct users).
    let mut rooms = Members::new();
    for room in 0..scale.rooms {
        let room_id = format!("!room{room}:example.org");
        for j in 0..scale.per_room {
            let user = (room * 7_919 + j * 401) % (scale.rooms * scale.per_room * 2 / 5);
            rooms.set(&room_id, &format!("@member{user}:home{}.example", user % 50), true);
        }
    }
    assert!(hits > 0, "some members must match");
    for (name, entity) in [("literal", "@member12345:home45.example"), ("glob", "@member1234*:*")] {
        let content = format!(r#"{{"entity": "{entity}", "recommendation": "m.ban"}}"#);
        let mut times = Vec::new();
        let mut count = 0;
        for run in 0..5 {
            let key = format!("added-{name}-{run}");
            let (bans, took, _) = measure(|| {
                let change = list.apply("m.policy.rule.user", &key, &content).expect("a new rule");
                index.apply_change(&change);
                bans_for(&gleipnir_policy::Delta { changes: vec![change] }, &rooms)
            });
            times.push(took);
            count = bans.len();
            // Take it out again so each run adds to the same 100,000.
            let removed = list.apply("m.policy.rule.user", &key, "{}").expect("removed");
            index.apply_change(&removed);
        }
        println!(
            "(b) one {name} rule added to {}, bans across {} rooms x {} members ({} distinct users): median {:.3} ms of 5 ({count} bans)",
            scale.rules,
            scale.rooms,
            scale.per_room,
            rooms.len(),
            median(times).as_secs_f64() * 1e3
        );
    }
}
