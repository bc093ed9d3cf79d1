//! Management-room commands that act: redact, previews and confirmations, invites.

use std::time::Duration;

use serde_json::json;
use synapse_harness::{Options, unique_name};

use crate::common::*;

/// `redact USER` previews a large redaction and carries it out on ✅;
/// `redact PERMALINK` removes one event at once; invites are accepted from
/// management-room members only.
#[test]
fn redact_with_preview_and_confirmation_and_invites() {
    let scene = Scene::new(Options::default());
    let _gleipnir = scene.start(&[], &[]);
    let (synapse, moderator, bot) = (&scene.synapse, &scene.moderator, &scene.bot.user_id);

    let spam: Vec<String> =
        (0..8).map(|i| send(synapse, &scene.spammer, &scene.protected, &format!("spam {i}"))).collect();
    let fine = send(synapse, moderator, &scene.protected, "a moderator's message");
    let preview = scene.command(&format!("redact {}", scene.spammer.user_id), "would carry out 8 operation(s)");
    assert!(preview.contains("React with ✅"), "{preview}");
    let preview_id = notice_id(synapse, moderator, &scene.management, bot, "would carry out 8").unwrap();

    // A member of the management room below `commands.min_power_level` (50)
    // may neither command nor confirm: told once why.
    let watcher = synapse.register(&unique_name("watcher"), "watcher-password", false).unwrap();
    let invite = json!({"user_id": watcher.user_id});
    synapse
        .call(moderator, "POST", &format!("/_matrix/client/v3/rooms/{}/invite", scene.management), Some(&invite))
        .unwrap();
    join(synapse, &watcher, &scene.management);
    react(synapse, &watcher, &scene.management, &preview_id, "✅");
    send(synapse, &watcher, &scene.management, &format!("!gleipnir rooms remove {}", scene.protected));
    let refusal = eventually("the watcher told why", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.starts_with("Only members with power level 50 or more"))
    });
    assert!(refusal.contains("(you have 0)"), "{refusal}");
    // A marker: the moderator's command is answered after the watcher's were seen.
    scene.command("rooms", "Protected rooms (1)");
    assert!(spam.iter().all(|id| !is_redacted(synapse, moderator, &scene.protected, id)), "the watcher's ✅ confirmed");
    let told = scene.notices().iter().filter(|n| n.starts_with("Only members with power level")).count();
    assert_eq!(told, 1, "said once, not per command or reaction");

    react(synapse, moderator, &scene.management, &preview_id, "✅");
    eventually("the redaction result", Duration::from_secs(60), || {
        scene.notices().into_iter().find(|n| n.contains("8 of 8 operation(s) done in 1 room(s)"))
    });
    assert!(spam.iter().all(|id| is_redacted(synapse, moderator, &scene.protected, id)));
    assert!(!is_redacted(synapse, moderator, &scene.protected, &fine));

    // One event by permalink: no preview needed.
    let link = format!("https://matrix.to/#/{}/{}?via=localhost", scene.protected, fine);
    scene.command(&format!("redact {link}"), "1 of 1 operation(s) done");
    assert!(is_redacted(synapse, moderator, &scene.protected, &fine));

    // Invites: a stranger's is ignored, a moderator's accepted.
    let strangers = create_room(synapse, &scene.spammer, &[&scene.bot], json!({}));
    let moderators = create_room(synapse, moderator, &[&scene.bot], json!({}));
    eventually("the bot to join on the moderator's invite", Duration::from_secs(30), || {
        (membership(synapse, moderator, &moderators, bot).as_deref() == Some("join")).then_some(())
    });
    assert_eq!(membership(synapse, &scene.spammer, &strangers, bot).as_deref(), Some("invite"));
}

