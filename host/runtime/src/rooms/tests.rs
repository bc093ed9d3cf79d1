//! Room state and message counts, without a homeserver.
use super::*;

const ROOM: &str = "!r:test";

#[test]
fn power_levels_with_defaults_and_string_values() {
    let states = RoomStates::new();
    assert_eq!(states.power_level(ROOM, "@a:test"), 0);
    states.apply(
        ROOM,
        "m.room.power_levels",
        "",
        "@c:test",
        1,
        r#"{"ban": 75, "users": {"@a:test": 80, "@b:test": "60"}, "users_default": 5}"#,
    );
    assert_eq!(states.power_level(ROOM, "@a:test"), 80);
    assert_eq!(states.power_level(ROOM, "@b:test"), 60);
    assert_eq!(states.power_level(ROOM, "@x:test"), 5);
    assert_eq!(states.room_levels(ROOM).ban, 75);
    assert_eq!(states.room_levels(ROOM).kick, 50);
}

#[test]
fn creators_of_v12_rooms_outrank_everyone() {
    let states = RoomStates::new();
    states.apply(
        "!v12",
        "m.room.create",
        "",
        "@c:test",
        1,
        r#"{"room_version": "12", "additional_creators": ["@d:test"]}"#,
    );
    states.apply("!v11:test", "m.room.create", "", "@c:test", 1, r#"{"room_version": "11"}"#);
    assert_eq!(states.power_level("!v12", "@c:test"), i64::MAX);
    assert_eq!(states.power_level("!v12", "@d:test"), i64::MAX);
    assert_eq!(states.power_level("!v11:test", "@c:test"), 0);
}

#[test]
fn join_time_survives_profile_changes() {
    let states = RoomStates::new();
    let join = r#"{"membership": "join"}"#;
    assert_eq!(
        states.apply(ROOM, "m.room.member", "@a:test", "@a:test", 100, join),
        Applied::Membership { user: "@a:test".into(), previous: None, now: Membership::Join }
    );
    states.apply(ROOM, "m.room.member", "@a:test", "@a:test", 200, r#"{"membership": "join", "displayname": "A"}"#);
    assert_eq!(states.joined_at(ROOM, "@a:test"), Some(100));
    states.apply(ROOM, "m.room.member", "@a:test", "@a:test", 300, r#"{"membership": "leave"}"#);
    assert_eq!(states.joined_at(ROOM, "@a:test"), None);
    states.apply(ROOM, "m.room.member", "@a:test", "@a:test", 400, join);
    assert_eq!(states.joined_at(ROOM, "@a:test"), Some(400));
    assert_eq!(states.joined(ROOM), vec!["@a:test".to_owned()]);
}

#[test]
fn messages_are_counted_from_when_counting_began() {
    let states = RoomStates::new();
    let join = r#"{"membership": "join"}"#;
    states.apply(ROOM, "m.room.member", "@old:test", "@old:test", 100, join);
    states.apply(ROOM, "m.room.member", "@new:test", "@new:test", 1_000, join);
    assert_eq!(states.message_count(ROOM, "@new:test"), None, "not counting yet");
    states.count_from(ROOM, 500);
    states.count_from(ROOM, 900);
    states.count_message(ROOM, "@new:test", "$1");
    states.count_message(ROOM, "@new:test", "$1");
    states.count_message(ROOM, "@new:test", "$2");
    states.count_message(ROOM, "@old:test", "$3");
    assert_eq!(states.message_count(ROOM, "@new:test"), Some(2), "each event once");
    assert_eq!(states.message_count(ROOM, "@old:test"), None, "joined before counting began");
    states.uncount("$2");
    states.uncount("$2");
    assert_eq!(states.message_count(ROOM, "@new:test"), Some(1), "a removed message no longer counts");
    assert_eq!(states.message_count(ROOM, "@nobody:test"), None, "join time unknown");
    states.apply(ROOM, "m.room.member", "@quiet:test", "@quiet:test", 2_000, join);
    assert_eq!(states.message_count(ROOM, "@quiet:test"), Some(0));

    let saved = states.counts_to_json().expect("changed");
    assert_eq!(states.counts_to_json(), None, "unchanged since");
    let restarted = RoomStates::new();
    restarted.apply(ROOM, "m.room.member", "@new:test", "@new:test", 1_000, join);
    restarted.counts_from_json(&saved).unwrap();
    assert_eq!(restarted.message_count(ROOM, "@new:test"), Some(1));
    assert!(restarted.counts_from_json("{not json").is_err());
}

#[test]
fn join_times_are_the_hosts_sightings_and_fail_closed() {
    let join = r#"{"membership": "join"}"#;
    let profile = r#"{"membership": "join", "displayname": "New name"}"#;
    let states = RoomStates::new();
    states.apply(ROOM, "m.room.member", "@old:test", "@old:test", 1_000, join);
    assert!(states.count_from(ROOM, 1_000), "counting begins: vouch");
    states.vouch_for_members(ROOM);
    assert_eq!(states.joined_at(ROOM, "@old:test"), Some(0), "there when the room became protected");
    assert_eq!(states.message_count(ROOM, "@old:test"), None, "established");
    // A join is as old as the host's sighting of it, whatever the event says of itself.
    states.apply(ROOM, "m.room.member", "@new:test", "@new:test", 5_000, join);
    assert_eq!(states.joined_at(ROOM, "@new:test"), Some(5_000));
    // First seen through a profile change (the join itself never seen): a newcomer, not unknown.
    states.apply(ROOM, "m.room.member", "@sly:test", "@sly:test", 6_000, profile);
    assert_eq!(states.joined_at(ROOM, "@sly:test"), Some(6_000));
    assert_eq!(states.message_count(ROOM, "@sly:test"), Some(0));
    assert!(!states.count_from(ROOM, 7_000), "counting already, nobody vouched for again");

    // A restart: sightings from before stand; someone who joined while
    // the bot was stopped is new as of now.
    let saved = states.counts_to_json().unwrap();
    let restarted = RoomStates::new();
    restarted.counts_from_json(&saved).unwrap();
    for user in ["@old:test", "@new:test", "@sly:test", "@meanwhile:test"] {
        restarted.apply(ROOM, "m.room.member", user, user, 9_000, join);
    }
    assert!(!restarted.count_from(ROOM, 9_000));
    assert_eq!(restarted.joined_at(ROOM, "@old:test"), Some(0));
    assert_eq!(restarted.joined_at(ROOM, "@new:test"), Some(5_000));
    assert_eq!(restarted.joined_at(ROOM, "@meanwhile:test"), Some(9_000));
    // Applied before the counts were read: the saved sighting still wins.
    let early = RoomStates::new();
    early.apply(ROOM, "m.room.member", "@old:test", "@old:test", 9_000, join);
    early.counts_from_json(&saved).unwrap();
    assert_eq!(early.joined_at(ROOM, "@old:test"), Some(0));

    // Counts lost: nobody is vouched for, everyone is a newcomer.
    let lost = RoomStates::new();
    lost.distrust_counts();
    lost.apply(ROOM, "m.room.member", "@old:test", "@old:test", 9_000, join);
    assert!(lost.count_from(ROOM, 9_000));
    lost.vouch_for_members(ROOM);
    assert_eq!(lost.joined_at(ROOM, "@old:test"), Some(9_000));
    assert_eq!(lost.message_count(ROOM, "@old:test"), Some(0));
}

#[test]
fn counts_saved_before_join_times_vouch_for_the_members_present() {
    let states = RoomStates::new();
    states.counts_from_json(r#"{"since": {"!r:test": 500}, "messages": {}}"#).unwrap();
    assert!(states.count_from(ROOM, 9_000), "an old file: the members present were established");
}

#[test]
fn garbage_leaves_state_alone() {
    let states = RoomStates::new();
    states.apply(ROOM, "m.room.power_levels", "", "@c:test", 1, r#"{"users": {"@a:test": 80}}"#);
    assert_eq!(states.apply(ROOM, "m.room.power_levels", "", "@c:test", 2, "not json"), Applied::Ignored);
    assert_eq!(
        states.apply(ROOM, "m.room.member", "@a:test", "@a:test", 2, r#"{"membership": "dancing"}"#),
        Applied::Ignored
    );
    assert_eq!(states.power_level(ROOM, "@a:test"), 80);
}

#[test]
fn join_rules_and_the_level_to_change_them_are_known() {
    let rooms = RoomStates::new();
    assert_eq!(rooms.join_rule("!r"), None);
    assert_eq!(rooms.state_level("!r", "m.room.join_rules"), 50, "the spec's state_default");
    assert_eq!(rooms.apply("!r", "m.room.join_rules", "", "@a:x", 0, r#"{"join_rule": "public"}"#), Applied::JoinRule);
    assert_eq!(rooms.join_rule("!r").as_deref(), Some("public"));
    rooms.apply("!r", "m.room.join_rules", "", "@a:x", 0, r#"{"join_rule": "invite"}"#);
    assert_eq!(rooms.join_rule("!r").as_deref(), Some("invite"));
    // Not the room's rule: a state key, or content without a rule.
    rooms.apply("!r", "m.room.join_rules", "x", "@a:x", 0, r#"{"join_rule": "public"}"#);
    assert_eq!(rooms.join_rule("!r").as_deref(), Some("invite"));
    rooms.apply(
        "!r",
        "m.room.power_levels",
        "",
        "@a:x",
        0,
        r#"{"state_default": 60, "events": {"m.room.join_rules": 100}}"#,
    );
    assert_eq!(rooms.state_level("!r", "m.room.join_rules"), 100);
    assert_eq!(rooms.state_level("!r", "m.room.topic"), 60);
}

#[test]
fn names_and_aliases_as_last_set() {
    let states = RoomStates::new();
    assert_eq!(states.name(ROOM), (None, None));
    assert_eq!(states.apply(ROOM, "m.room.name", "", "@a:test", 1, r#"{"name": "Lobby"}"#), Applied::Name);
    states.apply(ROOM, "m.room.canonical_alias", "", "@a:test", 1, r##"{"alias": "#lobby:test"}"##);
    assert_eq!(states.name(ROOM), (Some("Lobby".into()), Some("#lobby:test".into())));
    states.apply(ROOM, "m.room.name", "", "@a:test", 2, r#"{"name": ""}"#);
    states.apply(ROOM, "m.room.canonical_alias", "", "@a:test", 2, r#"{"alias": 5}"#);
    assert_eq!(states.name(ROOM), (None, None), "an empty name or a bad alias unsets it");
    assert_eq!(states.apply(ROOM, "m.room.name", "x", "@a:test", 3, r#"{"name": "Not"}"#), Applied::Ignored);
    assert_eq!(states.name(ROOM), (None, None));
}
