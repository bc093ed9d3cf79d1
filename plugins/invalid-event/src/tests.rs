//! Native tests through the SDK harness.

use gleipnir_sdk::json;
use gleipnir_sdk::prelude::*;
use gleipnir_sdk::testing::{Harness, events};

use crate::{InvalidEvent, problem};

const ROOM: &str = "!room:test";
const MINUTE: u64 = 60_000;

fn harness() -> Harness<InvalidEvent> {
    let mut h = Harness::<InvalidEvent>::new();
    h.host.set_bot_user_id("@bot:test");
    h
}

fn with_content(who: &str, content: &str, minute: u64, id: &str) -> Event {
    let mut e = events::message(ROOM, who, "x").at(minute * MINUTE).with_id(id);
    e.content = content.to_owned();
    e
}

fn problem_of(content: &str) -> Option<String> {
    problem(&json::parse(content).unwrap(), 100)
}

#[test]
fn what_clients_cannot_render_is_named() {
    assert_eq!(problem_of(r#"{"msgtype":"m.text","body":"hi"}"#), None);
    assert_eq!(problem_of(r#"{"msgtype":"m.text","body":1}"#).unwrap(), "`body` is a number, not a string");
    assert_eq!(
        problem_of(r#"{"body":"x","format":1,"formatted_body":"<b>x</b>"}"#).unwrap(),
        "`format` is a number, not a string"
    );
    assert_eq!(
        problem_of(r#"{"body":"x","formatted_body":"x"}"#).unwrap(),
        "`formatted_body` comes without a `format`"
    );
    assert_eq!(
        problem_of(r#"{"body":"x","m.mentions":{"user_ids":["bob"]}}"#).unwrap(),
        "`m.mentions.user_ids` holds “bob”, not a user id"
    );
    assert_eq!(problem_of(r#"{"body":"x","m.mentions":[]}"#).unwrap(), "`m.mentions` is an array, not an object");
    assert_eq!(problem_of(r#"{"body":"x","file":{"name":"a"}}"#).unwrap(), "`file` has no `url` string");
    assert_eq!(
        problem_of(r#"{"body":"x","m.text":[{"mimetype":"text/plain"}]}"#).unwrap(),
        "`m.text` holds a block without a `body` string"
    );
    assert_eq!(
        problem_of(r#"{"body":"* x","m.new_content":{"body":{"nested":true}}}"#).unwrap(),
        "`m.new_content.body` is an object, not a string",
        "an edit's new content is checked too"
    );
    let long = format!(r#"{{"body":"{}"}}"#, "a".repeat(101));
    assert_eq!(problem_of(&long).unwrap(), "`body` is 101 bytes long, over the limit of 100");
    assert_eq!(problem(&json::parse(&long).unwrap(), 0), None, "0: no limit");
}

#[test]
fn the_first_is_redacted_warned_and_copied_the_second_bans() {
    let mut h = harness();
    let first = events::render(&h.handle(&with_content("@bad:x", r#"{"body":1}"#, 0, "$1")));
    assert_eq!(
        first,
        "redact !room:test $1 (invalid event)\n\
         notice !room:test: @bad:x: you sent an invalid event that could cause problems in some Matrix clients, so it was removed. (invalid event)\n\
         notify: Removed an invalid message from @bad:x in !room:test ($1): `body` is a number, not a string.\n\
         Its content:\n{\"body\":1} (invalid event)"
    );
    let second = events::render(&h.handle(&with_content("@bad:x", r#"{"body":[]}"#, 10, "$2")));
    assert!(second.starts_with("ban !room:test @bad:x (sending invalid events)\nredact !room:test $2"), "{second}");
    assert!(second.contains("A second within 30 minutes: banned them."), "{second}");
    assert!(!second.contains("notice"), "no warning with a ban");
    let later = events::render(&h.handle(&with_content("@bad:x", r#"{"body":[]}"#, 50, "$3")));
    assert!(!later.contains("ban"), "a first offence again after the ban cleared it: {later}");
}

#[test]
fn valid_messages_moderators_and_the_bot_are_left_alone_and_copies_are_cut() {
    let mut h = harness();
    assert_eq!(events::render(&h.handle(&with_content("@ok:x", r#"{"msgtype":"m.text","body":"fine"}"#, 0, "$1"))), "");
    h.host.set_power_level(ROOM, "@mod:test", 100);
    assert_eq!(events::render(&h.handle(&with_content("@mod:test", r#"{"body":1}"#, 0, "$2"))), "");
    assert_eq!(events::render(&h.handle(&with_content("@bot:test", r#"{"body":1}"#, 0, "$3"))), "");
    let big = format!(r#"{{"body":"{}"}}"#, "a".repeat(40_000));
    let out = events::render(&h.handle(&with_content("@big:x", &big, 0, "$4")));
    assert!(out.contains("over the limit of 32768") && out.contains("Its content (cut):"), "{}", &out[..300]);
    assert!(out.len() < 2000, "the copy is cut: {}", out.len());
}

#[test]
fn offences_survive_a_swap() {
    let mut h = harness();
    h.handle(&with_content("@bad:x", r#"{"body":1}"#, 0, "$1"));
    let state = h.protection.snapshot();
    let mut next = harness();
    next.protection.restore(&state).unwrap();
    assert_eq!(next.protection.snapshot(), state);
    assert!(events::render(&next.handle(&with_content("@bad:x", r#"{"body":1}"#, 5, "$2"))).starts_with("ban"));
}
