//! The bot: log in, join the management room, sync once without acting on
//! history, then hand every new event of a protected room to the enabled
//! protections and carry out what they return; answer commands in the
//! management room.

mod commands;
mod delivered;
mod executor;
mod health;
mod jobs;
mod journal;
mod kept_state;
mod live;
mod management;
mod notices;
mod plan;
mod policy;
mod preview;
mod queries;
mod startup;
mod store;
mod takedown;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use gleipnir_runtime::host::StateQueries;
use gleipnir_runtime::rooms::RoomStates;
use gleipnir_runtime::{Clock, Instance, Plugin, Runtime, RuntimeConfig, event};
use matrix_sdk::config::SyncSettings;
use matrix_sdk::ruma::api::client::filter::{FilterDefinition, RoomEventFilter, RoomFilter};
use matrix_sdk::ruma::api::client::sync::sync_events::v3::Filter;
use matrix_sdk::ruma::{OwnedRoomId, RoomOrAliasId, UserId};
use matrix_sdk::{Client, Room};
use queries::BotQueries;

use crate::config::{Config, Credentials};

/// Most pages of 100 events fetched to fill one gap in one room's timeline.
const MAX_GAP_PAGES: usize = 50;

/// Everything the running bot holds.
pub(crate) struct Bot {
    client: Client,
    config: Config,
    bot_user: String,
    management: OwnedRoomId,
    protected: BTreeSet<String>,
    rooms: Arc<RoomStates>,
    queries: Arc<BotQueries>,
    runtime: Arc<Runtime>,
    plugins: BTreeMap<String, Plugin>,
    enabled: BTreeMap<String, Instance>,
    started: Instant,
    last_sync: Option<Instant>,
    executor: executor::Executor,
    confirmations: plan::Confirmations,
    policy: policy::Policy,
    /// Problems with stored state, with the recovery options `recover N` uses.
    problems: Vec<crate::state::Problem>,
    /// In safe mode: only the management room is served, nothing is acted on.
    safe_mode: bool,
    /// A moderator asked for `restart` (or `safe mode`): start over.
    restart: bool,
    /// Rooms the bot lost while handling a sync (room, why), dealt with after it.
    lost: Vec<(String, String)>,
    /// The last problem report: a number reaction on it previews that option.
    report_event: Option<String>,
    /// Faults, quarantines and refusals per protection.
    health: BTreeMap<String, health::Health>,
    /// The component files of the plugin folder and what each provides.
    files: BTreeMap<std::path::PathBuf, live::PluginFile>,
    /// Settings from the operator's file and from moderators.
    layers: live::Layers,
    /// Capabilities moderators granted (within what the config allows).
    moderator_grants: BTreeMap<String, gleipnir_runtime::CapabilitySet>,
    /// Watches the plugin folder and the settings file while running.
    watcher: Option<gleipnir_runtime::watch::Watcher>,
    changes: Option<tokio::sync::mpsc::UnboundedReceiver<gleipnir_runtime::watch::Change>>,
    /// When the message counts were last written to the data directory.
    counts_saved: Instant,
    /// Actions decided while handling a sync, carried out after it (see `journal`).
    jobs: Vec<executor::Job>,
    journal: journal::Journal,
    tokens: store::SyncToken,
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
    /// Plugin files that did not load at start and that no enabled protection needs.
    unloaded: Vec<(std::path::PathBuf, String)>,
    /// The management room's join rule, as last seen.
    management_rule: String,
    /// Members told they may not command the bot (said once each).
    refused_commanders: BTreeSet<String>,
    /// The management room's notices, sent off the event path.
    notices: notices::Notices,
    /// Protections' own state, kept across restarts.
    kept_state: kept_state::KeptState,
    /// The only folders the bot reads and writes, opened at start.
    folders: store::Folders,
}

