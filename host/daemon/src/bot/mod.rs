//! The bot: log in, join the management room, sync once without acting on
//! history, then hand every new event of a protected room to the enabled
//! protections and carry out what they return; answer commands in the
//! management room.

mod account;
pub(crate) mod audit;
mod ban_redaction;
mod commands;
mod delivered;
mod draupnir;
mod events;
mod executor;
mod files;
mod first_state;
mod gate;
mod grants;
mod health;
mod history;
mod html;
mod ingest;
mod jobs;
mod journal;
mod kept_state;
mod layers;
mod listener;
mod live;
mod login;
mod management;
mod matrix;
mod metrics;
mod notices;
mod plan;
mod policy;
mod preview;
mod propagation;
mod protected;
mod protections;
mod queries;
mod raw;
mod report_notices;
mod reports;
mod room_log;
mod route;
mod say;
mod serve;
mod spaces;
mod startup;
mod takedown;
mod ticks;
mod watch;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use gleipnir_runtime::host::StateQueries;
use gleipnir_runtime::rooms::RoomStates;
use gleipnir_runtime::{Clock, Runtime, RuntimeConfig};
use matrix_sdk::ruma::api::client::filter::{FilterDefinition, RoomEventFilter, RoomFilter};
use matrix_sdk::ruma::api::client::sync::sync_events::v3::Filter;

use matrix_sdk::Client;
use queries::BotQueries;

use crate::config::Config;

/// Most pages of 100 events fetched to fill one gap in one room's timeline.
const MAX_GAP_PAGES: usize = 50;

/// Everything the running bot holds.
pub(crate) struct Bot {
    matrix: matrix::Matrix,
    config: Config,
    protected: protected::Protected,
    rooms: Arc<RoomStates>,
    queries: Arc<BotQueries>,
    runtime: Arc<Runtime>,
    protections: protections::Protections,
    /// What one start set up; `restart` and safe mode replace it whole.
    session: Session,
    /// When the process began to start (uptime; on a first start, messages
    /// in the management room since then are commands).
    started: Instant,
    /// The plugins being compiled into the cache beside the first sync;
    /// the first start waits for it before loading them.
    warming: Option<tokio::task::JoinHandle<()>>,
    /// How long each step of the current start took.
    steps: startup::Steps,
    last_sync: Option<Instant>,
    /// Freed memory given back to the system after a start and now and then.
    give_back: crate::memory::GiveBack,
    executor: executor::Executor,
    confirmations: plan::Confirmations,
    /// In safe mode: only the management room is served, nothing is acted on.
    safe_mode: bool,
    /// A moderator asked for `restart` (or `safe mode`): start over.
    restart: bool,
    /// Rooms the bot lost while handling a sync (room, why), dealt with after it.
    lost: Vec<Lost>,
    /// Watches the plugin folder and the settings file while running.
    watcher: Option<watch::Watcher>,
    changes: Option<tokio::sync::mpsc::UnboundedReceiver<watch::Change>>,
    /// When each protection that asks for ticks gets its next one.
    ticks: ticks::Ticks,
    /// Reading abuse reports, when the operator turned it on.
    reports: Option<reports::ReportPoll>,
    /// The reports posted in the management room, for the reactions to them.
    report_notices: report_notices::ReportNotices,
    /// Client bans offered for a policy list, waiting for a reaction.
    proposals: propagation::Proposals,
    /// Protected rooms upgraded (a tombstone seen): (old room, replacement).
    upgrades: Vec<(String, String)>,
    /// Each joined room's state for the first start (see `first_state`);
    /// empty once it has been used.
    first_state: first_state::FirstState,
    /// Upgrades whose replacement could not be joined yet: followed when an
    /// invite to it comes.
    pending_upgrades: Vec<(String, String)>,
    /// When the message counts were last written to the data directory.
    counts_saved: Instant,
    /// Actions decided while handling a sync, carried out after it (see `journal`).
    jobs: Vec<executor::Job>,
    journal: journal::Journal,
    tokens: files::SyncToken,
    /// Every joined room's state as of the saved token, for the next start.
    room_log: room_log::RoomLog,
    /// Policy rules already acted on by protections and room takedowns.
    delivered: delivered::Delivered,
    /// Handling the events that arrived while the bot was stopped: commands
    /// among them are answered, not run.
    replaying: bool,
    /// When the previous run stopped handling events (ms); replayed events
    /// are placed between then and now.
    stopped_at: Option<u64>,
    /// Failures to write to the data directory already reported (said once).
    write_failures: BTreeSet<String>,
    /// Members told they may not command the bot (said once each).
    refused_commanders: BTreeSet<String>,
    /// Protections' own state, kept across restarts.
    kept_state: kept_state::KeptState,
    /// The only folders the bot reads and writes, opened at start.
    folders: files::Folders,
    /// The pre-emptive checks the listener asks (with `[http]`), and what
    /// they tell the bot.
    gate: Option<gate::Gate>,
    gate_news: Option<tokio::sync::mpsc::UnboundedReceiver<gate::News>>,
    /// Refusals waiting to be said, coalesced.
    refusals: gate::Refusals,
    metrics: Arc<metrics::Metrics>,
}

