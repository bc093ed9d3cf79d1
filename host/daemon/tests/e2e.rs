//! End-to-end: the `gleipnir` binary against a real Synapse on loopback.

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
    let dir = std::env::temp_dir().join(unique_name("gleipnir-e2e-"));
    std::fs::create_dir_all(dir.join("plugins")).unwrap();
    std::fs::copy(gleipnir_tests::plugins::FLOODING, dir.join("plugins/flooding.wasm")).unwrap();
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
"#,
        synapse.url(),
        bot.user_id,
        bot.password
    );
    std::fs::write(dir.join("config.toml"), config).unwrap();
    let log = std::fs::File::create(dir.join("gleipnir.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_gleipnir"))
        .args(["run", "--config"])
        .arg(dir.join("config.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
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
    let txn = unique_name("t");
    let path = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}");
    let reply = synapse.call(who, "PUT", &path, Some(&json!({"msgtype": "m.text", "body": body}))).unwrap();
    reply["event_id"].as_str().unwrap().to_owned()
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
            let all_redacted = spam.iter().all(|id| {
                let path = format!("/_matrix/client/v3/rooms/{protected}/event/{id}");
                synapse
                    .call(&moderator, "GET", &path, None)
                    .is_ok_and(|e| e["content"].as_object().is_some_and(|c| c.is_empty()))
            });
            all_redacted.then_some(())
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
