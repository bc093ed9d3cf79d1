//! Settings are layered: a protection's default ◄ the operator's settings
//! file ◄ what moderators set with commands. Every way in goes through the
//! same validate → configure path, and a refused change leaves what runs as
//! it was.

use std::collections::BTreeMap;
use std::path::Path;

use gleipnir_runtime::{SettingKind, SettingSpec, SettingValue, settings};
use serde_json::{Value, json};

use super::account;
use super::files::FileIn;
use super::matrix::Matrix;

/// Setting values by key.
pub(crate) type Overrides = Vec<(String, SettingValue)>;

/// Where settings come from besides each protection's defaults.
#[derive(Debug, Default)]
pub(crate) struct Layers {
    /// The operator's settings file, by protection (checked against each
    /// protection's spec whenever it is applied).
    pub(crate) file: BTreeMap<String, toml::Table>,
    /// What moderators set, by protection.
    pub(crate) moderator: BTreeMap<String, Vec<(String, SettingValue)>>,
    /// The settings file's text when last read: an unchanged file is not applied again.
    pub(crate) file_text: Option<String>,
}

/// Reads the operator's settings file: one table per protection. A file
/// that does not exist holds no settings.
pub(crate) fn read_settings_file(file: &FileIn) -> Result<BTreeMap<String, toml::Table>, String> {
    parse_settings_file(&file.shown(), &settings_file_text(file)?)
}

/// The settings file's text; empty when there is no file.
pub(crate) fn settings_file_text(file: &FileIn) -> Result<String, String> {
    match file.text() {
        Ok(t) => Ok(t.unwrap_or_default()),
        Err(e) => Err(format!("cannot read {}: {e}", file.shown().display())),
    }
}

pub(crate) fn parse_settings_file(path: &Path, text: &str) -> Result<BTreeMap<String, toml::Table>, String> {
    let root: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let message = e.message().to_owned();
        match e.span() {
            Some(span) => {
                let line = text.get(..span.start).unwrap_or(text).matches('\n').count() + 1;
                format!("{} line {line}: {message}", path.display())
            }
            None => format!("{}: {message}", path.display()),
        }
    })?;
    let mut out = BTreeMap::new();
    for (name, value) in root {
        match value {
            toml::Value::Table(table) => {
                out.insert(name, table);
            }
            _ => return Err(format!("`{name}`: must be a table of settings, like [{name}]")),
        }
    }
    Ok(out)
}

/// One value from the settings file, checked against its spec.
pub(crate) fn toml_value(spec: &SettingSpec, value: &toml::Value) -> Result<SettingValue, String> {
    use toml::Value as T;
    let strings = |items: &[T]| -> Result<Vec<String>, String> {
        items
            .iter()
            .enumerate()
            .map(|(i, v)| v.as_str().map(str::to_owned).ok_or_else(|| format!("item {} must be a string", i + 1)))
            .collect()
    };
    let converted = match (&spec.kind, value) {
        (SettingKind::Flag, T::Boolean(b)) => SettingValue::Flag(*b),
        (SettingKind::Integer(_), T::Integer(i)) => SettingValue::Integer(*i),
        (SettingKind::Number(_), T::Float(f)) => SettingValue::Number(*f),
        (SettingKind::Number(_), T::Integer(i)) => SettingValue::Number(*i as f64),
        (SettingKind::Duration, T::Integer(ms)) if *ms >= 0 => SettingValue::Duration(*ms as u64),
        (SettingKind::Duration, T::String(text)) => SettingValue::Duration(settings::parse_duration(text)?),
        (SettingKind::Text, T::String(t)) => SettingValue::Text(t.clone()),
        (SettingKind::UserId, T::String(t)) => SettingValue::UserId(t.clone()),
        (SettingKind::RoomId, T::String(t)) => SettingValue::RoomId(t.clone()),
        (SettingKind::Choice(_), T::String(t)) => SettingValue::Choice(t.clone()),
        (SettingKind::TextList, T::Array(items)) => SettingValue::TextList(strings(items)?),
        (SettingKind::UserIds, T::Array(items)) => SettingValue::UserIds(strings(items)?),
        (SettingKind::RoomIds, T::Array(items)) => SettingValue::RoomIds(strings(items)?),
        (kind, value) => {
            return Err(format!("expected {}, got a TOML {}", settings::format_kind(kind), value.type_str()));
        }
    };
    settings::check_value(spec, &converted).map_err(|e| e.problem)?;
    Ok(converted)
}

/// The settings file's values for one protection, and the problems with
/// the others (`name.key: why`).
pub(crate) fn file_values(
    name: &str,
    table: Option<&toml::Table>,
    specs: &[SettingSpec],
) -> (Vec<(String, SettingValue)>, Vec<String>) {
    let (mut values, mut problems) = (Vec::new(), Vec::new());
    for (key, value) in table.into_iter().flatten() {
        match specs.iter().find(|s| s.key == *key) {
            None => problems.push(format!("{name}.{key}: {name} has no such setting")),
            Some(spec) => match toml_value(spec, value) {
                Ok(v) => values.push((key.clone(), v)),
                Err(why) => problems.push(format!("{name}.{key}: {why}")),
            },
        }
    }
    (values, problems)
}

/// The file's values with the moderators' on top.
pub(crate) fn merge(
    file: Vec<(String, SettingValue)>,
    moderator: &[(String, SettingValue)],
) -> Vec<(String, SettingValue)> {
    let mut out: Vec<_> = file.into_iter().filter(|(k, _)| !moderator.iter().any(|(m, _)| m == k)).collect();
    out.extend(moderator.iter().cloned());
    out
}

