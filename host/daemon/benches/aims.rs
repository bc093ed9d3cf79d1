//! The stated aims (issue 17), measured against a real Synapse on loopback,
//! each beside the homeserver's own floor for the same work, in the same run:
//!
//! - start → ready with N protected rooms (first start, then a restart), and
//!   the bot's own breakdown of it (its "ready in" log line);
//! - resident memory after start, and after watching a 1,000-rule list;
//! - a flood: the message that makes it one → the ban, and the last message
//!   → the last redaction, by the homeserver's own timestamps, beside one
//!   direct ban call;
//! - one rule → banned in all N rooms, beside the same N bans sent directly
//!   one after another and 16 at a time;
//! - watching a list that already holds 1,000 rules (one of them names a
//!   member of every room) → banned in all N rooms, beside the same floor;
//! - the bot's CPU time for 1,000 rule changes in a watched list.
//!
//! Run: `cargo bench -p gleipnir --bench aims` (50 rooms of 20 members), or
//! `cargo bench -p gleipnir --bench aims -- --rooms 1000 --members 20
//! --rules 1000 --held-rules 100000` (`--held-rules`: rules the bot watches
//! from its first start, in lists of 1,000: Synapse writes a full state
//! snapshot every 100 state events of a room, so one list of 100,000 would
//! take hours to build). Under `cargo test` it only says how to run it: it starts a
//! homeserver and takes minutes.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use synapse_harness::{Account, Options, Synapse, unique_name};

/// Requests the bench itself has out at once when setting up or measuring
/// the concurrent floor (the bot's executor allows 16).
const AT_ONCE: usize = 16;
/// Members every room has besides the bot and its creator that take part
/// in the figures; the rest only fill the rooms.
const NAMED_MEMBERS: usize = 7;

/// The bot's CPU time so far (user and system), from `/proc`.
fn cpu_time(child: &Child) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
    // The fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let per_second: u64 = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(100);
    Duration::from_secs_f64(ticks as f64 / per_second as f64)
}

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

fn timeline(synapse: &Synapse, reader: &Account, room: &str) -> Vec<Value> {
    let path = format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=200");
    let Ok(reply) = synapse.call(reader, "GET", &path, None) else { return Vec::new() };
    reply["chunk"].as_array().cloned().unwrap_or_default()
}

fn notices(synapse: &Synapse, reader: &Account, room: &str) -> Vec<(String, String)> {
    timeline(synapse, reader, room)
        .iter()
        .filter_map(|e| Some((e["event_id"].as_str()?.to_owned(), e["content"]["body"].as_str()?.to_owned())))
        .collect()
}

fn wait(what: &str, limit: Duration, check: impl FnMut() -> bool) -> Duration {
    wait_every(what, limit, Duration::from_millis(10), check)
}

/// [`wait`], asking only every `every`: while the bot is being measured, so
/// that the bench's own reads take little of the homeserver's time (its
/// floors are measured with nobody else asking).
fn wait_every(what: &str, limit: Duration, every: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out: {what}");
        std::thread::sleep(every);
    }
    start.elapsed()
}

/// How long the bench waits between its reads while the bot is at work.
const WATCHING: Duration = Duration::from_millis(100);

fn rss_kib(child: &Child) -> u64 {
    status_kib(child, "VmRSS:")
}

/// A figure of `/proc/PID/status` in KiB: `VmRSS:` now, `VmHWM:` at its peak.
fn status_kib(child: &Child, field: &str) -> u64 {
    let mut status = String::new();
    std::fs::File::open(format!("/proc/{}/status", child.id())).unwrap().read_to_string(&mut status).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Runs `work` on each item, `AT_ONCE` threads taking turns.
fn at_once<T: Sync>(items: &[T], work: impl Fn(&T) + Sync) {
    by_threads(AT_ONCE, items, work);
}

/// Runs `work` on each item, `threads` threads taking turns.
fn by_threads<T: Sync>(threads: usize, items: &[T], work: impl Fn(&T) + Sync) {
    let next = Mutex::new(0usize);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = {
                        let mut next = next.lock().unwrap();
                        *next += 1;
                        *next - 1
                    };
                    let Some(item) = items.get(i) else { break };
                    work(item);
                }
            });
        }
    });
}

