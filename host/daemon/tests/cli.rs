//! The `gleipnir plugin` commands, run as a user runs them.

use std::path::PathBuf;
use std::process::{Command, Output};

use gleipnir_tests::plugins;

fn gleipnir(args: &[&str]) -> Output {
    let cache = gleipnir_tests::cache_dir();
    Command::new(env!("CARGO_BIN_EXE_gleipnir"))
        .args(args)
        .arg("--cache-dir")
        .arg(&cache)
        .output()
        .expect("gleipnir runs")
}

fn example(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples").join(name).display().to_string()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn inspect_shows_settings_capabilities_and_contract() {
    let out = gleipnir(&["plugin", "inspect", plugins::FLOODING]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for expected in [
        "flooding 1.0.0",
        "contract: gleipnir:protection@0.2.0",
        "capabilities: redact, ban, notify-management",
        "events: message",
        "max-per-minute (integer (1..=10000)) = 10",
        "consequence (one of: redact-and-ban, redact, notify) = redact-and-ban",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in\n{stdout}");
    }
    // A component built for the older contract says so, and what it has.
    let old = gleipnir(&["plugin", "inspect", gleipnir_tests::fixtures::FLOODING_0_1_0]);
    assert!(text(&old.stdout).contains("contract: gleipnir:protection@0.1.0"), "{}", text(&old.stdout));
    // Commands, checks and the tick a 0.2.0 protection declares.
    let witness = text(&gleipnir(&["plugin", "inspect", plugins::WITNESS]).stdout);
    for expected in ["ticks: every 2s", "checks (pre-emptive): event, join, invite", "  witness say WORDS…: reply"] {
        assert!(witness.contains(expected), "missing {expected:?} in\n{witness}");
    }
}

#[test]
fn inspect_json_is_machine_readable() {
    let out = gleipnir(&["plugin", "inspect", plugins::FLOODING, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], "flooding");
    assert_eq!(v["wit"], "gleipnir:protection@0.2.0");
    assert_eq!(v["settings"][0]["key"], "max-per-minute");
    assert_eq!(v["settings"][0]["default"], 10);
    assert_eq!(v["settings"][0]["kind"]["min"], 1);
}

/// The issue's scenario: 15 messages from one user within 20 seconds, 5 from
/// another: a ban and redactions for the first, nothing for the second.
#[test]
fn run_bans_the_flooder_and_leaves_the_chatter_alone() {
    let out = gleipnir(&["plugin", "run", plugins::FLOODING, "--events", &example("flood.jsonl")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let actions: Vec<serde_json::Value> =
        text(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    let count = |kind: &str| actions.iter().filter(|a| a["action"] == kind).count();
    assert_eq!(count("ban"), 1);
    assert_eq!(count("redact"), 15);
    assert!(actions.iter().all(|a| !a.to_string().contains("alice")), "{actions:#?}");
    let ban = actions.iter().find(|a| a["action"] == "ban").unwrap();
    assert_eq!(ban["user_id"], "@spammer:example.org");
}

#[test]
fn run_reports_malformed_lines_by_number_and_goes_on() {
    let dir = std::env::temp_dir().join(format!("gleipnir-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let events = dir.join("events.jsonl");
    let good = std::fs::read_to_string(example("flood.jsonl")).unwrap();
    let wrong_type = r#"{"room_id":"!r","event_id":"$e","sender":"@a:x","type":5,"origin_server_ts":1,"content":{}}"#;
    std::fs::write(&events, format!("{wrong_type}\n\nnot json\n{good}")).unwrap();
    let out = gleipnir(&["plugin", "run", plugins::FLOODING, "--events", events.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("line 1: field `type`: is a number, not a string"), "{stderr}");
    assert!(stderr.contains("line 3: not a JSON event"), "{stderr}");
    assert!(text(&out.stdout).contains("\"ban\""), "the good lines are still handled");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_refuses_bad_settings_with_the_reason() {
    for (set, expected) in [
        ("max-per-minute=0", "setting `max-per-minute`: 0 is outside 1..=10000"),
        ("max-per-minute=lots", "setting `max-per-minute`: `lots` is not a whole number"),
        ("consequence=explode", "`explode` is not one of: redact-and-ban, redact, notify"),
        ("volume=11", "setting `volume`: no such setting; known keys: max-per-minute, consequence, reason"),
        ("max-per-minute", "write KEY=VALUE"),
    ] {
        let out = gleipnir(&["plugin", "run", plugins::FLOODING, "--events", &example("flood.jsonl"), "--set", set]);
        assert_eq!(out.status.code(), Some(2), "{set}");
        assert!(text(&out.stderr).contains(expected), "{set}: {}", text(&out.stderr));
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn files_that_are_not_protections_get_a_clear_error() {
    let out = gleipnir(&["plugin", "inspect", &example("flood.jsonl")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not a valid WebAssembly component"), "{}", text(&out.stderr));
    let out = gleipnir(&["plugin", "inspect", plugins::BAD_SPEC]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("setting `threshold`"), "{}", text(&out.stderr));
}

#[test]
fn config_check_accepts_the_example_and_lists_every_problem_of_a_bad_one() {
    let dir = std::env::temp_dir().join(format!("gleipnir-config-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::create_dir_all(dir.join("target/plugins")).unwrap();
    let token = dir.join("data/access_token");
    std::fs::write(&token, "syt_secret\n").unwrap();
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config.example.toml");
    let good = dir.join("config.toml");
    std::fs::copy(&example, &good).unwrap();
    // A token file others can read is refused, with how to fix it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_gleipnir")).args(["config", "check", "--config"]).arg(&good).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("holds a secret and others can read it (mode 644)"), "{}", text(&out.stderr));
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_gleipnir")).args(["config", "check", "--config"]).arg(&good).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("flooding may: redact, ban, notify-management"), "{}", text(&out.stdout));
    assert!(!text(&out.stdout).contains("syt_secret"), "secrets are never printed");

    let bad = dir.join("bad.toml");
    let broken = std::fs::read_to_string(&example)
        .unwrap()
        .replace("@gleipnir:localhost", "gleipnir")
        .replace("\"50ms\"", "\"forever\"");
    std::fs::write(&bad, broken).unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_gleipnir")).args(["config", "check", "--config"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("2 problem(s)"), "{stderr}");
    assert!(stderr.contains("matrix.user_id: `gleipnir` is not a user id"), "{stderr}");
    assert!(stderr.contains("sandbox.call_deadline: `forever` is not a duration"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `plugin test`: a case file (events in, expected actions out) run through
/// the real runtime, so a `.wasm` can be tested without Rust.
#[test]
fn test_runs_cases_and_fails_on_a_wrong_expectation() {
    let cases = example("flooding-cases.json");
    let out = gleipnir(&["plugin", "test", plugins::FLOODING, &cases]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).ends_with("3 passed, 0 failed\n"), "{}", text(&out.stdout));

    // The same cases with the flood's ban expected for another user: that case fails, with the difference.
    let wrong = std::fs::read_to_string(&cases).unwrap().replacen(
        r#""user_id": "@spammer:example.org""#,
        r#""user_id": "@someone-else:example.org""#,
        1,
    );
    let dir = std::env::temp_dir().join(format!("gleipnir-cli-cases-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("wrong.json");
    std::fs::write(&path, wrong).unwrap();
    let out = gleipnir(&["plugin", "test", plugins::FLOODING, path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("FAIL four messages in a minute are a flood when the limit is 3"), "{stdout}");
    assert!(stdout.contains("action 5: expected {\"action\":\"ban\""), "{stdout}");
    assert!(stdout.contains("@someone-else:example.org") && stdout.ends_with("2 passed, 1 failed\n"), "{stdout}");

    // A file that is not a case file is an error (exit 2), naming it.
    std::fs::write(&path, r#"{"cases": [{"name": "x"}]}"#).unwrap();
    let out = gleipnir(&["plugin", "test", plugins::FLOODING, path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("is not a case file"), "{}", text(&out.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `plugin new`: the crate it writes passes its test and builds into a
/// component the host loads, as written. (It builds a crate of its own, so
/// this takes a minute; the build is cached under target/plugin-new.)
#[test]
fn plugin_new_writes_a_protection_that_builds_and_passes_its_test() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = std::env::temp_dir().join(format!("gleipnir-cli-new-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let crate_dir = dir.join("link-limit");
    let out = gleipnir_bare(&["plugin", "new", "link-limit", "--dir", crate_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The same dependency versions as this workspace, without the network.
    std::fs::copy(root.join("Cargo.lock"), crate_dir.join("Cargo.lock")).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let target = root.join("target/plugin-new");
    let cargo_in = |args: &[&str]| {
        Command::new(&cargo)
            .args(args)
            .current_dir(&crate_dir)
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .output()
            .expect("cargo runs")
    };
    let tested = cargo_in(&["test", "--offline", "--quiet"]);
    assert!(tested.status.success(), "{}{}", text(&tested.stdout), text(&tested.stderr));
    assert!(text(&tested.stdout).contains("1 passed"), "{}", text(&tested.stdout));
    let built = cargo_in(&["build", "--offline", "--quiet", "--release", "--target", "wasm32-wasip2"]);
    assert!(built.status.success(), "{}", text(&built.stderr));
    let component = target.join("wasm32-wasip2/release/link_limit.wasm");
    let inspected = gleipnir(&["plugin", "inspect", component.to_str().unwrap()]);
    assert!(
        text(&inspected.stdout).contains("link-limit 0.1.0"),
        "{}{}",
        text(&inspected.stdout),
        text(&inspected.stderr)
    );

    // Never over an existing folder; never a name moderators could not type.
    let again = gleipnir_bare(&["plugin", "new", "link-limit", "--dir", crate_dir.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("exists already"), "{}", text(&again.stderr));
    let bad = gleipnir_bare(&["plugin", "new", "Link_Limit", "--dir", dir.join("x").to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("lower-case kebab-case"), "{}", text(&bad.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `gleipnir` without `--cache-dir` (for subcommands that take none).
fn gleipnir_bare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gleipnir")).args(args).output().expect("gleipnir runs")
}

/// `plugin new --lang python`: the module it writes builds with
/// componentize-py (the one `cargo xtask test` installs) and passes its case
/// file through `plugin test`, given the sandbox CPython needs.
#[test]
fn plugin_new_python_writes_a_protection_that_builds_and_passes_its_cases() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let tool = root.join(".venv-componentize/bin/componentize-py");
    if !tool.is_file() {
        assert!(
            std::env::var_os("GLEIPNIR_ALL_PLUGINS").is_none(),
            "componentize-py is not installed, and every plugin must be built (GLEIPNIR_ALL_PLUGINS)"
        );
        eprintln!("skipped: componentize-py is not installed (`cargo xtask test` installs it)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("gleipnir-cli-new-python-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let module = dir.join("word-limit");
    let out = gleipnir_bare(&["plugin", "new", "word-limit", "--lang", "python", "--dir", module.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let built = Command::new(&tool)
        .args(["-d", "wit", "-w", "plugin", "componentize", "app", "-o", "word-limit.wasm"])
        .current_dir(&module)
        .output()
        .expect("componentize-py runs");
    assert!(built.status.success(), "{}{}", text(&built.stdout), text(&built.stderr));
    let component = module.join("word-limit.wasm");
    let cases = module.join("cases.json");
    let tested =
        gleipnir(&["plugin", "test", component.to_str().unwrap(), cases.to_str().unwrap(), "--limit", "instances=16"]);
    assert!(tested.status.success(), "{}{}", text(&tested.stdout), text(&tested.stderr));
    assert!(text(&tested.stdout).contains("2 passed, 0 failed"), "{}", text(&tested.stdout));
    // Without the larger sandbox, the refusal says what to raise.
    let refused = gleipnir(&["plugin", "inspect", component.to_str().unwrap()]);
    assert!(text(&refused.stderr).contains("raise `instances`"), "{}", text(&refused.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `plugin run --check`: each event's verdict from the protection's
/// pre-emptive `check` comes first; a denied event is not handled.
#[test]
fn run_check_prints_each_verdict_and_denied_events_go_no_further() {
    let dir = std::env::temp_dir().join(format!("gleipnir-cli-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let events = dir.join("events.jsonl");
    let message = |id: &str, sender: &str, body: &str| {
        serde_json::json!({
            "room_id": "!r:x", "event_id": id, "sender": sender, "type": "m.room.message",
            "origin_server_ts": 1, "content": {"msgtype": "m.text", "body": body},
        })
        .to_string()
    };
    let join = serde_json::json!({
        "room_id": "!r:x", "event_id": "$j", "sender": "@banned1:x", "type": "m.room.member",
        "state_key": "@banned1:x", "origin_server_ts": 1, "content": {"membership": "join"},
    });
    let lines = [message("$1", "@a:x", "hello"), message("$2", "@a:x", "a forbidden word"), join.to_string()];
    std::fs::write(&events, lines.join("\n")).unwrap();
    let out = gleipnir(&["plugin", "run", plugins::WITNESS, "--events", events.to_str().unwrap(), "--check"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed: Vec<serde_json::Value> = text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let verdicts: Vec<String> = printed
        .iter()
        .filter(|v| v.get("verdict").is_some())
        .map(|v| format!("{} {} {}", v["line"], v["check"].as_str().unwrap(), v["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(verdicts, ["1 event allow", "2 event deny", "3 join deny"]);
    assert_eq!(printed[2]["reason"], "forbidden word");
    // The allowed message was handled (the witness tells of it); the denied ones were not.
    let handled: Vec<&str> = printed.iter().filter_map(|v| v["body"].as_str()).collect();
    assert_eq!(handled, ["message from @a:x: hello"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn version_names_the_contracts_it_loads() {
    let out = Command::new(env!("CARGO_BIN_EXE_gleipnir")).arg("--version").output().unwrap();
    assert!(out.status.success());
    let said = text(&out.stdout);
    assert!(
        said.starts_with(&format!("gleipnir {} (loads protections built for ", env!("CARGO_PKG_VERSION")))
            && said.contains("gleipnir:protection@0.1.0, gleipnir:protection@0.2.0"),
        "{said}"
    );
}

/// The systemd unit's `ExecStart` is run as systemd would run it (with its
/// credentials folder), against the real binary: a flag or subcommand the
/// binary no longer has fails here, not on an operator's server.
#[test]
fn the_systemd_units_command_line_is_one_the_binary_takes() {
    let unit =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contrib/gleipnir.service"))
            .unwrap();
    let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("an ExecStart line");
    let credentials = std::env::temp_dir().join(format!("gleipnir-unit-{}", std::process::id()));
    std::fs::create_dir_all(&credentials).unwrap();
    let words: Vec<String> = exec
        .split_whitespace()
        .map(|w| w.replace("${CREDENTIALS_DIRECTORY}", &credentials.display().to_string()))
        .collect();
    assert_eq!(words[0], "/usr/local/bin/gleipnir", "where `cargo install --root /usr/local` puts it");
    assert!(unit.contains("LoadCredential=config.toml:/etc/gleipnir/config.toml"));
    // The credential systemd would hand over: a config the bot reads and checks.
    let config = credentials.join("config.toml");
    std::fs::write(&config, "[matrix]\nhomeserver = \"not a url\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o400)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gleipnir")).args(&words[1..]).output().unwrap();
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(2), "clap refused the command line: {stderr}");
    assert!(stderr.contains("matrix.homeserver"), "it got as far as reading the config: {stderr}");
    for hardening in ["DynamicUser=yes", "ProtectSystem=strict", "StateDirectory=gleipnir", "NoNewPrivileges=yes"] {
        assert!(unit.contains(hardening), "{hardening}");
    }
    std::fs::remove_dir_all(&credentials).unwrap();
}

/// With the homeserver down at start, every try is one warning line with
/// the error and when the next comes: an operator never faces silence.
#[test]
fn an_unreachable_homeserver_is_said_at_every_try() {
    let dir = std::env::temp_dir().join(format!("gleipnir-unreachable-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("plugins")).unwrap();
    // A port nothing listens on: bind one, then let it go; and one for /healthz.
    let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (port, health) = (free(), free());
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[matrix]\nhomeserver = \"http://127.0.0.1:{port}\"\nuser_id = \"@bot:localhost\"\n\
             password = \"a-password-to-hide\"\nmanagement_room = \"!m:localhost\"\n\
             [storage]\ndata_dir = \"data\"\n[plugins]\ndir = \"plugins\"\n\
             [http]\nlisten = \"127.0.0.1:{health}\"\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let log = std::fs::File::create(dir.join("log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gleipnir"))
        .args(["run", "--config"])
        .arg(&config)
        .stderr(log)
        .spawn()
        .unwrap();
    let read = || std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    let start = std::time::Instant::now();
    while read().matches("cannot reach the homeserver").count() < 2 && start.elapsed().as_secs() < 30 {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // /healthz answers meanwhile, with the reason.
    let healthz = get(health, "/healthz");
    let _ = child.kill();
    let _ = child.wait();
    let said = read();
    assert!(healthz.starts_with("HTTP/1.1 503"), "{healthz}");
    assert!(
        healthz.contains(&format!("not synced yet: cannot reach the homeserver at http://127.0.0.1:{port} (try ")),
        "{healthz}"
    );
    assert!(said.contains("cannot reach the homeserver: ") && said.contains("Connection refused"), "{said}");
    assert!(said.contains("trying again in 1 s") && said.contains("trying again in 2 s"), "{said}");
    assert!(!said.contains("a-password-to-hide"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `GET path` on 127.0.0.1:`port`, the whole answer as text.
fn get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("the listener answers");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}
