//! Moving from Draupnir: a Draupnir bot's account starts Gleipnir normally.
//! Draupnir names its protections in CamelCase in the same account data
//! (`org.matrix.mjolnir.enabled_protections`); those with a Gleipnir
//! counterpart run as it, the others are kept in the account data and said
//! once. Draupnir keeps per-protection settings as `org.matrix.mjolnir.setting`
//! state in the management room (state key: the protection's name); the
//! settings with a counterpart are imported when Gleipnir has none saved.

use serde_json::Value;

/// The management room state event Draupnir keeps a protection's settings in.
pub(crate) const SETTINGS_EVENT: &str = "org.matrix.mjolnir.setting";

/// Draupnir's protection names with a Gleipnir counterpart.
const NAMES: &[(&str, &str)] = &[
    ("BasicFloodingProtection", "flooding"),
    ("WordListProtection", "newcomer-watch-words"),
    ("MentionLimitProtection", "mention-limit"),
    ("JoinWaveShortCircuitProtection", "join-wave"),
    ("TrustedReporters", "trusted-reporters"),
    ("MessageIsMediaProtection", "media"),
    ("MembershipChangeProtection", "membership-churn"),
    ("InvalidEventProtection", "invalid-event"),
    ("NewJoinerProtection", "new-joiner-servers"),
];

/// How a Draupnir value becomes a Gleipnir one.
#[derive(Clone, Copy)]
enum Convert {
    /// The same text.
    Same,
    /// A number of minutes becomes a duration.
    Minutes,
    /// A threshold where Draupnir's -1 (or any negative) is off: 0 here.
    Threshold,
}

/// Draupnir's settings with a Gleipnir counterpart: (Draupnir protection,
/// Draupnir key, Gleipnir key, conversion).
const SETTINGS: &[(&str, &str, &str, Convert)] = &[
    ("BasicFloodingProtection", "maxPerMinute", "max-per-minute", Convert::Same),
    ("MentionLimitProtection", "maxMentions", "max-mentions", Convert::Same),
    ("MentionLimitProtection", "warningText", "warning-text", Convert::Same),
    ("MentionLimitProtection", "includeLegacyMentions", "include-legacy-mentions", Convert::Same),
    ("JoinWaveShortCircuitProtection", "maxPer", "max-per", Convert::Same),
    ("JoinWaveShortCircuitProtection", "timescaleMinutes", "timescale", Convert::Minutes),
    ("MembershipChangeProtection", "maxChangesPerUser", "max-changes", Convert::Same),
    ("MembershipChangeProtection", "timescaleMinutes", "timescale", Convert::Minutes),
    ("MembershipChangeProtection", "warningText", "warning-text", Convert::Same),
    ("MembershipChangeProtection", "finalConsequenceReason", "reason", Convert::Same),
    ("InvalidEventProtection", "warningText", "warning-text", Convert::Same),
    ("TrustedReporters", "mxids", "mxids", Convert::Same),
    ("TrustedReporters", "alertThreshold", "alert-threshold", Convert::Threshold),
    ("TrustedReporters", "redactThreshold", "redact-threshold", Convert::Threshold),
    ("TrustedReporters", "banThreshold", "ban-threshold", Convert::Threshold),
];

pub(crate) use crate::state::is_draupnir_name;

/// The Gleipnir protection a Draupnir one corresponds to.
pub(crate) fn counterpart(name: &str) -> Option<&'static str> {
    NAMES.iter().find(|(draupnir, _)| *draupnir == name).map(|(_, ours)| *ours)
}

/// The Draupnir protection `ours` corresponds to.
pub(crate) fn draupnir_name(ours: &str) -> Option<&'static str> {
    NAMES.iter().find(|(_, gleipnir)| *gleipnir == ours).map(|(draupnir, _)| *draupnir)
}

/// The settings of `draupnir_protection`'s `org.matrix.mjolnir.setting`
/// content that Gleipnir has a counterpart for, as (key, value as text);
/// the others are named in the second list.
pub(crate) fn import_settings(draupnir_protection: &str, content: &Value) -> (Vec<(String, String)>, Vec<String>) {
    let (mut imported, mut left) = (Vec::new(), Vec::new());
    let Some(object) = content.as_object() else { return (imported, left) };
    for (key, value) in object {
        let ours = SETTINGS.iter().find(|(p, k, _, _)| *p == draupnir_protection && k == key);
        let text = match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            // A list of ids (TrustedReporters' `mxids`), as a list setting is written.
            Value::Array(items) => {
                items.iter().map(|i| i.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>().map(|v| v.join(", "))
            }
            _ => None,
        };
        let converted = ours.zip(text).and_then(|((_, _, ours, convert), text)| {
            let text = match convert {
                Convert::Same => text,
                Convert::Minutes => format!("{}m", text.parse::<u64>().ok()?),
                Convert::Threshold => text.parse::<i64>().ok()?.max(0).to_string(),
            };
            Some((*ours, text))
        });
        match converted {
            Some((ours, text)) => imported.push((ours.to_owned(), text)),
            _ => left.push(key.clone()),
        }
    }
    (imported, left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draupnir_names_and_settings_map_where_gleipnir_has_a_counterpart() {
        assert!(is_draupnir_name("BasicFloodingProtection") && is_draupnir_name("MentionLimitProtection"));
        assert!(!is_draupnir_name("flooding") && !is_draupnir_name("Not-A-Name"));
        assert_eq!(counterpart("BasicFloodingProtection"), Some("flooding"));
        assert_eq!(counterpart("MentionLimitProtection"), Some("mention-limit"));
        assert_eq!(counterpart("RedactionSynchronisationProtection"), None);
        assert_eq!(draupnir_name("flooding"), Some("BasicFloodingProtection"));
        let (imported, left) =
            import_settings("BasicFloodingProtection", &serde_json::json!({"maxPerMinute": 7, "other": [1]}));
        assert_eq!(imported, [("max-per-minute".to_owned(), "7".to_owned())]);
        assert_eq!(left, ["other"]);
        let (imported, left) = import_settings(
            "JoinWaveShortCircuitProtection",
            &serde_json::json!({"maxPer": 20, "timescaleMinutes": 10, "timescaleMinutes2": "x"}),
        );
        assert_eq!(imported, [("max-per".to_owned(), "20".to_owned()), ("timescale".to_owned(), "10m".to_owned())]);
        assert_eq!(left, ["timescaleMinutes2"]);
        let (imported, _) = import_settings(
            "TrustedReporters",
            &serde_json::json!({"mxids": ["@a:x", "@b:x"], "alertThreshold": 3, "banThreshold": -1}),
        );
        assert_eq!(
            imported,
            [
                ("alert-threshold".to_owned(), "3".to_owned()),
                ("ban-threshold".to_owned(), "0".to_owned()),
                ("mxids".to_owned(), "@a:x, @b:x".to_owned()),
            ]
        );
    }
}
