//! Who may command the bot. The management room is pinned by its id once
//! resolved (whoever can re-point an alias must not thereby own the bot), it
//! must not be a room anyone can join, and only members with at least
//! `commands.min_power_level` there may give commands or confirm previews.

use anyhow::{Context, bail};
use gleipnir_runtime::Folder;
use matrix_sdk::Client;
use matrix_sdk::ruma::{OwnedRoomAliasId, OwnedRoomId, RoomAliasId};

/// Join rules that let anyone in (or ask in) without a moderator: a
/// management room with one of these is refused.
const OPEN_JOIN_RULES: [&str; 3] = ["public", "knock", "knock_restricted"];

/// The management room's id: the one pinned in the data directory when the
/// configured alias was first resolved, or the configured id. A warning is
/// returned when the alias now points elsewhere (it is not followed).
pub(crate) async fn pinned_room(
    client: &Client,
    configured: &str,
    data: &Folder,
) -> anyhow::Result<(OwnedRoomId, Option<String>)> {
    let pin = data.shown(PIN);
    // Only "never pinned" is no pin: a pin that cannot be read must not let the alias decide.
    let pinned = match data.read_to_string(PIN) {
        Ok(text) => Some(OwnedRoomId::try_from(text.trim()).map_err(|e| {
            anyhow::anyhow!(
                "{} does not hold a room id ({e}); fix it or delete it to pin the room again",
                pin.display()
            )
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => bail!("cannot read {} ({e}), which pins the management room", pin.display()),
    };
    let Ok(alias) = <&RoomAliasId>::try_from(configured) else {
        // An id in the config is the operator's explicit choice: it wins over any pin.
        let id = super::matrix::join(client, configured).await?;
        write_pin(data, &id)?;
        return Ok((id, None));
    };
    let resolved = client.resolve_room_alias(alias).await.map(|r| r.room_id);
    match (pinned, resolved) {
        (Some(pinned), Ok(now)) if pinned != now => {
            super::matrix::join(client, pinned.as_str()).await?;
            let warning = format!(
                "The alias {alias} now points to {now}, not to this management room ({pinned}). I keep \
                 using this room: a moved alias is not followed. If the move was meant, put the new room's \
                 id in `matrix.management_room`."
            );
            Ok((pinned, Some(warning)))
        }
        (Some(pinned), _) => {
            super::matrix::join(client, pinned.as_str()).await?;
            Ok((pinned, None))
        }
        (None, Ok(now)) => {
            let id = super::matrix::join(client, now.as_str()).await?;
            write_pin(data, &id)?;
            Ok((id, None))
        }
        (None, Err(e)) => Err(e).with_context(|| format!("cannot resolve {}", OwnedRoomAliasId::from(alias))),
    }
}

/// The file in the data folder that pins the management room's id.
const PIN: &str = "management_room";

fn write_pin(data: &Folder, id: &OwnedRoomId) -> anyhow::Result<()> {
    if data.read_to_string(PIN).is_ok_and(|text| text.trim() == id.as_str()) {
        return Ok(());
    }
    Ok(data.write_durably(PIN, id.as_str().as_bytes(), false)?)
}

/// The management room's join rule, asked of the homeserver.
pub(crate) async fn join_rule(client: &Client, room: &OwnedRoomId) -> anyhow::Result<String> {
    use matrix_sdk::ruma::api::client::state::get_state_event_for_key;
    use matrix_sdk::ruma::events::StateEventType;
    let request = get_state_event_for_key::v3::Request::new(room.clone(), StateEventType::RoomJoinRules, String::new());
    let response = client.send(request).await.context("cannot read the management room's join rule")?;
    let content: serde_json::Value =
        serde_json::from_str(response.event_or_content.get()).context("the management room's join rule is not JSON")?;
    Ok(content.get("join_rule").and_then(|r| r.as_str()).unwrap_or("invite").to_owned())
}

/// Whether the management room is encrypted (has `m.room.encryption`), asked
/// of the homeserver.
pub(crate) async fn encrypted(client: &Client, room: &OwnedRoomId) -> anyhow::Result<bool> {
    use matrix_sdk::ruma::api::client::state::get_state_event_for_key;
    use matrix_sdk::ruma::api::error::ErrorKind;
    use matrix_sdk::ruma::events::StateEventType;
    let request =
        get_state_event_for_key::v3::Request::new(room.clone(), StateEventType::RoomEncryption, String::new());
    match client.send(request).await {
        Ok(_) => Ok(true),
        Err(e) if e.client_api_error_kind() == Some(&ErrorKind::NotFound) => Ok(false),
        Err(e) => Err(e).context("cannot read whether the management room is encrypted"),
    }
}

/// Refuses a join rule that lets anyone join.
pub(crate) fn check_join_rule(room: &str, rule: &str) -> anyhow::Result<()> {
    if is_open(rule) {
        bail!(
            "the management room {room} has the join rule `{rule}`, so anyone could join it and command the bot; \
             make it invite-only (or restricted to a space) and start again"
        );
    }
    Ok(())
}

pub(crate) fn is_open(rule: &str) -> bool {
    OPEN_JOIN_RULES.contains(&rule)
}

/// Why `sender` may not command the bot, if they may not.
pub(crate) fn refusal(power: i64, needed: i64) -> Option<String> {
    (power < needed).then(|| {
        format!(
            "Only members with power level {needed} or more in this room may give commands or confirm them \
             (you have {power}); the operator sets this with `commands.min_power_level`."
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_rooms_and_low_levels_are_refused() {
        for rule in ["public", "knock", "knock_restricted"] {
            let error = check_join_rule("!m:x", rule).unwrap_err().to_string();
            assert!(error.contains(&format!("join rule `{rule}`")), "{error}");
        }
        for rule in ["invite", "restricted", "private"] {
            assert!(check_join_rule("!m:x", rule).is_ok());
        }
        assert!(refusal(0, 50).unwrap().contains("power level 50 or more"));
        assert_eq!(refusal(50, 50), None);
        assert_eq!(refusal(0, 0), None, "min_power_level = 0: every member, as Draupnir");
    }
}
