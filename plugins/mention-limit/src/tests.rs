//! Native tests through the SDK harness.

use gleipnir_sdk::prelude::*;
use gleipnir_sdk::testing::{Harness, events};

use crate::{MentionLimit, mentioned};

const ROOM: &str = "!room:test";
const MINUTE: u64 = 60_000;

fn harness() -> Harness<MentionLimit> {
    let mut h = Harness::<MentionLimit>::new();
    h.host.set_bot_user_id("@bot:test");
    h
}

/// A message from `who` at `minute` mentioning `n` users through `m.mentions`.
fn mentioning(who: &str, n: usize, minute: u64, id: &str) -> Event {
    let mut event = events::message(ROOM, who, "hello all").at(minute * MINUTE).with_id(id);
    if let EventKind::Message(m) = &mut event.kind {
        m.mentions = Some(Mentions { users: (0..n).map(|i| format!("@user{i}:test")).collect(), room: false });
    }
    event
}

#[test]
fn a_message_over_the_limit_is_redacted_and_the_sender_warned_then_banned_on_a_repeat() {
    let mut h = harness();
    assert_eq!(events::render(&h.handle(&mentioning("@spam:test", 3, 0, "$ok"))), "", "three is allowed");
    assert_eq!(
        events::render(&h.handle(&mentioning("@spam:test", 4, 1, "$first"))),
        "redact !room:test $first (too many mentions)\n\
         notice !room:test: @spam:test: you have mentioned too many users in this message, so it was removed. (too many mentions)"
    );
    let second = events::render(&h.handle(&mentioning("@spam:test", 5, 20, "$second")));
    assert!(second.starts_with("ban !room:test @spam:test (too many mentions)\nredact !room:test $second"), "{second}");
    assert!(second.contains("notify: @spam:test mentioned 5 users in !room:test a second time within 30 minutes"));
}

#[test]
fn a_repeat_after_the_window_is_a_first_offence_again() {
    let mut h = harness();
    h.handle(&mentioning("@spam:test", 4, 0, "$a"));
    let later = events::render(&h.handle(&mentioning("@spam:test", 4, 31, "$b")));
    assert!(later.starts_with("redact") && later.contains("notice") && !later.contains("ban"), "{later}");
}

#[test]
fn moderators_and_the_bot_are_never_acted_on_and_rooms_are_separate() {
    let mut h = harness();
    h.host.set_power_level(ROOM, "@mod:test", 100);
    assert_eq!(events::render(&h.handle(&mentioning("@mod:test", 50, 0, "$m"))), "");
    assert_eq!(events::render(&h.handle(&mentioning("@bot:test", 50, 0, "$b"))), "");
    h.handle(&mentioning("@spam:test", 4, 0, "$a"));
    let mut elsewhere = mentioning("@spam:test", 4, 1, "$c");
    elsewhere.room_id = "!other:test".into();
    assert!(!events::render(&h.handle(&elsewhere)).contains("ban"), "a warning in one room is not one in another");
}

#[test]
fn legacy_mentions_count_each_user_id_in_the_body_once_when_asked() {
    let mut event =
        events::message(ROOM, "@spam:test", "hi @a:x, @b:x and @c:x! also @a:x and me@example.org").with_id("$l");
    let EventKind::Message(message) = &event.kind else { unreachable!() };
    assert!(mentioned(message, false).is_empty());
    assert_eq!(mentioned(message, true).into_iter().collect::<Vec<_>>(), ["@a:x", "@b:x", "@c:x"]);
    let mut h = harness();
    h.set("max-mentions", SettingValue::Integer(2)).unwrap();
    assert_eq!(events::render(&h.handle(&event)), "", "off by default");
    h.set("include-legacy-mentions", SettingValue::Flag(true)).unwrap();
    event.received_ts = 1;
    assert!(events::render(&h.handle(&event)).starts_with("redact !room:test $l"));
}

#[test]
fn the_second_strike_survives_a_swap() {
    let mut h = harness();
    h.handle(&mentioning("@spam:test", 4, 0, "$a"));
    let state = h.protection.snapshot();
    let mut next = harness();
    next.protection.restore(&state).unwrap();
    assert!(events::render(&next.handle(&mentioning("@spam:test", 4, 5, "$b"))).starts_with("ban"));
    assert!(next.protection.restore(b"something else").is_err());
}
