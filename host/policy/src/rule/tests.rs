use super::*;

/// The field reader and the `Value` reader agree on every content,
/// hostile ones included.
#[test]
fn the_field_reader_reads_as_the_value_reader_does() {
    let list: Arc<str> = Arc::from("!list");
    let contents = [
        r#"{"entity": "@a:x", "recommendation": "m.ban", "reason": "spam"}"#,
        r#"{"entity": "@\u0061:x", "recommendation": "m.b\u0061n", "reason": "\"quoted\""}"#,
        r#"{"entity": null, "recommendation": "m.ban"}"#,
        r#"{"entity": 5, "recommendation": "m.ban", "hashes": {"sha256": "dGVzdA"}}"#,
        r#"{"entity": "", "recommendation": "m.ban", "org.matrix.msc4205.hashes": {"sha256": "ZN5ZxDRQNvMGrEMxtgHHn/AH6SrRwpqTbpdnhtb0KhA="}}"#,
        r#"{"recommendation": "m.ban", "hashes": {"sha256": 1}, "org.matrix.msc4205.hashes": {"sha256": "ZN5ZxDRQNvMGrEMxtgHHn/AH6SrRwpqTbpdnhtb0KhA"}}"#,
        r#"{"recommendation": "m.ban", "hashes": [1], "entity": "@b:x"}"#,
        r#"{"recommendation": "m.ban", "hashes": {"sha256": "a", "sha256": "ZN5ZxDRQNvMGrEMxtgHHn/AH6SrRwpqTbpdnhtb0KhA"}}"#,
        r#"{"entity": "@a:x", "entity": "@b:x", "recommendation": "m.ban"}"#,
        r#"{"entity": "@a:x", "recommendation": 1}"#,
        r#"{"entity": "@a:x", "recommendation": "org.example.other", "reason": ["no"]}"#,
        r#"{"entity": "*.EVIL.example", "recommendation": "m.ban", "extra": {"deep": [1, 2, {"x": null}]}}"#,
        r#"{ }"#,
        "{\n}",
        r#"{"unrelated": true}"#,
        r#"[]"#,
        r#""text""#,
        r#"{"entity": "@a:x""#,
        r#"not json"#,
        "",
    ];
    for kind in ["m.policy.rule.user", "m.room.rule.server"] {
        let (entity_kind, generation) = rule_type(kind).unwrap();
        for content in contents {
            let fast = parse(&list, kind, "k", content).unwrap();
            let key = Arc::from("k");
            let slow = parse_value(&Place { list: &list, kind: entity_kind, generation, state_key: &key }, content);
            match (&fast, &slow) {
                // The wording of a JSON error may differ; both say it is not JSON.
                (Content::Invalid(a), Content::Invalid(b)) if b.starts_with("not JSON") => {
                    assert!(a.starts_with("not JSON"), "{content}: {a} / {b}")
                }
                _ => assert_eq!(fast, slow, "{kind} {content}"),
            }
        }
    }
}

fn list() -> Arc<str> {
    Arc::from("!list")
}

fn rule(event_type: &str, content: &str) -> Content {
    parse(&list(), event_type, "key", content).unwrap()
}

#[test]
fn every_generation_of_event_type_is_read() {
    assert_eq!(rule_type("m.policy.rule.user"), Some((EntityKind::User, Generation::Stable)));
    assert_eq!(rule_type("m.room.rule.server"), Some((EntityKind::Server, Generation::Room)));
    assert_eq!(rule_type("org.matrix.mjolnir.rule.room"), Some((EntityKind::Room, Generation::Mjolnir)));
    assert_eq!(rule_type("m.policy.rule.planet"), None);
    assert_eq!(rule_type("m.room.message"), None);
    assert!(parse(&list(), "m.room.member", "", "{}").is_none());
}

