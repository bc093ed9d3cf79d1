//! Contract tests of `shouting`, the protection written in Python (built
//! with componentize-py): the contract is language-neutral.

use std::time::Duration;

use super::*;
use gleipnir_runtime::{Caller, Checked, Pending, PendingEvent};

pub(super) fn covered() {}

const ROOM: &str = "!r:test";

/// The sandbox a componentize-py component needs: more core instances than
/// a Rust one (9), and time for CPython to decide a `check`.
fn limits() -> Limits {
    Limits { instances: 16, check_deadline: Duration::from_millis(100), ..Limits::default() }
}

fn plugin() -> Option<Plugin> {
    let path = gleipnir_tests::built_with_other_toolchain("shouting", plugins::SHOUTING)?;
    Some(gleipnir_tests::load_with(&gleipnir_tests::runtime_with(limits()), path))
}

#[test]
fn under_the_default_sandbox_it_is_refused_saying_what_to_raise() {
    let Some(path) = gleipnir_tests::built_with_other_toolchain("shouting", plugins::SHOUTING) else { return };
    let err = gleipnir_tests::runtime().load_file(path.as_ref()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("instance count too high") && text.contains("raise `instances`"), "{text}");
}

#[test]
fn it_describes_itself_in_contract_0_2_0() {
    let Some(p) = plugin() else { return };
    assert_eq!(p.wit_version(), "0.2.0");
    assert_eq!(p.name(), "shouting");
    assert_eq!(p.declared().to_string(), "redact, notify-management");
    let d = p.descriptor();
    assert_eq!(d.commands[0].name, "test");
    let keys: Vec<&str> = d.settings.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["min-letters", "max-capitals-percent", "notify"]);
}

#[test]
fn shouting_is_redacted_and_moderators_and_quiet_messages_are_not() {
    let Some(p) = plugin() else { return };
    let (queries, rooms) = queries();
    rooms.apply(ROOM, "m.room.power_levels", "", "@mod:test", 1, r#"{"users":{"@mod:test":100}}"#);
    let mut instance = p.instantiate(queries.clone(), p.declared()).unwrap();
    let lines = [
        message(ROOM, "@a:test", 1, "hello there, how is everyone", 1),
        message(ROOM, "@a:test", 2, "WHY IS NOBODY ANSWERING ME", 2),
        message(ROOM, "@mod:test", 3, "PLEASE READ THE RULES FIRST", 3),
        message(ROOM, "@a:test", 4, "OK", 4),
        message(ROOM, "@a:test", 5, "Ünïcödé ÜBER ALLES WIRD GESCHRIEN", 5),
    ];
    let out: Vec<String> = lines
        .iter()
        .map(|l| event::from_json(l, None, &|_, _| None).unwrap().unwrap())
        .flat_map(|e| instance.handle(&e).unwrap().actions)
        .map(|a| render_action(&a))
        .collect();
    assert_eq!(
        out,
        [
            "redact !r:test $e2 (shouting: please do not write in capital letters)",
            "redact !r:test $e5 (shouting: please do not write in capital letters)",
        ]
    );
}

#[test]
fn its_command_and_its_check_answer_through_the_runtime() {
    let Some(p) = plugin() else { return };
    let (queries, _) = queries();
    let mut instance = p.instantiate(queries, p.declared()).unwrap();
    let caller = Caller { user_id: "@mod:test".into(), power_level: 100 };
    let args = |text: &str| text.split(' ').map(str::to_owned).collect::<Vec<_>>();
    let reply = instance.command("test", &args("STOP THIS AT ONCE"), &caller).unwrap().unwrap();
    assert_eq!(reply.reply, "shouting: 14 of 14 letters are capitals (limit 70% of at least 12)");
    assert_eq!(instance.command("test", &[], &caller).unwrap().unwrap_err(), "usage: shouting test TEXT…");
    let pending = |body: &str| {
        Pending::Event(PendingEvent {
            room_id: ROOM.into(),
            sender: "@a:test".into(),
            event_type: "m.room.message".into(),
            state_key: None,
            content: json!({"msgtype": "m.text", "body": body}).to_string(),
        })
    };
    assert!(matches!(instance.check_pending(&pending("quiet words, nothing more")).unwrap(), Checked::Allow));
    match instance.check_pending(&pending("LOUD WORDS, NOTHING MORE")).unwrap() {
        Checked::Deny { reason, .. } => assert_eq!(reason, "Please do not write in capital letters."),
        Checked::Allow => panic!("shouting allowed"),
    }
    // Settings are checked by the host against its spec, then taken.
    instance.configure(&[("max-capitals-percent".to_owned(), gleipnir_runtime::SettingValue::Integer(100))]).unwrap();
    assert!(matches!(instance.check_pending(&pending("LOUD WORDS, NOTHING MORE")).unwrap(), Checked::Allow));
}
