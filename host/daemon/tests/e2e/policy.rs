//! Policy lists: bans, server ACLs and their invariants, list commands.

use std::time::Duration;

use serde_json::json;
use synapse_harness::{Options, unique_name};

use crate::common::*;

/// Rules in a watched list ban matching members in every protected room,
/// also when they join later; server rules become one ACL update per room,
/// and an ACL edited by someone else is put back.
#[test]
fn policy_lists_end_to_end() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator, bot) = (&scene.synapse, &scene.moderator, &scene.bot.user_id);
    let second = create_room(synapse, moderator, &[&scene.bot, &scene.spammer], json!({ bot.clone(): 100 }));
    join(synapse, &scene.spammer, &second);
    let list = create_room(synapse, moderator, &[&scene.bot], json!({}));
    let _gleipnir = scene.start(&[], &[]);
    scene.command(&format!("rooms add {second}"), "Now protecting");
    scene.command(&format!("watch {list}"), "Now watching");
    scene.command("protections enable policy-echo", "policy-echo enabled");

    // A user rule: the spammer is banned in both protected rooms.
    put_rule(
        synapse,
        moderator,
        &list,
        "user",
        "spam",
        json!({"entity": scene.spammer.user_id, "recommendation": "m.ban", "reason": "spam"}),
    );
    for room in [&scene.protected, &second] {
        eventually("the spammer banned", Duration::from_secs(30), || {
            (membership(synapse, moderator, room, &scene.spammer.user_id).as_deref() == Some("ban")).then_some(())
        });
    }
    // The change is reported once, with who made it and whom it matches.
    let change = eventually("the rule change reported", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.starts_with("Policy rules that changed or newly apply (1)"))
    });
    assert!(change.contains(&format!("{list} by {}:", moderator.user_id)), "{change}");
    assert!(change.contains(&format!("- added user {} m.ban", scene.spammer.user_id)), "{change}");
    assert!(change.contains("matches 1 member(s) of the protected rooms"), "{change}");
    // Protections receive the same delta.
    let echo = format!("policy-echo: added m.ban {} in {list}", scene.spammer.user_id);
    eventually("the delta reaching a protection", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains(&echo))
    });
    let answer = scene.command(&format!("rules matching {}", scene.spammer.user_id), "1 rule(s) match");
    assert!(answer.contains("m.ban") && answer.contains(&list), "{answer}");

    // A moderator unbans the spammer with their client and lets them back in:
    // the rule still stands, so joining bans them again (not taken for a repeat).
    let room = &scene.protected;
    let target = json!({"user_id": scene.spammer.user_id});
    synapse.call(moderator, "POST", &format!("/_matrix/client/v3/rooms/{room}/unban"), Some(&target)).unwrap();
    synapse.call(moderator, "POST", &format!("/_matrix/client/v3/rooms/{room}/invite"), Some(&target)).unwrap();
    join(synapse, &scene.spammer, room);
    eventually("the spammer banned again on joining", Duration::from_secs(30), || {
        (membership(synapse, moderator, room, &scene.spammer.user_id).as_deref() == Some("ban")).then_some(())
    });

    // Three server rules at once: each room's ACL is updated once, with all three.
    for (i, entity) in ["*.evil.example", "bad.example", "worse.example"].iter().enumerate() {
        put_rule(
            synapse,
            moderator,
            &list,
            "server",
            &format!("s{i}"),
            json!({"entity": entity, "recommendation": "m.ban"}),
        );
    }
    let expected = json!(["*.evil.example", "bad.example", "worse.example"]);
    for room in [&scene.protected, &second] {
        eventually("the ACL", Duration::from_secs(30), || {
            let path = format!("/_matrix/client/v3/rooms/{room}/state/m.room.server_acl/");
            synapse.call(moderator, "GET", &path, None).ok().filter(|acl| acl["deny"] == expected)
        });
    }
    scene.acl_settled("up to date");
    for room in [&scene.protected, &second] {
        assert_eq!(acl_updates_by(synapse, moderator, room, bot), std::slice::from_ref(&expected), "in {room}");
    }

    // Someone else edits the ACL: it is put back.
    let path = format!("/_matrix/client/v3/rooms/{}/state/m.room.server_acl/", scene.protected);
    synapse.call(moderator, "PUT", &path, Some(&json!({"allow": ["*"], "deny": []}))).unwrap();
    eventually("the ACL corrected", Duration::from_secs(30), || {
        synapse.call(moderator, "GET", &path, None).ok().filter(|acl| acl["deny"] == expected)
    });

    // A takedown glob: a matching user who joins later is banned on joining.
    put_rule(
        synapse,
        moderator,
        &list,
        "user",
        "late",
        json!({"entity": "@late*:localhost", "recommendation": "m.takedown"}),
    );
    scene.command("rules matching @latecomer:localhost", "1 rule(s) match");
    let late = synapse.register(&unique_name("late"), "late-password", false).unwrap();
    let invite = json!({"user_id": late.user_id});
    synapse.call(moderator, "POST", &format!("/_matrix/client/v3/rooms/{second}/invite"), Some(&invite)).unwrap();
    join(synapse, &late, &second);
    eventually("the latecomer banned", Duration::from_secs(30), || {
        (membership(synapse, moderator, &second, &late.user_id).as_deref() == Some("ban")).then_some(())
    });
}

