//! Contract tests: the real components, through the real runtime.
//! Event streams in (client-format JSON, as a homeserver serves them),
//! actions out, compared as text.

use std::sync::Arc;

use gleipnir_runtime::rooms::RoomStates;
use gleipnir_runtime::{CapabilitySet, Fault, Instance, Limits, LoadError, Plugin, capability, event, json};
use gleipnir_tests::{load, plugins, queries};
use serde_json::json;

/// Every plugin must have a module of contract tests here, named after it.
macro_rules! has_contract_tests {
    ($name:ident) => {
        const _: fn() = $name::covered;
    };
}
gleipnir_tests::for_each_plugin!(has_contract_tests);

/// The room-state queries of a test host that knows no room: no
/// membership, no join time, level 0, the spec's default levels.
macro_rules! no_room_state {
    () => {
        fn membership(&self, _: &str, _: &str) -> Option<gleipnir_runtime::Membership> {
            None
        }
        fn joined_at(&self, _: &str, _: &str) -> Option<u64> {
            None
        }
        fn power_level(&self, _: &str, _: &str) -> i64 {
            0
        }
        fn room_levels(&self, _: &str) -> gleipnir_runtime::RoomLevels {
            gleipnir_runtime::rooms::DEFAULT_LEVELS
        }
    };
}

/// A message event as a homeserver serves it.
fn message(room: &str, sender: &str, seconds: u64, body: &str, id: usize) -> String {
    json!({
        "room_id": room, "event_id": format!("$e{id}"), "sender": sender, "type": "m.room.message",
        "origin_server_ts": 1_700_000_000_000u64 + seconds * 1000,
        "content": {"msgtype": "m.text", "body": body},
    })
    .to_string()
}

fn state(room: &str, sender: &str, kind: &str, state_key: &str, content: serde_json::Value, id: usize) -> String {
    json!({
        "room_id": room, "event_id": format!("$s{id}"), "sender": sender, "type": kind, "state_key": state_key,
        "origin_server_ts": 1_699_999_000_000u64, "content": content,
    })
    .to_string()
}

/// One line per action, `refused:` lines for refusals, `fault:` lines for faults.
fn render_action(a: &gleipnir_runtime::Action) -> String {
    let v = json::action(a);
    let mut parts = vec![v["action"].as_str().unwrap().to_owned()];
    for key in ["room_id", "user_id", "event_id", "body"] {
        if let Some(s) = v[key].as_str() {
            parts.push(s.to_owned());
        }
    }
    format!("{} ({})", parts.join(" "), v["reason"].as_str().unwrap())
}

/// Runs `lines` through `instance` the way `gleipnir plugin run` does and
/// renders what came out.
fn run(instance: &mut Instance, rooms: &RoomStates, clock: &gleipnir_runtime::Clock, lines: &[String]) -> String {
    let mut out = Vec::new();
    for line in lines {
        let event =
            event::from_json(line, None, &|r, u| rooms.membership(r, u)).expect("valid event").expect("handled kind");
        let raw: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(key) = raw["state_key"].as_str() {
            rooms.apply(
                &event.room_id,
                raw["type"].as_str().unwrap(),
                key,
                &event.sender,
                event.origin_ts,
                &event.content,
            );
        }
        clock.set(event.origin_ts);
        if !instance.plugin().wants(event::class(&event.kind)) {
            continue;
        }
        match instance.handle(&event) {
            Ok(outcome) => {
                out.extend(outcome.actions.iter().map(render_action));
                out.extend(
                    outcome.refused.iter().map(|r| format!("refused: {} — {}", render_action(&r.action), r.why)),
                );
            }
            Err(fault) => {
                out.push(format!("fault: {fault}"));
                if fault.kills_instance() {
                    instance.restart().expect("restart after fault");
                }
            }
        }
    }
    out.join("\n")
}

fn start(
    plugin: &Plugin,
    overrides: &[(&str, gleipnir_runtime::SettingValue)],
) -> (Instance, Arc<RoomStates>, Arc<gleipnir_runtime::host::StateQueries>) {
    let (queries, rooms) = queries();
    let mut instance = plugin.instantiate(queries.clone(), plugin.declared()).expect("instantiates");
    let overrides: Vec<_> = overrides.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    instance.configure(&overrides).expect("configures");
    (instance, rooms, queries)
}

