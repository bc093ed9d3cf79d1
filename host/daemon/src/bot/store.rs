//! What the bot keeps: Draupnir/Mjolnir-compatible account data (protected
//! rooms, enabled protections) and the sync token in the data directory.

use std::path::{Path, PathBuf};

use anyhow::Context;
use matrix_sdk::Client;
use matrix_sdk::ruma::api::client::config::{get_global_account_data, set_global_account_data};
use matrix_sdk::ruma::events::GlobalAccountDataEventType;
use matrix_sdk::ruma::serde::Raw;
use serde_json::{Value, json};

pub(crate) const PROTECTED_ROOMS: &str = "org.matrix.mjolnir.protected_rooms";
pub(crate) const ENABLED_PROTECTIONS: &str = "org.matrix.mjolnir.enabled_protections";

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

pub(crate) fn rooms_content(rooms: &[String]) -> Value {
    json!({ "rooms": rooms })
}

pub(crate) fn enabled_content(names: &[String]) -> Value {
    json!({ "enabled": names })
}

/// The sync token, kept in the data directory between runs.
pub(crate) struct SyncToken {
    path: PathBuf,
}

impl SyncToken {
    pub(crate) fn new(data_dir: &Path) -> anyhow::Result<SyncToken> {
        std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
        Ok(SyncToken { path: data_dir.join("sync_token") })
    }

    pub(crate) fn load(&self) -> Option<String> {
        std::fs::read_to_string(&self.path).ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
    }

    /// Written atomically: a crash leaves the old token or the new one.
    pub(crate) fn save(&self, token: &str) -> anyhow::Result<()> {
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, token)
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .context("cannot save the sync token")
    }
}

/// Writes `text` to `path` atomically: a crash leaves the old file or the new one.
pub(crate) fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Where the message counts (for least-authority gating) are kept.
pub(crate) fn counts_path(data_dir: &Path) -> PathBuf {
    data_dir.join("message-counts.json")
}
