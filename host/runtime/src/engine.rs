//! One wasmtime `Engine` for every protection, configured for fast sync calls
//! and interruption by epoch, with a thread that advances the epoch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine};

use crate::cache::ComponentCache;
use crate::error::RuntimeError;
use crate::folder::Folder;
use crate::host::GuestState;
use crate::limits::{EPOCH_TICK, Limits};

/// How to build a [`Runtime`].
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    pub limits: Limits,
    /// The folder compiled components are kept in between runs; `None`
    /// compiles every time.
    pub cache: Option<Folder>,
}

/// Compiles, caches and instantiates protections. Cheap to share: clone the `Arc`.
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<GuestState>,
    pub(crate) limits: Limits,
    cache: Option<ComponentCache>,
    ticker: Option<Ticker>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Result<Arc<Runtime>, RuntimeError> {
        let mut wasm = Config::new();
        wasm.epoch_interruption(true)
            // Without this every sync call goes through the async task
            // machinery and costs about three times as much.
            .concurrency_support(false)
            .max_wasm_stack(crate::limits::MAX_WASM_STACK)
            .wasm_component_model(true)
            .cranelift_opt_level(wasmtime::OptLevel::Speed);
        let engine = Engine::new(&wasm).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;

        let mut linker = Linker::<GuestState>::new(&engine);
        crate::wasi::add_to_linker(&mut linker).map_err(|e| RuntimeError::Link(format!("{e:#}")))?;
        // Every contract version's host interface, each under its own name.
        let link = |e: wasmtime::Error| RuntimeError::Link(format!("{e:#}"));
        crate::bindings::v0_2::Plugin::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)
            .map_err(link)?;
        crate::bindings::v0_1::Plugin::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)
            .map_err(link)?;

        let cache = config.cache.map(|folder| ComponentCache::new(folder, &engine));
        let ticker = Some(Ticker::start(engine.clone()));
        Ok(Arc::new(Runtime { engine, linker, limits: config.limits, cache, ticker }))
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The compiled-component cache, when there is one.
    pub(crate) fn cache(&self) -> Option<&ComponentCache> {
        self.cache.as_ref()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.stop();
        }
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] so deadlines fire.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Ticker {
    fn start(engine: Engine) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("gleipnir-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        Ticker { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}
