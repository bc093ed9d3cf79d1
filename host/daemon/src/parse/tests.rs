use super::*;

/// Parses `text`; renders the command as Debug, or `error: …`.
fn check(text: &str, expected: &str) {
    let got = match parse(text) {
        Ok(p) => format!("{:?}{}", p.command, if p.no_confirm { " no-confirm" } else { "" }),
        Err(e) => format!("error: {e}"),
    };
    assert_eq!(got, expected, "\n{text}");
}

#[test]
fn addressing_by_prefix_mention_or_name() {
    let a = |body| addressed(body, "!gleipnir", "@bot:localhost", Some("Gleipnir"));
    assert_eq!(a("!gleipnir status"), Some("status"));
    assert_eq!(a("  !gleipnir   rooms add #x:y "), Some("rooms add #x:y"));
    assert_eq!(a("@bot:localhost: status"), Some("status"));
    assert_eq!(a("@bot:localhost status"), Some("status"));
    assert_eq!(a("Gleipnir: help"), Some("help"));
    assert_eq!(a("!gleipnir"), Some(""));
    assert_eq!(a("!gleipnirx status"), None);
    assert_eq!(a("hello !gleipnir status"), None);
    assert_eq!(a("status"), None);
}

#[test]
fn the_short_form_answers_only_commands_of_ours() {
    let loaded = ["least-authority"];
    let ours = |body| short_form(body).filter(|text| names_a_command(text, &loaded));
    assert_eq!(ours("!protections enable flooding"), Some("protections enable flooding"));
    assert_eq!(ours("  !Status"), Some("Status"));
    assert_eq!(ours("!least-authority trust @a:b"), Some("least-authority trust @a:b"));
    // Another bot's command, a bare `!`, and talk are not ours.
    assert_eq!(ours("!draupnir status"), None);
    assert_eq!(ours("!weather London"), None);
    assert_eq!(ours("! status"), None);
    assert_eq!(ours("!!status"), None);
    assert_eq!(ours("status"), None);
    assert_eq!(ours("wow! status"), None);
}

#[test]
fn a_permalinks_via_servers_are_read() {
    assert_eq!(
        via_servers("https://matrix.to/#/!list:a.example?via=a.example&via=b%2Eexample"),
        ["a.example", "b.example"]
    );
    assert!(via_servers("https://matrix.to/#/!list:a.example").is_empty());
    assert!(via_servers("!list:a.example").is_empty());
}

#[test]
fn kick_by_glob() {
    check(
        "kick --glob @spam*:evil.example #room:x flooding",
        r##"KickGlob { pattern: "@spam*:evil.example", room: Some(Alias("#room:x")), reason: Some("flooding") }"##,
    );
    check(
        "kick --glob @spam*:evil.example",
        r##"KickGlob { pattern: "@spam*:evil.example", room: None, reason: None }"##,
    );
    check(
        "kick --glob @exact:evil.example",
        "error: `@exact:evil.example` is not a user glob (like @spam*:example.org; `*` any run, `?` one character)",
    );
    check(
        "kick --glob",
        "error: usage: kick USER [ROOM] [reason]: kick from one room or every protected room | kick --glob @PATTERN:server [ROOM] [reason]: every joined member the glob matches (moderators and the bot left out)",
    );
}

