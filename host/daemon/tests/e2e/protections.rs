//! Protections in the bot: newcomer watch words, previews, quarantine.

use std::time::Duration;

use serde_json::{Value, json};
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
    // A newcomer joins after the room is protected (members from before are
    // established: the moderators vouched for the room as it was).
    let newcomer = synapse.register(&unique_name("new"), "new-password", false).unwrap();
    invite_and_join(synapse, moderator, &newcomer, &scene.protected);
    let by_moderator = send(synapse, moderator, &scene.protected, "no cheap pills here, please");
    let hello = send(synapse, &newcomer, &scene.protected, "hello everyone");
    let disguised = send(synapse, &newcomer, &scene.protected, "get ｃｈｅａｐ p\u{200B}ills now");
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
    let edit_id = synapse.call(&newcomer, "PUT", &path, Some(&edit)).unwrap()["event_id"].as_str().unwrap().to_owned();
    eventually("the edit redacted", Duration::from_secs(30), || {
        is_redacted(synapse, moderator, &scene.protected, &edit_id).then_some(())
    });
    assert!(!is_redacted(synapse, moderator, &scene.protected, &by_moderator));
    assert!(!is_redacted(synapse, moderator, &scene.protected, &hello));
    // A member from before the room was protected is no newcomer, whatever they say.
    let old = send(synapse, &scene.spammer, &scene.protected, "cheap pills, said by an old member");
    let marker = send(synapse, &newcomer, &scene.protected, "cheap pills again");
    eventually("the marker redacted", Duration::from_secs(30), || {
        is_redacted(synapse, moderator, &scene.protected, &marker).then_some(())
    });
    assert!(!is_redacted(synapse, moderator, &scene.protected, &old));
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
    assert!(preview.contains("would have carried out 14 action(s), about 1 member(s):"), "{preview}");
    // One sentence for the flooder, not fourteen lines of JSON.
    let sentence =
        format!("- in {}: ban {} and redact their 12 messages (flooding)", scene.protected, scene.spammer.user_id);
    assert!(preview.contains(&sentence), "{preview}");
    assert!(preview.contains("- tell the management room “"), "{preview}");
    assert!(!preview.contains(r#""action""#), "no JSON: {preview}");
    // Anything the preview did would be done before the bot answers the next command.
    scene.command("status", "Protections:");
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
    let status = scene.command("status", "2 refused ban");
    // It declares redact, which the operator did not grant: status says so.
    assert!(
        status.contains("not granted: redact (refused when it asks; grant in [protections.hostile] grants)"),
        "{status}"
    );
    let refusals = scene.notices().iter().filter(|n| n.starts_with("hostile: refused")).count();
    assert_eq!(refusals, 1, "{:?}", scene.notices());
}

/// A protection opens and closes a protected room through `set-join-rule`,
/// carried out by the executor; a rule already in force is not sent again.
#[test]
fn a_protection_sets_a_rooms_join_rule() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator) = (&scene.synapse, &scene.moderator);
    let _gleipnir = scene.start(&[], &[("protections enable hostile", "hostile enabled")]);
    let path = format!("/_matrix/client/v3/rooms/{}/state/m.room.join_rules/", scene.protected);
    let rule =
        || synapse.call(moderator, "GET", &path, None).ok().and_then(|c| c["join_rule"].as_str().map(str::to_owned));
    assert_eq!(rule().as_deref(), Some("invite"), "the scene's room starts invite-only");
    send(synapse, &scene.spammer, &scene.protected, "open-room");
    eventually("the room opened", Duration::from_secs(30), || (rule().as_deref() == Some("public")).then_some(()));
    // Someone who was never invited can join now.
    let visitor = synapse.register(&unique_name("visitor"), "visitor-password", false).unwrap();
    join(synapse, &visitor, &scene.protected);
    send(synapse, &scene.spammer, &scene.protected, "close-room");
    eventually("the room closed", Duration::from_secs(30), || (rule().as_deref() == Some("invite")).then_some(()));
    // Closed again, it stays closed: one state event per change, no repeats.
    send(synapse, &scene.spammer, &scene.protected, "close-room");
    scene.command("status", "hostile");
    let changes = synapse
        .call(moderator, "GET", &format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=100", scene.protected), None)
        .unwrap();
    let by_bot = changes["chunk"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "m.room.join_rules" && e["sender"] == scene.bot.user_id.as_str())
        .count();
    assert_eq!(by_bot, 2, "{changes}");
    let stranger = synapse.register(&unique_name("stranger"), "stranger-password", false).unwrap();
    let refused =
        synapse.call(&stranger, "POST", &format!("/_matrix/client/v3/join/{}", scene.protected), Some(&json!({})));
    assert!(refused.is_err(), "an uninvited user joined a closed room");
}

