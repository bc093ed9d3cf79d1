//! The host side of the `host` interface: what a protection may ask while it
//! handles an event, answered from memory, plus its private key-value store.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::adapt::Adapt;
use crate::bindings::v0_1::gleipnir::protection::{host as host_0_1, types as types_0_1};
use crate::bindings::v0_2::gleipnir::protection::{host, types};
use crate::grants::{QueryGrant, QueryGrants};
use crate::rooms::RoomStates;
use crate::{HistoryEvent, KvError, KvStore, LogLevel, Member, Membership, PolicyRule, RoomLevels};

/// The queries the host answers for protections. Implementations must answer
/// from memory: a protection waits on every call.
pub trait HostQueries: Send + Sync {
    fn now_ms(&self) -> u64;
    fn bot_user_id(&self) -> &str;
    fn membership(&self, room: &str, user: &str) -> Option<Membership>;
    fn joined_at(&self, room: &str, user: &str) -> Option<u64>;
    fn power_level(&self, room: &str, user: &str) -> i64;
    fn room_levels(&self, room: &str) -> RoomLevels;
    /// Messages `user` sent in `room` that were seen and not removed; `None`
    /// when not counted there, or the user joined before counting began.
    fn message_count(&self, room: &str, user: &str) -> Option<u32> {
        let _ = (room, user);
        None
    }
    /// The rooms the bot protects.
    fn protected_rooms(&self) -> Vec<String> {
        Vec::new()
    }
    /// Everyone with a membership in `room` (a protected room; nothing for
    /// another), at most [`MAX_MEMBERS`].
    fn members(&self, room: &str) -> Vec<Member> {
        let _ = room;
        Vec::new()
    }
    /// Users with any membership in a protected room that a user rule names.
    /// Asked only for protections granted `read-members`.
    fn members_matching(&self, rule: &PolicyRule) -> Vec<String> {
        let _ = rule;
        Vec::new()
    }
    /// The only query that may wait on the network: `sender`'s most recent
    /// events in `room`, newest first. Called from guest code, on a thread
    /// that may block (outside any Tokio worker: see `guest.rs`); the time it
    /// waits is added to the call's deadline, up to 60 s per call. Asked only
    /// for protections granted `read-history`.
    fn history(&self, room: &str, sender: &str, limit: u32) -> Result<Vec<HistoryEvent>, String> {
        let _ = (room, sender, limit);
        Err("this host does not read room history".to_owned())
    }
    /// When `user`'s account was created (ms since the epoch), as the bot's
    /// homeserver tells it; an error says why it cannot. May wait on the
    /// network like [`history`](Self::history), under the same budget. Asked
    /// only for protections granted `read-accounts`.
    fn account_created(&self, user: &str) -> Result<u64, String> {
        let _ = user;
        Err("this host does not know when accounts were created".to_owned())
    }
}

/// Where "now" comes from: the system clock, or a clock the caller sets (to
/// replay a recorded stream with each event's own timestamp).
#[derive(Debug)]
pub enum Clock {
    System,
    Manual(AtomicU64),
}

impl Clock {
    pub fn manual(ms: u64) -> Self {
        Clock::Manual(AtomicU64::new(ms))
    }
    pub fn now_ms(&self) -> u64 {
        match self {
            Clock::System => SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
            Clock::Manual(ms) => ms.load(Ordering::Relaxed),
        }
    }
    /// Sets a manual clock; a system clock ignores it.
    pub fn set(&self, ms: u64) {
        if let Clock::Manual(now) = self {
            now.store(ms, Ordering::Relaxed);
        }
    }
}

/// Room state plus a clock and the bot's id: the usual [`HostQueries`].
#[derive(Debug)]
pub struct StateQueries {
    pub bot: String,
    pub clock: Clock,
    pub rooms: Arc<RoomStates>,
}

impl HostQueries for StateQueries {
    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
    fn bot_user_id(&self) -> &str {
        &self.bot
    }
    fn membership(&self, room: &str, user: &str) -> Option<Membership> {
        self.rooms.membership(room, user)
    }
    fn joined_at(&self, room: &str, user: &str) -> Option<u64> {
        self.rooms.joined_at(room, user)
    }
    fn power_level(&self, room: &str, user: &str) -> i64 {
        self.rooms.power_level(room, user)
    }
    fn room_levels(&self, room: &str) -> RoomLevels {
        self.rooms.room_levels(room)
    }
    fn message_count(&self, room: &str, user: &str) -> Option<u32> {
        self.rooms.message_count(room, user)
    }
    fn members(&self, room: &str) -> Vec<Member> {
        self.rooms.members(room, MAX_MEMBERS)
    }
}

/// Most members one `members` call returns.
pub const MAX_MEMBERS: usize = 100_000;

/// Log lines a protection may write per call; more are counted, not written.
const LOG_LINES_PER_CALL: u32 = 64;
/// Longest log line kept, in bytes.
const LOG_LINE_BYTES: usize = 2048;

