//! Live operation: a plugin file replaced while events stream through, a
//! broken replacement, reloads, removals, grants by moderators, and the
//! operator's settings file applied live.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use synapse_harness::Options;

use crate::common::*;

/// Writes `bytes` over `path` in two halves with a pause between, as a slow
/// copy would: the watcher must not read the half-written file.
fn slow_write(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let half = bytes.len() / 2;
    file.write_all(&bytes[..half]).unwrap();
    file.flush().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    file.write_all(&bytes[half..]).unwrap();
}

/// The `counter` test plugin counts messages by event id and carries its
/// count across a swap (snapshot → restore). Version 1 is replaced by
/// version 2 while a member keeps sending: every message is counted once.
#[test]
fn hot_swap_while_events_stream_loses_none_and_handles_none_twice() {
    let scene = Scene::new(Options::default());
    let plugin_file = std::sync::Mutex::new(None);
    let _gleipnir = scene.start_with(
        |dir| {
            std::fs::copy(gleipnir_tests::plugins::COUNTER, dir.join("plugins/counter.wasm")).unwrap();
            let mut config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
            config.push_str("[protections.counter]\ngrantable = [\"notify-management\"]\n");
            std::fs::write(dir.join("config.toml"), config).unwrap();
            *plugin_file.lock().unwrap() = Some(dir.join("plugins/counter.wasm"));
        },
        &[
            ("protections enable counter", "counter enabled"),
            ("protections grant counter kick", "does not let moderators grant `kick`"),
            ("protections grant counter notify-management", "`notify-management` granted to counter"),
            ("protections config set counter label alpha", "counter.label"),
            ("protections config set counter old-only true", "counter.old-only"),
        ],
    );
    let plugin_file = plugin_file.lock().unwrap().clone().unwrap();
    let (synapse, spammer, room) = (&scene.synapse, &scene.spammer, scene.protected.clone());

    // A member sends without pause until told to stop.
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    std::thread::scope(|s| {
        let sender = s.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                send(synapse, spammer, &room, &format!("message {}", sent.load(Ordering::SeqCst)));
                sent.fetch_add(1, Ordering::SeqCst);
            }
        });
        eventually("some messages out", Duration::from_secs(30), || (sent.load(Ordering::SeqCst) >= 20).then_some(()));
        let next = std::fs::read(gleipnir_tests::plugins::COUNTER_NEXT).unwrap();
        slow_write(&plugin_file, &next);
        let swapped = eventually("the swap", Duration::from_secs(60), || {
            scene.notices().into_iter().find(|n| n.contains("counter 1.0.0 → 2.0.0 swapped in"))
        });
        let at_swap = sent.load(Ordering::SeqCst);
        // Keep sending after the swap, then stop.
        eventually("messages after the swap", Duration::from_secs(30), || {
            (sent.load(Ordering::SeqCst) >= at_swap + 20).then_some(())
        });
        stop.store(true, Ordering::SeqCst);
        sender.join().unwrap();
        assert!(swapped.contains("state carried over"), "{swapped}");
        assert!(swapped.contains("Setting `old-only` dropped: the new version has no such setting"), "{swapped}");
        assert!(swapped.contains("New settings (at their defaults): fresh"), "{swapped}");
    });
    let total = sent.load(Ordering::SeqCst);
    send(synapse, spammer, &room, "counter report");
    let report = eventually("the report", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.starts_with("counter: counter 2.0.0 alpha:"))
    });
    assert_eq!(
        report,
        format!("counter: counter 2.0.0 alpha: seen {total}, duplicates 0, restored {}", report_restored(&report))
    );
    assert!(report_restored(&report) > 0 && report_restored(&report) < total, "{report}");

    // A reload swaps the same file in again; state carried.
    let reloaded = scene.command("plugins reload counter", "swapped in");
    assert!(reloaded.contains("counter 2.0.0 → 2.0.0"), "{reloaded}");

    // A broken replacement keeps the running version.
    std::fs::write(&plugin_file, b"\0asm this is not a component").unwrap();
    eventually("the broken file reported", Duration::from_secs(60), || {
        scene
            .notices()
            .into_iter()
            .find(|n| n.contains("the new file does not load") && n.contains("counter 2.0.0 keeps running"))
    });
    let listing = scene.command("plugins", "Plugin files in");
    assert!(listing.contains("counter.wasm: counter 2.0.0"), "{listing}");
    assert!(listing.contains("was refused"), "{listing}");
    for i in 0..5 {
        send(synapse, spammer, &room, &format!("after the broken file {i}"));
    }
    let before = scene.notices().len();
    send(synapse, spammer, &room, "counter report");
    eventually("the second report", Duration::from_secs(30), || {
        let all = scene.notices();
        all[..all.len() - before]
            .iter()
            .find(|n| n.starts_with(&format!("counter: counter 2.0.0 alpha: seen {},", total + 5)))
            .cloned()
    });

    // Revoking the grant: the next report is refused, and said so.
    scene.command("protections revoke counter notify-management", "revoked from counter");
    send(synapse, spammer, &room, "counter report");
    eventually("the refusal", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains("counter: refused") && n.contains("notify-management"))
    });

    // Removing the file disables the protection and says so.
    std::fs::remove_file(&plugin_file).unwrap();
    eventually("the removal", Duration::from_secs(60), || {
        scene.notices().into_iter().find(|n| n.contains("counter.wasm was removed: counter 2.0.0 is disabled"))
    });
}