/// A protection that asks for ticks gets one every `protections.NAME.tick`,
/// with no event needed, and what it decides is carried out.
#[test]
fn a_protection_gets_ticks_at_its_interval() {
    let scene = Scene::new(Options::default());
    let tick_every_second = |dir: &std::path::Path| {
        let path = dir.join("config.toml");
        let config = std::fs::read_to_string(&path).unwrap();
        let grants = "grants = [\"notify-management\", \"set-join-rule\"]\n";
        assert!(config.contains(grants), "{config}");
        std::fs::write(&path, config.replacen(grants, &format!("{grants}tick = \"1s\"\n"), 1)).unwrap();
    };
    let _gleipnir = scene.start_with(tick_every_second, &[("protections enable hostile", "hostile enabled")]);
    for n in [1, 2, 3] {
        eventually(&format!("tick {n}"), Duration::from_secs(30), || {
            scene.notices().into_iter().find(|notice| notice == &format!("hostile: tick {n}"))
        });
    }
}

/// Invites `who` to `room` (by `inviter`) and joins.
fn invite_and_join(
    synapse: &synapse_harness::Synapse,
    inviter: &synapse_harness::Account,
    who: &synapse_harness::Account,
    room: &str,
) {
    let path = format!("/_matrix/client/v3/rooms/{room}/invite");
    synapse.call(inviter, "POST", &path, Some(&json!({"user_id": who.user_id}))).unwrap();
    join(synapse, who, room);
}

