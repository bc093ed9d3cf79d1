//! Native tests through the SDK harness.

use gleipnir_sdk::prelude::*;
use gleipnir_sdk::testing::{Harness, events};

use crate::{MembershipChurn, warn_at};

const ROOM: &str = "!room:test";
const MINUTE: u64 = 60_000;

fn harness() -> Harness<MembershipChurn> {
    let mut h = Harness::<MembershipChurn>::new();
    h.host.set_bot_user_id("@bot:test");
    h
}

/// `who` changes their own membership to `m` at `minute` (after `previous`).
fn change(who: &str, m: Membership, previous: Option<Membership>, minute: u64) -> Event {
    let mut e = events::membership(ROOM, who, m).at(minute * MINUTE);
    if let EventKind::Membership(c) = &mut e.kind {
        c.previous = previous;
    }
    e
}

/// Joins and leaves alternately, from minute `from`, `n` changes.
fn churn(h: &mut Harness<MembershipChurn>, who: &str, n: u64, from: u64) -> Vec<String> {
    (0..n)
        .map(|i| {
            let m = if i % 2 == 0 { Membership::Join } else { Membership::Leave };
            events::render(&h.handle(&change(who, m, None, from + i)))
        })
        .collect()
}

#[test]
fn warned_at_the_fourth_change_and_banned_at_the_eighth() {
    let mut h = harness();
    let out = churn(&mut h, "@churn:x", 8, 0);
    assert!(out[..3].iter().all(String::is_empty), "{out:?}");
    assert!(out[3].starts_with("notice !room:test: @churn:x: you are changing your room membership too frequently"));
    assert!(out[4..7].iter().all(String::is_empty), "warned once: {out:?}");
    assert!(
        out[7].starts_with("ban !room:test @churn:x (You are changing your membership too frequently"),
        "{}",
        out[7]
    );
    assert!(out[7].contains("notify: @churn:x changed their membership in !room:test 8 times within 1 hour (limit 7)"));
    assert_eq!(warn_at(7), 4);
    assert_eq!(warn_at(1), 1);
}

#[test]
fn changes_spread_over_more_than_the_window_and_changes_by_others_do_not_count() {
    let mut h = harness();
    let out = churn(&mut h, "@slow:x", 8, 0);
    assert!(out[7].starts_with("ban"), "{out:?}");
    let spread: Vec<String> =
        (0..10).map(|i| events::render(&h.handle(&change("@calm:x", Membership::Join, None, i * 21)))).collect();
    assert!(spread.iter().all(String::is_empty), "never more than 3 within an hour: {spread:?}");
    let mut kicked = change("@victim:x", Membership::Leave, Some(Membership::Join), 0);
    kicked.sender = "@mod:test".into();
    for _ in 0..10 {
        assert_eq!(events::render(&h.handle(&kicked)), "", "a kick is the moderator's change");
    }
}

#[test]
fn profile_changes_count_unless_turned_off_and_moderators_are_exempt() {
    let mut h = harness();
    h.set("max-changes", SettingValue::Integer(2)).unwrap();
    let rename = |m| change("@named:x", Membership::Join, Some(Membership::Join), m);
    h.handle(&rename(0));
    h.handle(&rename(1));
    assert!(events::render(&h.handle(&rename(2))).starts_with("ban"));
    h.set("count-profile-changes", SettingValue::Flag(false)).unwrap();
    let other = |m| change("@other:x", Membership::Join, Some(Membership::Join), m);
    for m in 0..5 {
        assert_eq!(events::render(&h.handle(&other(m))), "");
    }
    h.host.set_power_level(ROOM, "@mod:test", 100);
    let out = churn(&mut h, "@mod:test", 10, 0);
    assert!(out.iter().all(String::is_empty));
}

#[test]
fn counts_survive_a_swap() {
    let mut h = harness();
    churn(&mut h, "@churn:x", 5, 0);
    let state = h.protection.snapshot();
    let mut next = harness();
    next.protection.restore(&state).unwrap();
    assert_eq!(next.protection.snapshot(), state);
    let out = churn(&mut next, "@churn:x", 3, 5);
    assert!(out[0].is_empty(), "warned already: {out:?}");
    assert!(out[2].starts_with("ban"), "{out:?}");
    assert!(next.protection.restore(b"x").is_err());
}