/// What one start sets up from stored state: the enabled protections, the
/// policy engine, settings and grants, and the problems found. A restart
/// (or safe mode) replaces it whole, so nothing of the last one lingers.
#[derive(Default)]
pub(crate) struct Session {
    pub(crate) policy: policy::Policy,
    /// Problems with stored state, with the recovery options `recover N` uses.
    pub(crate) problems: Vec<crate::state::Problem>,
    /// The last problem report: a number reaction on it previews that option.
    pub(crate) report_event: Option<String>,
    /// Which protected rooms came from which space.
    pub(crate) spaces: spaces::Spaces,
    /// `m.space.child` changes seen in protected rooms, followed after the
    /// sync (or the start) that brought them.
    pub(crate) space_changes: Vec<spaces::ChildEvent>,
}

/// A protected room or watched list the bot is no longer in, and why.
pub(crate) struct Lost {
    pub(crate) room: String,
    pub(crate) why: String,
}

pub(crate) async fn run(config: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut steps = startup::Steps::begin();
    let folders = files::Folders::open(&config)?;
    let metrics = Arc::new(metrics::Metrics::new());
    // `/healthz` answers from the start, saying what holds the bot up.
    let early = match &config.http {
        Some(http) => Some(listener::Early::start(http, metrics.clone()).await?),
        None => None,
    };
    login::wait_for_homeserver(&config.homeserver, &metrics).await?;
    steps.done("homeserver reached");
    metrics.starting("logging in");
    let client = Client::builder()
        .homeserver_url(&config.homeserver)
        .request_config(login::request_config())
        .build()
        .await
        .context("cannot reach the homeserver")?;
    login::login(&client, &config, &folders.data).await?;
    let bot_user = client.user_id().context("no user after login")?.to_string();
    tracing::info!(user = %bot_user, "logged in");
    steps.done("login");

    let (management, moved_alias) = management::pinned_room(&client, &config.management_room, &folders.data)
        .await
        .context("cannot join the management room")?;
    if let Some(warning) = &moved_alias {
        tracing::warn!("{warning}");
    }
    let management_rule = management::join_rule(&client, &management).await?;
    management::check_join_rule(&config.management_room, &management_rule)?;
    if management::encrypted(&client, &management).await? {
        bail!(
            "the management room {} is encrypted; Gleipnir does not support end-to-end encryption yet, \
             so it could not read commands there: use an unencrypted management room",
            config.management_room
        );
    }

    steps.done("management room");
    let runtime =
        Runtime::new(RuntimeConfig { limits: config.limits, cache: Some(folders.data.child("components", true)?) })?;
    // Compiling a plugin (on a first start, or a new file) takes a while:
    // done beside the first sync, into the compiled cache the start loads from.
    let warming = {
        let (runtime, plugins) = (runtime.clone(), folders.plugins.clone());
        tokio::task::spawn_blocking(move || runtime.warm_cache(&plugins))
    };
    let protected = protected::Protected::default();
    let rooms = Arc::new(RoomStates::new());
    let queries = Arc::new(BotQueries {
        state: StateQueries { bot: bot_user.clone(), clock: Clock::System, rooms: rooms.clone() },
        protected: protected.clone(),
        client: client.clone(),
        accounts: Default::default(),
    });
    let dry_run = config.dry_run;
    let config_reports = config.report_poll.map(reports::ReportPoll::new);
    let tokens = files::SyncToken::new(&folders.data);
    let (delivered, delivered_problem) = delivered::Delivered::load(&folders.data);
    let journal = journal::Journal::new(&folders.data);
    let kept_state = kept_state::KeptState::new(&folders.data);
    metrics.starting("reading the protected rooms and policy lists");
    let protections = protections::Protections::new(runtime.clone(), queries.clone(), &config, metrics.clone());
    let (gate, gate_news) = match &config.http {
        Some(http) => {
            let (tell, news) = tokio::sync::mpsc::unbounded_channel();
            let block = http.antispam.as_ref().is_some_and(|a| a.block_invites_from_banned);
            let gate = gate::Gate::new(
                bot_user.clone(),
                management.to_string(),
                protected.clone(),
                rooms.clone(),
                block,
                tell,
                metrics.clone(),
            );
            if let Some(early) = early {
                early.stop().await;
            }
            listener::start(http, &config.homeserver, gate.clone(), metrics.clone()).await?;
            (Some(gate), Some(news))
        }
        None => (None, None),
    };
    let mut bot = Bot {
        protections,
        matrix: matrix::Matrix::new(client, bot_user, management, management_rule),
        config,
        protected,
        rooms,
        queries,
        runtime,
        session: Session::default(),
        started,
        warming: Some(warming),
        steps,
        last_sync: None,
        give_back: Default::default(),
        executor: {
            let mut executor = executor::Executor::new(dry_run, metrics.clone());
            executor.keep_audit(audit::Audit::new(&folders.data));
            executor
        },
        confirmations: plan::Confirmations::default(),
        safe_mode: false,
        restart: false,
        lost: Vec::new(),
        watcher: None,
        changes: None,
        ticks: ticks::Ticks::default(),
        reports: config_reports,
        report_notices: report_notices::ReportNotices::load(&folders.data),
        proposals: propagation::Proposals::default(),
        upgrades: Vec::new(),
        first_state: first_state::FirstState::default(),
        pending_upgrades: Vec::new(),
        counts_saved: Instant::now(),
        jobs: Vec::new(),
        journal,
        tokens,
        room_log: room_log::RoomLog::new(&folders.data),
        delivered,
        replaying: false,
        stopped_at: None,
        write_failures: BTreeSet::new(),
        refused_commanders: BTreeSet::new(),
        kept_state,
        folders,
        gate,
        gate_news,
        refusals: gate::Refusals::default(),
        metrics,
    };
    if let Some(warning) = moved_alias {
        bot.matrix.notify(&warning).await;
    }
    if let Some(problem) = delivered_problem {
        bot.matrix.notify(&problem).await;
    }
    bot.run().await
}

