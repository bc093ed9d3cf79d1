//! Fuzz test of command parsing: what moderators (or anyone who can post in
//! the management room) type. Run longer with `cargo xtask fuzz`.

use gleipnir_fuzz::structured::{self, chance, pick};
use gleipnir_fuzz::{Unstructured, arbitrary};

use super::*;

const WORDS: &[&str] = &[
    "add",
    "remove",
    "enable",
    "disable",
    "show",
    "preview",
    "config",
    "set",
    "reset",
    "grant",
    "revoke",
    "reload",
    "create",
    "mode",
    "matching",
    "--limit",
    "--room",
    "--no-confirm",
    "flooding",
    "max-per-minute",
    "redact",
    "ban",
    "@spam:evil.example",
    "@*:evil.example",
    "!room:example.org",
    "#room:example.org",
    "evil.example",
    "*.evil.example",
    "https://matrix.to/#/!room:example.org/$event?via=example.org",
    "https://matrix.to/#/%23room%3Aexample.org",
    "https://matrix.to/#/@user:example.org",
    "%",
    "%zz",
    "%e2%82",
    "0",
    "1",
    "1000",
    "10001",
    "4294967296",
    "-1",
    "\"",
    "\"quoted words\"",
    "coc",
    "spam",
    "mode",
];

/// Known command words and arguments, random tokens, odd whitespace and
/// quotes, sometimes behind the prefix or the bot's mention.
fn command(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let names: Vec<&str> = COMMANDS.iter().map(|(name, _)| *name).collect();
    let mut text = String::new();
    if chance(u, 30)? {
        text.push_str(pick(u, &["!gleipnir ", "@bot:localhost: ", "Gleipnir: ", "!gleipnirx "])?);
    }
    text.push_str(pick(u, &names)?);
    for _ in 0..u.int_in_range(0..=8u8)? {
        text.push_str(pick(u, &[" ", "  ", "\t", "\n", "\u{a0}", "\u{3000}"])?);
        text.push_str(&structured::text(u, WORDS)?);
    }
    Ok(text)
}

fn check(text: &str) {
    let names: Vec<&str> = COMMANDS.iter().map(|(name, _)| *name).collect();
    for body in [Some(text), addressed(text, "!gleipnir", "@bot:localhost", Some("Gleipnir"))].into_iter().flatten() {
        let _ = parse(body);
    }
    for word in text.split_whitespace() {
        let _ = room_ref(word);
        let _ = policy_entity(word);
        let _ = closest(word, &names);
    }
}

#[test]
fn fuzz_commands() {
    gleipnir_fuzz::fuzz("commands", command, check);
}
