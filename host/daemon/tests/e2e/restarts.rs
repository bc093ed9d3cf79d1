//! A restart or a crash is no free pass: what arrived while the bot was
//! stopped is handled when it starts, what it decided and did not finish is
//! finished, and commands sent meanwhile are answered, not run.

use std::time::Duration;

use serde_json::json;
use synapse_harness::{Options, unique_name};

use crate::common::*;

fn flood(scene: &Scene, n: usize, what: &str) -> Vec<String> {
    (0..n).map(|i| send(&scene.synapse, &scene.spammer, &scene.protected, &format!("{what} {i}"))).collect()
}

fn redacted(scene: &Scene, spam: &[String]) -> usize {
    spam.iter().filter(|id| is_redacted(&scene.synapse, &scene.moderator, &scene.protected, id)).count()
}

fn banned(scene: &Scene) -> Option<()> {
    (membership(&scene.synapse, &scene.moderator, &scene.protected, &scene.spammer.user_id).as_deref() == Some("ban"))
        .then_some(())
}

/// Asks `status` (a marker too: once answered, everything sent before it was seen).
fn flooding_enabled(scene: &Scene) -> bool {
    let status = scene.command("status", "Protections:");
    let line = status.lines().find(|l| l.starts_with("- flooding ")).unwrap_or_else(|| panic!("{status}"));
    line.contains("(enabled")
}

fn flood_reports(scene: &Scene) -> usize {
    scene.notices().iter().filter(|n| n.contains("messages within a minute")).count()
}

/// Killed (SIGKILL) part-way through a flood's redactions, the bot finishes
/// the job when it starts again: every message redacted, the spammer banned,
/// the flood reported once. The homeserver lets the bot redact once a second,
/// so the kill lands in the middle.
#[test]
fn a_crash_mid_flood_is_finished_after_a_restart() {
    let scene = Scene::new(Options {
        extra_config: "rc_admin_redaction: {per_second: 1, burst_count: 1}\n".to_owned(),
        ..Options::default()
    });
    let mut gleipnir = scene.start(&[], &[("protections enable flooding", "flooding enabled")]);
    // Sent until the spammer is stopped: the ban goes before the clean-up.
    let spam: Vec<String> = (0..15)
        .map_while(|i| try_send(&scene.synapse, &scene.spammer, &scene.protected, &format!("flood {i}")).ok())
        .collect();
    assert!(spam.len() >= 11, "the flood was cut short before it was one: {}", spam.len());
    eventually("5 of the flood's redactions", Duration::from_secs(60), || (redacted(&scene, &spam) >= 5).then_some(()));
    let _ = gleipnir.child.kill();
    let _ = gleipnir.child.wait();
    let done = redacted(&scene, &spam);
    assert!(done < spam.len(), "every redaction was made before the kill: the test proves nothing");
    assert!(banned(&scene).is_some(), "the spammer is banned before their messages are cleaned up");

    gleipnir.restart();
    eventually("every flood message redacted", Duration::from_secs(90), || {
        (redacted(&scene, &spam) == spam.len()).then_some(())
    });
    eventually("the spammer banned", Duration::from_secs(60), || banned(&scene));
    let resumed = eventually("the resumption said", Duration::from_secs(30), || {
        scene
            .notices()
            .into_iter()
            .find(|n| n.starts_with("Carrying out") && n.contains("decided before Gleipnir stopped"))
    });
    // A redaction in flight at the kill may be made twice; no other: each is
    // marked done as its request returns. Up to 12 are out at once in a room,
    // but the homeserver carries out one a second (the rest wait out its 429s),
    // so only the last one or two can have been made and not yet marked.
    let counts = redactions_by(&scene.synapse, &scene.moderator, &scene.protected, &scene.bot.user_id);
    let twice = counts.values().filter(|n| **n > 1).count();
    assert!(twice <= 4 && counts.values().all(|n| *n <= 2), "{counts:?} ({resumed})");
    assert_eq!(counts.len(), spam.len(), "{counts:?}");
    assert_eq!(flood_reports(&scene), 1, "{:?}", scene.notices());
}

