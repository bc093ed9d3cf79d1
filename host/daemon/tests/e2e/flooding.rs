//! Flooding in real rooms, and a management room the bot cannot read.

use std::time::Duration;

use serde_json::json;
use synapse_harness::{Options, Synapse, unique_name};

use crate::common::*;

/// A flood in a protected room is redacted and banned; a moderator's flood is
/// not; settings change without a restart; commands outside the management
/// room are ignored. Room versions 12 (default) and 11.
#[test]
fn flood_protection_end_to_end() {
    for version in [None, Some("11")] {
        let synapse = Synapse::start(Options { room_version: version.map(str::to_owned), ..Options::default() })
            .unwrap_or_else(|e| panic!("{e}"));
        let bot = synapse.register(&unique_name("bot"), "bot-password", false).unwrap();
        let moderator = synapse.register(&unique_name("mod"), "mod-password", false).unwrap();
        let spammer = synapse.register(&unique_name("spam"), "spam-password", false).unwrap();
        let chatter = synapse.register(&unique_name("chat"), "chat-password", false).unwrap();

        // In room version 12 the creator (the moderator) outranks every level
        // and must not be listed; before 12 an override must list them.
        let powers = match version {
            None => json!({ bot.user_id.clone(): 100 }),
            Some(_) => json!({ bot.user_id.clone(): 100, moderator.user_id.clone(): 100 }),
        };
        let management = create_room(&synapse, &moderator, &[&bot], powers.clone());
        let protected = create_room(&synapse, &moderator, &[&bot, &spammer, &chatter], powers);
        join(&synapse, &spammer, &protected);
        join(&synapse, &chatter, &protected);

        let _gleipnir = start_bot(&synapse, &bot, &management);
        eventually("the bot's start notice", Duration::from_secs(60), || {
            notices(&synapse, &moderator, &management, &bot.user_id)
                .iter()
                .find(|n| n.contains("Gleipnir started"))
                .cloned()
        });

        command(&synapse, &moderator, &management, &bot.user_id, &format!("rooms add {protected}"), "Now protecting");
        command(&synapse, &moderator, &management, &bot.user_id, "protections enable flooding", "flooding enabled");
        command(
            &synapse,
            &moderator,
            &management,
            &bot.user_id,
            "protections config set flooding max-per-minute 3",
            "max-per-minute: 10 → 3",
        );
        command(
            &synapse,
            &moderator,
            &management,
            &bot.user_id,
            "protections cofnig",
            "did you mean `protections config`",
        );

        // A command in the protected room is not a command.
        send(&synapse, &chatter, &protected, "!gleipnir protections disable flooding");

        // The moderator floods: nothing happens to them.
        for i in 0..5 {
            send(&synapse, &moderator, &protected, &format!("announcement {i}"));
        }
        // The chatter chats within the limit (the ignored command above counts: 3 in all).
        for i in 0..2 {
            send(&synapse, &chatter, &protected, &format!("hello {i}"));
        }
        // The spammer floods.
        // Sent until the spammer is stopped: the ban goes before the clean-up.
        let spam: Vec<String> =
            (0..6).map_while(|i| try_send(&synapse, &spammer, &protected, &format!("BUY NOW {i}")).ok()).collect();
        assert!(spam.len() >= 4, "{spam:?}");

        eventually("the spammer banned", Duration::from_secs(30), || {
            (membership(&synapse, &moderator, &protected, &spammer.user_id).as_deref() == Some("ban")).then_some(())
        });
        eventually("the spam redacted", Duration::from_secs(30), || {
            spam.iter().all(|id| is_redacted(&synapse, &moderator, &protected, id)).then_some(())
        });
        // The attacker was stopped first: in the room's order, the ban comes
        // before every one of the bot's redactions.
        let path = format!("/_matrix/client/v3/rooms/{protected}/messages?dir=f&limit=500");
        let events = synapse.call(&moderator, "GET", &path, None).unwrap()["chunk"].as_array().unwrap().clone();
        let ban = events
            .iter()
            .position(|e| {
                e["type"] == "m.room.member"
                    && e["state_key"] == spammer.user_id.as_str()
                    && e["content"]["membership"] == "ban"
            })
            .expect("the ban in the room's timeline");
        let redactions: Vec<usize> = (events.iter().enumerate())
            .filter(|(_, e)| e["type"] == "m.room.redaction" && e["sender"] == bot.user_id.as_str())
            .map(|(at, _)| at)
            .collect();
        assert_eq!(redactions.len(), spam.len(), "one redaction for each message of the flood");
        assert!(redactions.iter().all(|&at| at > ban), "the ban at {ban}, redactions at {redactions:?}");
        assert_eq!(membership(&synapse, &moderator, &protected, &moderator.user_id).as_deref(), Some("join"));
        assert_eq!(membership(&synapse, &moderator, &protected, &chatter.user_id).as_deref(), Some("join"));
        // The command sent in the protected room did nothing: flooding is still enabled.
        command(&synapse, &moderator, &management, &bot.user_id, "protections", "flooding 1.0.0 (enabled)");
    }
}

/// An encrypted management room is refused with a clear message, not used half-blind.
#[test]
fn an_encrypted_management_room_is_refused_clearly() {
    let synapse = Synapse::start(Options::default()).unwrap_or_else(|e| panic!("{e}"));
    let bot = synapse.register(&unique_name("bot"), "bot-password", false).unwrap();
    let moderator = synapse.register(&unique_name("mod"), "mod-password", false).unwrap();
    let body = json!({
        "preset": "private_chat",
        "invite": [bot.user_id],
        "initial_state": [{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}],
    });
    let management = synapse.call(&moderator, "POST", "/_matrix/client/v3/createRoom", Some(&body)).unwrap();
    let management = management["room_id"].as_str().unwrap().to_owned();
    let mut gleipnir = start_bot(&synapse, &bot, &management);
    let status = eventually("gleipnir to exit", Duration::from_secs(60), || gleipnir.child.try_wait().unwrap());
    assert!(!status.success());
    let log = std::fs::read_to_string(gleipnir.dir.join("gleipnir.log")).unwrap();
    assert!(log.contains("is encrypted; Gleipnir does not support end-to-end encryption yet"), "{log}");
}

/// Flooding swapped mid-burst for a newer build of itself (`plugins reload`
/// compiles the file again and swaps it in between two events) still bans
/// the burst: 4 messages before the swap and 3 after, limit 5.
#[test]
fn a_swap_mid_burst_still_bans_the_burst() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator, spammer) = (&scene.synapse, &scene.moderator, &scene.spammer);
    let _gleipnir = scene.start(
        &[],
        &[
            ("protections enable flooding", "flooding enabled"),
            ("protections config set flooding max-per-minute 5", "flooding.max-per-minute"),
        ],
    );
    for i in 0..4 {
        send(synapse, spammer, &scene.protected, &format!("before the swap {i}"));
    }
    // The management room comes last in a sync: the 4 are handled first.
    let swapped = scene.command("plugins reload flooding", "swapped in");
    assert!(swapped.contains("state carried over"), "{swapped}");
    for i in 0..3 {
        send(synapse, spammer, &scene.protected, &format!("after the swap {i}"));
    }
    eventually("the burst banned across the swap", Duration::from_secs(30), || {
        (membership(synapse, moderator, &scene.protected, &spammer.user_id).as_deref() == Some("ban")).then_some(())
    });
    eventually("the report of the burst", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains("sent 6 messages within a minute"))
    });
}
