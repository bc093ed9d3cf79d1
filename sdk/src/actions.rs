//! Short constructors for the actions protections return most.

use crate::prelude::*;

impl Action {
    /// Redact `event` in its room.
    pub fn redact(event: &Event, reason: &str) -> Action {
        Action::Redact(RedactEvent {
            room_id: event.room_id.clone(),
            event_id: event.event_id.clone(),
            reason: reason.to_owned(),
        })
    }

    /// Ban `user` from `room`.
    pub fn ban(room: &str, user: &str, reason: &str) -> Action {
        Action::Ban(TargetUser { room_id: room.to_owned(), user_id: user.to_owned(), reason: reason.to_owned() })
    }

    /// Kick `user` from `room`.
    pub fn kick(room: &str, user: &str, reason: &str) -> Action {
        Action::Kick(TargetUser { room_id: room.to_owned(), user_id: user.to_owned(), reason: reason.to_owned() })
    }

    /// Tell the moderators in the management room.
    pub fn notify(body: &str, reason: &str) -> Action {
        Action::NotifyManagement(NotifyManagement { body: body.to_owned(), reason: reason.to_owned() })
    }

    /// Send a notice to the room.
    pub fn notice(room: &str, body: &str, reason: &str) -> Action {
        Action::SendNotice(SendNotice { room_id: room.to_owned(), body: body.to_owned(), reason: reason.to_owned() })
    }
}
