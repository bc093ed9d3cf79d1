//! Protected spaces: a space brings its rooms, nested ones too, and is
//! followed as its moderators change it, across a restart.

use std::time::Duration;

use serde_json::json;
use synapse_harness::{Account, Options, Synapse};

use crate::common::*;

/// A public room (or space) named `name` in which the bot has power 100.
fn public_room(synapse: &Synapse, owner: &Account, bot: &Account, name: &str, space: bool) -> String {
    let mut body = json!({
        "preset": "public_chat", "name": name,
        "power_level_content_override": {"users": {bot.user_id.clone(): 100}},
    });
    if space {
        body["creation_content"] = json!({"type": "m.space"});
    }
    let reply = synapse.call(owner, "POST", "/_matrix/client/v3/createRoom", Some(&body)).unwrap();
    reply["room_id"].as_str().unwrap().to_owned()
}

/// Puts `child` in `space` (or takes it out: an empty `m.space.child`).
fn set_child(synapse: &Synapse, owner: &Account, space: &str, child: &str, present: bool) {
    let content = if present { json!({"via": ["localhost"]}) } else { json!({}) };
    let path = format!("/_matrix/client/v3/rooms/{space}/state/m.space.child/{child}");
    synapse.call(owner, "PUT", &path, Some(&content)).unwrap();
}

/// `rooms add` on a space protects it and the rooms in it (through a space
/// inside it too); a room added to the space later is protected without a
/// command, one taken out stops being protected and is left, and after a
/// crash the bot still knows which rooms came from the space and follows a
/// change made while it was down.
#[test]
fn a_protected_space_brings_its_rooms_and_follows_them() {
    let scene = Scene::new(Options::default());
    let (synapse, moderator, bot) = (&scene.synapse, &scene.moderator, &scene.bot);
    let space = public_room(synapse, moderator, bot, "Community", true);
    let sub = public_room(synapse, moderator, bot, "Sub", true);
    let lobby = public_room(synapse, moderator, bot, "Lobby", false);
    let deep = public_room(synapse, moderator, bot, "Deep", false);
    set_child(synapse, moderator, &space, &lobby, true);
    set_child(synapse, moderator, &space, &sub, true);
    set_child(synapse, moderator, &sub, &deep, true);
    let mut gleipnir = scene.start(&[], &[]);

    let added = scene.command(&format!("rooms add {space}"), "It is a space");
    assert!(added.starts_with(&format!("Now protecting Community ({space}).")), "{added}");
    assert!(added.contains("now protect the 3 room(s) in it"), "{added}");
    for room in [&lobby, &sub, &deep] {
        assert!(added.contains(room.as_str()), "{room} missing: {added}");
        assert_eq!(membership(synapse, moderator, room, &bot.user_id).as_deref(), Some("join"), "{room}");
    }

    let later = public_room(synapse, moderator, bot, "Later", false);
    set_child(synapse, moderator, &space, &later, true);
    eventually("a room added to the space protected", Duration::from_secs(30), || {
        let notices = scene.notices();
        notices.into_iter().find(|n| n.starts_with(&format!("{later} was added to the space Community")))
    });
    set_child(synapse, moderator, &space, &lobby, false);
    eventually("a room taken out of the space no longer protected", Duration::from_secs(30), || {
        let notices = scene.notices();
        notices.into_iter().find(|n| n.starts_with(&format!("{lobby} was removed from the space Community")))
    });
    assert_eq!(membership(synapse, moderator, &lobby, &bot.user_id).as_deref(), Some("leave"));

    // A crash, and a room added to the nested space while the bot starts again.
    let before = scene.notices().iter().filter(|n| n.contains("Gleipnir started")).count();
    gleipnir.restart();
    let late = public_room(synapse, moderator, bot, "Late", false);
    set_child(synapse, moderator, &sub, &late, true);
    eventually("the bot started again", Duration::from_secs(60), || {
        (scene.notices().iter().filter(|n| n.contains("Gleipnir started")).count() > before).then_some(())
    });
    eventually("the room added while down protected", Duration::from_secs(30), || {
        scene.notices().into_iter().find(|n| n.starts_with(&format!("{late} was added to the space Sub")))
    });
    let rooms = scene.command("rooms", "Protected rooms");
    // The line naming the room itself (its id also shows where it is a space of others).
    let line = |room: &str| {
        let named = |l: &&str| l.split(" (from the space").next().is_some_and(|own| own.contains(room));
        rooms.lines().find(named).unwrap_or_default().to_owned()
    };
    assert!(line(&space).contains("(space: its rooms are protected"), "{rooms}");
    assert!(line(&later).contains(&format!("(from the space Community ({space}))")), "{rooms}");
    assert!(line(&deep).contains(&format!("(from the space Sub ({sub}), in Community ({space}))")), "{rooms}");
    assert!(line(&late).contains("(from the space Sub"), "{rooms}");
    assert!(!rooms.contains(&lobby), "{rooms}");

    // Taking the space out stops what came from it.
    let removed = scene.command(&format!("rooms remove {space}"), "No longer protecting");
    assert!(removed.contains("The rooms that came from it are no longer protected either"), "{removed}");
    let rooms = scene.command("rooms", "Protected rooms");
    for room in [&space, &sub, &deep, &later, &late] {
        assert!(!rooms.contains(room.as_str()), "{room} still protected: {rooms}");
    }
    assert!(rooms.contains(&scene.protected), "{rooms}");
}
