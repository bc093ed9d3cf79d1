//! Native tests through the SDK harness.

use gleipnir_sdk::prelude::*;
use gleipnir_sdk::testing::{Harness, events};

use crate::{LeastAuthority, has_link};

const ROOM: &str = "!room:test";
const MINUTE: u64 = 60_000;
const NOW: u64 = 100 * 24 * 60 * MINUTE;

fn harness() -> Harness<LeastAuthority> {
    let mut h = Harness::<LeastAuthority>::new();
    h.host.set_bot_user_id("@bot:test");
    h.set("explanation", SettingValue::Text("{user}: no {what} yet".into())).unwrap();
    h
}

/// `who` joined `minutes_ago` before NOW and has sent `count` messages (None: joined before counting began).
fn member(h: &Harness<LeastAuthority>, who: &str, minutes_ago: u64, count: Option<u32>) {
    h.host.set_membership(ROOM, who, Membership::Join, Some(NOW - minutes_ago * MINUTE));
    h.host.set_message_count(ROOM, who, count);
}

fn say(h: &mut Harness<LeastAuthority>, who: &str, body: &str) -> String {
    let event = events::message(ROOM, who, body).at(NOW).with_id("$m");
    events::render(&h.handle(&event))
}

fn html(h: &mut Harness<LeastAuthority>, who: &str, body: &str, formatted: &str) -> String {
    let mut event = events::message(ROOM, who, body).at(NOW).with_id("$m");
    if let EventKind::Message(m) = &mut event.kind {
        m.formatted_body = Some(formatted.to_owned());
    }
    events::render(&h.handle(&event))
}

#[test]
fn a_newcomer_posting_a_link_is_redacted_and_told_once() {
    let mut h = harness();
    member(&h, "@new:test", 5, Some(0));
    assert_eq!(
        say(&mut h, "@new:test", "look at https://spam.example"),
        "redact !room:test $m (least-authority: newcomers may not post links yet)\n\
         notice !room:test: @new:test: no links yet (least-authority: newcomers may not post links yet)"
    );
    // Told once in a while, not on every message.
    assert_eq!(
        say(&mut h, "@new:test", "again: spam.example.com/x"),
        "redact !room:test $m (least-authority: newcomers may not post links yet)"
    );
    assert_eq!(say(&mut h, "@new:test", "plain text is fine"), "");
}

#[test]
fn the_gate_lifts_after_time_and_messages_both() {
    let mut h = harness();
    // Long in the room but few messages: still gated.
    member(&h, "@quiet:test", 3 * 24 * 60, Some(2));
    assert!(say(&mut h, "@quiet:test", "https://example.org").starts_with("redact"));
    // Many messages but just joined: still gated.
    member(&h, "@chatty:test", 10, Some(50));
    assert!(say(&mut h, "@chatty:test", "https://example.org").starts_with("redact"));
    // Both: free.
    member(&h, "@old:test", 3 * 24 * 60, Some(5));
    assert_eq!(say(&mut h, "@old:test", "https://example.org"), "");
    // Joined before the host began counting: established.
    member(&h, "@before:test", 3 * 24 * 60, None);
    assert_eq!(say(&mut h, "@before:test", "https://example.org"), "");
}

#[test]
fn media_mentions_and_html_are_restricted_too() {
    let mut h = harness();
    member(&h, "@new:test", 5, Some(0));
    let mut image = events::message(ROOM, "@new:test", "cat.png").at(NOW).with_id("$i");
    if let EventKind::Message(m) = &mut image.kind {
        m.msgtype = Msgtype::Image;
    }
    assert!(events::render(&h.handle(&image)).contains("may not post media yet"));
    let mut mentions = events::message(ROOM, "@new:test", "hi all").at(NOW).with_id("$x");
    if let EventKind::Message(m) = &mut mentions.kind {
        m.mentions = Some(Mentions { users: vec!["@a:test".into(), "@b:test".into(), "@c:test".into()], room: false });
    }
    assert!(events::render(&h.handle(&mentions)).contains("may not post mentions yet"));
    assert!(html(&mut h, "@new:test", "bold", "<b>bold</b>").contains("may not post html yet"));
    // Two mentions are within the default limit.
    if let EventKind::Message(m) = &mut mentions.kind {
        m.mentions = Some(Mentions { users: vec!["@a:test".into(), "@b:test".into()], room: false });
    }
    assert_eq!(events::render(&h.handle(&mentions)), "");
    // Only what `restrict` lists is restricted.
    h.set("restrict", SettingValue::TextList(vec!["links".into()])).unwrap();
    assert_eq!(html(&mut h, "@new:test", "bold", "<b>bold</b>"), "");
    assert!(
        h.set("restrict", SettingValue::TextList(vec!["gifs".into()])).unwrap_err().contains("`gifs` is not one of")
    );
}