/// Policy-list commands: `list create`, `ban USER LIST`, `takedown USER LIST`
/// (hashed), and `unban USER` removing the rule and unbanning after a ✅.
#[test]
fn policy_commands_end_to_end() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator, bot) = (&scene.synapse, &scene.moderator, &scene.bot.user_id);
    let troll = synapse.register(&unique_name("troll"), "troll-password", false).unwrap();
    let invite = json!({"user_id": troll.user_id});
    synapse
        .call(moderator, "POST", &format!("/_matrix/client/v3/rooms/{}/invite", scene.protected), Some(&invite))
        .unwrap();
    join(synapse, &troll, &scene.protected);
    let _gleipnir = scene.start(&[], &[]);

    let created = scene.command("list create coc coc-bans", "Created the policy list #coc-bans:localhost");
    let list = created.split(['(', ')']).nth(1).unwrap().to_owned();
    scene.command("rules", &format!("- {list}: 0 rule(s)"));

    // A ban through the list: the rule is written and the member banned.
    scene.command(&format!("ban {} coc spamming", scene.spammer.user_id), "Added to");
    eventually("the spammer banned", Duration::from_secs(30), || {
        (membership(synapse, moderator, &scene.protected, &scene.spammer.user_id).as_deref() == Some("ban"))
            .then_some(())
    });

    // A takedown: hashed, and it bans too.
    scene.command(&format!("takedown {} coc", troll.user_id), "hashed: only its sha256 is published");
    eventually("the troll banned", Duration::from_secs(30), || {
        (membership(synapse, moderator, &scene.protected, &troll.user_id).as_deref() == Some("ban")).then_some(())
    });
    // The list is public: anyone can read it.
    join(synapse, moderator, &list);
    let state = synapse.call(moderator, "GET", &format!("/_matrix/client/v3/rooms/{list}/state"), None).unwrap();
    // Both rules are written as Draupnir, Meowlnir and Mjolnir read them: the
    // stable type, MSC4204's and MSC4205's unstable keys (padded base64), and
    // the state key Draupnir and Meowlnir give the same rule.
    let rule = |recommendation: &str| {
        state.as_array().unwrap().iter().find(|e| e["content"]["recommendation"] == recommendation).cloned()
    };
    let takedown = rule("org.matrix.msc4204.takedown").expect("the takedown rule, as peers read it");
    let hash = gleipnir_policy::rule::sha256_published(&troll.user_id);
    assert_eq!(hash.len(), 44, "padded");
    assert_eq!(takedown["type"], "m.policy.rule.user");
    assert_eq!(takedown["content"]["org.matrix.msc4205.hashes"]["sha256"], hash.as_str(), "{takedown}");
    assert!(takedown["content"].get("entity").is_none(), "{takedown}");
    assert!(!takedown.to_string().contains(&troll.user_id), "the hashed rule reveals the user: {takedown}");
    let takedown_key = gleipnir_policy::rule::state_key_for(&troll.user_id, &gleipnir_policy::Recommendation::Takedown);
    assert_eq!(takedown["state_key"], takedown_key.as_str());
    let ban = rule("m.ban").expect("the ban rule");
    assert_eq!(ban["type"], "m.policy.rule.user");
    assert_eq!(ban["content"]["entity"], scene.spammer.user_id.as_str());
    assert_eq!(ban["content"]["reason"], "spamming");
    let ban_key = gleipnir_policy::rule::state_key_for(&scene.spammer.user_id, &gleipnir_policy::Recommendation::Ban);
    assert_eq!(ban["state_key"], ban_key.as_str());

    // Unban: a preview of the rule removal and the unban, then ✅.
    let preview = scene.command(&format!("unban {}", scene.spammer.user_id), "would carry out 2 operation(s)");
    assert!(preview.contains("remove the rule") && preview.contains("unban"), "{preview}");
    let preview_id = notice_id(synapse, moderator, &scene.management, bot, "would carry out 2").unwrap();
    react(synapse, moderator, &scene.management, &preview_id, "✅");
    eventually("the unban", Duration::from_secs(30), || {
        (membership(synapse, moderator, &scene.protected, &scene.spammer.user_id).as_deref() == Some("leave"))
            .then_some(())
    });
    let after = scene.command(&format!("rules matching {}", scene.spammer.user_id), "match");
    assert!(after.contains("No rule matches"), "{after}");
    // The takedown stays.
    assert_eq!(membership(synapse, moderator, &scene.protected, &troll.user_id).as_deref(), Some("ban"));
}

