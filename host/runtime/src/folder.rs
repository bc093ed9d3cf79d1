//! A folder the host was given, opened once, and every file in it reached by
//! a plain name through that one handle (`cap_std::fs::Dir`).
//!
//! The host reads and writes files only in folders its operator named in the
//! config (the data folder, the plugin folder, the folder of the settings
//! file or of a secret). Names inside come from code, from plugins, from
//! account data or from the network; none of them can leave the folder:
//! a name must be one plain path component (no `/`, no `..`, not absolute),
//! and a symbolic link inside that points out of the folder is refused by
//! `cap-std` when followed.

use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cap_std::fs::{Dir, OpenOptions};

/// An open folder; cheap to clone (every clone shares one handle).
#[derive(Clone)]
pub struct Folder {
    dir: Arc<Dir>,
    /// The path it was opened from, for messages only: never opened again.
    path: PathBuf,
}

impl std::fmt::Debug for Folder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Folder").field(&self.path).finish()
    }
}

/// A name is one normal path component: no separators, no `.` or `..`, no NUL.
fn plain(name: &str) -> io::Result<&str> {
    let ok = !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']);
    if ok {
        Ok(name)
    } else {
        Err(io::Error::new(io::ErrorKind::InvalidInput, format!("`{}` is not a plain file name", name.escape_debug())))
    }
}

impl Folder {
    /// Opens an existing folder named by the operator (the one use of
    /// ambient authority: every other file is reached through the handle).
    pub fn open(path: &Path) -> io::Result<Folder> {
        let dir = Dir::open_ambient_dir(path, cap_std::ambient_authority())
            .map_err(|e| io::Error::new(e.kind(), format!("cannot open the folder {}: {e}", path.display())))?;
        Ok(Folder { dir: Arc::new(dir), path: path.to_owned() })
    }

    /// Creates the folder (and its parents) if needed, then opens it.
    pub fn create(path: &Path) -> io::Result<Folder> {
        std::fs::create_dir_all(path)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot create the folder {}: {e}", path.display())))?;
        Folder::open(path)
    }