#[test]
fn trusted_members_moderators_and_the_bot_pass_and_gated_members_do_not() {
    let mut h = harness();
    member(&h, "@new:test", 5, Some(0));
    h.set("trusted", SettingValue::UserIds(vec!["@new:test".into()])).unwrap();
    assert_eq!(say(&mut h, "@new:test", "https://example.org"), "");
    member(&h, "@mod:test", 5, Some(0));
    h.host.set_power_level(ROOM, "@mod:test", 100);
    assert_eq!(say(&mut h, "@mod:test", "https://example.org"), "");
    member(&h, "@old:test", 3 * 24 * 60, Some(100));
    h.set("gated", SettingValue::UserIds(vec!["@old:test".into(), "@new:test".into()])).unwrap();
    assert!(say(&mut h, "@old:test", "https://example.org").starts_with("redact"));
    // Gated wins over trusted.
    assert!(say(&mut h, "@new:test", "https://example.org").starts_with("redact"));
}

#[test]
fn trust_and_untrust_move_a_member_between_the_lists() {
    let mut h = harness();
    member(&h, "@new:test", 5, Some(0));
    let gate = h.command("@mod:test", "untrust", &["@new:test"]).unwrap();
    assert!(gate.reply.starts_with("@new:test is gated"), "{}", gate.reply);
    assert!(say(&mut h, "@new:test", "https://example.org").starts_with("redact"));
    let lift = h.command("@mod:test", "trust", &["@new:test"]).unwrap();
    assert!(lift.reply.contains("`least-authority untrust @new:test` puts the gate back"), "{}", lift.reply);
    assert_eq!(say(&mut h, "@new:test", "https://example.org"), "");
    // Trusting twice keeps one entry; untrusting takes them off `trusted`.
    h.command("@mod:test", "trust", &["@new:test"]).unwrap();
    let untrust = h.command("@mod:test", "untrust", &["@new:test"]).unwrap();
    assert_eq!(untrust.settings[0].value, SettingValue::UserIds(vec![]));
    assert_eq!(untrust.settings[1].value, SettingValue::UserIds(vec!["@new:test".into()]));
    assert_eq!(h.command("@mod:test", "trust", &["new"]).unwrap_err(), "`new` is not a user id (@user:server)");
    assert_eq!(h.command("@mod:test", "trust", &[]).unwrap_err(), "usage: least-authority trust USER");
    assert!(h.command("@mod:test", "explode", &[]).unwrap_err().contains("no command `explode`"));
}

#[test]
fn the_management_room_can_be_told() {
    let mut h = harness();
    h.set("notify", SettingValue::Flag(true)).unwrap();
    h.set("explain", SettingValue::Flag(false)).unwrap();
    member(&h, "@new:test", 5, Some(1));
    assert_eq!(
        say(&mut h, "@new:test", "https://example.org"),
        "redact !room:test $m (least-authority: newcomers may not post links yet)\n\
         notify: Removed links from newcomer @new:test in !room:test (in the room 5 min, 1 message(s) so far). (least-authority: newcomers may not post links yet)"
    );
}

#[test]
fn links_are_recognised_without_false_alarms() {
    for text in ["https://x.y", "see www.example", "spam.example.com", "go to matrix.to/#/#room:x", "(bit.ly/abc)"] {
        assert!(has_link(text), "{text}");
    }
    for text in ["e.g. this", "pi is 3.14", "end of sentence.Next", "a.b", "file.txt", "hello"] {
        assert!(!has_link(text), "{text}");
    }
}

#[test]
fn the_explanation_rate_limit_survives_a_swap() {
    let mut h = harness();
    member(&h, "@new:test", 5, Some(0));
    assert!(say(&mut h, "@new:test", "https://example.org").contains("notice"));
    let state = h.protection.snapshot();
    let mut next = harness();
    member(&next, "@new:test", 5, Some(0));
    next.protection.restore(&state).unwrap();
    assert!(!say(&mut next, "@new:test", "https://example.org").contains("notice"));
}

#[test]
fn the_state_of_an_older_build_is_read_and_a_newer_ones_refused() {
    // 0.1.0 builds wrote `ms user` lines without a header.
    let mut h = harness();
    member(&h, "@new:test", 5, Some(0));
    h.protection.restore(format!("{NOW} @new:test\n").as_bytes()).unwrap();
    assert!(!say(&mut h, "@new:test", "https://example.org").contains("notice"), "told just now");
    let newer = harness().protection.restore(b"least-authority-v2\nwhatever\n").unwrap_err();
    assert!(newer.contains("newer version (least-authority-v2)"), "{newer}");
    assert!(String::from_utf8(h.protection.snapshot()).unwrap().starts_with("least-authority-v1\n"));
}
