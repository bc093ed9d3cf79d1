//! Safe mode: problems at start, recovery, restart, losses at run time.

use std::time::Duration;

use serde_json::{Value, json};
use synapse_harness::Options;

use crate::common::*;

/// Stored state that cannot be read or used starts the bot in safe mode,
/// listing each problem with its options; recovering and `restart` bring it
/// back to normal, protecting the rooms that are fine.
#[test]
fn problems_at_start_give_safe_mode_and_recovery() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator, bot) = (&scene.synapse, &scene.moderator, &scene.bot);
    let powers = json!({ bot.user_id.clone(): 100 });
    // A private room the bot was kicked from, and a list it was banned from.
    let kicked = create_room(synapse, moderator, &[bot], powers.clone());
    join(synapse, bot, &kicked);
    let kick = json!({"user_id": bot.user_id, "reason": "test"});
    synapse.call(moderator, "POST", &format!("/_matrix/client/v3/rooms/{kicked}/kick"), Some(&kick)).unwrap();
    let list = create_room(synapse, moderator, &[bot], json!({}));
    join(synapse, bot, &list);
    synapse.call(moderator, "POST", &format!("/_matrix/client/v3/rooms/{list}/ban"), Some(&kick)).unwrap();
    let write = |key: &str, content: Value| {
        let path = format!("/_matrix/client/v3/user/{}/account_data/{key}", bot.user_id);
        synapse.call(bot, "PUT", &path, Some(&content)).unwrap();
    };
    let rooms = json!({"rooms": [scene.protected, 42, "#nowhere:localhost", kicked]});
    write("org.matrix.mjolnir.protected_rooms", rooms);
    write("org.matrix.mjolnir.watched_lists", json!({"references": [format!("https://matrix.to/#/{list}")]}));
    write("org.matrix.mjolnir.enabled_protections", json!({"enabled": "flooding"}));
    write("org.gleipnir.protection_settings", json!({"flooding": "fast"}));

    let _gleipnir = start_bot_with(synapse, bot, &scene.management, &[], |dir| {
        std::fs::write(dir.join("plugins/broken.wasm"), b"not a component").unwrap();
        // A sync token the homeserver will refuse.
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(dir.join("data/sync_token"), "garbage-token").unwrap();
    });
    eventually("the refused token reported", Duration::from_secs(60), || {
        scene.notices().into_iter().find(|n| n.starts_with("The stored sync token was refused"))
    });
    let report = eventually("the safe-mode report", Duration::from_secs(60), || {
        scene.notices().into_iter().find(|n| n.starts_with("Safe mode: 6 problem(s)"))
    });
    for expected in [
        "org.matrix.mjolnir.protected_rooms rooms[1] cannot be read: is a number, not a string",
        "org.matrix.mjolnir.protected_rooms rooms[2] cannot be used: `#nowhere:localhost`",
        &format!("org.matrix.mjolnir.protected_rooms rooms[3] cannot be used: `{kicked}`"),
        "org.matrix.mjolnir.watched_lists references[0] cannot be used",
        "org.matrix.mjolnir.enabled_protections enabled cannot be read: `enabled` is a string, not a list",
        "org.gleipnir.protection_settings flooding cannot be read: is a string, not an object",
    ] {
        assert!(report.contains(expected), "missing `{expected}` in:\n{report}");
    }
    // A plugin file that does not load and that nothing enabled needs is no safe-mode problem.
    assert!(!report.contains("broken.wasm"), "{report}");
    let status = scene.command("status", "SAFE MODE");
    assert!(status.contains("Plugin files that do not load: 1"), "{status}");
    scene.command(&format!("ban {} spam", scene.spammer.user_id), "Gleipnir is in safe mode");

    // Each recovery shows what it changes; one is confirmed with ✅.
    let first = option_number(&report, "remove org.matrix.mjolnir.protected_rooms rooms[1] (now 42)");
    let preview = scene.command(&format!("recover {first}"), "React with ✅");
    assert!(preview.contains("remove org.matrix.mjolnir.protected_rooms rooms[1] (now 42)"), "{preview}");
    let preview_id = notice_id(synapse, moderator, &scene.management, &bot.user_id, "React with ✅").unwrap();
    react(synapse, moderator, &scene.management, &preview_id, "✅");
    eventually("the first recovery", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains("org.matrix.mjolnir.protected_rooms is now"))
    });
    // A number reaction on the report previews that option.
    let report_id = notice_id(synapse, moderator, &scene.management, &bot.user_id, "Safe mode: 6 problem(s)").unwrap();
    let n = option_number(&report, "remove org.matrix.mjolnir.protected_rooms rooms[2]");
    let keycap = format!("{n}\u{fe0f}\u{20e3}");
    react(synapse, moderator, &scene.management, &report_id, &keycap);
    let expected = format!("`recover {n}` would carry out");
    eventually("the number reaction's preview", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|notice| notice.starts_with(&expected))
    });
    let preview_id = notice_id(synapse, moderator, &scene.management, &bot.user_id, &expected).unwrap();
    react(synapse, moderator, &scene.management, &preview_id, "✅");
    eventually("the alias removed", Duration::from_secs(30), || {
        let path = format!("/_matrix/client/v3/user/{}/account_data/org.matrix.mjolnir.protected_rooms", bot.user_id);
        let rooms = synapse.call(bot, "GET", &path, None).ok()?;
        (!rooms.to_string().contains("#nowhere")).then_some(())
    });
    for option in [
        "remove org.gleipnir.protection_settings flooding (now \"fast\")".to_owned(),
        format!("remove org.matrix.mjolnir.protected_rooms rooms[3] (now \"{kicked}\")"),
        "remove org.matrix.mjolnir.watched_lists references[0]".to_owned(),
        "reset org.matrix.mjolnir.enabled_protections".to_owned(),
    ] {
        let n = option_number(&report, &option);
        scene.command(&format!("recover {n} --no-confirm"), " is now ");
    }
    scene.command("restart", "Restarting");
    eventually("normal mode", Duration::from_secs(60), || {
        scene
            .notices()
            .into_iter()
            .find(|n| n.contains("Gleipnir started: protecting 1 room(s), 0 protection(s) enabled, 0 watched list(s)"))
    });
    let started = scene.notices().into_iter().find(|n| n.contains("Gleipnir started")).unwrap();
    assert!(started.contains("broken.wasm: the plugin does not load"), "{started}");
    let path = format!("/_matrix/client/v3/user/{}/account_data/org.matrix.mjolnir.protected_rooms", bot.user_id);
    assert_eq!(synapse.call(bot, "GET", &path, None).unwrap(), json!({"rooms": [scene.protected]}));

    // Normal mode protects again: flooding works once enabled.
    scene.command("protections enable flooding", "flooding enabled");
    // And safe mode on request, then back.
    scene.command("safe mode", "Entering safe mode");
    eventually("safe mode as asked", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.starts_with("Safe mode, as asked"))
    });
    scene.command("restart", "Restarting");
    eventually("normal mode again", Duration::from_secs(60), || {
        scene.notices().into_iter().find(|n| n.contains("protecting 1 room(s), 1 protection(s) enabled"))
    });

    // Kicked from a protected room while running: reported with options, the rest keeps going.
    let kick = json!({"user_id": bot.user_id, "reason": "test"});
    synapse
        .call(moderator, "POST", &format!("/_matrix/client/v3/rooms/{}/kick", scene.protected), Some(&kick))
        .unwrap();
    let loss = eventually("the loss reported", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains("cannot be used") && n.contains("I was removed"))
    });
    assert!(loss.contains("1. remove org.matrix.mjolnir.protected_rooms rooms[0]"), "{loss}");
    let status = scene.command("status", "Protected rooms: 0");
    assert!(!status.contains("SAFE MODE"), "{status}");
}

