//! Each enabled protection's own state (what its `snapshot` returns), kept
//! in `data_dir/protection-state/NAME`, so that a restart or a crash does
//! not wipe what a protection knew: a flood counted half before a crash is
//! still a flood after it. Written before the actions of a sync are carried
//! out (with the journal) and every few seconds otherwise; given back with
//! `restore` when the protection starts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often state is written when nothing was acted on.
const EVERY: Duration = Duration::from_secs(2);

pub(crate) struct KeptState {
    dir: PathBuf,
    /// What was last written per protection, to skip unchanged writes.
    written: HashMap<String, u64>,
    last: Instant,
}

impl KeptState {
    pub(crate) fn new(data_dir: &Path) -> KeptState {
        KeptState { dir: data_dir.join("protection-state"), written: HashMap::new(), last: Instant::now() }
    }

    /// Whether it is time to write again (`acted`: actions are about to be carried out).
    pub(crate) fn due(&self, acted: bool) -> bool {
        acted || self.last.elapsed() >= EVERY
    }

    /// Writes `name`'s state if it changed since the last write.
    pub(crate) fn save(&mut self, name: &str, state: &[u8]) -> anyhow::Result<()> {
        self.last = Instant::now();
        let digest = fingerprint(state);
        if self.written.get(name) == Some(&digest) {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir)?;
        super::store::write_durably(&self.path(name), state)?;
        self.written.insert(name.to_owned(), digest);
        Ok(())
    }

    /// The state kept for `name`, if any.
    pub(crate) fn load(&mut self, name: &str) -> Option<Vec<u8>> {
        let bytes = std::fs::read(self.path(name)).ok()?;
        self.written.insert(name.to_owned(), fingerprint(&bytes));
        Some(bytes)
    }

    /// Protection names are kebab-case (checked when a plugin loads), so
    /// they are safe file names.
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn fingerprint(bytes: &[u8]) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_comes_back_and_unchanged_state_is_not_rewritten() {
        let dir = std::env::temp_dir().join(format!("gleipnir-kept-{}", std::process::id()));
        let mut kept = KeptState::new(&dir);
        assert!(kept.load("flooding").is_none());
        kept.save("flooding", b"state one").unwrap();
        let path = dir.join("protection-state/flooding");
        let written = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        kept.save("flooding", b"state one").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), written, "unchanged: not written");
        kept.save("flooding", b"state two").unwrap();
        assert_eq!(KeptState::new(&dir).load("flooding").as_deref(), Some(&b"state two"[..]));
        assert!(kept.due(true));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
