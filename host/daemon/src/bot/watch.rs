//! Watching the operator's plugin folder (and settings file), the daemon's
//! part of live swap: a `.wasm` that appears
//! or changes is compiled on this module's own thread, never on the event
//! path, once the file has stopped changing (a file still being copied is
//! not read half-way); the result is handed over as a [`Change`]. Whoever
//! owns the running instances (`live`) swaps them in between two events;
//! the runtime only compiles.
//!
//! Files whose name starts with `.` are ignored: that is how a temporary
//! file is written beside the folder's components and renamed into place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use notify::Watcher as _;

use gleipnir_runtime::{Folder, LoadError, Plugin, Runtime};

/// What the watcher saw, once settled.
#[derive(Debug)]
pub(crate) enum Change {
    /// A component file appeared or its content changed (or a reload was
    /// asked for): compiled and checked, or why it could not be.
    Compiled {
        path: PathBuf,
        /// sha256 of the file, hex.
        hash: String,
        result: Result<Plugin, LoadError>,
        /// Reading, compiling and checking the file.
        took: Duration,
        /// When the file was last seen changing (or the reload asked for).
        written: Instant,
    },
    /// A component file was removed (or renamed away).
    Removed { path: PathBuf },
    /// The settings file changed, appeared or vanished.
    Settings,
    /// The folder cannot be watched any more.
    Failed(String),
}

enum Message {
    Notify(notify::Result<notify::Event>),
    Reload(PathBuf),
}

/// A running watcher; dropping it stops it.
pub(crate) struct Watcher {
    _inner: notify::RecommendedWatcher,
    messages: mpsc::Sender<Message>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").finish_non_exhaustive()
    }
}

/// How the watcher is set up.
#[derive(Debug, Clone)]
pub(crate) struct WatchConfig {
    /// The plugin folder, opened once at start: components are read through it.
    pub(crate) plugins: Folder,
    /// Only watched: whoever receives [`Change::Settings`] reads it.
    pub(crate) settings_file: Option<PathBuf>,
    /// A file is read once it has not changed for this long.
    pub(crate) settle: Duration,
    /// The hashes of the component files already loaded, by path: a write
    /// that leaves the content as it was changes nothing.
    pub(crate) known: BTreeMap<PathBuf, String>,
    /// The limits each component is loaded under, by file name.
    pub(crate) limits: crate::config::PluginLimits,
}

impl Watcher {
    /// Starts watching; `sink` receives every [`Change`], from the watcher's thread.
    pub(crate) fn start(
        runtime: Arc<Runtime>,
        config: WatchConfig,
        sink: impl Fn(Change) + Send + 'static,
    ) -> Result<Watcher, String> {
        let (messages, inbox) = mpsc::channel();
        let tx = messages.clone();
        let mut inner = notify::recommended_watcher(move |event| {
            let _ = tx.send(Message::Notify(event));
        })
        .map_err(|e| format!("cannot start watching files: {e}"))?;
        let plugin_dir = config.plugins.path();
        inner
            .watch(plugin_dir, notify::RecursiveMode::NonRecursive)
            .map_err(|e| format!("cannot watch {}: {e}", plugin_dir.display()))?;
        if let Some(file) = &config.settings_file {
            let dir = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            if dir != plugin_dir {
                inner
                    .watch(dir, notify::RecursiveMode::NonRecursive)
                    .map_err(|e| format!("cannot watch {} (for {}): {e}", dir.display(), file.display()))?;
            }
        }
        std::thread::Builder::new()
            .name("plugin-watcher".into())
            .spawn(move || Loop::new(runtime, config).run(inbox, sink))
            .map_err(|e| format!("cannot start the watcher thread: {e}"))?;
        Ok(Watcher { _inner: inner, messages })
    }

    /// Compiles a component file now, even when its content is unchanged.
    pub(crate) fn reload(&self, path: PathBuf) {
        let _ = self.messages.send(Message::Reload(path));
    }
}

/// The file's size and modification time: unchanged between two looks a
/// settle period apart means the writer is done.
type Stamp = Option<(u64, Option<SystemTime>)>;

fn stamp(folder: &Folder, name: &str) -> Stamp {
    folder.metadata(name).ok().map(|m| (m.len(), m.modified().ok().map(|t| t.into_std())))
}

struct Pending {
    /// When the last change was seen.
    last: Instant,
    /// When the first change of this burst was seen.
    first: Instant,
    stamp: Stamp,
}

