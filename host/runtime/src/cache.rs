//! Compiled components kept on disk, keyed by the sha256 of the component
//! and the engine's compatibility hash, so a restart does not recompile.
//!
//! Loading a compiled artifact runs its code, so an entry is used only if it
//! proves itself: each file starts with a header naming the component it was
//! compiled from (sha256) and the sha256 of the artifact that follows. A
//! damaged entry (a flipped byte, a truncated write) or a swapped one
//! (another component's artifact under this name) is compiled again. The
//! digest guards against accidents, not an attacker who can write the
//! directory: it lives in the operator's data directory, never in the
//! plugin folder.

use std::hash::{DefaultHasher, Hash, Hasher};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::LoadError;
use crate::folder::Folder;

/// The first bytes of every entry; a new layout gets a new magic.
const MAGIC: &[u8; 16] = b"gleipnir-cwasm/1";
/// Magic, then sha256 of the component, then sha256 of the artifact.
const HEADER_LEN: usize = MAGIC.len() + 32 + 32;

/// A component's content hash (sha256, hex), as `Plugin::content_hash` gives it.
pub fn content_hash(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a cache entry was not used.
#[derive(Debug, thiserror::Error, PartialEq)]
enum Unusable {
    #[error("it has no valid header")]
    Header,
    #[error("it was compiled from another component")]
    OtherComponent,
    #[error("its contents do not match their digest")]
    Digest,
}

/// The entry for an artifact compiled from the component whose sha256 is `source`.
fn seal(source: &[u8], artifact: &[u8]) -> Vec<u8> {
    let mut entry = Vec::with_capacity(HEADER_LEN + artifact.len());
    entry.extend_from_slice(MAGIC);
    entry.extend_from_slice(source);
    entry.extend_from_slice(&Sha256::digest(artifact));
    entry.extend_from_slice(artifact);
    entry
}

/// The artifact in `entry`, if it was compiled from `source` and is intact.
fn unseal<'a>(entry: &'a [u8], source: &[u8]) -> Result<&'a [u8], Unusable> {
    let (header, artifact) = entry.split_at_checked(HEADER_LEN).ok_or(Unusable::Header)?;
    let (magic, digests) = header.split_at(MAGIC.len());
    let (component, digest) = digests.split_at(32);
    if magic != MAGIC {
        return Err(Unusable::Header);
    }
    if component != source {
        return Err(Unusable::OtherComponent);
    }
    if digest != Sha256::digest(artifact).as_slice() {
        return Err(Unusable::Digest);
    }
    Ok(artifact)
}

pub(crate) struct ComponentCache {
    folder: Folder,
    /// Changes whenever the engine could not run an artifact compiled before.
    engine_key: String,
}

impl ComponentCache {
    pub(crate) fn new(folder: Folder, engine: &Engine) -> ComponentCache {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        ComponentCache { folder, engine_key: format!("{:016x}", hasher.finish()) }
    }

    fn name_for(&self, hash: &str) -> String {
        format!("{hash}-{}.cwasm", self.engine_key)
    }

    pub(crate) fn load_or_compile(&self, engine: &Engine, bytes: &[u8]) -> Result<(Component, String), LoadError> {
        let source = Sha256::digest(bytes);
        let hash = hex(&source);
        let name = self.name_for(&hash);
        let path = self.folder.shown(&name);
        // Read into memory rather than map the file: a file changed under a
        // mapping (another process replacing it, an operator truncating it)
        // would crash the host with SIGBUS.
        if let Ok(entry) = self.folder.read(&name) {
            match unseal(&entry, &source) {
                Ok(artifact) => {
                    // SAFETY: the artifact is byte for byte what
                    // `precompile_component` of an engine with the same
                    // compatibility hash wrote for this very component (the
                    // header says so and the digest proves the bytes intact),
                    // in a directory only the host writes.
                    match unsafe { Component::deserialize(engine, artifact) } {
                        Ok(component) => return Ok((component, hash)),
                        Err(e) => {
                            tracing::warn!(path = %path.display(), "compiled component unusable, compiling again: {e:#}")
                        }
                    }
                }
                Err(why) => {
                    tracing::warn!(path = %path.display(), "cached component not used ({why}), compiling again")
                }
            }
        }
        let compiled = self.compile(engine, bytes, &source, &name)?;
        // SAFETY: `compiled` was produced by this engine a moment ago.
        let component =
            unsafe { Component::deserialize(engine, &compiled) }.map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        Ok((component, hash))
    }

    /// Compiles `bytes` into the cache unless an intact entry is there
    /// already, so a later load takes the cached compilation. A component
    /// that does not compile is left for that load to report.
    pub(crate) fn warm(&self, engine: &Engine, bytes: &[u8]) {
        let source = Sha256::digest(bytes);
        let name = self.name_for(&hex(&source));
        if self.folder.read(&name).is_ok_and(|entry| unseal(&entry, &source).is_ok()) {
            return;
        }
        let _ = self.compile(engine, bytes, &source, &name);
    }

    /// Compiles and writes the entry `name`; the compiled artifact.
    fn compile(&self, engine: &Engine, bytes: &[u8], source: &[u8], name: &str) -> Result<Vec<u8>, LoadError> {
        let compiled = engine.precompile_component(bytes).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        // A crash never leaves half a file, and threads and processes
        // compiling the same component each write their own temporary file.
        if let Err(e) = self.folder.write_durably(name, &seal(source, &compiled), false) {
            tracing::warn!("cannot cache compiled component: {e}");
        }
        Ok(compiled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_opens_only_for_its_component_and_only_intact() {
        let source = Sha256::digest(b"component");
        let entry = seal(&source, b"artifact");
        assert_eq!(unseal(&entry, &source), Ok(&b"artifact"[..]));
        assert_eq!(unseal(&entry, &Sha256::digest(b"another")), Err(Unusable::OtherComponent));
        let mut flipped = entry.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(unseal(&flipped, &source), Err(Unusable::Digest));
        assert_eq!(unseal(b"artifact without a header", &source), Err(Unusable::Header));
        assert_eq!(unseal(&entry[..10], &source), Err(Unusable::Header));
    }
}
