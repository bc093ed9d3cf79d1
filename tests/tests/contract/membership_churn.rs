//! Contract tests of `membership-churn`, through the real runtime.

use super::*;
use gleipnir_runtime::SettingValue;

pub(super) fn covered() {}

const ROOM: &str = "!room:test";

fn own(user: &str, membership: &str, id: usize) -> String {
    state(ROOM, user, "m.room.member", user, json!({"membership": membership}), id)
}

#[test]
fn describes_itself() {
    let p = load(plugins::MEMBERSHIP_CHURN);
    let keys: Vec<_> = p.descriptor().settings.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["max-changes", "timescale", "warning-text", "count-profile-changes", "reason"]);
    assert_eq!(p.declared().to_string(), "ban, send-notice, notify-management");
}

/// Join, leave, join, leave with a limit of three: warned at the second
/// (60%), banned at the fourth.
#[test]
fn a_member_who_joins_and_leaves_too_often_is_warned_then_banned() {
    let plugin = load(plugins::MEMBERSHIP_CHURN);
    check(
        &plugin,
        &[("max-changes", SettingValue::Integer(3)), ("warning-text", SettingValue::Text("{user}: slow down".into()))],
        &[own("@c:x", "join", 1), own("@c:x", "leave", 2), own("@c:x", "join", 3), own("@c:x", "leave", 4)],
        "send-notice !room:test @c:x: slow down (membership changes too frequent)\n\
         ban !room:test @c:x (You are changing your membership too frequently and have been removed as a precaution.)\n\
         notify-management @c:x changed their membership in !room:test 4 times within 1 hour (limit 3): banned them. \
         (You are changing your membership too frequently and have been removed as a precaution.)",
    );
}
