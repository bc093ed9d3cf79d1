//! End-to-end: the `gleipnir` binary against a real Synapse on loopback.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use synapse_harness::{Account, Options, Synapse, unique_name};

/// A running bot; killed on drop.
struct Gleipnir {
    child: Child,
    dir: PathBuf,
}

impl Drop for Gleipnir {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- gleipnir log ---\n{}",
                std::fs::read_to_string(self.dir.join("gleipnir.log")).unwrap_or_default()
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_bot(synapse: &Synapse, bot: &Account, management: &str) -> Gleipnir {
    start_bot_with_env(synapse, bot, management, &[])
}

fn start_bot_with_env(synapse: &Synapse, bot: &Account, management: &str, env: &[(&str, &str)]) -> Gleipnir {
    start_bot_with(synapse, bot, management, env, |_| {})
}

/// Starts the bot; `prepare` may add files to its directory (or to its
/// `config.toml`) first.
fn start_bot_with(
    synapse: &Synapse,
    bot: &Account,
    management: &str,
    env: &[(&str, &str)],
    prepare: impl FnOnce(&std::path::Path),
) -> Gleipnir {
    let dir = std::env::temp_dir().join(unique_name("gleipnir-e2e-"));
    std::fs::create_dir_all(dir.join("plugins")).unwrap();
    std::fs::copy(gleipnir_tests::plugins::FLOODING, dir.join("plugins/flooding.wasm")).unwrap();
    std::fs::copy(gleipnir_tests::plugins::POLICY_ECHO, dir.join("plugins/policy-echo.wasm")).unwrap();
    std::fs::copy(gleipnir_tests::plugins::NEWCOMER_WATCH_WORDS, dir.join("plugins/newcomer-watch-words.wasm"))
        .unwrap();
    std::fs::copy(gleipnir_tests::plugins::HOSTILE, dir.join("plugins/hostile.wasm")).unwrap();
    let config = format!(
        r#"[matrix]
homeserver = "{}"
user_id = "{}"
password = "{}"
management_room = "{management}"
[storage]
data_dir = "data"
[plugins]
dir = "plugins"
[protections.flooding]
grants = ["redact", "ban", "notify-management"]
[protections.policy-echo]
grants = ["notify-management"]
[protections.newcomer-watch-words]
grants = ["redact", "ban", "notify-management"]
[protections.hostile]
grants = ["notify-management"]
"#,
        synapse.url(),
        bot.user_id,
        bot.password
    );
    std::fs::write(dir.join("config.toml"), config).unwrap();
    prepare(&dir);
    let log = std::fs::File::create(dir.join("gleipnir.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_gleipnir"))
        .args(["run", "--config"])
        .arg(dir.join("config.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .envs(env.iter().copied())
        .spawn()
        .unwrap();
    Gleipnir { child, dir }
}

/// Polls `check` until it returns `Some`, or fails after `limit`.
fn eventually<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn send(synapse: &Synapse, who: &Account, room: &str, body: &str) -> String {
    try_send(synapse, who, room, body).unwrap()
}

/// Sends a message, waiting out `429`s as a client should; the homeserver's
/// error for anything else.
fn try_send(synapse: &Synapse, who: &Account, room: &str, body: &str) -> Result<String, String> {
    let txn = unique_name("t");
    let path = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}");
    loop {
        match synapse.call(who, "PUT", &path, Some(&json!({"msgtype": "m.text", "body": body}))) {
            Ok(reply) => return Ok(reply["event_id"].as_str().unwrap().to_owned()),
            Err(e) if e.contains("M_LIMIT_EXCEEDED") => std::thread::sleep(Duration::from_millis(500)),
            Err(e) => return Err(e),
        }
    }
}

fn is_redacted(synapse: &Synapse, reader: &Account, room: &str, event_id: &str) -> bool {
    let path = format!("/_matrix/client/v3/rooms/{room}/event/{event_id}");
    synapse.call(reader, "GET", &path, None).is_ok_and(|e| e["content"].as_object().is_some_and(|c| c.is_empty()))
}

/// How many times `sender` redacted each event in `room` (up to 1000 events back).
fn redactions_by(synapse: &Synapse, reader: &Account, room: &str, sender: &str) -> HashMap<String, usize> {
    let path = format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=1000");
    let reply = synapse.call(reader, "GET", &path, None).unwrap();
    let mut counts = HashMap::new();
    for event in reply["chunk"].as_array().unwrap() {
        if event["type"] == "m.room.redaction" && event["sender"] == sender {
            let target = event["content"]["redacts"].as_str().or(event["redacts"].as_str()).unwrap();
            *counts.entry(target.to_owned()).or_default() += 1;
        }
    }
    counts
}

/// Notices from `bot` in `room`, newest first.
fn notices(synapse: &Synapse, reader: &Account, room: &str, bot: &str) -> Vec<String> {
    let path = format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=100");
    let Ok(reply) = synapse.call(reader, "GET", &path, None) else { return Vec::new() };
    reply["chunk"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter(|e| e["sender"] == bot && e["content"]["msgtype"] == "m.notice")
                .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn membership(synapse: &Synapse, reader: &Account, room: &str, user: &str) -> Option<String> {
    let path = format!("/_matrix/client/v3/rooms/{room}/state/m.room.member/{user}");
    synapse.call(reader, "GET", &path, None).ok().and_then(|v| v["membership"].as_str().map(str::to_owned))
}

/// Sends a command and waits for the reply that contains `expect`.
fn command(synapse: &Synapse, moderator: &Account, management: &str, bot: &str, text: &str, expect: &str) -> String {
    let before = notices(synapse, moderator, management, bot).len();
    send(synapse, moderator, management, &format!("!gleipnir {text}"));
    eventually(&format!("a reply to `{text}` containing `{expect}`"), Duration::from_secs(30), || {
        let all = notices(synapse, moderator, management, bot);
        (all.len() > before).then(|| all[..all.len() - before].iter().find(|n| n.contains(expect)).cloned()).flatten()
    })
}

fn create_room(synapse: &Synapse, owner: &Account, invite: &[&Account], powers: Value) -> String {
    let invites: Vec<&str> = invite.iter().map(|a| a.user_id.as_str()).collect();
    let body = json!({"preset": "private_chat", "invite": invites, "power_level_content_override": {"users": powers}});
    let reply = synapse.call(owner, "POST", "/_matrix/client/v3/createRoom", Some(&body)).unwrap();
    reply["room_id"].as_str().unwrap().to_owned()
}

fn join(synapse: &Synapse, who: &Account, room: &str) {
    synapse.call(who, "POST", &format!("/_matrix/client/v3/join/{room}"), Some(&json!({}))).unwrap();
}

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
        let spam: Vec<String> = (0..6).map(|i| send(&synapse, &spammer, &protected, &format!("BUY NOW {i}"))).collect();

        eventually("the spammer banned", Duration::from_secs(30), || {
            (membership(&synapse, &moderator, &protected, &spammer.user_id).as_deref() == Some("ban")).then_some(())
        });
        eventually("the spam redacted", Duration::from_secs(30), || {
            spam.iter().all(|id| is_redacted(&synapse, &moderator, &protected, id)).then_some(())
        });
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

/// A management room and a protected room with the bot as admin; the spammer
/// has joined the protected room. Room version 12.
struct Scene {
    synapse: Synapse,
    bot: Account,
    moderator: Account,
    spammer: Account,
    management: String,
    protected: String,
}

impl Scene {
    fn new(options: Options) -> Scene {
        let synapse = Synapse::start(options).unwrap_or_else(|e| panic!("{e}"));
        let bot = synapse.register(&unique_name("bot"), "bot-password", false).unwrap();
        let moderator = synapse.register(&unique_name("mod"), "mod-password", false).unwrap();
        let spammer = synapse.register(&unique_name("spam"), "spam-password", false).unwrap();
        let powers = json!({ bot.user_id.clone(): 100 });
        let management = create_room(&synapse, &moderator, &[&bot], powers.clone());
        let protected = create_room(&synapse, &moderator, &[&bot, &spammer], powers);
        join(&synapse, &spammer, &protected);
        Scene { synapse, bot, moderator, spammer, management, protected }
    }

    /// Starts the bot, waits for it, protects the room and runs `commands`.
    fn start(&self, env: &[(&str, &str)], commands: &[(&str, &str)]) -> Gleipnir {
        let gleipnir = start_bot_with_env(&self.synapse, &self.bot, &self.management, env);
        eventually("the bot's start notice", Duration::from_secs(60), || {
            self.notices().iter().find(|n| n.contains("Gleipnir started")).cloned()
        });
        self.command(&format!("rooms add {}", self.protected), "Now protecting");
        for (text, expect) in commands {
            self.command(text, expect);
        }
        gleipnir
    }

    fn command(&self, text: &str, expect: &str) -> String {
        command(&self.synapse, &self.moderator, &self.management, &self.bot.user_id, text, expect)
    }

    fn notices(&self) -> Vec<String> {
        notices(&self.synapse, &self.moderator, &self.management, &self.bot.user_id)
    }
}

/// Stopping and restarting the homeserver while a flood is sent: every flood
/// message is still redacted, each exactly once, and the flood is reported once.
#[test]
fn a_homeserver_restart_loses_no_event_and_repeats_no_action() {
    let mut scene = Scene::new(Options { persistent: true, ..Options::default() });
    let _gleipnir = scene.start(
        &[],
        &[
            ("protections enable flooding", "flooding enabled"),
            ("protections config set flooding consequence redact", "consequence: redact-and-ban → redact"),
            ("protections config set flooding max-per-minute 1", "max-per-minute: 10 → 1"),
        ],
    );
    // With a limit of one message a minute and `redact`, every message of the
    // flood is redacted: the first two when the limit is passed, each later one
    // as it arrives.
    let (spammer, protected) = (&scene.spammer, &scene.protected);
    let mut spam: Vec<String> =
        (0..8).map(|i| send(&scene.synapse, spammer, protected, &format!("before restart {i}"))).collect();
    scene.synapse.restart().unwrap_or_else(|e| panic!("{e}"));
    let (spammer, protected) = (&scene.spammer, &scene.protected);
    spam.extend((0..8).map(|i| send(&scene.synapse, spammer, protected, &format!("after restart {i}"))));

    eventually("every flood message redacted", Duration::from_secs(90), || {
        spam.iter().all(|id| is_redacted(&scene.synapse, &scene.moderator, protected, id)).then_some(())
    });
    // Let anything repeated arrive before counting.
    std::thread::sleep(Duration::from_secs(3));
    let counts = redactions_by(&scene.synapse, &scene.moderator, protected, &scene.bot.user_id);
    for id in &spam {
        assert_eq!(counts.get(id), Some(&1), "{id} redacted {:?} times; all: {counts:?}", counts.get(id));
    }
    assert_eq!(counts.len(), spam.len(), "the bot redacted events that were not spam: {counts:?}");
    let reports = scene.notices().iter().filter(|n| n.contains("messages within a minute")).count();
    assert_eq!(reports, 1, "{:?}", scene.notices());
}

/// With the homeserver's own (low) message rate limit, the bot's redactions
/// and notices meet `429 M_LIMIT_EXCEEDED`; it waits as told and finishes the job.
#[test]
fn rate_limits_are_waited_out_not_fatal() {
    // Four messages at once, then one every two seconds, for everyone.
    let scene = Scene::new(Options {
        raise_rate_limits: false,
        extra_config: "rc_message: {per_second: 0.5, burst_count: 4}\n".to_owned(),
        ..Options::default()
    });
    let gleipnir = scene.start(
        &[("RUST_LOG", "info,matrix_sdk::http_client=debug")],
        &[
            ("protections enable flooding", "flooding enabled"),
            ("protections config set flooding max-per-minute 3", "max-per-minute: 10 → 3"),
        ],
    );
    let mut spam = Vec::new();
    for i in 0..6 {
        // Once banned, the spammer cannot send any more.
        match try_send(&scene.synapse, &scene.spammer, &scene.protected, &format!("spam {i}")) {
            Ok(id) => spam.push(id),
            Err(e) if e.contains("403") => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(spam.len() >= 4, "the spammer was stopped before flooding: {spam:?}");
    eventually("the spammer banned", Duration::from_secs(90), || {
        (membership(&scene.synapse, &scene.moderator, &scene.protected, &scene.spammer.user_id).as_deref()
            == Some("ban"))
        .then_some(())
    });
    eventually("the spam redacted", Duration::from_secs(90), || {
        spam.iter().all(|id| is_redacted(&scene.synapse, &scene.moderator, &scene.protected, id)).then_some(())
    });
    // The bot's own sends (a start notice, three replies, redactions, a
    // report) exceed the burst of four: some were refused with 429 and retried.
    let log = std::fs::read_to_string(gleipnir.dir.join("gleipnir.log")).unwrap();
    assert!(log.contains("num_attempt=2"), "no request was retried; was the rate limit reached?");
}

/// Sends a reaction (an annotation) with `key` to `event`.
fn react(synapse: &Synapse, who: &Account, room: &str, event: &str, key: &str) {
    let reaction = json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": event, "key": key}});
    let path = format!("/_matrix/client/v3/rooms/{room}/send/m.reaction/{}", unique_name("r"));
    synapse.call(who, "PUT", &path, Some(&reaction)).unwrap();
}

/// The event id of the newest notice from `bot` in `room` containing `text`.
fn notice_id(synapse: &Synapse, reader: &Account, room: &str, bot: &str, text: &str) -> Option<String> {
    let path = format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=100");
    let reply = synapse.call(reader, "GET", &path, None).ok()?;
    reply["chunk"].as_array()?.iter().find_map(|e| {
        let body = e["content"]["body"].as_str()?;
        (e["sender"] == bot && e["content"]["msgtype"] == "m.notice" && body.contains(text))
            .then(|| e["event_id"].as_str().map(str::to_owned))
            .flatten()
    })
}

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
    // Nothing happens before the ✅.
    std::thread::sleep(Duration::from_secs(2));
    assert!(spam.iter().all(|id| !is_redacted(synapse, moderator, &scene.protected, id)));

    let preview_id = notice_id(synapse, moderator, &scene.management, bot, "would carry out 8").unwrap();
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

/// More events than one sync returns (the bot was paused while 130 arrived):
/// the gap is fetched, so every one of them is still seen and acted on.
#[test]
fn a_limited_sync_is_backfilled() {
    let scene = Scene::new(Options::default());
    let gleipnir = scene.start(
        &[],
        &[
            ("protections enable flooding", "flooding enabled"),
            ("protections config set flooding consequence redact", "consequence: redact-and-ban → redact"),
            ("protections config set flooding max-per-minute 1", "max-per-minute: 10 → 1"),
        ],
    );
    let pid = gleipnir.child.id().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    let spam: Vec<String> = (0..130)
        .map(|i| send(&scene.synapse, &scene.spammer, &scene.protected, &format!("while paused {i}")))
        .collect();
    assert!(Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
    eventually("all 130 redacted", Duration::from_secs(120), || {
        spam.iter().all(|id| is_redacted(&scene.synapse, &scene.moderator, &scene.protected, id)).then_some(())
    });
    let counts = redactions_by(&scene.synapse, &scene.moderator, &scene.protected, &scene.bot.user_id);
    assert!(spam.iter().all(|id| counts.get(id) == Some(&1)), "{counts:?}");
    // The path under test was taken: one sync could not hold them all.
    let log = std::fs::read_to_string(gleipnir.dir.join("gleipnir.log")).unwrap();
    assert!(log.contains("filled a gap in the timeline"), "no gap was filled; the test proves nothing");
}

/// The bot's `m.room.server_acl` events in `room`, oldest first (their deny lists).
fn acl_updates_by(synapse: &Synapse, reader: &Account, room: &str, bot: &str) -> Vec<Value> {
    let path = format!("/_matrix/client/v3/rooms/{room}/messages?dir=f&limit=1000");
    let reply = synapse.call(reader, "GET", &path, None).unwrap();
    reply["chunk"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "m.room.server_acl" && e["sender"] == bot)
        .map(|e| e["content"]["deny"].clone())
        .collect()
}

fn put_rule(synapse: &Synapse, who: &Account, list: &str, kind: &str, key: &str, content: Value) {
    let path = format!("/_matrix/client/v3/rooms/{list}/state/m.policy.rule.{kind}/{key}");
    synapse.call(who, "PUT", &path, Some(&content)).unwrap();
}

/// Rules in a watched list ban matching members in every protected room,
/// also when they join later; server rules become one ACL update per room,
/// and an ACL edited by someone else is put back.
#[test]
fn policy_lists_end_to_end() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator, bot) = (&scene.synapse, &scene.moderator, &scene.bot.user_id);
    let second = create_room(synapse, moderator, &[&scene.bot, &scene.spammer], json!({ bot.clone(): 100 }));
    join(synapse, &scene.spammer, &second);
    let list = create_room(synapse, moderator, &[&scene.bot], json!({}));
    let _gleipnir = scene.start(&[], &[]);
    scene.command(&format!("rooms add {second}"), "Now protecting");
    scene.command(&format!("watch {list}"), "Now watching");
    scene.command("protections enable policy-echo", "policy-echo enabled");

    // A user rule: the spammer is banned in both protected rooms.
    put_rule(
        synapse,
        moderator,
        &list,
        "user",
        "spam",
        json!({"entity": scene.spammer.user_id, "recommendation": "m.ban", "reason": "spam"}),
    );
    for room in [&scene.protected, &second] {
        eventually("the spammer banned", Duration::from_secs(30), || {
            (membership(synapse, moderator, room, &scene.spammer.user_id).as_deref() == Some("ban")).then_some(())
        });
    }
    // Protections receive the same delta.
    let echo = format!("policy-echo: added m.ban {} in {list}", scene.spammer.user_id);
    eventually("the delta reaching a protection", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains(&echo))
    });
    let answer = scene.command(&format!("rules matching {}", scene.spammer.user_id), "1 rule(s) match");
    assert!(answer.contains("m.ban") && answer.contains(&list), "{answer}");

    // Three server rules at once: each room's ACL is updated once, with all three.
    for (i, entity) in ["*.evil.example", "bad.example", "worse.example"].iter().enumerate() {
        put_rule(
            synapse,
            moderator,
            &list,
            "server",
            &format!("s{i}"),
            json!({"entity": entity, "recommendation": "m.ban"}),
        );
    }
    let expected = json!(["*.evil.example", "bad.example", "worse.example"]);
    for room in [&scene.protected, &second] {
        eventually("the ACL", Duration::from_secs(30), || {
            let path = format!("/_matrix/client/v3/rooms/{room}/state/m.room.server_acl/");
            synapse.call(moderator, "GET", &path, None).ok().filter(|acl| acl["deny"] == expected)
        });
    }
    std::thread::sleep(Duration::from_secs(3));
    for room in [&scene.protected, &second] {
        assert_eq!(acl_updates_by(synapse, moderator, room, bot), std::slice::from_ref(&expected), "in {room}");
    }

    // Someone else edits the ACL: it is put back.
    let path = format!("/_matrix/client/v3/rooms/{}/state/m.room.server_acl/", scene.protected);
    synapse.call(moderator, "PUT", &path, Some(&json!({"allow": ["*"], "deny": []}))).unwrap();
    eventually("the ACL corrected", Duration::from_secs(30), || {
        synapse.call(moderator, "GET", &path, None).ok().filter(|acl| acl["deny"] == expected)
    });

    // A takedown glob: a matching user who joins later is banned on joining.
    put_rule(
        synapse,
        moderator,
        &list,
        "user",
        "late",
        json!({"entity": "@late*:localhost", "recommendation": "m.takedown"}),
    );
    scene.command("rules matching @latecomer:localhost", "1 rule(s) match");
    let late = synapse.register(&unique_name("late"), "late-password", false).unwrap();
    let invite = json!({"user_id": late.user_id});
    synapse.call(moderator, "POST", &format!("/_matrix/client/v3/rooms/{second}/invite"), Some(&invite)).unwrap();
    join(synapse, &late, &second);
    eventually("the latecomer banned", Duration::from_secs(30), || {
        (membership(synapse, moderator, &second, &late.user_id).as_deref() == Some("ban")).then_some(())
    });
}

/// Policy-list commands: `list create`, `ban USER LIST`, `takedown USER LIST`
/// (hashed), and `unban USER` removing the rule and unbanning after a ✅.
#[test]
fn policy_commands_end_to_end() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator, bot) = (&scene.synapse, &scene.moderator, &scene.bot.user_id);
    let troll = synapse.register(&unique_name("troll"), "troll-password", false).unwrap();
    let invite = json!({"user_id": troll.user_id});
    synapse
        .call(moderator, "POST", &format!("/_matrix/client/v3/rooms/{}/invite", scene.protected), Some(&invite))
        .unwrap();
    join(synapse, &troll, &scene.protected);
    let _gleipnir = scene.start(&[], &[]);

    let created = scene.command("list create coc coc-bans", "Created the policy list #coc-bans:localhost");
    let list = created.split(['(', ')']).nth(1).unwrap().to_owned();
    scene.command("rules", &format!("- {list}: 0 rule(s)"));

    // A ban through the list: the rule is written and the member banned.
    scene.command(&format!("ban {} coc spamming", scene.spammer.user_id), "Added to");
    eventually("the spammer banned", Duration::from_secs(30), || {
        (membership(synapse, moderator, &scene.protected, &scene.spammer.user_id).as_deref() == Some("ban"))
            .then_some(())
    });

    // A takedown: hashed, and it bans too.
    scene.command(&format!("takedown {} coc", troll.user_id), "hashed: only its sha256 is published");
    eventually("the troll banned", Duration::from_secs(30), || {
        (membership(synapse, moderator, &scene.protected, &troll.user_id).as_deref() == Some("ban")).then_some(())
    });
    // The list is public: anyone can read it.
    join(synapse, moderator, &list);
    let state = synapse.call(moderator, "GET", &format!("/_matrix/client/v3/rooms/{list}/state"), None).unwrap();
    let takedown = state
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["content"]["recommendation"] == "m.takedown")
        .expect("the takedown rule");
    assert!(takedown["content"].get("entity").is_none(), "{takedown}");
    assert!(!takedown.to_string().contains(&troll.user_id), "the hashed rule reveals the user: {takedown}");

