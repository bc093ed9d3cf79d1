//! Contract tests of `media`, through the real runtime.

use super::*;
use gleipnir_runtime::SettingValue;

pub(super) fn covered() {}

const ROOM: &str = "!room:test";

fn sent(sender: &str, content: serde_json::Value, id: usize) -> String {
    json!({
        "room_id": ROOM, "event_id": format!("$e{id}"), "sender": sender, "type": "m.room.message",
        "origin_server_ts": 1_700_000_000_000u64 + id as u64 * 1000, "content": content,
    })
    .to_string()
}

#[test]
fn describes_itself() {
    let p = load(plugins::MEDIA);
    let keys: Vec<_> = p.descriptor().settings.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["kinds", "who", "newcomer-for", "consequence", "notify", "reason"]);
    assert_eq!(p.declared().to_string(), "redact, ban, notify-management");
}

/// As a homeserver serves them: an image, an inline image and a voice
/// message are told apart from the content alone.
#[test]
fn the_kinds_chosen_are_removed_and_the_rest_stays() {
    check(
        &load(plugins::MEDIA),
        &[
            ("kinds", SettingValue::TextList(vec!["image".into(), "inline-image".into(), "voice".into()])),
            ("notify", SettingValue::Flag(false)),
            ("reason", SettingValue::Text("no media".into())),
        ],
        &[
            sent("@u:test", json!({"msgtype": "m.image", "body": "cat.png", "url": "mxc://x/cat"}), 1),
            sent(
                "@u:test",
                json!({"msgtype": "m.text", "body": "cat", "format": "org.matrix.custom.html",
                "formatted_body": "<img src=\"mxc://x/cat\">"}),
                2,
            ),
            sent(
                "@u:test",
                json!({"msgtype": "m.audio", "body": "voice", "url": "mxc://x/v",
                "org.matrix.msc3245.voice": {}}),
                3,
            ),
            sent("@u:test", json!({"msgtype": "m.audio", "body": "song.ogg", "url": "mxc://x/s"}), 4),
            sent("@u:test", json!({"msgtype": "m.text", "body": "just words"}), 5),
        ],
        "redact !room:test $e1 (no media)\nredact !room:test $e2 (no media)\nredact !room:test $e3 (no media)",
    );
}