#[test]
fn contents_are_read_strictly() {
    let Content::Rule(r) =
        rule("m.policy.rule.user", r#"{"entity": "@spam:x", "recommendation": "m.ban", "reason": "spam"}"#)
    else {
        panic!()
    };
    assert_eq!(r.entity(), EntityRef::Literal("@spam:x"));
    assert_eq!(r.recommendation, Recommendation::Ban);
    assert_eq!(r.to_string(), "user @spam:x m.ban (!list): spam");

    let Content::Rule(r) =
        rule("m.policy.rule.server", r#"{"entity": "*.EVIL.com", "recommendation": "org.matrix.mjolnir.ban"}"#)
    else {
        panic!()
    };
    assert_eq!(r.entity(), EntityRef::Glob("*.evil.com"));
    assert!(r.entity().matches(EntityKind::Server, "Matrix.Evil.Com"));

    assert_eq!(rule("m.policy.rule.user", "{}"), Content::Empty);
    assert_eq!(rule("m.policy.rule.user", "[]"), Content::Invalid("not an object".into()));
    assert_eq!(rule("m.policy.rule.user", r#"{"entity": "@a:b"}"#), Content::Invalid("no recommendation".into()));
    assert_eq!(rule("m.policy.rule.user", r#"{"recommendation": "m.ban"}"#), Content::Invalid("no entity".into()));
    assert_eq!(
        rule("m.policy.rule.user", r#"{"entity": 3, "recommendation": "m.ban"}"#),
        Content::Invalid("no entity".into())
    );
    let Content::Rule(r) = rule("m.policy.rule.user", r#"{"entity": "@a:b", "recommendation": "m.mute"}"#) else {
        panic!()
    };
    assert!(!r.recommendation.acts());
}

#[test]
fn takedowns_and_hashed_entities() {
    let hash = sha256_base64("@hidden:evil.example");
    for (key, recommendation) in
        [("hashes", "m.takedown"), ("org.matrix.msc4205.hashes", "org.matrix.msc4204.takedown")]
    {
        let content = format!(r#"{{"recommendation": "{recommendation}", "{key}": {{"sha256": "{hash}"}}}}"#);
        let Content::Rule(r) = rule("m.policy.rule.user", &content) else { panic!("{content}") };
        assert_eq!(r.recommendation, Recommendation::Takedown);
        assert!(r.entity().matches(EntityKind::User, "@hidden:evil.example"));
        assert!(!r.entity().matches(EntityKind::User, "@other:evil.example"));
    }
    // Padded base64 is accepted too.
    let padded = format!(r#"{{"recommendation": "m.ban", "hashes": {{"sha256": "{hash}="}}}}"#);
    assert!(matches!(rule("m.policy.rule.user", &padded), Content::Rule(_)));
    let bad = r#"{"recommendation": "m.ban", "hashes": {"sha256": "short"}}"#;
    assert_eq!(rule("m.policy.rule.user", bad), Content::Invalid("`short` is not a base64 sha256".into()));
}

#[test]
fn wrongly_typed_optional_fields_read_as_absent() {
    let hash = sha256_base64("@hidden:evil.example");
    for content in [
        format!(r#"{{"entity": 3, "recommendation": "m.ban", "hashes": {{"sha256": "{hash}"}}}}"#),
        format!(r#"{{"entity": "", "recommendation": "m.ban", "hashes": {{"sha256": "{hash}"}}}}"#),
        format!(r#"{{"recommendation": "m.ban", "hashes": "x", "org.matrix.msc4205.hashes": {{"sha256": "{hash}"}}}}"#),
        format!(
            r#"{{"recommendation": "m.ban", "hashes": {{"sha256": 5}}, "org.matrix.msc4205.hashes": {{"sha256": "{hash}"}}}}"#
        ),
        format!(r#"{{"recommendation": "m.ban", "reason": ["x"], "hashes": {{"sha256": "{hash}"}}}}"#),
    ] {
        let Content::Rule(r) = rule("m.policy.rule.user", &content) else { panic!("{content}") };
        assert!(r.entity().matches(EntityKind::User, "@hidden:evil.example"), "{content}");
        assert_eq!(&*r.reason, "", "{content}");
    }
}

/// Found by fuzzing: the index hashed a server lower-cased, a rule on its
/// own hashed it as written, so the two disagreed on `EVIL.example`.
#[test]
fn a_hashed_server_rule_matches_the_server_in_any_case() {
    let content =
        format!(r#"{{"recommendation": "m.ban", "hashes": {{"sha256": "{}"}}}}"#, sha256_base64("evil.example"));
    let Content::Rule(r) = rule("m.policy.rule.server", &content) else { panic!() };
    for server in ["evil.example", "EVIL.example", "Evil.Example"] {
        assert!(r.entity().matches(EntityKind::Server, server), "{server}");
    }
    assert!(!r.entity().matches(EntityKind::Server, "evil.example.org"));
}

#[test]
fn new_rules_are_published_as_the_peers_write_and_read_them() {
    // Draupnir (matrix-protection-suite `createPolicy`) and Meowlnir name a
    // new rule base64(sha256(entity + recommendation)), padded.
    let ban = publish("@spam:example.org", &Recommendation::Ban, "spam", false);
    assert_eq!(ban.event_type, "m.policy.rule.user");
    assert_eq!(ban.state_key, "F+RuwHO/GD3l+OGtc7DZEqDSdaoI1l6h8YapMxhJNVg=");
    assert_eq!(
        ban.content,
        serde_json::json!({"entity": "@spam:example.org", "recommendation": "m.ban", "reason": "spam"})
    );
    // MSC4205's example; the unstable key, padded; MSC4204's unstable takedown.
    let takedown = publish("@yarrgh:example.com", &Recommendation::Takedown, "", true);
    assert_eq!(
        takedown.content,
        serde_json::json!({
            "recommendation": "org.matrix.msc4204.takedown",
            "reason": "",
            "org.matrix.msc4205.hashes": {"sha256": "VPqwbUV7mMMkOVto3kPwsNXXiALMs7VCKWh3OeqqjGs="},
        })
    );
    assert!(!takedown.state_key.contains("yarrgh"));
    // A glob is never hashed (its hash would match nothing).
    let glob = publish("@*:spam.example", &Recommendation::Ban, "", true);
    assert_eq!(glob.content["entity"], "@*:spam.example");
    // What Gleipnir publishes, it reads back as the same rule.
    let Content::Rule(read) =
        parse(&list(), takedown.event_type, &takedown.state_key, &takedown.content.to_string()).unwrap()
    else {
        panic!()
    };
    assert_eq!(read.recommendation, Recommendation::Takedown);
    assert!(read.entity().matches(EntityKind::User, "@yarrgh:example.com"));
}

/// A 100,000-rule list holds a hundred thousand of these: a field that
/// grows them is a megabyte or more.
#[test]
fn a_rule_stays_small() {
    assert!(size_of::<Rule>() <= 80, "{} bytes", size_of::<Rule>());
    assert!(size_of::<Recommendation>() <= 16);
}