#[test]
fn simple_commands() {
    check("", "Help { topic: None }");
    check("help ban", r##"Help { topic: Some("ban") }"##);
    check("status", "Status");
    check("STATUS", "Status");
    check("status now", "error: `status` takes nothing after it (got `now`)");
    check("rooms", "Rooms");
    check("rooms add #room:example.org", r##"RoomsAdd(Alias("#room:example.org"))"##);
    check("rooms add !abc", r##"RoomsAdd(Id("!abc"))"##);
    check(
        "rooms remove https://matrix.to/#/%21abc%3Aexample.org?via=example.org",
        r##"RoomsRemove(Id("!abc:example.org"))"##,
    );
    check(
        "rooms add room",
        "error: `room` is not a room (an id like !abc, an alias like #room:server, or a matrix.to link)",
    );
    check("rooms ad #r:x", "error: unknown `rooms ad`; did you mean `rooms add`?");
}

#[test]
fn audit() {
    check("audit", "Audit { about: None, limit: 20 }");
    check("audit @spam:x --limit 5", r#"Audit { about: Some("@spam:x"), limit: 5 }"#);
    check("audit --limit 5 flooding", r#"Audit { about: Some("flooding"), limit: 5 }"#);
    check("audit https://matrix.to/#/@spam:x", r#"Audit { about: Some("@spam:x"), limit: 20 }"#);
    check("audit --limit 0", "error: --limit `0` must be a number from 1 to 500");
    check("audit a b", &format!("error: {}", usage("audit")));
}

#[test]
fn protections_and_settings() {
    check("protections", "Protections");
    check("protections enable flooding", r##"Enable("flooding")"##);
    check("protections disable flooding", r##"Disable("flooding")"##);
    check("protections show flooding", r##"Show("flooding")"##);
    check(
        "protections config set flooding max-per-minute 20",
        r##"Config { op: Set, protection: "flooding", key: "max-per-minute", value: Some("20") }"##,
    );
    check(
        r##"protections config set flooding reason "too many messages""##,
        r##"Config { op: Set, protection: "flooding", key: "reason", value: Some("too many messages") }"##,
    );
    check(
        "protections config add watch-words words spam",
        r##"Config { op: Add, protection: "watch-words", key: "words", value: Some("spam") }"##,
    );
    check(
        "protections config reset flooding max-per-minute",
        r##"Config { op: Reset, protection: "flooding", key: "max-per-minute", value: None }"##,
    );
    check(
        "protections config reset flooding max-per-minute 3",
        "error: `protections config reset NAME KEY` takes no value",
    );
    check(
        "protections config set flooding max-per-minute",
        "error: `protections config set NAME KEY VALUE`: the value is missing",
    );
    check(
        "protections config put flooding a b",
        "error: unknown `protections config put`; did you mean `protections config set`?",
    );
    check(
        "protections config xyzzy flooding a b",
        "error: unknown `protections config xyzzy`; expected one of: set, add, remove, reset",
    );
    check("protections preview flooding", r##"Preview { name: "flooding", limit: 100 }"##);
    check("plugins", "Plugins");
    check("plugins reload flooding", r##"Reload("flooding")"##);
    check("protections grant flooding kick", r##"Grant { name: "flooding", capability: "kick", grant: true }"##);
    check("protections revoke flooding kick", r##"Grant { name: "flooding", capability: "kick", grant: false }"##);
    check("protections preview flooding --limit 20", r##"Preview { name: "flooding", limit: 20 }"##);
    check("protections preview flooding --limit 0", "error: --limit `0` must be a number from 1 to 1000");
    check("protections enable Flooding", "error: `Flooding` is not a protection name (lower-case, like `flooding`)");
    check("protections enabel flooding", "error: unknown `protections enabel`; did you mean `protections enable`?");
}

#[test]
fn moderation() {
    check("ban @spam:example.org", r##"Ban { entity: "@spam:example.org", room: None, reason: None }"##);
    check(
        "ban @spam:example.org #room:x spam and scam --no-confirm",
        r##"Ban { entity: "@spam:example.org", room: Some(Alias("#room:x")), reason: Some("spam and scam") } no-confirm"##,
    );
    check(
        "ban @spam:example.org coc spam",
        r##"Ban { entity: "@spam:example.org", room: None, reason: Some("coc spam") }"##,
    );
    check(
        "ban https://matrix.to/#/@spam:example.org",
        r##"Ban { entity: "@spam:example.org", room: None, reason: None }"##,
    );
    check(
        "ban spam",
        "error: `spam` is not a user, room or server (e.g. @user:server, #room:server, evil.example, or a glob like @*:evil.example)",
    );
    check(
        "ban",
        "error: usage: ban USER [ROOM] [reason]: ban in one room or every protected room | ban ENTITY LIST [reason]: add a ban rule to a policy list",
    );
    check("ban *.evil.example coc spam", r##"Ban { entity: "*.evil.example", room: None, reason: Some("coc spam") }"##);
    check(
        "ban @*:evil.example #list:x",
        r##"Ban { entity: "@*:evil.example", room: Some(Alias("#list:x")), reason: None }"##,
    );
    check("unban @a:x !r", r##"Unban { entity: "@a:x", room: Some(Id("!r")) }"##);
    check("takedown @a:x coc csam", r##"Takedown { entity: "@a:x", list: "coc", reason: Some("csam") }"##);
    check(
        "takedown @a:x",
        "error: usage: takedown ENTITY LIST [reason]: add a takedown rule (hashed, MSC4205, unless a glob)",
    );
    check("list create coc community-bans", r##"ListCreate { shortcode: "coc", alias_localpart: "community-bans" }"##);
    check("list create Coc bans", "error: `Coc` is not a shortcode (lower-case letters, digits, - and _)");
    check("list make coc bans", "error: unknown `list make`; expected one of: create");
    check("recover 2 --no-confirm", "Recover(2) no-confirm");
    check("recover two", "error: `two` is not an option number");
    check("restart", "Restart");
    check("safe mode", "SafeMode");
    check("kick @a:x being rude", r##"Kick { user: "@a:x", room: None, reason: Some("being rude") }"##);
    check(
        "redact @a:x --limit 50 --room #r:x",
        r##"Redact { target: User("@a:x"), limit: Some(50), room: Some(Alias("#r:x")) }"##,
    );
    check(
        "redact https://matrix.to/#/!room:x/$ev123?via=x",
        r##"Redact { target: Event { room: Id("!room:x"), event_id: "$ev123" }, limit: None, room: None }"##,
    );
    check("redact @a:x --limit lots", "error: --limit `lots` must be a number from 1 to 10000");
    check("redact \"@a:x", "error: a \" is not closed");
}

#[test]
fn unknown_commands_get_the_closest_match_in_one_line() {
    check("protection", "error: unknown command `protection`; did you mean `protections`? (`help` lists them all)");
    check("stauts", "error: unknown command `stauts`; did you mean `status`? (`help` lists them all)");
    check("bna @a:x", "error: unknown command `bna`; did you mean `ban`? (`help` lists them all)");
    check("frobnicate", "error: unknown command `frobnicate`; `help` lists them all");
}

#[test]
fn a_loaded_protection_names_its_own_commands() {
    let loaded = ["least-authority", "status"];
    let parsed = |text| parse_with(text, &loaded).map(|p| format!("{:?}", p.command));
    assert_eq!(
        parsed("least-authority Trust https://matrix.to/#/%40a%3Ab \"two words\""),
        Ok(r#"Protection { name: "least-authority", command: Some("trust"), args: ["@a:b", "two words"] }"#.to_owned())
    );
    assert_eq!(
        parsed("least-authority"),
        Ok(r#"Protection { name: "least-authority", command: None, args: [] }"#.to_owned())
    );
    // A built-in command wins over a protection of the same name.
    assert_eq!(parsed("status"), Ok("Status".to_owned()));
    assert_eq!(
        parsed("least-authorty trust @a:b").unwrap_err().0,
        "unknown command `least-authorty`; did you mean `least-authority`? (`help` lists them all)"
    );
}

/// Found by fuzzing: an unknown word was compared with every command name by
/// edit distance, in time quadratic in its length; a word too long to be a
/// typo is now rejected at once.
#[test]
fn a_long_unknown_word_is_answered_quickly() {
    let word = "https://matrix.to/#/!room:example.org/$event".repeat(1500);
    for text in [word.clone(), format!("list {word}"), format!("protections {word}")] {
        gleipnir_fuzz::bounded("commands", "a long word", &text, &|text| {
            let error = parse(text).expect_err("unknown");
            assert!(!error.0.contains("did you mean"), "{}", &error.0[..80]);
        });
    }
    assert_eq!(closest("rulez", &["rules", "rooms"]), Some("rules"));
    assert_eq!(closest("ru", &["rules", "rooms"]), Some("rules"));
}