fn check(plugin: &Plugin, overrides: &[(&str, gleipnir_runtime::SettingValue)], lines: &[String], expected: &str) {
    let (mut instance, rooms, queries) = start(plugin, overrides);
    let got = run(&mut instance, &rooms, &queries.clock, lines);
    assert_eq!(got.trim(), expected.trim(), "\n--- got ---\n{got}\n");
}

mod flooding {
    use super::*;
    use gleipnir_runtime::SettingValue;

    pub(super) fn covered() {}

    const ROOM: &str = "!room:test";

    fn plugin() -> Plugin {
        load(plugins::FLOODING)
    }

    #[test]
    fn describes_itself() {
        let p = plugin();
        let d = p.descriptor();
        assert_eq!(d.name, "flooding");
        let keys: Vec<_> = d.settings.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["max-per-minute", "consequence", "reason"]);
        assert_eq!(p.declared().to_string(), "redact, ban, notify-management");
    }

    /// The scenario: one user sends 15 messages within 20 seconds,
    /// another sends 5; only the first is acted on.
    #[test]
    fn a_flood_is_redacted_and_banned_and_a_chat_is_not() {
        a_flood_is_redacted_and_banned(&plugin());
    }

    /// The component built for contract 0.1.0 decides as it always did.
    #[test]
    fn the_0_1_0_build_still_bans_a_flood() {
        let fixture = load(gleipnir_tests::fixtures::FLOODING_0_1_0);
        assert_eq!(fixture.wit_version(), "0.1.0");
        a_flood_is_redacted_and_banned(&fixture);
    }

    /// Swapped mid-burst for a rebuilt copy of itself, or from the 0.1.0
    /// build to this one, flooding still bans the burst: 4 messages before
    /// the swap and 3 after, limit 5 (fresh, the 3 alone ban nobody).
    #[test]
    fn a_swap_mid_burst_still_bans_the_burst() {
        let limit = [("max-per-minute", SettingValue::Integer(5))];
        let burst: Vec<String> = (0..7).map(|i| message(ROOM, "@spam:test", i, "buy", i as usize + 1)).collect();
        let (fresh, rooms, queries) = start(&plugin(), &limit);
        let mut fresh = fresh;
        assert_eq!(run(&mut fresh, &rooms, &queries.clock, &burst[4..]), "", "3 messages alone are no flood");
        for from in [plugin(), load(gleipnir_tests::fixtures::FLOODING_0_1_0)] {
            let (mut old, rooms, queries) = start(&from, &limit);
            assert_eq!(run(&mut old, &rooms, &queries.clock, &burst[..4]), "");
            let overrides = old.overrides().to_vec();
            let (mut new, handover) = old.successor(&plugin(), &overrides).expect("swaps");
            assert_eq!(handover.state_refused, None);
            let got = run(&mut new, &rooms, &queries.clock, &burst[4..]);
            assert!(
                got.contains("ban !room:test @spam:test (flooding)"),
                "after a swap from {}: {got}",
                from.content_hash()
            );
            assert!(got.contains("sent 6 messages within a minute"), "{got}");
        }
    }

    fn a_flood_is_redacted_and_banned(plugin: &Plugin) {
        let mut lines = Vec::new();
        for i in 0..15 {
            lines.push(message(ROOM, "@spam:test", i + i / 3, "buy now", lines.len() + 1));
            if i % 3 == 0 {
                lines.push(message(ROOM, "@chat:test", i, "hello", lines.len() + 1));
            }
        }
        let got_lines = lines.clone();
        let spam_ids: Vec<usize> =
            got_lines.iter().enumerate().filter(|(_, l)| l.contains("@spam:test")).map(|(i, _)| i + 1).collect();
        let mut expected: Vec<String> =
            spam_ids[..11].iter().map(|i| format!("redact !room:test $e{i} (flooding)")).collect();
        expected.push("ban !room:test @spam:test (flooding)".into());
        expected.push("notify-management @spam:test sent 11 messages within a minute in !room:test (limit 10); redacted their messages and banned them. (flooding)".into());
        expected.extend(spam_ids[11..].iter().map(|i| format!("redact !room:test $e{i} (flooding)")));
        check(plugin, &[], &lines, &expected.join("\n"));
    }

    #[test]
    fn a_lower_limit_applies_and_notify_only_acts_on_nothing() {
        let lines: Vec<_> = (0..5).map(|i| message(ROOM, "@a:test", i, "x", i as usize + 1)).collect();
        check(
            &plugin(),
            &[("max-per-minute", SettingValue::Integer(3)), ("consequence", SettingValue::Choice("notify".into()))],
            &lines,
            "notify-management @a:test sent 4 messages within a minute in !room:test (limit 3); took no action (consequence is notify). (flooding)",
        );
    }

    #[test]
    fn moderators_by_power_level_and_v12_creators_are_exempt() {
        let mut lines = vec![
            state(ROOM, "@owner:test", "m.room.power_levels", "", json!({"users": {"@mod:test": 50}}), 1),
            state("!v12room", "@creator:test", "m.room.create", "", json!({"room_version": "12"}), 2),
        ];
        for i in 0..20 {
            lines.push(message(ROOM, "@mod:test", i, "x", lines.len() + 1));
            lines.push(message("!v12room", "@creator:test", i, "x", lines.len() + 1));
        }
        check(&plugin(), &[], &lines, "");
    }

    #[test]
    fn a_raised_ban_level_is_respected() {
        let mut lines = vec![state(
            ROOM,
            "@owner:test",
            "m.room.power_levels",
            "",
            json!({"ban": 80, "users": {"@helper:test": 50}}),
            1,
        )];
        for i in 0..3 {
            lines.push(message(ROOM, "@helper:test", i, "x", lines.len() + 1));
        }
        check(
            &plugin(),
            &[("max-per-minute", SettingValue::Integer(2))],
            &lines,
            "
redact !room:test $e2 (flooding)
redact !room:test $e3 (flooding)
redact !room:test $e4 (flooding)
ban !room:test @helper:test (flooding)
notify-management @helper:test sent 3 messages within a minute in !room:test (limit 2); redacted their messages and banned them. (flooding)",
        );
    }

    #[test]
    fn without_the_ban_grant_the_ban_is_refused_and_the_rest_goes_through() {
        let p = plugin();
        let (queries, rooms) = queries();
        let granted: CapabilitySet =
            [capability::parse("redact").unwrap(), capability::parse("notify-management").unwrap()]
                .into_iter()
                .collect();
        let mut instance = p.instantiate(queries.clone(), granted).unwrap();
        instance.configure(&[("max-per-minute".into(), SettingValue::Integer(1))]).unwrap();
        let lines: Vec<_> = (0..2).map(|i| message(ROOM, "@a:test", i, "x", i as usize + 1)).collect();
        let got = run(&mut instance, &rooms, &queries.clock, &lines);
        assert_eq!(
            got,
            "redact !room:test $e1 (flooding)
redact !room:test $e2 (flooding)
notify-management @a:test sent 2 messages within a minute in !room:test (limit 1); redacted their messages and banned them. (flooding)
refused: ban !room:test @a:test (flooding) — needs `ban`, which the operator has not granted"
        );
    }

    #[test]
    fn invalid_settings_are_refused_and_the_old_ones_stay() {
        let (mut instance, _, _) = start(&plugin(), &[("max-per-minute", SettingValue::Integer(5))]);
        let err = instance.configure(&[("max-per-minute".into(), SettingValue::Integer(0))]).unwrap_err();
        assert_eq!(err.to_string(), "setting `max-per-minute`: 0 is outside 1..=10000");
        let err = instance.configure(&[("max-per-hour".into(), SettingValue::Integer(5))]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "setting `max-per-hour`: no such setting; known keys: max-per-minute, consequence, reason"
        );
        let current: Vec<_> = instance
            .settings()
            .iter()
            .map(|s| format!("{}={}", s.key, gleipnir_runtime::settings::format_value(&s.value)))
            .collect();
        assert_eq!(current, ["max-per-minute=5", "consequence=redact-and-ban", "reason=flooding"]);
    }
}

