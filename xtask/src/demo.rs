//! `cargo xtask demo`: a local Synapse on loopback (installed on first use),
//! a bot and a moderator account, a management room and one protected room,
//! the plugins built, and Gleipnir running with flooding enabled, Synapse
//! asking it before accepting a message (synapse-http-antispam, installed
//! beside Synapse). Then a short scene is played (unless `--no-scene`): a
//! moderator enables least-authority, a newcomer posts a link, a spammer
//! floods, a moderator changes a setting, and the audit trail says what the
//! bot did; each step is printed with its time. Prints how to log in; Ctrl-C
//! stops Gleipnir and Synapse and removes what they made.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use synapse_harness::{Account, Options, Synapse};

/// Set by Ctrl-C.
static STOP: AtomicBool = AtomicBool::new(false);

/// One step of the set-up: says it, runs it, says how long it took.
fn step<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    eprintln!("==> {what}");
    let start = Instant::now();
    let result = f()?;
    eprintln!("    done in {:.1} s", start.elapsed().as_secs_f64());
    Ok(result)
}

pub(crate) fn run(root: &Path, build_plugins: fn() -> Result<Vec<PathBuf>, String>, scene: bool) -> Result<(), String> {
    // Ctrl-C reaches Gleipnir and Synapse too (one process group); this
    // process stays to wait for them and clean up after them.
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe { signal_hook_registry::register(libc::SIGINT, || STOP.store(true, Ordering::SeqCst)) }
        .map_err(|e| format!("cannot handle Ctrl-C: {e}"))?;
    step("building the protections (target/plugins)", || build_plugins().map(|_| ()))?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    // The same build the tests use (`cargo test` builds this binary too).
    step("building gleipnir (target/debug/gleipnir, as the tests build it)", || {
        let status = Command::new(&cargo)
            .args(["build", "-p", "gleipnir"])
            .current_dir(root)
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if status.success() { Ok(()) } else { Err("building gleipnir failed".to_owned()) }
    })?;

    // The bot's listener: a free port, and a token the module sends.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("cannot find a free port: {e}"))?
        .port();
    let token = format!("demo-antispam-{}-{port}", std::process::id());
    let module =
        synapse_harness::antispam_module_with(&format!("http://127.0.0.1:{port}/api/1/spam_check"), &token, true);
    let what = format!(
        "starting Synapse {} on loopback, with synapse-http-antispam {} (installed into .venv-synapse on first use)",
        synapse_harness::SYNAPSE_VERSION,
        synapse_harness::ANTISPAM_VERSION
    );
    let synapse = step(&what, || Synapse::start(Options { extra_config: module, ..Options::default() }))?;
    let password = format!("demo-{}", std::process::id());
    let bot = synapse.register("gleipnir", &format!("bot-{password}"), false)?;
    let moderator = synapse.register("moderator", &password, false)?;

    let create = |name: &str, invite: &[&str]| {
        let body = json!({"name": name, "preset": "private_chat", "invite": invite,
            "power_level_content_override": {"users": {bot.user_id.clone(): 100}}});
        synapse
            .call(&moderator, "POST", "/_matrix/client/v3/createRoom", Some(&body))
            .map(|r| r["room_id"].as_str().unwrap_or_default().to_owned())
    };
    let management = create("Gleipnir management", &[&bot.user_id])?;
    let protected = create("Lobby", &[&bot.user_id])?;
    let account_data = |kind: &str, content: serde_json::Value| {
        let path = format!("/_matrix/client/v3/user/{}/account_data/{kind}", bot.user_id);
        synapse.call(&bot, "PUT", &path, Some(&content)).map(|_| ())
    };
    account_data("org.matrix.mjolnir.protected_rooms", json!({"rooms": [protected]}))?;
    account_data("org.matrix.mjolnir.enabled_protections", json!({"enabled": ["flooding"]}))?;

    let dir = root.join("data/demo");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let _ = std::fs::remove_file(dir.join("sync_token"));
    let config = format!(
        r#"# Written by `cargo xtask demo`.
[matrix]
homeserver = "{homeserver}"
user_id = "{bot}"
password = "{bot_password}"
management_room = "{management}"
[storage]
data_dir = "."
[plugins]
dir = "{plugins}"
# Synapse asks before it accepts a message, a join or an invite.
[http]
listen = "127.0.0.1:{port}"
[antispam]
authorization_file = "antispam.token"
[protections.flooding]
grants = ["redact", "ban", "notify-management"]
errcode = "M_LIMIT_EXCEEDED"
# The protection in Python (built when componentize-py is installed) needs a
# larger sandbox than a Rust one.
[protections.shouting]
grants = ["redact"]
instances = 16
{grants}"#,
        grants = first_party_grants(),
        homeserver = synapse.url(),
        bot = bot.user_id,
        bot_password = bot.password,
        plugins = root.join("target/plugins").display(),
    );
    std::fs::write(dir.join("config.toml"), config).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("antispam.token"), &token).map_err(|e| e.to_string())?;
    // They hold the bot's password and the module's token: private, as Gleipnir requires.
    #[cfg(unix)]
    for file in ["config.toml", "antispam.token"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())?;
    }

    let mut gleipnir = Command::new(root.join("target/debug/gleipnir"))
        .args(["run", "--config"])
        .arg(dir.join("config.toml"))
        .stderr(std::fs::File::create(dir.join("gleipnir.log")).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("cannot start gleipnir: {e}"))?;
    let demo = Demo { synapse: &synapse, bot: &bot, moderator: &moderator, management: &management };
    let started = step("starting Gleipnir (its log: data/demo/gleipnir.log)", || {
        demo.wait_for("the bot's start notice", Duration::from_secs(120), |n| n.contains("Gleipnir started"))
    });
    let played = started.and_then(|_| if scene { demo.play(&protected) } else { Ok(()) });
    if let Err(e) = &played {
        eprintln!("xtask: {e}");
    }

    println!();
    println!("Gleipnir demo");
    println!("  homeserver:       {}", synapse.url());
    println!("  log in as:        {} / {}", moderator.user_id, password);
    println!("  management room:  {management}  (try: !gleipnir help)");
    println!(
        "  protected room:   Lobby {protected}  (invite someone and let them flood it: the 11th message is refused)"
    );
    println!("  health, metrics:  http://127.0.0.1:{port}/healthz  http://127.0.0.1:{port}/metrics");
    println!("  config, log:      {}  {}", dir.join("config.toml").display(), dir.join("gleipnir.log").display());
    println!("Ctrl-C stops Gleipnir and Synapse and removes what they made.");
    println!();

    let exited = loop {
        if STOP.load(Ordering::SeqCst) || played.is_err() {
            break None;
        }
        if let Ok(Some(status)) = gleipnir.try_wait() {
            break Some(status);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("==> stopping Gleipnir and Synapse");
    if exited.is_none() {
        // It got the Ctrl-C too; give it a moment to stop on its own.
        let deadline = Instant::now() + Duration::from_secs(10);
        while gleipnir.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = gleipnir.kill();
        let _ = gleipnir.wait();
    }
    drop(synapse);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("    removed Synapse's folder and {}", dir.display());
    match (exited, played) {
        (Some(status), _) if !status.success() => {
            Err(format!("gleipnir exited ({status}); its log was in {}", dir.display()))
        }
        (_, Err(e)) => Err(e),
        _ => Ok(()),
    }
}

/// `M_FORBIDDEN: reason` out of the harness's error text (which carries
/// the request and the homeserver's JSON answer).
fn refusal(error: &str) -> String {
    let answer = error.find('{').and_then(|at| serde_json::from_str::<serde_json::Value>(&error[at..]).ok());
    match answer {
        Some(v) => {
            format!("{}: {}", v["errcode"].as_str().unwrap_or("refused"), v["error"].as_str().unwrap_or_default())
        }
        None => error.to_owned(),
    }
}

/// The demo's accounts and rooms, for the scene.
struct Demo<'a> {
    synapse: &'a Synapse,
    bot: &'a Account,
    moderator: &'a Account,
    management: &'a str,
}

