//! Interop vectors: how a policy list written by any bot in the family
//! (Draupnir and its matrix-protection-suite, Meowlnir, Mjolnir) is read
//! here, and how a rule written here is read there. Each case says where
//! its expectation comes from: the Matrix spec (v1.x "Moderation policy
//! lists"), an MSC, or a peer's code or tests (read for the facts; nothing
//! copied). Where Gleipnir deliberately differs from a peer, the case says
//! so and the README's policy section explains why.

use gleipnir_policy::rule::{self, Content, Recommendation, publish, sha256_published, state_key_for};
use gleipnir_policy::{EntityKind, EntityRef, Index, PolicyList, compile_acl};
use std::sync::Arc;

/// (glob, entity, kind, matches, source)
const GLOBS: &[(&str, &str, EntityKind, bool, &str)] = &[
    // Spec: `*` any run of characters, `?` exactly one; the whole entity must match.
    ("@*:example.org", "@spam:example.org", EntityKind::User, true, "spec: * matches any run"),
    ("@*:example.org", "@:example.org", EntityKind::User, true, "spec: * matches none too"),
    ("*example.org", "123.example.org", EntityKind::Server, true, "matrix-bot-sdk MatrixGlob tests"),
    ("*example.org", "example.orgnot", EntityKind::Server, false, "MatrixGlob tests: anchored at the end"),
    ("example.org", "sub.example.org", EntityKind::Server, false, "literal: anchored at both ends"),
    ("?example.org", "1example.org", EntityKind::Server, true, "MatrixGlob tests: ? is one character"),
    ("?example.org", "12example.org", EntityKind::Server, false, "MatrixGlob tests: ? is exactly one"),
    ("example?.org", "example1.org", EntityKind::Server, true, "MatrixGlob tests"),
    ("example?.org", "example12.org", EntityKind::Server, false, "MatrixGlob tests"),
    ("@spam?:example.org", "@spam12:example.org", EntityKind::User, false, "matrix-protection-suite, run"),
    // No escapes: a backslash is an ordinary character (JavaScript globs let
    // it through into a regex, where `a\*b` matches `a.b`: a deliberate difference).
    (r"a\*b", r"a\xb", EntityKind::Server, true, r"no escapes: \ is itself, * still a wildcard"),
    (r"a\*b", "a.b", EntityKind::Server, false, "differs from MatrixGlob's regex (`a\\.*b`)"),
    // `?` is one Unicode character, astral ones included (MatrixGlob counts
    // UTF-16 units and misses them: a deliberate difference, per the spec's "character").
    ("@?:example.org", "@😀:example.org", EntityKind::User, true, "spec: one character, even astral"),
    ("@??:example.org", "@😀:example.org", EntityKind::User, false, "one character is not two"),
    // `*` runs over any character, a newline too (no valid id holds one;
    // MatrixGlob's `.` stops at it: denying more is the safe side).
    ("@*:example.org", "@a\nb:example.org", EntityKind::User, true, "* matches any character"),
    // Case: user and room ids are case-sensitive (spec: identifiers), server
    // names are not (DNS; homeservers match ACLs ignoring case). Meowlnir folds
    // user ids too, matrix-protection-suite folds nothing: both deliberate differences.
    ("@*:example.org", "@SPAM:example.org", EntityKind::User, true, "MPS run: * takes capitals"),
    ("@spam:example.org", "@SPAM:example.org", EntityKind::User, false, "user ids are case-sensitive"),
    ("@spam*:example.org", "@SPAM1:example.org", EntityKind::User, false, "user globs are case-sensitive"),
    ("!Room:example.org", "!room:example.org", EntityKind::Room, false, "room ids are case-sensitive"),
    ("example.org", "Example.ORG", EntityKind::Server, true, "server names ignore case"),
    ("*.EVIL.example", "matrix.evil.example", EntityKind::Server, true, "server globs ignore case"),
];

fn read(event_type: &str, state_key: &str, content: serde_json::Value) -> Content {
    rule::parse(&Arc::from("!list"), event_type, state_key, &content.to_string()).expect("a rule type")
}

#[test]
fn globs() {
    for (pattern, entity, kind, expected, source) in GLOBS {
        let content = serde_json::json!({"entity": pattern, "recommendation": "m.ban"});
        let Content::Rule(r) = read(kind.event_type(), "k", content) else { panic!("{pattern}: not a rule") };
        assert_eq!(r.entity().matches(*kind, entity), *expected, "{pattern} ~ {entity:?} ({source})");
        // The index agrees with the rule itself.
        let mut list = PolicyList::new("!list");
        let mut index = Index::new();
        let content = serde_json::json!({"entity": pattern, "recommendation": "m.ban"}).to_string();
        index.apply_change(&list.apply(kind.event_type(), "k", &content).unwrap());
        assert_eq!(index.matching(*kind, entity).len() == 1, *expected, "index: {pattern} ~ {entity:?} ({source})");
    }
}

