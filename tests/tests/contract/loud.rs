//! Contract tests of `loud`: a protection that writes to stdout and stderr at
//! every entry (constructor, `describe`, `configure`, `handle`, `snapshot`,
//! `restore`) loads and runs wherever the host calls it from, inside a Tokio
//! runtime of either flavour or outside one.

use super::*;

pub(super) fn covered() {}

/// Loads, starts, handles one event and hands over to a new instance.
fn prints_everywhere_and_works() {
    let plugin = load(plugins::LOUD);
    assert_eq!(plugin.name(), "loud");
    let (mut instance, rooms, queries) = start(&plugin, &[]);
    let got = run(&mut instance, &rooms, &queries.clock, &[message("!r:test", "@a:test", 1, "hi", 1)]);
    assert_eq!(got, "notify-management heard hi (restored 0 bytes) (loud)");
    let (mut next, handover) = instance.successor(&plugin, &[]).expect("hands over");
    assert_eq!(handover.state_bytes, "loud state".len());
    let got = run(&mut next, &rooms, &queries.clock, &[message("!r:test", "@a:test", 2, "again", 2)]);
    assert_eq!(got, "notify-management heard again (restored 10 bytes) (loud)");
}

#[test]
fn outside_tokio() {
    prints_everywhere_and_works();
}

/// As in the bot: a multi-thread runtime, called from a worker and from `block_on`.
#[tokio::test(flavor = "multi_thread")]
async fn on_a_multi_thread_runtime() {
    tokio::spawn(async { prints_everywhere_and_works() }).await.expect("no panic on a worker");
    prints_everywhere_and_works();
}

#[tokio::test(flavor = "current_thread")]
async fn on_a_current_thread_runtime() {
    prints_everywhere_and_works();
}