mod hostile {
    use super::*;
    use std::time::Duration;

    pub(super) fn covered() {}

    const ROOM: &str = "!room:test";

    /// Sends `body`, returns what came back; the instance is restarted after a fatal fault.
    fn send(instance: &mut Instance, body: &str) -> Result<Vec<String>, Fault> {
        let line = message(ROOM, "@a:test", 1, body, 1);
        let event = event::from_json(&line, None, &|_, _| None).unwrap().unwrap();
        let result = instance.handle(&event);
        match result {
            Ok(outcome) => Ok(outcome
                .actions
                .iter()
                .map(render_action)
                .chain(outcome.refused.iter().map(|r| format!("refused: {}", r.why)))
                .collect()),
            Err(fault) => {
                if fault.kills_instance() {
                    instance.restart().expect("restarts after a fault");
                }
                Err(fault)
            }
        }
    }

    /// The hostile protection misbehaves; the host reports it, the hostile
    /// protection works again after a restart, and flooding never notices.
    fn survive(body: &str, expect: impl Fn(&Result<Vec<String>, Fault>) -> bool) {
        let hostile = load(plugins::HOSTILE);
        let (mut bad, _, _) = start(&hostile, &[]);
        let (mut good, rooms, queries) =
            start(&load(plugins::FLOODING), &[("max-per-minute", gleipnir_runtime::SettingValue::Integer(1))]);
        let result = send(&mut bad, body);
        assert!(expect(&result), "{body}: unexpected {result:?}");
        assert_eq!(send(&mut bad, "ping").unwrap(), ["notify-management alive: ping (proof of life)"]);
        let lines: Vec<_> = (0..2).map(|i| message(ROOM, "@x:test", i, "x", i as usize + 1)).collect();
        assert!(run(&mut good, &rooms, &queries.clock, &lines).contains("ban !room:test @x:test"));
    }