/// A flood sent while the bot is stopped is handled when it starts; a
/// command sent meanwhile is answered once and not run; an edit of a command
/// is not a command.
#[test]
fn what_arrives_while_stopped_is_handled_at_start_and_commands_are_not_run() {
    let scene = Scene::new(Options::default());
    let mut gleipnir = scene.start(
        &[],
        &[
            ("protections enable flooding", "flooding enabled"),
            ("protections config set flooding max-per-minute 3", "max-per-minute: 10 → 3"),
        ],
    );
    // An edit that turns a message into a command runs nothing.
    let original = send(&scene.synapse, &scene.moderator, &scene.management, "hello");
    let edit = json!({
        "msgtype": "m.text",
        "body": "* !gleipnir protections disable flooding",
        "m.new_content": {"msgtype": "m.text", "body": "!gleipnir protections disable flooding"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": original},
    });
    let path = format!("/_matrix/client/v3/rooms/{}/send/m.room.message/{}", scene.management, unique_name("e"));
    scene.synapse.call(&scene.moderator, "PUT", &path, Some(&edit)).unwrap();
    // A marker command: once answered, the edit before it was seen.
    assert!(flooding_enabled(&scene), "the edit ran as a command");

    let _ = gleipnir.child.kill();
    let _ = gleipnir.child.wait();
    let spam = flood(&scene, 6, "while stopped");
    send(&scene.synapse, &scene.moderator, &scene.management, "!gleipnir protections disable flooding");
    gleipnir.restart();

    eventually("the flood sent while stopped redacted", Duration::from_secs(90), || {
        (redacted(&scene, &spam) == spam.len()).then_some(())
    });
    eventually("the spammer banned", Duration::from_secs(60), || banned(&scene));
    let answer = eventually("the answer to the command sent while stopped", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.starts_with("Not run: `protections disable flooding`"))
    });
    assert!(answer.contains("sent while Gleipnir was stopped"), "{answer}");
    assert!(flooding_enabled(&scene), "the command sent while stopped was run");
    let notices = scene.notices();
    assert_eq!(notices.iter().filter(|n| n.starts_with("Not run:")).count(), 1, "{notices:?}");
    assert_eq!(flood_reports(&scene), 1, "{notices:?}");
    // The restart reused the session: one device for the bot, not one per start.
    let devices = scene.synapse.call(&scene.bot, "GET", "/_matrix/client/v3/devices", None).unwrap();
    let named = devices["devices"].as_array().unwrap().iter().filter(|d| d["display_name"] == "gleipnir").count();
    assert_eq!(named, 1, "{devices}");
}

/// A write to the data directory that fails (here the sync token's temporary
/// file cannot be created, as on a full disk) is reported once and tried
/// again; the bot keeps working, and saves again once it can.
#[test]
fn a_failed_write_is_reported_and_never_fatal() {
    let scene = Scene::new(Options::default());
    let mut gleipnir = scene.start(&[], &[]);
    let token = gleipnir.dir.join("data/sync_token");
    // A folder where the token goes: the rename over it fails (as a full
    // disk would fail the write), whatever temporary name the write uses.
    let stuck = std::fs::read_to_string(&token).unwrap();
    std::fs::remove_file(&token).unwrap();
    std::fs::create_dir_all(&token).unwrap();
    scene.command("rooms", "Protected rooms (1)");
    let report = eventually("the failed write reported", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.starts_with("Cannot write to the data directory"))
    });
    assert!(report.contains("sync token"), "{report}");
    scene.command("status", "Protections:");
    scene.command("rooms", "Protected rooms (1)");
    assert!(gleipnir.child.try_wait().unwrap().is_none(), "the bot stopped");
    let reports = scene.notices().iter().filter(|n| n.starts_with("Cannot write to the data directory")).count();
    assert_eq!(reports, 1, "said once until it works again");

    std::fs::remove_dir(&token).unwrap();
    scene.command("rooms", "Protected rooms (1)");
    eventually("the token saved again", Duration::from_secs(60), || {
        std::fs::read_to_string(&token).ok().filter(|now| *now != stuck).map(|_| ())
    });
}

