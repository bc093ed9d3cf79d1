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
];

/// Draupnir's settings with a Gleipnir counterpart: (Draupnir protection,
/// Draupnir key, Gleipnir key).
const SETTINGS: &[(&str, &str, &str)] = &[
    ("BasicFloodingProtection", "maxPerMinute", "max-per-minute"),
    ("MentionLimitProtection", "maxMentions", "max-mentions"),
    ("MentionLimitProtection", "warningText", "warning-text"),
    ("MentionLimitProtection", "includeLegacyMentions", "include-legacy-mentions"),
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
        let ours = SETTINGS.iter().find(|(p, k, _)| *p == draupnir_protection && k == key).map(|(_, _, g)| *g);
        let text = match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        };
        match (ours, text) {
            (Some(ours), Some(text)) => imported.push((ours.to_owned(), text)),
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
    }
}
