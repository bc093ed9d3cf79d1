//! Pre-emptive protection, measured against a real Synapse with
//! synapse-http-antispam: the round trip of `check_event_for_spam` as
//! Synapse makes it (POST to the bot's listener, five protections handling
//! the message before it lands) at a steady 200 and 1,000 requests per
//! second, and what the module adds to a message send through Synapse
//! (the same sends, same room, without and then with the module).
//!
//! Run: `cargo bench -p gleipnir --bench antispam` (prints its figures).
//! Under `cargo test` it only says how to run it.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use synapse_harness::{Account, Options, Synapse, antispam_module, unique_name};

const TOKEN: &str = "antispam-token-for-the-benchmark";
/// Sends measured through Synapse, each way.
const SENDS: usize = 300;

fn create_room(synapse: &Synapse, owner: &Account, invite: &[&Account], bot: &Account) -> String {
    let invites: Vec<&str> = invite.iter().map(|a| a.user_id.as_str()).collect();
    let body = json!({"preset": "private_chat", "invite": invites,
        "power_level_content_override": {"users": {bot.user_id.clone(): 100}}});
    synapse.call(owner, "POST", "/_matrix/client/v3/createRoom", Some(&body)).unwrap()["room_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn join(synapse: &Synapse, who: &Account, room: &str) {
    synapse.call(who, "POST", &format!("/_matrix/client/v3/join/{room}"), Some(&json!({}))).unwrap();
}

fn notices(synapse: &Synapse, reader: &Account, room: &str) -> Vec<String> {
    let path = format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=50");
    let Ok(reply) = synapse.call(reader, "GET", &path, None) else { return Vec::new() };
    reply["chunk"]
        .as_array()
        .map(|c| c.iter().filter_map(|e| e["content"]["body"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn wait(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// p50 and p99 of `samples`, in milliseconds.
fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)].as_secs_f64() * 1e3;
    (at(0.50), at(0.99))
}

/// Sends `SENDS` messages one after another; each send's round trip.
fn sends(synapse: &Synapse, who: &Account, room: &str, label: &str) -> Vec<Duration> {
    (0..SENDS)
        .map(|i| {
            let path = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{}", unique_name("t"));
            let body = json!({"msgtype": "m.text", "body": format!("{label} message {i}: nothing to see here")});
            let start = Instant::now();
            synapse.call(who, "PUT", &path, Some(&body)).unwrap();
            start.elapsed()
        })
        .collect()
}

/// `check_event_for_spam` at a steady `rate` per second for `seconds`, from
/// two threads, each request with its own event (a different sender every
/// time, so no protection acts); each round trip.
fn callbacks(port: u16, room: &str, rate: u32, seconds: u32) -> Vec<Duration> {
    let url = format!("http://127.0.0.1:{port}/api/1/spam_check/check_event_for_spam");
    let threads = 2;
    let per_thread = rate * seconds / threads;
    let interval = Duration::from_secs_f64(f64::from(threads) / f64::from(rate));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (url, room) = (url.clone(), room.to_owned());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
                let start = Instant::now();
                let mut samples = Vec::with_capacity(per_thread as usize);
                for i in 0..per_thread {
                    let due = start + interval * i;
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let event = json!({"event": {
                        "type": "m.room.message", "room_id": room, "sender": format!("@member{t}x{i}:localhost"),
                        "event_id": format!("$bench{rate}x{t}x{i}"), "origin_server_ts": 0,
                        "content": {"msgtype": "m.text", "body": "hello there, how is everyone today?"},
                    }});
                    let sent = Instant::now();
                    let reply = agent.post(&url).header("Authorization", &format!("Bearer {TOKEN}")).send_json(event);
                    let status = reply.map(|r| r.status().as_u16()).unwrap_or(0);
                    assert_eq!(status, 200, "a check was not answered with an allow");
                    samples.push(sent.elapsed());
                }
                samples
            })
        })
        .collect();
    handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "antispam: run with `cargo bench -p gleipnir --bench antispam` (starts Synapse, takes about two minutes)"
        );
        return;
    }
    let mut synapse =
        Synapse::start(Options { persistent: true, ..Options::default() }).unwrap_or_else(|e| panic!("{e}"));
    let bot = synapse.register(&unique_name("bot"), "bot-password", false).unwrap();
    let moderator = synapse.register(&unique_name("mod"), "mod-password", false).unwrap();
    let member = synapse.register(&unique_name("member"), "member-password", false).unwrap();
    let management = create_room(&synapse, &moderator, &[&bot], &bot);
    join(&synapse, &bot, &management);
    let room = create_room(&synapse, &moderator, &[&bot, &member], &bot);
    join(&synapse, &bot, &room);
    join(&synapse, &member, &room);
    let write = |key: &str, content: Value| {
        let path = format!("/_matrix/client/v3/user/{}/account_data/{key}", bot.user_id);
        synapse.call(&bot, "PUT", &path, Some(&content)).unwrap();
    };
    write("org.matrix.mjolnir.protected_rooms", json!({ "rooms": [room] }));
    let mut enabled = vec!["flooding", "newcomer-watch-words", "least-authority", "takedown"];
    let shouting = gleipnir_tests::built_with_other_toolchain("shouting", gleipnir_tests::plugins::SHOUTING);
    if shouting.is_some() {
        enabled.push("shouting");
    }
    write("org.matrix.mjolnir.enabled_protections", json!({ "enabled": enabled }));

    // Without the module: the homeserver's own time for a send.
    let without = sends(&synapse, &member, &room, "without");

    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let module = antispam_module(&format!("http://127.0.0.1:{port}/api/1/spam_check"), TOKEN);
    synapse.restart_with(&module).unwrap();
    let dir = std::env::temp_dir().join(unique_name("gleipnir-antispam-"));
    std::fs::create_dir_all(dir.join("plugins")).unwrap();
    let mut plugins = vec![
        ("flooding", gleipnir_tests::plugins::FLOODING),
        ("newcomer-watch-words", gleipnir_tests::plugins::NEWCOMER_WATCH_WORDS),
        ("least-authority", gleipnir_tests::plugins::LEAST_AUTHORITY),
        ("takedown", gleipnir_tests::plugins::TAKEDOWN),
    ];
    if let Some(path) = shouting {
        plugins.push(("shouting", path));
    }
    for (name, path) in &plugins {
        std::fs::copy(path, dir.join(format!("plugins/{name}.wasm"))).unwrap();
    }
    std::fs::write(dir.join("antispam.token"), TOKEN).unwrap();
    // The member sends SENDS messages within a minute: not a flood here.
    std::fs::write(dir.join("protections.toml"), "[flooding]\nmax-per-minute = 10000\n").unwrap();
    let config = format!(
        "[matrix]\nhomeserver = \"{}\"\nuser_id = \"{}\"\npassword = \"bot-password\"\nmanagement_room = \"{management}\"\n\
         [storage]\ndata_dir = \"data\"\n[plugins]\ndir = \"plugins\"\nsettings = \"protections.toml\"\n\
         [http]\nlisten = \"127.0.0.1:{port}\"\n[antispam]\nauthorization_file = \"antispam.token\"\n\
         [protections.flooding]\ngrants = [\"redact\", \"ban\", \"notify-management\"]\n\
         [protections.newcomer-watch-words]\ngrants = [\"redact\", \"ban\", \"notify-management\"]\n\
         [protections.least-authority]\ngrants = [\"redact\", \"send-notice\", \"notify-management\"]\n\
         [protections.takedown]\ngrants = [\"redact\", \"ban\", \"notify-management\"]\n\
         [protections.shouting]\ngrants = [\"redact\", \"notify-management\"]\ninstances = 16\n",
        synapse.url(),
        bot.user_id
    );
    std::fs::write(dir.join("config.toml"), config).unwrap();
    use std::os::unix::fs::PermissionsExt;
    for file in ["config.toml", "antispam.token"] {
        std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut child: Child = Command::new(env!("CARGO_BIN_EXE_gleipnir"))
        .args(["run", "--config"])
        .arg(dir.join("config.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("gleipnir.log")).unwrap())
        .spawn()
        .unwrap();
    wait("the start notice", Duration::from_secs(120), || {
        notices(&synapse, &moderator, &management).iter().any(|n| n.contains("Gleipnir started"))
    });
    std::thread::sleep(Duration::from_secs(1));

    let with = sends(&synapse, &member, &room, "with");
    // Warm up the listener and the instances, then the steady rates.
    callbacks(port, &room, 200, 1);
    let at_200 = callbacks(port, &room, 200, 10);
    let at_1000 = callbacks(port, &room, 1000, 10);
    child.kill().unwrap();
    child.wait().unwrap();
    let log = std::fs::read_to_string(dir.join("gleipnir.log")).unwrap_or_default();
    let missed = log.matches("missed its deadline").count();
    let _ = std::fs::remove_dir_all(&dir);

    println!("protections enabled: {}", enabled.join(", "));
    for (label, samples) in [("200/s", at_200), ("1000/s", at_1000)] {
        let n = samples.len();
        let (p50, p99) = percentiles(samples);
        println!("check_event_for_spam at {label} ({n} requests): p50 {p50:.2} ms, p99 {p99:.2} ms");
    }
    println!("checks past the deadline (answered by the fallback): {missed}");
    let (w50, w99) = percentiles(without);
    let (m50, m99) = percentiles(with);
    println!(
        "a message send through Synapse ({SENDS} each): without the module p50 {w50:.2} ms, p99 {w99:.2} ms; \
         with it p50 {m50:.2} ms, p99 {m99:.2} ms; added p50 {:.2} ms, p99 {:.2} ms",
        m50 - w50,
        m99 - w99
    );
}
