//! Files are reached only through the folders opened at start: a component
//! or a cache entry that is a link out of its folder, or a name that climbs
//! out, is never read (and a cache write never lands outside).

use std::path::{Path, PathBuf};

use gleipnir_runtime::{Folder, RuntimeConfig};

use super::*;

/// `root/inside` (the folder given) and `root/outside.wasm` (a valid component beside it).
fn scratch(name: &str) -> (PathBuf, PathBuf) {
    let root = std::env::temp_dir().join(format!("gleipnir-folders-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("inside")).unwrap();
    std::fs::copy(plugins::NOOP, root.join("outside.wasm")).unwrap();
    (root.join("inside"), root)
}

fn link(target: &Path, at: &Path) {
    std::os::unix::fs::symlink(target, at).unwrap();
}

#[test]
fn a_component_outside_the_plugin_folder_is_not_loaded() {
    let (inside, root) = scratch("plugins");
    let folder = Folder::open(&inside).unwrap();
    let runtime = gleipnir_tests::runtime();
    std::fs::copy(plugins::NOOP, inside.join("copied.wasm")).unwrap();
    assert_eq!(
        runtime.load_from(&folder, "copied.wasm", runtime.limits()).unwrap().name(),
        "noop",
        "a file inside loads"
    );

    link(Path::new("../outside.wasm"), &inside.join("relative.wasm"));
    link(&root.join("outside.wasm"), &inside.join("absolute.wasm"));
    let absolute = root.join("outside.wasm").display().to_string();
    for name in ["relative.wasm", "absolute.wasm", "../outside.wasm", absolute.as_str()] {
        match runtime.load_from(&folder, name, runtime.limits()) {
            Err(gleipnir_runtime::LoadError::Read { .. }) => {}
            Err(other) => panic!("{name}: refused for the wrong reason: {other}"),
            Ok(_) => panic!("{name}: a component outside the plugin folder was loaded"),
        }
    }
    std::fs::remove_dir_all(&root).unwrap();
}

/// A cache entry that is a link out of the cache folder is neither read
/// nor written through: the component is compiled and the link replaced.
#[test]
fn a_cache_entry_linked_out_of_the_cache_is_not_followed() {
    let (inside, root) = scratch("cache");
    let runtime = || {
        let config = RuntimeConfig { cache: Some(Folder::open(&inside).unwrap()), ..Default::default() };
        gleipnir_runtime::Runtime::new(config).unwrap()
    };
    runtime().load_file(plugins::NOOP.as_ref()).unwrap();
    let entries: Vec<PathBuf> = std::fs::read_dir(&inside).unwrap().map(|e| e.unwrap().path()).collect();
    let [entry] = entries.as_slice() else { panic!("one cache entry: {entries:?}") };
    // The real entry moved out, a link to it left in its place.
    let moved = root.join("moved.cwasm");
    std::fs::rename(entry, &moved).unwrap();
    link(&moved, entry);
    let before = std::fs::read(&moved).unwrap();
    let loaded = runtime().load_file(plugins::NOOP.as_ref()).unwrap();
    assert_eq!(loaded.name(), "noop");
    assert!(!std::fs::symlink_metadata(entry).unwrap().is_symlink(), "the link was replaced by a fresh entry");
    assert_eq!(std::fs::read(&moved).unwrap(), before, "nothing outside the cache was written");
    std::fs::remove_dir_all(&root).unwrap();
}