/// The management room is pinned by id: an alias moved to another room is
/// reported, not followed. A management room anyone can join is refused.
#[test]
fn the_management_room_is_pinned_and_must_not_be_open() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator, bot) = (&scene.synapse, &scene.moderator, &scene.bot);
    let localpart = unique_name("mgmt");
    let alias = format!("#{localpart}:{}", synapse.server_name());
    let directory = format!("/_matrix/client/v3/directory/room/{}", alias.replace('#', "%23"));
    synapse.call(moderator, "PUT", &directory, Some(&json!({"room_id": scene.management}))).unwrap();
    let mut gleipnir = start_bot_with(synapse, bot, &alias, &[], |_| {});
    eventually("the bot's start notice", Duration::from_secs(60), || {
        scene.notices().into_iter().find(|n| n.contains("Gleipnir started"))
    });

    // Someone who can edit the directory points the alias at a room of theirs.
    let _ = gleipnir.child.kill();
    let _ = gleipnir.child.wait();
    let other = create_room(synapse, moderator, &[bot], json!({ bot.user_id.clone(): 100 }));
    synapse.call(moderator, "DELETE", &directory, None).unwrap();
    synapse.call(moderator, "PUT", &directory, Some(&json!({"room_id": other}))).unwrap();
    gleipnir.restart();
    let warning = eventually("the moved alias reported in the pinned room", Duration::from_secs(60), || {
        scene.notices().into_iter().find(|n| n.contains("now points to"))
    });
    assert!(warning.contains(&other) && warning.contains("not followed"), "{warning}");
    scene.command("status", "Protections:");
    assert!(notices(synapse, moderator, &other, &bot.user_id).is_empty(), "the bot followed the alias");

    // A management room anyone can join: refused at start, with why.
    let _ = gleipnir.child.kill();
    let _ = gleipnir.child.wait();
    let path = format!("/_matrix/client/v3/rooms/{}/state/m.room.join_rules/", scene.management);
    synapse.call(moderator, "PUT", &path, Some(&json!({"join_rule": "public"}))).unwrap();
    gleipnir.restart();
    let status =
        eventually("the bot to refuse and exit", Duration::from_secs(60), || gleipnir.child.try_wait().unwrap());
    assert!(!status.success());
    let log = std::fs::read_to_string(gleipnir.dir.join("gleipnir.log")).unwrap();
    assert!(log.contains("has the join rule `public`, so anyone could join it"), "{log}");
}

/// The short form: `!COMMAND` works for Gleipnir's commands and its
/// protections' own; another bot's `!word` gets no answer, while
/// `!gleipnir word` still gets the closest match.
#[test]
fn the_short_form_answers_our_commands_and_leaves_other_words_alone() {
    let scene = Scene::new(Options::default());
    let _gleipnir = scene.start(&[], &[]);
    let (synapse, moderator, management) = (&scene.synapse, &scene.moderator, &scene.management);
    let before = scene.notices().len();
    send(synapse, moderator, management, "!weather London");
    send(synapse, moderator, management, "!protections enable flooding");
    send(synapse, moderator, management, "!witness say short and sweet");
    send(synapse, moderator, management, "!protections enable witness");
    send(synapse, moderator, management, "!witness say short and sweet");
    let replies = eventually("replies to the short commands", Duration::from_secs(30), || {
        let all = scene.notices();
        let new: Vec<String> = all[..all.len() - before].to_vec();
        new.iter().any(|n| n.contains("witness says: short and sweet")).then_some(new)
    });
    assert!(replies.iter().any(|n| n.contains("flooding enabled")), "{replies:?}");
    assert!(replies.iter().any(|n| n.contains("witness is not enabled")), "{replies:?}");
    assert!(!replies.iter().any(|n| n.contains("weather")), "another bot's command was answered: {replies:?}");
    scene.command("weather London", "unknown command `weather`");
}