fn ban(synapse: &Synapse, by: &Account, room: &str, user: &str) {
    let body = json!({"user_id": user, "reason": "direct"});
    synapse.call(by, "POST", &format!("/_matrix/client/v3/rooms/{room}/ban"), Some(&body)).unwrap();
}

/// The homeserver's timestamp of an event.
fn event_ts(synapse: &Synapse, reader: &Account, room: &str, event: &str) -> u64 {
    let path = format!("/_matrix/client/v3/rooms/{room}/event/{event}");
    synapse.call(reader, "GET", &path, None).unwrap()["origin_server_ts"].as_u64().unwrap()
}

/// Waits until `user` is banned in every room (one read every `WATCHING`
/// about a room not yet seen banned, to load the homeserver little), then
/// the homeserver's timestamp of the last of those bans.
fn last_ban_ts(synapse: &Synapse, reader: &Account, rooms: &[String], user: &str) -> u64 {
    let start = Instant::now();
    let mut left: Vec<&String> = rooms.iter().collect();
    while !left.is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "timed out: {} rooms without the ban of {user}",
            left.len()
        );
        // One read at a time, `WATCHING` apart: the bot's bans are measured
        // by their own timestamps, so watching slowly only makes the wait
        // longer, not the figure.
        if membership(synapse, reader, left[0], user).as_deref() == Some("ban") {
            left.remove(0);
        } else {
            left.rotate_left(1);
        }
        std::thread::sleep(WATCHING);
    }
    let ts = Mutex::new(0u64);
    at_once(rooms, |room| {
        let state = synapse.call(reader, "GET", &format!("/_matrix/client/v3/rooms/{room}/state"), None).unwrap();
        let ban = state
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "m.room.member" && e["state_key"] == user)
            .and_then(|e| e["origin_server_ts"].as_u64())
            .unwrap();
        let mut ts = ts.lock().unwrap();
        *ts = (*ts).max(ban);
    });
    ts.into_inner().unwrap()
}

