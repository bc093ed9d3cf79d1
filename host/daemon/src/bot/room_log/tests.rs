use super::*;
use crate::bot::ingest::{Joined, Left};

/// A member event as the homeserver sends it: ids, timestamps, `unsigned`.
fn member(who: &str, membership: &str) -> String {
    serde_json::json!({"type": "m.room.member", "state_key": who, "sender": who,
        "content": {"membership": membership}, "event_id": "$e", "origin_server_ts": 1,
        "unsigned": {"age": 5, "prev_content": {"membership": "invite"}}})
    .to_string()
}

/// The events as the log keeps them: what the bot reads of state, no more.
fn kept(events: &[&str]) -> Vec<serde_json::Value> {
    let keep = |json: &&str| {
        let mut event: serde_json::Value = serde_json::from_str(json).unwrap();
        for field in ["event_id", "origin_server_ts", "unsigned"] {
            event.as_object_mut().unwrap().remove(field);
        }
        event
    };
    events.iter().map(keep).collect()
}

fn values(events: &[String]) -> Vec<serde_json::Value> {
    events.iter().map(|json| serde_json::from_str(json).unwrap()).collect()
}

/// A room's kept events, read from the log.
fn events(rooms: &Rooms, room: &str) -> Vec<String> {
    let mut read = Reader::new(&rooms.file);
    rooms.rooms[room].iter().map(|span| read.event(*span).unwrap().to_owned()).collect()
}

/// The log as it stands folded at `token`, without writing it again.
fn fold_at(data: &Folder, token: &str) -> Option<Rooms> {
    fold(data.open_file(FILE).unwrap(), token).map(|folded| folded.rooms)
}

/// A fresh folder, removed when the guard drops.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn folder() -> (Scratch, Folder) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("gleipnir-room-log-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let folder = Folder::create(&dir).unwrap();
    (Scratch(dir), folder)
}

fn sync<'a>(joined: Vec<Joined<'a>>, left: Vec<&'a str>) -> Parts<'a> {
    let left = left.into_iter().map(|room| Left { room, events: Vec::new() }).collect();
    Parts { invited: Vec::new(), joined, left }
}

#[test]
fn a_restart_takes_the_state_as_of_its_token_and_nothing_after() {
    let (_dir, data) = folder();
    let (alice, bob, alice_left) = (member("@a:x", "join"), member("@b:x", "join"), member("@a:x", "leave"));
    let message = r#"{"type": "m.room.message", "content": {"body": "state_key"}}"#;
    let mut log = RoomLog::new(&data);
    let first = sync(vec![Joined { room: "!p", state: vec![&alice], ..Default::default() }], vec![]);
    log.record(&first, "t1", true);
    let second = sync(
        vec![
            Joined { room: "!p", timeline: vec![message, &bob, &alice_left], ..Default::default() },
            Joined { room: "!q", state: vec![&alice], ..Default::default() },
        ],
        vec![],
    );
    log.record(&second, "t2", false);
    // Handled, token never saved: a restart from t2 must not see it.
    let third = sync(vec![], vec!["!q"]);
    log.record(&third, "t3", false);

    let at_t1 = fold_at(&data, "t1").expect("t1 is in the log");
    assert_eq!(values(&events(&at_t1, "!p")), kept(&[&alice]));
    assert!(!at_t1.rooms.contains_key("!q"));

    // Loading writes the log anew (t3 came after t2): the events are read
    // from the log as it was read, and from the new one alike.
    let rooms = RoomLog::new(&data).load("t2").expect("the log reaches t2");
    let again = fold_at(&data, "t2").unwrap();
    for rooms in [rooms, again] {
        assert_eq!(values(&events(&rooms, "!p")), kept(&[&alice_left, &bob]), "one event per state key, no messages");
        assert_eq!(values(&events(&rooms, "!q")), kept(&[&alice]));
    }

    // Loading rewrote the log as it stands at t2: t3 is gone for good.
    assert!(RoomLog::new(&data).load("t3").is_none());
    assert!(RoomLog::new(&data).load("t2").is_some());
}