/// `rooms add` names the room by its name, says when it is encrypted (what
/// protections then cannot see), and what the bot's power level there does
/// not let it do, at once rather than at the first failed action.
#[test]
fn a_room_added_is_named_and_what_the_bot_cannot_do_there_is_said() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator) = (&scene.synapse, &scene.moderator);
    let _gleipnir = scene.start(&[], &[]);
    let body = json!({
        "preset": "private_chat", "name": "Quiet Lobby", "invite": [scene.bot.user_id],
        "initial_state": [{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}],
    });
    let reply = synapse.call(moderator, "POST", "/_matrix/client/v3/createRoom", Some(&body)).unwrap();
    let room = reply["room_id"].as_str().unwrap().to_owned();
    let added = scene.command(&format!("rooms add {room}"), "Now protecting");
    assert!(added.starts_with(&format!("Now protecting Quiet Lobby ({room}).")), "{added}");
    assert!(added.contains("It is encrypted"), "{added}");
    assert!(added.contains("With my power level here (0) I cannot: ban (needs 50), kick (needs 50)"), "{added}");
}

/// `kick --glob`: every joined member the glob matches is kicked; the bot,
/// moderators and management-room members never are, and `rules matching
/// members` answers from the protected rooms' members.
#[test]
fn kick_by_glob_kicks_the_matching_members_only() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator, room) = (&scene.synapse, &scene.moderator, &scene.protected);
    let globbies: Vec<_> = (0..2)
        .map(|i| synapse.register(&unique_name(&format!("globby{i}")), "globby-password", false).unwrap())
        .collect();
    let invite = format!("/_matrix/client/v3/rooms/{room}/invite");
    for g in &globbies {
        synapse.call(moderator, "POST", &invite, Some(&json!({"user_id": g.user_id}))).unwrap();
        join(synapse, g, room);
    }
    let _gleipnir = scene.start(&[], &[]);
    scene.command("rules matching members", "No rule matches any of the");
    scene.command("kick --glob @globby*:localhost raid", "2 of 2 operation(s) done");
    for g in &globbies {
        assert_eq!(membership(synapse, moderator, room, &g.user_id).as_deref(), Some("leave"), "{}", g.user_id);
    }
    assert_eq!(membership(synapse, moderator, room, &scene.spammer.user_id).as_deref(), Some("join"));
    scene.command("kick --glob @mod*:localhost", "No member of the protected rooms matches");
}

/// A protected room upgraded by its moderators: once the bot may join the
/// replacement (here after an invite), it protects it and stops protecting
/// the old room, with no command.
#[test]
fn an_upgraded_room_is_followed_to_its_replacement() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator) = (&scene.synapse, &scene.moderator);
    let _gleipnir = scene.start(&[], &[]);
    let path = format!("/_matrix/client/v3/rooms/{}/upgrade", scene.protected);
    let reply = synapse.call(moderator, "POST", &path, Some(&json!({"new_version": "12"}))).unwrap();
    let new = reply["replacement_room"].as_str().unwrap().to_owned();
    let invite = format!("/_matrix/client/v3/rooms/{new}/invite");
    synapse.call(moderator, "POST", &invite, Some(&json!({"user_id": scene.bot.user_id}))).unwrap();
    eventually("the upgrade followed", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains("was upgraded: Now protecting"))
    });
    let rooms = scene.command("rooms", "Protected rooms");
    assert!(rooms.contains(&new) && !rooms.contains(&scene.protected), "{rooms}");
}

/// Rooms without manual steps: an invite from a moderator is answered with
/// "protect this room?" and a ✅ protects it; with `[rooms]
/// protect_all_joined` the room is protected at once, and a room the bot is
/// removed from simply stops being protected.
#[test]
fn rooms_are_protected_from_an_invite_on_a_check_mark_or_at_once() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator, bot) = (&scene.synapse, &scene.moderator, scene.bot.user_id.as_str());
    let _gleipnir = scene.start(&[], &[]);
    let room = create_room(synapse, moderator, &[&scene.bot], json!({ bot: 100 }));
    let offer = eventually("protect this room?", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains(&format!("protect {room} (invited by {})", moderator.user_id)))
    });
    assert!(offer.contains("React with ✅"), "{offer}");
    let preview = notice_id(synapse, moderator, &scene.management, bot, &format!("protect {room}")).unwrap();
    react(synapse, moderator, &scene.management, &preview, "✅");
    eventually("the room protected", Duration::from_secs(30), || {
        scene.command("rooms", "Protected rooms").contains(&room).then_some(())
    });
}