    // Unban: a preview of the rule removal and the unban, then ✅.
    let preview = scene.command(&format!("unban {}", scene.spammer.user_id), "would carry out 2 operation(s)");
    assert!(preview.contains("remove the rule") && preview.contains("unban"), "{preview}");
    let preview_id = notice_id(synapse, moderator, &scene.management, bot, "would carry out 2").unwrap();
    react(synapse, moderator, &scene.management, &preview_id, "✅");
    eventually("the unban", Duration::from_secs(30), || {
        (membership(synapse, moderator, &scene.protected, &scene.spammer.user_id).as_deref() == Some("leave"))
            .then_some(())
    });
    let after = scene.command(&format!("rules matching {}", scene.spammer.user_id), "match");
    assert!(after.contains("No rule matches"), "{after}");
    // The takedown stays.
    assert_eq!(membership(synapse, moderator, &scene.protected, &troll.user_id).as_deref(), Some("ban"));
}

/// Losing a watched list while running (the bot is banned from it) is
/// reported with recovery options and no ACL is sent while it is gone;
/// unwatched, the ACL follows the remaining rules; a redacted rule leaves it.
#[test]
fn no_acl_while_a_watched_list_is_lost() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator, bot) = (&scene.synapse, &scene.moderator, &scene.bot.user_id);
    let list = create_room(synapse, moderator, &[&scene.bot], json!({}));
    let other = create_room(synapse, moderator, &[&scene.bot], json!({}));
    put_rule(synapse, moderator, &list, "server", "evil", json!({"entity": "evil.example", "recommendation": "m.ban"}));
    let _gleipnir = scene.start(&[], &[]);
    scene.command(&format!("watch {list}"), "Now watching");
    scene.command(&format!("watch {other}"), "Now watching");
    let acl_path = format!("/_matrix/client/v3/rooms/{}/state/m.room.server_acl/", scene.protected);
    eventually("the first ACL", Duration::from_secs(30), || {
        synapse.call(moderator, "GET", &acl_path, None).ok().filter(|acl| acl["deny"] == json!(["evil.example"]))
    });

    // The bot is banned from the other list: reported, with options.
    let ban = json!({"user_id": bot, "reason": "test"});
    synapse.call(moderator, "POST", &format!("/_matrix/client/v3/rooms/{other}/ban"), Some(&ban)).unwrap();
    eventually("the loss reported", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains("cannot be used") && n.contains("I was banned"))
    });
    let rules = scene.command("rules", "FAILED to load");
    assert!(rules.contains(&format!("- {list}: 1 rule(s)")), "{rules}");
    put_rule(
        synapse,
        moderator,
        &list,
        "server",
        "worse",
        json!({"entity": "worse.example", "recommendation": "m.ban"}),
    );
    scene.command("rules", "2 rule(s)");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        acl_updates_by(synapse, moderator, &scene.protected, bot).len(),
        1,
        "an ACL was sent from incomplete lists"
    );

    scene.command(&format!("unwatch {other}"), "No longer watching");
    let expected = json!(["evil.example", "worse.example"]);
    eventually("the ACL once the lost list is unwatched", Duration::from_secs(30), || {
        synapse.call(moderator, "GET", &acl_path, None).ok().filter(|acl| acl["deny"] == expected)
    });
    let path = format!("/_matrix/client/v3/user/{bot}/account_data/org.matrix.mjolnir.watched_lists");
    let saved = synapse.call(&scene.bot, "GET", &path, None).unwrap();
    assert_eq!(saved, json!({"references": [format!("https://matrix.to/#/{list}")]}));

    // Redacting a rule removes it: the ACL follows.
    let state = synapse.call(moderator, "GET", &format!("/_matrix/client/v3/rooms/{list}/state"), None).unwrap();
    let worse = state.as_array().unwrap().iter().find(|e| e["state_key"] == "worse").unwrap()["event_id"].clone();
    let redact = format!("/_matrix/client/v3/rooms/{list}/redact/{}/{}", worse.as_str().unwrap(), unique_name("x"));
    synapse.call(moderator, "PUT", &redact, Some(&json!({}))).unwrap();
    eventually("the ACL without the redacted rule", Duration::from_secs(30), || {
        synapse.call(moderator, "GET", &acl_path, None).ok().filter(|acl| acl["deny"] == json!(["evil.example"]))
    });
}

