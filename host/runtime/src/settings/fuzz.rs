//! Fuzz test of settings: specs as a plugin declares them, text as an
//! operator or moderator types it. Run longer with `cargo xtask fuzz`.

use gleipnir_fuzz::structured::{self, chance, pick};
use gleipnir_fuzz::{Arbitrary, Unstructured, arbitrary};
use serde_json::{Value, json};

use super::*;

const KINDS: &[&str] = &[
    "flag",
    "integer",
    "number",
    "text",
    "text-list",
    "user-id",
    "user-ids",
    "room-id",
    "room-ids",
    "duration",
    "choice",
];

const TEXTS: &[&str] = &[
    "true",
    "off",
    "0",
    "-1",
    "10_000",
    "9223372036854775808",
    "1.5",
    "NaN",
    "inf",
    "-0",
    "1e308",
    "spam, scam",
    ",",
    "[\"a,b\", \"c\"]",
    "[\" a \", \"\"]",
    "[\"[x\"]",
    "[\"x\", \"y\"]",
    "[",
    "[a",
    " a ",
    "@a:x",
    "@a:x, @b:y",
    "!r",
    "!r, #a:x",
    "90s",
    "1h30m",
    "250ms",
    "2d",
    "18446744073709551615ms",
    "99999999999999999999d",
    "fast",
    "slow",
    "",
];

/// A bound as text (`"NaN"` and `"inf"` included): JSON has no NaN.
fn bound(u: &mut Unstructured<'_>) -> arbitrary::Result<Value> {
    Ok(match u.int_in_range(0..=3u8)? {
        0 => Value::Null,
        1 => json!(i64::arbitrary(u)?.to_string()),
        2 => json!(u.int_in_range(-100..=100i64)?.to_string()),
        _ => json!(pick(u, &["NaN", "inf", "-inf", "0.5", "-1e300"])?),
    })
}

/// `{"kind", "min", "max", "options", "default", "text", "item"}`
fn case(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let mut options = Vec::new();
    for _ in 0..u.int_in_range(0..=4u8)? {
        options.push(structured::text(u, &["fast", "slow", "a b", ""])?);
    }
    let text = structured::text(u, TEXTS)?;
    let text = if chance(u, 20)? { format!("  {text} ") } else { text };
    Ok(json!({
        "kind": pick(u, KINDS)?,
        "min": bound(u)?,
        "max": bound(u)?,
        "options": options,
        "default": structured::text(u, TEXTS)?,
        "text": text,
        "item": structured::text(u, TEXTS)?,
    })
    .to_string())
}

fn spec_of(case: &Value) -> SettingSpec {
    let bound = |key: &str| case[key].as_str().and_then(|b| b.parse::<f64>().ok());
    let int = |key: &str| case[key].as_str().and_then(|b| b.parse::<i64>().ok());
    let options =
        case["options"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect();
    let kind = match case["kind"].as_str().unwrap_or("") {
        "flag" => SettingKind::Flag,
        "integer" => SettingKind::Integer(IntegerBounds { min: int("min"), max: int("max") }),
        "number" => SettingKind::Number(NumberBounds { min: bound("min"), max: bound("max") }),
        "text-list" => SettingKind::TextList,
        "user-id" => SettingKind::UserId,
        "user-ids" => SettingKind::UserIds,
        "room-id" => SettingKind::RoomId,
        "room-ids" => SettingKind::RoomIds,
        "duration" => SettingKind::Duration,
        "choice" => SettingKind::Choice(options),
        _ => SettingKind::Text,
    };
    let mut spec = SettingSpec { key: "k".to_owned(), doc: String::new(), kind, default: SettingValue::Flag(false) };
    // The default from text when it parses, so some specs are valid.
    if let Ok(default) = parse_value(&spec, case["default"].as_str().unwrap_or("")) {
        spec.default = default;
    }
    spec
}

fn check(input: &str) {
    let Ok(case) = serde_json::from_str::<Value>(input) else { return };
    let spec = spec_of(&case);
    let text = case["text"].as_str().unwrap_or("");
    let _ = validate_specs(std::slice::from_ref(&spec));
    let _ = format_kind(&spec.kind);
    if let Ok(ms) = parse_duration(text) {
        assert_eq!(parse_duration(&format_duration(ms)), Ok(ms), "duration {text:?}");
    }
    let Ok(value) = parse_value(&spec, text) else { return };
    check_value(&spec, &value).expect("a parsed value passes its own check");
    // What `protections show` prints reads back as the same value.
    let shown = format_value(&value);
    assert_eq!(parse_value(&spec, &shown), Ok(value.clone()), "{text:?} shown as {shown:?}");
    let item = case["item"].as_str().unwrap_or("");
    for edit in [ListEdit::Add, ListEdit::Remove] {
        if let Ok(edited) = edit_list(&spec, &value, edit, item) {
            check_value(&spec, &edited).expect("an edited list passes its own check");
        }
    }
    let _ = resolve(std::slice::from_ref(&spec), &[(spec.key.clone(), value)]);
}

#[test]
fn fuzz_settings() {
    gleipnir_fuzz::fuzz("settings", case, check);
}
