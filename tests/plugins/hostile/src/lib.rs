//! A protection that misbehaves on request, to prove the host survives it.
//! The body of a message says what to do:
//! `loop`, `alloc`, `panic`, `recurse`, `overreach`, `flood`, `bad-fields`,
//! `log-spam`, `kv-fill`, `probe` (reports what of the outside world it can
//! reach), `sleep`, `poll`, `stdin` (wait through WASI), `print` (stdout and
//! stderr), `history-loop` (calls `history` between long computations),
//! `queries` (reports what `history` and `members-matching` answer),
//! `arm-restore` (the next `snapshot` makes `restore` panic), `open-room` and
//! `close-room` (set the room's join rule to public or invite); anything else
//! gets one notice back (proof of life), and so does each tick. The setting `panic-in-configure`
//! makes `configure` panic.

use gleipnir_sdk::prelude::*;

gleipnir_sdk::settings! {
    pub struct Config {
        /// Panic in `configure` when this is on.
        panic_in_configure: bool = false;
    }
}

#[derive(Default)]
pub struct Hostile {
    hoard: Vec<Vec<u8>>,
    /// What `snapshot` hands over; `restore` panics when given `panic`.
    state: Vec<u8>,
    /// Ticks seen (each is answered with a notice).
    ticks: u64,
}

impl Protection for Hostile {
    const NAME: &'static str = "hostile";
    const SUMMARY: &'static str = "Misbehaves on request (test plugin).";
    const CAPABILITIES: &'static [Capability] =
        &[Capability::NotifyManagement, Capability::Redact, Capability::SetJoinRule];
    const EVENTS: &'static [EventClass] = &[EventClass::Message, EventClass::Tick];
    type Settings = Config;

    fn configure(&mut self, settings: Config) -> Result<(), String> {
        if settings.panic_in_configure {
            panic!("asked to panic in configure");
        }
        Ok(())
    }

    fn snapshot(&self) -> Vec<u8> {
        self.state.clone()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        if state == b"panic" {
            panic!("asked to panic in restore");
        }
        Ok(())
    }

    fn handle(&mut self, event: &Event, host: &dyn Host) -> Vec<Action> {
        if let EventKind::Tick = &event.kind {
            self.ticks += 1;
            return vec![Action::notify(&format!("tick {}", self.ticks), "tick")];
        }
        let EventKind::Message(message) = &event.kind else { return vec![] };
        match message.body.as_str() {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "alloc" => loop {
                self.hoard.push(vec![1u8; 1 << 20]);
            },
            "panic" => panic!("asked to panic"),
            "recurse" => vec![Action::notify(&recurse(std::hint::black_box(1)).to_string(), "recursed")],
            "overreach" => vec![Action::ban(&event.room_id, &event.sender, "not declared")],
            "flood" => (0..100_000).map(|i| Action::notify(&format!("flood {i}"), "flood")).collect(),
            "bad-fields" => vec![Action::Redact(RedactEvent {
                room_id: "not-a-room".to_owned(),
                event_id: event.event_id.clone(),
                reason: "bad".to_owned(),
            })],
            "log-spam" => {
                for i in 0..1000 {
                    host.log(LogLevel::Info, &format!("line {i}"));
                }
                vec![Action::notify("logged", "log-spam")]
            }
            "kv-fill" => {
                let mut stored = 0;
                let error = loop {
                    match host.kv_set(&format!("key-{stored}"), &[7u8; 60 * 1024]) {
                        Ok(()) => stored += 1,
                        Err(e) => break e,
                    }
                };
                vec![Action::notify(&format!("stored {stored}, then {error:?}"), "kv-fill")]
            }
            "probe" => vec![Action::notify(&probe(), "probe")],
            "sleep" => {
                std::thread::sleep(std::time::Duration::MAX);
                vec![Action::notify("slept", "sleep")]
            }
            "poll" => vec![Action::notify(&format!("poll returned {}", poll_forever()), "poll")],
            "stdin" => {
                use std::io::Read;
                let mut input = Vec::new();
                let read = std::io::stdin().read_to_end(&mut input);
                vec![Action::notify(&format!("stdin: {read:?}"), "stdin")]
            }
            "print" => {
                for i in 0..100 {
                    println!("stdout line {i}");
                    eprintln!("stderr line {i}");
                }
                vec![Action::notify("printed", "print")]
            }
            "history-loop" => loop {
                let _ = host.history(&event.room_id, &event.sender, 1);
                spin();
            },
            "queries" => {
                let history = host.history(&event.room_id, &event.sender, 10).map(|events| events.len());
                let rule = PolicyRule {
                    kind: RuleKind::User,
                    entity: Some("@*:test".to_owned()),
                    entity_sha256: None,
                    recommendation: "m.ban".to_owned(),
                    reason: "probe".to_owned(),
                };
                let members = host.members_matching(&rule).len();
                vec![Action::notify(&format!("history={history:?} members={members}"), "queries")]
            }
            "arm-restore" => {
                self.state = b"panic".to_vec();
                vec![Action::notify("armed", "arm-restore")]
            }
            "open-room" | "close-room" => {
                let rule = if message.body == "open-room" { JoinRule::Public } else { JoinRule::Invite };
                let reason = message.body.clone();
                vec![Action::SetJoinRule(SetJoinRule { room_id: event.room_id.clone(), rule, reason })]
            }
            _ => vec![Action::notify(&format!("alive: {}", message.body), "proof of life")],
        }
    }
}

