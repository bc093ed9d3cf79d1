//! Protections in the bot: newcomer watch words, previews, quarantine.

use std::time::Duration;

use serde_json::json;
use synapse_harness::{Options, unique_name};

use crate::common::*;

/// newcomer-watch-words: a newcomer's disguised watched phrase is redacted,
/// also when it arrives as an edit; a moderator's is not.
#[test]
fn newcomer_watch_words_end_to_end() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator) = (&scene.synapse, &scene.moderator);
    let _gleipnir = scene.start(
        &[],
        &[
            ("protections enable newcomer-watch-words", "newcomer-watch-words enabled"),
            ("protections config add newcomer-watch-words words cheap pills", "newcomer-watch-words.words"),
        ],
    );
    let by_moderator = send(synapse, moderator, &scene.protected, "no cheap pills here, please");
    let hello = send(synapse, &scene.spammer, &scene.protected, "hello everyone");
    let disguised = send(synapse, &scene.spammer, &scene.protected, "get ｃｈｅａｐ p\u{200B}ills now");
    eventually("the disguised phrase redacted", Duration::from_secs(30), || {
        is_redacted(synapse, moderator, &scene.protected, &disguised).then_some(())
    });
    eventually("the report", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains("said the watched phrase \"cheap pills\""))
    });
    // An edit that adds the phrase is caught too.
    let edit = json!({
        "msgtype": "m.text", "body": "* cheap pills",
        "m.new_content": {"msgtype": "m.text", "body": "cheap pills"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": hello},
    });
    let path = format!("/_matrix/client/v3/rooms/{}/send/m.room.message/{}", scene.protected, unique_name("t"));
    let edit_id =
        synapse.call(&scene.spammer, "PUT", &path, Some(&edit)).unwrap()["event_id"].as_str().unwrap().to_owned();
    eventually("the edit redacted", Duration::from_secs(30), || {
        is_redacted(synapse, moderator, &scene.protected, &edit_id).then_some(())
    });
    assert!(!is_redacted(synapse, moderator, &scene.protected, &by_moderator));
    assert!(!is_redacted(synapse, moderator, &scene.protected, &hello));
}

/// `protections preview` says what a protection would have done over recent
/// history, and does none of it.
#[test]
fn preview_reports_and_changes_nothing() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator) = (&scene.synapse, &scene.moderator);
    let spam: Vec<String> =
        (0..12).map(|i| send(synapse, &scene.spammer, &scene.protected, &format!("spam {i}"))).collect();
    let _gleipnir = scene.start(&[], &[]);
    let preview = scene.command("protections preview flooding --limit 50", "Preview of flooding");
    assert!(preview.contains("Nothing was done"), "{preview}");
    // Eleven redactions, the ban and the report at the eleventh message; the twelfth redacted too.
    assert!(preview.contains("would have carried out 14 action(s)"), "{preview}");
    assert!(preview.contains(r#""action":"ban""#) && preview.contains(&scene.spammer.user_id), "{preview}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(membership(synapse, moderator, &scene.protected, &scene.spammer.user_id).as_deref(), Some("join"));
    assert!(spam.iter().all(|id| !is_redacted(synapse, moderator, &scene.protected, id)));
    // It is not enabled by previewing.
    scene.command("protections", "flooding 1.0.0 (disabled)");
}

/// A protection that keeps faulting is quarantined (and says so once), the
/// others keep working; enabling it again lifts the quarantine; actions
/// outside its grants are refused and reported once per kind.
#[test]
fn faulty_protections_are_quarantined() {
    let scene = Scene::new(Options::default());
    let _gleipnir = scene.start(&[], &[("protections enable hostile", "hostile enabled")]);
    for _ in 0..3 {
        send(&scene.synapse, &scene.spammer, &scene.protected, "panic");
    }
    eventually("the quarantine", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains("hostile faulted") && n.contains("quarantined for 30 s"))
    });
    scene.command("status", "hostile 0.1.0 (enabled, QUARANTINED");
    scene.command("protections enable hostile", "quarantine is lifted");
    for _ in 0..2 {
        send(&scene.synapse, &scene.spammer, &scene.protected, "overreach");
    }
    scene.command("status", "2 refused ban");
    let refusals = scene.notices().iter().filter(|n| n.starts_with("hostile: refused")).count();
    assert_eq!(refusals, 1, "{:?}", scene.notices());
}
