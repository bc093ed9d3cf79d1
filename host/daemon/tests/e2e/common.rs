//! What every end-to-end test uses: the bot as a child process, a Synapse
//! scene, and small client calls.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use synapse_harness::{Account, Options, Synapse, unique_name};

/// A running bot; killed on drop.
pub(crate) struct Gleipnir {
    pub(crate) child: Child,
    pub(crate) dir: PathBuf,
}

impl Gleipnir {
    /// Stops the bot (as a crash would: SIGKILL) and starts it again on the
    /// same directory: same config, data directory and plugins.
    pub(crate) fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log = std::fs::OpenOptions::new().append(true).open(self.dir.join("gleipnir.log")).unwrap();
        self.child = Command::new(env!("CARGO_BIN_EXE_gleipnir"))
            .args(["run", "--config"])
            .arg(self.dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
    }
}

impl Gleipnir {
    /// The secrets this bot holds: its password or access token from the
    /// config, the session token it kept, the antispam module's token.
    fn secrets(&self) -> Vec<String> {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        let mut secrets = Vec::new();
        for line in read("config.toml").lines() {
            if let Some((key, value)) = line.split_once('=')
                && matches!(key.trim(), "password" | "access_token")
            {
                secrets.push(value.trim().trim_matches('"').to_owned());
            }
        }
        if let Ok(session) = serde_json::from_str::<Value>(&read("data/session.json"))
            && let Some(token) = session["access_token"].as_str()
        {
            secrets.push(token.to_owned());
        }
        secrets.push(read("antispam.token").trim().to_owned());
        secrets.retain(|s| s.len() >= 8);
        secrets
    }
}

