//! Shared helpers for the contract tests and benchmarks: the built plugin
//! components (see build.rs) and a runtime set up as the bot sets it up.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use gleipnir_runtime::host::StateQueries;
use gleipnir_runtime::rooms::RoomStates;
use gleipnir_runtime::{Clock, Limits, Plugin, Runtime, RuntimeConfig};

/// Paths of the built components, one constant per plugin.
pub mod plugins {
    include!(concat!(env!("OUT_DIR"), "/plugins.rs"));
}

/// The first-party components as built for contract 0.1.0, kept as they
/// were (`tests/fixtures/contract-0.1.0/README.md`): every later host must
/// load them and decide as they did.
pub mod fixtures {
    macro_rules! fixture {
        ($name:literal) => {
            concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/contract-0.1.0/", $name, ".wasm")
        };
    }
    pub const FLOODING_0_1_0: &str = fixture!("flooding");
    pub const NEWCOMER_WATCH_WORDS_0_1_0: &str = fixture!("newcomer-watch-words");
    pub const LEAST_AUTHORITY_0_1_0: &str = fixture!("least-authority");
    pub const TAKEDOWN_0_1_0: &str = fixture!("takedown");
}

/// A protection built with another language's toolchain (see build.rs):
/// its component, or `None` when that toolchain is not installed here, said
/// on stderr. Under `cargo xtask test` it is always built (the build script
/// fails otherwise), so its tests always run in CI.
pub fn built_with_other_toolchain(name: &str, path: Option<&'static str>) -> Option<&'static str> {
    if path.is_none() {
        eprintln!("skipped: {name} was not built (componentize-py is not installed; `cargo xtask test` installs it)");
    }
    path
}

/// Where the tests cache compiled components (shared by all tests and runs).
pub fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-component-cache")
}

/// The call deadline in tests: long enough that a shared, loaded CI machine
/// never stops a well-behaved call, short enough to keep the timeout test quick.
pub const TEST_DEADLINE: Duration = Duration::from_secs(1);

/// One runtime for a whole test binary: default limits but the deadline.
pub fn runtime() -> Arc<Runtime> {
    static RUNTIME: OnceLock<Arc<Runtime>> = OnceLock::new();
    RUNTIME.get_or_init(|| runtime_with(Limits { call_deadline: TEST_DEADLINE, ..Limits::default() })).clone()
}

/// A runtime with other limits.
pub fn runtime_with(limits: Limits) -> Arc<Runtime> {
    let cache = gleipnir_runtime::Folder::create(&cache_dir()).expect("the test cache folder");
    Runtime::new(RuntimeConfig { limits, cache: Some(cache) }).expect("runtime starts")
}

/// Loads a built plugin.
pub fn load(path: &str) -> Plugin {
    load_with(&runtime(), path)
}

/// Loads a built plugin into another runtime.
pub fn load_with(runtime: &Arc<Runtime>, path: &str) -> Plugin {
    runtime.load_file(path.as_ref()).unwrap_or_else(|e| panic!("loading {path}: {e}"))
}

/// Runs `f` on its own thread and waits at most `limit` for it, so a call
/// that hangs fails the test instead of hanging the test run.
pub fn within<R: Send + 'static>(limit: Duration, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(f());
    });
    match receiver.recv_timeout(limit) {
        Ok(result) => result,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("still running after {limit:?}"),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("the call panicked"),
    }
}

/// Room state and a manual clock, as `gleipnir plugin run` uses.
pub fn queries() -> (Arc<StateQueries>, Arc<RoomStates>) {
    let rooms = Arc::new(RoomStates::new());
    let queries =
        Arc::new(StateQueries { bot: "@gleipnir:test".into(), clock: Clock::manual(0), rooms: rooms.clone() });
    (queries, rooms)
}