pub(crate) async fn run(config: Config) -> anyhow::Result<()> {
    let folders = store::Folders::open(&config)?;
    let client = Client::builder()
        .homeserver_url(&config.homeserver)
        .request_config(request_config())
        .build()
        .await
        .context("cannot reach the homeserver")?;
    login(&client, &config, &folders.data).await?;
    let bot_user = client.user_id().context("no user after login")?.to_string();
    tracing::info!(user = %bot_user, "logged in");

    let (management, moved_alias) = management::pinned_room(&client, &config.management_room, &folders.data)
        .await
        .context("cannot join the management room")?;
    if let Some(warning) = &moved_alias {
        tracing::warn!("{warning}");
    }
    let management_rule = management::join_rule(&client, &management).await?;
    management::check_join_rule(&config.management_room, &management_rule)?;
    if let Some(room) = client.get_room(&management) {
        let encrypted = room.latest_encryption_state().await.map(|s| s.is_encrypted());
        if encrypted.unwrap_or(false) {
            bail!(
                "the management room {} is encrypted; Gleipnir does not support end-to-end encryption yet, \
                 so it could not read commands there: use an unencrypted management room",
                config.management_room
            );
        }
    }

    let runtime =
        Runtime::new(RuntimeConfig { limits: config.limits, cache: Some(folders.data.child("components", true)?) })?;
    let rooms = Arc::new(RoomStates::new());
    let queries = Arc::new(BotQueries {
        state: StateQueries { bot: bot_user.clone(), clock: Clock::System, rooms: rooms.clone() },
        protected: std::sync::RwLock::new(Vec::new()),
        client: client.clone(),
    });
    let dry_run = config.dry_run;
    let (client_for_notices, management_for_notices) = (client.clone(), management.clone());
    let tokens = store::SyncToken::new(&folders.data);
    let (delivered, delivered_problem) = delivered::Delivered::load(&folders.data);
    let journal = journal::Journal::new(&folders.data);
    let kept_state = kept_state::KeptState::new(&folders.data);
    let mut bot = Bot {
        client,
        config,
        bot_user,
        management,
        protected: BTreeSet::new(),
        rooms,
        queries,
        runtime,
        plugins: BTreeMap::new(),
        enabled: BTreeMap::new(),
        started: Instant::now(),
        last_sync: None,
        executor: executor::Executor::new(dry_run),
        confirmations: plan::Confirmations::default(),
        policy: policy::Policy::default(),
        problems: Vec::new(),
        safe_mode: false,
        restart: false,
        lost: Vec::new(),
        report_event: None,
        health: BTreeMap::new(),
        files: BTreeMap::new(),
        layers: live::Layers::default(),
        moderator_grants: BTreeMap::new(),
        watcher: None,
        changes: None,
        counts_saved: Instant::now(),
        jobs: Vec::new(),
        journal,
        tokens,
        delivered,
        replaying: false,
        stopped_at: None,
        write_failures: BTreeSet::new(),
        unloaded: Vec::new(),
        management_rule,
        refused_commanders: BTreeSet::new(),
        notices: notices::Notices::start(client_for_notices, management_for_notices),
        kept_state,
        folders,
    };
    if let Some(warning) = moved_alias {
        bot.notify(&warning).await;
    }
    if let Some(problem) = delivered_problem {
        bot.notify(&problem).await;
    }
    bot.run().await
}

/// Runs guest code (a protection's calls) where it may block: wasmtime-wasi
/// serves some WASI calls (a guest writing to stderr as it panics, polling)
/// with `Handle::block_on`, which panics on a Tokio worker thread.
pub(crate) fn sandboxed<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}

/// How every request to the homeserver is retried. matrix-sdk honours
/// `429 M_LIMIT_EXCEEDED`'s `retry_after_ms` and retries 5xx by itself; with a
/// retry limit it also retries when the homeserver cannot be reached (a restart),
/// with exponential backoff capped at 30 s per wait. Sends carry a transaction id,
/// so a retried send is not doubled.
fn request_config() -> matrix_sdk::config::RequestConfig {
    matrix_sdk::config::RequestConfig::new().retry_limit(12).max_retry_time(Duration::from_secs(30))
}

async fn login(client: &Client, config: &Config, data: &gleipnir_runtime::Folder) -> anyhow::Result<()> {
    match &config.credentials {
        Credentials::Password(password) => {
            // The session of the last run, if the homeserver still takes it:
            // a new login at every start would leave a device behind each time.
            let kept = store::Session::new(data);
            let previous = kept.load();
            if let Some(session) = &previous
                && session.user_id == config.user_id
                && restore(client, &config.homeserver, session).await.is_ok()
            {
                tracing::info!(device = session.device_id, "reusing the kept session");
            } else {
                let localpart = config.user_id.trim_start_matches('@').split(':').next().unwrap_or_default();
                let mut login = client.matrix_auth().login_username(localpart, password);
                // The same device as before, when there was one: its keys and name stay.
                if let Some(session) = &previous {
                    login = login.device_id(&session.device_id);
                }
                let response = login
                    .initial_device_display_name("gleipnir")
                    .send()
                    .await
                    .context("cannot log in with the password")?;
                let session = store::KeptSession {
                    user_id: response.user_id.to_string(),
                    device_id: response.device_id.to_string(),
                    access_token: response.access_token.clone(),
                };
                if let Err(e) = kept.save(&session) {
                    tracing::warn!("{e:#}; the next start logs in again");
                }
            }
        }
        Credentials::AccessToken(token) => {
            use matrix_sdk::authentication::matrix::MatrixSession;
            use matrix_sdk::{SessionMeta, SessionTokens};
            // The device id comes from the homeserver: ask who this token is.
            let whoami = reqwest_whoami(&config.homeserver, token).await?;
            let session = MatrixSession {
                meta: SessionMeta {
                    user_id: UserId::parse(&whoami.0)?,
                    device_id: whoami.1.unwrap_or_else(|| "GLEIPNIR".to_owned()).into(),
                },
                tokens: SessionTokens { access_token: token.clone(), refresh_token: None },
            };
            client.restore_session(session).await.context("cannot use the access token")?;
        }
    }
    let user = client.user_id().context("no user after login")?;
    if user.as_str() != config.user_id {
        bail!("logged in as {user}, but the config says matrix.user_id = {}", config.user_id);
    }
    Ok(())
}