/// A restart takes the rooms' state from the data folder as of its token and
/// asks only for what changed since: a member of the management room (where
/// no state changed while the bot was stopped, so no sync brings it) is still
/// out of reach, while a spammer who floods is banned. With the kept state
/// damaged, the bot asks for every room's whole state instead, and knows the
/// same.
#[test]
fn a_restart_keeps_the_rooms_state_and_asks_only_for_what_changed() {
    let scene = Scene::new(Options::default());
    let helper = scene.synapse.register(&unique_name("helper"), "helper-password", false).unwrap();
    for room in [&scene.management, &scene.protected] {
        let path = format!("/_matrix/client/v3/rooms/{room}/invite");
        scene.synapse.call(&scene.moderator, "POST", &path, Some(&json!({"user_id": helper.user_id}))).unwrap();
        join(&scene.synapse, &helper, room);
    }
    let mut gleipnir = scene.start(
        &[],
        &[
            ("protections enable flooding", "flooding enabled"),
            ("protections config set flooding max-per-minute 3", "max-per-minute: 10 → 3"),
        ],
    );
    let kept = gleipnir.dir.join("data/room-state.log");
    for (round, damage) in [(0, false), (1, true)] {
        // A new spammer each round (flooding leaves one it acted on alone for a minute).
        let spammer = match round {
            0 => scene.spammer.clone(),
            _ => {
                let spammer = scene.synapse.register(&unique_name("spam"), "spam-password", false).unwrap();
                let path = format!("/_matrix/client/v3/rooms/{}/invite", scene.protected);
                scene
                    .synapse
                    .call(&scene.moderator, "POST", &path, Some(&json!({"user_id": spammer.user_id})))
                    .unwrap();
                join(&scene.synapse, &spammer, &scene.protected);
                spammer
            }
        };
        let _ = gleipnir.child.kill();
        let _ = gleipnir.child.wait();
        assert!(kept.exists(), "the rooms' state is kept in {}", kept.display());
        if damage {
            std::fs::write(&kept, "{\"j\": \"!cut short").unwrap();
        }
        // Sent while stopped: handled at start, each room as its state says.
        let send_5 = |who: &synapse_harness::Account, what: &str| {
            (0..5)
                .map(|i| send(&scene.synapse, who, &scene.protected, &format!("{what} {round}.{i}")))
                .collect::<Vec<_>>()
        };
        let helped = send_5(&helper, "helping");
        let spam = send_5(&spammer, "spam");
        gleipnir.restart();
        eventually("the spammer banned", Duration::from_secs(90), || {
            (membership(&scene.synapse, &scene.moderator, &scene.protected, &spammer.user_id).as_deref() == Some("ban"))
                .then_some(())
        });
        eventually("the flood redacted", Duration::from_secs(60), || {
            (redacted(&scene, &spam) == spam.len()).then_some(())
        });
        let helper_is = membership(&scene.synapse, &scene.moderator, &scene.protected, &helper.user_id);
        assert_eq!(helper_is.as_deref(), Some("join"), "a member of the management room was acted on");
        assert_eq!(redacted(&scene, &helped), 0);
        let log = std::fs::read_to_string(gleipnir.dir.join("gleipnir.log")).unwrap();
        let from_kept = log.matches("from room-state.log").count();
        assert_eq!(from_kept, 1, "the first restart took the kept state, the second could not: {log}");
    }
}