/// A legacy rule (`m.room.rule.user`) cleared by an empty event of the
/// newest type under its state key stops applying: nothing matches it, and
/// a member it named who joins is not banned (Mjolnir's "soft redacted"
/// rules; the peers agree).
#[test]
fn a_legacy_rule_cleared_by_an_empty_newer_event_stops_applying() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator) = (&scene.synapse, &scene.moderator);
    let list = create_room(synapse, moderator, &[&scene.bot], json!({}));
    let legacy = |content: serde_json::Value| {
        let path = format!("/_matrix/client/v3/rooms/{list}/state/m.room.rule.user/old");
        synapse.call(moderator, "PUT", &path, Some(&content)).unwrap();
    };
    legacy(json!({"entity": "@legacy*:localhost", "recommendation": "m.ban", "reason": "old"}));
    let _gleipnir = scene.start(&[], &[]);
    scene.command(&format!("watch {list}"), "Now watching");
    scene.command("rules matching @legacy-probe:localhost", "1 rule(s) match");

    put_rule(synapse, moderator, &list, "user", "old", json!({}));
    eventually("the legacy rule gone", Duration::from_secs(30), || {
        let answer = scene.command("rules matching @legacy-probe:localhost", "match");
        answer.contains("No rule matches").then_some(())
    });
    // A member the old rule named joins; then a rule for the spammer: once
    // the spammer is banned, the join before it was handled, without a ban.
    let named = synapse.register(&unique_name("legacy"), "legacy-password", false).unwrap();
    assert!(named.user_id.starts_with("@legacy"), "{}", named.user_id);
    let invite = json!({"user_id": named.user_id});
    synapse
        .call(moderator, "POST", &format!("/_matrix/client/v3/rooms/{}/invite", scene.protected), Some(&invite))
        .unwrap();
    join(synapse, &named, &scene.protected);
    put_rule(
        synapse,
        moderator,
        &list,
        "user",
        "spam",
        json!({"entity": scene.spammer.user_id, "recommendation": "m.ban"}),
    );
    eventually("the spammer banned", Duration::from_secs(30), || {
        (membership(synapse, moderator, &scene.protected, &scene.spammer.user_id).as_deref() == Some("ban"))
            .then_some(())
    });
    assert_eq!(membership(synapse, moderator, &scene.protected, &named.user_id).as_deref(), Some("join"));
    // Written again under the old type, the key stays cleared by the newer one.
    legacy(json!({"entity": "@legacy*:localhost", "recommendation": "m.ban", "reason": "again"}));
    scene.command(&format!("rules matching {}", scene.spammer.user_id), "1 rule(s) match");
    scene.command("rules matching @legacy-probe:localhost", "No rule matches");
}

