//! Pre-emptive protection through Synapse's spam-checker module
//! (synapse-http-antispam from PyPI, installed beside Synapse): the module
//! asks Gleipnir's listener before Synapse accepts a join, an invite, a room
//! or an event.

use std::net::TcpListener;
use std::time::Duration;

use serde_json::json;
use synapse_harness::{Options, antispam_module, unique_name};

use crate::common::*;

const TOKEN: &str = "antispam-token-for-the-e2e-tests";

/// A port free now, for the bot's listener (the module's config names it
/// before the bot starts).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A scene, then Synapse restarted with the module calling `port` (the
/// scene's invites were made before: invites fail closed while nothing
/// answers the module).
fn scene_with_module(port: u16) -> Scene {
    let mut scene = Scene::new(Options { persistent: true, ..Options::default() });
    let module = antispam_module(&format!("http://127.0.0.1:{port}/api/1/spam_check"), TOKEN);
    scene.synapse.restart_with(&module).unwrap();
    scene
}

/// The bot's config with the listener and the module's token.
fn with_listener(port: u16) -> impl FnOnce(&std::path::Path) {
    move |dir: &std::path::Path| {
        let token = dir.join("antispam.token");
        std::fs::write(&token, TOKEN).unwrap();
        #[cfg(unix)]
        std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let path = dir.join("config.toml");
        let config = std::fs::read_to_string(&path).unwrap();
        let extra = format!(
            "[http]\nlisten = \"127.0.0.1:{port}\"\n[antispam]\nauthorization_file = \"antispam.token\"\n\
             deadline = \"500ms\"\n"
        );
        std::fs::write(&path, format!("{config}{extra}")).unwrap();
    }
}

fn get(port: u16, path: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut response = agent.get(&format!("http://127.0.0.1:{port}{path}")).call().unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap())
}

/// A user a watched list bans gets 403 joining a protected room and cannot
/// invite anyone; the refusals are said in the management room; `/healthz`
/// and `/metrics` answer on the same listener, the metrics counting the
/// refusals. With the bot stopped, messages still go through (fail-open)
/// and invites do not (fail-closed).
#[test]
fn a_user_a_list_bans_cannot_join_nor_invite() {
    let port = free_port();
    let scene = scene_with_module(port);
    let (synapse, moderator, room) = (&scene.synapse, &scene.moderator, &scene.protected);
    let banned = synapse.register(&unique_name("banned"), "banned-password", false).unwrap();
    let friend = synapse.register(&unique_name("friend"), "friend-password", false).unwrap();
    // A room of the banned user's own, made before the rule.
    let theirs = create_room(synapse, &banned, &[], json!({}));
    let gleipnir = scene.start_with(with_listener(port), &[]);
    scene.command("list create coc coc-gate", "Created the policy list");
    scene.command(&format!("ban {} coc spam", banned.user_id), "Added to");
    eventually("the rule applied", Duration::from_secs(30), || {
        scene.command(&format!("rules matching {}", banned.user_id), "match").contains("1 rule(s) match").then_some(())
    });

    let invite = format!("/_matrix/client/v3/rooms/{room}/invite");
    synapse.call(moderator, "POST", &invite, Some(&json!({"user_id": banned.user_id}))).unwrap();
    let refused = synapse
        .call(&banned, "POST", &format!("/_matrix/client/v3/join/{room}"), Some(&json!({})))
        .expect_err("a banned user joined a protected room");
    assert!(refused.contains("403") && refused.contains("banned by a policy list"), "{refused}");
    let path = format!("/_matrix/client/v3/rooms/{theirs}/invite");
    let refused = synapse
        .call(&banned, "POST", &path, Some(&json!({"user_id": friend.user_id})))
        .expect_err("a banned user invited someone");
    assert!(refused.contains("403") && refused.contains("you may not invite anyone"), "{refused}");
    let said = eventually("the refusals said", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.starts_with("Refused before the homeserver accepted it"))
    });
    assert!(said.contains(&format!("join by {} in {room}", banned.user_id)), "{said}");
    // Members are not refused anything.
    send(synapse, &scene.spammer, room, "an ordinary message");

    assert_eq!(get(port, "/healthz"), (200, "ok\n".to_owned()));
    let (status, metrics) = get(port, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains(r#"gleipnir_antispam_verdicts_total{callback="user_may_join_room",verdict="deny"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"gleipnir_antispam_verdicts_total{callback="user_may_invite",verdict="deny"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("gleipnir_protected_rooms 1"), "{metrics}");
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let wrong = agent
        .post(&format!("http://127.0.0.1:{port}/api/1/spam_check/user_may_create_room"))
        .header("Authorization", "Bearer not-the-token")
        .send_json(json!({"user_id": banned.user_id}))
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);

    // The bot stopped: messages fail open, invites fail closed.
    drop(gleipnir);
    send(synapse, &scene.spammer, room, "still heard while the bot is down");
    let refused = synapse
        .call(&banned, "POST", &path, Some(&json!({"user_id": friend.user_id})))
        .expect_err("an invite went through while the bot was down");
    assert!(refused.contains("403") || refused.contains("500"), "{refused}");
}

/// Sends a message once; the homeserver's error as it is.
fn send_once(
    synapse: &synapse_harness::Synapse,
    who: &synapse_harness::Account,
    room: &str,
    body: &str,
) -> Result<String, String> {
    let path = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{}", unique_name("t"));
    synapse
        .call(who, "PUT", &path, Some(&json!({"msgtype": "m.text", "body": body})))
        .map(|reply| reply["event_id"].as_str().unwrap_or_default().to_owned())
}