/// least-authority: a newcomer's link is redacted and explained; the same
/// member after the thresholds (time in the room and messages that stayed)
/// is not; a restart keeps that standing and still does not treat members
/// from before as newcomers; `untrust` and `trust` move the gate.
#[test]
fn least_authority_end_to_end() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator, room) = (&scene.synapse, &scene.moderator, &scene.protected);
    let mut gleipnir = scene.start(
        &[],
        &[
            ("protections enable least-authority", "least-authority enabled"),
            ("protections config set least-authority time-before-trusted 12s", "least-authority.time-before-trusted"),
            (
                "protections config set least-authority messages-before-trusted 3",
                "least-authority.messages-before-trusted",
            ),
        ],
    );
    // The spammer joined before the room was protected: an established member.
    let newcomer = synapse.register(&unique_name("new"), "new-password", false).unwrap();
    let other = synapse.register(&unique_name("other"), "other-password", false).unwrap();
    invite_and_join(synapse, moderator, &newcomer, room);
    invite_and_join(synapse, moderator, &other, room);
    let joined = std::time::Instant::now();
    let redacted = |id: &str| is_redacted(synapse, moderator, room, id);

    let link = send(synapse, &newcomer, room, "look: https://spam.example/offer");
    eventually("the newcomer's link redacted", Duration::from_secs(30), || redacted(&link).then_some(()));
    let explanation = eventually("the explanation", Duration::from_secs(30), || {
        notices(synapse, moderator, room, &scene.bot.user_id).into_iter().find(|n| n.contains(&newcomer.user_id))
    });
    assert!(explanation.contains("links"), "{explanation}");
    let old_link = send(synapse, &scene.spammer, room, "an old member's link: https://example.org/ok");
    for i in 0..3 {
        send(synapse, &newcomer, room, &format!("hello {i}"));
    }
    // Past the time threshold, with three messages that stayed: free.
    std::thread::sleep(Duration::from_secs(13).saturating_sub(joined.elapsed()));
    let later = send(synapse, &newcomer, room, "now https://example.org/fine");
    // `other` is still a newcomer (no messages): its link, sent after, shows the bot got this far.
    let marker = send(synapse, &other, room, "https://marker.example");
    eventually("the other newcomer's link redacted", Duration::from_secs(30), || redacted(&marker).then_some(()));
    assert!(!redacted(&later), "the member passed both thresholds");
    assert!(!redacted(&old_link), "members from before are not newcomers");

    // A restart (after the counts were written) keeps all of that: the
    // newcomer's four messages are on disk (written at most every 2 s, after a sync).
    let counts = gleipnir.dir.join("data/message-counts.json");
    eventually("the newcomer's messages counted on disk", Duration::from_secs(30), || {
        send(synapse, &scene.spammer, room, "tick");
        let text = std::fs::read_to_string(&counts).ok()?;
        let saved: Value = serde_json::from_str(&text).ok()?;
        (saved["messages"][room.as_str()][&newcomer.user_id].as_u64() >= Some(4)).then_some(())
    });
    gleipnir.restart();
    eventually("the second start", Duration::from_secs(60), || {
        (scene.notices().iter().filter(|n| n.contains("Gleipnir started")).count() >= 2).then_some(())
    });
    let after = send(synapse, &newcomer, room, "after a restart https://example.org/still-fine");
    let old_after = send(synapse, &scene.spammer, room, "https://example.org/still-an-old-member");
    let marker = send(synapse, &other, room, "https://marker2.example");
    eventually("the other newcomer's link redacted again", Duration::from_secs(30), || redacted(&marker).then_some(()));
    assert!(!redacted(&after), "the standing survived the restart");
    assert!(!redacted(&old_after), "still not a newcomer after the restart");

    // Moderators move the gate.
    scene.command(&format!("least-authority untrust {}", newcomer.user_id), "is gated");
    let gated = send(synapse, &newcomer, room, "https://example.org/gated");
    eventually("the untrusted member's link redacted", Duration::from_secs(30), || redacted(&gated).then_some(()));
    scene.command(&format!("least-authority trust {}", other.user_id), "is trusted");
    let trusted = send(synapse, &other, room, "https://example.org/trusted");
    let marker = send(synapse, &newcomer, room, "https://example.org/gated-again");
    eventually("the gated member's link redacted", Duration::from_secs(30), || redacted(&marker).then_some(()));
    assert!(!redacted(&trusted), "a trusted newcomer may post links");
}

