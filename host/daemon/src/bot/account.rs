//! What the bot keeps in its account: Draupnir/Mjolnir-compatible account
//! data (protected rooms, enabled protections, watched lists) and its own
//! (settings, grants).

use anyhow::Context;
use matrix_sdk::Client;
use matrix_sdk::ruma::api::client::config::{get_global_account_data, set_global_account_data};
use matrix_sdk::ruma::events::GlobalAccountDataEventType;
use matrix_sdk::ruma::serde::Raw;
use serde_json::{Value, json};

pub(crate) const PROTECTED_ROOMS: &str = "org.matrix.mjolnir.protected_rooms";
pub(crate) const ENABLED_PROTECTIONS: &str = "org.matrix.mjolnir.enabled_protections";
/// Settings moderators set, per protection.
pub(crate) const SETTINGS: &str = crate::state::PROTECTION_SETTINGS;

/// Reads a global account data event's content; `None` when it was never set.
pub(crate) async fn read(client: &Client, event_type: &str) -> anyhow::Result<Option<Value>> {
    let user = client.user_id().context("not logged in")?.to_owned();
    let request = get_global_account_data::v3::Request::new(user, GlobalAccountDataEventType::from(event_type));
    match client.send(request).await {
        Ok(response) => {
            let value: Value =
                response.account_data.deserialize_as().with_context(|| format!("{event_type} is not JSON"))?;
            Ok(Some(value))
        }
        Err(e) if e.client_api_error_kind() == Some(&matrix_sdk::ruma::api::error::ErrorKind::NotFound) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read account data {event_type}")),
    }
}

pub(crate) async fn write(client: &Client, event_type: &str, content: Value) -> anyhow::Result<()> {
    let user = client.user_id().context("not logged in")?.to_owned();
    let raw = Raw::new(&content)?.cast_unchecked();
    let request =
        set_global_account_data::v3::Request::new_raw(user, GlobalAccountDataEventType::from(event_type), raw);
    client.send(request).await.with_context(|| format!("cannot write account data {event_type}"))?;
    Ok(())
}

pub(crate) fn enabled_content(names: &[String]) -> Value {
    json!({ "enabled": names })
}
