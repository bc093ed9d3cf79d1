//! A protection's `Store`: its limiter, its deadline and what it may query.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::{Store, Trap, UpdateDeadline};

use crate::engine::Runtime;
use crate::host::{GuestState, HostQueries};
use crate::kv::KvStore;
use crate::limits::{EPOCH_TICK, Limits};

/// A fresh store for one protection: its limiter, hostcall fuel and call
/// deadline. Nothing runs in it yet.
pub(crate) fn new_store(
    runtime: &Runtime,
    limits: &Limits,
    name: Arc<str>,
    queries: Arc<dyn HostQueries>,
    kv: KvStore,
) -> Store<GuestState> {
    let store_limits = crate::limits::store_limits(limits);
    let mut state = GuestState::new(name, queries, kv, store_limits, crate::wasi::locked_down());
    state.call_deadline = limits.call_deadline;
    let mut store = Store::new(&runtime.engine, state);
    store.limiter(|s| &mut s.limits);
    store.set_hostcall_fuel(crate::limits::HOSTCALL_FUEL);
    store.set_epoch_deadline(limits.deadline_ticks());
    store.epoch_deadline_callback(|ctx| past_deadline(ctx.data()));
    store
}

/// Called when a call's epoch deadline passes: it ends the call, unless
/// `history` waited on the host during it; then the call runs on until its
/// deadline moved by that wait (see `GuestState::extended_deadline`).
fn past_deadline(state: &GuestState) -> wasmtime::Result<UpdateDeadline> {
    let now = Instant::now();
    match state.extended_deadline() {
        Some(until) if now < until => {
            let ticks = (until - now).as_nanos().div_ceil(EPOCH_TICK.as_nanos());
            Ok(UpdateDeadline::Continue(u64::try_from(ticks).unwrap_or(u64::MAX).max(1)))
        }
        _ => Err(Trap::Interrupt.into()),
    }
}

/// A protection that queries nothing: used while describing and checking defaults.
pub(crate) struct NoQueries;

impl HostQueries for NoQueries {
    fn now_ms(&self) -> u64 {
        0
    }
    fn bot_user_id(&self) -> &str {
        "@gleipnir:invalid"
    }
    fn membership(&self, _: &str, _: &str) -> Option<crate::Membership> {
        None
    }
    fn joined_at(&self, _: &str, _: &str) -> Option<u64> {
        None
    }
    fn power_level(&self, _: &str, _: &str) -> i64 {
        0
    }
    fn room_levels(&self, _: &str) -> crate::RoomLevels {
        crate::rooms::DEFAULT_LEVELS
    }
}