/// Restores a kept session once the homeserver says it still takes its
/// token. The token is checked on a client of its own first: a client that
/// had a session set cannot log in with a password after it (matrix-sdk
/// panics on a second session).
async fn restore(client: &Client, homeserver: &str, kept: &store::KeptSession) -> anyhow::Result<()> {
    use matrix_sdk::authentication::matrix::MatrixSession;
    use matrix_sdk::{SessionMeta, SessionTokens};
    let (user, device) = reqwest_whoami(homeserver, &kept.access_token).await?;
    if user != kept.user_id || device.as_deref().is_some_and(|d| d != kept.device_id) {
        bail!("the kept token is {user}'s, device {device:?}");
    }
    let session = MatrixSession {
        meta: SessionMeta { user_id: UserId::parse(&kept.user_id)?, device_id: kept.device_id.clone().into() },
        tokens: SessionTokens { access_token: kept.access_token.clone(), refresh_token: None },
    };
    client.restore_session(session).await?;
    Ok(())
}

/// `whoami` for a token, before there is a session to ask with.
async fn reqwest_whoami(homeserver: &str, token: &str) -> anyhow::Result<(String, Option<String>)> {
    let probe = Client::builder().homeserver_url(homeserver).request_config(request_config()).build().await?;
    use matrix_sdk::authentication::matrix::MatrixSession;
    use matrix_sdk::{SessionMeta, SessionTokens};
    let placeholder = MatrixSession {
        meta: SessionMeta { user_id: UserId::parse("@whoami:invalid")?, device_id: "WHOAMI".into() },
        tokens: SessionTokens { access_token: token.to_owned(), refresh_token: None },
    };
    probe.restore_session(placeholder).await?;
    let reply = probe.whoami().await.context("the access token was refused")?;
    Ok((reply.user_id.to_string(), reply.device_id.map(|d| d.to_string())))
}

/// Joins a room by id or alias and returns its id.
pub(crate) async fn join(client: &Client, room: &str) -> anyhow::Result<OwnedRoomId> {
    let id = <&RoomOrAliasId>::try_from(room).with_context(|| format!("`{room}` is not a room id or alias"))?;
    let joined = client.join_room_by_id_or_alias(id, &[]).await.with_context(|| format!("cannot join {room}"))?;
    Ok(joined.room_id().to_owned())
}

impl Bot {
    fn management_room(&self) -> Option<Room> {
        self.client.get_room(&self.management)
    }

    /// Shares the protected rooms with what protections may ask.
    pub(crate) fn share_protected(&self) {
        *self.queries.protected.write().unwrap_or_else(|e| e.into_inner()) = self.protected.iter().cloned().collect();
    }

    /// Starts a protection with the operator's grants.
    pub(crate) fn enable(&mut self, name: &str) -> anyhow::Result<()> {
        let plugin = self.plugins.get(name).with_context(|| format!("no protection named `{name}` is loaded"))?;
        let granted = self.granted(name);
        let mut instance = sandboxed(|| plugin.instantiate(self.queries.clone(), granted))?;
        instance.set_query_grants(self.query_grants(name));
        self.enabled.insert(name.to_owned(), instance);
        Ok(())
    }