/// A protected-room list of the wrong type: with `on_problem = "exit"` the bot
/// stops and says why; by default it starts in safe mode, and resetting the
/// list to its default brings it back to normal.
#[test]
fn corrupt_state_exits_when_asked_else_safe_mode() {
    let scene = Scene::new(Options::default());
    let (synapse, bot) = (&scene.synapse, &scene.bot);
    let path = format!("/_matrix/client/v3/user/{}/account_data/org.matrix.mjolnir.protected_rooms", bot.user_id);
    synapse.call(bot, "PUT", &path, Some(&json!({"rooms": {"not": "a list"}}))).unwrap();

    let mut exiting = start_bot_with(synapse, bot, &scene.management, &[], |dir| {
        let mut config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
        config += "[startup]\non_problem = \"exit\"\n";
        std::fs::write(dir.join("config.toml"), config).unwrap();
    });
    let status = eventually("the bot to exit", Duration::from_secs(60), || exiting.child.try_wait().unwrap());
    assert!(!status.success());
    let log = std::fs::read_to_string(exiting.dir.join("gleipnir.log")).unwrap();
    assert!(
        log.contains("org.matrix.mjolnir.protected_rooms rooms cannot be read: `rooms` is an object, not a list"),
        "{log}"
    );
    drop(exiting);

    let _gleipnir = start_bot(synapse, bot, &scene.management);
    let report = eventually("the safe-mode report", Duration::from_secs(60), || {
        scene.notices().into_iter().find(|n| n.starts_with("Safe mode: 1 problem(s)"))
    });
    let n = option_number(
        &report,
        r#"reset org.matrix.mjolnir.protected_rooms to {"rooms":[]} (now {"rooms":{"not":"a list"}})"#,
    );
    scene.command(&format!("recover {n} --no-confirm"), "org.matrix.mjolnir.protected_rooms is now");
    scene.command("restart", "Restarting");
    eventually("normal mode", Duration::from_secs(60), || {
        scene.notices().into_iter().find(|n| n.contains("Gleipnir started: protecting 0 room(s)"))
    });
}

