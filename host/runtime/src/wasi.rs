//! The WASI a protection sees. Rust's std imports WASI, so it is linked, but
//! it reaches nothing (no files, sockets, environment or arguments; stdio
//! closed; clocks stopped) and it never waits.
//!
//! Why the waiting parts are replaced: wasmtime-wasi serves every WASI p2
//! function that may wait (`poll`, `pollable.block`, the blocking stream
//! calls, dropping a stream, filesystem and socket calls) through
//! `runtime::in_tokio`, which blocks the calling thread in
//! `Handle::block_on`. Inside the host that wait cannot be interrupted by
//! the epoch deadline (a guest sleeping forever would hold the bot), and on
//! a thread inside a Tokio runtime `block_on` panics. Each of those
//! functions is shadowed here by one that polls once and returns what is
//! ready at once, or traps with [`Denied`]; none reaches `block_on`.

use std::future::Future;

use wasmtime::StoreContextMut;
use wasmtime::component::types::ComponentFunc;
use wasmtime::component::{Linker, Resource, ResourceTable, ResourceType, Val};
use wasmtime_wasi::p2::bindings::io::poll::{Host as _, HostPollable as _};
use wasmtime_wasi::p2::bindings::io::streams::{
    Host as _, HostInputStream as _, HostOutputStream as _, StreamError as WitStreamError,
};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiView};

use crate::host::GuestState;

/// The WASI p2 packages wasmtime-wasi 48 links (`@0.2.12`); components
/// importing any 0.2.x version resolve to these names.
const IO_POLL: &str = "wasi:io/poll@0.2.12";
const IO_STREAMS: &str = "wasi:io/streams@0.2.12";
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";
const FILESYSTEM: &str = "wasi:filesystem/types@0.2.12";
const TCP: &str = "wasi:sockets/tcp@0.2.12";
const UDP: &str = "wasi:sockets/udp@0.2.12";
const UDP_CREATE: &str = "wasi:sockets/udp-create-socket@0.2.12";

/// Largest `get-random-bytes` request: enough for any seed, and small enough
/// that serving it takes the host no noticeable time or memory.
const MAX_RANDOM_BYTES: u64 = 64 << 10;

/// A WASI call a protection may not make. It traps the call; only the
/// protection is affected.
#[derive(Debug, thiserror::Error)]
#[error("a protection may not {what} (`{call}`)")]
pub(crate) struct Denied {
    what: &'static str,
    call: &'static str,
}

impl Denied {
    fn wait(call: &'static str) -> wasmtime::Error {
        wasmtime::Error::new(Denied { what: "wait", call })
    }
}

/// WASI with nothing in it: no files, no network, no environment, no
/// arguments, stdin closed, stdout and stderr discarded, and clocks stopped
/// at zero (protections get time from `now-ms`, so a replay sees the same
/// time as the original run).
pub(crate) fn locked_down() -> WasiCtx {
    let mut builder = WasiCtx::builder();
    builder
        .allow_blocking_current_thread(false)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }))
        .max_random_size(MAX_RANDOM_BYTES)
        .wall_clock(StoppedClock)
        .monotonic_clock(StoppedClock);
    builder.build()
}

struct StoppedClock;