#[test]
fn with_protect_all_joined_every_room_the_bot_is_in_is_protected() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator, bot) = (&scene.synapse, &scene.moderator, scene.bot.user_id.as_str());
    let all = |dir: &std::path::Path| {
        let path = dir.join("config.toml");
        let config = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{config}[rooms]\nprotect_all_joined = true\n")).unwrap();
    };
    let _gleipnir = scene.start_with(all, &[]);
    let room = create_room(synapse, moderator, &[&scene.bot], json!({ bot: 100 }));
    eventually("the room protected at once", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains(&format!("Invited by {}: Now protecting", moderator.user_id)))
    });
    let kick = format!("/_matrix/client/v3/rooms/{room}/kick");
    synapse.call(moderator, "POST", &kick, Some(&json!({"user_id": bot, "reason": "not needed here"}))).unwrap();
    eventually("protection ended without a problem", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.starts_with(&format!("No longer protecting {room}")))
    });
    let status = scene.command("status", "Protected rooms");
    assert!(!status.contains("SAFE MODE") && status.contains("Protected rooms: 1"), "{status}");
}

/// The audit trail after a flood and a moderator's kick: `audit` answers in
/// the management room and `gleipnir audit` on the command line, each act
/// with the origin that decided it.
#[test]
fn the_audit_trail_answers_in_the_room_and_on_the_command_line() {
    let scene = Scene::new(Options::default());
    let gleipnir = scene.start(
        &[],
        &[
            ("protections enable flooding", "flooding enabled"),
            ("protections config set flooding max-per-minute 3", "max-per-minute"),
        ],
    );
    let (synapse, moderator, room) = (&scene.synapse, &scene.moderator, &scene.protected);
    let chatter = synapse.register(&unique_name("chat"), "chat-password", false).unwrap();
    let invite = format!("/_matrix/client/v3/rooms/{room}/invite");
    synapse.call(moderator, "POST", &invite, Some(&json!({"user_id": chatter.user_id}))).unwrap();
    join(synapse, &chatter, room);
    for i in 0..4 {
        send(synapse, &scene.spammer, room, &format!("flood {i}"));
    }
    eventually("the flooder banned", Duration::from_secs(30), || {
        (membership(synapse, moderator, room, &scene.spammer.user_id).as_deref() == Some("ban")).then_some(())
    });
    scene.command(&format!("kick {} {room} be nice", chatter.user_id), "kick");
    eventually("the kick", Duration::from_secs(30), || {
        (membership(synapse, moderator, room, &chatter.user_id).as_deref() == Some("leave")).then_some(())
    });

    let spam = &scene.spammer.user_id;
    let said = scene.command(&format!("audit {spam}"), "Audit trail about");
    assert!(said.contains(&format!("flooding: ban {spam} in {room} “flooding” → done")), "{said}");
    assert!(said.contains(&format!("(sent by {spam}) in {room}")), "its messages too: {said}");
    let kicked = scene.command(&format!("audit {} --limit 5", chatter.user_id), "Audit trail about");
    assert!(
        kicked.contains(&format!(
            "{} (`kick {} {room} be nice`): kick {}",
            moderator.user_id, chatter.user_id, chatter.user_id
        )),
        "a moderator's act names the moderator and the command: {kicked}"
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gleipnir"))
        .args(["audit", "--config"])
        .arg(gleipnir.dir.join("config.toml"))
        .args(["--user", spam, "--since", "1h", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let ban = lines.iter().find(|e| e["action"] == "ban").expect("the ban in the trail");
    assert_eq!(
        (ban["origin"].as_str(), ban["by"].as_str(), ban["outcome"].as_str()),
        (Some("protection"), Some("flooding"), Some("done"))
    );
    assert_eq!(ban["room"].as_str(), Some(room.as_str()));
    let redactions = lines.iter().filter(|e| e["action"] == "redact" && e["sender"] == spam.as_str()).count();
    assert!(redactions >= 3, "the flood's redactions, by sender: {lines:?}");
}