/// A first start acts on nothing from before it, but a command sent while it
/// loads (after the process started, before its first sync answered) is run
/// once it is ready, not dropped with the room's history.
#[test]
fn a_command_sent_while_a_first_start_loads_is_run_once_ready() {
    let mut scene = Scene::new(Options { persistent: true, ..Options::default() });
    send(&scene.synapse, &scene.moderator, &scene.management, "!gleipnir rooms");
    // The bot starts while the homeserver is down and waits for it; the
    // command is sent as soon as the homeserver is back, while the bot still
    // has to notice, log in and join before its first sync.
    scene.synapse.stop();
    let gleipnir = start_bot(&scene.synapse, &scene.bot, &scene.management);
    eventually("the bot waiting for the homeserver", Duration::from_secs(60), || {
        let log = std::fs::read_to_string(gleipnir.dir.join("gleipnir.log")).unwrap_or_default();
        log.contains("cannot reach the homeserver").then_some(())
    });
    scene.synapse.restart().unwrap();
    send(&scene.synapse, &scene.moderator, &scene.management, "!gleipnir status");
    let status = eventually("the status sent while the bot started", Duration::from_secs(60), || {
        scene.notices().into_iter().find(|n| n.contains("Protections:"))
    });
    assert!(status.contains("Protected rooms: 0"), "{status}");
    // The command from before the start was not run: a marker command
    // answered after it finds no answer to it.
    scene.command("status", "Protections:");
    let notices = scene.notices();
    assert!(!notices.iter().any(|n| n.contains("No protected rooms")), "{notices:?}");
}

/// A sync does not send a redacted state event again: a rule withdrawn by
/// redacting it stays withdrawn after a restart that takes the rooms' state
/// from `room-state.log`, where it was kept whole. The rules of a list with
/// no redaction come from there (read an event at a time).
#[test]
fn a_rule_withdrawn_by_redaction_stays_withdrawn_after_a_restart() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator) = (&scene.synapse, &scene.moderator);
    let list = create_room(synapse, moderator, &[&scene.bot], json!({}));
    let named = "@withdrawn:elsewhere.example";
    put_rule(synapse, moderator, &list, "user", "withdrawn", json!({"entity": named, "recommendation": "m.ban"}));
    let other = create_room(synapse, moderator, &[&scene.bot], json!({}));
    let kept = "@kept:elsewhere.example";
    for i in 0..3 {
        let rule = json!({"entity": format!("@kept{i}:elsewhere.example"), "recommendation": "m.ban"});
        put_rule(synapse, moderator, &other, "user", &format!("other{i}"), rule);
    }
    put_rule(synapse, moderator, &other, "user", "kept", json!({"entity": kept, "recommendation": "m.ban"}));
    let mut gleipnir = scene.start(&[], &[]);
    scene.command(&format!("watch {list}"), "Now watching");
    scene.command(&format!("watch {other}"), "Now watching");
    scene.command(&format!("rules matching {named}"), "1 rule(s) match");

    let state = synapse.call(moderator, "GET", &format!("/_matrix/client/v3/rooms/{list}/state"), None).unwrap();
    let rule = state.as_array().unwrap().iter().find(|e| e["state_key"] == "withdrawn").unwrap()["event_id"].clone();
    let redact = format!("/_matrix/client/v3/rooms/{list}/redact/{}/{}", rule.as_str().unwrap(), unique_name("x"));
    synapse.call(moderator, "PUT", &redact, Some(&json!({}))).unwrap();
    eventually("the redacted rule gone", Duration::from_secs(30), || {
        scene.command(&format!("rules matching {named}"), "match").contains("No rule matches").then_some(())
    });

    let started = |scene: &Scene| scene.notices().iter().filter(|n| n.contains("Gleipnir started")).count();
    let before = started(&scene);
    gleipnir.restart();
    eventually("the bot started again", Duration::from_secs(60), || (started(&scene) > before).then_some(()));
    let log = std::fs::read_to_string(gleipnir.dir.join("gleipnir.log")).unwrap();
    assert_eq!(log.matches("from room-state.log").count(), 1, "the restart took the kept state: {log}");
    scene.command(&format!("rules matching {named}"), "No rule matches");
    scene.command(&format!("rules matching {kept}"), "1 rule(s) match");
    scene.command("status", "2 (4 rules)");
}
