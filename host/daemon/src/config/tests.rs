use super::*;

const GOOD: &str = r##"
[matrix]
homeserver = "http://127.0.0.1:8008/"
user_id = "@gleipnir:localhost"
access_token = "secret"
management_room = "#moderators:localhost"

[plugins]
dir = "."

[sandbox]
call_deadline = "20ms"
memory = "64MiB"

[protections.flooding]
grants = ["redact", "ban", "notify-management"]
"##;

/// Parses `text` (relative paths against the temp dir) and renders the
/// problems one per line, or `ok`.
fn check(text: &str, expected: &str) {
    let got = match parse(text, &std::env::temp_dir()) {
        Ok(_) => "ok".to_owned(),
        Err(problems) => problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"),
    };
    assert_eq!(got, expected.trim(), "\n{text}");
}

#[test]
fn a_good_config_reads_back() {
    let config = parse(GOOD, &std::env::temp_dir()).unwrap();
    assert_eq!(config.homeserver, "http://127.0.0.1:8008");
    assert_eq!(config.credentials, Credentials::AccessToken("secret".into()));
    assert_eq!(config.prefix, "!gleipnir");
    assert_eq!(config.confirm_above, 5);
    assert_eq!(config.limits.call_deadline, Duration::from_millis(20));
    assert_eq!(config.limits.memory_bytes, 64 << 20);
    assert_eq!(config.grants["flooding"].to_string(), "redact, ban, notify-management");
    assert!(!config.dry_run);
    assert_eq!(config.on_problem, OnProblem::SafeMode);
}