/// takedown: a hashed takedown rule in a watched list has the user's recent
/// events redacted (and nobody else's), the user banned, suspended on this
/// homeserver (the bot is a server admin here), and a report.
#[test]
fn takedown_end_to_end() {
    let synapse = synapse_harness::Synapse::start(Options::default()).unwrap_or_else(|e| panic!("{e}"));
    let bot = synapse.register(&unique_name("bot"), "bot-password", true).unwrap();
    let moderator = synapse.register(&unique_name("mod"), "mod-password", false).unwrap();
    let spammer = synapse.register(&unique_name("spam"), "spam-password", false).unwrap();
    let bystander = synapse.register(&unique_name("by"), "by-password", false).unwrap();
    let powers = json!({ bot.user_id.clone(): 100 });
    let management = create_room(&synapse, &moderator, &[&bot], powers.clone());
    let protected = create_room(&synapse, &moderator, &[&bot, &spammer, &bystander], powers);
    join(&synapse, &spammer, &protected);
    join(&synapse, &bystander, &protected);
    // A room of the spammer's own, to see the suspension.
    let own = synapse.call(&spammer, "POST", "/_matrix/client/v3/createRoom", Some(&json!({}))).unwrap();
    let own = own["room_id"].as_str().unwrap().to_owned();
    let spam: Vec<String> = (0..3).map(|i| send(&synapse, &spammer, &protected, &format!("buy now {i}"))).collect();
    let kept = send(&synapse, &bystander, &protected, "a normal message");
    let upload = "/_matrix/media/v3/upload?filename=spam.json";
    synapse.call(&spammer, "POST", upload, Some(&json!({"spam": true}))).unwrap();
    let media = format!("/_synapse/admin/v1/users/{}/media", spammer.user_id);
    assert_eq!(synapse.call(&bot, "GET", &media, None).unwrap()["total"], 1);

    let mut gleipnir = start_bot_with(&synapse, &bot, &management, &[], |dir| {
        let mut config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
        config.push_str("[policy]\nroom_takedowns = true\n");
        std::fs::write(dir.join("config.toml"), config).unwrap();
    });
    let run = |text: &str, expect: &str| command(&synapse, &moderator, &management, &bot.user_id, text, expect);
    eventually("the bot's start notice", Duration::from_secs(60), || {
        notices(&synapse, &moderator, &management, &bot.user_id).into_iter().find(|n| n.contains("Gleipnir started"))
    });
    run(&format!("rooms add {protected}"), "Now protecting");
    run("protections enable takedown", "takedown enabled");
    run("list create td td-list", "Created the policy list");
    run(&format!("takedown {} td spam", spammer.user_id), "hashed: only its sha256 is published");

    let report = eventually("the takedown report", Duration::from_secs(60), || {
        notices(&synapse, &moderator, &management, &bot.user_id)
            .into_iter()
            .find(|n| n.starts_with("takedown: Takedown rule for sha256:"))
    });
    assert!(
        report.contains(&format!("{}: 3 event(s) redacted across 1 protected room(s)", spammer.user_id)),
        "{report}"
    );
    assert!(report.contains("suspension and media deletion asked for"), "{report}");
    // Actions on an account wait for a moderator's ✅.
    let asked = "takedown asks for actions on accounts";
    let preview = eventually("the account actions' preview", Duration::from_secs(30), || {
        notices(&synapse, &moderator, &management, &bot.user_id).into_iter().find(|n| n.starts_with(asked))
    });
    assert!(preview.contains(&format!("suspend {}", spammer.user_id)), "{preview}");
    assert!(try_send(&synapse, &spammer, &own, "not suspended yet").is_ok(), "suspended before the ✅");
    let preview_id = notice_id(&synapse, &moderator, &management, &bot.user_id, asked).unwrap();
    react(&synapse, &moderator, &management, &preview_id, "✅");
    eventually("the spammer's events redacted", Duration::from_secs(30), || {
        spam.iter().all(|id| is_redacted(&synapse, &moderator, &protected, id)).then_some(())
    });
    assert!(!is_redacted(&synapse, &moderator, &protected, &kept), "a bystander's message was redacted");
    eventually("the spammer banned", Duration::from_secs(30), || {
        (membership(&synapse, &moderator, &protected, &spammer.user_id).as_deref() == Some("ban")).then_some(())
    });
    let suspended = eventually("the spammer suspended", Duration::from_secs(30), || {
        try_send(&synapse, &spammer, &own, "still here?").err()
    });
    assert!(suspended.contains("SUSPENDED") || suspended.contains("suspended"), "{suspended}");
    assert_eq!(synapse.call(&bot, "GET", &media, None).unwrap()["total"], 0, "the spammer's media deleted");

    // A takedown of a server admin's account is refused by the host, whatever the list says.
    let admin = synapse.register(&unique_name("admin"), "admin-password", true).unwrap();
    let invite = json!({"user_id": admin.user_id});
    synapse.call(&moderator, "POST", &format!("/_matrix/client/v3/rooms/{protected}/invite"), Some(&invite)).unwrap();
    join(&synapse, &admin, &protected);
    run(&format!("takedown {} td", admin.user_id), "hashed");
    eventually("the server admin left alone", Duration::from_secs(60), || {
        notices(&synapse, &moderator, &management, &bot.user_id)
            .into_iter()
            .find(|n| n.contains(&format!("not suspend {}: they are a server admin", admin.user_id)))
    });
    let status = synapse.call(&bot, "GET", &format!("/_synapse/admin/v2/users/{}", admin.user_id), None).unwrap();
    assert_ne!(status["suspended"], true, "{status}");
    assert_eq!(membership(&synapse, &moderator, &protected, &admin.user_id).as_deref(), Some("join"), "banned");

    // A room takedown (hashed too): the room is blocked and purged on this homeserver.
    run(&format!("takedown {own} td spam room"), "hashed: only its sha256 is published");
    let taken = eventually("the room takedown", Duration::from_secs(60), || {
        notices(&synapse, &moderator, &management, &bot.user_id)
            .into_iter()
            .find(|n| n.starts_with("Room takedown rule for"))
    });
    assert!(taken.contains(&format!("- {own}: blocked, and its purge started")), "{taken}");
    let path = format!("/_synapse/admin/v1/rooms/{own}/block");
    assert_eq!(synapse.call(&bot, "GET", &path, None).unwrap()["block"], true);
    // A protected room is never taken down.
    run(&format!("takedown {protected} td"), "hashed");
    eventually("the refusal", Duration::from_secs(60), || {
        notices(&synapse, &moderator, &management, &bot.user_id)
            .into_iter()
            .find(|n| n.contains("I protect this room: not taken down"))
    });
    // Nothing failed along the way.
    let all = notices(&synapse, &moderator, &management, &bot.user_id);
    assert!(!all.iter().any(|n| n.contains("failed") || n.contains("refused")), "{all:?}");

    // A restart (a crash, even) with the takedown rules still in the list
    // repeats none of it: no admin API call, no new takedown report.
    let log = gleipnir.dir.join("gleipnir.log");
    let before = std::fs::read_to_string(&log).unwrap().len();
    let count = |prefix: &str| {
        notices(&synapse, &moderator, &management, &bot.user_id).iter().filter(|n| n.starts_with(prefix)).count()
    };
    let (takedowns, room_takedowns) = (count("takedown: Takedown rule for"), count("Room takedown rule for"));
    gleipnir.restart();
    eventually("the second start", Duration::from_secs(60), || (count("Gleipnir started") == 2).then_some(()));
    // A marker: once `status` is answered, the first sync after the start was handled.
    run("status", "Protections:");
    let after = std::fs::read_to_string(&log).unwrap()[before..].to_owned();
    // (Reads are fine: a rule still bans members present, and asks first whether one is a server admin.)
    let acted = after.lines().filter(|l| l.contains("admin API call") && !l.contains("method=GET")).count();
    assert_eq!(acted, 0, "the restart acted through the admin API again:\n{after}");
    assert_eq!(count("takedown: Takedown rule for"), takedowns);
    assert_eq!(count("Room takedown rule for"), room_takedowns);
    // Before this run wrote down what it acted on, every rule was new: the
    // admin API was called (the assertion above could fail).
    assert!(std::fs::read_to_string(&log).unwrap()[..before].contains("admin API call method=PUT"));
}

