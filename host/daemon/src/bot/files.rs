//! What the bot keeps in its data folder: the sync token, the kept login
//! session, message counts; the folders it may touch, opened once at start.

use std::path::{Path, PathBuf};

use anyhow::Context;
use gleipnir_runtime::Folder;

/// The sync token, kept in the data directory between runs.
pub(crate) struct SyncToken {
    data: Folder,
}

const SYNC_TOKEN: &str = "sync_token";

impl SyncToken {
    pub(crate) fn new(data: &Folder) -> SyncToken {
        SyncToken { data: data.clone() }
    }

    /// The stored token; `None` only when there is none (a first start). A
    /// token file that cannot be read is an error: taking it for a first
    /// start would skip everything since the last run.
    pub(crate) fn load(&self) -> anyhow::Result<Option<String>> {
        match self.data.read_to_string(SYNC_TOKEN) {
            Ok(text) => Ok(Some(text.trim().to_owned()).filter(|s| !s.is_empty())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => {
                Err(e).with_context(|| format!("cannot read the sync token {}", self.data.shown(SYNC_TOKEN).display()))
            }
        }
    }

    /// Written durably: a crash leaves the old token or the new one.
    pub(crate) fn save(&self, token: &str) -> anyhow::Result<()> {
        self.data.write_durably(SYNC_TOKEN, token.as_bytes(), false).context("cannot save the sync token")
    }

    /// When the token was last saved: about when the previous run stopped
    /// handling events (it saves after every sync).
    pub(crate) fn saved_at_ms(&self) -> Option<u64> {
        let modified = self.data.metadata(SYNC_TOKEN).and_then(|m| m.modified()).ok()?.into_std();
        modified.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_millis() as u64)
    }
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

/// Where the kept login session lives (`session.json`, private).
pub(crate) struct SessionFile {
    data: Folder,
}

const SESSION: &str = "session.json";

impl SessionFile {
    pub(crate) fn new(data: &Folder) -> SessionFile {
        SessionFile { data: data.clone() }
    }

    /// The kept session; none when there is none or it cannot be read (then
    /// the bot logs in with its password again).
    pub(crate) fn load(&self) -> Option<KeptSession> {
        let text = self.data.read_to_string(SESSION).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Written durably and readable by the bot's user alone: it holds a token.
    pub(crate) fn save(&self, session: &KeptSession) -> anyhow::Result<()> {
        let text = serde_json::to_string(session)?;
        Ok(self.data.write_durably(SESSION, text.as_bytes(), true)?)
    }
}

/// The file the message counts (for least-authority gating) are kept in.
pub(crate) const COUNTS: &str = "message-counts.json";

/// Renames a damaged file in `data` to `aside` and says where it went (or
/// why it could not be moved): it is kept for the operator, never read again.
pub(crate) fn set_aside(data: &Folder, name: &str, aside: &str) -> String {
    data.rename(name, aside).map_or_else(
        |e| format!("it could not be moved aside: {e}"),
        |()| format!("kept as {}", data.shown(aside).display()),
    )
}

/// The folders the bot reads and writes, each opened once at start from the
/// config; every file it touches while running is a plain name in one of
/// them (see `gleipnir_runtime::Folder`).
#[derive(Clone, Debug)]
pub(crate) struct Folders {
    /// `storage.data_dir`: tokens, journal, counts, kept state, the
    /// compiled-component cache (`components/`).
    pub(crate) data: Folder,
    /// `plugins.dir`.
    pub(crate) plugins: Folder,
    /// `plugins.settings`, when set.
    pub(crate) settings: Option<FileIn>,
}

impl Folders {
    pub(crate) fn open(config: &crate::config::Config) -> anyhow::Result<Folders> {
        let data = Folder::create(&config.data_dir).context("storage.data_dir")?;
        // What writes cut short by a crash left behind (the files themselves
        // are whole: a write lands by rename or not at all).
        let inside = ["components", "protection-state"].map(|name| data.child(name, false).ok());
        for folder in std::iter::once(Some(data.clone())).chain(inside).flatten() {
            if let Ok(n @ 1..) = folder.sweep_temporaries() {
                tracing::info!(folder = %folder.path().display(), "removed {n} temporary file(s) of interrupted writes");
            }
        }
        let plugins = Folder::open(&config.plugin_dir).context("plugins.dir")?;
        let settings = match &config.settings_file {
            Some(file) => Some(FileIn::open(file).context("plugins.settings")?),
            None => None,
        };
        Ok(Folders { data, plugins, settings })
    }
}

/// One file the operator named: its folder, opened once, and its name there.
#[derive(Clone, Debug)]
pub(crate) struct FileIn {
    pub(crate) folder: Folder,
    pub(crate) name: String,
}

impl FileIn {
    pub(crate) fn open(file: &Path) -> std::io::Result<FileIn> {
        let (folder, name) = Folder::of_file(file)?;
        Ok(FileIn { folder, name })
    }

    /// The file's path, for messages.
    pub(crate) fn shown(&self) -> PathBuf {
        self.folder.shown(&self.name)
    }

    /// The file's text; `None` when there is no such file.
    pub(crate) fn text(&self) -> std::io::Result<Option<String>> {
        match self.folder.read_to_string(&self.name) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}