#[test]
fn every_problem_is_reported_with_its_path() {
    check(
        r#"
typo = 1
[plugins]
dir = "."
[matrix]
homeserver = "localhost:8008"
user_id = "gleipnir"
password = "a"
access_token = "b"
management_room = "moderators"
[sandbox]
call_deadline = "1h"
memory = "lots"
max_actions = 0
[actions]
dry_run = "yes"
[commands]
confirm_above = -1
[startup]
on_problem = "shrug"
[protections.flooding]
grants = ["ban", "explode", 3]
colour = "red"
tick = "1ms"
[protections.Bad_Name]
"#,
        r#"
typo: unknown key; expected one of: matrix, storage, plugins, commands, sandbox, actions, startup, policy, reports, rooms, protections, http, antispam, log
matrix.homeserver: `localhost:8008` is not an http:// or https:// URL
matrix.user_id: `gleipnir` is not a user id (@user:server)
matrix.management_room: `moderators` is neither a room id (!room) nor an alias (#room:server)
matrix.access_token: give only one of access_token, password
commands.confirm_above: must be a whole number from 0 to 1000000
sandbox.call_deadline: `1h` must be between 1ms and 10s
sandbox.memory: `lots` is not a size like "32MiB"
sandbox.max_actions: must be a whole number from 1 to 100000
actions.dry_run: must be true or false
startup.on_problem: must be "safe_mode" or "exit"
protections.Bad_Name: protection names are lower-case kebab-case, e.g. `flooding`
protections.flooding.colour: unknown key; expected one of: grants, grantable, tick, errcode, call_deadline, check_deadline, memory, max_actions, instances, tables, table_elements
protections.flooding.tick: `1ms` must be between 1s and 1d
protections.flooding.grants[1]: unknown capability `explode`; known: redact, ban, unban, kick, set-join-rule, set-power-level, send-notice, notify-management, edit-policy-lists, suspend-user, deactivate-user, delete-user-media, invite, block-room, purge-room
protections.flooding.grants[2]: must be a capability name
"#,
    );
}

#[test]
fn missing_pieces_are_named() {
    check(
        "[plugins]\ndir = \"/nonexistent-gleipnir-dir\"\n",
        "
matrix: missing section
plugins.dir: /nonexistent-gleipnir-dir is not a directory",
    );
    check(
        "[matrix]\nuser_id = \"@a:b\"\n[plugins]\ndir = \".\"\n",
        "
matrix.homeserver: missing
matrix.management_room: missing
matrix.access_token: missing: give one of access_token, access_token_file, password, password_file",
    );
    check(
        r#"[matrix]
homeserver = "https://matrix.example.org"
user_id = "@a:b"
management_room = "!abc"
access_token_file = "no-such-token-file"
[plugins]
dir = "."
"#,
        &format!(
            "matrix.access_token_file: cannot read {}: No such file or directory (os error 2)",
            std::env::temp_dir().join("no-such-token-file").display()
        ),
    );
    check("[matrix]\nnot toml = = =", "(file): line 2: not valid TOML: key with no value, expected `=`");
}

#[test]
fn live_operation_keys() {
    let config = parse(GOOD, &std::env::temp_dir()).unwrap();
    assert!(config.watch && !config.enable_new && config.settings_file.is_none());
    assert!(config.grantable["flooding"].is_empty());
    let text = GOOD
        .replace("dir = \".\"", "dir = \".\"\nsettings = \"protections.toml\"\nwatch = false\nenable_new = true")
        + "grantable = [\"kick\"]\n";
    let config = parse(&text, &std::env::temp_dir()).unwrap();
    assert_eq!(config.settings_file, Some(std::env::temp_dir().join("protections.toml")));
    assert!(!config.watch && config.enable_new);
    assert_eq!(config.grantable["flooding"].to_string(), "kick");
    let bad = GOOD.replace("dir = \".\"", "dir = \".\"\nwatch = \"yes\"\nsettings = \"no/such/dir/p.toml\"")
        + "grantable = [\"fly\"]\n";
    let problems = parse(&bad, &std::env::temp_dir()).unwrap_err();
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(text.iter().any(|p| p.starts_with("plugins.watch: must be true or false")), "{text:?}");
    assert!(text.iter().any(|p| p.starts_with("plugins.settings:")), "{text:?}");
    assert!(text.iter().any(|p| p.starts_with("protections.flooding.grantable[0]:")), "{text:?}");
}

#[test]
fn a_protection_may_get_a_sandbox_of_its_own() {
    let text = format!("{GOOD}\n[protections.shouting]\ninstances = 16\ncheck_deadline = \"20ms\"\n");
    let config = parse(&text, &std::env::temp_dir()).unwrap();
    let shouting = config.plugin_limits.for_file("shouting.wasm");
    assert_eq!((shouting.instances, shouting.check_deadline), (16, Duration::from_millis(20)));
    assert_eq!(
        (shouting.memory_bytes, shouting.call_deadline),
        (64 << 20, Duration::from_millis(20)),
        "what it does not set comes from [sandbox]"
    );
    let flooding = config.plugin_limits.for_file("flooding.wasm");
    assert_eq!((flooding.instances, flooding.memory_bytes), (8, 64 << 20));
    let bad = format!("{GOOD}\n[protections.shouting]\ninstances = 0\ncheck_deadline = \"2s\"\n");
    let problems: Vec<String> =
        parse(&bad, &std::env::temp_dir()).unwrap_err().iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        [
            "protections.shouting.check_deadline: `2s` must be between 1ms and 1s",
            "protections.shouting.instances: must be a whole number from 1 to 64",
        ]
    );
    assert_eq!(limits_from_pairs(&["instances=16".into(), "memory=256MiB".into()]).unwrap().memory_bytes, 256 << 20);
    assert_eq!(limits_from_pairs(&["memory".into()]).unwrap_err(), "`memory`: write KEY=VALUE");
}

#[test]
fn the_short_form_is_on_unless_turned_off() {
    assert!(parse(GOOD, &std::env::temp_dir()).unwrap().short_form);
    let off = format!("{GOOD}\n[commands]\nshort_form = false\n");
    assert!(!parse(&off, &std::env::temp_dir()).unwrap().short_form);
    let bad = format!("{GOOD}\n[commands]\nshort_form = \"no\"\n");
    let problems = parse(&bad, &std::env::temp_dir()).unwrap_err();
    assert_eq!(problems[0].to_string(), "commands.short_form: must be true or false");
}