#[test]
fn hashed_entities() {
    // MSC4205's own example: padded standard base64 of the sha256.
    assert_eq!(sha256_published("@yarrgh:example.com"), "VPqwbUV7mMMkOVto3kPwsNXXiALMs7VCKWh3OeqqjGs=");
    let example = "VPqwbUV7mMMkOVto3kPwsNXXiALMs7VCKWh3OeqqjGs=";
    // Read under the stable and the unstable key, padded or not, URL-safe or not
    // (matrix-protection-suite reads both keys; Meowlnir the unstable one only).
    for (key, hash) in [
        ("org.matrix.msc4205.hashes", example.to_owned()),
        ("hashes", example.to_owned()),
        ("org.matrix.msc4205.hashes", example.trim_end_matches('=').to_owned()),
        ("org.matrix.msc4205.hashes", example.replace('+', "-").replace('/', "_")),
    ] {
        let content = serde_json::json!({"recommendation": "m.takedown", key: {"sha256": hash}});
        let Content::Rule(r) = read("m.policy.rule.user", "k", content) else { panic!("{key} {hash}") };
        assert!(r.entity().matches(EntityKind::User, "@yarrgh:example.com"), "{key} {hash}");
        assert!(!r.entity().matches(EntityKind::User, "@other:example.com"));
    }
    // A hash that is not 32 bytes is no rule (Meowlnir checks the length too).
    let short = serde_json::json!({"recommendation": "m.ban", "org.matrix.msc4205.hashes": {"sha256": "c2hvcnQ="}});
    assert!(matches!(read("m.policy.rule.user", "k", short), Content::Invalid(_)));
    // An entity beside a hash is read as the entity (as matrix-protection-suite does).
    let both =
        serde_json::json!({"entity": "@plain:example.com", "recommendation": "m.ban", "hashes": {"sha256": example}});
    let Content::Rule(r) = read("m.policy.rule.user", "k", both) else { panic!() };
    assert_eq!(r.entity(), EntityRef::Literal("@plain:example.com"));
    // Servers: peers hash the name as it appears; it matches as seen and lower-cased.
    // (A hash of the lower-cased name matches every spelling; one of a
    // capitalised name matches that spelling only.)
    for (published, other_spelling) in [("Banned.Example.com", false), ("banned.example.com", true)] {
        let content = serde_json::json!({"recommendation": "m.ban", "hashes": {"sha256": sha256_published(published)}});
        let Content::Rule(r) = read("m.policy.rule.server", "k", content.clone()) else { panic!() };
        assert!(r.entity().matches(EntityKind::Server, published), "{published} as published");
        let mut list = PolicyList::new("!list");
        let mut index = Index::new();
        index.apply_change(&list.apply("m.policy.rule.server", "k", &content.to_string()).unwrap());
        assert_eq!(index.matching(EntityKind::Server, published).len(), 1, "{published}");
        let matched = index.matching(EntityKind::Server, "BANNED.example.COM").len() == 1;
        assert_eq!(matched, other_spelling, "{published}: another spelling");
    }
}

#[test]
fn recommendations() {
    // Spec: `m.ban`; Mjolnir's and Draupnir's legacy alias; MSC4204's takedown,
    // stable and unstable. Anything else is kept and never acted on.
    for (text, expected, acts) in [
        ("m.ban", Recommendation::Ban, true),
        ("org.matrix.mjolnir.ban", Recommendation::Ban, true),
        ("m.takedown", Recommendation::Takedown, true),
        ("org.matrix.msc4204.takedown", Recommendation::Takedown, true),
        ("org.matrix.mjolnir.allow", Recommendation::Other(Box::new("org.matrix.mjolnir.allow".to_owned())), false),
        ("m.mute", Recommendation::Other(Box::new("m.mute".to_owned())), false),
    ] {
        let parsed = Recommendation::parse(text);
        assert_eq!(parsed, expected, "{text}");
        assert_eq!(parsed.acts(), acts, "{text}");
    }
    // Published as every peer reads it: Meowlnir and Mjolnir ignore `m.takedown`.
    assert_eq!(Recommendation::Takedown.published(), "org.matrix.msc4204.takedown");
    assert_eq!(Recommendation::Ban.published(), "m.ban");
}

