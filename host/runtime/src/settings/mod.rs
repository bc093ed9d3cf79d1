//! Typed settings: a protection's spec is checked when it loads, and every
//! value is checked against its spec before `configure` sees it. Text typed
//! by an operator or moderator is parsed here too, so every way a value
//! arrives goes through the same rules.

use std::fmt::Write;

use crate::{IntegerBounds, NumberBounds, Setting, SettingKind, SettingSpec, SettingValue};

/// A problem with a setting, naming its key.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("setting `{key}`: {problem}")]
pub struct SettingError {
    pub key: String,
    pub problem: String,
}

fn error(key: &str, problem: impl Into<String>) -> SettingError {
    SettingError { key: key.to_owned(), problem: problem.into() }
}

/// Longest text value, in bytes.
pub const MAX_TEXT: usize = 4096;
/// Most items in a list value.
pub const MAX_ITEMS: usize = 1000;
/// Most settings one protection may declare.
pub const MAX_SETTINGS: usize = 128;

/// `a-z`, `0-9`, and hyphens between them.
pub fn is_kebab(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with('-')
        && !text.ends_with('-')
        && !text.contains("--")
        && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Checks a protection's settings spec: keys, bounds, choices and defaults.
pub fn validate_specs(specs: &[SettingSpec]) -> Result<(), SettingError> {
    if specs.len() > MAX_SETTINGS {
        return Err(error("*", format!("{} settings declared; at most {MAX_SETTINGS}", specs.len())));
    }
    for (i, spec) in specs.iter().enumerate() {
        let key = &spec.key;
        if !is_kebab(key) || key.len() > 64 {
            return Err(error(key, "keys must be 1–64 characters of a-z, 0-9 and inner hyphens"));
        }
        if specs[..i].iter().any(|s| s.key == *key) {
            return Err(error(key, "declared twice"));
        }
        if spec.doc.len() > MAX_TEXT {
            return Err(error(key, format!("doc is {} bytes; at most {MAX_TEXT}", spec.doc.len())));
        }
        match &spec.kind {
            SettingKind::Integer(IntegerBounds { min: Some(min), max: Some(max) }) if min > max => {
                return Err(error(key, format!("min {min} is above max {max}")));
            }
            SettingKind::Number(NumberBounds { min, max }) => {
                if min.is_some_and(|m| !m.is_finite()) || max.is_some_and(|m| !m.is_finite()) {
                    return Err(error(key, "bounds must be finite numbers"));
                }
                if let (Some(min), Some(max)) = (min, max)
                    && min > max
                {
                    return Err(error(key, format!("min {min} is above max {max}")));
                }
            }
            SettingKind::Choice(options) => {
                if options.is_empty() {
                    return Err(error(key, "a choice needs at least one option"));
                }
                if options.len() > 64 {
                    return Err(error(key, "a choice may have at most 64 options"));
                }
                for (j, option) in options.iter().enumerate() {
                    if option.is_empty() || option.len() > 64 || option.contains(char::is_whitespace) {
                        return Err(error(
                            key,
                            format!("option `{}` must be 1–64 characters without spaces", option.escape_debug()),
                        ));
                    }
                    if options[..j].contains(option) {
                        return Err(error(key, format!("option `{option}` is listed twice")));
                    }
                }
            }
            _ => {}
        }
        check_value(spec, &spec.default).map_err(|e| error(key, format!("the default is invalid: {}", e.problem)))?;
    }
    Ok(())
}

/// Checks one value against its spec: kind, bounds, ids, sizes.
pub fn check_value(spec: &SettingSpec, value: &SettingValue) -> Result<(), SettingError> {
    let key = spec.key.as_str();
    let text = |t: &str| {
        if t.len() > MAX_TEXT { Err(error(key, format!("{} bytes; at most {MAX_TEXT}", t.len()))) } else { Ok(()) }
    };
    let list = |items: &[String], each: &dyn Fn(&str) -> Result<(), String>| {
        if items.len() > MAX_ITEMS {
            return Err(error(key, format!("{} items; at most {MAX_ITEMS}", items.len())));
        }
        for (i, item) in items.iter().enumerate() {
            text(item)?;
            each(item).map_err(|p| error(key, format!("item {}: {p}", i + 1)))?;
        }
        Ok(())
    };
    match (&spec.kind, value) {
        (SettingKind::Flag, SettingValue::Flag(_)) => Ok(()),
        (SettingKind::Integer(b), SettingValue::Integer(v)) => {
            if b.min.is_some_and(|m| *v < m) || b.max.is_some_and(|m| *v > m) {
                Err(error(key, format!("{v} is outside {}", range(b.min, b.max))))
            } else {
                Ok(())
            }
        }
        (SettingKind::Number(b), SettingValue::Number(v)) => {
            if !v.is_finite() {
                Err(error(key, format!("{v} is not a finite number")))
            } else if b.min.is_some_and(|m| *v < m) || b.max.is_some_and(|m| *v > m) {
                Err(error(key, format!("{v} is outside {}", range(b.min, b.max))))
            } else {
                Ok(())
            }
        }
        (SettingKind::Text, SettingValue::Text(t)) => text(t),
        (SettingKind::TextList, SettingValue::TextList(items)) => list(items, &|_| Ok(())),
        (SettingKind::UserId, SettingValue::UserId(id)) => crate::event::check_user_id(id).map_err(|p| error(key, p)),
        (SettingKind::UserIds, SettingValue::UserIds(ids)) => list(ids, &crate::event::check_user_id),
        (SettingKind::RoomId, SettingValue::RoomId(id)) => crate::event::check_room_id(id).map_err(|p| error(key, p)),
        (SettingKind::RoomIds, SettingValue::RoomIds(ids)) => list(ids, &crate::event::check_room_id),
        (SettingKind::Duration, SettingValue::Duration(_)) => Ok(()),
        (SettingKind::Choice(options), SettingValue::Choice(v)) => {
            if options.contains(v) {
                Ok(())
            } else {
                Err(error(key, format!("`{v}` is not one of: {}", options.join(", "))))
            }
        }
        (kind, value) => Err(error(key, format!("expected {}, got {}", kind_name(kind), value_kind_name(value)))),
    }
}

fn range<T: std::fmt::Display>(min: Option<T>, max: Option<T>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!("{a}..={b}"),
        (Some(a), None) => format!("{a} and up"),
        (None, Some(b)) => format!("up to {b}"),
        (None, None) => "any".to_owned(),
    }
}