struct Loop {
    runtime: Arc<Runtime>,
    config: WatchConfig,
    /// The plugin folder's path made absolute, as notify reports paths.
    plugin_dir: PathBuf,
    settings_file: Option<PathBuf>,
    pending: BTreeMap<PathBuf, Pending>,
}

impl Loop {
    fn new(runtime: Arc<Runtime>, config: WatchConfig) -> Loop {
        // Paths from notify are absolute when the watched folder is; compare like with like.
        let settings_file = config.settings_file.as_ref().map(|f| absolute(f));
        let mut config = config;
        config.known = std::mem::take(&mut config.known).into_iter().map(|(p, h)| (absolute(&p), h)).collect();
        let plugin_dir = absolute(config.plugins.path());
        Loop { runtime, config, plugin_dir, settings_file, pending: BTreeMap::new() }
    }

    /// The name in the plugin folder of a component file's path.
    fn name_in_folder<'p>(&self, path: &'p Path) -> Option<&'p str> {
        let name = path.file_name()?.to_str()?;
        (path.parent() == Some(self.plugin_dir.as_path())).then_some(name)
    }

    fn stamp(&self, path: &Path) -> Stamp {
        match self.name_in_folder(path) {
            Some(name) => stamp(&self.config.plugins, name),
            // The settings file: only notified, never read here.
            None => std::fs::metadata(path).ok().map(|m| (m.len(), m.modified().ok())),
        }
    }

    fn run(mut self, inbox: mpsc::Receiver<Message>, sink: impl Fn(Change)) {
        let tick = (self.config.settle / 4).clamp(Duration::from_millis(10), Duration::from_millis(100));
        loop {
            match inbox.recv_timeout(tick) {
                Ok(Message::Notify(Ok(event))) => {
                    let now = Instant::now();
                    for path in event.paths {
                        let path = absolute(&path);
                        if self.relevant(&path) {
                            let stamp = self.stamp(&path);
                            let entry = self.pending.entry(path).or_insert(Pending { last: now, first: now, stamp });
                            entry.last = now;
                            entry.stamp = stamp;
                        }
                    }
                }
                Ok(Message::Notify(Err(e))) => sink(Change::Failed(format!("watching files failed: {e}"))),
                Ok(Message::Reload(path)) => {
                    let path = absolute(&path);
                    self.pending.remove(&path);
                    sink(self.compile(path, Instant::now()));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            for change in self.settled() {
                sink(change);
            }
        }
    }

    fn relevant(&self, path: &Path) -> bool {
        if self.settings_file.as_deref() == Some(path) {
            return true;
        }
        let hidden = path.file_name().and_then(|n| n.to_str()).is_none_or(|n| n.starts_with('.'));
        path.parent() == Some(self.plugin_dir.as_path()) && !hidden && path.extension().is_some_and(|e| e == "wasm")
    }

    /// The changes of the files that have been quiet for the settle period
    /// and whose size and time did not move since the last look.
    fn settled(&mut self) -> Vec<Change> {
        let now = Instant::now();
        let settle = self.config.settle;
        let mut ready = Vec::new();
        let quiet: Vec<PathBuf> = self
            .pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.last) >= settle)
            .map(|(path, _)| path.clone())
            .collect();
        for path in quiet {
            // Size or time moved since the last event: still being written.
            let current = self.stamp(&path);
            let Some(pending) = self.pending.get_mut(&path) else { continue };
            if pending.stamp != current {
                pending.stamp = current;
                pending.last = now;
                continue;
            }
            ready.push((path, pending.first));
        }
        let mut changes = Vec::new();
        for (path, first) in ready {
            self.pending.remove(&path);
            if self.settings_file.as_deref() == Some(path.as_path()) {
                changes.push(Change::Settings);
            } else if !self.name_in_folder(&path).is_some_and(|name| self.config.plugins.exists(name)) {
                if self.config.known.remove(&path).is_some() {
                    changes.push(Change::Removed { path });
                }
            } else if let Some(change) = self.changed(path, first) {
                changes.push(change);
            }
        }
        changes
    }

    /// Compiles a file whose content is not the one already known.
    fn changed(&mut self, path: PathBuf, written: Instant) -> Option<Change> {
        let bytes = self.config.plugins.read(self.name_in_folder(&path)?).ok()?;
        let hash = gleipnir_runtime::content_hash(&bytes);
        if self.config.known.get(&path) == Some(&hash) {
            return None;
        }
        Some(self.compile_bytes(path, &bytes, hash, written))
    }

    fn compile(&mut self, path: PathBuf, written: Instant) -> Change {
        let read = match self.name_in_folder(&path) {
            Some(name) => self.config.plugins.read(name),
            None => Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file in the plugin folder")),
        };
        match read {
            Ok(bytes) => {
                let hash = gleipnir_runtime::content_hash(&bytes);
                self.compile_bytes(path, &bytes, hash, written)
            }
            Err(e) => {
                let result = Err(LoadError::Read { path: path.clone(), error: e });
                Change::Compiled { path, hash: String::new(), result, took: Duration::ZERO, written }
            }
        }
    }

    fn compile_bytes(&mut self, path: PathBuf, bytes: &[u8], hash: String, written: Instant) -> Change {
        let start = Instant::now();
        let file = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let result = self.runtime.load_bytes_with(bytes, self.config.limits.for_file(file));
        let took = start.elapsed();
        // Known by content either way: touching a broken file again does not report it again.
        self.config.known.insert(path.clone(), hash.clone());
        Change::Compiled { path, hash, result, took, written }
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The watcher compiles a changed file once it has settled, skips a
    /// write that leaves the content as it was, and reports removals.
    #[test]
    fn the_watcher_reports_settled_changes() {
        let dir = std::env::temp_dir().join(format!("gleipnir-watch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("counter.wasm");
        let (tx, rx) = std::sync::mpsc::channel();
        let config = WatchConfig {
            plugins: gleipnir_runtime::Folder::open(&dir).unwrap(),
            settings_file: Some(dir.join("settings.toml")),
            settle: std::time::Duration::from_millis(100),
            known: Default::default(),
            limits: Default::default(),
        };
        let _watcher = Watcher::start(gleipnir_tests::runtime(), config, move |c| tx.send(c).unwrap()).unwrap();
        let wait = || rx.recv_timeout(std::time::Duration::from_secs(20)).expect("a change");
        std::fs::write(&file, std::fs::read(gleipnir_tests::plugins::COUNTER).unwrap()).unwrap();
        match wait() {
            Change::Compiled { result: Ok(p), .. } => assert_eq!(p.descriptor().version, "1.0.0"),
            other => panic!("{other:?}"),
        }
        // Same bytes again (a touch): nothing. Then new bytes: compiled.
        std::fs::write(&file, std::fs::read(gleipnir_tests::plugins::COUNTER).unwrap()).unwrap();
        std::fs::write(dir.join(".counter.wasm.tmp"), b"ignored").unwrap();
        std::fs::write(&file, std::fs::read(gleipnir_tests::plugins::COUNTER_NEXT).unwrap()).unwrap();
        match wait() {
            Change::Compiled { result: Ok(p), .. } => assert_eq!(p.descriptor().version, "2.0.0"),
            other => panic!("{other:?}"),
        }
        std::fs::write(&file, b"not wasm").unwrap();
        assert!(matches!(wait(), Change::Compiled { result: Err(_), .. }));
        std::fs::write(dir.join("settings.toml"), "[counter]\n").unwrap();
        assert!(matches!(wait(), Change::Settings));
        std::fs::remove_file(&file).unwrap();
        assert!(matches!(wait(), Change::Removed { .. }));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The watcher reads what appears in the folder through the folder too.
    #[test]
    fn the_watcher_does_not_follow_a_link_out_of_the_plugin_folder() {
        let root = std::env::temp_dir().join(format!("gleipnir-watch-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let inside = root.join("inside");
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::copy(gleipnir_tests::plugins::NOOP, root.join("outside.wasm")).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let config = WatchConfig {
            plugins: Folder::open(&inside).unwrap(),
            settings_file: None,
            settle: std::time::Duration::from_millis(100),
            known: Default::default(),
            limits: Default::default(),
        };
        let _watcher = Watcher::start(gleipnir_tests::runtime(), config, move |c| tx.send(c).unwrap()).unwrap();
        std::os::unix::fs::symlink(root.join("outside.wasm"), inside.join("linked.wasm")).unwrap();
        // No change is a pass as well as a refusal; a loaded plugin is not.
        if let Ok(change) = rx.recv_timeout(std::time::Duration::from_secs(3)) {
            match change {
                Change::Compiled { result: Err(gleipnir_runtime::LoadError::Read { .. }), .. } => {}
                other => panic!("a link out of the folder was followed: {other:?}"),
            }
        }
        std::fs::remove_dir_all(&root).unwrap();
    }
}
