//! Fuzz tests of what policy rooms send: rule events in any order and shape,
//! globs against entities. Run longer with `cargo xtask fuzz`.

use std::collections::BTreeSet;
use std::sync::Arc;

use gleipnir_fuzz::structured::{self, Vocabulary, chance, pick};
use gleipnir_fuzz::{Unstructured, arbitrary};
use serde_json::{Value, json};

use crate::acl::{compile, host_of};
use crate::glob::Glob;
use crate::rule::{Entity, EntityKind, Rule, sha256_base64};
use crate::{Index, Members, PolicyList, bans_for};

const EVENT_TYPES: &[&str] = &[
    "m.policy.rule.user",
    "m.policy.rule.room",
    "m.policy.rule.server",
    "m.room.rule.user",
    "m.room.rule.server",
    "org.matrix.mjolnir.rule.user",
    "org.matrix.mjolnir.rule.room",
    "org.matrix.mjolnir.rule.server",
    "m.policy.rule.planet",
    "m.room.topic",
];

const ENTITIES: &[&str] = &[
    "@spam:evil.example",
    "@*:evil.example",
    "@sp?m:*",
    "!room:evil.example",
    "#room:evil.example",
    "evil.example",
    "*.evil.example",
    "EVIL.example",
    "good.example",
    "*",
    "?",
    "127.0.0.1",
    "[::1]",
    "*a*a*a*a*a*a*b",
    "",
];

const RULE_KEYS: &[&str] =
    &["entity", "recommendation", "reason", "hashes", "sha256", "org.matrix.msc4205.hashes", "state_key"];

const OWN_SERVERS: &[&str] =
    &["good.example", "good.example:8448", "GOOD.example", "127.0.0.1:8008", "[::1]:8448", "[::1]", "evil.example"];

/// One rule event's content: usually rule-shaped, with any field wrongly
/// typed or missing now and then; sometimes `{}` or not JSON at all.
fn content(u: &mut Unstructured<'_>, strings: &[&str]) -> arbitrary::Result<String> {
    let vocabulary = Vocabulary { keys: RULE_KEYS, strings };
    let mut object = structured::object(u, vocabulary, 2)?;
    if chance(u, 70)? {
        let entity = pick(u, ENTITIES)?;
        if chance(u, 20)? {
            object.insert("hashes".into(), json!({ "sha256": sha256_base64(entity) }));
        } else {
            object.insert("entity".into(), json!(entity));
        }
    }
    if chance(u, 70)? {
        let recommendation = pick(u, &["m.ban", "m.takedown", "org.matrix.mjolnir.ban", "m.mute"])?;
        object.insert("recommendation".into(), json!(recommendation));
    }
    if chance(u, 10)? {
        object.clear();
    }
    structured::maybe_truncated(u, Value::Object(object).to_string())
}

/// `{"own": server, "events": [[type, state key, content], …], "probes": [entity, …]}`
fn rule_events(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let mut strings: Vec<&str> = ENTITIES.to_vec();
    strings.extend(["m.ban", "m.takedown", "spam"]);
    let mut events = Vec::new();
    for _ in 0..u.int_in_range(0..=12u8)? {
        let state_key = structured::text(u, &["k", "", "ban:@spam:evil.example", "k2"])?;
        events.push(json!([pick(u, EVENT_TYPES)?, state_key, content(u, &strings)?]));
    }
    let mut probes = Vec::new();
    for _ in 0..u.int_in_range(0..=4u8)? {
        probes.push(structured::text(u, ENTITIES)?);
    }
    Ok(json!({ "own": structured::text(u, OWN_SERVERS)?, "events": events, "probes": probes }).to_string())
}

/// The rules a simple scan finds: what the index must find too.
fn naive(list: &PolicyList, kind: EntityKind, probe: &str) -> BTreeSet<(String, String)> {
    list.rules().filter(|r| r.kind == kind && r.entity().matches(kind, probe)).map(key).collect()
}

fn key(rule: &Arc<Rule>) -> (String, String) {
    (rule.state_key().to_string(), rule.entity().to_string())
}