    /// The first sync (room state, acting on nothing), then start, serve,
    /// and start again whenever a moderator asks for `restart` or `safe mode`.
    async fn run(&mut self) -> anyhow::Result<()> {
        let mut timeline = RoomEventFilter::default();
        timeline.limit = Some(100u32.into());
        let mut room_filter = RoomFilter::default();
        room_filter.timeline = timeline;
        let mut definition = FilterDefinition::default();
        definition.room = room_filter;
        let filter = Filter::FilterDefinition(definition);

        // Actions a previous run decided and did not finish: their batch's
        // token is past the events that decided them.
        let mut unfinished = match self.journal.unfinished() {
            Ok(unfinished) => unfinished,
            Err(e) => {
                tracing::error!("{e}");
                self.notify(&format!("{e}. The events since the last saved sync token are handled again.")).await;
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
        // restart, a crash or an upgrade is no free pass for spam).
        let mut settings = SyncSettings::default().filter(filter.clone()).full_state(true);
        if let Some(token) = &stored {
            settings = settings.token(token.clone());
        }
        let (first, since) = match self.client.sync_once(settings).await {
            Ok(first) => (first, stored),
            Err(e) if stored.is_some() && e.as_client_api_error().is_some() => {
                // The homeserver refused the stored token: start from now rather than not at all.
                let text = format!(
                    "The stored sync token was refused ({e}); starting from now. Events since the last run were not seen."
                );
                tracing::warn!("{text}");
                self.notify(&text).await;
                let settings = SyncSettings::default().filter(filter.clone()).full_state(true);
                (self.client.sync_once(settings).await.context("the first sync failed")?, None)
            }
            Err(e) => return Err(e).context("the first sync failed"),
        };
        self.load_counts().await;
        self.absorb_state(&first);
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
                self.notify(&format!(
                    "Gleipnir started: protecting {} room(s), {} protection(s) enabled, {} watched list(s).{}",
                    self.protected.len(),
                    self.enabled.len(),
                    self.policy.lists.len(),
                    self.unloaded_note()
                ))
                .await;
            } else {
                if self.config.on_problem == crate::config::OnProblem::Exit && !entering_safe_mode {
                    let text = crate::state::report(&problems);
                    // Waited for: the process ends right after.
                    self.send_notice(&format!("Stopping (startup.on_problem = \"exit\"):\n{text}")).await;
                    bail!("problems with stored state:\n{text}");
                }
                self.enter_safe_mode(problems).await;
            }
            // Once protecting again: first what was decided and not done, then
            // what arrived while the bot was stopped, through the live path.
            if !self.safe_mode {
                if let Some(left) = unfinished.take() {
                    self.notify(&format!(
                        "Carrying out {} action(s) decided before Gleipnir stopped.",
                        left.jobs.len()
                    ))
                    .await;
                    self.jobs.extend(left.jobs);
                }
                self.flush_jobs(&token).await;
                if let Some((response, since)) = replay.take() {
                    self.replaying = true;
                    self.handle_sync(&response, &since).await;
                    self.replaying = false;
                    self.flush_jobs(&token).await;
                }
            }
            self.restart = false;
            self.start_watcher();
            self.serve(&filter, &mut token).await?;
            entering_safe_mode = self.safe_mode;
        }
    }