impl Drop for Gleipnir {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log = std::fs::read_to_string(self.dir.join("gleipnir.log")).unwrap_or_default();
        if std::thread::panicking() {
            eprintln!("--- gleipnir log ---\n{log}");
        } else {
            // Every end-to-end run's log is searched for the secrets the bot holds.
            let secrets = self.secrets();
            assert!(!secrets.is_empty(), "the bot's password is in its config: the search has something to find");
            let leaked: Vec<String> = secrets.into_iter().filter(|s| log.contains(s.as_str())).collect();
            if !leaked.is_empty() {
                let shown: Vec<String> = leaked.iter().map(|s| format!("{}…", &s[..4])).collect();
                let dir = self.dir.display();
                panic!("the bot's log ({dir}/gleipnir.log) holds {} secret(s): {shown:?}", leaked.len());
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn start_bot(synapse: &Synapse, bot: &Account, management: &str) -> Gleipnir {
    start_bot_with_env(synapse, bot, management, &[])
}

pub(crate) fn start_bot_with_env(synapse: &Synapse, bot: &Account, management: &str, env: &[(&str, &str)]) -> Gleipnir {
    start_bot_with(synapse, bot, management, env, |_| {})
}

/// Starts the bot; `prepare` may add files to its directory (or to its
/// `config.toml`) first.
pub(crate) fn start_bot_with(
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
    std::fs::copy(gleipnir_tests::plugins::LEAST_AUTHORITY, dir.join("plugins/least-authority.wasm")).unwrap();
    std::fs::copy(gleipnir_tests::plugins::TAKEDOWN, dir.join("plugins/takedown.wasm")).unwrap();
    std::fs::copy(gleipnir_tests::plugins::WITNESS, dir.join("plugins/witness.wasm")).unwrap();
    std::fs::copy(gleipnir_tests::plugins::MENTION_LIMIT, dir.join("plugins/mention-limit.wasm")).unwrap();
    std::fs::copy(gleipnir_tests::plugins::JOIN_WAVE, dir.join("plugins/join-wave.wasm")).unwrap();
    std::fs::copy(gleipnir_tests::plugins::MEDIA, dir.join("plugins/media.wasm")).unwrap();
    std::fs::copy(gleipnir_tests::plugins::TRUSTED_REPORTERS, dir.join("plugins/trusted-reporters.wasm")).unwrap();
    std::fs::copy(gleipnir_tests::plugins::NEW_JOINER_SERVERS, dir.join("plugins/new-joiner-servers.wasm")).unwrap();
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
grants = ["notify-management", "set-join-rule"]
[protections.least-authority]
grants = ["redact", "send-notice", "notify-management"]
[protections.takedown]
grants = ["redact", "ban", "notify-management", "suspend-user", "delete-user-media", "read-history", "read-members"]
[protections.witness]
grants = ["notify-management", "set-join-rule", "invite", "send-notice"]
[protections.mention-limit]
grants = ["redact", "ban", "send-notice", "notify-management"]
[protections.join-wave]
grants = ["set-join-rule", "notify-management"]
[protections.media]
grants = ["redact", "ban", "notify-management"]
[protections.trusted-reporters]
grants = ["redact", "ban", "notify-management"]
[protections.new-joiner-servers]
grants = ["ban", "kick", "notify-management", "read-accounts"]
"#,
        synapse.url(),
        bot.user_id,
        bot.password
    );
    std::fs::write(dir.join("config.toml"), config).unwrap();
    // It holds the password: private, as the bot requires.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("config.toml"), std::fs::Permissions::from_mode(0o600)).unwrap();
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
pub(crate) fn eventually<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub(crate) fn send(synapse: &Synapse, who: &Account, room: &str, body: &str) -> String {
    try_send(synapse, who, room, body).unwrap()
}

/// Sends a message, waiting out `429`s as a client should; the homeserver's
/// error for anything else.
pub(crate) fn try_send(synapse: &Synapse, who: &Account, room: &str, body: &str) -> Result<String, String> {
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

pub(crate) fn is_redacted(synapse: &Synapse, reader: &Account, room: &str, event_id: &str) -> bool {
    let path = format!("/_matrix/client/v3/rooms/{room}/event/{event_id}");
    synapse.call(reader, "GET", &path, None).is_ok_and(|e| e["content"].as_object().is_some_and(|c| c.is_empty()))
}

/// How many times `sender` redacted each event in `room` (up to 1000 events back).
pub(crate) fn redactions_by(synapse: &Synapse, reader: &Account, room: &str, sender: &str) -> HashMap<String, usize> {
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
pub(crate) fn notices(synapse: &Synapse, reader: &Account, room: &str, bot: &str) -> Vec<String> {
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

pub(crate) fn membership(synapse: &Synapse, reader: &Account, room: &str, user: &str) -> Option<String> {
    let path = format!("/_matrix/client/v3/rooms/{room}/state/m.room.member/{user}");
    synapse.call(reader, "GET", &path, None).ok().and_then(|v| v["membership"].as_str().map(str::to_owned))
}

/// Sends a command and waits for the reply that contains `expect`.
pub(crate) fn command(
    synapse: &Synapse,
    moderator: &Account,
    management: &str,
    bot: &str,
    text: &str,
    expect: &str,
) -> String {
    let before = notices(synapse, moderator, management, bot).len();
    send(synapse, moderator, management, &format!("!gleipnir {text}"));
    eventually(&format!("a reply to `{text}` containing `{expect}`"), Duration::from_secs(30), || {
        let all = notices(synapse, moderator, management, bot);
        (all.len() > before).then(|| all[..all.len() - before].iter().find(|n| n.contains(expect)).cloned()).flatten()
    })
}

pub(crate) fn create_room(synapse: &Synapse, owner: &Account, invite: &[&Account], powers: Value) -> String {
    let invites: Vec<&str> = invite.iter().map(|a| a.user_id.as_str()).collect();
    let body = json!({"preset": "private_chat", "invite": invites, "power_level_content_override": {"users": powers}});
    let reply = synapse.call(owner, "POST", "/_matrix/client/v3/createRoom", Some(&body)).unwrap();
    reply["room_id"].as_str().unwrap().to_owned()
}

pub(crate) fn join(synapse: &Synapse, who: &Account, room: &str) {
    synapse.call(who, "POST", &format!("/_matrix/client/v3/join/{room}"), Some(&json!({}))).unwrap();
}

/// A management room and a protected room with the bot as admin; the spammer
/// has joined the protected room. Room version 12.
pub(crate) struct Scene {
    pub(crate) synapse: Synapse,
    pub(crate) bot: Account,
    pub(crate) moderator: Account,
    pub(crate) spammer: Account,
    pub(crate) management: String,
    pub(crate) protected: String,
}

impl Scene {
    pub(crate) fn new(options: Options) -> Scene {
        Scene::build(options, false)
    }

    /// A scene whose bot's account is a server admin (admin API features).
    pub(crate) fn with_admin_bot(options: Options) -> Scene {
        Scene::build(options, true)
    }

    fn build(options: Options, admin: bool) -> Scene {
        let synapse = Synapse::start(options).unwrap_or_else(|e| panic!("{e}"));
        let bot = synapse.register(&unique_name("bot"), "bot-password", admin).unwrap();
        let moderator = synapse.register(&unique_name("mod"), "mod-password", false).unwrap();
        let spammer = synapse.register(&unique_name("spam"), "spam-password", false).unwrap();
        let powers = json!({ bot.user_id.clone(): 100 });
        let management = create_room(&synapse, &moderator, &[&bot], powers.clone());
        let protected = create_room(&synapse, &moderator, &[&bot, &spammer], powers);
        join(&synapse, &spammer, &protected);
        Scene { synapse, bot, moderator, spammer, management, protected }
    }

    /// Starts the bot, waits for it, protects the room and runs `commands`.
    pub(crate) fn start(&self, env: &[(&str, &str)], commands: &[(&str, &str)]) -> Gleipnir {
        self.start_full(env, |_| {}, commands)
    }

    /// [`start`](Scene::start), with `prepare` changing the bot's directory first.
    pub(crate) fn start_with(&self, prepare: impl FnOnce(&std::path::Path), commands: &[(&str, &str)]) -> Gleipnir {
        self.start_full(&[], prepare, commands)
    }

    fn start_full(
        &self,
        env: &[(&str, &str)],
        prepare: impl FnOnce(&std::path::Path),
        commands: &[(&str, &str)],
    ) -> Gleipnir {
        let gleipnir = start_bot_with(&self.synapse, &self.bot, &self.management, env, prepare);
        eventually("the bot's start notice", Duration::from_secs(60), || {
            self.notices().iter().find(|n| n.contains("Gleipnir started")).cloned()
        });
        self.command(&format!("rooms add {}", self.protected), "Now protecting");
        for (text, expect) in commands {
            self.command(text, expect);
        }
        gleipnir
    }

    pub(crate) fn command(&self, text: &str, expect: &str) -> String {
        command(&self.synapse, &self.moderator, &self.management, &self.bot.user_id, text, expect)
    }

    pub(crate) fn notices(&self) -> Vec<String> {
        notices(&self.synapse, &self.moderator, &self.management, &self.bot.user_id)
    }

    /// Asks `status` until its server-ACL line starts with `state`: then no
    /// ACL is pending, so one not sent by now is not sent at all.
    pub(crate) fn acl_settled(&self, state: &str) {
        let line = format!("Server ACL: {state}");
        eventually(&format!("`{line}` in status"), Duration::from_secs(30), || {
            self.command("status", "Server ACL:").contains(&line).then_some(())
        });
    }
}

/// Sends a reaction (an annotation) with `key` to `event`.
pub(crate) fn react(synapse: &Synapse, who: &Account, room: &str, event: &str, key: &str) {
    let reaction = json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": event, "key": key}});
    let path = format!("/_matrix/client/v3/rooms/{room}/send/m.reaction/{}", unique_name("r"));
    synapse.call(who, "PUT", &path, Some(&reaction)).unwrap();
}

/// The event id of the newest notice from `bot` in `room` containing `text`.
pub(crate) fn notice_id(synapse: &Synapse, reader: &Account, room: &str, bot: &str, text: &str) -> Option<String> {
    let path = format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=100");
    let reply = synapse.call(reader, "GET", &path, None).ok()?;
    reply["chunk"].as_array()?.iter().find_map(|e| {
        let body = e["content"]["body"].as_str()?;
        (e["sender"] == bot && e["content"]["msgtype"] == "m.notice" && body.contains(text))
            .then(|| e["event_id"].as_str().map(str::to_owned))
            .flatten()
    })
}

/// The bot's `m.room.server_acl` events in `room`, oldest first (their deny lists).
pub(crate) fn acl_updates_by(synapse: &Synapse, reader: &Account, room: &str, bot: &str) -> Vec<Value> {
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

pub(crate) fn put_rule(synapse: &Synapse, who: &Account, list: &str, kind: &str, key: &str, content: Value) {
    let path = format!("/_matrix/client/v3/rooms/{list}/state/m.policy.rule.{kind}/{key}");
    synapse.call(who, "PUT", &path, Some(&content)).unwrap();
}

/// The number of the option whose text contains `text`, in a safe-mode report.
pub(crate) fn option_number(report: &str, text: &str) -> usize {
    report
        .lines()
        .find(|l| l.contains(text))
        .and_then(|l| l.trim().split('.').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no option with `{text}` in:\n{report}"))
}
