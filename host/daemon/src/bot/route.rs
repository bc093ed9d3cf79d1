//! Where one timeline event goes, decided without I/O: the management
//! room's new messages are commands (answered, not run, when they arrived
//! while the bot was stopped) and its reactions confirmations; a protected
//! room's events go to the protections; the bot's own events (but its
//! join-rule changes in protected rooms, a fact about the room protections
//! need: join-wave learns there the rule to put back) and everything else
//! go nowhere.

use gleipnir_runtime::{Event, EventKind};

use super::protected::Protected;

/// Where the bot is, as routing needs it.
pub(crate) struct At<'a> {
    pub(crate) bot: &'a str,
    pub(crate) management: &'a str,
    pub(crate) protected: &'a Protected,
    /// Handling the events that arrived while the bot was stopped.
    pub(crate) replaying: bool,
}

/// What to do with one event.
#[derive(Debug, PartialEq)]
pub(crate) enum Route {
    /// A moderator's command, to run.
    Command { sender: String, body: String },
    /// A command sent while the bot was stopped: answered, not run.
    NotRun { sender: String, body: String },
    /// A reaction in the management room (a confirmation or a choice).
    Reaction { sender: String, relates_to: String, key: String },
    /// An event of a protected room, for the protections; `counted` is the
    /// new message that counts towards its sender's standing once they saw it.
    Protect { event: Box<Event>, counted: Option<Counted> },
    /// Nothing to do.
    Nowhere,
}

/// A new message counted towards its sender's standing.
#[derive(Debug, PartialEq)]
pub(crate) struct Counted {
    pub(crate) event_id: String,
    pub(crate) sender: String,
}

/// Routes one event of `room`.
pub(crate) fn route(room: &str, event: Event, at: &At<'_>) -> Route {
    let room_fact = matches!(event.kind, EventKind::JoinRule(_)) && at.protected.contains(room);
    if event.sender == at.bot && !room_fact {
        return Route::Nowhere;
    }
    if room == at.management {
        let sender = event.sender;
        return match event.kind {
            // Commands come from new messages only: an edit is not a new command.
            EventKind::Message(message) if message.replaces.is_some() => Route::Nowhere,
            EventKind::Message(message) if at.replaying => Route::NotRun { sender, body: message.body },
            EventKind::Message(message) => Route::Command { sender, body: message.body },
            // A confirmation given while the bot was stopped confirms nothing.
            EventKind::Reaction(_) if at.replaying => Route::Nowhere,
            EventKind::Reaction(reaction) => {
                Route::Reaction { sender, relates_to: reaction.relates_to, key: reaction.key }
            }
            _ => Route::Nowhere,
        };
    }
    if !at.protected.contains(room) {
        return Route::Nowhere;
    }
    let counted = match &event.kind {
        EventKind::Message(m) if m.replaces.is_none() && !event.event_id.is_empty() => {
            Some(Counted { event_id: event.event_id.clone(), sender: event.sender.clone() })
        }
        _ => None,
    };
    Route::Protect { event: Box::new(event), counted }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gleipnir_runtime::event;

    fn event(room: &str, sender: &str, content: &str, kind: &str) -> Event {
        let json = format!(
            r#"{{"type":"{kind}","event_id":"$e","sender":"{sender}","origin_server_ts":1,"content":{content}}}"#
        );
        event::from_json(&json, Some(room), &|_, _| None).unwrap().unwrap()
    }
    fn message(room: &str, sender: &str, body: &str) -> Event {
        event(room, sender, &format!(r#"{{"msgtype":"m.text","body":"{body}"}}"#), "m.room.message")
    }
    fn edit(room: &str, sender: &str) -> Event {
        let content = r#"{"msgtype":"m.text","body":"* x","m.new_content":{"msgtype":"m.text","body":"x"},
            "m.relates_to":{"rel_type":"m.replace","event_id":"$old"}}"#;
        event(room, sender, content, "m.room.message")
    }
    fn reaction(room: &str, sender: &str) -> Event {
        let content = r#"{"m.relates_to":{"rel_type":"m.annotation","event_id":"$preview","key":"✅"}}"#;
        event(room, sender, content, "m.reaction")
    }

    fn at<'a>(protected: &'a Protected, replaying: bool) -> At<'a> {
        At { bot: "@bot:x", management: "!m:x", protected, replaying }
    }

    #[test]
    fn the_management_rooms_new_messages_are_commands_and_its_reactions_choices() {
        let protected = Protected::of(["!p:x"]);
        let live = at(&protected, false);
        assert_eq!(
            route("!m:x", message("!m:x", "@mod:x", "!gleipnir status"), &live),
            Route::Command { sender: "@mod:x".into(), body: "!gleipnir status".into() }
        );
        assert_eq!(route("!m:x", edit("!m:x", "@mod:x"), &live), Route::Nowhere);
        assert_eq!(
            route("!m:x", reaction("!m:x", "@mod:x"), &live),
            Route::Reaction { sender: "@mod:x".into(), relates_to: "$preview".into(), key: "✅".into() }
        );
        // The bot's own messages command nothing.
        assert_eq!(route("!m:x", message("!m:x", "@bot:x", "!gleipnir restart"), &live), Route::Nowhere);
    }

    #[test]
    fn what_arrived_while_stopped_is_answered_not_run_and_confirms_nothing() {
        let protected = Protected::of(["!p:x"]);
        let replay = at(&protected, true);
        assert_eq!(
            route("!m:x", message("!m:x", "@mod:x", "!gleipnir restart"), &replay),
            Route::NotRun { sender: "@mod:x".into(), body: "!gleipnir restart".into() }
        );
        assert_eq!(route("!m:x", reaction("!m:x", "@mod:x"), &replay), Route::Nowhere);
        // Protected rooms' events are handled all the same.
        assert!(matches!(route("!p:x", message("!p:x", "@u:x", "spam"), &replay), Route::Protect { .. }));
    }

    #[test]
    fn protected_rooms_events_go_to_the_protections_and_new_messages_count() {
        let protected = Protected::of(["!p:x"]);
        let live = at(&protected, false);
        let Route::Protect { event, counted } = route("!p:x", message("!p:x", "@u:x", "hi"), &live) else {
            panic!("not routed to the protections")
        };
        assert_eq!(event.sender, "@u:x");
        assert_eq!(counted, Some(Counted { event_id: "$e".into(), sender: "@u:x".into() }));
        // An edit and a reaction are seen, not counted.
        for seen in [edit("!p:x", "@u:x"), reaction("!p:x", "@u:x")] {
            assert!(matches!(route("!p:x", seen, &live), Route::Protect { counted: None, .. }));
        }
        // Not the bot's own, nor a room it does not protect (a list, a room joined on invite).
        assert_eq!(route("!p:x", message("!p:x", "@bot:x", "notice"), &live), Route::Nowhere);
        assert_eq!(route("!other:x", message("!other:x", "@u:x", "hi"), &live), Route::Nowhere);
        // The bot's own join-rule change is a fact about the room: delivered, not counted.
        let rule = |room| {
            let json = r#"{"type":"m.room.join_rules","state_key":"","event_id":"$r","sender":"@bot:x","origin_server_ts":1,"content":{"join_rule":"invite"}}"#;
            event::from_json(json, Some(room), &|_, _| None).unwrap().unwrap()
        };
        assert!(matches!(route("!p:x", rule("!p:x"), &live), Route::Protect { counted: None, .. }));
        assert_eq!(route("!other:x", rule("!other:x"), &live), Route::Nowhere);
    }
}
