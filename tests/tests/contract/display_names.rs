//! Contract tests of `display-names`, through the real runtime.

use super::*;
use gleipnir_runtime::{Checked, Pending, PendingEvent, SettingValue};

pub(super) fn covered() {}

const ROOM: &str = "!room:test";

fn named(user: &str, name: &str, id: usize) -> String {
    state(ROOM, user, "m.room.member", user, json!({"membership": "join", "displayname": name}), id)
}

#[test]
fn describes_itself() {
    let p = load(plugins::DISPLAY_NAMES);
    let keys: Vec<_> = p.descriptor().settings.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["words", "impersonation", "consequence", "reason"]);
    assert_eq!(p.declared().to_string(), "ban, kick, notify-management");
    let described = json::descriptor(p.descriptor(), p.wit_version(), p.content_hash());
    assert_eq!(described["checks"], json!(["event"]));
}

/// A moderator's name is learned from the room's state; a look-alike of it
/// and a watched word are kicked; an ordinary name stays.
#[test]
fn watched_words_and_impersonations_are_kicked() {
    let plugin = load(plugins::DISPLAY_NAMES);
    let levels = state(ROOM, "@mod:test", "m.room.power_levels", "", json!({"users": {"@mod:test": 100}}), 1);
    check(
        &plugin,
        &[("words", SettingValue::TextList(vec!["crypto giveaway".into()]))],
        &[
            levels,
            named("@mod:test", "Moderator Mia", 2),
            named("@fine:x", "Bob", 3),
            named("@fake:x", "M0derator Mia", 4),
            named("@fake:x", "Mоderator Mia", 5),
            named("@spam:x", "CRYPTO giveaway", 6),
        ],
        "kick !room:test @fake:x (display name not permitted here: it reads as the name of the room moderator @mod:test)\n\
         notify-management @fake:x in !room:test took the display name “Mоderator Mia”, the name of the room moderator \
         @mod:test: kicked them. (display name not permitted here: it reads as the name of the room moderator @mod:test)\n\
         kick !room:test @spam:x (display name not permitted here: it reads as the watched word `crypto giveaway`)\n\
         notify-management @spam:x in !room:test took the display name “CRYPTO giveaway”, the watched word `crypto \
         giveaway`: kicked them. (display name not permitted here: it reads as the watched word `crypto giveaway`)",
    );
}

#[test]
fn a_bad_name_is_refused_before_it_lands() {
    let plugin = load(plugins::DISPLAY_NAMES);
    let (mut instance, _, _) = start(&plugin, &[("words", SettingValue::TextList(vec!["spam".into()]))]);
    let pending = Pending::Event(PendingEvent {
        room_id: ROOM.into(),
        sender: "@a:x".into(),
        event_type: "m.room.member".into(),
        state_key: Some("@a:x".into()),
        content: json!({"membership": "join", "displayname": "SPAM bot"}).to_string(),
    });
    assert!(matches!(instance.check_pending(&pending).unwrap(), Checked::Deny { .. }));
}
