//! Native tests through the SDK harness.

use gleipnir_sdk::prelude::*;
use gleipnir_sdk::testing::{Harness, events};

use crate::{NewJoinerServers, server_of};

const ROOM: &str = "!room:test";
const REASON: &str = "Unfortunately we cannot accept new users from your homeserver at this time.";

fn harness() -> Harness<NewJoinerServers> {
    let mut h = Harness::<NewJoinerServers>::new();
    h.host.set_bot_user_id("@bot:test");
    h.set("servers", SettingValue::TextList(vec!["evil.example".into(), "*.spam.example".into()])).unwrap();
    h
}

#[test]
fn joiners_from_listed_servers_are_banned_and_others_are_not() {
    let mut h = harness();
    assert_eq!(
        events::render(&h.handle(&events::membership(ROOM, "@a:EVIL.example", Membership::Join))),
        format!(
            "ban !room:test @a:EVIL.example ({REASON})\n\
             notify: @a:EVIL.example joined !room:test from a server listed as `evil.example`: banned them. ({REASON})"
        )
    );
    assert!(
        events::render(&h.handle(&events::membership(ROOM, "@b:hs.spam.example", Membership::Join))).starts_with("ban")
    );
    for fine in ["@c:good.example", "@d:spam.example", "@e:notevil.example"] {
        assert_eq!(events::render(&h.handle(&events::membership(ROOM, fine, Membership::Join))), "", "{fine}");
    }
    assert_eq!(events::render(&h.handle(&events::membership(ROOM, "@f:evil.example", Membership::Leave))), "");
}

#[test]
fn kick_instead_of_ban_name_changes_and_moderators() {
    let mut h = harness();
    h.set("consequence", SettingValue::Choice("kick".into())).unwrap();
    h.set("notify", SettingValue::Flag(false)).unwrap();
    assert_eq!(
        events::render(&h.handle(&events::membership(ROOM, "@a:evil.example", Membership::Join))),
        format!("kick !room:test @a:evil.example ({REASON})")
    );
    let mut rename = events::membership(ROOM, "@a:evil.example", Membership::Join);
    if let EventKind::Membership(m) = &mut rename.kind {
        m.previous = Some(Membership::Join);
    }
    assert_eq!(events::render(&h.handle(&rename)), "", "a name change is no join");
    h.host.set_power_level(ROOM, "@mod:evil.example", 100);
    assert_eq!(events::render(&h.handle(&events::membership(ROOM, "@mod:evil.example", Membership::Join))), "");
}

#[test]
fn the_join_is_refused_before_it_happens() {
    let mut h = harness();
    let join = |user: &str| Pending::Join(PendingJoin { room_id: ROOM.into(), user_id: user.into() });
    let Verdict::Deny(denial) = h.check(&join("@a:evil.example")) else { panic!("refused") };
    assert_eq!(denial.reason, REASON);
    assert!(matches!(h.check(&join("@a:good.example")), Verdict::Allow));
}

#[test]
fn patterns_that_would_turn_everyone_away_or_are_not_servers_are_refused() {
    let mut h = harness();
    for bad in ["*", "@user:evil.example", "evil example", ""] {
        let err = h.set("servers", SettingValue::TextList(vec![bad.into()])).unwrap_err();
        assert!(err.contains("is not a server name or glob"), "{bad}: {err}");
    }
    assert_eq!(server_of("@a:b.example:8448"), Some("b.example:8448"));
    assert_eq!(server_of("nonsense"), None);
}

#[test]
fn young_accounts_are_turned_away_when_the_homeserver_says_how_young() {
    const DAY: u64 = 86_400_000;
    let mut h = harness();
    h.host.set_now(100 * DAY);
    h.host.set_bot_user_id("@bot:good.example");
    h.host.set_account_created("@new:good.example", Ok(100 * DAY - 3 * 3_600_000 - 60_000));
    h.host.set_account_created("@old:good.example", Ok(90 * DAY));
    let young = "Your account is too new to join this room; please try again later.";
    // Off by default: nobody is asked about.
    assert_eq!(events::render(&h.handle(&events::membership(ROOM, "@new:good.example", Membership::Join))), "");
    h.set("younger-than", SettingValue::Duration(7 * DAY)).unwrap();
    assert_eq!(
        events::render(&h.handle(&events::membership(ROOM, "@new:good.example", Membership::Join))),
        format!(
            "ban !room:test @new:good.example ({young})\n\
             notify: @new:good.example joined !room:test with an account made 3 hours ago (younger than 7 days): \
             banned them. ({young})"
        )
    );
    assert_eq!(events::render(&h.handle(&events::membership(ROOM, "@old:good.example", Membership::Join))), "");
    // A listed server's joiner gets the server's reason, whatever the age.
    assert!(
        events::render(&h.handle(&events::membership(ROOM, "@x:evil.example", Membership::Join)))
            .contains("from a server listed as `evil.example`")
    );
    // Another server's users are not asked about: no homeserver tells of another's accounts.
    h.host.set_account_created("@far:other.example", Ok(100 * DAY));
    assert_eq!(events::render(&h.handle(&events::membership(ROOM, "@far:other.example", Membership::Join))), "");
    // An age the host cannot tell is no reason: nothing done, and the
    // management room told once why the setting does nothing.
    h.host.set_account_created("@new2:good.example", Err("the bot's account is not a server admin".into()));
    let told = events::render(&h.handle(&events::membership(ROOM, "@new2:good.example", Membership::Join)));
    assert_eq!(
        told,
        "notify: new-joiner-servers cannot tell how old accounts are, so `younger-than` turns nobody away: \
         the bot's account is not a server admin. (account ages unknown)"
    );
    // Not at every join, whatever the reason says (an outage names each user).
    h.host.set_account_created("@new3:good.example", Err("cannot ask when @new3:good.example was made".into()));
    for user in ["@new2:good.example", "@new3:good.example"] {
        assert_eq!(events::render(&h.handle(&events::membership(ROOM, user, Membership::Join))), "");
    }
    // Told again an hour later, while it lasts.
    h.host.set_now(100 * DAY + 3_600_000);
    assert!(
        events::render(&h.handle(&events::membership(ROOM, "@new3:good.example", Membership::Join)))
            .contains("cannot ask when @new3:good.example was made")
    );
    // Moderators are never acted on, however young.
    h.host.set_power_level(ROOM, "@new:good.example", 100);
    assert_eq!(events::render(&h.handle(&events::membership(ROOM, "@new:good.example", Membership::Join))), "");
}