/// The number of the option whose text contains `text`, in a safe-mode report.
fn option_number(report: &str, text: &str) -> usize {
    report
        .lines()
        .find(|l| l.contains(text))
        .and_then(|l| l.trim().split('.').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no option with `{text}` in:\n{report}"))
}

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

    let gleipnir = start_bot_with(synapse, bot, &scene.management, &[], |dir| {
        std::fs::write(dir.join("plugins/broken.wasm"), b"not a component").unwrap();
        // A sync token the homeserver will refuse.
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(dir.join("data/sync_token"), "garbage-token").unwrap();
    });
    eventually("the refused token reported", Duration::from_secs(60), || {
        scene.notices().into_iter().find(|n| n.starts_with("The stored sync token was refused"))
    });
    let report = eventually("the safe-mode report", Duration::from_secs(60), || {
        scene.notices().into_iter().find(|n| n.starts_with("Safe mode: 7 problem(s)"))
    });
    for expected in [
        "org.matrix.mjolnir.protected_rooms rooms[1] cannot be read: is a number, not a string",
        "org.matrix.mjolnir.protected_rooms rooms[2] cannot be used: `#nowhere:localhost`",
        &format!("org.matrix.mjolnir.protected_rooms rooms[3] cannot be used: `{kicked}`"),
        "org.matrix.mjolnir.watched_lists references[0] cannot be used",
        "org.matrix.mjolnir.enabled_protections enabled cannot be read: `enabled` is a string, not a list",
        "broken.wasm cannot be used: the plugin does not load",
        "org.gleipnir.protection_settings flooding cannot be read: is a string, not an object",
    ] {
        assert!(report.contains(expected), "missing `{expected}` in:\n{report}");
    }
    scene.command("status", "SAFE MODE");
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
    let report_id = notice_id(synapse, moderator, &scene.management, &bot.user_id, "Safe mode: 7 problem(s)").unwrap();
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
    let n = option_number(&report, "set the plugin file aside");
    scene.command(&format!("recover {n} --no-confirm"), "is no longer loaded");
    assert!(gleipnir.dir.join("plugins/broken.wasm.disabled").exists());

    scene.command("restart", "Restarting");
    eventually("normal mode", Duration::from_secs(60), || {
        scene
            .notices()
            .into_iter()
            .find(|n| n.contains("Gleipnir started: protecting 1 room(s), 0 protection(s) enabled, 0 watched list(s)"))
    });
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

/// newcomer-watch-words: a newcomer's disguised watched phrase is redacted,
/// also when it arrives as an edit; a moderator's is not.
#[test]
fn newcomer_watch_words_end_to_end() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator) = (&scene.synapse, &scene.moderator);
    let _gleipnir = scene.start(
        &[],
        &[
            ("protections enable newcomer-watch-words", "newcomer-watch-words enabled"),
            ("protections config add newcomer-watch-words words cheap pills", "newcomer-watch-words.words"),
        ],
    );
    let by_moderator = send(synapse, moderator, &scene.protected, "no cheap pills here, please");
    let hello = send(synapse, &scene.spammer, &scene.protected, "hello everyone");
    let disguised = send(synapse, &scene.spammer, &scene.protected, "get ｃｈｅａｐ p\u{200B}ills now");
    eventually("the disguised phrase redacted", Duration::from_secs(30), || {
        is_redacted(synapse, moderator, &scene.protected, &disguised).then_some(())
    });
    eventually("the report", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains("said the watched phrase \"cheap pills\""))
    });
    // An edit that adds the phrase is caught too.
    let edit = json!({
        "msgtype": "m.text", "body": "* cheap pills",
        "m.new_content": {"msgtype": "m.text", "body": "cheap pills"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": hello},
    });
    let path = format!("/_matrix/client/v3/rooms/{}/send/m.room.message/{}", scene.protected, unique_name("t"));
    let edit_id =
        synapse.call(&scene.spammer, "PUT", &path, Some(&edit)).unwrap()["event_id"].as_str().unwrap().to_owned();
    eventually("the edit redacted", Duration::from_secs(30), || {
        is_redacted(synapse, moderator, &scene.protected, &edit_id).then_some(())
    });
    assert!(!is_redacted(synapse, moderator, &scene.protected, &by_moderator));
    assert!(!is_redacted(synapse, moderator, &scene.protected, &hello));
}