#[test]
fn reports_are_polled_only_when_asked() {
    assert_eq!(parse(GOOD, &std::env::temp_dir()).unwrap().report_poll, None);
    let on = format!("{GOOD}\n[reports]\npoll = true\n");
    assert_eq!(parse(&on, &std::env::temp_dir()).unwrap().report_poll, Some(Duration::from_secs(5)));
    let every = format!("{GOOD}\n[reports]\npoll = true\nevery = \"2s\"\n");
    assert_eq!(parse(&every, &std::env::temp_dir()).unwrap().report_poll, Some(Duration::from_secs(2)));
    let bad = format!("{GOOD}\n[reports]\npoll = \"yes\"\nevery = \"2h\"\n");
    let problems: Vec<String> =
        parse(&bad, &std::env::temp_dir()).unwrap_err().iter().map(ToString::to_string).collect();
    assert_eq!(problems, ["reports.every: `2h` must be between 1s and 1h", "reports.poll: must be true or false"]);
}

#[test]
fn client_bans_go_to_a_list_only_when_named() {
    assert_eq!(parse(GOOD, &std::env::temp_dir()).unwrap().propagate_bans_to, None);
    let named = format!("{GOOD}\n[policy]\npropagate_bans_to = \"coc\"\n");
    assert_eq!(parse(&named, &std::env::temp_dir()).unwrap().propagate_bans_to.as_deref(), Some("coc"));
}

#[test]
fn redaction_on_ban_is_off_unless_reasons_are_given() {
    assert_eq!(parse(GOOD, &std::env::temp_dir()).unwrap().redact_on_ban, None);
    let on = format!("{GOOD}\n[policy]\nredact_on_ban_reasons = [\"Spam\"]\nredact_on_ban_age = \"2h\"\n");
    let rule = parse(&on, &std::env::temp_dir()).unwrap().redact_on_ban.unwrap();
    assert_eq!((rule.limit, rule.age), (100, Duration::from_secs(7200)));
    assert_eq!(rule.matching("spam"), Some("spam"));
    let bad = format!("{GOOD}\n[policy]\nredact_on_ban_reasons = \"spam\"\nredact_on_ban_limit = 0\n");
    let problems: Vec<String> =
        parse(&bad, &std::env::temp_dir()).unwrap_err().iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        [
            "policy.redact_on_ban_reasons: must be a list of texts, e.g. [\"spam\"]",
            "policy.redact_on_ban_limit: must be a whole number from 1 to 1000",
        ]
    );
}

#[test]
fn room_takedowns_are_off_unless_turned_on() {
    assert!(!parse(GOOD, &std::env::temp_dir()).unwrap().room_takedowns);
    let on = format!("{GOOD}\n[policy]\nroom_takedowns = true\n");
    assert!(parse(&on, &std::env::temp_dir()).unwrap().room_takedowns);
    let bad = format!("{GOOD}\n[policy]\nroom_takedowns = 1\n");
    let problems = parse(&bad, &std::env::temp_dir()).unwrap_err();
    assert_eq!(problems[0].to_string(), "policy.room_takedowns: must be true or false");
}

#[test]
fn who_may_command_and_account_actions() {
    let config = parse(GOOD, &std::env::temp_dir()).unwrap();
    assert_eq!(config.min_power_level, 50, "moderators only, by default");
    assert!(config.confirm_account_actions, "suspensions wait for a ✅ by default");
    let open = format!("{GOOD}\n[commands]\nmin_power_level = 0\n[actions]\nconfirm_account_actions = false\n");
    let config = parse(&open, &std::env::temp_dir()).unwrap();
    assert_eq!(config.min_power_level, 0);
    assert!(!config.confirm_account_actions);
    check(
        &format!("{GOOD}\n[commands]\nmin_power_level = 101\n[actions]\nconfirm_account_actions = 1\n"),
        "commands.min_power_level: must be a whole number from 0 to 100\n\
         actions.confirm_account_actions: must be true or false",
    );
}

