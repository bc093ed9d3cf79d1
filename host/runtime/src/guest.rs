//! The one way into guest code. Every call that runs a protection's code
//! (instantiation with its constructors, `describe`, `configure`, `handle`,
//! `snapshot`, `restore`) goes through [`enter`], so it is safe wherever the
//! caller is: on a plain thread, on a Tokio worker, or on a current-thread
//! runtime.
//!
//! Why it is needed although WASI never blocks (see `wasi.rs`): a call may
//! run for its whole deadline and may wait on the host in `history`, whose
//! implementation (the daemon's) blocks on the network. Neither may happen on
//! a Tokio worker without telling Tokio, and a current-thread runtime cannot
//! be told at all.

use std::panic::AssertUnwindSafe;

use tokio::runtime::{Handle, RuntimeFlavor};

/// A panic in host code while a protection was running (a host function or
/// a `HostQueries` implementation). It faults the call like a trap instead
/// of unwinding through the caller.
#[derive(Debug, thiserror::Error)]
#[error("the host failed while serving the protection: {0}")]
pub(crate) struct HostPanicked(String);

/// Runs `f`, which calls into guest code, where it may block.
pub(crate) fn enter<R: Send>(f: impl FnOnce() -> wasmtime::Result<R> + Send) -> wasmtime::Result<R> {
    let guarded = move || std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| Err(panicked(panic)));
    match Handle::try_current().map(|handle| handle.runtime_flavor()) {
        // No runtime on this thread: blocking is the caller's business.
        Err(_) => guarded(),
        // Tokio moves this worker's other tasks elsewhere while `f` runs.
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(guarded),
        // A current-thread runtime has no other thread to hand its tasks to:
        // run `f` on a thread of its own, outside the runtime.
        Ok(_) => std::thread::scope(|scope| match scope.spawn(guarded).join() {
            Ok(result) => result,
            Err(panic) => Err(panicked(panic)),
        }),
    }
}

fn panicked(panic: Box<dyn std::any::Any + Send>) -> wasmtime::Error {
    let message = match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(text), _) => (*text).to_owned(),
        (_, Some(text)) => text.clone(),
        _ => "a panic without a message".to_owned(),
    };
    wasmtime::Error::new(HostPanicked(message))
}
