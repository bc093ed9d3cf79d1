//! Abuse reports: filed by a member with their client, read from Synapse's
//! admin API, posted in the management room with reactions to act on them.

use std::time::Duration;

use serde_json::json;
use synapse_harness::{Options, unique_name};

use crate::common::*;

/// A member reports a spammer's message with their client: the report
/// appears once in the management room, quoting the message; a moderator's
/// 🔨 bans the sender in that room, the notice is edited to say who did it,
/// and a second reaction is told it was handled already.
#[test]
fn a_client_report_appears_and_a_reaction_bans_the_sender() {
    let scene = Scene::with_admin_bot(Options::default());
    let (synapse, moderator, room) = (&scene.synapse, &scene.moderator, &scene.protected);
    let (management, bot) = (&scene.management, scene.bot.user_id.as_str());
    let poll_reports = |dir: &std::path::Path| {
        let path = dir.join("config.toml");
        let config = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{config}[reports]\npoll = true\nevery = \"1s\"\n")).unwrap();
    };
    let _gleipnir = scene.start_with(poll_reports, &[]);
    let member = synapse.register(&unique_name("member"), "member-password", false).unwrap();
    let invite = format!("/_matrix/client/v3/rooms/{room}/invite");
    synapse.call(moderator, "POST", &invite, Some(&json!({"user_id": member.user_id}))).unwrap();
    join(synapse, &member, room);
    let bad = send(synapse, &scene.spammer, room, "buy <b>cheap</b> pills at spam.example");
    let report = format!("/_matrix/client/v3/rooms/{room}/report/{bad}");
    synapse.call(&member, "POST", &report, Some(&json!({"reason": "spam", "score": -100}))).unwrap();

    let posted = eventually("the report in the management room", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains(&format!("by {} in", member.user_id)))
    });
    assert!(posted.contains("“spam”, score -100"), "{posted}");
    assert!(posted.contains(&format!("{} wrote ({bad})", scene.spammer.user_id)), "{posted}");
    assert!(posted.contains("> buy <b>cheap</b> pills at spam.example"), "quoted as plain text: {posted}");
    let notice = notice_id(synapse, moderator, management, bot, "React: 🗑️").expect("the report notice");

    react(synapse, moderator, management, &notice, "🔨");
    eventually("the sender banned", Duration::from_secs(30), || {
        (membership(synapse, moderator, room, &scene.spammer.user_id).as_deref() == Some("ban")).then_some(())
    });
    let handled = format!("✔ handled by {}: banned {}", moderator.user_id, scene.spammer.user_id);
    eventually("the notice edited", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains(&handled))
    });
    react(synapse, moderator, management, &notice, "🗑️");
    eventually("a second reaction told", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains("was handled already"))
    });
    // Reported once, however many polls passed.
    let posts = scene.notices().iter().filter(|n| n.starts_with("Report ") && n.contains("React:")).count();
    assert_eq!(posts, 1, "{:?}", scene.notices());
}

/// 🌍 on a report bans the reported sender in every protected room and,
/// with `[policy] propagate_bans_to`, writes the ban as a rule to that list,
/// so it holds wherever the list is watched.
#[test]
fn a_report_banned_everywhere_is_written_to_the_list_bans_go_to() {
    let scene = Scene::with_admin_bot(Options::default());
    let (synapse, moderator, room) = (&scene.synapse, &scene.moderator, &scene.protected);
    let (management, bot) = (&scene.management, scene.bot.user_id.as_str());
    let configure = |dir: &std::path::Path| {
        let path = dir.join("config.toml");
        let config = std::fs::read_to_string(&path).unwrap();
        let extra = "[reports]\npoll = true\nevery = \"1s\"\n[policy]\npropagate_bans_to = \"coc\"\n";
        std::fs::write(&path, format!("{config}{extra}")).unwrap();
    };
    let _gleipnir = scene.start_with(configure, &[]);
    let created = scene.command("list create coc coc-reports", "Created the policy list");
    let list = created.split(['(', ')']).nth(1).unwrap().to_owned();
    let second = create_room(synapse, moderator, &[&scene.bot], json!({ bot: 100 }));
    scene.command(&format!("rooms add {second}"), "Now protecting");
    let member = synapse.register(&unique_name("member"), "member-password", false).unwrap();
    let invite = format!("/_matrix/client/v3/rooms/{room}/invite");
    synapse.call(moderator, "POST", &invite, Some(&json!({"user_id": member.user_id}))).unwrap();
    join(synapse, &member, room);
    let bad = send(synapse, &scene.spammer, room, "join my scam server");
    let report = format!("/_matrix/client/v3/rooms/{room}/report/{bad}");
    synapse.call(&member, "POST", &report, Some(&json!({"reason": "scam"}))).unwrap();
    eventually("the report posted", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains(&format!("by {} in", member.user_id)))
    });
    let notice = notice_id(synapse, moderator, management, bot, "React: 🗑️").expect("the report notice");

    react(synapse, moderator, management, &notice, "🌍");
    for r in [room, &second] {
        eventually("the sender banned in each protected room", Duration::from_secs(30), || {
            (membership(synapse, moderator, r, &scene.spammer.user_id).as_deref() == Some("ban")).then_some(())
        });
    }
    let handled = format!("banned {} in every protected room (2) and a ban rule in coc", scene.spammer.user_id);
    eventually("the notice edited", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains(&handled))
    });
    join(synapse, moderator, &list);
    let state = synapse.call(moderator, "GET", &format!("/_matrix/client/v3/rooms/{list}/state"), None).unwrap();
    let rule = state.as_array().unwrap().iter().find(|e| e["content"]["recommendation"] == "m.ban").cloned();
    let rule = rule.expect("the ban rule in the list");
    assert_eq!(rule["content"]["entity"], scene.spammer.user_id.as_str());
    assert_eq!(rule["type"], "m.policy.rule.user");
}