    #[test]
    fn an_infinite_loop_times_out() {
        survive(
            "loop",
            |r| matches!(r, Err(Fault::Timeout { call: "handle", deadline }) if *deadline == gleipnir_tests::TEST_DEADLINE),
        );
    }

    #[test]
    fn a_memory_bomb_hits_the_cap() {
        survive("alloc", |r| matches!(r, Err(Fault::OutOfMemory { call: "handle", limit }) if *limit == 32 << 20));
    }

    #[test]
    fn a_panic_is_a_trap() {
        survive("panic", |r| matches!(r, Err(Fault::Trap { call: "handle", message }) if message.contains("panicked")));
    }

    #[test]
    fn a_stack_overflow_is_a_trap() {
        survive(
            "recurse",
            |r| matches!(r, Err(Fault::Trap { call: "handle", message }) if message.contains("stack overflow")),
        );
    }

    #[test]
    fn an_undeclared_action_is_refused() {
        survive("overreach", |r| {
            r.as_ref().is_ok_and(|v| v == &["refused: needs `ban`, which the protection did not declare"])
        });
    }

    #[test]
    fn a_hundred_thousand_actions_are_refused_whole() {
        // Building 100,000 actions takes a while in a loaded debug test run;
        // this test is about the action limit, not the deadline.
        let runtime =
            gleipnir_tests::runtime_with(Limits { call_deadline: Duration::from_secs(30), ..Limits::default() });
        let (queries, _) = queries();
        let hostile = gleipnir_tests::load_with(&runtime, plugins::HOSTILE);
        let mut bad = hostile.instantiate(queries, hostile.declared()).unwrap();
        let result = send(&mut bad, "flood");
        assert!(matches!(result, Err(Fault::TooManyActions { returned: 100_000, limit: 1000 })), "{result:?}");
        // Not fatal: the same instance keeps working without a restart.
        assert!(bad.fault().is_none());
        assert_eq!(send(&mut bad, "ping").unwrap(), ["notify-management alive: ping (proof of life)"]);
    }

    #[test]
    fn malformed_action_fields_are_refused() {
        survive("bad-fields", |r| {
            r.as_ref().is_ok_and(|v| v == &["refused: room id: `not-a-room` is not a room id (!room)"])
        });
    }

    #[test]
    fn log_spam_is_capped_per_call() {
        let (mut bad, _, _) = start(&load(plugins::HOSTILE), &[]);
        assert_eq!(send(&mut bad, "log-spam").unwrap(), ["notify-management logged (log-spam)"]);
        assert_eq!(bad.logs_dropped(), 1000 - 64);
    }

    #[test]
    fn the_key_value_store_is_bounded() {
        let (mut bad, _, _) = start(&load(plugins::HOSTILE), &[]);
        assert_eq!(
            send(&mut bad, "kv-fill").unwrap(),
            ["notify-management stored 17, then KvError::QuotaExceeded(1048576) (kv-fill)"]
        );
        assert!(bad.kv().used_bytes() <= 1 << 20);
    }

    #[test]
    fn the_sandbox_reaches_nothing_outside() {
        let (mut bad, _, _) = start(&load(plugins::HOSTILE), &[]);
        let got = send(&mut bad, "probe").unwrap();
        // stdout "works" but goes nowhere: WASI stdio is closed by the host.
        assert_eq!(
            got,
            [
                "notify-management env=0 args=0 root=false passwd=false cwd=false tcp=false udp=false dns=false wall-clock=0 stdout=true hashmap=1 (probe)"
            ]
        );
    }