/// Saves what moderators set for one protection, as text.
pub(crate) async fn save_moderator(m: &Matrix, layers: &Layers, name: &str) -> anyhow::Result<()> {
    // A failed read is not "nothing saved": writing then would lose every
    // other protection's settings.
    let all = m.account(account::SETTINGS).await?;
    let saved: serde_json::Map<String, Value> = layers
        .moderator
        .get(name)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), Value::String(settings::format_value(v))))
        .collect();
    let all = with_entry(all, account::SETTINGS, name, Value::Object(saved)).map_err(anyhow::Error::msg)?;
    m.set_account(account::SETTINGS, all).await
}

/// A store of one entry per protection (`key`'s content) with `name`'s entry
/// replaced and the others as stored. Content of another shape (edited by
/// hand, by another client) is refused, not overwritten.
pub(crate) fn with_entry(all: Option<Value>, key: &str, name: &str, entry: Value) -> Result<Value, String> {
    let mut all = all.unwrap_or_else(|| json!({}));
    let Some(map) = all.as_object_mut() else {
        return Err(format!("{key} is not an object (it is {all}); nothing was saved: `restart` offers to reset it"));
    };
    map.insert(name.to_owned(), entry);
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_settings_of_another_shape_are_refused_not_a_panic() {
        let one = |v: &str| json!({"k": v});
        let all = with_entry(Some(json!({"other": {"x": "1"}})), "s", "flooding", one("2")).unwrap();
        assert_eq!(all, json!({"other": {"x": "1"}, "flooding": {"k": "2"}}));
        assert_eq!(with_entry(None, "s", "flooding", one("2")).unwrap(), json!({"flooding": {"k": "2"}}));
        for shape in [json!([1, 2]), json!("text"), json!(3)] {
            let error = with_entry(Some(shape), "s", "flooding", one("2")).unwrap_err();
            assert!(error.contains("is not an object"), "{error}");
        }
    }
    use gleipnir_runtime::IntegerBounds;

    fn specs() -> Vec<SettingSpec> {
        let spec = |key: &str, kind, default| SettingSpec { key: key.into(), doc: String::new(), kind, default };
        vec![
            spec(
                "max-per-minute",
                SettingKind::Integer(IntegerBounds { min: Some(1), max: Some(100) }),
                SettingValue::Integer(10),
            ),
            spec("window", SettingKind::Duration, SettingValue::Duration(60_000)),
            spec("words", SettingKind::TextList, SettingValue::TextList(Vec::new())),
            spec("mode", SettingKind::Choice(vec!["a".into(), "b".into()]), SettingValue::Choice("a".into())),
        ]
    }

    fn file(text: &str) -> Result<BTreeMap<String, toml::Table>, String> {
        let path = std::env::temp_dir().join(format!("gleipnir-live-{}-{}.toml", std::process::id(), text.len()));
        std::fs::write(&path, text).unwrap();
        let read = read_settings_file(&FileIn::open(&path).unwrap());
        let _ = std::fs::remove_file(&path);
        read.map_err(|e| e.replace(&path.display().to_string(), "FILE"))
    }

    #[test]
    fn values_are_typed_and_checked_with_their_key_path() {
        let tables =
            file("[flooding]\nmax-per-minute = 5\nwindow = \"2m\"\nwords = [\"a b\", \"c\"]\nmode = \"b\"\n").unwrap();
        let (values, problems) = file_values("flooding", tables.get("flooding"), &specs());
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            values,
            vec![
                ("max-per-minute".to_owned(), SettingValue::Integer(5)),
                ("mode".to_owned(), SettingValue::Choice("b".into())),
                ("window".to_owned(), SettingValue::Duration(120_000)),
                ("words".to_owned(), SettingValue::TextList(vec!["a b".into(), "c".into()])),
            ]
        );
        let tables =
            file("[flooding]\nmax-per-minute = 500\nwindow = true\nwords = [1]\nmode = \"z\"\nnope = 1\n").unwrap();
        let (values, problems) = file_values("flooding", tables.get("flooding"), &specs());
        assert!(values.is_empty());
        assert_eq!(
            problems,
            [
                "flooding.max-per-minute: 500 is outside 1..=100",
                "flooding.mode: `z` is not one of: a, b",
                "flooding.nope: flooding has no such setting",
                "flooding.window: expected duration, got a TOML boolean",
                "flooding.words: item 1 must be a string",
            ]
        );
    }

    #[test]
    fn a_broken_file_is_refused_with_its_line() {
        assert_eq!(file("[flooding]\nmax-per-minute = \n").unwrap_err().split(':').next(), Some("FILE line 2"));
        assert_eq!(file("flooding = 3\n").unwrap_err(), "`flooding`: must be a table of settings, like [flooding]");
        let missing =
            read_settings_file(&FileIn::open(&std::env::temp_dir().join("gleipnir-no-such-settings.toml")).unwrap())
                .unwrap();
        assert!(missing.is_empty());
    }

    #[test]
    fn moderators_win_over_the_file() {
        let file = vec![("a".to_owned(), SettingValue::Integer(1)), ("b".to_owned(), SettingValue::Integer(2))];
        let moderator = [("b".to_owned(), SettingValue::Integer(3))];
        assert_eq!(
            merge(file, &moderator),
            vec![("a".to_owned(), SettingValue::Integer(1)), ("b".to_owned(), SettingValue::Integer(3))]
        );
    }
}