/// Losing a watched list while running (the bot is banned from it) is
/// reported with recovery options and no ACL is sent while it is gone;
/// unwatched, the ACL follows the remaining rules; a redacted rule leaves it.
#[test]
fn no_acl_while_a_watched_list_is_lost() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator, bot) = (&scene.synapse, &scene.moderator, &scene.bot.user_id);
    let list = create_room(synapse, moderator, &[&scene.bot], json!({}));
    let other = create_room(synapse, moderator, &[&scene.bot], json!({}));
    put_rule(synapse, moderator, &list, "server", "evil", json!({"entity": "evil.example", "recommendation": "m.ban"}));
    let _gleipnir = scene.start(&[], &[]);
    scene.command(&format!("watch {list}"), "Now watching");
    scene.command(&format!("watch {other}"), "Now watching");
    let acl_path = format!("/_matrix/client/v3/rooms/{}/state/m.room.server_acl/", scene.protected);
    eventually("the first ACL", Duration::from_secs(30), || {
        synapse.call(moderator, "GET", &acl_path, None).ok().filter(|acl| acl["deny"] == json!(["evil.example"]))
    });

    // The bot is banned from the other list: reported, with options.
    let ban = json!({"user_id": bot, "reason": "test"});
    synapse.call(moderator, "POST", &format!("/_matrix/client/v3/rooms/{other}/ban"), Some(&ban)).unwrap();
    eventually("the loss reported", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains("cannot be used") && n.contains("I was banned"))
    });
    let rules = scene.command("rules", "FAILED to load");
    assert!(rules.contains(&format!("- {list}: 1 rule(s)")), "{rules}");
    put_rule(
        synapse,
        moderator,
        &list,
        "server",
        "worse",
        json!({"entity": "worse.example", "recommendation": "m.ban"}),
    );
    scene.command("rules", "2 rule(s)");
    scene.acl_settled("not sent while");
    assert_eq!(
        acl_updates_by(synapse, moderator, &scene.protected, bot).len(),
        1,
        "an ACL was sent from incomplete lists"
    );

    scene.command(&format!("unwatch {other}"), "No longer watching");
    let expected = json!(["evil.example", "worse.example"]);
    eventually("the ACL once the lost list is unwatched", Duration::from_secs(30), || {
        synapse.call(moderator, "GET", &acl_path, None).ok().filter(|acl| acl["deny"] == expected)
    });
    let path = format!("/_matrix/client/v3/user/{bot}/account_data/org.matrix.mjolnir.watched_lists");
    let saved = synapse.call(&scene.bot, "GET", &path, None).unwrap();
    assert_eq!(saved, json!({"references": [format!("https://matrix.to/#/{list}")]}));

    // Redacting a rule removes it: the ACL follows.
    let state = synapse.call(moderator, "GET", &format!("/_matrix/client/v3/rooms/{list}/state"), None).unwrap();
    let worse = state.as_array().unwrap().iter().find(|e| e["state_key"] == "worse").unwrap()["event_id"].clone();
    let redact = format!("/_matrix/client/v3/rooms/{list}/redact/{}/{}", worse.as_str().unwrap(), unique_name("x"));
    synapse.call(moderator, "PUT", &redact, Some(&json!({}))).unwrap();
    eventually("the ACL without the redacted rule", Duration::from_secs(30), || {
        synapse.call(moderator, "GET", &acl_path, None).ok().filter(|acl| acl["deny"] == json!(["evil.example"]))
    });
}