/// One broken plugin file does not unprotect every room: a file nothing
/// enabled needs is reported and everything else starts; the file of an
/// enabled protection that no longer loads is a safe-mode problem, with the
/// options to disable the protection or set the file aside.
#[test]
fn a_broken_plugin_file_is_a_problem_only_for_an_enabled_protection() {
    let scene = Scene::new(Options::default());
    let (synapse, bot) = (&scene.synapse, &scene.bot);
    let write = |key: &str, content: Value| {
        let path = format!("/_matrix/client/v3/user/{}/account_data/{key}", bot.user_id);
        synapse.call(bot, "PUT", &path, Some(&content)).unwrap();
    };
    write("org.matrix.mjolnir.protected_rooms", json!({"rooms": [scene.protected]}));
    write("org.matrix.mjolnir.enabled_protections", json!({"enabled": ["flooding"]}));
    let mut gleipnir = start_bot_with(synapse, bot, &scene.management, &[], |dir| {
        std::fs::write(dir.join("plugins/third-party.wasm"), b"a bad build").unwrap();
    });
    let started = eventually("a normal start", Duration::from_secs(60), || {
        scene
            .notices()
            .into_iter()
            .find(|n| n.contains("Gleipnir started: protecting 1 room(s), 1 protection(s) enabled"))
    });
    assert!(started.contains("Not loaded:") && started.contains("third-party.wasm"), "{started}");
    let plugins = scene.command("plugins", "third-party.wasm");
    assert!(plugins.contains("not a valid WebAssembly component"), "{plugins}");

    // Now the enabled protection's own file is broken.
    let _ = gleipnir.child.kill();
    let _ = gleipnir.child.wait();
    std::fs::write(gleipnir.dir.join("plugins/flooding.wasm"), b"truncated").unwrap();
    gleipnir.restart();
    let report = eventually("the safe-mode report", Duration::from_secs(60), || {
        scene.notices().into_iter().find(|n| n.starts_with("Safe mode: 1 problem(s)"))
    });
    assert!(report.contains("`flooding`") && report.contains("flooding.wasm"), "{report}");
    assert!(!report.contains("third-party"), "{report}");
    let aside = option_number(&report, "set the plugin file aside");
    scene.command(&format!("recover {aside} --no-confirm"), "is no longer loaded");
    assert!(gleipnir.dir.join("plugins/flooding.wasm.disabled").exists());
    let disable = option_number(&report, "remove org.matrix.mjolnir.enabled_protections enabled[0]");
    scene.command(&format!("recover {disable} --no-confirm"), " is now ");
    scene.command("restart", "Restarting");
    eventually("normal mode without flooding", Duration::from_secs(60), || {
        scene
            .notices()
            .into_iter()
            .find(|n| n.contains("Gleipnir started: protecting 1 room(s), 0 protection(s) enabled"))
    });
}

