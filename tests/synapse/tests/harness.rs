//! The harness against a real Synapse: the facts later end-to-end tests rely on.

use serde_json::json;
use synapse_harness::{Options, Synapse, unique_name};

#[test]
fn rooms_of_version_12_have_no_server_part_and_11_do() {
    for (version, has_server) in [(None, false), (Some("11"), true)] {
        let synapse = Synapse::start(Options { room_version: version.map(str::to_owned), ..Options::default() })
            .unwrap_or_else(|e| panic!("{e}"));
        let alice = synapse.register(&unique_name("alice"), "pw-alice", false).unwrap();
        let room = synapse.call(&alice, "POST", "/_matrix/client/v3/createRoom", Some(&json!({}))).unwrap();
        let room_id = room["room_id"].as_str().unwrap();
        assert!(room_id.starts_with('!'), "{room_id}");
        assert_eq!(room_id.contains(':'), has_server, "room version {version:?}: {room_id}");
        let path = format!("/_matrix/client/v3/rooms/{room_id}/send/m.room.message/t1");
        let sent = synapse.call(&alice, "PUT", &path, Some(&json!({"msgtype": "m.text", "body": "hi"}))).unwrap();
        assert!(sent["event_id"].as_str().unwrap().starts_with('$'));
    }
}

#[test]
fn a_persistent_server_keeps_its_accounts_across_a_restart() {
    let mut synapse =
        Synapse::start(Options { persistent: true, ..Options::default() }).unwrap_or_else(|e| panic!("{e}"));
    let bob = synapse.register(&unique_name("bob"), "pw-bob", true).unwrap();
    synapse.restart().unwrap_or_else(|e| panic!("{e}"));
    let whoami = synapse.call(&bob, "GET", "/_matrix/client/v3/account/whoami", None).unwrap();
    assert_eq!(whoami["user_id"], bob.user_id.as_str());
}
