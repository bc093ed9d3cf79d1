//! Fuzz test of the account-data readers: what is stored under the bot's
//! account may have been written by another bot, another version or a
//! person. Run longer with `cargo xtask fuzz`.

use gleipnir_fuzz::structured::{self, Vocabulary, chance};
use gleipnir_fuzz::{Unstructured, arbitrary};
use serde_json::Value;

use super::*;

const KEYS: &[&str] = &["rooms", "references", "enabled", "flooding", "max-per-minute", "consequence", "watch-words"];

const STRINGS: &[&str] = &[
    "!room:example.org",
    "#room:example.org",
    "https://matrix.to/#/%23list%3Aexample.org",
    "https://matrix.to/#/!list:example.org?via=example.org",
    "flooding",
    "Flooding",
    "least-authority",
    "10",
    "redact",
    "",
];

/// Content of any shape, usually an object with the known fields.
fn content(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let vocabulary = Vocabulary { keys: KEYS, strings: STRINGS };
    let value = if chance(u, 85)? {
        Value::Object(structured::object(u, vocabulary, 3)?)
    } else {
        structured::value(u, vocabulary, 3)?
    };
    Ok(value.to_string())
}

/// Every option offered applies to the content it was offered for.
fn options_apply(problems: &[Problem], content: &Value) {
    for option in numbered(problems) {
        let _ = option.describe();
        if let Err(e) = option.apply(Some(content)) {
            panic!("option `{}` does not apply to the content it was offered for: {e}", option.describe());
        }
    }
    let _ = report(problems);
}

fn check(input: &str) {
    let Ok(content) = serde_json::from_str::<Value>(input) else { return };
    for store in [PROTECTED_ROOMS, WATCHED_LISTS, ENABLED_PROTECTIONS] {
        let (good, problems) = store.read(Some(&content));
        options_apply(&problems, &content);
        for (index, item) in good {
            let problem = store.use_problem(Some(&content), index, &item, "cannot be joined".to_owned());
            options_apply(&[problem], &content);
        }
    }
    let (_, problems) = read_settings(Some(&content));
    options_apply(&problems, &content);
}

#[test]
fn fuzz_account_data() {
    gleipnir_fuzz::fuzz("account-data", content, check);
}
