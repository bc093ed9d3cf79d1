//! Native tests through the SDK harness.

use gleipnir_sdk::prelude::*;
use gleipnir_sdk::testing::{Harness, events};

use crate::{DisplayNames, key};

const ROOM: &str = "!room:test";

fn harness() -> Harness<DisplayNames> {
    let mut h = Harness::<DisplayNames>::new();
    h.host.set_bot_user_id("@bot:test");
    h.host.set_power_level(ROOM, "@alice:test", 100);
    h.host.set_membership(ROOM, "@alice:test", Membership::Join, Some(0));
    h.set("words", SettingValue::TextList(vec!["free nitro".into(), "admin".into()])).unwrap();
    h
}

/// `who` joins, or changes their profile (`renamed`), with display name `name`.
fn named(who: &str, name: &str, renamed: bool) -> Event {
    let mut e = events::membership(ROOM, who, Membership::Join);
    if let EventKind::Membership(c) = &mut e.kind {
        c.displayname = Some(name.to_owned());
        c.previous = renamed.then_some(Membership::Join);
    }
    e
}

#[test]
fn watched_words_in_a_name_are_found_through_look_alikes() {
    let mut h = harness();
    let out = events::render(&h.handle(&named("@spam:x", "FREE Ｎｉｔｒｏ here", false)));
    assert_eq!(
        out,
        "kick !room:test @spam:x (display name not permitted here: it reads as the watched word `free nitro`)\n\
         notify: @spam:x in !room:test took the display name “FREE Ｎｉｔｒｏ here”, the watched word `free nitro`: \
         kicked them. (display name not permitted here: it reads as the watched word `free nitro`)"
    );
    assert!(events::render(&h.handle(&named("@b:x", "Аdmin", true))).starts_with("kick"), "Cyrillic А, on a rename");
    assert_eq!(events::render(&h.handle(&named("@c:x", "administrator", false))), "", "whole words only");
}

#[test]
fn a_name_that_reads_as_a_moderators_is_an_impersonation() {
    let mut h = harness();
    // Alice's display name is learned from her own membership event.
    assert_eq!(events::render(&h.handle(&named("@alice:test", "Wonder Mod", true))), "");
    let out = events::render(&h.handle(&named("@fake:x", "wonder-m0d", false)));
    assert_eq!(out, "", "0 is not o: digits stay digits");
    let out = events::render(&h.handle(&named("@fake:x", "Wоnder Mod!", false)));
    assert!(out.contains("the name of the room moderator @alice:test"), "Cyrillic о and punctuation: {out}");
    // Her user id too (read once through `members`).
    let out = events::render(&h.handle(&named("@fake2:x", "ALICE", false)));
    assert!(out.contains("the user id of the room moderator @alice:test"), "{out}");
    assert_eq!(events::render(&h.handle(&named("@al:x", "Al", false))), "", "too short to be taken for anyone");
    h.set("impersonation", SettingValue::Flag(false)).unwrap();
    assert_eq!(events::render(&h.handle(&named("@fake3:x", "Wonder Mod", false))), "");
}

#[test]
fn report_or_ban_and_moderators_are_never_acted_on() {
    let mut h = harness();
    h.set("consequence", SettingValue::Choice("report".into())).unwrap();
    let out = events::render(&h.handle(&named("@spam:x", "admin", false)));
    assert!(out.starts_with("notify:") && out.contains("nothing done (consequence = report)"), "{out}");
    h.set("consequence", SettingValue::Choice("ban".into())).unwrap();
    assert!(events::render(&h.handle(&named("@spam:x", "admin", false))).starts_with("ban !room:test @spam:x"));
    assert_eq!(
        events::render(&h.handle(&named("@alice:test", "admin", true))),
        "",
        "a moderator may call herself admin"
    );
    assert_eq!(events::render(&h.handle(&named("@bot:test", "admin", true))), "");
    let mut kicked = named("@victim:x", "admin", true);
    kicked.sender = "@alice:test".into();
    assert_eq!(events::render(&h.handle(&kicked)), "", "only the member's own changes");
}

#[test]
fn a_bad_name_is_refused_before_it_lands() {
    let mut h = harness();
    let pending = |sender: &str, content: &str| {
        Pending::Event(PendingEvent {
            room_id: ROOM.into(),
            sender: sender.into(),
            event_type: "m.room.member".into(),
            state_key: Some(sender.into()),
            content: content.into(),
        })
    };
    let Verdict::Deny(denial) = h.check(&pending("@spam:x", r#"{"membership":"join","displayname":"free nitro"}"#))
    else {
        panic!("refused")
    };
    assert!(denial.reason.contains("the watched word `free nitro`"), "{}", denial.reason);
    assert!(events::render(&denial.follow_up).contains("Refused @spam:x's display name “free nitro”"));
    for allowed in [
        r#"{"membership":"join","displayname":"Bob"}"#,
        r#"{"membership":"leave","displayname":"free nitro"}"#,
        r#"{"membership":"join"}"#,
        "not json",
    ] {
        assert!(matches!(h.check(&pending("@spam:x", allowed)), Verdict::Allow), "{allowed}");
    }
}

#[test]
fn moderators_names_survive_a_swap_and_keys_fold() {
    let mut h = harness();
    h.handle(&named("@alice:test", "Wonder Mod", true));
    let state = h.protection.snapshot();
    let mut next = harness();
    next.protection.restore(&state).unwrap();
    assert_eq!(next.protection.snapshot(), state);
    assert!(events::render(&next.handle(&named("@fake:x", "wonder mod", false))).starts_with("kick"));
    assert_eq!(key("Ｗｏｎｄｅｒ  M\u{200B}od!"), "wondermod");
    assert!(h.set("words", SettingValue::TextList(vec!["\u{200B}".into()])).is_err());
}
