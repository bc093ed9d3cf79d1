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