/// Contract 0.2.0 end to end, through the `witness` test protection: an
/// invite, a join-rule change, an abuse report and ticks at the interval it
/// asks for reach it; its own commands are routed, listed in `help`, change
/// its settings, and act through the executor (closing the room and putting
/// the rule back), with a preview above `confirm_above`.
#[test]
fn a_0_2_0_protection_gets_new_events_and_answers_its_commands() {
    let scene = Scene::with_admin_bot(Options::default());
    let (synapse, moderator, room) = (&scene.synapse, &scene.moderator, &scene.protected);
    let poll_reports = |dir: &std::path::Path| {
        let path = dir.join("config.toml");
        let config = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{config}[reports]\npoll = true\nevery = \"1s\"\n")).unwrap();
    };
    let _gleipnir = scene.start_with(poll_reports, &[("protections enable witness", "witness enabled")]);
    let seen = |what: &str| {
        let what = what.to_owned();
        eventually(&what.clone(), Duration::from_secs(30), || {
            scene.notices().into_iter().find(|n| n.starts_with("witness: ") && n.contains(&what))
        })
    };
    // Ticks every 2 s, as its descriptor asks (no `tick` in the config).
    seen("tick 2");

    let guest = synapse.register(&unique_name("guest"), "guest-password", false).unwrap();
    let path = format!("/_matrix/client/v3/rooms/{room}/invite");
    synapse.call(moderator, "POST", &path, Some(&json!({"user_id": guest.user_id}))).unwrap();
    seen(&format!("invite of {} by {}", guest.user_id, moderator.user_id));

    let rules = format!("/_matrix/client/v3/rooms/{room}/state/m.room.join_rules/");
    synapse.call(moderator, "PUT", &rules, Some(&json!({"join_rule": "knock"}))).unwrap();
    seen("JoinRule::Knock (was Some(JoinRule::Invite))");

    // A member reports the spammer's message with their client.
    let bad = send(synapse, &scene.spammer, room, "buy cheap pills");
    join(synapse, &guest, room);
    let report = format!("/_matrix/client/v3/rooms/{room}/report/{bad}");
    synapse.call(&guest, "POST", &report, Some(&json!({"reason": "spam", "score": -100}))).unwrap();
    let said = seen(&format!("report by {} of {bad}", guest.user_id));
    assert!(said.contains(&format!("({})", scene.spammer.user_id)), "{said}");
    assert!(said.contains("spam score=Some(-100)") && said.contains("buy cheap pills"), "{said}");

    // Its commands: listed, routed, settings saved like a moderator's.
    let help = scene.command("help", "Commands (give them as");
    assert!(help.contains("- witness say WORDS…: reply with the words"), "{help}");
    let catalogue = scene.command("help protections", "docs/protections.md");
    assert!(catalogue.contains("- witness (enabled): "), "{catalogue}");
    scene.command("witness say hello there", "witness says: hello there");
    let set = scene.command("witness set 5", "witness.level: 0 → 5");
    assert!(set.contains("witness: level 0 → 5"), "{set}");
    scene.command("protections show witness", "level = 5");
    scene.command("witness set x", "witness set: `x` is not a number. Nothing done.");
    scene.command("witness explode", "`witness` has no command `explode`");

    let rule =
        || synapse.call(moderator, "GET", &rules, None).ok().and_then(|c| c["join_rule"].as_str().map(str::to_owned));
    scene.command(&format!("witness close {room}"), "1 of 1 operation(s) done");
    assert_eq!(rule().as_deref(), Some("invite"));
    scene.command(&format!("witness reopen {room}"), "1 of 1 operation(s) done");
    assert_eq!(rule().as_deref(), Some("knock"), "the rule before the bot changed it is back");
    let preview = scene.command(&format!("witness many {room} 8"), "would carry out 8 operation(s)");
    assert!(preview.contains("React with ✅"), "{preview}");
}

