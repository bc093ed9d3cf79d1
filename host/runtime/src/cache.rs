//! Compiled components kept on disk, keyed by the sha256 of the component
//! and the engine's compatibility hash, so a restart does not recompile.
//!
//! The directory must be trusted: loading a compiled artifact runs its code.
//! It lives in the operator's data directory, never in the plugin folder.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::plugin::LoadError;

pub(crate) fn content_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) struct ComponentCache {
    dir: PathBuf,
    /// Changes whenever the engine could not run an artifact compiled before.
    engine_key: String,
}

impl ComponentCache {
    pub(crate) fn open(dir: &Path, engine: &Engine) -> std::io::Result<ComponentCache> {
        std::fs::create_dir_all(dir)?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(ComponentCache { dir: dir.to_owned(), engine_key: format!("{:016x}", hasher.finish()) })
    }

    fn path_for(&self, hash: &str) -> PathBuf {
        self.dir.join(format!("{hash}-{}.cwasm", self.engine_key))
    }

    pub(crate) fn load_or_compile(&self, engine: &Engine, bytes: &[u8]) -> Result<(Component, String), LoadError> {
        let hash = content_hash(bytes);
        let path = self.path_for(&hash);
        // Read into memory rather than map the file: a file changed under a
        // mapping (another process replacing it, an operator truncating it)
        // would crash the host with SIGBUS.
        if let Ok(artifact) = std::fs::read(&path) {
            // SAFETY: the file was written by `precompile_component` of an
            // engine with the same compatibility hash, into a directory only
            // the host writes. A damaged file fails deserialization's checks
            // and is compiled again below.
            match unsafe { Component::deserialize(engine, &artifact) } {
                Ok(component) => return Ok((component, hash)),
                Err(e) => tracing::warn!(path = %path.display(), "compiled component unusable, compiling again: {e:#}"),
            }
        }
        let compiled = engine.precompile_component(bytes).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        // Write to a temporary name and rename, so a crash never leaves half a file.
        // The temporary name is unique to this write: threads and processes
        // compiling the same component must not write into one file.
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let tmp = path.with_extension(format!("tmp.{}.{}", std::process::id(), WRITES.fetch_add(1, Ordering::Relaxed)));
        let written = std::fs::write(&tmp, &compiled).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(path = %path.display(), "cannot cache compiled component: {e}");
        }
        // SAFETY: `compiled` was produced by this engine a moment ago.
        let component =
            unsafe { Component::deserialize(engine, &compiled) }.map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        Ok((component, hash))
    }
}