    /// The sync loop; returns when a moderator asks to start over. While a
    /// sync request waits, changes to plugin files and the settings file are
    /// applied: always between two events, never during one.
    async fn serve(&mut self, filter: &Filter, token: &mut String) -> anyhow::Result<()> {
        let mut backoff = Duration::from_millis(500);
        let mut changes = self.changes.take();
        while !self.restart {
            // An ACL waits for rule changes to settle: come back soon to send it.
            let wait = if self.policy.acl_due() { Duration::from_millis(500) } else { Duration::from_secs(30) };
            let settings = SyncSettings::default().filter(filter.clone()).token(token.clone()).timeout(wait);
            let client = self.client.clone();
            let mut request = tokio::spawn(async move { client.sync_once(settings).await });
            let result = loop {
                tokio::select! {
                    result = &mut request => break result,
                    Some(change) = next_change(&mut changes) => self.live_change(change).await,
                }
            };
            let result = match result {
                Ok(r) => r,
                Err(e) => {
                    self.changes = changes;
                    return Err(e).context("the sync task failed");
                }
            };
            match result {
                Ok(response) => {
                    backoff = Duration::from_millis(500);
                    self.last_sync = Some(Instant::now());
                    self.handle_sync(&response, token).await;
                    *token = response.next_batch;
                    self.flush_jobs(token).await;
                    self.save_counts().await;
                }
                Err(e) => {
                    // Retry from the same token: nothing is lost and nothing handled twice.
                    tracing::warn!("sync failed, retrying in {backoff:?}: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
        self.changes = changes;
        Ok(())
    }

    /// Applies the state (and state in timelines) of a sync to the room cache.
    fn absorb_state(&mut self, response: &matrix_sdk::sync::SyncResponse) {
        for (room_id, update) in &response.rooms.joined {
            let states: Vec<&str> = match &update.state {
                matrix_sdk::sync::State::Before(events) | matrix_sdk::sync::State::After(events) => {
                    events.iter().map(|e| e.json().get()).collect()
                }
            };
            for json in states.into_iter().chain(update.timeline.events.iter().map(|e| e.raw().json().get())) {
                self.state_event(room_id.as_str(), json);
            }
        }
    }

    async fn load_room_state(&mut self, room: &str) {
        use matrix_sdk::ruma::api::client::state::get_state_events;
        let Ok(room_id) = OwnedRoomId::try_from(room) else { return };
        match self.client.send(get_state_events::v3::Request::new(room_id)).await {
            Ok(response) => {
                for raw in response.room_state {
                    self.state_event(room, raw.json().get());
                }
            }
            Err(e) => tracing::warn!(room, "cannot load room state: {e}"),
        }
    }

    async fn handle_sync(&mut self, response: &matrix_sdk::sync::SyncResponse, since: &str) {
        // Invites from management-room members are accepted; others ignored.
        for room_id in response.rooms.invited.keys() {
            self.consider_invite(room_id).await;
        }
        // The management room last: commands then see this sync's rule and state changes.
        let mut joined: Vec<_> = response.rooms.joined.iter().collect();
        joined.sort_by_key(|(room_id, _)| **room_id == self.management);
        for (room_id, update) in joined {
            let room = room_id.as_str();
            // A room the bot has just joined comes with some of its past: what
            // happened before the bot's own join (and the state before it) is
            // history, never seen live. Its current state is read with the
            // room's whole state when it is protected or watched; replaying
            // the past would make old joins look new.
            let bot = self.bot_user.clone();
            let joined_at = update.timeline.events.iter().rposition(|e| is_own_join(e.raw().json().get(), &bot));
            let (matrix_sdk::sync::State::Before(events) | matrix_sdk::sync::State::After(events)) = &update.state;
            for e in events.iter().filter(|_| joined_at.is_none()) {
                if let Some(user) = self.state_event(room, e.json().get()) {
                    self.check_newcomer(room, &user);
                }
            }
            let watched = *room_id == self.management || self.protected.contains(room) || self.policy.is_list(room);
            // (A gap before the bot's own join is history too.)
            if watched
                && joined_at.is_none()
                && update.timeline.limited
                && let Some(prev_batch) = &update.timeline.prev_batch
            {
                // More happened than the sync returned: fetch the gap, oldest first.
                for json in self.gap(room_id, prev_batch, since).await {
                    self.handle_timeline_event(room_id, &json).await;
                }
            }
            for (index, timeline_event) in update.timeline.events.iter().enumerate() {
                if joined_at.is_some_and(|at| index < at) {
                    continue;
                }
                self.handle_timeline_event(room_id, timeline_event.raw().json().get()).await;
            }
        }
        // Rooms the bot was removed from: if it protected or watched them, that is a loss.
        for (room_id, update) in &response.rooms.left {
            let room = room_id.as_str();
            if !self.protected.contains(room) && !self.policy.is_list(room) {
                continue;
            }
            let (matrix_sdk::sync::State::Before(events) | matrix_sdk::sync::State::After(events)) = &update.state;
            let jsons = events
                .iter()
                .map(|e| e.json().get())
                .chain(update.timeline.events.iter().map(|e| e.raw().json().get()));
            for json in jsons.collect::<Vec<_>>() {
                self.state_event(room, json);
            }
            if !self.lost.iter().any(|(r, _)| r == room) {
                self.lost.push((room.to_owned(), "I am no longer in the room".to_owned()));
            }
        }
        for (room, why) in std::mem::take(&mut self.lost) {
            if self.protected.contains(&room) {
                self.lost_protected_room(&room, &why).await;
            } else {
                self.lost_list(&room, &why).await;
            }
        }
        self.apply_policy().await;
    }

    /// The events between the previous sync (`since`) and the start of a
    /// limited timeline (`prev_batch`), oldest first.
    async fn gap(&self, room_id: &matrix_sdk::ruma::RoomId, prev_batch: &str, since: &str) -> Vec<String> {
        use matrix_sdk::ruma::api::client::message::get_message_events;
        let mut events = Vec::new();
        let mut from = prev_batch.to_owned();
        for _ in 0..MAX_GAP_PAGES {
            let mut request = get_message_events::v3::Request::backward(room_id.to_owned());
            request.from = Some(from.clone());
            request.to = Some(since.to_owned());
            request.limit = 100u32.into();
            match self.client.send(request).await {
                Ok(response) => {
                    events.extend(response.chunk.iter().map(|e| e.json().get().to_owned()));
                    match response.end {
                        Some(end) if !response.chunk.is_empty() => from = end,
                        _ => {
                            events.reverse();
                            tracing::info!(room = %room_id, events = events.len(), "filled a gap in the timeline");
                            return events;
                        }
                    }
                }
                Err(e) => {
                    let text = format!("could not fetch {room_id}'s missed events ({e}); some may not have been seen");
                    tracing::error!("{text}");
                    self.notify(&text).await;
                    break;
                }
            }
        }
        if events.len() >= MAX_GAP_PAGES * 100 {
            self.notify(&format!(
                "{room_id}: more than {} events arrived at once; only the newest were checked",
                MAX_GAP_PAGES * 100
            ))
            .await;
        }
        events.reverse();
        events
    }

    async fn handle_timeline_event(&mut self, room_id: &matrix_sdk::ruma::RoomId, json: &str) {
        let room = room_id.as_str();
        let converted = event::from_json(json, Some(room), &|r, u| self.rooms.membership(r, u));
        // Messages, reactions and redactions are never state: skip parsing them again.
        let message_like = matches!(
            &converted,
            Ok(Some(gleipnir_runtime::Event {
                kind: gleipnir_runtime::EventKind::Message(_)
                    | gleipnir_runtime::EventKind::Reaction(_)
                    | gleipnir_runtime::EventKind::Redaction(_),
                ..
            }))
        );
        if !message_like && let Some(user) = self.state_event(room, json) {
            self.check_newcomer(room, &user);
        }
        let event = match converted {
            Ok(Some(e)) => e,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(room, "skipping a malformed event: {e}");
                return;
            }
        };
        if let gleipnir_runtime::EventKind::Redaction(redaction) = &event.kind {
            self.list_redaction(room);
            // A removed message no longer counts towards its sender's standing.
            if let Some(id) = &redaction.redacts {
                self.rooms.uncount(id);
            }
        }
        if event.sender == self.bot_user {
            return;
        }
        if *room_id == self.management {
            match &event.kind {
                // Commands come from new messages only: an edit is not a new command.
                gleipnir_runtime::EventKind::Message(message) if message.replaces.is_some() => {}
                gleipnir_runtime::EventKind::Message(message) if self.replaying => {
                    self.not_run(&event.sender, &message.body).await;
                }
                gleipnir_runtime::EventKind::Message(message) => {
                    self.command(&event.sender, &message.body).await;
                }
                // A confirmation given while the bot was stopped confirms nothing.
                gleipnir_runtime::EventKind::Reaction(_) if self.replaying => {}
                gleipnir_runtime::EventKind::Reaction(reaction) => {
                    self.reaction(&event.sender, &reaction.relates_to, &reaction.key).await;
                }
                _ => {}
            }
            return;
        }
        if self.protected.contains(room) {
            // Counted after the protections saw it: they see the messages before this one.
            let counted = match &event.kind {
                gleipnir_runtime::EventKind::Message(m) if m.replaces.is_none() && !event.event_id.is_empty() => {
                    Some((event.event_id.clone(), event.sender.clone()))
                }
                _ => None,
            };
            self.dispatch(event).await;
            if let Some((id, sender)) = counted {
                self.rooms.count_message(room, &sender, &id);
            }
        }
    }

    /// Reads the message counts kept in the data directory.
    async fn load_counts(&mut self) {
        let path = self.folders.data.shown(store::COUNTS);
        let text = match self.folders.data.read_to_string(store::COUNTS) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                self.rooms.distrust_counts();
                self.notify(&format!(
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
            let moved = store::set_aside(&self.folders.data, store::COUNTS, "message-counts.json.damaged");
            self.notify(&format!(
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
        match self.folders.data.write_durably(store::COUNTS, json.as_bytes(), false) {
            Ok(()) => {
                self.write_failures.remove("counts");
            }
            Err(e) => {
                self.rooms.counts_unsaved();
                self.write_failed("counts", &format!("{e:#}")).await;
            }
        }
    }

    async fn consider_invite(&self, room_id: &matrix_sdk::ruma::RoomId) {
        let Some(room) = self.client.get_room(room_id) else { return };
        let inviter = match room.invite_details().await {
            Ok(details) => details.inviter.map(|m| m.user_id().to_string()),
            Err(_) => None,
        };
        let from_moderator = match (&inviter, self.management_room()) {
            (Some(user), Some(management)) => management
                .get_member_no_sync(<&UserId>::try_from(user.as_str()).expect("a member's id"))
                .await
                .ok()
                .flatten()
                .is_some_and(|m| m.membership() == &matrix_sdk::ruma::events::room::member::MembershipState::Join),
            _ => false,
        };
        if from_moderator {
            match room.join().await {
                Ok(()) => tracing::info!(room = %room_id, inviter = ?inviter, "joined on a moderator's invite"),
                Err(e) => tracing::warn!(room = %room_id, "cannot join on invite: {e}"),
            }
        } else {
            tracing::info!(room = %room_id, inviter = ?inviter, "ignored an invite from someone outside the management room");
        }
    }

    async fn dispatch(&mut self, mut event: gleipnir_runtime::Event) {
        let now_ms = self.queries.state.clock.now_ms();
        event.received_ts = match (self.replaying, self.stopped_at) {
            // Sent while the bot was stopped: at the time its server says,
            // but never before the bot stopped nor after now (a server may lie).
            (true, Some(stopped)) if stopped <= now_ms => event.origin_ts.clamp(stopped, now_ms),
            _ => now_ms,
        };
        if !event.event_id.is_empty() {
            self.executor.saw(&event.event_id, &event.sender);
        }
        let class = event::class(&event.kind);
        let mut todo = Vec::new();
        let now = Instant::now();
        let (enabled, health_of, protected) = (&mut self.enabled, &mut self.health, &self.protected);
        sandboxed(|| {
            for (name, instance) in enabled.iter_mut() {
                if !health_of.contains_key(name) {
                    health_of.insert(name.clone(), health::Health::default());
                }
                let health = health_of.get_mut(name).expect("inserted above");
                if !instance.plugin().wants(class) || health.quarantined(now) {
                    continue;
                }
                match instance.handle(&event) {
                    Ok(mut outcome) => {
                        only_in_protected_rooms(&mut outcome, protected);
                        for refusal in outcome.refused {
                            let kind = gleipnir_runtime::capability::name(gleipnir_runtime::capability::required(
                                &refusal.action,
                            ));
                            if health.refused(kind) {
                                todo.push(executor::Job::Report(format!(
                                    "{name}: refused {}: {}. (Said once per kind of action; `status` counts them.)",
                                    gleipnir_runtime::json::action(&refusal.action),
                                    refusal.why
                                )));
                            }
                        }
                        todo.extend(
                            outcome
                                .actions
                                .into_iter()
                                .map(|a| executor::Job::Act(executor::Origin::Protection(name.clone()), a)),
                        );
                    }
                    Err(fault) => {
                        let mut report = format!("{name} faulted: {fault}");
                        if let Some(length) = health.fault(fault.to_string(), now) {
                            report.push_str(&format!(
                                ". It faulted 3 times within a minute: quarantined for {} s (no events reach it); \
                             `protections enable {name}` lifts it.",
                                length.as_secs()
                            ));
                        }
                        todo.push(executor::Job::Report(report));
                        if fault.kills_instance()
                            && let Err(e) = instance.restart()
                        {
                            todo.push(executor::Job::Report(format!("{name} could not restart: {e}")));
                        }
                    }
                }
            }
        });
        self.jobs.extend(todo);
    }

    /// A notice in the management room, queued (see `notices`): never waits.
    pub(crate) async fn notify(&self, text: &str) {
        self.notices.notify(text);
    }

    /// A notice in the management room; its event id once sent (in order
    /// with the notices queued before it).
    pub(crate) async fn send_notice(&self, text: &str) -> Option<matrix_sdk::ruma::OwnedEventId> {
        self.notices.send(text).await
    }
}

/// Whether `json` is `bot` joining a room (not a profile change of the bot
/// already there).
fn is_own_join(json: &str, bot: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Member<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        state_key: Option<&'a str>,
        #[serde(default)]
        content: serde_json::Value,
        #[serde(default)]
        unsigned: serde_json::Value,
    }
    let Ok(event) = serde_json::from_str::<Member<'_>>(json) else { return false };
    let membership = |v: &serde_json::Value| v.get("membership").and_then(|m| m.as_str()).map(str::to_owned);
    event.kind == "m.room.member"
        && event.state_key == Some(bot)
        && membership(&event.content).as_deref() == Some("join")
        && event.unsigned.get("prev_content").and_then(membership).as_deref() != Some("join")
}

/// A protection acts in protected rooms only (never in a list, the
/// management room or a room joined on invite): other actions are refused.
fn only_in_protected_rooms(outcome: &mut gleipnir_runtime::Outcome, protected: &BTreeSet<String>) {
    let (kept, elsewhere): (Vec<_>, Vec<_>) = std::mem::take(&mut outcome.actions)
        .into_iter()
        .partition(|a| action_room(a).is_none_or(|r| protected.contains(r)));
    outcome.actions = kept;
    outcome.refused.extend(elsewhere.into_iter().map(|action| gleipnir_runtime::Refusal {
        why: format!("{} is not a protected room", action_room(&action).unwrap_or_default()),
        action,
    }));
}

/// The room an action acts in, if it acts in one (notices to the management
/// room and actions on a user's account do not).
fn action_room(action: &gleipnir_runtime::Action) -> Option<&str> {
    use gleipnir_runtime::Action;
    match action {
        Action::Redact(a) => Some(&a.room_id),
        Action::Ban(a) | Action::Unban(a) | Action::Kick(a) => Some(&a.room_id),
        Action::SetJoinRule(a) => Some(&a.room_id),
        Action::SetPowerLevel(a) => Some(&a.room_id),
        Action::SendNotice(a) => Some(&a.room_id),
        Action::AddPolicyRule(a) | Action::RemovePolicyRule(a) => Some(&a.list_room),
        Action::NotifyManagement(_)
        | Action::SuspendUser(_)
        | Action::DeleteUserMedia(_)
        | Action::DeactivateUser(_) => None,
    }
}

/// The next change the watcher saw; never, when nothing is watched.
async fn next_change(
    changes: &mut Option<tokio::sync::mpsc::UnboundedReceiver<gleipnir_runtime::watch::Change>>,
) -> Option<gleipnir_runtime::watch::Change> {
    match changes {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

pub(crate) fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

impl Bot {
    /// Feeds one client-format event, if it is state, to the room cache and
    /// the policy engine. Returns a user who just joined or knocked on a
    /// protected room.
    fn state_event(&mut self, room: &str, json: &str) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct State<'a> {
            #[serde(rename = "type")]
            kind: String,
            state_key: Option<String>,
            sender: Option<String>,
            #[serde(borrow)]
            content: Option<&'a serde_json::value::RawValue>,
        }
        let Ok(State { kind, state_key: Some(key), sender, content: Some(content) }) =
            serde_json::from_str::<State<'_>>(json)
        else {
            return None;
        };
        let sender = sender.unwrap_or_default();
        // When the host saw it, never the sender's own timestamp.
        let seen = self.queries.state.clock.now_ms();
        let applied = self.rooms.apply(room, &kind, &key, &sender, seen, content.get());
        if self.policy.is_list(room) {
            self.list_state(room, &kind, &key, content.get());
        }
        if kind == "m.room.server_acl" && key.is_empty() && self.protected.contains(room) {
            self.acl_state(room, &sender, content.get());
        }
        if kind == "m.room.join_rules" && key.is_empty() && room == self.management.as_str() {
            let rule = serde_json::from_str::<serde_json::Value>(content.get())
                .ok()
                .and_then(|c| c.get("join_rule").and_then(|r| r.as_str()).map(str::to_owned));
            if let Some(rule) = rule {
                self.management_rule = rule;
            }
        }
        match applied {
            gleipnir_runtime::rooms::Applied::Membership { user, now, .. } => {
                if self.lost_room_check(room, &user, now) {
                    let why = if now == gleipnir_runtime::Membership::Ban { "I was banned" } else { "I was removed" };
                    self.lost.push((room.to_owned(), format!("{why} by {sender}")));
                    return None;
                }
                if !self.protected.contains(room) {
                    return None;
                }
                self.member_state(room, &user, now).then_some(user)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gleipnir_runtime::{Action, NotifyManagement, RedactEvent, ServerUser, TargetUser};

    #[test]
    fn the_bots_own_join_is_told_from_a_profile_change() {
        let join = |who: &str, prev: Option<&str>| {
            let mut e =
                serde_json::json!({"type": "m.room.member", "state_key": who, "content": {"membership": "join"}});
            if let Some(prev) = prev {
                e["unsigned"] = serde_json::json!({"prev_content": {"membership": prev}});
            }
            e.to_string()
        };
        assert!(is_own_join(&join("@bot:x", None), "@bot:x"));
        assert!(is_own_join(&join("@bot:x", Some("invite")), "@bot:x"));
        assert!(!is_own_join(&join("@bot:x", Some("join")), "@bot:x"), "a new display name");
        assert!(!is_own_join(&join("@other:x", None), "@bot:x"));
        assert!(!is_own_join(r#"{"type": "m.room.message", "state_key": 5}"#, "@bot:x"));
    }

    #[test]
    fn protections_act_in_protected_rooms_only() {
        let protected: BTreeSet<String> = ["!protected:x".to_owned()].into();
        let ban = |room: &str| {
            Action::Ban(TargetUser { room_id: room.into(), user_id: "@u:x".into(), reason: String::new() })
        };
        let mut outcome = gleipnir_runtime::Outcome {
            actions: vec![
                ban("!protected:x"),
                ban("!management:x"),
                Action::Redact(RedactEvent { room_id: "!list:x".into(), event_id: "$e".into(), reason: String::new() }),
                Action::NotifyManagement(NotifyManagement { body: "b".into(), reason: String::new() }),
                Action::SuspendUser(ServerUser { user_id: "@u:x".into(), reason: String::new() }),
            ],
            refused: Vec::new(),
        };
        only_in_protected_rooms(&mut outcome, &protected);
        let kept: Vec<String> =
            outcome.actions.iter().map(|a| gleipnir_runtime::json::action(a)["action"].to_string()).collect();
        assert_eq!(kept, ["\"ban\"", "\"notify-management\"", "\"suspend-user\""]);
        let why: Vec<&str> = outcome.refused.iter().map(|r| r.why.as_str()).collect();
        assert_eq!(why, ["!management:x is not a protected room", "!list:x is not a protected room"]);
    }
}