impl Demo<'_> {
    /// The bot's notices in the management room, oldest first.
    fn notices(&self) -> Vec<String> {
        let path = format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=100", self.management);
        let Ok(reply) = self.synapse.call(self.moderator, "GET", &path, None) else { return Vec::new() };
        let mut out: Vec<String> = reply["chunk"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["sender"] == self.bot.user_id.as_str() && e["content"]["msgtype"] == "m.notice")
            .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
            .collect();
        out.reverse();
        out
    }

    fn wait_for(&self, what: &str, limit: Duration, found: impl Fn(&str) -> bool) -> Result<String, String> {
        let start = Instant::now();
        while start.elapsed() < limit && !STOP.load(Ordering::SeqCst) {
            if let Some(n) = self.notices().into_iter().rev().find(|n| found(n)) {
                return Ok(n);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!("gave up waiting for {what}"))
    }

    /// A moderator's command and the bot's reply (its first lines).
    fn command(&self, text: &str, expect: &str) -> Result<String, String> {
        let before = self.notices().len();
        self.send(self.moderator, self.management, &format!("!gleipnir {text}"))?;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            let all = self.notices();
            if let Some(reply) = all.iter().skip(before).find(|n| n.contains(expect)) {
                return Ok(reply.clone());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!("no reply to `{text}`"))
    }

    /// Sends a message: its event id, or the homeserver's refusal as `ERRCODE: reason`.
    fn send(&self, who: &Account, room: &str, body: &str) -> Result<String, String> {
        let path = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{}", synapse_harness::unique_name("d"));
        let reply = self
            .synapse
            .call(who, "PUT", &path, Some(&json!({"msgtype": "m.text", "body": body})))
            .map_err(|e| refusal(&e))?;
        match reply["event_id"].as_str() {
            Some(id) => Ok(id.to_owned()),
            None => Err(format!(
                "{}: {}",
                reply["errcode"].as_str().unwrap_or("refused"),
                reply["error"].as_str().unwrap_or_default()
            )),
        }
    }

    fn member(&self, name: &str, room: &str) -> Result<Account, String> {
        let account = self.synapse.register(&synapse_harness::unique_name(name), "demo-password", false)?;
        let invite = format!("/_matrix/client/v3/rooms/{room}/invite");
        self.synapse.call(self.moderator, "POST", &invite, Some(&json!({"user_id": account.user_id})))?;
        self.synapse.call(&account, "POST", &format!("/_matrix/client/v3/join/{room}"), Some(&json!({})))?;
        Ok(account)
    }

    fn membership(&self, room: &str, user: &str) -> String {
        let path = format!("/_matrix/client/v3/rooms/{room}/state/m.room.member/{user}");
        self.synapse
            .call(self.moderator, "GET", &path, None)
            .ok()
            .and_then(|v| v["membership"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    fn is_redacted(&self, room: &str, event: &str) -> bool {
        let path = format!("/_matrix/client/v3/rooms/{room}/event/{event}");
        self.synapse
            .call(self.moderator, "GET", &path, None)
            .is_ok_and(|e| e["content"].as_object().is_some_and(|c| c.is_empty()))
    }

    /// The scene: each step printed with what the bot did and when.
    fn play(&self, lobby: &str) -> Result<(), String> {
        let start = Instant::now();
        let at = || format!("[{:>5.1} s]", start.elapsed().as_secs_f64());
        println!();
        println!("The scene (cargo xtask demo --no-scene skips it):");

        println!("{} A moderator enables least-authority in the management room…", at());
        let reply = self.command("protections enable least-authority", "least-authority")?;
        println!("{}   Gleipnir: {}", at(), reply.lines().next().unwrap_or_default());

        println!("{} A newcomer joins Lobby and posts a link…", at());
        let newcomer = self.member("newcomer", lobby)?;
        match self.send(&newcomer, lobby, "hi all! free crypto at https://spam.example/win") {
            Err(refused) => println!("{}   refused by the homeserver before anyone saw it ({refused})", at()),
            Ok(event) => {
                let sent = Instant::now();
                while !self.is_redacted(lobby, &event) && sent.elapsed() < Duration::from_secs(30) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                println!("{}   redacted {} ms after it was sent", at(), sent.elapsed().as_millis());
            }
        }

        println!("{} A spammer floods Lobby with 12 messages…", at());
        let spammer = self.member("spammer", lobby)?;
        let (mut accepted, mut refused) = (0, None);
        for i in 1..=12 {
            match self.send(&spammer, lobby, &format!("BUY NOW {i}")) {
                Ok(_) => accepted += 1,
                Err(e) if refused.is_none() => refused = Some((i, e)),
                Err(_) => {}
            }
        }
        if let Some((i, e)) = &refused {
            println!("{}   {accepted} accepted; message {i} and the rest refused by the homeserver ({e})", at());
        }
        let flood = Instant::now();
        while self.membership(lobby, &spammer.user_id) != "ban" && flood.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(50));
        }
        match self.membership(lobby, &spammer.user_id).as_str() {
            "ban" => println!("{}   the spammer is banned, {} ms after the flood", at(), flood.elapsed().as_millis()),
            other => println!("{}   the spammer's membership is still `{other}`", at()),
        }

        println!("{} The moderator lowers the flood limit to 5 a minute…", at());
        let reply = self.command("protections config set flooding max-per-minute 5", "max-per-minute")?;
        println!("{}   Gleipnir: {}", at(), reply.lines().next().unwrap_or_default());

        println!("{} What the bot did, from its audit trail (`!gleipnir audit`):", at());
        let audit = self.command("audit --limit 8", "Audit trail")?;
        for line in audit.lines().skip(1) {
            println!("           {line}");
        }
        Ok(())
    }
}

/// The grants `config.example.toml` gives the first-party protections (the
/// block that opens with "What each first-party protection's README asks
/// for"), so the demo's bot acts as soon as a moderator enables one.
fn first_party_grants() -> String {
    const EXAMPLE: &str = include_str!("../../config.example.toml");
    let start = EXAMPLE.find("# What each first-party protection's README asks for").unwrap_or(EXAMPLE.len());
    let rest = &EXAMPLE[start..];
    let end = rest.find("\n# A protection may get a sandbox of its own").unwrap_or(rest.len());
    format!("\n{}", &rest[..end].trim_end())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_demo_grants_what_the_example_grants() {
        let grants = super::first_party_grants();
        for name in ["least-authority", "mention-limit", "join-wave", "invalid-event"] {
            assert!(grants.contains(&format!("[protections.{name}]\ngrants = [")), "{name}: {grants}");
        }
        assert!(!grants.contains("sandbox of its own"), "only the grants block: {grants}");
    }

    #[test]
    fn a_refusal_is_said_by_its_errcode_and_reason() {
        let error = r#"PUT /_matrix/client/v3/rooms/!r/send/m.room.message/x: 403 Forbidden: {"errcode":"M_LIMIT_EXCEEDED","error":"flooding"}"#;
        assert_eq!(super::refusal(error), "M_LIMIT_EXCEEDED: flooding");
        assert_eq!(super::refusal("connection refused"), "connection refused");
    }
}
