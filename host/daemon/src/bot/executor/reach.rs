//! The safety rules every action on a user passes, whoever asked: who is
//! out of reach (the bot, management-room members, moderators, server
//! admins, users of other homeservers for account actions), and reasons
//! capped.

use std::time::Instant;

use gleipnir_runtime::capability::MAX_REASON;
use gleipnir_runtime::rooms::RoomStates;
use gleipnir_runtime::{Action, Deactivate, Membership, ServerUser};
use matrix_sdk::Client;

use super::admin_api::{AdminError, query, urlencode};
use super::{ADMIN_STATUS_TTL, Context, Executor};

/// Cuts an action's reason to [`MAX_REASON`] bytes, on a character boundary.
pub(super) fn cap_reason(action: &mut Action) {
    let reason = match action {
        Action::Redact(a) => &mut a.reason,
        Action::Ban(a) | Action::Unban(a) | Action::Kick(a) | Action::Invite(a) => &mut a.reason,
        Action::RestoreJoinRule(a) | Action::BlockRoom(a) | Action::PurgeRoom(a) => &mut a.reason,
        Action::SetJoinRule(a) => &mut a.reason,
        Action::SetPowerLevel(a) => &mut a.reason,
        Action::SendNotice(a) => &mut a.reason,
        Action::NotifyManagement(a) => &mut a.reason,
        Action::AddPolicyRule(a) | Action::RemovePolicyRule(a) => &mut a.reason,
        Action::SuspendUser(a) | Action::DeleteUserMedia(a) => &mut a.reason,
        Action::DeactivateUser(a) => &mut a.reason,
    };
    if reason.len() > MAX_REASON {
        let mut end = MAX_REASON - '…'.len_utf8();
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push('…');
    }
}

/// Why `user` is out of reach of actions on their account: the bot, a
/// management-room member, or a moderator in any protected room.
fn out_of_reach_anywhere(ctx: &Context<'_>, user: &str) -> Option<String> {
    let management = ctx.management;
    if let Some(why) = out_of_reach_everywhere(ctx.rooms, management, user, ctx.bot) {
        return Some(why.to_owned());
    }
    ctx.protected
        .find(|room| ctx.rooms.power_level(room, user) >= ctx.rooms.room_levels(room).ban)
        .map(|room| format!("they are a moderator in {room}"))
}

/// The user whose account an action acts on (suspend, deactivate, delete media).
pub(crate) fn account_target(action: &Action) -> Option<&str> {
    match action {
        Action::SuspendUser(ServerUser { user_id, .. })
        | Action::DeleteUserMedia(ServerUser { user_id, .. })
        | Action::DeactivateUser(Deactivate { user_id, .. }) => Some(user_id),
        _ => None,
    }
}

impl Executor {
    /// Why `user`'s account is out of reach of automatic actions, if it is:
    /// the bot, a management-room member, a moderator of a protected room, a
    /// server admin, or a user of another homeserver.
    pub(crate) async fn account_out_of_reach(&mut self, ctx: &Context<'_>, user: &str) -> Option<String> {
        match out_of_reach_anywhere(ctx, user) {
            Some(why) => Some(why),
            None => self.server_admin(ctx.client, ctx.bot, user, true).await.err(),
        }
    }