/// Ban propagation: a moderator bans with their client; the bot offers the
/// lists it can edit, 1️⃣ writes the rule there (and the proposal says who
/// decided); an unban with the client then offers, behind a ✅, to remove
/// that rule and unban everywhere.
#[test]
fn a_client_ban_is_offered_for_a_list_and_written_on_a_reaction() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator, bot) = (&scene.synapse, &scene.moderator, scene.bot.user_id.as_str());
    let (room, management) = (&scene.protected, &scene.management);
    let _gleipnir = scene.start(&[], &[]);
    let created = scene.command("list create coc coc-props", "Created the policy list");
    let list = created.split(['(', ')']).nth(1).unwrap().to_owned();

    let ban = format!("/_matrix/client/v3/rooms/{room}/ban");
    let body = json!({"user_id": scene.spammer.user_id, "reason": "spam links"});
    synapse.call(moderator, "POST", &ban, Some(&body)).unwrap();
    let offer = format!("{} banned {} in {room} (spam links)", moderator.user_id, scene.spammer.user_id);
    let proposed = eventually("the ban offered for a list", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains(&offer))
    });
    assert!(proposed.contains("1\u{fe0f}\u{20e3} coc"), "{proposed}");
    let notice = notice_id(synapse, moderator, management, bot, &offer).unwrap();
    react(synapse, moderator, management, &notice, "1\u{fe0f}\u{20e3}");
    eventually("the rule written", Duration::from_secs(30), || {
        let answer = scene.command(&format!("rules matching {}", scene.spammer.user_id), "match");
        answer.contains("1 rule(s) match").then_some(())
    });
    join(synapse, moderator, &list);
    let state = synapse.call(moderator, "GET", &format!("/_matrix/client/v3/rooms/{list}/state"), None).unwrap();
    let rule = state.as_array().unwrap().iter().find(|e| e["content"]["recommendation"] == "m.ban").cloned();
    let rule = rule.expect("the ban rule");
    assert_eq!(rule["content"]["entity"], scene.spammer.user_id.as_str());
    assert_eq!(rule["content"]["reason"], "spam links");
    eventually("the proposal edited", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains(&format!("✔ {}: added to coc", moderator.user_id)))
    });

    // Unbanned with the client: the rule would ban them again, so its removal is offered.
    let unban = format!("/_matrix/client/v3/rooms/{room}/unban");
    synapse.call(moderator, "POST", &unban, Some(&json!({"user_id": scene.spammer.user_id}))).unwrap();
    let preview = eventually("the unban offered", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.contains("unbanned them in") && n.contains("React with ✅"))
    });
    assert!(preview.contains("remove the rule"), "{preview}");
}

/// Redaction on ban: a moderator's ban for "Spam" (matching `spam` in
/// `[policy] redact_on_ban_reasons`) redacts the user's earlier messages in
/// both protected rooms, and nothing of anyone else's.
#[test]
fn a_ban_for_spam_redacts_the_users_recent_messages_and_nothing_else() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator, room) = (&scene.synapse, &scene.moderator, &scene.protected);
    let other = synapse.register(&unique_name("other"), "other-password", false).unwrap();
    let powers = json!({ scene.bot.user_id.clone(): 100 });
    let second = create_room(synapse, moderator, &[&scene.bot, &scene.spammer, &other], powers);
    join(synapse, &scene.spammer, &second);
    join(synapse, &other, &second);
    let invite = format!("/_matrix/client/v3/rooms/{room}/invite");
    synapse.call(moderator, "POST", &invite, Some(&json!({"user_id": other.user_id}))).unwrap();
    join(synapse, &other, room);
    let redact_for_spam = |dir: &std::path::Path| {
        let path = dir.join("config.toml");
        let config = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{config}[policy]\nredact_on_ban_reasons = [\"spam\", \"advert*\"]\n")).unwrap();
    };
    let _gleipnir = scene.start_with(redact_for_spam, &[]);
    scene.command(&format!("rooms add {second}"), "Now protecting");
    let spam: Vec<(String, String)> = [room, &second]
        .into_iter()
        .flat_map(|r| (0..3).map(move |i| (r.clone(), i)))
        .map(|(r, i)| (r.clone(), send(synapse, &scene.spammer, &r, &format!("buy pills {i}"))))
        .collect();
    let innocent: Vec<(String, String)> =
        [room, &second].into_iter().map(|r| (r.clone(), send(synapse, &other, r, "a normal message"))).collect();

    scene.command(&format!("ban {} Spam", scene.spammer.user_id), "2 of 2 operation(s) done");
    let said = eventually("the redactions reported", Duration::from_secs(60), || {
        scene.notices().into_iter().find(|n| n.starts_with("Redacted "))
    });
    assert!(said.contains(&format!("Redacted 6 message(s) of {} ", scene.spammer.user_id)), "{said}");
    assert!(said.contains("in 2 room(s)") && said.contains("matches `spam`"), "{said}");
    for (r, id) in &spam {
        assert!(is_redacted(synapse, moderator, r, id), "{id} in {r} not redacted");
    }
    for (r, id) in &innocent {
        assert!(!is_redacted(synapse, moderator, r, id), "an innocent message {id} in {r} was redacted");
    }
}

