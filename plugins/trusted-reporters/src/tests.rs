//! Native tests through the SDK harness.

use gleipnir_sdk::prelude::*;
use gleipnir_sdk::testing::{Harness, events};

use crate::TrustedReporters;

const ROOM: &str = "!room:test";
const HOUR: u64 = 3_600_000;

fn harness() -> Harness<TrustedReporters> {
    let mut h = Harness::<TrustedReporters>::new();
    h.host.set_bot_user_id("@bot:test");
    let trusted = ["@a:test", "@b:test", "@c:test"].iter().map(|u| (*u).to_owned()).collect();
    h.set("mxids", SettingValue::UserIds(trusted)).unwrap();
    h
}

/// `reporter` reports `event` (sent by `sender`) at `hour`.
fn report(reporter: &str, event: &str, sender: Option<&str>, hour: u64) -> Event {
    let mut e = events::message(ROOM, reporter, "").at(hour * HOUR).with_id(event);
    e.kind = EventKind::Report(AbuseReport {
        reported_event: Some(event.to_owned()),
        reported_user: sender.map(str::to_owned),
        reason: Some("spam".to_owned()),
        score: None,
        reported_content: None,
    });
    e
}

#[test]
fn three_trusted_reporters_alert_once_and_others_do_not_count() {
    let mut h = harness();
    assert_eq!(events::render(&h.handle(&report("@a:test", "$bad", Some("@spam:x"), 0))), "");
    assert_eq!(
        events::render(&h.handle(&report("@a:test", "$bad", Some("@spam:x"), 0))),
        "",
        "the same reporter twice"
    );
    assert_eq!(events::render(&h.handle(&report("@stranger:x", "$bad", Some("@spam:x"), 0))), "", "not trusted");
    assert_eq!(events::render(&h.handle(&report("@b:test", "$bad", Some("@spam:x"), 0))), "");
    assert_eq!(
        events::render(&h.handle(&report("@c:test", "$bad", Some("@spam:x"), 0))),
        "notify: 3 trusted members reported $bad by @spam:x in !room:test (@a:test, @b:test, @c:test). \
         Latest reason: “spam”. (reported by trusted members)"
    );
}

#[test]
fn each_threshold_acts_once_when_reached() {
    let mut h = harness();
    h.set("alert-threshold", SettingValue::Integer(1)).unwrap();
    h.set("redact-threshold", SettingValue::Integer(2)).unwrap();
    h.set("ban-threshold", SettingValue::Integer(3)).unwrap();
    let first = events::render(&h.handle(&report("@a:test", "$bad", Some("@spam:x"), 0)));
    assert!(first.starts_with("notify: 1 trusted member reported $bad"), "{first}");
    let second = events::render(&h.handle(&report("@b:test", "$bad", Some("@spam:x"), 0)));
    assert!(second.starts_with("redact !room:test $bad (reported by trusted members)\nnotify:"), "{second}");
    assert!(second.contains(": redacted it."), "{second}");
    let third = events::render(&h.handle(&report("@c:test", "$bad", Some("@spam:x"), 0)));
    assert!(third.starts_with("ban !room:test @spam:x (reported by trusted members)\nnotify:"), "{third}");
    assert!(third.contains(": banned @spam:x."), "{third}");
}

#[test]
fn moderators_are_not_acted_on_and_an_unknown_sender_is_not_banned() {
    let mut h = harness();
    h.host.set_power_level(ROOM, "@mod:test", 100);
    h.set("ban-threshold", SettingValue::Integer(1)).unwrap();
    h.set("redact-threshold", SettingValue::Integer(1)).unwrap();
    let moderator = events::render(&h.handle(&report("@a:test", "$m", Some("@mod:test"), 0)));
    assert_eq!(moderator, "", "a moderator's event: below the alert threshold, nothing");
    let unknown = events::render(&h.handle(&report("@a:test", "$u", None, 0)));
    assert!(unknown.starts_with("redact !room:test $u"), "{unknown}");
    assert!(unknown.contains("could not ban the sender"), "{unknown}");
}

#[test]
fn old_reports_are_forgotten_after_remember() {
    let mut h = harness();
    h.set("alert-threshold", SettingValue::Integer(2)).unwrap();
    h.set("remember", SettingValue::Duration(HOUR)).unwrap();
    h.handle(&report("@a:test", "$bad", Some("@spam:x"), 0));
    assert_eq!(events::render(&h.handle(&report("@b:test", "$bad", Some("@spam:x"), 2))), "", "counting starts over");
    assert!(!events::render(&h.handle(&report("@c:test", "$bad", Some("@spam:x"), 2))).is_empty());
}

#[test]
fn counts_survive_a_swap_and_bad_settings_are_refused() {
    let mut h = harness();
    h.handle(&report("@a:test", "$bad", Some("@spam:x"), 0));
    h.handle(&report("@b:test", "$bad", None, 0));
    let state = h.protection.snapshot();
    let mut next = harness();
    next.protection.restore(&state).unwrap();
    assert_eq!(next.protection.snapshot(), state);
    assert!(events::render(&next.handle(&report("@c:test", "$bad", None, 0))).contains("by @spam:x"));
    assert!(next.protection.restore(b"other").is_err());
    let err = h.set("mxids", SettingValue::UserIds(vec!["alice".into()])).unwrap_err();
    assert!(err.contains("`alice` is not a user id"), "{err}");
}