    #[test]
    fn a_faulted_instance_refuses_calls_until_restarted() {
        let (mut bad, _, _) = start(&load(plugins::HOSTILE), &[]);
        let line = message(ROOM, "@a:test", 1, "panic", 1);
        let event = event::from_json(&line, None, &|_, _| None).unwrap().unwrap();
        let first = bad.handle(&event).unwrap_err();
        assert!(bad.fault().is_some());
        let second = bad.handle(&event).unwrap_err();
        assert_eq!(second, Fault::Faulted(Box::new(first)));
        bad.restart().unwrap();
        assert!(bad.fault().is_none());
    }
}

mod bad_spec {
    use super::*;

    pub(super) fn covered() {}

    #[test]
    fn an_invalid_settings_spec_is_refused_at_load() {
        let err = gleipnir_tests::runtime().load_file(plugins::BAD_SPEC.as_ref()).unwrap_err();
        assert!(matches!(err, LoadError::SettingsSpec(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "invalid settings spec: setting `threshold`: the default is invalid: 0 is outside 5..=10"
        );
    }
}

#[test]
fn compiled_components_are_cached_on_disk_and_reused() {
    let dir = std::env::temp_dir().join(format!("gleipnir-cache-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = || gleipnir_runtime::RuntimeConfig {
        cache: Some(gleipnir_runtime::Folder::create(&dir).unwrap()),
        ..Default::default()
    };
    let files = || -> Vec<(String, std::time::SystemTime)> {
        let mut v: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().modified().unwrap()))
            .collect();
        v.sort();
        v
    };
    let first = gleipnir_runtime::Runtime::new(config()).unwrap().load_file(plugins::NOOP.as_ref()).unwrap();
    let cached = files();
    assert_eq!(cached.len(), 1);
    assert!(cached[0].0.starts_with(first.content_hash()), "{cached:?}");
    // A new runtime (a restart) loads the cached artifact instead of compiling.
    let again = gleipnir_runtime::Runtime::new(config()).unwrap().load_file(plugins::NOOP.as_ref()).unwrap();
    assert_eq!(again.content_hash(), first.content_hash());
    assert_eq!(files(), cached, "the artifact was not rewritten");
    // A damaged artifact is compiled again, not trusted.
    std::fs::write(dir.join(&cached[0].0), b"garbage").unwrap();
    let repaired = gleipnir_runtime::Runtime::new(config()).unwrap().load_file(plugins::NOOP.as_ref()).unwrap();
    assert_eq!(repaired.descriptor().name, "noop");
    assert_ne!(std::fs::read(dir.join(&cached[0].0)).unwrap(), b"garbage");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Threads and processes compiling the same component at once must not write
/// into one temporary file (that once crashed a test run with SIGBUS).
#[test]
fn concurrent_loads_share_the_cache_safely() {
    let dir = std::env::temp_dir().join(format!("gleipnir-cache-race-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let config = gleipnir_runtime::RuntimeConfig {
                    cache: Some(gleipnir_runtime::Folder::create(&dir).unwrap()),
                    ..Default::default()
                };
                let runtime = gleipnir_runtime::Runtime::new(config).unwrap();
                for _ in 0..3 {
                    let plugin = runtime.load_file(plugins::FLOODING.as_ref()).unwrap();
                    assert_eq!(plugin.descriptor().name, "flooding");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "only the artifact remains: {leftovers:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn files_that_are_not_protections_are_refused() {
    let runtime = gleipnir_tests::runtime();
    let err = runtime.load_bytes(b"definitely not wasm").unwrap_err();
    assert!(matches!(err, LoadError::Compile(_)), "{err}");
    // A core module (not a component).
    let err = runtime.load_bytes(&[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]).unwrap_err();
    assert!(matches!(err, LoadError::Compile(_)), "{err}");
}

mod noop {
    use super::*;

    pub(super) fn covered() {}

    #[test]
    fn does_nothing_and_declares_nothing() {
        let p = load(plugins::NOOP);
        assert!(p.declared().is_empty());
        let lines: Vec<_> = (0..50).map(|i| message("!r:test", "@a:test", 0, "x", i)).collect();
        check(&p, &[], &lines, "");
    }
}

mod newcomer_watch_words {
    use super::*;
    use gleipnir_runtime::SettingValue;

    pub(super) fn covered() {}

    #[test]
    fn disguised_watched_words_from_newcomers_only() {
        watched_words_from_newcomers(&load(plugins::NEWCOMER_WATCH_WORDS));
    }

    /// The component built for contract 0.1.0 decides as it always did.
    #[test]
    fn the_0_1_0_build_still_catches_disguised_words() {
        watched_words_from_newcomers(&load(gleipnir_tests::fixtures::NEWCOMER_WATCH_WORDS_0_1_0));
    }

    fn watched_words_from_newcomers(p: &Plugin) {
        assert_eq!(p.declared().to_string(), "redact, ban, notify-management");
        let words = ("words", SettingValue::TextList(vec!["cheap pills".into()]));
        // The member joined 1,000 s before the first message.
        let lines = [
            state("!r:test", "@new:test", "m.room.member", "@new:test", json!({"membership": "join"}), 1),
            message("!r:test", "@new:test", 0, "ＣＨＥＡＰ p\u{200B}ills!", 2),
            message("!r:test", "@new:test", 1, "nothing to see", 3),
        ];
        check(
            p,
            std::slice::from_ref(&words),
            &lines,
            "redact !r:test $e2 (watched word from a newcomer)\n\
             notify-management @new:test (joined 16 min ago) said the watched phrase \"cheap pills\" in !r:test; redacted the message. (watched word from a newcomer)",
        );
        // Trusted after ten minutes.
        check(p, &[words, ("minutes-before-trusting", SettingValue::Integer(10))], &lines, "");
    }
}

mod policy_echo {
    use super::*;

    pub(super) fn covered() {}

    #[test]
    fn reports_policy_changes_only() {
        let p = load(plugins::POLICY_ECHO);
        assert_eq!(p.declared().to_string(), "notify-management");
        let rule = state(
            "!list:test",
            "@mod:test",
            "m.policy.rule.user",
            "k",
            serde_json::json!({"entity": "@spam:*", "recommendation": "m.ban"}),
            1,
        );
        let lines = [rule, message("!r:test", "@a:test", 0, "x", 2)];
        check(&p, &[], &lines, "notify-management policy-echo: added m.ban @spam:* in !list:test (test)");
    }
}

mod cache;
mod catalogue;
mod counter;
mod counter_next;
mod display_names;
mod folders;
mod invalid_event;
mod join_wave;
mod least_authority;
mod loud;
mod media;
mod membership_churn;
mod mention_limit;
mod new_joiner_servers;
mod panic_in_constructor;
mod panic_in_describe;
mod sandbox;
mod shouting;
mod takedown;
mod trusted_reporters;
mod witness;

mod future_contract {
    use super::*;

    pub(super) fn covered() {}

    #[test]
    fn a_plugin_for_another_contract_version_is_refused_naming_both() {
        let err = gleipnir_tests::runtime().load_file(plugins::FUTURE_CONTRACT.as_ref()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the plugin speaks gleipnir:protection@9.0.0, this host speaks @0.1.0 and @0.2.0; rebuild the plugin with a gleipnir-sdk for 0.2.0"
        );
    }
}

mod newer_host {
    use super::*;

    pub(super) fn covered() {}

    /// A plugin that imports a host function this host lacks (built for a
    /// newer host) is refused naming the function, not with a link error.
    #[test]
    fn a_plugin_for_a_newer_host_is_refused_naming_what_it_needs() {
        let err = gleipnir_tests::runtime().load_file(plugins::NEWER_HOST.as_ref()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the plugin was built for a newer host: it needs gleipnir:protection/host@0.1.0#shiny-new, which this host \
             (contract gleipnir:protection@0.1.0) does not offer; upgrade Gleipnir, or rebuild the plugin with a gleipnir-sdk for 0.1.0"
        );
    }
}

/// Host functions added to `gleipnir:protection@0.1.0` after it was first
/// published (`message-count`) are a compatible change: a component built
/// before them still loads and runs.
#[test]
fn a_plugin_built_before_later_host_additions_still_runs() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/noop-built-before-message-count.wasm");
    let bytes = std::fs::read(path).unwrap();
    assert!(!bytes.windows(13).any(|w| w == b"message-count"), "the fixture predates message-count");
    let plugin = load(path);
    let (q, rooms) = queries();
    let mut instance = plugin.instantiate(q.clone(), plugin.declared()).expect("instantiates");
    assert_eq!(run(&mut instance, &rooms, &q.clock, &[message("!r:test", "@a:test", 1, "hi", 1)]), "");
}