/// `protections preview` says what a protection would have done over recent
/// history, and does none of it.
#[test]
fn preview_reports_and_changes_nothing() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator) = (&scene.synapse, &scene.moderator);
    let spam: Vec<String> =
        (0..12).map(|i| send(synapse, &scene.spammer, &scene.protected, &format!("spam {i}"))).collect();
    let _gleipnir = scene.start(&[], &[]);
    let preview = scene.command("protections preview flooding --limit 50", "Preview of flooding");
    assert!(preview.contains("Nothing was done"), "{preview}");
    // Eleven redactions, the ban and the report at the eleventh message; the twelfth redacted too.
    assert!(preview.contains("would have carried out 14 action(s)"), "{preview}");
    assert!(preview.contains(r#""action":"ban""#) && preview.contains(&scene.spammer.user_id), "{preview}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(membership(synapse, moderator, &scene.protected, &scene.spammer.user_id).as_deref(), Some("join"));
    assert!(spam.iter().all(|id| !is_redacted(synapse, moderator, &scene.protected, id)));
    // It is not enabled by previewing.
    scene.command("protections", "flooding 1.0.0 (disabled)");
}

/// A protection that keeps faulting is quarantined (and says so once), the
/// others keep working; enabling it again lifts the quarantine; actions
/// outside its grants are refused and reported once per kind.
#[test]
fn faulty_protections_are_quarantined() {
    let scene = Scene::new(Options::default());
    let _gleipnir = scene.start(&[], &[("protections enable hostile", "hostile enabled")]);
    for _ in 0..3 {
        send(&scene.synapse, &scene.spammer, &scene.protected, "panic");
    }
    eventually("the quarantine", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains("hostile faulted") && n.contains("quarantined for 30 s"))
    });
    scene.command("status", "hostile 0.1.0 (enabled, QUARANTINED");
    scene.command("protections enable hostile", "quarantine is lifted");
    for _ in 0..2 {
        send(&scene.synapse, &scene.spammer, &scene.protected, "overreach");
    }
    scene.command("status", "2 refused ban");
    let refusals = scene.notices().iter().filter(|n| n.starts_with("hostile: refused")).count();
    assert_eq!(refusals, 1, "{:?}", scene.notices());
}