/// Every key with its effective value: the default, unless overridden.
/// Unknown keys and invalid values are refused, naming the key.
pub fn resolve(specs: &[SettingSpec], overrides: &[(String, SettingValue)]) -> Result<Vec<Setting>, SettingError> {
    for (key, value) in overrides {
        let spec = find(specs, key)?;
        check_value(spec, value)?;
    }
    Ok(specs
        .iter()
        .map(|spec| {
            let value = overrides.iter().rev().find(|(k, _)| *k == spec.key).map_or(&spec.default, |(_, v)| v);
            Setting { key: spec.key.clone(), value: value.clone() }
        })
        .collect())
}

/// The spec for `key`, or an error listing the keys there are.
pub fn find<'a>(specs: &'a [SettingSpec], key: &str) -> Result<&'a SettingSpec, SettingError> {
    specs.iter().find(|s| s.key == key).ok_or_else(|| {
        let keys: Vec<_> = specs.iter().map(|s| s.key.as_str()).collect();
        let known = if keys.is_empty() {
            "this protection has no settings".to_owned()
        } else {
            format!("known keys: {}", keys.join(", "))
        };
        error(key, format!("no such setting; {known}"))
    })
}

/// Parses text typed by a person into a value of the spec's kind, and checks it.
///
/// Flags: `true`/`false`/`on`/`off`/`yes`/`no`. Lists: comma-separated, or a
/// JSON array of strings. Durations: `90s`, `5m`, `1h30m`, `250ms`, `2d`.
pub fn parse_value(spec: &SettingSpec, text: &str) -> Result<SettingValue, SettingError> {
    let key = spec.key.as_str();
    let trimmed = text.trim();
    let value = match &spec.kind {
        SettingKind::Flag => SettingValue::Flag(match trimmed.to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" | "1" => true,
            "false" | "off" | "no" | "0" => false,
            _ => return Err(error(key, format!("`{trimmed}` is not a flag; use true or false"))),
        }),
        SettingKind::Integer(_) => SettingValue::Integer(
            trimmed.replace('_', "").parse().map_err(|_| error(key, format!("`{trimmed}` is not a whole number")))?,
        ),
        SettingKind::Number(_) => {
            SettingValue::Number(trimmed.parse().map_err(|_| error(key, format!("`{trimmed}` is not a number")))?)
        }
        SettingKind::Text => SettingValue::Text(text.to_owned()),
        SettingKind::TextList => SettingValue::TextList(parse_list(key, text)?),
        SettingKind::UserId => SettingValue::UserId(trimmed.to_owned()),
        SettingKind::UserIds => SettingValue::UserIds(parse_list(key, text)?),
        SettingKind::RoomId => SettingValue::RoomId(trimmed.to_owned()),
        SettingKind::RoomIds => SettingValue::RoomIds(parse_list(key, text)?),
        SettingKind::Duration => SettingValue::Duration(parse_duration(trimmed).map_err(|p| error(key, p))?),
        SettingKind::Choice(_) => SettingValue::Choice(trimmed.to_owned()),
    };
    check_value(spec, &value)?;
    Ok(value)
}

/// Adding to or removing from a list setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListEdit {
    Add,
    Remove,
}