fn report_restored(report: &str) -> usize {
    report.rsplit("restored ").next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// The operator's settings file: applied live, shown as the source, an
/// invalid edit refused with the key path while the old settings keep
/// running, and moderators' values on top.
#[test]
fn settings_file_applies_live_and_rejects_invalid_edits() {
    let scene = Scene::new(Options::default());
    let settings_file = std::sync::Mutex::new(None);
    let _gleipnir = scene.start_with(
        |dir| {
            let config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
            let config = config.replace("dir = \"plugins\"\n", "dir = \"plugins\"\nsettings = \"protections.toml\"\n");
            std::fs::write(dir.join("config.toml"), config).unwrap();
            std::fs::write(dir.join("protections.toml"), "[flooding]\nmax-per-minute = 20\n").unwrap();
            *settings_file.lock().unwrap() = Some(dir.join("protections.toml"));
        },
        &[("protections enable flooding", "flooding enabled")],
    );
    let settings_file = settings_file.lock().unwrap().clone().unwrap();
    let shown = scene.command("protections show flooding", "max-per-minute = ");
    assert!(shown.contains("max-per-minute = 20 (operator settings file"), "{shown}");

    std::fs::write(&settings_file, "[flooding]\nmax-per-minute = 3\n").unwrap();
    let applied = eventually("the file applied", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains("Applied the settings file"))
    });
    assert!(applied.contains("flooding.max-per-minute: 20 → 3 (operator settings file)"), "{applied}");

    // Invalid edits: nothing of them is applied.
    std::fs::write(&settings_file, "[flooding]\nmax-per-minute = \"lots\"\nbogus = 1\n").unwrap();
    let refused = eventually("the edit refused", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains("was not applied"))
    });
    assert!(refused.contains("flooding.max-per-minute: expected integer"), "{refused}");
    assert!(refused.contains("flooding.bogus: flooding has no such setting"), "{refused}");
    assert!(refused.contains("The previous settings stay"), "{refused}");
    let shown = scene.command("protections show flooding", "max-per-minute = ");
    assert!(shown.contains("max-per-minute = 3 (operator settings file"), "{shown}");
    std::fs::write(&settings_file, "[flooding\n").unwrap();
    eventually("a syntax error refused", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains("protections.toml line 1"))
    });

    // The live value (3 per minute) is what acts.
    for i in 0..5 {
        let _ = try_send(&scene.synapse, &scene.spammer, &scene.protected, &format!("flood {i}"));
    }
    eventually("the flood stopped at 3", Duration::from_secs(30), || {
        (membership(&scene.synapse, &scene.moderator, &scene.protected, &scene.spammer.user_id).as_deref()
            == Some("ban"))
        .then_some(())
    });

    // A moderator's value wins over the file's, and says so.
    scene.command("protections config set flooding max-per-minute 5", "flooding.max-per-minute: 3 → 5");
    let shown = scene.command("protections show flooding", "max-per-minute = ");
    assert!(shown.contains("max-per-minute = 5 (set by a moderator"), "{shown}");
    std::fs::write(&settings_file, "[flooding]\nmax-per-minute = 4\n").unwrap();
    eventually("the file applied again", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains("No running protection's settings changed"))
    });
}
