//! Fuzz test of the config file: TOML made of the known sections and keys
//! with values of every type. Run longer with `cargo xtask fuzz`.

use gleipnir_fuzz::structured::{self, chance, pick};
use gleipnir_fuzz::{Arbitrary, Unstructured, arbitrary};

use super::*;

const SECTIONS: &[(&str, &[&str])] = &[
    (
        "matrix",
        &["homeserver", "user_id", "access_token", "access_token_file", "password", "password_file", "management_room"],
    ),
    ("storage", &["data_dir"]),
    ("plugins", &["dir", "settings", "watch", "enable_new"]),
    ("commands", &["prefix", "confirm_above"]),
    ("sandbox", &["call_deadline", "memory", "max_actions"]),
    ("actions", &["dry_run"]),
    ("startup", &["on_problem"]),
    ("policy", &["room_takedowns"]),
    ("log", &["level", "format"]),
    ("protections.flooding", &["grants", "grantable"]),
    ("protections.Bad_Name", &["grants"]),
    ("unknown", &["key"]),
];

const STRINGS: &[&str] = &[
    "http://127.0.0.1:8008/",
    "https://",
    "ftp://x",
    "@gleipnir:localhost",
    "gleipnir",
    "#moderators:localhost",
    "!room",
    "secret",
    "",
    ".",
    "no-such-dir",
    "no-such-file.txt",
    "20ms",
    "0ms",
    "11s",
    "32MiB",
    "64MB",
    "512KiB",
    "1GiB",
    "4GiB",
    "5TiB",
    "99999999999999999999MiB",
    "safe_mode",
    "exit",
    "!gleipnir",
    "has space",
    "redact",
    "ban",
    "notify-management",
    "fly",
];

/// A TOML value of any type, mostly from the known strings.
fn toml_value(u: &mut Unstructured<'_>, depth: u8) -> arbitrary::Result<String> {
    // A JSON string is a TOML basic string, but for a few control characters
    // (then the line does not parse, which is worth trying too).
    let quote = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    Ok(match u.int_in_range(0..=if depth == 0 { 4 } else { 6u8 })? {
        0 => bool::arbitrary(u)?.to_string(),
        1 => pick(u, &["0", "1", "5", "-1", "1000001", "33554432", "9223372036854775807"])?.to_string(),
        2 => pick(u, &["1.5", "nan", "inf", "-0.0"])?.to_string(),
        3 | 4 => quote(&structured::text(u, STRINGS)?),
        5 => {
            let items =
                (0..u.int_in_range(0..=3u8)?).map(|_| toml_value(u, depth - 1)).collect::<Result<Vec<_>, _>>()?;
            format!("[{}]", items.join(", "))
        }
        _ => format!("{{ grants = {} }}", toml_value(u, depth - 1)?),
    })
}

/// Sections with known keys (now and then an unknown one, a repeated one
/// or a line of noise), in any order.
fn config(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let mut text = String::new();
    for _ in 0..u.int_in_range(0..=6u8)? {
        let (section, keys) = pick(u, SECTIONS)?;
        text.push_str(&format!("[{section}]\n"));
        for _ in 0..u.int_in_range(0..=5u8)? {
            let key = if chance(u, 5)? { structured::text(u, &["x", "dir"])? } else { (*pick(u, keys)?).to_owned() };
            let key = serde_json::Value::String(key).to_string();
            text.push_str(&format!("{key} = {}\n", toml_value(u, 2)?));
        }
        if chance(u, 5)? {
            text.push_str(&structured::text(u, &["= 1", "[", "]]", "\"", "x = \"\"\"", "# comment"])?);
            text.push('\n');
        }
    }
    structured::maybe_truncated(u, text)
}

fn check(text: &str) {
    // An empty directory: relative paths in the config lead nowhere.
    let base = std::env::temp_dir().join("gleipnir-fuzz-config-base");
    let _ = std::fs::create_dir_all(&base);
    let _ = parse(text, &base);
}

#[test]
fn fuzz_config() {
    gleipnir_fuzz::fuzz("config", config, check);
}
