//! `docs/protections.md`, the catalogue page: every protection, first-party
//! and test, written from what `gleipnir plugin inspect --json` prints for
//! it (`json::descriptor`), so the page cannot drift from the plugins. The
//! test command regenerates it; under CI (`CI` set) a page that differs
//! from the plugins fails the run instead, so what is committed is what the
//! plugins say.

use std::fmt::Write;
use std::path::PathBuf;

use serde_json::Value;

use super::*;

/// What each first-party protection corresponds to in Draupnir, Mjolnir and
/// Meowlnir (the one thing a descriptor does not say). A first-party
/// protection missing here fails the test.
const COUNTERPARTS: &[(&str, &str)] = &[
    ("flooding", "Draupnir and Mjolnir BasicFloodingProtection"),
    ("newcomer-watch-words", "Draupnir and Mjolnir WordListProtection; Meowlnir bad_words"),
    ("least-authority", "none: Gleipnir's own (newcomers gated by time and messages)"),
    ("takedown", "Draupnir's `m.takedown` policy handling (MSC4204)"),
    ("mention-limit", "Draupnir MentionLimitProtection"),
    ("media", "Draupnir and Mjolnir MessageIsMediaProtection, MessageIsVoiceProtection, FirstMessageIsImageProtection"),
    ("join-wave", "Draupnir and Mjolnir JoinWaveShortCircuitProtection; Meowlnir max_join_rate"),
    ("trusted-reporters", "Draupnir and Mjolnir TrustedReporters"),
    ("new-joiner-servers", "Draupnir NewJoinerProtection"),
    ("membership-churn", "Draupnir MembershipChangeProtection"),
    ("display-names", "Meowlnir bad_displaynames (impersonation of moderators is Gleipnir's own)"),
    ("invalid-event", "Draupnir InvalidEventProtection"),
    ("shouting", "none: an example protection written in Python"),
];

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn words(list: &Value) -> String {
    let items: Vec<&str> = list.as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if items.is_empty() { "none".to_owned() } else { items.join(", ") }
}

/// A table cell: no line breaks, no column separators.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The section of one protection, from its `inspect --json` descriptor.
fn section(crate_name: &str, d: &Value, folder: &str, counterpart: Option<&str>) -> String {
    let text = |key: &str| d[key].as_str().unwrap_or_default().to_owned();
    let name = text("name");
    let heading = if name == crate_name { name } else { format!("{crate_name} (the protection `{name}`)") };
    let mut out = format!("### {heading} {}\n\n{}\n\n", text("version"), text("summary"));
    if let Some(counterpart) = counterpart {
        let _ = writeln!(out, "- Counterpart: {counterpart}");
    }
    let readme = workspace().join(folder).join("README.md");
    if readme.exists() {
        let _ = writeln!(out, "- Documentation: [{folder}/README.md](../{folder}/README.md)");
    } else {
        let _ = writeln!(out, "- Source: `{folder}`");
    }
    let _ = writeln!(out, "- Contract: `{}`", text("wit"));
    let _ = writeln!(out, "- Capabilities: {}", words(&d["capabilities"]));
    let _ = writeln!(out, "- Events: {}", words(&d["events"]));
    if d["checks"].as_array().is_some_and(|c| !c.is_empty()) {
        let _ = writeln!(out, "- Decides before an event lands (`check`): {}", words(&d["checks"]));
    }
    if let Some(ms) = d["tick_ms"].as_u64() {
        let _ = writeln!(out, "- Ticks: every {} ms", ms);
    }
    for c in d["commands"].as_array().into_iter().flatten() {
        let args = c["args"].as_str().filter(|a| !a.is_empty()).map_or(String::new(), |a| format!(" {a}"));
        let _ = writeln!(
            out,
            "- Command: `!gleipnir {} {}{args}`: {}",
            text("name"),
            c["name"].as_str().unwrap_or_default(),
            c["help"].as_str().unwrap_or_default()
        );
    }
    let settings = d["settings"].as_array().map(Vec::as_slice).unwrap_or_default();
    if settings.is_empty() {
        out.push_str("\nNo settings.\n");
    } else {
        out.push_str("\n| setting | type | default | meaning |\n|---|---|---|---|\n");
        for s in settings {
            let get = |k: &str| cell(s[k].as_str().unwrap_or_default());
            let default = get("default_text");
            let default = if default.is_empty() { "(empty)".to_owned() } else { format!("`{default}`") };
            let _ = writeln!(out, "| `{}` | {} | {default} | {} |", get("key"), get("kind_text"), get("doc"));
        }
    }
    out
}

