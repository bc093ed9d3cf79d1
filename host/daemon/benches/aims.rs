//! The stated aims, measured against a real Synapse on loopback:
//! start time and resident memory with 50 protected rooms, and the time to
//! apply one policy rule across 50 rooms next to the time the homeserver
//! takes for the same 50 bans sent directly.
//!
//! Run: `cargo bench -p gleipnir --bench aims` (prints its figures). Under
//! `cargo test` it only says how to run it: it takes a minute and starts a
//! homeserver.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use synapse_harness::{Account, Options, Synapse, unique_name};

const ROOMS: usize = 50;

fn create_room(synapse: &Synapse, owner: &Account, invite: &[&Account]) -> String {
    let invites: Vec<&str> = invite.iter().map(|a| a.user_id.as_str()).collect();
    let body = json!({"preset": "private_chat", "invite": invites});
    synapse.call(owner, "POST", "/_matrix/client/v3/createRoom", Some(&body)).unwrap()["room_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn join(synapse: &Synapse, who: &Account, room: &str) {
    synapse.call(who, "POST", &format!("/_matrix/client/v3/join/{room}"), Some(&json!({}))).unwrap();
}

fn membership(synapse: &Synapse, reader: &Account, room: &str, user: &str) -> Option<String> {
    let path = format!("/_matrix/client/v3/rooms/{room}/state/m.room.member/{user}");
    synapse.call(reader, "GET", &path, None).ok().and_then(|v| v["membership"].as_str().map(str::to_owned))
}

fn notices(synapse: &Synapse, reader: &Account, room: &str) -> Vec<String> {
    let path = format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=50");
    let Ok(reply) = synapse.call(reader, "GET", &path, None) else { return Vec::new() };
    reply["chunk"]
        .as_array()
        .map(|c| c.iter().filter_map(|e| e["content"]["body"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn wait(what: &str, limit: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
    start.elapsed()
}

fn rss_kib(child: &Child) -> u64 {
    let mut status = String::new();
    std::fs::File::open(format!("/proc/{}/status", child.id())).unwrap().read_to_string(&mut status).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("aims: run with `cargo bench -p gleipnir --bench aims` (starts Synapse, takes about a minute)");
        return;
    }
    let synapse = Synapse::start(Options::default()).unwrap_or_else(|e| panic!("{e}"));
    let bot = synapse.register(&unique_name("bot"), "bot-password", false).unwrap();
    let moderator = synapse.register(&unique_name("mod"), "mod-password", false).unwrap();
    let targets: Vec<Account> =
        (0..2).map(|i| synapse.register(&unique_name(&format!("target{i}")), "pw", false).unwrap()).collect();
    let management = create_room(&synapse, &moderator, &[&bot]);
    join(&synapse, &bot, &management);
    let list = create_room(&synapse, &moderator, &[&bot]);
    join(&synapse, &bot, &list);
    let mut rooms = Vec::new();
    for _ in 0..ROOMS {
        let room = create_room(&synapse, &moderator, &[&bot, &targets[0], &targets[1]]);
        for who in [&bot, &targets[0], &targets[1]] {
            join(&synapse, who, &room);
        }
        // The bot may ban (v12: the creator outranks; the bot gets 100).
        let levels = format!("/_matrix/client/v3/rooms/{room}/state/m.room.power_levels/");
        let mut pl: Value = synapse.call(&moderator, "GET", &levels, None).unwrap();
        pl["users"][&bot.user_id] = json!(100);
        synapse.call(&moderator, "PUT", &levels, Some(&pl)).unwrap();
        rooms.push(room);
    }
    let write = |key: &str, content: Value| {
        let path = format!("/_matrix/client/v3/user/{}/account_data/{key}", bot.user_id);
        synapse.call(&bot, "PUT", &path, Some(&content)).unwrap();
    };
    write("org.matrix.mjolnir.protected_rooms", json!({ "rooms": rooms }));
    write("org.matrix.mjolnir.watched_lists", json!({"references": [format!("https://matrix.to/#/{list}")]}));
    write("org.matrix.mjolnir.enabled_protections", json!({"enabled": ["flooding"]}));

    // The homeserver alone: 50 bans of one user, one after another.
    let direct = Instant::now();
    for room in &rooms {
        let ban = json!({"user_id": targets[1].user_id, "reason": "direct"});
        synapse.call(&moderator, "POST", &format!("/_matrix/client/v3/rooms/{room}/ban"), Some(&ban)).unwrap();
    }
    let direct = direct.elapsed();

    let dir = std::env::temp_dir().join(unique_name("gleipnir-aims-"));
    std::fs::create_dir_all(dir.join("plugins")).unwrap();
    std::fs::copy(gleipnir_tests::plugins::FLOODING, dir.join("plugins/flooding.wasm")).unwrap();
    let config = format!(
        "[matrix]\nhomeserver = \"{}\"\nuser_id = \"{}\"\npassword = \"bot-password\"\nmanagement_room = \"{management}\"\n\
         [storage]\ndata_dir = \"data\"\n[plugins]\ndir = \"plugins\"\n\
         [protections.flooding]\ngrants = [\"redact\", \"ban\", \"notify-management\"]\n",
        synapse.url(),
        bot.user_id
    );
    std::fs::write(dir.join("config.toml"), config).unwrap();
    // It holds the password: private, as the bot requires.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("config.toml"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let binary = env!("CARGO_BIN_EXE_gleipnir");
    let mut runs = Vec::new();
    let mut child: Option<Child> = None;
    // Twice: the first run also compiles the plugin into the cache.
    for run in 0..2 {
        if let Some(mut c) = child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        let before =
            notices(&synapse, &moderator, &management).iter().filter(|n| n.contains("Gleipnir started")).count();
        let start = Instant::now();
        let c = Command::new(binary)
            .args(["run", "--config"])
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("run{run}.log"))).unwrap())
            .spawn()
            .unwrap();
        wait("the start notice", Duration::from_secs(120), || {
            notices(&synapse, &moderator, &management).iter().filter(|n| n.contains("Gleipnir started")).count()
                > before
        });
        runs.push(start.elapsed());
        child = Some(c);
    }
    let child = child.unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let rss = rss_kib(&child);

    // One rule: the bot bans the user in all 50 rooms.
    let rule = json!({"entity": targets[0].user_id, "recommendation": "m.ban", "reason": "spam"});
    let path = format!("/_matrix/client/v3/rooms/{list}/state/m.policy.rule.user/aims");
    let applied = Instant::now();
    synapse.call(&moderator, "PUT", &path, Some(&rule)).unwrap();
    wait("50 bans", Duration::from_secs(300), || {
        rooms.iter().all(|room| membership(&synapse, &moderator, room, &targets[0].user_id).as_deref() == Some("ban"))
    });
    let applied = applied.elapsed();
    let mut child = child;
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "start with {ROOMS} protected rooms (process spawn → start notice seen): first run {:.2} s (compiles the plugin), cached {:.2} s",
        runs[0].as_secs_f64(),
        runs[1].as_secs_f64()
    );
    println!("resident memory 2 s after start: {:.1} MiB", rss as f64 / 1024.0);
    println!(
        "one rule applied across {ROOMS} rooms (rule sent → all {ROOMS} bans visible): {:.2} s",
        applied.as_secs_f64()
    );
    println!(
        "the homeserver alone, {ROOMS} bans sent one after another: {:.2} s (ratio {:.2}x)",
        direct.as_secs_f64(),
        applied.as_secs_f64() / direct.as_secs_f64()
    );
}
