//! The protection catalogue against Synapse: each protection as a moderator
//! would enable and meet it.

use std::time::Duration;

use serde_json::json;
use synapse_harness::{Account, Options, Synapse, unique_name};

use crate::common::*;

/// Sends a message mentioning `n` users (in `m.mentions`, as clients do).
fn mention(synapse: &Synapse, who: &Account, room: &str, n: usize) -> String {
    let users: Vec<String> = (0..n).map(|i| format!("@someone{i}:localhost")).collect();
    let body = json!({"msgtype": "m.text", "body": "look at this everyone", "m.mentions": {"user_ids": users}});
    let path = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{}", unique_name("t"));
    synapse.call(who, "PUT", &path, Some(&body)).unwrap()["event_id"].as_str().unwrap().to_owned()
}

/// mention-limit: a message mentioning four users is redacted and its
/// sender warned in the room; a second one bans them; three mentions pass.
#[test]
fn mention_limit_warns_then_bans() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator, room) = (&scene.synapse, &scene.moderator, &scene.protected);
    let _gleipnir = scene.start(&[], &[("protections enable mention-limit", "mention-limit enabled")]);
    let fine = mention(synapse, &scene.spammer, room, 3);
    let first = mention(synapse, &scene.spammer, room, 4);
    eventually("the first redacted", Duration::from_secs(30), || {
        is_redacted(synapse, moderator, room, &first).then_some(())
    });
    let warned = notices(synapse, moderator, room, &scene.bot.user_id);
    assert!(
        warned.iter().any(|n| n.starts_with(&format!("{}: you have mentioned too many users", scene.spammer.user_id))),
        "{warned:?}"
    );
    assert_eq!(
        membership(synapse, moderator, room, &scene.spammer.user_id).as_deref(),
        Some("join"),
        "one slip is a warning"
    );
    let second = mention(synapse, &scene.spammer, room, 5);
    eventually("the sender banned", Duration::from_secs(30), || {
        (membership(synapse, moderator, room, &scene.spammer.user_id).as_deref() == Some("ban")).then_some(())
    });
    eventually("the second redacted", Duration::from_secs(30), || {
        is_redacted(synapse, moderator, room, &second).then_some(())
    });
    assert!(!is_redacted(synapse, moderator, room, &fine), "three mentions are allowed");
    eventually("the management room told", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains("a second time within 30 minutes: banned them"))
    });
}

fn join_rule(synapse: &Synapse, reader: &Account, room: &str) -> String {
    let path = format!("/_matrix/client/v3/rooms/{room}/state/m.room.join_rules/");
    synapse.call(reader, "GET", &path, None).unwrap()["join_rule"].as_str().unwrap_or_default().to_owned()
}

/// join-wave: four joins over a limit of three close a public room to
/// invite, so a fifth cannot join; once calm (two seconds, then the next
/// tick) it is public again and the fifth joins.
#[test]
fn join_wave_closes_the_room_and_reopens_it_once_calm() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator, room) = (&scene.synapse, &scene.moderator, &scene.protected);
    let body = json!({"join_rule": "public"});
    synapse
        .call(moderator, "PUT", &format!("/_matrix/client/v3/rooms/{room}/state/m.room.join_rules/"), Some(&body))
        .unwrap();
    let _gleipnir = scene.start(
        &[],
        &[
            ("protections enable join-wave", "join-wave enabled"),
            ("protections config set join-wave max-per 3", "max-per"),
            ("protections config set join-wave calm-period 2s", "calm-period"),
        ],
    );
    let raiders: Vec<Account> =
        (0..5).map(|i| synapse.register(&unique_name(&format!("raider{i}")), "pw", false).unwrap()).collect();
    for raider in &raiders[..4] {
        join(synapse, raider, room);
    }
    eventually("the room closed", Duration::from_secs(30), || {
        (join_rule(synapse, moderator, room) == "invite").then_some(())
    });
    let told = eventually("the management room told", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains("Join wave in"))
    });
    assert!(told.contains("4 joins within 1 hour (limit 3)"), "{told}");
    let refused = synapse.call(&raiders[4], "POST", &format!("/_matrix/client/v3/join/{room}"), Some(&json!({})));
    assert!(refused.is_err(), "a closed room cannot be joined: {refused:?}");
    let status = scene.command("join-wave status", "closed");
    assert!(status.contains(&format!("{room}: closed")), "{status}");
    eventually("the room reopened", Duration::from_secs(30), || {
        (join_rule(synapse, moderator, room) == "public").then_some(())
    });
    join(synapse, &raiders[4], room);
    let reopened = eventually("the reopening told", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains("Reopened"))
    });
    assert!(
        reopened.contains("put back its join rule (public)"),
        "the rule it had, learned from the bot's change: {reopened}"
    );
}

