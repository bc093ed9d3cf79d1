//! Contract tests of `trusted-reporters`, through the real runtime.

use super::*;
use gleipnir_runtime::{AbuseReport, Event, EventKind, SettingValue};

pub(super) fn covered() {}

const ROOM: &str = "!room:test";

/// A report as the host hands it to protections (see `bot/reports.rs`).
fn report(reporter: &str, event: &str, sender: &str) -> Event {
    Event {
        room_id: ROOM.into(),
        event_id: event.into(),
        sender: reporter.into(),
        origin_ts: 1_700_000_000_000,
        received_ts: 1_700_000_000_000,
        content: json!({"reason": "spam", "score": -100}).to_string(),
        kind: EventKind::Report(AbuseReport {
            reported_event: Some(event.into()),
            reported_user: Some(sender.into()),
            reason: Some("spam".into()),
            score: Some(-100),
            reported_content: Some(json!({"body": "buy pills"}).to_string()),
        }),
    }
}

#[test]
fn describes_itself() {
    let p = load(plugins::TRUSTED_REPORTERS);
    let keys: Vec<_> = p.descriptor().settings.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["mxids", "alert-threshold", "redact-threshold", "ban-threshold", "remember", "reason"]);
    assert_eq!(p.declared().to_string(), "redact, ban, notify-management");
}

/// Two trusted reporters reach the redact and ban thresholds (2); a third
/// reporter who is not trusted changes nothing.
#[test]
fn trusted_reports_redact_and_ban_at_their_thresholds() {
    let plugin = load(plugins::TRUSTED_REPORTERS);
    let (mut instance, _, _) = start(
        &plugin,
        &[
            ("mxids", SettingValue::UserIds(vec!["@a:test".into(), "@b:test".into()])),
            ("redact-threshold", SettingValue::Integer(2)),
            ("ban-threshold", SettingValue::Integer(2)),
        ],
    );
    let mut out = Vec::new();
    for reporter in ["@a:test", "@stranger:test", "@b:test"] {
        let outcome = instance.handle(&report(reporter, "$bad", "@spam:test")).unwrap();
        out.extend(outcome.actions.iter().map(render_action));
    }
    assert_eq!(
        out.join("\n"),
        "ban !room:test @spam:test (reported by trusted members)\n\
         redact !room:test $bad (reported by trusted members)\n\
         notify-management 2 trusted members reported $bad by @spam:test in !room:test (@a:test, @b:test): \
         banned @spam:test, redacted it. Latest reason: “spam”. (reported by trusted members)"
    );
}