#[test]
fn secrets_stay_private_and_off_the_network_in_the_clear() {
    let config = parse(&GOOD.replace("\"secret\"", "\"syt_hidden\""), &std::env::temp_dir()).unwrap();
    assert!(!format!("{config:?}").contains("syt_hidden"), "Debug shows the access token");
    assert_eq!(format!("{:?}", Credentials::Password("hunter2".into())), "Password(<secret>)");
    let remote = GOOD.replace("http://127.0.0.1:8008/", "http://matrix.example.org");
    check(
        &remote,
        "matrix.homeserver: `http://matrix.example.org` is plain http to another machine: the access token would \
         cross the network unencrypted; use https://, or set `matrix.allow_insecure = true`",
    );
    let allowed = remote.replace("management_room", "allow_insecure = true\nmanagement_room");
    assert!(parse(&allowed, &std::env::temp_dir()).is_ok());
    for local in ["http://localhost:8008", "http://[::1]:8008", "http://127.0.0.2", "https://matrix.example.org"] {
        assert!(parse(&GOOD.replace("http://127.0.0.1:8008/", local), &std::env::temp_dir()).is_ok(), "{local}");
    }
}

#[cfg(unix)]
#[test]
fn a_secret_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("gleipnir-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, "syt_x").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o640)).unwrap();
    let text = GOOD
        .replace("access_token = \"secret\"", "access_token_file = \"token\"")
        .replace("dir = \".\"", "dir = \"/\"");
    let problems = parse(&text, &dir).unwrap_err();
    assert!(problems[0].to_string().contains("holds a secret and others can read it (mode 640)"), "{problems:?}");
    let lenient = text.replace("management_room", "allow_readable_secrets = true\nmanagement_room");
    assert!(parse(&lenient, &dir).is_ok());
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(parse(&text, &dir).is_ok());
    // A config file with the secret in it is held to the same rule.
    let config = dir.join("config.toml");
    std::fs::write(&config, GOOD.replace("dir = \".\"", "dir = \"/\"")).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(load(&config).unwrap_err()[0].message.contains("others can read it"));
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(load(&config).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `read-history` and `read-members` are granted in `grants` next to the
/// capabilities, and only there: moderators cannot be allowed to grant them.
#[test]
fn query_grants_are_read_from_grants_only() {
    let text = format!(
        "{GOOD}[protections.takedown]\ngrants = [\"redact\", \"read-history\", \"read-members\"]\ngrantable = [\"read-history\"]\n"
    );
    check(&text, "protections.takedown.grantable[0]: `read-history` is granted by the operator only, in `grants`");
    let text = format!("{GOOD}[protections.takedown]\ngrants = [\"redact\", \"read-history\", \"read-members\"]\n");
    let config = parse(&text, &std::env::temp_dir()).unwrap();
    assert_eq!(config.grants["takedown"].to_string(), "redact");
    assert_eq!(config.query_grants["takedown"].to_string(), "read-history, read-members");
    assert!(config.query_grants["flooding"].is_empty());
}

/// A secret file is read only up to a size: pointed at a huge file (or
/// `/dev/zero`), reading it whole would take all memory.
#[test]
fn a_secret_file_is_read_only_up_to_a_size() {
    let dir = std::env::temp_dir().join(format!("gleipnir-config-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("token"), "  secret-token\n").unwrap();
    std::fs::write(dir.join("huge"), vec![b'x'; MAX_SECRET_FILE + 1]).unwrap();
    #[cfg(unix)]
    for file in ["token", "huge"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let with = |file: &str| GOOD.replace("access_token = \"secret\"", &format!("access_token_file = \"{file}\""));
    let config = parse(&with("token"), &dir).unwrap();
    assert_eq!(config.credentials, Credentials::AccessToken("secret-token".into()));
    let problems = parse(&with("huge"), &dir).unwrap_err();
    assert_eq!(
        problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [format!(
            "matrix.access_token_file: {} is larger than 64 KiB; it should hold one token or password",
            dir.join("huge").display()
        )]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_listener_and_the_antispam_callbacks_are_read_with_their_secret() {
    assert_eq!(parse(GOOD, &std::env::temp_dir()).unwrap().http, None);
    let dir = std::env::temp_dir().join(format!("gleipnir-antispam-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("antispam.token");
    std::fs::write(&token, "a-long-enough-secret-token\n").unwrap();
    #[cfg(unix)]
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let on = format!(
        "{GOOD}\n[http]\nlisten = \"127.0.0.1:8081\"\n[antispam]\nauthorization_file = \"antispam.token\"\n\
         deadline = \"20ms\"\nfail_closed = [\"user_may_invite\"]\n[protections.slowdown]\nerrcode = \"M_LIMIT_EXCEEDED\"\n"
    );
    let config = parse(&on, &dir).unwrap();
    let http = config.http.unwrap();
    assert_eq!(http.listen.to_string(), "127.0.0.1:8081");
    let antispam = http.antispam.unwrap();
    assert_eq!(antispam.token, "a-long-enough-secret-token");
    assert_eq!(antispam.deadline, Duration::from_millis(20));
    assert!(antispam.block_invites_from_banned && antispam.fail_closed.contains("user_may_invite"));
    assert!(!format!("{antispam:?}").contains("a-long-enough"), "the token stays out of debug output");
    assert_eq!(config.errcodes.get("slowdown").map(String::as_str), Some("M_LIMIT_EXCEEDED"));

    let bad = format!(
        "{GOOD}\n[http]\nlisten = \"everywhere\"\n[antispam]\nauthorization_file = \"missing.token\"\n\
         fail_closed = [\"ping\"]\n[protections.slowdown]\nerrcode = \"slow down\"\n"
    );
    let problems: Vec<String> = parse(&bad, &dir).unwrap_err().iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        [
            "protections.slowdown.errcode: `slow down` is not a Matrix error code like M_LIMIT_EXCEEDED",
            "http.listen: must be an address and port, e.g. \"127.0.0.1:8081\"",
        ],
        "{problems:?}"
    );
    let alone = format!("{GOOD}\n[antispam]\nauthorization_file = \"antispam.token\"\n");
    let problems: Vec<String> = parse(&alone, &dir).unwrap_err().iter().map(ToString::to_string).collect();
    assert!(problems[0].starts_with("antispam: needs `[http] listen"), "{problems:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn log_level_and_format() {
    let default = parse(GOOD, &std::env::temp_dir()).unwrap();
    assert_eq!(default.log, Log { level: DEFAULT_LOG.to_owned(), json: false });
    let set = parse(&format!("{GOOD}\n[log]\nlevel = \"debug\"\nformat = \"json\"\n"), &std::env::temp_dir()).unwrap();
    assert_eq!(set.log.level, "debug,matrix_sdk=warn,matrix_sdk_base=warn,matrix_sdk::http_client=off");
    assert!(set.log.json);
    let custom = parse(&format!("{GOOD}\n[log]\nlevel = \"warn,gleipnir=trace\"\n"), &std::env::temp_dir()).unwrap();
    assert_eq!(custom.log.level, "warn,gleipnir=trace");
    check(
        &format!("{GOOD}\n[log]\nlevel = \"loud=[\"\nformat = \"xml\"\ncolour = true\n"),
        "log.colour: unknown key; expected one of: level, format\n\
         log.level: `loud=[` is not a log filter (like `info`, `debug` or `info,gleipnir=debug`)\n\
         log.format: `xml` is not a log format: use \"text\" or \"json\"",
    );
}