fn check_rule_events(input: &str) {
    let Ok(case) = serde_json::from_str::<Value>(input) else { return };
    let own = case["own"].as_str().unwrap_or("");
    let events: Vec<(&str, &str, &str)> = case["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e[0].as_str()?, e[1].as_str()?, e[2].as_str()?)))
        .collect();
    let probes: Vec<&str> = case["probes"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();

    // One event at a time into one list, a batch into another: the same rules.
    let mut one_by_one = PolicyList::new("!list");
    let mut index = Index::new();
    for (event_type, state_key, content) in &events {
        if let Some(change) = one_by_one.apply(event_type, state_key, content) {
            index.apply_change(&change);
        }
    }
    let mut batch = PolicyList::new("!list");
    let delta = batch.apply_all(events.iter().copied());
    let rules = |list: &PolicyList| list.rules().map(key).collect::<BTreeSet<_>>();
    assert_eq!(rules(&one_by_one), rules(&batch), "one by one and in a batch");
    assert_eq!(one_by_one.len(), one_by_one.rules().count());
    assert_eq!(index.len(), one_by_one.len());

    let mut members = Members::new();
    for probe in &probes {
        members.set("!protected", probe, true);
        for kind in EntityKind::ALL {
            let found: BTreeSet<_> = index.matching(kind, probe).into_iter().map(key).collect();
            assert_eq!(found, naive(&one_by_one, kind, probe), "{kind:?} rules matching {probe:?}");
        }
    }
    let _ = bans_for(&delta, &members);

    // Never deny the bot's own server, whatever the rules.
    let compiled = compile(&index, own);
    let host = host_of(own);
    for denied in &compiled.acl.deny {
        assert!(!Entity::from_text(denied).matches(EntityKind::Server, &host), "{denied} denies {own}");
    }
}

#[test]
fn fuzz_policy_rules() {
    gleipnir_fuzz::fuzz("policy-rules", rule_events, check_rule_events);
}

/// Wildcard matching by dynamic programming over characters: slow and
/// obviously right, to check the fast matcher against.
fn reference_matches(pattern: &str, text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    // row[j]: the pattern so far matches text[..j].
    let mut row = vec![false; text.len() + 1];
    row[0] = true;
    for p in pattern.chars() {
        let mut next = vec![false; text.len() + 1];
        match p {
            '*' => {
                let mut any = false;
                for j in 0..=text.len() {
                    any |= row[j];
                    next[j] = any;
                }
            }
            '?' => next[1..].copy_from_slice(&row[..text.len()]),
            c => {
                for j in 1..=text.len() {
                    next[j] = row[j - 1] && text[j - 1] == c;
                }
            }
        }
        row = next;
    }
    row[text.len()]
}

const GLOB_PIECES: &[&str] = &["*", "?", "a", "b", "ab", "é", "💥", ".", ":", "@", "evil.example"];

/// `[pattern, text]`, both from a small alphabet so matches happen, and now
/// and then long: a text of a few thousand characters against many stars.
fn glob_case(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let mut pattern = String::new();
    for _ in 0..u.int_in_range(1..=24u8)? {
        pattern.push_str(pick(u, GLOB_PIECES)?);
    }
    let mut text = String::new();
    for _ in 0..u.int_in_range(0..=24u8)? {
        text.push_str(pick(u, &GLOB_PIECES[2..])?);
    }
    if chance(u, 20)? {
        // Up to a few KB: entities are at most 255 bytes, and matching is
        // linear in the text for each pattern character, not exponential.
        text = text.repeat(u.int_in_range(1..=15)?);
    }
    Ok(json!([pattern, text]).to_string())
}

fn check_glob(input: &str) {
    let Ok([pattern, text]) = serde_json::from_str::<[String; 2]>(input) else { return };
    let Some(glob) = Glob::new(&pattern) else { return };
    let fast = glob.matches(&text);
    // The reference is quadratic: only for inputs it handles quickly.
    if pattern.len() * text.len() <= 200_000 {
        assert_eq!(fast, reference_matches(&pattern, &text), "{pattern:?} against {text:?}");
    }
    let _ = glob.key();
}

#[test]
fn fuzz_globs() {
    gleipnir_fuzz::fuzz("globs", glob_case, check_glob);
}

/// Backtracking to every star would be exponential; the matcher keeps only
/// the last star, so each of these is linear in the text.
#[test]
fn pathological_globs_match_in_linear_time() {
    let long_a = "a".repeat(20_000);
    for (pattern, text, expected) in [
        ("*a*a*a*a*a*a*a*b", long_a.as_str(), false),
        ("*a*a*a*a*a*a*a*a", long_a.as_str(), true),
        ("a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*c", long_a.as_str(), false),
        ("*??????????????????????????????b", long_a.as_str(), false),
        ("*aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", long_a.as_str(), false),
    ] {
        let input = json!([pattern, text]).to_string();
        gleipnir_fuzz::bounded("globs", pattern, &input, &|input| {
            let [pattern, text]: [String; 2] = serde_json::from_str(input).expect("a pair");
            assert_eq!(Glob::new(&pattern).expect("a glob").matches(&text), expected, "{pattern}");
        });
    }
}
