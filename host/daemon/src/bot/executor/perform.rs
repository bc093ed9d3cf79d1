//! The one place that calls a moderation endpoint: each act lowered to its
//! Matrix or admin API request, after `Executor::act` checked it.

use std::time::{Duration, SystemTime};

use gleipnir_runtime::{Action, JoinRule, json};

use matrix_sdk::Client;
use matrix_sdk::config::RequestConfig;
use matrix_sdk::ruma::{EventId, RoomId, UserId};
use serde_json::json;

use super::Act;
use super::admin_api::{AdminError, admin, reqwest_method, urlencode};

/// Why an act was not done once sent for.
pub(super) enum Performed {
    Notice(String),
    Unsupported(&'static str),
    Failed(String),
    /// Worth trying again: the homeserver said to slow down (`after`: for how
    /// long), was unreachable or failed on its side (`after`: `None`).
    Again {
        after: Option<Duration>,
        why: String,
    },
}

/// The requests sent for bans, kicks, unbans and redactions are tried once:
/// `send_together` tries again, and after a `429` holds every request back
/// (one pause for the homeserver, not one per request).
fn one_try() -> RequestConfig {
    RequestConfig::new().disable_retry()
}

/// Whether a failed request is worth trying again, and after how long.
fn again_or_failed(e: matrix_sdk::HttpError) -> Performed {
    use matrix_sdk::ruma::api::error::{ErrorKind, RetryAfter};
    let why = e.to_string();
    if let Some(ErrorKind::LimitExceeded(limit)) = e.client_api_error_kind() {
        let after = match &limit.retry_after {
            Some(RetryAfter::Delay(after)) => *after,
            Some(RetryAfter::DateTime(at)) => at.duration_since(SystemTime::now()).unwrap_or_default(),
            None => Duration::from_secs(1),
        };
        return Performed::Again { after: Some(after), why };
    }
    let status = e.as_client_api_error().map(|api| api.status_code.as_u16());
    match (&e, status) {
        (matrix_sdk::HttpError::Reqwest(_), _) => Performed::Again { after: None, why },
        (_, Some(429)) => Performed::Again { after: Some(Duration::from_secs(1)), why },
        (_, Some(500..=599)) => Performed::Again { after: None, why },
        _ => Performed::Failed(why),
    }
}

/// Calls the endpoint an act needs.
pub(super) async fn perform(client: &Client, act: &Act) -> Result<Option<String>, Performed> {
    // Whether the bot is in the room is the homeserver's to say: it refuses otherwise.
    let in_room = |id: &str| room_id(id).ok_or_else(|| Performed::Failed(format!("`{id}` is not a room id")));
    match act {
        Act::Contract(Action::Redact(a)) => {
            use matrix_sdk::ruma::api::client::redact::redact_event;
            let event = <&EventId>::try_from(a.event_id.as_str()).map_err(|e| Performed::Failed(e.to_string()))?;
            let room = in_room(&a.room_id)?;
            let mut request = redact_event::v3::Request::new(room, event.to_owned(), redaction_txn(&a.room_id, event));
            request.reason = Some(a.reason.clone()).filter(|r| !r.is_empty());
            client.send(request).with_request_config(one_try()).await.map_err(again_or_failed)?;
        }
        Act::Contract(action @ (Action::Ban(a) | Action::Kick(a) | Action::Unban(a))) => {
            use matrix_sdk::ruma::api::client::membership::{ban_user, kick_user, unban_user};
            let user = <&UserId>::try_from(a.user_id.as_str()).map_err(|e| Performed::Failed(e.to_string()))?;
            let room = in_room(&a.room_id)?;
            // An empty reason (a moderator gave none) is left out.
            let reason = Some(a.reason.clone()).filter(|r| !r.is_empty());
            let (user, config) = (user.to_owned(), one_try());
            match action {
                Action::Ban(_) => {
                    let mut request = ban_user::v3::Request::new(room, user);
                    request.reason = reason;
                    client.send(request).with_request_config(config).await.map(drop)
                }
                Action::Kick(_) => {
                    let mut request = kick_user::v3::Request::new(room, user);
                    request.reason = reason;
                    client.send(request).with_request_config(config).await.map(drop)
                }
                _ => {
                    let mut request = unban_user::v3::Request::new(room, user);
                    request.reason = reason;
                    client.send(request).with_request_config(config).await.map(drop)
                }
            }
            .map_err(again_or_failed)?;
        }
        Act::Contract(Action::SendNotice(a)) => {
            let content = json!({"msgtype": "m.notice", "body": a.body});
            crate::bot::raw::send_raw(client, in_room(&a.room_id)?.as_str(), "m.room.message", &content)
                .await
                .map_err(|e| Performed::Failed(format!("{e:#}")))?;
        }
        Act::Contract(Action::NotifyManagement(a)) => return Err(Performed::Notice(a.body.clone())),
        Act::Contract(Action::SuspendUser(a)) => {
            let path = format!("/_synapse/admin/v1/suspend/{}", urlencode(&a.user_id));
            admin(client, reqwest_method::PUT, &path, Some(json!({"suspend": true})))
                .await
                .map_err(|e| Performed::Failed(e.to_string()))?;
        }
        Act::Contract(Action::DeleteUserMedia(a)) => {
            let path = format!("/_synapse/admin/v1/users/{}/media", urlencode(&a.user_id));
            admin(client, reqwest_method::DELETE, &path, None).await.map_err(|e| Performed::Failed(e.to_string()))?;
        }
        Act::Contract(Action::SetJoinRule(a)) => {
            match a.rule {
                JoinRule::Restricted => {
                    return Err(Performed::Unsupported(
                        "set-join-rule restricted (it needs the rooms whose members may join)",
                    ));
                }
                JoinRule::Private => {
                    return Err(Performed::Unsupported("set-join-rule private (reserved by the spec)"));
                }
                JoinRule::Public | JoinRule::Invite | JoinRule::Knock => {}
            }
            let content = json!({"join_rule": json::join_rule(a.rule)});
            send_state(client, in_room(&a.room_id)?, "m.room.join_rules", "", &content).await?;
        }
        Act::Contract(Action::SetPowerLevel(_)) => return Err(Performed::Unsupported("set-power-level")),
        Act::Contract(Action::AddPolicyRule(_) | Action::RemovePolicyRule(_)) => {
            return Err(Performed::Unsupported("policy rule edits"));
        }
        Act::Contract(Action::DeactivateUser(_)) => return Err(Performed::Unsupported("deactivate-user")),
        Act::Contract(Action::Invite(a)) => {
            let user = <&UserId>::try_from(a.user_id.as_str()).map_err(|e| Performed::Failed(e.to_string()))?;
            use matrix_sdk::ruma::api::client::membership::invite_user::v3::{InviteUserId, Request};
            let request = Request::new(in_room(&a.room_id)?, InviteUserId::new(user.to_owned()).into());
            client.send(request).await.map_err(|e| Performed::Failed(e.to_string()))?;
        }
        // Turned into a `set-join-rule` by `Executor::act`.
        Act::Contract(Action::RestoreJoinRule(_)) => return Err(Performed::Unsupported("restore-join-rule")),
        Act::Contract(Action::BlockRoom(a)) => {
            let path = format!("/_synapse/admin/v1/rooms/{}/block", urlencode(&a.room_id));
            admin(client, reqwest_method::PUT, &path, Some(json!({"block": true})))
                .await
                .map_err(|e| Performed::Failed(e.to_string()))?;
        }
        Act::Contract(Action::PurgeRoom(a)) => return take_down(client, &a.room_id, &a.reason).await.map(Some),
        Act::ServerAcl { room, content } => {
            send_state(client, in_room(room)?, "m.room.server_acl", "", content).await?;
        }
        Act::WriteRule { list, event_type, state_key, content } => {
            send_state(client, in_room(list)?, event_type, state_key, content).await?;
        }
        Act::TakeDownRoom { room, reason } => return take_down(client, room, reason).await.map(Some),
    }
    Ok(None)
}

/// The transaction id of the redaction of `event`: the same every time it
/// is sent (a retry after a lost answer, a restart of the bot, whose session
/// and so device are kept), so that a homeserver that carried out the first
/// request answers the next with it instead of redacting again. (Synapse
/// keeps the ids of a device's transactions for a day, across its own restarts.)
fn redaction_txn(room: &str, event: &EventId) -> matrix_sdk::ruma::OwnedTransactionId {
    let hash = gleipnir_policy::rule::sha256(&format!("{room}\n{event}"));
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("gleipnir-redact-{hex}").into()
}

/// Sends a state event.
async fn send_state(
    client: &Client,
    room: matrix_sdk::ruma::OwnedRoomId,
    event_type: &str,
    state_key: &str,
    content: &serde_json::Value,
) -> Result<(), Performed> {
    use matrix_sdk::ruma::api::client::state::send_state_event;
    use matrix_sdk::ruma::serde::Raw;
    let failed = |e: &dyn std::fmt::Display| Performed::Failed(e.to_string());
    let content = Raw::from_json(serde_json::value::to_raw_value(content).map_err(|e| failed(&e))?);
    let request = send_state_event::v3::Request::new_raw(room, event_type.into(), state_key.to_owned(), content);
    client.send(request).await.map(drop).map_err(|e| failed(&e))
}

/// Blocks a room on this homeserver, then purges it; says how far it got.
async fn take_down(client: &Client, room: &str, reason: &str) -> Result<String, Performed> {
    let encoded = urlencode(room);
    let path = format!("/_synapse/admin/v1/rooms/{encoded}/block");
    admin(client, reqwest_method::PUT, &path, Some(json!({"block": true})))
        .await
        .map_err(|e| Performed::Failed(format!("blocking failed: {e}")))?;
    let message = if reason.is_empty() { "This room was taken down.".to_owned() } else { reason.to_owned() };
    let purge = json!({"block": true, "purge": true, "message": message});
    let path = format!("/_synapse/admin/v2/rooms/{encoded}");
    Ok(match admin(client, reqwest_method::DELETE, &path, Some(purge)).await {
        Ok(reply) => {
            let id = reply.get("delete_id").and_then(|d| d.as_str()).unwrap_or("?");
            format!("blocked, and its purge started (delete id {id})")
        }
        // A room this homeserver never joined has nothing to purge; the block stands.
        Err(AdminError::Status { status: 400 | 404, .. }) => {
            "blocked (this homeserver holds nothing of it to purge)".to_owned()
        }
        Err(e) => format!("blocked, but the purge failed: {e}"),
    })
}

/// The sender of an event, asked of the homeserver.
pub(super) async fn sender_of(client: &Client, room: &str, event: &str) -> Option<String> {
    use matrix_sdk::ruma::api::client::room::get_room_event;
    let request = get_room_event::v3::Request::new(room_id(room)?, <&EventId>::try_from(event).ok()?.to_owned());
    let response = client.send(request).await.ok()?;
    response.event.get_field::<String>("sender").ok().flatten()
}

fn room_id(id: &str) -> Option<matrix_sdk::ruma::OwnedRoomId> {
    <&RoomId>::try_from(id).ok().map(ToOwned::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redaction_has_the_same_transaction_id_every_time_it_is_sent() {
        let (one, other) = (<&EventId>::try_from("$one").unwrap(), <&EventId>::try_from("$other").unwrap());
        assert_eq!(redaction_txn("!r:x", one), redaction_txn("!r:x", one));
        assert_ne!(redaction_txn("!r:x", one), redaction_txn("!r:x", other));
        assert_ne!(redaction_txn("!r:x", one), redaction_txn("!s:x", one));
        let txn = redaction_txn("!r:x", one);
        assert!(txn.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'), "{txn}");
    }
}