/// Flooding and least-authority decide before Synapse accepts a message:
/// the 11th message of a flood is refused with `M_LIMIT_EXCEEDED` and never
/// appears, the flooder is banned and the ten before redacted; a
/// newcomer's link is refused with a reason the client shows, while a
/// moderator's link goes through.
#[test]
fn a_flood_and_a_newcomers_link_are_refused_before_anyone_sees_them() {
    let port = free_port();
    let scene = scene_with_module(port);
    let (synapse, moderator, room) = (&scene.synapse, &scene.moderator, &scene.protected);
    let listener = with_listener(port);
    let prepare = move |dir: &std::path::Path| {
        listener(dir);
        let path = dir.join("config.toml");
        let config = std::fs::read_to_string(&path).unwrap();
        let config =
            config.replace("[protections.flooding]\n", "[protections.flooding]\nerrcode = \"M_LIMIT_EXCEEDED\"\n");
        std::fs::write(&path, config).unwrap();
    };
    let _gleipnir = scene.start_with(
        prepare,
        &[
            ("protections enable flooding", "flooding enabled"),
            ("protections enable least-authority", "least-authority enabled"),
        ],
    );

    let mut sent = Vec::new();
    for i in 0..10 {
        sent.push(send_once(synapse, &scene.spammer, room, &format!("flood {i}")).unwrap());
    }
    let refused = send_once(synapse, &scene.spammer, room, "flood 10").expect_err("the 11th message landed");
    assert!(refused.contains("403") && refused.contains("M_LIMIT_EXCEEDED"), "{refused}");
    eventually("the flooder banned", Duration::from_secs(30), || {
        (membership(synapse, moderator, room, &scene.spammer.user_id).as_deref() == Some("ban")).then_some(())
    });
    eventually("the ten before redacted", Duration::from_secs(30), || {
        sent.iter().all(|id| is_redacted(synapse, moderator, room, id)).then_some(())
    });
    let path = format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=100");
    let history = synapse.call(moderator, "GET", &path, None).unwrap();
    let bodies: Vec<&str> =
        history["chunk"].as_array().unwrap().iter().filter_map(|e| e["content"]["body"].as_str()).collect();
    assert!(!bodies.contains(&"flood 10"), "the refused message is in the room: {bodies:?}");

    let newcomer = synapse.register(&unique_name("new"), "new-password", false).unwrap();
    let invite = format!("/_matrix/client/v3/rooms/{room}/invite");
    synapse.call(moderator, "POST", &invite, Some(&json!({"user_id": newcomer.user_id}))).unwrap();
    join(synapse, &newcomer, room);
    send_once(synapse, &newcomer, room, "hello, I am new here").unwrap();
    let refused = send_once(synapse, &newcomer, room, "great deals at https://spam.example")
        .expect_err("a newcomer's link landed");
    assert!(refused.contains("403") && refused.contains("newcomers may not post links yet"), "{refused}");
    send_once(synapse, moderator, room, "the rules: https://example.org/rules").unwrap();
    let said = eventually("the refusals said", Duration::from_secs(30), || {
        scene
            .notices()
            .into_iter()
            .find(|n| n.contains("Refused before the homeserver accepted it") && n.contains(&newcomer.user_id))
    });
    assert!(said.contains("least-authority"), "{said}");
}

/// A bot that is not a server admin gets abuse reports through a reverse
/// proxy that forwards the clients' report requests to its listener
/// (`[antispam] reports`): the report goes on to the homeserver with the
/// member's own token, appears in the management room once, and a reaction
/// acts on it.
#[test]
fn a_forwarded_report_reaches_a_bot_that_is_no_admin() {
    let port = free_port();
    let scene = Scene::new(Options::default());
    let (synapse, moderator, room) = (&scene.synapse, &scene.moderator, &scene.protected);
    let (management, bot) = (&scene.management, scene.bot.user_id.as_str());
    let listener = with_listener(port);
    let prepare = move |dir: &std::path::Path| {
        listener(dir);
        let path = dir.join("config.toml");
        let config = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{config}reports = true\n")).unwrap();
    };
    let _gleipnir = scene.start_with(prepare, &[]);
    let member = synapse.register(&unique_name("member"), "member-password", false).unwrap();
    let invite = format!("/_matrix/client/v3/rooms/{room}/invite");
    synapse.call(moderator, "POST", &invite, Some(&json!({"user_id": member.user_id}))).unwrap();
    join(synapse, &member, room);
    let bad = send(synapse, &scene.spammer, room, "buy followers at spam.example");

    // What the reverse proxy does with the member's request.
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let url = format!("http://127.0.0.1:{port}/_matrix/client/v3/rooms/{room}/report/{bad}");
    let mut reply = agent
        .post(&url)
        .header("Authorization", &format!("Bearer {}", member.access_token))
        .send_json(json!({"reason": "spam"}))
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200, "{}", reply.body_mut().read_to_string().unwrap());
    let stranger =
        agent.post(&url).header("Authorization", "Bearer not-a-token").send_json(json!({"reason": "spam"})).unwrap();
    assert_eq!(stranger.status().as_u16(), 401, "the homeserver's answer to a bad token");

    let posted = eventually("the report in the management room", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.starts_with(&format!("Report by {} in", member.user_id)))
    });
    assert!(posted.contains(&format!("{} wrote ({bad})", scene.spammer.user_id)), "{posted}");
    assert!(posted.contains("> buy followers at spam.example"), "{posted}");
    let notice = notice_id(synapse, moderator, management, bot, "React: 🗑️").expect("the report notice");
    react(synapse, moderator, management, &notice, "🔨");
    eventually("the sender banned", Duration::from_secs(30), || {
        (membership(synapse, moderator, room, &scene.spammer.user_id).as_deref() == Some("ban")).then_some(())
    });
}