impl wasmtime_wasi::HostWallClock for StoppedClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }
    fn now(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for StoppedClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Links WASI p2 into `linker` with every function that could wait
/// replaced (see the module docs).
pub(crate) fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    linker.allow_shadowing(true);
    shadow_poll(linker)?;
    shadow_clocks(linker)?;
    shadow_streams(linker)?;
    shadow_files_and_sockets(linker)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The result of `future` if it is ready at once; otherwise the call traps.
fn at_once<F: Future>(call: &'static str, future: F) -> wasmtime::Result<F::Output> {
    wasmtime_wasi::runtime::poll_noop(std::pin::pin!(future)).ok_or_else(|| Denied::wait(call))
}

fn table<'a>(store: &'a mut StoreContextMut<'_, GuestState>) -> &'a mut ResourceTable {
    store.data_mut().ctx().table
}

fn shadow_poll(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    let mut poll = linker.instance(IO_POLL)?;
    poll.func_wrap("poll", |mut store, (pollables,): (Vec<Resource<DynPollable>>,)| {
        let ready = at_once("wasi:io/poll.poll", table(&mut store).poll(pollables))??;
        Ok((ready,))
    })?;
    poll.func_wrap("[method]pollable.block", |mut store, (pollable,): (Resource<DynPollable>,)| {
        at_once("wasi:io/poll.[method]pollable.block", table(&mut store).block(pollable))?
    })?;
    // `ready` never waits, but wasmtime-wasi still serves it through `block_on`.
    poll.func_wrap("[method]pollable.ready", |mut store, (pollable,): (Resource<DynPollable>,)| {
        let ready = at_once("wasi:io/poll.[method]pollable.ready", table(&mut store).ready(pollable))??;
        Ok((ready,))
    })?;
    Ok(())
}

/// A pollable that is always ready: what a zero-length clock subscription gives.
struct Elapsed;

#[wasmtime_wasi::async_trait]
impl Pollable for Elapsed {
    async fn ready(&mut self) {}
}

fn elapsed(store: &mut StoreContextMut<'_, GuestState>) -> wasmtime::Result<(Resource<DynPollable>,)> {
    let table = table(store);
    let elapsed = table.push(Elapsed)?;
    Ok((wasmtime_wasi::p2::subscribe(table, elapsed)?,))
}

/// A clock subscription is only ever used to wait. One that is already due
/// (zero, as `poll(2)` with a zero timeout asks) is granted; any other traps.
fn shadow_clocks(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap("subscribe-duration", |mut store, (duration,): (u64,)| {
        if duration == 0 {
            elapsed(&mut store)
        } else {
            Err(Denied::wait("wasi:clocks/monotonic-clock.subscribe-duration"))
        }
    })?;
    clock.func_wrap("subscribe-instant", |mut store, (instant,): (u64,)| {
        // The monotonic clock a protection sees is stopped at zero.
        if instant == 0 {
            elapsed(&mut store)
        } else {
            Err(Denied::wait("wasi:clocks/monotonic-clock.subscribe-instant"))
        }
    })?;
    Ok(())
}

/// A stream call's outcome in the contract's terms; a stream "trap" traps.
fn lower<T>(
    store: &mut StoreContextMut<'_, GuestState>,
    result: StreamResult<T>,
) -> wasmtime::Result<(Result<T, WitStreamError>,)> {
    match result {
        Ok(value) => Ok((Ok(value),)),
        Err(error) => Ok((Err(table(store).convert_stream_error(error)?),)),
    }
}

fn shadow_streams(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    let mut streams = linker.instance(IO_STREAMS)?;
    streams.resource("output-stream", ResourceType::host::<DynOutputStream>(), |mut store, rep| {
        let mut stream = table(&mut store).delete(Resource::<DynOutputStream>::new_own(rep))?;
        // Nothing buffered here needs flushing; a stream that would wait is dropped as it is.
        let _ = wasmtime_wasi::runtime::poll_noop(std::pin::pin!(stream.cancel()));
        Ok(())
    })?;
    streams.resource("input-stream", ResourceType::host::<DynInputStream>(), |mut store, rep| {
        let mut stream = table(&mut store).delete(Resource::<DynInputStream>::new_own(rep))?;
        let _ = wasmtime_wasi::runtime::poll_noop(std::pin::pin!(stream.cancel()));
        Ok(())
    })?;
    streams.func_wrap(
        "[method]output-stream.blocking-write-and-flush",
        |mut store, (stream, bytes): (Resource<DynOutputStream>, Vec<u8>)| {
            let call = "wasi:io/streams.[method]output-stream.blocking-write-and-flush";
            let result = at_once(call, table(&mut store).blocking_write_and_flush(stream, bytes))?;
            lower(&mut store, result)
        },
    )?;
    streams.func_wrap(
        "[method]output-stream.blocking-write-zeroes-and-flush",
        |mut store, (stream, len): (Resource<DynOutputStream>, u64)| {
            let call = "wasi:io/streams.[method]output-stream.blocking-write-zeroes-and-flush";
            let result = at_once(call, table(&mut store).blocking_write_zeroes_and_flush(stream, len))?;
            lower(&mut store, result)
        },
    )?;
    streams.func_wrap(
        "[method]output-stream.blocking-flush",
        |mut store, (stream,): (Resource<DynOutputStream>,)| {
            let call = "wasi:io/streams.[method]output-stream.blocking-flush";
            let result = at_once(call, table(&mut store).blocking_flush(stream))?;
            lower(&mut store, result)
        },
    )?;
    streams.func_wrap(
        "[method]output-stream.blocking-splice",
        |mut store, (to, from, len): (Resource<DynOutputStream>, Resource<DynInputStream>, u64)| {
            let call = "wasi:io/streams.[method]output-stream.blocking-splice";
            let result = at_once(call, table(&mut store).blocking_splice(to, from, len))?;
            lower(&mut store, result)
        },
    )?;
    streams.func_wrap(
        "[method]input-stream.blocking-read",
        |mut store, (stream, len): (Resource<DynInputStream>, u64)| {
            let call = "wasi:io/streams.[method]input-stream.blocking-read";
            let result = at_once(call, table(&mut store).blocking_read(stream, len))?;
            lower(&mut store, result)
        },
    )?;
    streams.func_wrap(
        "[method]input-stream.blocking-skip",
        |mut store, (stream, len): (Resource<DynInputStream>, u64)| {
            let call = "wasi:io/streams.[method]input-stream.blocking-skip";
            let result = at_once(call, table(&mut store).blocking_skip(stream, len))?;
            lower(&mut store, result)
        },
    )?;
    Ok(())
}

/// Filesystem and socket functions that wasmtime-wasi serves through
/// `block_on`. With no preopened directory and sockets denied a protection
/// holds no descriptor or socket to call most of them on; they trap anyway,
/// so that granting either later cannot bring `block_on` back. Creating a UDP
/// socket needs nothing, so it answers `access-denied` like TCP does.
fn shadow_files_and_sockets(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    const FILE_METHODS: &[&str] = &[
        "advise",
        "create-directory-at",
        "get-flags",
        "get-type",
        "is-same-object",
        "link-at",
        "metadata-hash",
        "metadata-hash-at",
        "open-at",
        "read",
        "read-directory",
        "readlink-at",
        "remove-directory-at",
        "rename-at",
        "set-size",
        "set-times",
        "set-times-at",
        "stat",
        "stat-at",
        "symlink-at",
        "sync",
        "sync-data",
        "unlink-file-at",
        "write",
    ];
    let mut files = linker.instance(FILESYSTEM)?;
    for method in FILE_METHODS {
        files.func_new(&format!("[method]descriptor.{method}"), no_files)?;
    }
    files.func_new("[method]directory-entry-stream.read-directory-entry", no_files)?;
    let mut tcp = linker.instance(TCP)?;
    tcp.func_new("[method]tcp-socket.start-bind", no_network)?;
    tcp.func_new("[method]tcp-socket.start-listen", no_network)?;
    let mut udp = linker.instance(UDP)?;
    udp.func_new("[method]udp-socket.start-bind", no_network)?;
    udp.func_new("[method]udp-socket.stream", no_network)?;
    linker.instance(UDP_CREATE)?.func_new("create-udp-socket", access_denied)?;
    Ok(())
}

fn no_files(_: StoreContextMut<'_, GuestState>, _: ComponentFunc, _: &[Val], _: &mut [Val]) -> wasmtime::Result<()> {
    Err(wasmtime::Error::new(Denied { what: "use the filesystem", call: "wasi:filesystem/types" }))
}

fn no_network(_: StoreContextMut<'_, GuestState>, _: ComponentFunc, _: &[Val], _: &mut [Val]) -> wasmtime::Result<()> {
    Err(wasmtime::Error::new(Denied { what: "use the network", call: "wasi:sockets" }))
}

/// `result<_, error-code>` with `access-denied`, whatever the success type.
fn access_denied(
    _: StoreContextMut<'_, GuestState>,
    _: ComponentFunc,
    _: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let denied = Val::Result(Err(Some(Box::new(Val::Enum("access-denied".to_owned())))));
    match results.first_mut() {
        Some(slot) => *slot = denied,
        None => return Err(wasmtime::Error::new(Denied { what: "use the network", call: "wasi:sockets" })),
    }
    Ok(())
}