/// trusted-reporters: two trusted members report a spammer's message with
/// their clients; at the thresholds (two) the message is redacted and the
/// spammer banned. A report from someone not trusted counts for nothing.
#[test]
fn trusted_reporters_redact_and_ban_on_enough_reports() {
    let scene = Scene::with_admin_bot(Options::default());
    let (synapse, moderator, room) = (&scene.synapse, &scene.moderator, &scene.protected);
    let members: Vec<Account> =
        (0..3).map(|i| synapse.register(&unique_name(&format!("member{i}")), "pw", false).unwrap()).collect();
    for member in &members {
        let invite = format!("/_matrix/client/v3/rooms/{room}/invite");
        synapse.call(moderator, "POST", &invite, Some(&json!({"user_id": member.user_id}))).unwrap();
        join(synapse, member, room);
    }
    let poll_reports = |dir: &std::path::Path| {
        let path = dir.join("config.toml");
        let config = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{config}[reports]\npoll = true\nevery = \"1s\"\n")).unwrap();
    };
    let trusted =
        format!("protections config set trusted-reporters mxids {}, {}", members[0].user_id, members[1].user_id);
    let _gleipnir = scene.start_with(
        poll_reports,
        &[
            ("protections enable trusted-reporters", "trusted-reporters enabled"),
            (trusted.as_str(), "mxids"),
            ("protections config set trusted-reporters redact-threshold 2", "redact-threshold"),
            ("protections config set trusted-reporters ban-threshold 2", "ban-threshold"),
        ],
    );
    let bad = send(synapse, &scene.spammer, room, "join my scam server");
    let file = |member: &Account| {
        let path = format!("/_matrix/client/v3/rooms/{room}/report/{bad}");
        synapse.call(member, "POST", &path, Some(&json!({"reason": "scam"}))).unwrap();
    };
    file(&members[2]);
    file(&members[0]);
    eventually("the first report posted", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains(&format!("by {} in", members[0].user_id)))
    });
    assert_eq!(
        membership(synapse, moderator, room, &scene.spammer.user_id).as_deref(),
        Some("join"),
        "one trusted report"
    );
    file(&members[1]);
    eventually("the spammer banned", Duration::from_secs(30), || {
        (membership(synapse, moderator, room, &scene.spammer.user_id).as_deref() == Some("ban")).then_some(())
    });
    eventually("the message redacted", Duration::from_secs(30), || {
        is_redacted(synapse, moderator, room, &bad).then_some(())
    });
    let told = eventually("the management room told", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains("2 trusted members reported"))
    });
    assert!(told.contains("redacted it"), "{told}");
}

/// new-joiner-servers with `younger-than`: the bot is a server admin, so
/// Synapse tells it when its accounts were made. An account made moments
/// ago is banned as it joins; one older than the setting joins and stays.
#[test]
fn new_joiner_servers_bans_accounts_younger_than_the_setting() {
    let scene = Scene::with_admin_bot(Options::default());
    let (synapse, moderator, room) = (&scene.synapse, &scene.moderator, &scene.protected);
    let started = std::time::Instant::now();
    let elder = synapse.register(&unique_name("elder"), "pw", false).unwrap();
    let _gleipnir = scene.start(
        &[],
        &[
            ("protections enable new-joiner-servers", "new-joiner-servers enabled"),
            ("protections config set new-joiner-servers younger-than 5s", "younger-than"),
        ],
    );
    // Synapse keeps creation times in whole seconds: the elder is well past 5 s.
    std::thread::sleep(Duration::from_secs(8).saturating_sub(started.elapsed()));
    let newcomer = synapse.register(&unique_name("newcomer"), "pw", false).unwrap();
    for account in [&elder, &newcomer] {
        let invite = format!("/_matrix/client/v3/rooms/{room}/invite");
        synapse.call(moderator, "POST", &invite, Some(&json!({"user_id": account.user_id}))).unwrap();
        join(synapse, account, room);
    }
    eventually("the newcomer banned", Duration::from_secs(30), || {
        (membership(synapse, moderator, room, &newcomer.user_id).as_deref() == Some("ban")).then_some(())
    });
    let told = eventually("the management room told", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains(&format!("{} joined", newcomer.user_id)))
    });
    assert!(told.contains("with an account made") && told.contains("(younger than 5 seconds)"), "{told}");
    assert_eq!(membership(synapse, moderator, room, &elder.user_id).as_deref(), Some("join"), "old enough");
    assert!(
        !scene.notices().iter().any(|n| n.contains("cannot tell how old accounts are")),
        "a server admin bot can tell"
    );
}