    /// `Err(why)` when `user` is a server admin of the bot's homeserver (out
    /// of reach). Users of other homeservers are no admins here. When the
    /// homeserver cannot say, `strict` refuses (actions on an account) and
    /// otherwise lets the other checks decide (a ban needs no admin rights).
    pub(super) async fn server_admin(
        &mut self,
        client: &Client,
        bot: &str,
        user: &str,
        strict: bool,
    ) -> Result<(), String> {
        let server = |id: &str| id.split_once(':').map(|(_, s)| s.to_ascii_lowercase());
        if server(user) != server(bot) {
            return if strict { Err("not a user of this homeserver".to_owned()) } else { Ok(()) };
        }
        let fresh =
            |user: &str| self.admins.get(user).filter(|(_, at)| at.elapsed() < ADMIN_STATUS_TTL).map(|(a, _)| *a);
        // The homeserver refused the bot its admin API lately (the bot is no
        // server admin): it would refuse again, so no request waits on it.
        let cached = fresh(user).or_else(|| fresh(ADMIN_API_REFUSED));
        let is_admin = match cached {
            Some(known) => known,
            None => {
                let path = format!("/_synapse/admin/v1/users/{}/admin", urlencode(user));
                let known = match query(client, &path).await {
                    Ok(reply) => Some(reply.get("admin").and_then(serde_json::Value::as_bool).unwrap_or(false)),
                    Err(e) => {
                        tracing::debug!(user, "cannot tell whether this is a server admin: {e}");
                        if matches!(e, AdminError::Status { status: 401 | 403, .. }) {
                            self.admins.insert(ADMIN_API_REFUSED.to_owned(), (None, Instant::now()));
                        }
                        None
                    }
                };
                if self.admins.len() > 10_000 {
                    self.admins.clear();
                }
                self.admins.insert(user.to_owned(), (known, Instant::now()));
                known
            }
        };
        match is_admin {
            Some(true) => Err("they are a server admin".to_owned()),
            Some(false) => Ok(()),
            None if strict => Err("I cannot tell whether they are a server admin".to_owned()),
            None => Ok(()),
        }
    }
}

/// The key under which `admins` remembers that the homeserver refused the
/// bot its admin API (no user id is empty).
const ADMIN_API_REFUSED: &str = "";

/// Why `user` is out of reach of automatic actions in `room`, if they are:
/// the bot itself, a moderator there, or a management-room member.
pub(super) fn protected_from(
    rooms: &RoomStates,
    management: Option<&str>,
    room: &str,
    user: &str,
    bot: &str,
) -> Option<&'static str> {
    if rooms.power_level(room, user) >= rooms.room_levels(room).ban && user != bot {
        return Some("they are a moderator there");
    }
    out_of_reach_everywhere(rooms, management, user, bot)
}

/// Who is out of reach wherever they are: the bot, and management-room members.
pub(super) fn out_of_reach_everywhere(
    rooms: &RoomStates,
    management: Option<&str>,
    user: &str,
    bot: &str,
) -> Option<&'static str> {
    if user == bot {
        return Some("that is me");
    }
    if let Some(management) = management
        && rooms.membership(management, user) == Some(Membership::Join)
    {
        return Some("they are in the management room");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_capped() {
        let long = "é".repeat(4 * MAX_REASON);
        let mut ban = Action::Ban(gleipnir_runtime::TargetUser {
            room_id: "!r:x".into(),
            user_id: "@u:x".into(),
            reason: long.clone(),
        });
        cap_reason(&mut ban);
        let Action::Ban(ban) = ban else { unreachable!() };
        assert!(ban.reason.len() <= MAX_REASON && ban.reason.ends_with('…'), "{}", ban.reason.len());
        let mut short = Action::SuspendUser(ServerUser { user_id: "@u:x".into(), reason: "spam".into() });
        cap_reason(&mut short);
        assert!(matches!(short, Action::SuspendUser(ServerUser { reason, .. }) if reason == "spam"));
    }

    #[test]
    fn moderators_members_of_the_management_room_and_the_bot_are_out_of_reach() {
        let rooms = RoomStates::new();
        let levels = r#"{"users": {"@mod:x": 50, "@bot:x": 100}, "ban": 50}"#;
        rooms.apply("!room", "m.room.power_levels", "", "@mod:x", 1, levels);
        rooms.apply("!room", "m.room.create", "", "@owner:x", 1, r#"{"room_version": "11"}"#);
        for (room, user) in [("!room", "@spam:x"), ("!management", "@watcher:x"), ("!management", "@spam:x")] {
            let membership = if user == "@spam:x" && room == "!management" { "leave" } else { "join" };
            rooms.apply(room, "m.room.member", user, user, 1, &format!(r#"{{"membership": "{membership}"}}"#));
        }
        let check = |user: &str| protected_from(&rooms, Some("!management"), "!room", user, "@bot:x");
        assert_eq!(check("@mod:x"), Some("they are a moderator there"));
        assert_eq!(check("@watcher:x"), Some("they are in the management room"));
        assert_eq!(check("@bot:x"), Some("that is me"));
        assert_eq!(check("@spam:x"), None, "someone who left the management room is not protected by it");
    }
}