#[test]
fn one_event_per_type_and_state_key_whatever_they_hold() {
    // Keys with escapes (read back owned) and keys whose hashes may meet: each
    // later event replaces the earlier of the same type and key, and only it.
    let (_dir, data) = folder();
    let keys = ["", r#"a\"b"#, r"\u00e9", "é", r"line\nbreak", "@m:x"];
    let mut state = Vec::new();
    for round in 0..3 {
        for (i, key) in keys.iter().enumerate() {
            for kind in ["m.policy.rule.user", "m.room.member"] {
                state.push(format!(
                    r#"{{"type": "{kind}", "state_key": "{key}", "content": {{"n": {round}, "i": {i}}}}}"#
                ));
            }
        }
        for i in 0..2000 {
            state.push(format!(r#"{{"type": "t", "state_key": "k{i}", "content": {{"n": {round}}}}}"#));
        }
    }
    let state: Vec<&str> = state.iter().map(String::as_str).collect();
    let mut log = RoomLog::new(&data);
    log.record(&sync(vec![Joined { room: "!r", state, ..Default::default() }], vec![]), "t1", true);
    let events = events(&RoomLog::new(&data).load("t1").unwrap(), "!r");
    // "\u00e9" and "é" are the same key once read.
    assert_eq!(events.len(), 2 * (keys.len() - 1) + 2000);
    assert!(events.iter().all(|e| e.contains(r#""n": 2"#)), "every event from the last round");
    let first: serde_json::Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(first["state_key"], "", "in the order first seen");
}

#[test]
fn a_redaction_makes_a_rooms_kept_state_stale_until_it_is_read_again() {
    let (_dir, data) = folder();
    let rule = serde_json::json!({"type": "m.policy.rule.user", "state_key": "r", "sender": "@m:x",
        "content": {"entity": "@spam:x", "recommendation": "m.ban"}})
    .to_string();
    let redaction = serde_json::json!({"type": "m.room.redaction", "sender": "@m:x", "redacts": "$rule",
        "content": {"redacts": "$rule"}})
    .to_string();
    let message = r#"{"type": "m.room.message", "sender": "@m:x", "content": {"body": "m.room.redaction"}}"#;
    let mut log = RoomLog::new(&data);
    let first = sync(vec![Joined { room: "!list", state: vec![&rule], ..Default::default() }], vec![]);
    log.record(&first, "t1", true);
    // A message that only names a redaction changes nothing.
    log.record(
        &sync(vec![Joined { room: "!list", timeline: vec![message], ..Default::default() }], vec![]),
        "t2",
        false,
    );
    let mut log = RoomLog::new(&data);
    assert!(log.load("t2").unwrap().stale.is_empty());
    log.record(
        &sync(vec![Joined { room: "!list", timeline: vec![&redaction], ..Default::default() }], vec![]),
        "t3",
        false,
    );
    let mut log = RoomLog::new(&data);
    let rooms = log.load("t3").unwrap();
    assert!(rooms.stale.contains("!list"), "the rule's kept content may be gone from the homeserver");
    assert!(rooms.rooms.contains_key("!list"), "still a joined room");
    // Read again (now without the rule's content), from the next marker on.
    let redacted = serde_json::json!({"type": "m.policy.rule.user", "state_key": "r", "sender": "@m:x",
        "content": {}})
    .to_string();
    log.refreshed("!list", std::slice::from_ref(&redacted));
    log.record(&sync(vec![], vec![]), "t4", false);
    let at_t3 = fold_at(&data, "t3").unwrap();
    assert!(at_t3.stale.contains("!list"), "not before t4");
    let rooms = RoomLog::new(&data).load("t4").unwrap();
    assert!(rooms.stale.is_empty());
    assert_eq!(values(&events(&rooms, "!list")), kept(&[&redacted]));
    // A stale mark survives the log being written whole.
    let mut log = RoomLog::new(&data);
    log.load("t4").unwrap();
    log.record(
        &sync(vec![Joined { room: "!list", timeline: vec![&redaction], ..Default::default() }], vec![]),
        "t5",
        false,
    );
    log.compact("t5");
    assert!(RoomLog::new(&data).load("t5").unwrap().stale.contains("!list"));
}

#[test]
fn a_log_without_the_token_or_damaged_before_it_is_not_used() {
    let (_dir, data) = folder();
    let alice = member("@a:x", "join");
    let mut log = RoomLog::new(&data);
    log.record(&sync(vec![Joined { room: "!p", state: vec![&alice], ..Default::default() }], vec![]), "t1", true);
    assert!(RoomLog::new(&data).load("elsewhere").is_none(), "a token the log never reached");
    let mut text = data.read_to_string(FILE).unwrap();
    text.insert_str(0, "{\"r\": \"!p\", \"e\": {\"type\": \"m.room.member\"}}\n");
    data.write_durably(FILE, text.as_bytes(), false).unwrap();
    assert!(RoomLog::new(&data).load("t1").is_none(), "an event without a state key");
    data.write_durably(FILE, b"{\"j\": \"!p\"}\n{\"t\": \"t", false).unwrap();
    assert!(RoomLog::new(&data).load("t").is_none(), "a line cut short");
    assert!(RoomLog::new(&data).load("t1").is_none());
}

#[test]
fn leaving_drops_a_rooms_state_and_a_full_sync_starts_over() {
    let (_dir, data) = folder();
    let alice = member("@a:x", "join");
    let mut log = RoomLog::new(&data);
    let both = sync(
        vec![
            Joined { room: "!p", state: vec![&alice], ..Default::default() },
            Joined { room: "!q", state: vec![&alice], ..Default::default() },
        ],
        vec![],
    );
    log.record(&both, "t1", true);
    log.record(&sync(vec![], vec!["!q"]), "t2", false);
    let rooms = RoomLog::new(&data).load("t2").unwrap();
    assert!(!rooms.rooms.contains_key("!q"));
    log.record(&sync(vec![Joined { room: "!r", ..Default::default() }], vec![]), "t3", true);
    let rooms = RoomLog::new(&data).load("t3").unwrap();
    assert_eq!(rooms.rooms.keys().collect::<Vec<_>>(), ["!r"], "a full sync names every room the bot is in");
    assert!(RoomLog::new(&data).load("t2").is_none());
}

#[test]
fn room_ids_and_events_that_need_escaping_survive() {
    let (_dir, data) = folder();
    let pretty = "{\n \"type\": \"m.room.name\",\n \"state_key\": \"\",\n \"content\": {\"name\": \"a\\\"b\\n\"}\n}";
    let room = "!we\"ird\n:x";
    let mut log = RoomLog::new(&data);
    log.record(&sync(vec![Joined { room, ..Default::default() }], vec![]), "t0", true);
    log.record(&sync(vec![Joined { room, state: vec![pretty], ..Default::default() }], vec![]), "t\"1", false);
    let rooms = RoomLog::new(&data).load("t\"1").unwrap();
    let name: serde_json::Value = serde_json::from_str(&events(&rooms, room)[0]).unwrap();
    assert_eq!(name["content"]["name"], "a\"b\n");
}

#[test]
fn a_kept_event_that_can_no_longer_be_read_is_an_error_not_a_gap() {
    let (_dir, data) = folder();
    let (alice, bob) = (member("@a:x", "join"), member("@b:x", "join"));
    let mut log = RoomLog::new(&data);
    log.record(&sync(vec![Joined { room: "!p", state: vec![&alice, &bob], ..Default::default() }], vec![]), "t1", true);
    let rooms = RoomLog::new(&data).load("t1").unwrap();
    // The file as read, cut short under the bot's feet (a failing disk).
    let path = data.shown(FILE);
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(20).unwrap();
    let (_, kept) = rooms.into_rooms().next().unwrap();
    let read: Vec<io::Result<String>> = kept.events().collect();
    assert_eq!(read.len(), 2);
    assert!(read.iter().all(Result::is_err), "{read:?}");
}