/// What a protection can see of the world outside its sandbox.
fn probe() -> String {
    use std::collections::HashMap;
    let env = std::env::vars().count();
    let args = std::env::args().count();
    let root = std::fs::read_dir("/").is_ok();
    let passwd = std::fs::read("/etc/passwd").is_ok();
    let cwd = std::fs::read_dir(".").is_ok();
    let tcp = std::net::TcpStream::connect("127.0.0.1:80").is_ok();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").is_ok();
    let dns = std::net::ToSocketAddrs::to_socket_addrs("localhost:80").is_ok();
    let wall =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(u64::MAX);
    let printed = {
        use std::io::Write;
        std::io::stdout().write_all(b"hello").is_ok()
    };
    // std's HashMap seeds itself from WASI random: it must work.
    let mut map = HashMap::new();
    map.insert("k", 1);
    format!(
        "env={env} args={args} root={root} passwd={passwd} cwd={cwd} tcp={tcp} udp={udp} dns={dns} wall-clock={wall} stdout={printed} hashmap={}",
        map.len()
    )
}

/// `poll(2)` with no descriptors and a timeout of about 25 days: wasi-libc
/// turns it into a monotonic-clock subscription and `wasi:io/poll.poll`.
fn poll_forever() -> i32 {
    #[repr(C)]
    struct PollFd {
        fd: i32,
        events: i16,
        revents: i16,
    }
    unsafe extern "C" {
        fn poll(fds: *mut PollFd, nfds: usize, timeout: i32) -> i32;
    }
    // SAFETY: no descriptors are passed, so nothing is read or written.
    unsafe { poll(std::ptr::null_mut(), 0, i32::MAX) }
}

/// A few milliseconds of work that the optimiser cannot remove.
fn spin() {
    let mut n: u64 = 0;
    for i in 0..20_000_000u64 {
        n = std::hint::black_box(n.wrapping_add(i));
    }
    std::hint::black_box(n);
}

fn recurse(depth: u64) -> u64 {
    let mut buffer = [0u8; 1024];
    buffer[0] = depth as u8;
    std::hint::black_box(&mut buffer);
    if depth == 0 { 0 } else { recurse(depth + 1) + u64::from(buffer[0]) }
}

gleipnir_sdk::export_protection!(Hostile);