/// `current` with one item (the whole `item`, trimmed: a watch word may hold
/// a comma) added or removed. Adding an item already there, or removing one
/// that is not, is an error so the moderator learns nothing changed.
pub fn edit_list(
    spec: &SettingSpec,
    current: &SettingValue,
    edit: ListEdit,
    item: &str,
) -> Result<SettingValue, SettingError> {
    let key = spec.key.as_str();
    let item = item.trim();
    if item.is_empty() {
        return Err(error(key, "the item is empty"));
    }
    type Wrap = fn(Vec<String>) -> SettingValue;
    let (mut items, wrap): (Vec<String>, Wrap) = match current {
        SettingValue::TextList(v) => (v.clone(), SettingValue::TextList),
        SettingValue::UserIds(v) => (v.clone(), SettingValue::UserIds),
        SettingValue::RoomIds(v) => (v.clone(), SettingValue::RoomIds),
        other => {
            return Err(error(
                key,
                format!("is {}, not a list: use `set` instead of add/remove", value_kind_name(other)),
            ));
        }
    };
    let position = items.iter().position(|i| i == item);
    match (edit, position) {
        (ListEdit::Add, Some(_)) => return Err(error(key, format!("`{item}` is already in the list"))),
        (ListEdit::Add, None) => items.push(item.to_owned()),
        (ListEdit::Remove, Some(i)) => {
            items.remove(i);
        }
        (ListEdit::Remove, None) => return Err(error(key, format!("`{item}` is not in the list"))),
    }
    let value = wrap(items);
    check_value(spec, &value)?;
    Ok(value)
}

fn parse_list(key: &str, text: &str) -> Result<Vec<String>, SettingError> {
    let trimmed = text.trim();
    if trimmed.starts_with('[') {
        return serde_json::from_str(trimmed).map_err(|e| error(key, format!("not a JSON list of strings: {e}")));
    }
    Ok(trimmed.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
}

/// `1h30m`, `90s`, `250ms`, `2d` → milliseconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let complain = || format!("`{text}` is not a duration; write e.g. 90s, 5m, 1h30m, 250ms or 2d");
    if text.is_empty() {
        return Err(complain());
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(complain());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| complain())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let factor = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(complain()),
        };
        rest = &rest[unit_len..];
        total = number.checked_mul(factor).and_then(|n| total.checked_add(n)).ok_or_else(complain)?;
    }
    Ok(total)
}

/// Milliseconds → the shortest text `parse_duration` reads back.
pub fn format_duration(ms: u64) -> String {
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] {
        if rest >= size {
            let _ = write!(out, "{}{unit}", rest / size);
            rest %= size;
        }
    }
    out
}

/// A value as a person would type it.
pub fn format_value(value: &SettingValue) -> String {
    match value {
        SettingValue::Flag(b) => b.to_string(),
        SettingValue::Integer(i) => i.to_string(),
        SettingValue::Number(n) => n.to_string(),
        SettingValue::Text(t) | SettingValue::UserId(t) | SettingValue::RoomId(t) | SettingValue::Choice(t) => {
            t.clone()
        }
        SettingValue::TextList(items) | SettingValue::UserIds(items) | SettingValue::RoomIds(items) => {
            // Comma-separated text drops empty items and spaces around them and
            // reads a leading `[` as JSON: show JSON when that would lose something.
            let plain = items.iter().all(|i| !i.is_empty() && !i.contains(',') && i.trim() == i)
                && !items.first().is_some_and(|i| i.starts_with('['));
            if !plain { serde_json::to_string(items).unwrap_or_default() } else { items.join(", ") }
        }
        SettingValue::Duration(ms) => format_duration(*ms),
    }
}

/// A kind as documentation shows it, with bounds and options.
pub fn format_kind(kind: &SettingKind) -> String {
    match kind {
        SettingKind::Integer(b) if b.min.is_some() || b.max.is_some() => format!("integer ({})", range(b.min, b.max)),
        SettingKind::Number(b) if b.min.is_some() || b.max.is_some() => format!("number ({})", range(b.min, b.max)),
        SettingKind::Choice(options) => format!("one of: {}", options.join(", ")),
        other => kind_name(other).to_owned(),
    }
}

pub fn kind_name(kind: &SettingKind) -> &'static str {
    match kind {
        SettingKind::Flag => "flag",
        SettingKind::Integer(_) => "integer",
        SettingKind::Number(_) => "number",
        SettingKind::Text => "text",
        SettingKind::TextList => "text list",
        SettingKind::UserId => "user id",
        SettingKind::UserIds => "user ids",
        SettingKind::RoomId => "room id",
        SettingKind::RoomIds => "room ids",
        SettingKind::Duration => "duration",
        SettingKind::Choice(_) => "choice",
    }
}

fn value_kind_name(value: &SettingValue) -> &'static str {
    match value {
        SettingValue::Flag(_) => "flag",
        SettingValue::Integer(_) => "integer",
        SettingValue::Number(_) => "number",
        SettingValue::Text(_) => "text",
        SettingValue::TextList(_) => "text list",
        SettingValue::UserId(_) => "user id",
        SettingValue::UserIds(_) => "user ids",
        SettingValue::RoomId(_) => "room id",
        SettingValue::RoomIds(_) => "room ids",
        SettingValue::Duration(_) => "duration",
        SettingValue::Choice(_) => "choice",
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz;