/// Runs guest code (a protection's calls) where it may block: wasmtime-wasi
/// serves some WASI calls (a guest writing to stderr as it panics, polling)
/// with `Handle::block_on`, which panics on a Tokio worker thread.
pub(crate) fn sandboxed<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}

impl Bot {
    /// The first sync (room state, acting on nothing), then start, serve,
    /// and start again whenever a moderator asks for `restart` or `safe mode`.
    async fn run(&mut self) -> anyhow::Result<()> {
        let timeline_of = |limit: u32| {
            let mut timeline = RoomEventFilter::default();
            timeline.limit = Some(limit.into());
            let mut room_filter = RoomFilter::default();
            room_filter.timeline = timeline;
            let mut definition = FilterDefinition::default();
            definition.room = room_filter;
            Filter::FilterDefinition(definition)
        };
        let filter = timeline_of(100);
        // A first start acts on nothing from before it, so its sync asks for
        // no timeline: every room's whole state comes in the state section,
        // and the homeserver answers in half the time (see docs/benchmarks.md).
        let first_start = timeline_of(0);

        // Actions a previous run decided and did not finish: their batch's
        // token is past the events that decided them.
        let mut unfinished = match self.journal.unfinished() {
            Ok(unfinished) => unfinished,
            Err(e) => {
                tracing::error!("{e}");
                self.matrix
                    .notify(&format!("{e}. The events since the last saved sync token are handled again."))
                    .await;
                None
            }
        };
        let stored = match &unfinished {
            Some(u) => Some(u.token.clone()),
            None => self.tokens.load()?,
        };
        self.stopped_at = self.tokens.saved_at_ms();

        // A first start (no token) acts on nothing from before it; with a
        // stored token, everything since it is handled once started (a
        // restart, a crash or an upgrade is no free pass for spam). The rooms'
        // state as of that token is kept in the data folder: then only what
        // changed since is asked for, else every room's whole state.
        let kept = stored.as_deref().and_then(|token| self.room_log.load(token));
        let mut full = kept.is_none();
        let asked = if stored.is_some() { &filter } else { &first_start };
        let first = serve::sync(&self.matrix.client, asked, stored.as_deref(), full, Duration::ZERO).await;
        let (first, since) = match first {
            Ok(first) => (first, stored),
            Err(e) if stored.is_some() && e.as_client_api_error().is_some() => {
                // The homeserver refused the stored token: start from now rather than not at all.
                let text = format!(
                    "The stored sync token was refused ({e}); starting from now. Events since the last run were not seen."
                );
                tracing::warn!("{text}");
                self.matrix.notify(&text).await;
                full = true;
                let first = serve::sync(&self.matrix.client, &first_start, None, true, Duration::ZERO).await;
                (first.context("the first sync failed")?, None)
            }
            Err(e) => return Err(e).context("the first sync failed"),
        };
        self.steps.done("first sync");
        self.load_counts().await;
        // Rooms with a redaction since their state was kept: read again below.
        let mut stale = Vec::new();
        if let Some(mut kept) = kept.filter(|_| !full) {
            self.matrix.joined_and_left(kept.names(), []);
            stale = kept.take_stale();
            stale.extend(self.absorb_kept(kept));
        }
        let parts = ingest::Parts::of(&first, &self.matrix.bot_user);
        // A first start acts on nothing from before it; a command a moderator
        // sent while it loaded (a full-state sync of many rooms takes a while)
        // is run once it is ready, not dropped with the history before it.
        let management = self.matrix.management.as_str();
        let up_to = match since {
            None => parts.joined.iter().find(|j| j.room == management).map(|j| j.prev_batch.map(str::to_owned)),
            Some(_) => None,
        };
        self.matrix.joined_and_left(parts.joined.iter().map(|j| j.room), parts.left.iter().map(|l| l.room));
        self.room_log.record(&parts, &first.next_batch, full);
        self.absorb_state(&parts);
        self.read_stale(&stale).await;
        let mut sent_while_loading = match up_to {
            Some(up_to) => self.sent_while_loading(up_to.as_deref()).await,
            None => Vec::new(),
        };
        self.steps.done("room state");
        let mut token = first.next_batch.clone();
        let mut replay = match since {
            Some(since) => Some((first, since)),
            None => {
                self.save_token(&token).await;
                None
            }
        };
        self.last_sync = Some(Instant::now());

        let mut entering_safe_mode = false;
        loop {
            let problems = if entering_safe_mode { Vec::new() } else { self.start().await };
            if problems.is_empty() && !entering_safe_mode {
                self.safe_mode = false;
                self.matrix
                    .notify(&format!(
                        "Gleipnir started: protecting {} room(s), {} protection(s) enabled, {} watched list(s).{}",
                        self.protected.len(),
                        self.protections.enabled.len(),
                        self.session.policy.list_count(),
                        self.protections.unloaded_note()
                    ))
                    .await;
                tracing::info!("ready in {}", self.steps.said());
                // The first sync and the lists read whole are behind us.
                self.give_back.now();
            } else {
                if self.config.on_problem == crate::config::OnProblem::Exit && !entering_safe_mode {
                    let text = crate::state::report(&problems);
                    // Waited for: the process ends right after.
                    self.matrix.send_notice(&format!("Stopping (startup.on_problem = \"exit\"):\n{text}")).await;
                    bail!("problems with stored state:\n{text}");
                }
                self.enter_safe_mode(problems).await;
            }
            // Once protecting again: first what was decided and not done, then
            // what arrived while the bot was stopped, through the live path.
            if !self.safe_mode {
                if let Some(left) = unfinished.take() {
                    self.matrix
                        .notify(&format!("Carrying out {} action(s) decided before Gleipnir stopped.", left.jobs.len()))
                        .await;
                    self.jobs.extend(left.jobs);
                }
                self.flush_jobs(&token).await;
                if let Some((response, since)) = replay.take() {
                    self.replaying = true;
                    self.handle_sync(ingest::Parts::of(&response, &self.matrix.bot_user), &since).await;
                    self.replaying = false;
                    self.flush_jobs(&token).await;
                }
            }
            if !sent_while_loading.is_empty() {
                let management = self.matrix.management.to_string();
                for json in std::mem::take(&mut sent_while_loading) {
                    self.handle_timeline_event(&management, &json).await;
                }
                self.flush_jobs(&token).await;
            }
            self.restart = false;
            self.start_watcher();
            // A start over (`restart`, safe mode) is timed on its own.
            self.steps = startup::Steps::begin();
            self.serve(&filter, &mut token).await?;
            entering_safe_mode = self.safe_mode;
        }
    }

