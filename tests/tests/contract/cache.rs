//! The compiled-component cache trusts only entries whose digest matches and
//! that were compiled from the component being loaded.

use super::*;

/// The one file in `dir`.
fn only_entry(dir: &std::path::Path) -> std::path::PathBuf {
    let entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries[0].clone()
}

/// A swapped entry (another component's valid artifact under this one's
/// name) and a damaged one (one byte of the summary changed) are both
/// compiled again, never run.
#[test]
fn a_swapped_or_flipped_cache_entry_is_recompiled() {
    let root = std::env::temp_dir().join(format!("gleipnir-cache-digest-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let runtime_in = |dir: &str| {
        let config = gleipnir_runtime::RuntimeConfig {
            cache: Some(gleipnir_runtime::Folder::create(&root.join(dir)).unwrap()),
            ..Default::default()
        };
        gleipnir_runtime::Runtime::new(config).unwrap()
    };
    runtime_in("noop").load_file(plugins::NOOP.as_ref()).unwrap();
    runtime_in("flooding").load_file(plugins::FLOODING.as_ref()).unwrap();
    let noop_entry = only_entry(&root.join("noop"));
    let flooding_entry = only_entry(&root.join("flooding"));

    std::fs::copy(&flooding_entry, &noop_entry).unwrap();
    let loaded = runtime_in("noop").load_file(plugins::NOOP.as_ref()).unwrap();
    assert_eq!(loaded.name(), "noop", "a swapped entry was run");
    assert_ne!(std::fs::read(&noop_entry).unwrap(), std::fs::read(&flooding_entry).unwrap(), "and was replaced");

    let mut bytes = std::fs::read(&noop_entry).unwrap();
    let summary = b"Does nothing (test plugin).";
    let at = bytes.windows(summary.len()).position(|w| w == summary).expect("the summary is in the artifact");
    bytes[at] = b'G';
    std::fs::write(&noop_entry, &bytes).unwrap();
    let loaded = runtime_in("noop").load_file(plugins::NOOP.as_ref()).unwrap();
    assert_eq!(loaded.descriptor().summary, "Does nothing (test plugin).", "a damaged entry was run");

    std::fs::remove_dir_all(&root).unwrap();
}

/// Warming the cache (beside a start's first sync) compiles each component
/// of the plugin folder once, skips files being written (`.name`) and what
/// does not compile (the load reports it), and mends a damaged entry.
#[test]
fn warming_compiles_each_plugin_once_and_mends_a_damaged_entry() {
    let root = std::env::temp_dir().join(format!("gleipnir-cache-warm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let plugins_dir = root.join("plugins");
    std::fs::create_dir_all(&plugins_dir).unwrap();
    std::fs::copy(plugins::NOOP, plugins_dir.join("noop.wasm")).unwrap();
    std::fs::copy(plugins::FLOODING, plugins_dir.join(".flooding.wasm")).unwrap();
    std::fs::write(plugins_dir.join("broken.wasm"), b"not a component").unwrap();
    let cache_dir = root.join("cache");
    let runtime = gleipnir_runtime::Runtime::new(gleipnir_runtime::RuntimeConfig {
        cache: Some(gleipnir_runtime::Folder::create(&cache_dir).unwrap()),
        ..Default::default()
    })
    .unwrap();
    let plugins_folder = gleipnir_runtime::Folder::create(&plugins_dir).unwrap();

    runtime.warm_cache(&plugins_folder);
    let entry = only_entry(&cache_dir);
    let written = std::fs::metadata(&entry).unwrap().modified().unwrap();
    runtime.warm_cache(&plugins_folder);
    assert_eq!(std::fs::metadata(&entry).unwrap().modified().unwrap(), written, "compiled again");

    let whole = std::fs::read(&entry).unwrap();
    std::fs::write(&entry, &whole[..whole.len() / 2]).unwrap();
    runtime.warm_cache(&plugins_folder);
    assert_eq!(std::fs::read(&entry).unwrap(), whole, "a damaged entry is compiled again");
    let loaded = runtime.load_file(&plugins_dir.join("noop.wasm")).unwrap();
    assert_eq!(loaded.name(), "noop");

    std::fs::remove_dir_all(&root).unwrap();
}