/// A bot account as Draupnir 3.x leaves it (CamelCase protection names, a
/// protection's settings as `org.matrix.mjolnir.setting` state in the
/// management room, a watched list as a permalink with `via`) starts
/// without safe mode: flooding runs at the imported limit, a protection
/// without a counterpart is kept and said, and the list applies.
#[test]
fn a_draupnir_account_starts_normally_with_its_protections_and_settings() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator, bot) = (&scene.synapse, &scene.moderator, &scene.bot);
    let list = create_room(synapse, moderator, &[bot], serde_json::json!({}));
    let account = |key: &str, content: serde_json::Value| {
        let path = format!("/_matrix/client/v3/user/{}/account_data/{key}", bot.user_id);
        synapse.call(bot, "PUT", &path, Some(&content)).unwrap();
    };
    account(
        "org.matrix.mjolnir.enabled_protections",
        serde_json::json!({"enabled": ["BasicFloodingProtection", "MentionLimitProtection", "RedactionSynchronisationProtection"]}),
    );
    account("org.matrix.mjolnir.protected_rooms", serde_json::json!({"rooms": [scene.protected]}));
    let permalink = format!("https://matrix.to/#/{list}?via=localhost");
    account("org.matrix.mjolnir.watched_lists", serde_json::json!({"references": [permalink]}));
    let setting = format!(
        "/_matrix/client/v3/rooms/{}/state/org.matrix.mjolnir.setting/BasicFloodingProtection",
        scene.management
    );
    synapse.call(moderator, "PUT", &setting, Some(&serde_json::json!({"maxPerMinute": 3}))).unwrap();

    let _gleipnir = start_bot(synapse, bot, &scene.management);
    let started = eventually("the start notice", Duration::from_secs(60), || {
        scene.notices().into_iter().find(|n| n.contains("Gleipnir started"))
    });
    assert!(started.contains("protecting 1 room(s), 2 protection(s) enabled, 1 watched list(s)"), "{started}");
    let notices = scene.notices();
    assert!(!notices.iter().any(|n| n.contains("SAFE MODE") || n.contains("safe mode")), "{notices:?}");
    assert!(notices.iter().any(|n| n.contains("BasicFloodingProtection runs as flooding")), "{notices:?}");
    assert!(
        notices.iter().any(|n| n.contains("MentionLimitProtection runs as mention-limit")
            && n.contains("not run here, kept in the account data: RedactionSynchronisationProtection")),
        "{notices:?}"
    );
    assert!(notices.iter().any(|n| n.contains("flooding.max-per-minute = 3")), "{notices:?}");
    scene.command("protections show flooding", "max-per-minute = 3");

    // Sent until the flooder is stopped (the ban goes before the clean-up).
    let ids: Vec<String> =
        (0..5).map_while(|i| try_send(synapse, &scene.spammer, &scene.protected, &format!("flood {i}")).ok()).collect();
    assert!(ids.len() >= 4, "{ids:?}");
    eventually("the flooder banned at the imported limit", Duration::from_secs(30), || {
        (membership(synapse, moderator, &scene.protected, &scene.spammer.user_id).as_deref() == Some("ban"))
            .then_some(())
    });
    eventually("the flood redacted", Duration::from_secs(30), || {
        is_redacted(synapse, moderator, &scene.protected, &ids[3]).then_some(())
    });
    // Gleipnir saves the list in its own names and keeps Draupnir's others.
    scene.command("protections enable newcomer-watch-words", "newcomer-watch-words enabled");
    let path = format!("/_matrix/client/v3/user/{}/account_data/org.matrix.mjolnir.enabled_protections", bot.user_id);
    let enabled = synapse.call(moderator, "GET", &path, None);
    // Only the bot may read its own account data: ask as the bot.
    let enabled = enabled.or_else(|_| synapse.call(bot, "GET", &path, None)).unwrap();
    let names: Vec<&str> = enabled["enabled"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert!(
        names.contains(&"flooding")
            && names.contains(&"mention-limit")
            && names.contains(&"RedactionSynchronisationProtection"),
        "{enabled}"
    );
}