    /// Reads the message counts kept in the data directory.
    async fn load_counts(&mut self) {
        let path = self.folders.data.shown(files::COUNTS);
        let text = match self.folders.data.read_to_string(files::COUNTS) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                self.rooms.distrust_counts();
                self.matrix
                    .notify(&format!(
                        "Cannot read {} ({e}); message counts and join times start over, so every member counts \
                     as a newcomer until they have been here long enough.",
                        path.display()
                    ))
                    .await;
                return;
            }
        };
        if let Err(e) = self.rooms.counts_from_json(&text) {
            // Failing closed: without the counts nobody can be told established.
            self.rooms.distrust_counts();
            let moved = files::set_aside(&self.folders.data, files::COUNTS, "message-counts.json.damaged");
            self.matrix
                .notify(&format!(
                    "{} is damaged ({e}; {moved}); message counts and join times start over, so every member counts \
                 as a newcomer until they have been here long enough.",
                    path.display()
                ))
                .await;
        }
    }

    /// Writes the message counts when they changed, at most every few
    /// seconds; a failed write is tried again next time.
    async fn save_counts(&mut self) {
        if self.counts_saved.elapsed() < Duration::from_secs(2) {
            return;
        }
        self.counts_saved = Instant::now();
        let Some(json) = self.rooms.counts_to_json() else { return };
        match self.folders.data.write_durably(files::COUNTS, json.as_bytes(), false) {
            Ok(()) => {
                self.write_failures.remove("counts");
            }
            Err(e) => {
                self.rooms.counts_unsaved();
                self.write_failed("counts", &format!("{e:#}")).await;
            }
        }
    }
}