    /// The folder of a file named by the operator, and the file's name in it.
    pub fn of_file(file: &Path) -> io::Result<(Folder, String)> {
        let name = file.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{} does not name a file", file.display()))
        })?;
        let parent = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        Ok((Folder::open(parent)?, name.to_owned()))
    }

    /// The path the folder was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How to show `name` in a message: the folder's path joined with it.
    pub fn shown(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// A folder inside this one, created if `create` and missing.
    pub fn child(&self, name: &str, create: bool) -> io::Result<Folder> {
        let name = plain(name)?;
        if create {
            match self.dir.create_dir(name) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
        }
        Ok(Folder { dir: Arc::new(self.dir.open_dir(name)?), path: self.path.join(name) })
    }

    pub fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        self.dir.read(plain(name)?)
    }

    pub fn read_to_string(&self, name: &str) -> io::Result<String> {
        self.dir.read_to_string(plain(name)?)
    }

    /// The file's text if it holds at most `max` bytes, `None` when larger
    /// (read no further: a huge file or a device must not take all memory).
    pub fn read_limited(&self, name: &str, max: usize) -> io::Result<Option<String>> {
        let mut text = String::new();
        self.dir.open(plain(name)?)?.take(max as u64 + 1).read_to_string(&mut text)?;
        Ok((text.len() <= max).then_some(text))
    }

    pub fn metadata(&self, name: &str) -> io::Result<cap_std::fs::Metadata> {
        self.dir.metadata(plain(name)?)
    }

    pub fn exists(&self, name: &str) -> bool {
        plain(name).is_ok_and(|name| self.dir.exists(name))
    }

    /// The names of the folder's entries that are valid UTF-8, sorted.
    pub fn names(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in self.dir.entries()? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.dir.rename(plain(from)?, &self.dir, plain(to)?)
    }

    pub fn remove(&self, name: &str) -> io::Result<()> {
        self.dir.remove_file(plain(name)?)
    }

    /// Opens `name` for reading (for a file read piece by piece).
    pub fn open_file(&self, name: &str) -> io::Result<std::fs::File> {
        Ok(self.dir.open(plain(name)?)?.into_std())
    }

    /// Opens `name` for appending, creating it if missing.
    pub fn append(&self, name: &str) -> io::Result<std::fs::File> {
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        Ok(self.dir.open_with(plain(name)?, &options)?.into_std())
    }

    /// Writes `bytes` as `name` so that a crash or a power loss leaves either
    /// the old file or the new one: a temporary file (unique to this write,
    /// hidden by its leading dot), synced, renamed over the old one, and the
    /// folder synced so the rename itself is on disk. `private` creates the
    /// file readable by its owner alone from the start.
    pub fn write_durably(&self, name: &str, bytes: &[u8], private: bool) -> io::Result<()> {
        self.write_durably_with(name, private, |out| out.write_all(bytes))
    }

    /// [`write_durably`](Folder::write_durably), the bytes written by `write`
    /// (buffered) rather than held whole first; what `write` returns.
    pub fn write_durably_with<T>(
        &self,
        name: &str,
        private: bool,
        write: impl FnOnce(&mut dyn io::Write) -> io::Result<T>,
    ) -> io::Result<T> {
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let name = plain(name)?;
        let tmp = format!(".{name}.tmp.{}.{}", std::process::id(), WRITES.fetch_add(1, Ordering::Relaxed));
        let written = (|| -> io::Result<T> {
            let mut options = OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            if private {
                cap_std::fs::OpenOptionsExt::mode(&mut options, 0o600);
            }
            let mut out = io::BufWriter::with_capacity(64 << 10, self.dir.open_with(&tmp, &options)?);
            let written = write(&mut out)?;
            let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
            file.sync_all()?;
            self.dir.rename(&tmp, &self.dir, name)?;
            self.sync()?;
            Ok(written)
        })();
        if written.is_err() {
            let _ = self.dir.remove_file(&tmp);
        }
        written.map_err(|e| io::Error::new(e.kind(), format!("cannot write {}: {e}", self.shown(name).display())))
    }

    /// Removes what interrupted durable writes left behind (their hidden
    /// temporary files); returns how many. Only for folders the host alone
    /// writes: a plugin folder's hidden files are an operator's copies.
    pub fn sweep_temporaries(&self) -> io::Result<usize> {
        let mut removed = 0;
        for name in self.names()? {
            if is_temporary(&name) && self.dir.remove_file(&name).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Syncs the folder itself (its entries: names created, renamed, removed).
    pub fn sync(&self) -> io::Result<()> {
        // The folder's own handle may be a path-only descriptor, which cannot
        // be synced: open the folder for reading through it.
        let mut options = OpenOptions::new();
        options.read(true);
        self.dir.open_with(".", &options)?.sync_all()
    }
}

/// Whether `name` is a temporary file of [`Folder::write_durably`].
fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gleipnir-folder-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("inside")).unwrap();
        std::fs::write(dir.join("secret"), "outside").unwrap();
        dir
    }

    #[test]
    fn no_name_reaches_outside_the_folder() {
        let root = scratch("escape");
        let folder = Folder::open(&root.join("inside")).unwrap();
        folder.write_durably("kept", b"kept", false).unwrap();
        let absolute = root.join("secret").display().to_string();
        for name in ["../secret", "..", ".", "", "a/../../secret", absolute.as_str(), "/etc/passwd", "x\0y"] {
            assert!(folder.read(name).is_err(), "read {name:?}");
            assert!(folder.write_durably(name, b"x", false).is_err(), "write {name:?}");
            assert!(folder.append(name).is_err(), "append {name:?}");
            assert!(folder.child(name, true).is_err(), "child {name:?}");
            assert!(folder.rename("kept", name).is_err(), "rename to {name:?}");
            assert!(folder.remove(name).is_err(), "remove {name:?}");
        }
        // A link inside that points out, relative or absolute, is not followed out.
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("../secret", root.join("inside/relative")).unwrap();
            std::os::unix::fs::symlink(root.join("secret"), root.join("inside/absolute")).unwrap();
            std::os::unix::fs::symlink("..", root.join("inside/up")).unwrap();
            for link in ["relative", "absolute"] {
                assert!(folder.read(link).is_err(), "read through {link}");
                assert!(folder.write_durably(link, b"changed", false).is_ok(), "replacing the link itself is fine");
            }
            assert!(folder.child("up", false).is_err(), "a link to the parent is not a way out");
        }
        assert_eq!(std::fs::read_to_string(root.join("secret")).unwrap(), "outside", "nothing outside changed");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_durable_write_replaces_the_file_and_leaves_no_temporary() {
        let root = scratch("durable");
        let folder = Folder::open(&root.join("inside")).unwrap();
        folder.write_durably("state.json", b"one", false).unwrap();
        folder.write_durably("state.json", b"two", true).unwrap();
        assert_eq!(folder.read_to_string("state.json").unwrap(), "two");
        assert_eq!(folder.names().unwrap(), ["state.json"]);
        assert_eq!(folder.read_limited("state.json", 2).unwrap(), None);
        assert_eq!(folder.read_limited("state.json", 3).unwrap().as_deref(), Some("two"));
        // A crash between the temporary write and the rename leaves this behind.
        std::fs::write(root.join("inside/.state.json.tmp.1.0"), "half").unwrap();
        assert_eq!(folder.sweep_temporaries().unwrap(), 1);
        assert_eq!(folder.names().unwrap(), ["state.json"]);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