/// The whole page, from every plugin's descriptor; `None` when a plugin was
/// not built here (its toolchain missing), so the page cannot be whole.
fn page() -> Option<String> {
    let mut first_party = Vec::new();
    let mut test_plugins = Vec::new();
    // Room for protections in other languages, whose runtimes are bigger
    // (an operator raises `instances` for them the same way).
    let runtime = gleipnir_tests::runtime_with(gleipnir_runtime::Limits { instances: 16, ..Default::default() });
    for (name, folder, path) in plugins::ALL {
        let Some(path) = path else {
            eprintln!("not checking docs/protections.md: {name} was not built here (`cargo xtask test` builds it)");
            return None;
        };
        let plugin = match runtime.load_file(path.as_ref()) {
            Ok(plugin) => plugin,
            // Test plugins that exist to be refused: the page says why, in a line.
            Err(e) if folder.starts_with("tests/") => {
                let why = e.to_string().lines().next().unwrap_or_default().to_owned();
                let text =
                    format!("### {name}\n\nRefused when loaded, on purpose: {}\n\n- Source: `{folder}`\n", cell(&why));
                test_plugins.push((name.to_string(), text));
                continue;
            }
            Err(e) => panic!("loading {path}: {e}"),
        };
        let d = json::descriptor(plugin.descriptor(), plugin.wit_version(), plugin.content_hash());
        if folder.starts_with("tests/") {
            test_plugins.push((name.to_string(), section(name, &d, folder, None)));
        } else {
            assert_eq!(d["name"], *name, "the plugin in {folder} names itself {}", d["name"]);
            let counterpart = COUNTERPARTS.iter().find(|(n, _)| n == name).map(|(_, c)| *c);
            let counterpart = counterpart.unwrap_or_else(|| {
                panic!("{name} has no entry in COUNTERPARTS (tests/tests/contract/catalogue.rs): say what it corresponds to")
            });
            first_party.push((name.to_string(), section(name, &d, folder, Some(counterpart))));
        }
    }
    first_party.sort();
    test_plugins.sort();
    let mut out = String::from(
        "# Protections\n\n\
         <!-- Generated by `cargo xtask test` (tests/tests/contract/catalogue.rs) from what\n\
         `gleipnir plugin inspect --json` prints for each plugin. Do not edit: change the plugin. -->\n\n\
         Every protection Gleipnir ships, and the test protections its tests load. Enable one from the\n\
         management room with `!gleipnir protections enable NAME`; grant it what it asks for under\n\
         `[protections.NAME] grants` in the config file. `gleipnir plugin inspect FILE` says the same\n\
         for any `.wasm` protection, yours included.\n\n",
    );
    let _ = writeln!(out, "| protection | what it does |\n|---|---|");
    for (name, _) in &first_party {
        let (_, _, Some(path)) = plugins::ALL.iter().find(|(n, _, _)| n == name).unwrap() else { unreachable!() };
        let plugin = gleipnir_tests::load_with(&runtime, path);
        let _ = writeln!(out, "| [{name}](#{}) | {} |", anchor(&plugin), cell(&plugin.descriptor().summary));
    }
    out.push_str("\n## First-party protections\n\n");
    for (_, s) in &first_party {
        out.push_str(s);
        out.push('\n');
    }
    out.push_str(
        "## Test protections\n\n\
         Built from `tests/plugins/` for the tests (hostile, broken or instrumented on purpose); never\n\
         load them in a real deployment.\n\n",
    );
    for (_, s) in &test_plugins {
        out.push_str(s);
        out.push('\n');
    }
    Some(out.trim_end().to_owned() + "\n")
}

/// The heading's anchor as GitHub writes it: `### join-wave 1.0.0` → `join-wave-100`.
fn anchor(plugin: &gleipnir_runtime::Plugin) -> String {
    let d = plugin.descriptor();
    format!("{} {}", d.name, d.version)
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn the_catalogue_page_says_what_the_plugins_say() {
    let Some(page) = page() else { return };
    let path = workspace().join("docs/protections.md");
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    if written == page {
        return;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "docs/protections.md differs from what the plugins say: run `cargo xtask test` (or `cargo test -p \
             gleipnir-tests --test contract catalogue`) and commit the page"
        );
    }
    std::fs::write(&path, page).expect("writing docs/protections.md");
    eprintln!("docs/protections.md was out of date and has been written again: commit it");
}
