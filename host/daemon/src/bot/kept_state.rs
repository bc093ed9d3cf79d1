//! Each enabled protection's own state (what its `snapshot` returns), kept
//! in `data_dir/protection-state/NAME`, so that a restart or a crash does
//! not wipe what a protection knew: a flood counted half before a crash is
//! still a flood after it. Written before the actions of a sync are carried
//! out (with the journal) and every few seconds otherwise; given back with
//! `restore` when the protection starts.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use gleipnir_runtime::Folder;

/// How often state is written when nothing was acted on.
const EVERY: Duration = Duration::from_secs(2);

pub(crate) struct KeptState {
    /// The data folder; `protection-state` in it is created on first write.
    data: Folder,
    dir: Option<Folder>,
    /// What was last written per protection, to skip unchanged writes.
    written: HashMap<String, u64>,
    last: Instant,
}

impl KeptState {
    pub(crate) fn new(data: &Folder) -> KeptState {
        KeptState { data: data.clone(), dir: None, written: HashMap::new(), last: Instant::now() }
    }

    fn dir(&mut self, create: bool) -> std::io::Result<Folder> {
        if let Some(dir) = &self.dir {
            return Ok(dir.clone());
        }
        let dir = self.data.child(DIR, create)?;
        self.dir = Some(dir.clone());
        Ok(dir)
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
        self.dir(true)?.write_durably(name, state, false)?;
        self.written.insert(name.to_owned(), digest);
        Ok(())
    }

    /// The state kept for `name`, if any.
    pub(crate) fn load(&mut self, name: &str) -> Option<Vec<u8>> {
        let bytes = self.dir(false).ok()?.read(name).ok()?;
        self.written.insert(name.to_owned(), fingerprint(&bytes));
        Some(bytes)
    }
}

/// The folder in the data folder; a protection's name (kebab-case, checked
/// when its plugin loads) is its file's name there.
const DIR: &str = "protection-state";

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
        std::fs::create_dir_all(&dir).unwrap();
        let data = Folder::open(&dir).unwrap();
        let mut kept = KeptState::new(&data);
        assert!(kept.load("flooding").is_none());
        kept.save("flooding", b"state one").unwrap();
        let path = dir.join("protection-state/flooding");
        let written = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        kept.save("flooding", b"state one").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), written, "unchanged: not written");
        kept.save("flooding", b"state two").unwrap();
        assert_eq!(KeptState::new(&data).load("flooding").as_deref(), Some(&b"state two"[..]));
        assert!(kept.due(true));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Protection names are checked when a plugin loads; the folder refuses
    /// a name that climbs out all the same.
    #[test]
    fn a_name_that_leaves_the_folder_is_refused() {
        let dir = std::env::temp_dir().join(format!("gleipnir-kept-out-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("secret"), "outside").unwrap();
        let mut kept = KeptState::new(&Folder::open(&dir).unwrap());
        assert!(kept.save("../escaped", b"x").is_err());
        assert!(kept.save("/tmp/escaped", b"x").is_err());
        assert!(!dir.join("escaped").exists() && !dir.parent().unwrap().join("escaped").exists());
        assert!(kept.load("../secret").is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
