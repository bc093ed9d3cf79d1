//! Contract tests of `new-joiner-servers`, through the real runtime.

use super::*;
use gleipnir_runtime::{Checked, Pending, PendingJoin, SettingValue};

pub(super) fn covered() {}

const ROOM: &str = "!room:test";

fn join(user: &str, id: usize) -> String {
    state(ROOM, user, "m.room.member", user, json!({"membership": "join"}), id)
}

#[test]
fn describes_itself() {
    let p = load(plugins::NEW_JOINER_SERVERS);
    let keys: Vec<_> = p.descriptor().settings.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["servers", "consequence", "reason", "notify"]);
    assert_eq!(p.declared().to_string(), "ban, kick, notify-management");
}

/// A joiner from a listed server (by glob) is banned; others stay; with the
/// module the join is refused first.
#[test]
fn joiners_from_listed_servers_are_banned_or_refused() {
    let plugin = load(plugins::NEW_JOINER_SERVERS);
    let servers =
        [("servers", SettingValue::TextList(vec!["*.evil.test".into()])), ("notify", SettingValue::Flag(false))];
    check(
        &plugin,
        &servers,
        &[join("@a:good.test", 1), join("@b:hs.evil.test", 2)],
        "ban !room:test @b:hs.evil.test (Unfortunately we cannot accept new users from your homeserver at this time.)",
    );
    let (mut instance, _, _) = start(&plugin, &servers);
    let pending = Pending::Join(PendingJoin { room_id: ROOM.into(), user_id: "@c:hs.evil.test".into() });
    assert!(matches!(instance.check_pending(&pending).unwrap(), Checked::Deny { .. }));
}
