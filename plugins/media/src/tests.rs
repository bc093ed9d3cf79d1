//! Native tests through the SDK harness.

use gleipnir_sdk::prelude::*;
use gleipnir_sdk::testing::{Harness, events};

use crate::{Media, kinds_in};

const ROOM: &str = "!room:test";
const HOUR: u64 = 3_600_000;
const NOW: u64 = 1000 * HOUR;

fn harness() -> Harness<Media> {
    let mut h = Harness::<Media>::new();
    h.host.set_bot_user_id("@bot:test");
    h
}

/// A message of `msgtype` with `content` as sent.
fn media(who: &str, msgtype: Msgtype, content: &str, id: &str) -> Event {
    let mut event = events::message(ROOM, who, "a file").at(NOW).with_id(id);
    event.content = content.to_owned();
    if let EventKind::Message(m) = &mut event.kind {
        m.msgtype = msgtype;
    }
    event
}

fn image(who: &str) -> Event {
    media(who, Msgtype::Image, r#"{"msgtype":"m.image","body":"cat.png","url":"mxc://x/y"}"#, "$img")
}

#[test]
fn each_kind_is_told_apart() {
    let kinds = |msgtype, content: &str, html: Option<&str>| {
        let mut event = media("@u:test", msgtype, content, "$e");
        if let EventKind::Message(m) = &mut event.kind {
            m.formatted_body = html.map(str::to_owned);
            kinds_in(m, &event.content)
        } else {
            unreachable!()
        }
    };
    assert_eq!(kinds(Msgtype::Image, "{}", None), ["image"]);
    assert_eq!(kinds(Msgtype::Audio, r#"{"org.matrix.msc3245.voice":{}}"#, None), ["voice"]);
    assert_eq!(kinds(Msgtype::Audio, "{}", None), ["audio"]);
    assert_eq!(kinds(Msgtype::Sticker, "{}", None), ["sticker"]);
    assert_eq!(kinds(Msgtype::Text, "{}", Some("look <IMG src=\"mxc://x/y\">")), ["inline-image"]);
    assert!(kinds(Msgtype::Text, "{}", Some("<b>bold</b>")).is_empty());
}

#[test]
fn images_are_removed_from_everyone_but_moderators_by_default() {
    let mut h = harness();
    assert_eq!(
        events::render(&h.handle(&image("@u:test"))),
        "redact !room:test $img (this kind of media is not permitted here)\n\
         notify: Removed image from @u:test in !room:test ($img). (this kind of media is not permitted here)"
    );
    let audio = media("@u:test", Msgtype::Audio, "{}", "$a");
    assert_eq!(events::render(&h.handle(&audio)), "", "audio is not in the default kinds");
    h.host.set_power_level(ROOM, "@mod:test", 100);
    assert_eq!(events::render(&h.handle(&image("@mod:test"))), "");
}

#[test]
fn a_first_message_that_is_an_image_is_removed_and_its_sender_banned_first() {
    let mut h = harness();
    h.set("who", SettingValue::Choice("first-message".into())).unwrap();
    h.set("consequence", SettingValue::Choice("redact-and-ban".into())).unwrap();
    h.set("notify", SettingValue::Flag(false)).unwrap();
    h.host.set_message_count(ROOM, "@new:test", Some(0));
    h.host.set_message_count(ROOM, "@talked:test", Some(3));
    assert_eq!(
        events::render(&h.handle(&image("@new:test"))),
        "ban !room:test @new:test (this kind of media is not permitted here)\n\
         redact !room:test $img (this kind of media is not permitted here)"
    );
    assert_eq!(events::render(&h.handle(&image("@talked:test"))), "", "not their first message");
    assert_eq!(events::render(&h.handle(&image("@uncounted:test"))), "", "joined before counting began");
}

#[test]
fn newcomers_are_those_who_joined_within_the_window() {
    let mut h = harness();
    h.set("who", SettingValue::Choice("newcomers".into())).unwrap();
    h.host.set_membership(ROOM, "@new:test", Membership::Join, Some(NOW - HOUR));
    h.host.set_membership(ROOM, "@old:test", Membership::Join, Some(NOW - 48 * HOUR));
    assert!(events::render(&h.handle(&image("@new:test"))).contains("(a newcomer)"));
    assert_eq!(events::render(&h.handle(&image("@old:test"))), "");
}

#[test]
fn voice_messages_only_when_asked_and_unknown_kinds_refused() {
    let mut h = harness();
    h.set("kinds", SettingValue::TextList(vec!["voice".into()])).unwrap();
    let voice = media("@u:test", Msgtype::Audio, r#"{"msgtype":"m.audio","org.matrix.msc3245.voice":{}}"#, "$v");
    let song = media("@u:test", Msgtype::Audio, r#"{"msgtype":"m.audio"}"#, "$s");
    assert!(events::render(&h.handle(&voice)).starts_with("redact !room:test $v"));
    assert_eq!(events::render(&h.handle(&song)), "");
    assert!(h.set("kinds", SettingValue::TextList(vec!["gif".into()])).unwrap_err().contains("`gif` is not one of"));
}