/// The protection written in Python (`plugins/shouting`, componentize-py)
/// loads in the bot under the sandbox limits its config section gives it,
/// acts in a live room, and answers its own command.
#[test]
fn a_protection_written_in_python_acts_in_a_live_room() {
    let Some(component) = gleipnir_tests::built_with_other_toolchain("shouting", gleipnir_tests::plugins::SHOUTING)
    else {
        return;
    };
    let scene = Scene::new(Options::default());
    let (synapse, moderator, room) = (&scene.synapse, &scene.moderator, &scene.protected);
    let add_shouting = |dir: &std::path::Path| {
        std::fs::copy(component, dir.join("plugins/shouting.wasm")).unwrap();
        let path = dir.join("config.toml");
        let config = std::fs::read_to_string(&path).unwrap();
        let section = "[protections.shouting]\ngrants = [\"redact\"]\ninstances = 16\n";
        std::fs::write(&path, format!("{config}{section}")).unwrap();
    };
    let _gleipnir = scene.start_with(add_shouting, &[("protections enable shouting", "shouting enabled")]);
    let quiet = send(synapse, &scene.spammer, room, "good morning, everyone here");
    let loud = send(synapse, &scene.spammer, room, "GOOD MORNING EVERYONE, WAKE UP");
    eventually("the shouting redacted", Duration::from_secs(30), || {
        is_redacted(synapse, moderator, room, &loud).then_some(())
    });
    assert!(!is_redacted(synapse, moderator, room, &quiet), "a quiet message was redacted");
    scene.command("shouting test WHAT IS GOING ON", "shouting: 13 of 13 letters are capitals");
    let help = scene.command("help shouting", "shouting: Removes messages");
    assert!(help.contains("- shouting test TEXT…"), "{help}");
}