/// The floor for `rooms` bans: sent one after another, and `AT_ONCE` at a
/// time (of two users present everywhere); the faster is the floor.
fn ban_floor(synapse: &Synapse, by: &Account, rooms: &[String], one: &str, other: &str) -> (Duration, Duration) {
    let serial = Instant::now();
    for room in rooms {
        ban(synapse, by, room, one);
    }
    let serial = serial.elapsed();
    let together = Instant::now();
    at_once(rooms, |room| ban(synapse, by, room, other));
    (serial, together.elapsed())
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!(
            "aims: run with `cargo bench -p gleipnir --bench aims [-- --rooms N --members M --rules R --held-rules H]` (starts Synapse, takes minutes)"
        );
        return;
    }
    let number = |flag: &str, default: usize| {
        args.windows(2).find(|w| w[0] == flag).map_or(default, |w| w[1].parse().unwrap_or_else(|_| panic!("{flag} N")))
    };
    let rooms_wanted = number("--rooms", 50);
    let members_wanted = number("--members", 20).max(NAMED_MEMBERS);
    let list_rules = number("--rules", 1000);
    let held_rules = number("--held-rules", 0);
    let synapse = Synapse::start(Options::default()).unwrap_or_else(|e| panic!("{e}"));
    let bot = synapse.register(&unique_name("bot"), "bot-password", false).unwrap();
    let moderator = synapse.register(&unique_name("mod"), "mod-password", false).unwrap();
    // Members of every room: one for the rule, two for the floors, one for the
    // watched list, one for the direct ban, one for the end of the rule
    // changes, one whose messages are redacted directly; the rest fill the rooms.
    let members: Vec<Account> = (0..members_wanted)
        .map(|i| synapse.register(&unique_name(&format!("member{i}")), "pw", false).unwrap())
        .collect();
    let spammer = synapse.register(&unique_name("spammer"), "pw", false).unwrap();
    let management = create_room(&synapse, &moderator, &[&bot]);
    join(&synapse, &bot, &management);
    let list = create_room(&synapse, &moderator, &[&bot]);
    join(&synapse, &bot, &list);

    let setup = Instant::now();
    let rooms = Mutex::new(Vec::new());
    let slots: Vec<usize> = (0..rooms_wanted).collect();
    at_once(&slots, |_| {
        let mut invited: Vec<&Account> = members.iter().collect();
        invited.push(&bot);
        let room = create_room(&synapse, &moderator, &invited);
        for who in &invited {
            join(&synapse, who, &room);
        }
        // The bot may ban and redact (v12: the creator outranks; the bot gets 100).
        let levels = format!("/_matrix/client/v3/rooms/{room}/state/m.room.power_levels/");
        let mut pl: Value = synapse.call(&moderator, "GET", &levels, None).unwrap();
        pl["users"][&bot.user_id] = json!(100);
        synapse.call(&moderator, "PUT", &levels, Some(&pl)).unwrap();
        rooms.lock().unwrap().push(room);
    });
    let rooms = rooms.into_inner().unwrap();
    // The flood happens in the first room.
    let flooded = rooms[0].clone();
    synapse
        .call(
            &moderator,
            "POST",
            &format!("/_matrix/client/v3/rooms/{flooded}/invite"),
            Some(&json!({"user_id": spammer.user_id})),
        )
        .unwrap();
    join(&synapse, &spammer, &flooded);
    // A member of one room only: the rule naming them costs the bot one ban,
    // so the CPU it takes is the rule changes' own.
    let lone = synapse.register(&unique_name("lone"), "pw", false).unwrap();
    let lone_room = rooms[rooms.len() - 1].clone();
    let invite = json!({"user_id": lone.user_id});
    synapse.call(&moderator, "POST", &format!("/_matrix/client/v3/rooms/{lone_room}/invite"), Some(&invite)).unwrap();
    join(&synapse, &lone, &lone_room);
    // A list of 1,000 rules, one of them naming a member of every room.
    let big_list = create_room(&synapse, &moderator, &[&bot]);
    let rules: Vec<(String, String)> = (0..list_rules)
        .map(|i| {
            let entity =
                if i == list_rules / 2 { members[3].user_id.clone() } else { format!("@nobody{i}:elsewhere.example") };
            (format!("rule{i}"), entity)
        })
        .collect();
    at_once(&rules, |(key, entity)| {
        let rule = json!({"entity": entity, "recommendation": "m.ban", "reason": "listed"});
        let path = format!("/_matrix/client/v3/rooms/{big_list}/state/m.policy.rule.user/{key}");
        synapse.call(&moderator, "PUT", &path, Some(&rule)).unwrap();
    });
    // Rules held from the first start, naming nobody here, in lists of 1,000,
    // each list created with its rules as initial state (one request, and
    // Synapse persists them together: half again as fast as one `PUT` each).
    let list_starts: Vec<usize> = (0..held_rules).step_by(1000).collect();
    let held_lists = Mutex::new(Vec::new());
    at_once(&list_starts, |&start| {
        let rules: Vec<Value> = (start..held_rules.min(start + 1000))
            .map(|i| {
                json!({"type": "m.policy.rule.user", "state_key": format!("held{i}"),
                    "content": {"entity": format!("@held{i}:elsewhere.example"), "recommendation": "m.ban", "reason": "spam"}})
            })
            .collect();
        let body = json!({"preset": "private_chat", "invite": [bot.user_id], "initial_state": rules});
        let reply = synapse.call(&moderator, "POST", "/_matrix/client/v3/createRoom", Some(&body)).unwrap();
        let held = reply["room_id"].as_str().unwrap().to_owned();
        join(&synapse, &bot, &held);
        held_lists.lock().unwrap().push(held);
    });
    let held_lists = held_lists.into_inner().unwrap();
    println!(
        "set-up: {} rooms of {} members, a {list_rules}-rule list, {held_rules} rules held in {} lists, in {:.1} s",
        rooms.len(),
        members.len(),
        held_lists.len(),
        setup.elapsed().as_secs_f64()
    );

    let write = |key: &str, content: Value| {
        let path = format!("/_matrix/client/v3/user/{}/account_data/{key}", bot.user_id);
        synapse.call(&bot, "PUT", &path, Some(&content)).unwrap();
    };
    write("org.matrix.mjolnir.protected_rooms", json!({ "rooms": rooms }));
    let references: Vec<String> =
        std::iter::once(&list).chain(&held_lists).map(|l| format!("https://matrix.to/#/{l}")).collect();
    write("org.matrix.mjolnir.watched_lists", json!({ "references": references }));
    write("org.matrix.mjolnir.enabled_protections", json!({"enabled": ["flooding"]}));

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
    // The floor of a first start: the homeserver's own password login for
    // the bot's account, then its full-state sync with the filter a first
    // start asks with (no timeline), before the first start (the
    // homeserver's caches cold) and after it (warm). A device of its own,
    // so the homeserver cannot answer the bot from this request's cached
    // reply.
    let full_sync = || {
        let asked = Instant::now();
        let body = json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": bot.user_id},
            "password": "bot-password"});
        let login = synapse.call(&bot, "POST", "/_matrix/client/v3/login", Some(&body)).unwrap();
        let logged_in = asked.elapsed();
        let session = Account { access_token: login["access_token"].as_str().unwrap().to_owned(), ..bot.clone() };
        let filter = "%7B%22room%22%3A%7B%22timeline%22%3A%7B%22limit%22%3A0%7D%7D%7D";
        let asked = Instant::now();
        let bytes = synapse.get_whole(&session, &format!("/_matrix/client/v3/sync?filter={filter}")).unwrap();
        (logged_in, asked.elapsed(), bytes)
    };
    let floor_cold = full_sync();
    let mut starts = Vec::new();
    let mut child: Option<Child> = None;
    // Twice: the first start also logs in with the password and compiles the
    // plugin; the second reuses the stored session and the compiled plugin.
    for run in 0..2 {
        if let Some(mut c) = child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        let started = || -> Vec<String> {
            let all = notices(&synapse, &moderator, &management);
            all.into_iter().filter(|(_, n)| n.contains("Gleipnir started")).map(|(id, _)| id).collect()
        };
        let before = started().len();
        let log = dir.join(format!("run{run}.log"));
        // The homeserver's clock is this machine's: the start notice's own
        // timestamp, against the spawn, needs no quick polling (which would
        // take the homeserver's time from the bot's first sync).
        let spawned_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        let c = Command::new(binary)
            .args(["run", "--config"])
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        wait_every("the start notice", Duration::from_secs(600), WATCHING, || started().len() > before);
        let notice = started().into_iter().next().expect("the newest start notice");
        let took = Duration::from_millis(event_ts(&synapse, &moderator, &management, &notice) - spawned_ms);
        let said = std::fs::read_to_string(&log).unwrap_or_default();
        let ready = said.lines().find_map(|l| l.split_once("ready in ").map(|(_, r)| r.to_owned())).unwrap_or_default();
        starts.push((took, ready));
        child = Some(c);
    }
    let mut child = child.unwrap();
    let floor_warm = full_sync();
    std::thread::sleep(Duration::from_secs(2));
    let rss_start = rss_kib(&child);
    // The peak so far: the restart's own (reading the kept state, the lists).
    let peak_start = status_kib(&child, "VmHWM:");

    // A flood in the first room: the spammer sends until refused.
    let flood_start = Instant::now();
    let mut sent = Vec::new();
    for i in 0..40 {
        let path = format!("/_matrix/client/v3/rooms/{flooded}/send/m.room.message/{}", unique_name("f"));
        match synapse.call(&spammer, "PUT", &path, Some(&json!({"msgtype": "m.text", "body": format!("flood {i}")}))) {
            Ok(reply) => sent.push(reply["event_id"].as_str().unwrap().to_owned()),
            Err(_) => break,
        }
    }
    wait_every("the flood banned and redacted", Duration::from_secs(120), Duration::from_millis(250), || {
        let events = timeline(&synapse, &moderator, &flooded);
        let redacted =
            events.iter().filter(|e| e["type"] == "m.room.redaction" && e["sender"] == bot.user_id.as_str()).count();
        redacted >= sent.len()
    });
    let flood_took = flood_start.elapsed();
    let events = timeline(&synapse, &moderator, &flooded);
    let ts = |e: &Value| e["origin_server_ts"].as_u64().unwrap();
    let sent_ts: Vec<u64> =
        sent.iter().map(|id| events.iter().find(|e| e["event_id"] == id.as_str()).map(ts).unwrap()).collect();
    let ban_ts = events
        .iter()
        .find(|e| {
            e["type"] == "m.room.member"
                && e["state_key"] == spammer.user_id.as_str()
                && e["content"]["membership"] == "ban"
        })
        .map(ts)
        .expect("the spammer's ban");
    let redaction_ts: Vec<u64> = events
        .iter()
        .filter(|e| e["type"] == "m.room.redaction" && e["sender"] == bot.user_id.as_str())
        .map(ts)
        .collect();
    let (first_redaction_ts, last_redaction_ts) =
        (*redaction_ts.iter().min().unwrap(), *redaction_ts.iter().max().unwrap());
    // The flood is the 11th message (flooding's default: 10 a minute).
    let trip_ts = sent_ts[10];
    let last_ts = *sent_ts.last().unwrap();

    // One direct ban call, the floor for the flood: the median of 9, each of
    // a user present in one room (the spammer's room's other members are
    // needed below: these are rooms 1..10).
    let direct_ban = median(
        rooms[1..10.min(rooms.len())]
            .iter()
            .map(|room| {
                let t = Instant::now();
                ban(&synapse, &moderator, room, &members[4].user_id);
                t.elapsed()
            })
            .collect(),
    );

    // The floor for the flood's clean-up: as many messages as the flood, sent
    // by a member in another room, redacted directly 4 at a time (the bot's
    // bound in one room), then as many again 16 at a time; the faster counts.
    // A room the bot does not protect: there, flooding does not stop the sender.
    let cleaned = &create_room(&synapse, &moderator, &[&members[6]]);
    join(&synapse, &members[6], cleaned);
    let redact_directly = |at_once_here: usize| {
        let messages: Vec<String> = (0..sent.len())
            .map(|i| {
                let path = format!("/_matrix/client/v3/rooms/{cleaned}/send/m.room.message/{}", unique_name("m"));
                let body = json!({"msgtype": "m.text", "body": format!("message {i}")});
                synapse.call(&members[6], "PUT", &path, Some(&body)).unwrap()["event_id"].as_str().unwrap().to_owned()
            })
            .collect();
        let redacting = Instant::now();
        by_threads(at_once_here, &messages, |event| {
            let path = format!("/_matrix/client/v3/rooms/{cleaned}/redact/{event}/{}", unique_name("r"));
            synapse.call(&moderator, "PUT", &path, Some(&json!({"reason": "direct"}))).unwrap();
        });
        redacting.elapsed()
    };
    let redactions_by_4 = redact_directly(4);
    let redactions_by_16 = redact_directly(16);
    let direct_redactions = redactions_by_4.min(redactions_by_16);

    // The floor for N bans, then one rule → banned in all N rooms.
    let (serial, together) = ban_floor(&synapse, &moderator, &rooms, &members[1].user_id, &members[2].user_id);
    let floor = serial.min(together);
    let rule = json!({"entity": members[0].user_id, "recommendation": "m.ban", "reason": "spam"});
    let path = format!("/_matrix/client/v3/rooms/{list}/state/m.policy.rule.user/aims");
    let put = synapse.call(&moderator, "PUT", &path, Some(&rule)).unwrap();
    let rule_ts = event_ts(&synapse, &moderator, &list, put["event_id"].as_str().unwrap());
    let applied = Duration::from_millis(last_ban_ts(&synapse, &moderator, &rooms, &members[0].user_id) - rule_ts);

    // Watch the 1,000-rule list: the preview, then ✅ → banned everywhere.
    let command = format!("!gleipnir watch {big_list}");
    let path = format!("/_matrix/client/v3/rooms/{management}/send/m.room.message/{}", unique_name("c"));
    synapse.call(&moderator, "PUT", &path, Some(&json!({"msgtype": "m.text", "body": command}))).unwrap();
    let mut preview = None;
    wait("the watch preview", Duration::from_secs(120), || {
        preview = notices(&synapse, &moderator, &management)
            .into_iter()
            .find(|(_, n)| n.contains("React with ✅") && n.contains(&members[3].user_id))
            .map(|(id, _)| id);
        preview.is_some()
    });
    let reaction = json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": preview.unwrap(), "key": "✅"}});
    let path = format!("/_matrix/client/v3/rooms/{management}/send/m.reaction/{}", unique_name("r"));
    let put = synapse.call(&moderator, "PUT", &path, Some(&reaction)).unwrap();
    let reaction_ts = event_ts(&synapse, &moderator, &management, put["event_id"].as_str().unwrap());
    let watched = Duration::from_millis(last_ban_ts(&synapse, &moderator, &rooms, &members[3].user_id) - reaction_ts);

    // 1,000 rule changes in the watched list naming nobody here, then one
    // naming a member: once that member is banned everywhere, all were handled.
    let cpu_before = cpu_time(&child);
    let changes: Vec<usize> = (0..1000).collect();
    let changed = Instant::now();
    at_once(&changes, |i| {
        let rule =
            json!({"entity": format!("@changed{i}:elsewhere.example"), "recommendation": "m.ban", "reason": "x"});
        let path = format!("/_matrix/client/v3/rooms/{list}/state/m.policy.rule.user/change{i}");
        synapse.call(&moderator, "PUT", &path, Some(&rule)).unwrap();
    });
    let rule = json!({"entity": members[5].user_id, "recommendation": "m.ban", "reason": "last"});
    let path = format!("/_matrix/client/v3/rooms/{list}/state/m.policy.rule.user/last");
    synapse.call(&moderator, "PUT", &path, Some(&rule)).unwrap();
    last_ban_ts(&synapse, &moderator, &rooms, &members[5].user_id);
    let changed = changed.elapsed();
    let cpu_changes = cpu_time(&child) - cpu_before;
    std::thread::sleep(Duration::from_secs(1));
    let rss_after = rss_kib(&child);
    let rss_peak = status_kib(&child, "VmHWM:");

    // 1,000 more, then one naming the member of one room: the CPU of the
    // rule changes themselves (one ban, not one in every room).
    let cpu_before = cpu_time(&child);
    at_once(&changes, |i| {
        let rule = json!({"entity": format!("@again{i}:elsewhere.example"), "recommendation": "m.ban", "reason": "x"});
        let path = format!("/_matrix/client/v3/rooms/{list}/state/m.policy.rule.user/again{i}");
        synapse.call(&moderator, "PUT", &path, Some(&rule)).unwrap();
    });
    let rule = json!({"entity": lone.user_id, "recommendation": "m.ban", "reason": "last"});
    let path = format!("/_matrix/client/v3/rooms/{list}/state/m.policy.rule.user/lone");
    synapse.call(&moderator, "PUT", &path, Some(&rule)).unwrap();
    wait_every("the member of one room banned", Duration::from_secs(120), WATCHING, || {
        membership(&synapse, &moderator, &lone_room, &lone.user_id).as_deref() == Some("ban")
    });
    let cpu_changes_alone = cpu_time(&child) - cpu_before;
    child.kill().unwrap();
    child.wait().unwrap();
    // `AIMS_KEEP=1` keeps the bot's folder (its logs: `run0.log`, `run1.log`).
    if std::env::var_os("AIMS_KEEP").is_some() {
        println!("the bot's folder, kept: {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }

    let n = rooms.len();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("start with {n} protected rooms (process spawn → the start notice's homeserver timestamp):");
    for (i, (took, ready)) in starts.iter().enumerate() {
        let what = if i == 0 { "first start (password login, compiles the plugin)" } else { "restart" };
        println!("  {what}: {:.2} s; the bot says ready in {ready}", took.as_secs_f64());
    }
    for (when, (logged_in, synced, bytes)) in [("before the first start", floor_cold), ("after it", floor_warm)] {
        println!(
            "  the homeserver alone, {when}: password login {:.0} ms, then a full-state sync with no timeline of {:.1} MiB {:.2} s: {:.2} s",
            ms(logged_in),
            bytes as f64 / (1024.0 * 1024.0),
            synced.as_secs_f64(),
            (logged_in + synced).as_secs_f64()
        );
    }
    println!(
        "resident memory (holding {held_rules} rules from the start): {:.1} MiB 2 s after start (peak so far {:.1} MiB), {:.1} MiB after watching the {list_rules}-rule list and 1,000 rule changes (peak {:.1} MiB)",
        rss_start as f64 / 1024.0,
        peak_start as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        rss_peak as f64 / 1024.0
    );
    println!(
        "flood of {} messages ({} sent before the spammer was refused, {:.2} s in all):",
        sent.len(),
        sent.len(),
        flood_took.as_secs_f64()
    );
    println!(
        "  11th message → ban: {} ms (homeserver timestamps); one direct ban call: {:.1} ms; ratio {:.2}x",
        ban_ts.saturating_sub(trip_ts),
        ms(direct_ban),
        ban_ts.saturating_sub(trip_ts) as f64 / ms(direct_ban)
    );
    println!(
        "  ban → first redaction: {} ms; last message → last redaction: {} ms; {} of {} redacted",
        first_redaction_ts.saturating_sub(ban_ts),
        last_redaction_ts.saturating_sub(last_ts),
        sent.len(),
        sent.len()
    );
    let whole = last_redaction_ts.saturating_sub(trip_ts) as f64;
    let floor_flood = ms(direct_ban) + ms(direct_redactions);
    println!(
        "  11th message → last redaction: {whole:.0} ms; the homeserver alone, one ban and then {} redactions ({:.0} ms 4 at a time, {:.0} ms 16 at a time): {floor_flood:.0} ms; ratio {:.2}x",
        sent.len(),
        ms(redactions_by_4),
        ms(redactions_by_16),
        whole / floor_flood
    );
    println!(
        "the homeserver alone, {n} bans: {:.2} s one after another, {:.2} s {AT_ONCE} at a time (floor {:.2} s)",
        serial.as_secs_f64(),
        together.as_secs_f64(),
        floor.as_secs_f64()
    );
    println!(
        "one rule → banned in all {n} rooms (rule event → last ban event, homeserver timestamps): {:.2} s (ratio {:.2}x the floor)",
        applied.as_secs_f64(),
        applied.as_secs_f64() / floor.as_secs_f64()
    );
    println!(
        "watching a {list_rules}-rule list (✅ reaction → last ban event): {:.2} s (ratio {:.2}x the floor)",
        watched.as_secs_f64(),
        watched.as_secs_f64() / floor.as_secs_f64()
    );
    println!(
        "1,000 rule changes in a watched list, then one banning a member in all {n} rooms: the bot used {:.2} s of CPU ({:.1} s from the first change to the last ban)",
        cpu_changes.as_secs_f64(),
        changed.as_secs_f64()
    );
    println!(
        "1,000 more rule changes, then one banning a member of one room: the bot used {:.2} s of CPU",
        cpu_changes_alone.as_secs_f64()
    );
}