#[test]
fn what_gleipnir_writes() {
    // Draupnir (matrix-protection-suite `createPolicy`) and Meowlnir name a new
    // rule base64(sha256(entity + recommendation)), padded: a ban both write is one rule.
    assert_eq!(
        state_key_for("@spam:example.org", &Recommendation::Ban),
        "F+RuwHO/GD3l+OGtc7DZEqDSdaoI1l6h8YapMxhJNVg="
    );
    let ban = publish("evil.example", &Recommendation::Ban, "spam", false);
    assert_eq!(ban.event_type, "m.policy.rule.server");
    assert_eq!(ban.content, serde_json::json!({"entity": "evil.example", "recommendation": "m.ban", "reason": "spam"}));
    let takedown = publish("@yarrgh:example.com", &Recommendation::Takedown, "csam", true);
    assert_eq!(
        takedown.content,
        serde_json::json!({
            "recommendation": "org.matrix.msc4204.takedown",
            "reason": "csam",
            "org.matrix.msc4205.hashes": {"sha256": "VPqwbUV7mMMkOVto3kPwsNXXiALMs7VCKWh3OeqqjGs="},
        })
    );
}

#[test]
fn type_precedence_and_removal() {
    let ban = |entity: &str| serde_json::json!({"entity": entity, "recommendation": "m.ban"}).to_string();
    // Spec: the three generations of type; for one state key the newest wins.
    let mut list = PolicyList::new("!list");
    list.apply("org.matrix.mjolnir.rule.user", "k", &ban("@a:x"));
    list.apply("m.room.rule.user", "k", &ban("@b:x"));
    assert_eq!(list.get(EntityKind::User, "k").unwrap().entity().to_string(), "@b:x");
    list.apply("org.matrix.mjolnir.rule.user", "k", &ban("@c:x"));
    assert_eq!(list.get(EntityKind::User, "k").unwrap().entity().to_string(), "@b:x", "an older type never overrides");
    // Mjolnir's "soft redacted" rules (test/integration/banListTest.ts) and
    // matrix-protection-suite: `{}` under the newest type removes the rule an
    // older type holds under that key.
    list.apply("m.policy.rule.user", "k", "{}");
    assert!(list.get(EntityKind::User, "k").is_none());
    // Mjolnir: "a rule of the most recent type won't be deleted when an old
    // rule is deleted for the same entity".
    let mut list = PolicyList::new("!list");
    list.apply("m.room.rule.user", "k", &ban("@old:x"));
    list.apply("m.policy.rule.user", "k", &ban("@new:x"));
    list.apply("m.room.rule.user", "k", "{}");
    assert_eq!(list.get(EntityKind::User, "k").unwrap().entity().to_string(), "@new:x");
    // The same rule state read in any order gives the same rules.
    let events = [
        ("m.room.rule.user", "k", ban("@old:x")),
        ("m.policy.rule.user", "k", "{}".to_owned()),
        ("org.matrix.mjolnir.rule.user", "j", ban("@j:x")),
    ];
    for order in [[0, 1, 2], [1, 0, 2], [2, 1, 0]] {
        let mut list = PolicyList::new("!list");
        list.apply_all(order.iter().map(|&i| (events[i].0, events[i].1, events[i].2.as_str())));
        let rules: Vec<String> = list.rules().map(|r| r.entity().to_string()).collect();
        assert_eq!(rules, ["@j:x"], "order {order:?}");
    }
}

#[test]
fn acl_construction() {
    let acl = |own: &str, servers: &[&str]| {
        let mut list = PolicyList::new("!list");
        let mut index = Index::new();
        for (i, server) in servers.iter().enumerate() {
            let content = serde_json::json!({"entity": server, "recommendation": "m.ban"}).to_string();
            if let Some(change) = list.apply("m.policy.rule.server", &i.to_string(), &content) {
                index.apply_change(&change);
            }
        }
        compile_acl(&index, own).acl
    };
    // Spec (m.room.server_acl): allow `*`, deny the banned, sorted here so an
    // unchanged ACL compares equal.
    assert_eq!(acl("own.example", &["b.example", "a.example"]).deny, ["a.example", "b.example"]);
    // The bot's own server is never denied: homeservers match ACLs on the
    // name without its port, in any case, literal or glob.
    for own in ["own.example", "own.example:8448", "OWN.example"] {
        let denied = acl(own, &["own.example", "*.example", "OWN.EXAMPLE", "evil.example"]).deny;
        assert_eq!(denied, ["evil.example"], "own server {own}");
    }
    // An IP literal own server keeps IP literals allowed (`allow_ip_literals`).
    assert!(acl("127.0.0.1:8008", &["evil.example"]).allow_ip_literals);
    assert!(acl("[::1]:8448", &["evil.example"]).allow_ip_literals);
    assert!(!acl("own.example", &["evil.example"]).allow_ip_literals);
    // A hashed server rule cannot be written into an ACL (it names no server).
    let mut list = PolicyList::new("!list");
    let mut index = Index::new();
    let hashed = serde_json::json!({"recommendation": "m.ban", "hashes": {"sha256": sha256_published("evil.example")}});
    index.apply_change(&list.apply("m.policy.rule.server", "h", &hashed.to_string()).unwrap());
    let compiled = compile_acl(&index, "own.example");
    assert!(compiled.acl.deny.is_empty() && compiled.left_out.len() == 1, "{compiled:?}");
}
