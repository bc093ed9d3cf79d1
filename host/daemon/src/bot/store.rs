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

    /// The stored token; `None` only when there is none (a first start). A
    /// token file that cannot be read is an error: taking it for a first
    /// start would skip everything since the last run.
    pub(crate) fn load(&self) -> anyhow::Result<Option<String>> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Ok(Some(text.trim().to_owned()).filter(|s| !s.is_empty())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read the sync token {}", self.path.display())),
        }
    }

    /// Written durably: a crash leaves the old token or the new one.
    pub(crate) fn save(&self, token: &str) -> anyhow::Result<()> {
        write_durably(&self.path, token.as_bytes()).context("cannot save the sync token")
    }

    /// When the token was last saved: about when the previous run stopped
    /// handling events (it saves after every sync).
    pub(crate) fn saved_at_ms(&self) -> Option<u64> {
        let modified = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok()?;
        modified.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_millis() as u64)
    }
}

/// Writes `bytes` to `path` so that a crash or a power loss leaves either the
/// old file or the new one: a temporary file, synced, renamed over the old
/// one, and the directory synced so the rename itself is on disk.
pub(crate) fn write_durably(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_file(path, bytes, false)
}

/// [`write_durably`], with the file readable by its owner alone from the start.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_file(path, bytes, true)
}

fn write_file(path: &Path, bytes: &[u8], private: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if private {
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok::<(), std::io::Error>(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.with_context(|| format!("cannot write {}", path.display()))
}

/// The session a password login made (device and token), kept so the next
/// start reuses it instead of making a new device.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct KeptSession {
    pub(crate) user_id: String,
    pub(crate) device_id: String,
    pub(crate) access_token: String,
}

impl std::fmt::Debug for KeptSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptSession").field("user_id", &self.user_id).field("device_id", &self.device_id).finish()
    }
}

pub(crate) struct Session {
    path: PathBuf,
}

impl Session {
    pub(crate) fn new(data_dir: &Path) -> Session {
        Session { path: data_dir.join("session.json") }
    }

    /// The kept session; none when there is none or it cannot be read (then
    /// the bot logs in with its password again).
    pub(crate) fn load(&self) -> Option<KeptSession> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Written durably and readable by the bot's user alone: it holds a token.
    pub(crate) fn save(&self, session: &KeptSession) -> anyhow::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let text = serde_json::to_string(session)?;
        write_private(&self.path, text.as_bytes())
    }
}

/// Where the message counts (for least-authority gating) are kept.
pub(crate) fn counts_path(data_dir: &Path) -> PathBuf {
    data_dir.join("message-counts.json")
}
