use super::*;

fn spec(key: &str, kind: SettingKind, default: SettingValue) -> SettingSpec {
    SettingSpec { key: key.to_owned(), doc: String::new(), kind, default }
}

fn int(min: Option<i64>, max: Option<i64>) -> SettingKind {
    SettingKind::Integer(IntegerBounds { min, max })
}

/// `text` parsed against `kind`; the value as formatted back, or the error.
fn check_parse(kind: SettingKind, text: &str, expected: &str) {
    let s = spec("k", kind.clone(), SettingValue::Flag(false));
    let got = match parse_value(&s, text) {
        Ok(v) => format_value(&v),
        Err(e) => format!("error: {e}"),
    };
    assert_eq!(got, expected, "parsing {text:?} as {kind:?}");
}

#[test]
fn parsing_typed_text() {
    check_parse(SettingKind::Flag, "on", "true");
    check_parse(SettingKind::Flag, "No", "false");
    check_parse(SettingKind::Flag, "maybe", "error: setting `k`: `maybe` is not a flag; use true or false");
    check_parse(int(Some(1), Some(100)), "20", "20");
    check_parse(int(Some(1), Some(100)), "10_0", "100");
    check_parse(int(Some(1), Some(100)), "0", "error: setting `k`: 0 is outside 1..=100");
    check_parse(int(None, None), "1.5", "error: setting `k`: `1.5` is not a whole number");
    check_parse(SettingKind::Number(NumberBounds { min: Some(0.0), max: None }), "0.25", "0.25");
    check_parse(
        SettingKind::Number(NumberBounds { min: None, max: None }),
        "NaN",
        "error: setting `k`: NaN is not a finite number",
    );
    check_parse(SettingKind::TextList, "spam, scam ,, eggs", "spam, scam, eggs");
    check_parse(SettingKind::TextList, r#"["a,b", "c"]"#, r#"["a,b","c"]"#);
    check_parse(SettingKind::UserIds, "@a:x, @b:y", "@a:x, @b:y");
    check_parse(SettingKind::UserIds, "@a:x, bob", "error: setting `k`: item 2: `bob` is not a user id (@user:server)");
    check_parse(SettingKind::RoomId, "!abc", "!abc");
    check_parse(SettingKind::RoomId, "#alias:x", "error: setting `k`: `#alias:x` is not a room id (!room)");
    check_parse(SettingKind::Duration, "1h30m", "1h30m");
    check_parse(SettingKind::Duration, "90s", "1m30s");
    check_parse(SettingKind::Duration, "250ms", "250ms");
    check_parse(
        SettingKind::Duration,
        "10",
        "error: setting `k`: `10` is not a duration; write e.g. 90s, 5m, 1h30m, 250ms or 2d",
    );
    check_parse(SettingKind::Choice(vec!["ban".into(), "kick".into()]), "kick", "kick");
    check_parse(
        SettingKind::Choice(vec!["ban".into(), "kick".into()]),
        "explode",
        "error: setting `k`: `explode` is not one of: ban, kick",
    );
}

fn check_specs(specs: Vec<SettingSpec>, expected: &str) {
    let got = match validate_specs(&specs) {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.to_string(),
    };
    assert_eq!(got, expected);
}

#[test]
fn validating_specs() {
    check_specs(vec![spec("max-per-minute", int(Some(1), None), SettingValue::Integer(10))], "ok");
    check_specs(
        vec![spec("Max", SettingKind::Flag, SettingValue::Flag(true))],
        "setting `Max`: keys must be 1–64 characters of a-z, 0-9 and inner hyphens",
    );
    check_specs(
        vec![spec("a-", SettingKind::Flag, SettingValue::Flag(true))],
        "setting `a-`: keys must be 1–64 characters of a-z, 0-9 and inner hyphens",
    );
    check_specs(
        vec![
            spec("a", SettingKind::Flag, SettingValue::Flag(true)),
            spec("a", SettingKind::Flag, SettingValue::Flag(true)),
        ],
        "setting `a`: declared twice",
    );
    check_specs(vec![spec("a", int(Some(5), Some(1)), SettingValue::Integer(3))], "setting `a`: min 5 is above max 1");
    check_specs(
        vec![spec("a", int(Some(5), None), SettingValue::Integer(3))],
        "setting `a`: the default is invalid: 3 is outside 5 and up",
    );
    check_specs(
        vec![spec("a", SettingKind::Flag, SettingValue::Integer(3))],
        "setting `a`: the default is invalid: expected flag, got integer",
    );
    check_specs(
        vec![spec("a", SettingKind::Choice(vec![]), SettingValue::Choice("x".into()))],
        "setting `a`: a choice needs at least one option",
    );
    check_specs(
        vec![spec("a", SettingKind::Choice(vec!["x".into(), "x".into()]), SettingValue::Choice("x".into()))],
        "setting `a`: option `x` is listed twice",
    );
    check_specs(
        vec![spec(
            "a",
            SettingKind::Number(NumberBounds { min: Some(f64::NEG_INFINITY), max: None }),
            SettingValue::Number(1.0),
        )],
        "setting `a`: bounds must be finite numbers",
    );
}

#[test]
fn resolving_layers_overrides_on_defaults() {
    let specs = vec![
        spec("a", int(None, None), SettingValue::Integer(1)),
        spec("b", SettingKind::Text, SettingValue::Text("x".into())),
    ];
    let got = resolve(&specs, &[("b".into(), SettingValue::Text("y".into()))]).unwrap();
    let got: Vec<_> = got.iter().map(|s| format!("{}={}", s.key, format_value(&s.value))).collect();
    assert_eq!(got, ["a=1", "b=y"]);
    let err = resolve(&specs, &[("c".into(), SettingValue::Flag(true))]).unwrap_err();
    assert_eq!(err.to_string(), "setting `c`: no such setting; known keys: a, b");
    let err = resolve(&specs, &[("a".into(), SettingValue::Flag(true))]).unwrap_err();
    assert_eq!(err.to_string(), "setting `a`: expected integer, got flag");
}

#[test]
fn durations_round_trip() {
    for ms in [0, 1, 999, 1000, 61_000, 3_600_000, 90_061_001] {
        assert_eq!(parse_duration(&format_duration(ms)), Ok(ms), "{ms}");
    }
    assert!(parse_duration("99999999999999999999d").is_err());
}

#[test]
fn list_settings_take_one_item_at_a_time() {
    let words = spec("words", SettingKind::TextList, SettingValue::TextList(vec![]));
    let start = SettingValue::TextList(vec!["spam".into()]);
    let added = edit_list(&words, &start, ListEdit::Add, " buy now, cheap ").unwrap();
    assert_eq!(added, SettingValue::TextList(vec!["spam".into(), "buy now, cheap".into()]));
    let removed = edit_list(&words, &added, ListEdit::Remove, "spam").unwrap();
    assert_eq!(removed, SettingValue::TextList(vec!["buy now, cheap".into()]));
    let problem = |r: Result<SettingValue, SettingError>| r.unwrap_err().to_string();
    assert_eq!(
        problem(edit_list(&words, &start, ListEdit::Add, "spam")),
        "setting `words`: `spam` is already in the list"
    );
    assert_eq!(
        problem(edit_list(&words, &start, ListEdit::Remove, "eggs")),
        "setting `words`: `eggs` is not in the list"
    );
    assert_eq!(problem(edit_list(&words, &start, ListEdit::Add, "  ")), "setting `words`: the item is empty");

    let users = spec("exempt", SettingKind::UserIds, SettingValue::UserIds(vec![]));
    assert_eq!(
        problem(edit_list(&users, &SettingValue::UserIds(vec![]), ListEdit::Add, "not-a-user")),
        format!("setting `exempt`: item 1: {}", crate::event::check_user_id("not-a-user").unwrap_err())
    );
    let limit = spec("limit", int(None, None), SettingValue::Integer(1));
    assert_eq!(
        problem(edit_list(&limit, &SettingValue::Integer(1), ListEdit::Add, "2")),
        "setting `limit`: is integer, not a list: use `set` instead of add/remove"
    );
}

/// Found by fuzzing: a list read from JSON whose items a comma-separated
/// rendering loses (an empty item, spaces around one, a leading `[`) is
/// shown as JSON, so what `protections show` prints reads back the same.
#[test]
fn lists_are_shown_as_text_that_reads_back() {
    check_parse(SettingKind::TextList, r#"[" a ", ""]"#, r#"[" a ",""]"#);
    check_parse(SettingKind::TextList, r#"["[x"]"#, r#"["[x"]"#);
    check_parse(SettingKind::TextList, r#"["x", "[y"]"#, "x, [y");
    check_parse(SettingKind::TextList, "[]", "");
}
