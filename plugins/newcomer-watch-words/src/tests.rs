//! Native tests through the SDK harness.

use gleipnir_sdk::prelude::*;
use gleipnir_sdk::testing::{Harness, events};

use crate::NewcomerWatchWords;

const ROOM: &str = "!room:test";
const MINUTE: u64 = 60_000;
const NOW: u64 = 100 * 24 * 60 * MINUTE;

fn harness(words: &[&str]) -> Harness<NewcomerWatchWords> {
    let mut h = Harness::<NewcomerWatchWords>::new();
    h.set("words", SettingValue::TextList(words.iter().map(|w| (*w).to_owned()).collect())).unwrap();
    h.host.set_bot_user_id("@bot:test");
    h
}

/// `who` joined `minutes_ago` before NOW.
fn joined(h: &Harness<NewcomerWatchWords>, who: &str, minutes_ago: u64) {
    h.host.set_membership(ROOM, who, Membership::Join, Some(NOW - minutes_ago * MINUTE));
}

fn say(h: &mut Harness<NewcomerWatchWords>, who: &str, body: &str) -> String {
    let event = events::message(ROOM, who, body).at(NOW).with_id("$m");
    events::render(&h.handle(&event))
}

#[test]
fn a_newcomer_saying_a_watched_word_is_redacted_and_reported() {
    let mut h = harness(&["cheap pills"]);
    joined(&h, "@new:test", 5);
    assert_eq!(
        say(&mut h, "@new:test", "Get CHEAP  pills here"),
        "redact !room:test $m (watched word from a newcomer)\n\
         notify: @new:test (joined 5 min ago) said the watched phrase \"cheap pills\" in !room:test; redacted the message. (watched word from a newcomer)"
    );
    assert_eq!(say(&mut h, "@new:test", "pills are cheap"), "");
}

#[test]
fn disguises_do_not_hide_a_word() {
    let mut h = harness(&["cheap"]);
    joined(&h, "@new:test", 5);
    for disguised in ["сheаp", "ｃｈｅａｐ", "ch\u{200B}eap", "𝐜𝐡𝐞𝐚𝐩", "chéap"] {
        assert!(say(&mut h, "@new:test", disguised).starts_with("redact"), "{disguised} was not caught");
    }
    assert_eq!(say(&mut h, "@new:test", "cheapest"), "", "whole words only");
}

#[test]
fn the_formatted_body_counts() {
    let mut h = harness(&["cheap"]);
    joined(&h, "@new:test", 5);
    let mut event = events::message(ROOM, "@new:test", "see below").at(NOW).with_id("$m");
    if let EventKind::Message(m) = &mut event.kind {
        m.formatted_body = Some("<b>che</b>ap".to_owned());
    }
    assert!(events::render(&h.handle(&event)).starts_with("redact"));
}

#[test]
fn trusted_members_moderators_and_the_bot_are_left_alone() {
    let mut h = harness(&["cheap"]);
    joined(&h, "@old:test", 2 * 24 * 60);
    joined(&h, "@mod:test", 1);
    h.host.set_power_level(ROOM, "@mod:test", 100);
    joined(&h, "@bot:test", 1);
    assert_eq!(say(&mut h, "@old:test", "cheap"), "");
    assert_eq!(say(&mut h, "@mod:test", "cheap"), "");
    assert_eq!(say(&mut h, "@bot:test", "cheap"), "");
    // With no trust period, everyone but moderators is watched.
    h.set("minutes-before-trusting", SettingValue::Integer(0)).unwrap();
    assert!(say(&mut h, "@old:test", "cheap").starts_with("redact"));
    assert_eq!(say(&mut h, "@mod:test", "cheap"), "");
}

#[test]
fn consequences() {
    let mut h = harness(&["cheap"]);
    joined(&h, "@new:test", 5);
    h.set("consequence", SettingValue::Choice("redact-and-ban".into())).unwrap();
    let got = say(&mut h, "@new:test", "cheap");
    assert!(got.contains("redact !room:test $m") && got.contains("ban !room:test @new:test"), "{got}");
    h.set("consequence", SettingValue::Choice("notify".into())).unwrap();
    let got = say(&mut h, "@new:test", "cheap");
    assert!(got.starts_with("notify:") && got.contains("took no action"), "{got}");
}

#[test]
fn an_empty_watched_word_is_refused() {
    let mut h = harness(&[]);
    let err = h.set("words", SettingValue::TextList(vec!["ok".into(), "\u{200B} ".into()])).unwrap_err();
    assert!(err.contains("empty"), "{err}");
}