/// `watch LIST` shows first whom the list would ban among the protected
/// rooms' members; nothing happens before the ✅, then the list is watched
/// and the ban follows.
#[test]
fn watching_a_list_that_bans_members_is_previewed_first() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator, bot) = (&scene.synapse, &scene.moderator, &scene.bot.user_id);
    let list = create_room(synapse, moderator, &[&scene.bot], json!({}));
    put_rule(
        synapse,
        moderator,
        &list,
        "user",
        "spam",
        json!({"entity": scene.spammer.user_id, "recommendation": "m.ban", "reason": "spam"}),
    );
    let _gleipnir = scene.start(&[], &[]);
    let preview = scene.command(&format!("watch {list}"), "would carry out 1 operation(s)");
    assert!(preview.contains("watch the list (1 rule(s)), which bans 1 member(s)"), "{preview}");
    assert!(preview.contains(&format!("it would ban {} in {}", scene.spammer.user_id, scene.protected)), "{preview}");
    scene.command("rules", "No watched lists");
    assert_eq!(membership(synapse, moderator, &scene.protected, &scene.spammer.user_id).as_deref(), Some("join"));
    let preview_id = notice_id(synapse, moderator, &scene.management, bot, "would carry out 1 operation(s)").unwrap();
    react(synapse, moderator, &scene.management, &preview_id, "✅");
    eventually("the spammer banned", Duration::from_secs(30), || {
        (membership(synapse, moderator, &scene.protected, &scene.spammer.user_id).as_deref() == Some("ban"))
            .then_some(())
    });
    scene.command("rules", "1 rule(s)");
}

/// `import ROOM LIST`: the bans a room holds and the servers its ACL denies
/// are shown first and, on ✅, written into the list as ban rules, each
/// ban's reason kept.
#[test]
fn a_rooms_bans_are_imported_into_a_list_after_a_preview() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator, bot) = (&scene.synapse, &scene.moderator, scene.bot.user_id.as_str());
    let _gleipnir = scene.start(&[], &[]);
    let created = scene.command("list create imp imp-bans", "Created the policy list");
    let list = created.split(['(', ')']).nth(1).unwrap().to_owned();
    // A room of the community's, with bans made by hand before Gleipnir.
    let old = create_room(synapse, moderator, &[&scene.bot], json!({ bot: 100 }));
    eventually("the bot in the old room", Duration::from_secs(30), || {
        (membership(synapse, moderator, &old, bot).as_deref() == Some("join")).then_some(())
    });
    let ban = format!("/_matrix/client/v3/rooms/{old}/ban");
    synapse.call(moderator, "POST", &ban, Some(&json!({"user_id": "@raider:evil.example", "reason": "raid"}))).unwrap();
    synapse.call(moderator, "POST", &ban, Some(&json!({"user_id": scene.spammer.user_id}))).unwrap();
    let acl = json!({"allow": ["*"], "deny": ["evil.example"], "allow_ip_literals": false});
    synapse
        .call(moderator, "PUT", &format!("/_matrix/client/v3/rooms/{old}/state/m.room.server_acl/"), Some(&acl))
        .unwrap();

    let preview = scene.command(&format!("import {old} imp"), "React with ✅");
    assert!(preview.contains("add the rule ban user @raider:evil.example (raid)"), "{preview}");
    assert!(preview.contains(&format!("add the rule ban user {} (banned in", scene.spammer.user_id)), "{preview}");
    assert!(preview.contains("add the rule ban server evil.example"), "{preview}");
    let rules = scene.command("rules matching @raider:evil.example", "match");
    assert!(!rules.contains("1 rule(s) match"), "written before the ✅: {rules}");
    let notice = notice_id(synapse, moderator, &scene.management, bot, &format!("import {old} imp")).unwrap();
    react(synapse, moderator, &scene.management, &notice, "✅");
    eventually("the rules in the list", Duration::from_secs(30), || {
        scene.command("rules matching @raider:evil.example", "match").contains("1 rule(s) match").then_some(())
    });
    join(synapse, moderator, &list);
    let state = synapse.call(moderator, "GET", &format!("/_matrix/client/v3/rooms/{list}/state"), None).unwrap();
    let entities: Vec<String> = state
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["content"]["recommendation"] == "m.ban")
        .map(|e| e["content"]["entity"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(entities.len(), 3, "{entities:?}");
    for entity in ["@raider:evil.example", scene.spammer.user_id.as_str(), "evil.example"] {
        assert!(entities.iter().any(|e| e == entity), "{entity} missing: {entities:?}");
    }
    // Imported again: nothing is left to write.
    scene.command(&format!("import {old} imp"), "Nothing to import");
}