/// Everything one protection's `Store` holds.
pub(crate) struct GuestState {
    pub(crate) name: Arc<str>,
    pub(crate) queries: Arc<dyn HostQueries>,
    pub(crate) kv: KvStore,
    pub(crate) limits: StoreLimits,
    pub(crate) logs_this_call: u32,
    pub(crate) logs_dropped: u64,
    /// The queries beyond the event the operator grants (`read-history`, `read-members`, `read-accounts`).
    pub(crate) query_grants: QueryGrants,
    /// Queries refused for want of a grant; the first is logged as a warning.
    queries_refused: u64,
    /// When the current guest call began.
    call_started: Instant,
    /// `history` and `account-created` calls in this guest call, and the
    /// time they waited on the homeserver.
    history_calls: u32,
    history_waited: Duration,
    /// The time one call may run.
    pub(crate) call_deadline: Duration,
    /// A pre-emptive `check` is running: no `history`, no `account-created`.
    pub(crate) checking: bool,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl GuestState {
    pub(crate) fn new(
        name: Arc<str>,
        queries: Arc<dyn HostQueries>,
        kv: KvStore,
        limits: StoreLimits,
        wasi: WasiCtx,
    ) -> Self {
        GuestState {
            name,
            queries,
            kv,
            limits,
            logs_this_call: 0,
            logs_dropped: 0,
            query_grants: QueryGrants::EMPTY,
            queries_refused: 0,
            call_started: Instant::now(),
            history_calls: 0,
            history_waited: Duration::ZERO,
            call_deadline: Duration::from_millis(50),
            checking: false,
            wasi,
            table: ResourceTable::new(),
        }
    }

    /// Starts the clock and the per-call counts of a guest call.
    pub(crate) fn begin_call(&mut self) {
        self.call_started = Instant::now();
        self.logs_this_call = 0;
        self.history_calls = 0;
        self.history_waited = Duration::ZERO;
    }

    /// When the current call must have returned, if `history` or `account-created` moved its
    /// deadline: by the time the host waited, at most [`HISTORY_BUDGET`].
    /// `None` when nothing waited, and the deadline in epoch ticks stands.
    pub(crate) fn extended_deadline(&self) -> Option<Instant> {
        (!self.history_waited.is_zero())
            .then(|| self.call_started + self.call_deadline + self.history_waited.min(HISTORY_BUDGET))
    }

    /// Whether the operator granted `grant`; a refusal is logged (the first
    /// as a warning, the rest at debug level so a loop cannot flood the log).
    fn granted(&mut self, grant: QueryGrant, call: &str) -> bool {
        if self.query_grants.contains(grant) {
            return true;
        }
        self.queries_refused += 1;
        let name = &*self.name;
        if self.queries_refused == 1 {
            tracing::warn!(
                target: "gleipnir::plugin",
                protection = name,
                "refused `{call}`: the operator has not granted `{grant}` (protections.{name}.grants)"
            );
        } else {
            tracing::debug!(target: "gleipnir::plugin", protection = name, "refused `{call}` again: no `{grant}`");
        }
        false
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl types::Host for GuestState {}

impl host::Host for GuestState {
    fn log(&mut self, level: LogLevel, mut message: String) {
        self.logs_this_call += 1;
        if self.logs_this_call > LOG_LINES_PER_CALL {
            self.logs_dropped += 1;
            return;
        }
        crate::text::truncate_bytes(&mut message, LOG_LINE_BYTES);
        let name = &*self.name;
        match level {
            LogLevel::Trace => tracing::trace!(target: "gleipnir::plugin", protection = name, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "gleipnir::plugin", protection = name, "{message}"),
            LogLevel::Info => tracing::info!(target: "gleipnir::plugin", protection = name, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "gleipnir::plugin", protection = name, "{message}"),
            LogLevel::Error => tracing::error!(target: "gleipnir::plugin", protection = name, "{message}"),
        }
    }

    fn now_ms(&mut self) -> u64 {
        self.queries.now_ms()
    }

    fn bot_user_id(&mut self) -> String {
        self.queries.bot_user_id().to_owned()
    }

    fn membership_of(&mut self, room: String, user: String) -> Option<Membership> {
        self.queries.membership(&room, &user)
    }

    fn joined_at(&mut self, room: String, user: String) -> Option<u64> {
        self.queries.joined_at(&room, &user)
    }

    fn power_level(&mut self, room: String, user: String) -> i64 {
        self.queries.power_level(&room, &user)
    }

    fn required_levels(&mut self, room: String) -> RoomLevels {
        self.queries.room_levels(&room)
    }

    fn kv_get(&mut self, key: String) -> Option<Vec<u8>> {
        self.kv.get(&key).map(<[u8]>::to_vec)
    }

    fn kv_set(&mut self, key: String, value: Vec<u8>) -> Result<(), KvError> {
        self.kv.set(key, value)
    }

    fn kv_delete(&mut self, key: String) {
        self.kv.delete(&key)
    }

    fn message_count(&mut self, room: String, user: String) -> Option<u32> {
        self.queries.message_count(&room, &user)
    }

    fn protected_rooms(&mut self) -> Vec<String> {
        self.queries.protected_rooms()
    }

    fn members(&mut self, room: String) -> Vec<Member> {
        let mut members = self.queries.members(&room);
        members.truncate(MAX_MEMBERS);
        members
    }

    fn members_matching(&mut self, rule: PolicyRule) -> Vec<String> {
        if !self.granted(QueryGrant::ReadMembers, "members-matching") {
            return Vec::new();
        }
        self.queries.members_matching(&rule)
    }

    fn history(&mut self, room: String, sender: String, limit: u32) -> Result<Vec<HistoryEvent>, String> {
        let limit = limit.min(1000);
        self.waiting("history", QueryGrant::ReadHistory, |queries| queries.history(&room, &sender, limit))
    }

    fn account_created(&mut self, user: String) -> Result<u64, String> {
        self.waiting("account-created", QueryGrant::ReadAccounts, |queries| queries.account_created(&user))
    }
}

impl GuestState {
    /// A query that may wait on the homeserver (`history`,
    /// `account-created`): not in `check`, only with its grant, at most
    /// [`MAX_HISTORY_CALLS`] per guest call and [`HISTORY_BUDGET`] of waiting
    /// in all. The wait moves the call's deadline by exactly its length (see
    /// `extended_deadline`): a call that waited not at all gains nothing.
    fn waiting<T>(
        &mut self,
        call: &str,
        grant: QueryGrant,
        ask: impl FnOnce(&dyn HostQueries) -> Result<T, String>,
    ) -> Result<T, String> {
        if self.checking {
            return Err(format!("`{call}` is not available in `check`"));
        }
        if !self.granted(grant, call) {
            return Err(format!("`{call}` needs `{grant}`, which the operator has not granted"));
        }
        self.history_calls += 1;
        if self.history_calls > MAX_HISTORY_CALLS {
            return Err(format!("at most {MAX_HISTORY_CALLS} reads from the homeserver per call"));
        }
        if self.history_waited >= HISTORY_BUDGET {
            return Err(format!("this call spent its {} s of reads from the homeserver", HISTORY_BUDGET.as_secs()));
        }
        let started = Instant::now();
        let result = ask(&*self.queries);
        self.history_waited += started.elapsed();
        result
    }
}

/// Contract 0.1.0's host functions: the same functions, through the adapter.
impl types_0_1::Host for GuestState {}

impl host_0_1::Host for GuestState {
    fn log(&mut self, level: types_0_1::LogLevel, message: String) {
        host::Host::log(self, level.adapt(), message)
    }
    fn now_ms(&mut self) -> u64 {
        host::Host::now_ms(self)
    }
    fn bot_user_id(&mut self) -> String {
        host::Host::bot_user_id(self)
    }
    fn membership_of(&mut self, room: String, user: String) -> Option<types_0_1::Membership> {
        host::Host::membership_of(self, room, user).adapt()
    }
    fn joined_at(&mut self, room: String, user: String) -> Option<u64> {
        host::Host::joined_at(self, room, user)
    }
    fn power_level(&mut self, room: String, user: String) -> i64 {
        host::Host::power_level(self, room, user)
    }
    fn required_levels(&mut self, room: String) -> types_0_1::RoomLevels {
        host::Host::required_levels(self, room).adapt()
    }
    fn kv_get(&mut self, key: String) -> Option<Vec<u8>> {
        host::Host::kv_get(self, key)
    }
    fn kv_set(&mut self, key: String, value: Vec<u8>) -> Result<(), types_0_1::KvError> {
        host::Host::kv_set(self, key, value).map_err(Adapt::adapt)
    }
    fn kv_delete(&mut self, key: String) {
        host::Host::kv_delete(self, key)
    }
    fn message_count(&mut self, room: String, user: String) -> Option<u32> {
        host::Host::message_count(self, room, user)
    }
    fn protected_rooms(&mut self) -> Vec<String> {
        host::Host::protected_rooms(self)
    }
    fn members_matching(&mut self, rule: types_0_1::PolicyRule) -> Vec<String> {
        host::Host::members_matching(self, rule.adapt())
    }
    fn history(&mut self, room: String, sender: String, limit: u32) -> Result<Vec<host_0_1::HistoryEvent>, String> {
        host::Host::history(self, room, sender, limit).map(Adapt::adapt)
    }
}

/// `history` and `account-created` calls one guest call may make.
const MAX_HISTORY_CALLS: u32 = 1000;
/// Time one guest call may spend waiting in `history` and `account-created`, and so the most its
/// deadline moves: a protection cannot hold the bot's event loop longer
/// than its deadline plus this.
const HISTORY_BUDGET: Duration = Duration::from_secs(60);
