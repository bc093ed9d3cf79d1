//! Starting (and starting over): every piece of stored state is read through
//! `crate::state` and then used (rooms joined, lists loaded, plugins
//! loaded); any problem sends the bot into safe mode, where it protects
//! nothing and applies no policy until a moderator recovers and restarts.
//! Losing a protected room or a watched list while running is reported with
//! the same recovery options, without stopping the rest.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use gleipnir_runtime::settings;

use super::draupnir;
use super::protections::Unloaded;
use super::{Bot, Session};

use crate::state::{self, ENABLED_PROTECTIONS, Kind, PROTECTED_ROOMS, Path, Problem, Recovery, WATCHED_LISTS};

/// Account data `start` reads, with what went wrong reading it.
async fn read(bot: &Bot, key: &'static str, problems: &mut Vec<Problem>) -> Option<Value> {
    match bot.matrix.account(key).await {
        Ok(content) => content,
        Err(e) => {
            problems.push(Problem {
                store: key,
                path: Path::default(),
                kind: Kind::Use,
                message: format!("could not be fetched from the homeserver ({e:#}); `restart` tries again"),
                options: Vec::new(),
            });
            None
        }
    }
}

impl Bot {
    /// Loads plugins, then reads and uses every piece of stored state.
    /// Returns the problems; with none, the bot runs normally.
    pub(crate) async fn start(&mut self) -> Vec<Problem> {
        self.protected.clear();
        self.session = Session::default();
        self.protections.start_over();
        // A file that does not load is a problem only for a protection that
        // is enabled (below); any other is reported and shown in `plugins`.
        if let Some(warming) = self.warming.take() {
            // A compilation that panicked is the load's to report.
            let _ = warming.await;
        }
        let plugins = self.folders.plugins.clone();
        let mut problems = self.protections.load(&plugins);
        self.steps.done("plugins");
        let unloaded = std::mem::take(&mut self.protections.unloaded);

        // The operator's settings file (values are checked per protection below).
        if let Some(file) = self.folders.settings.clone() {
            self.protections.layers.file_text = super::layers::settings_file_text(&file).ok();
            match super::layers::read_settings_file(&file) {
                Ok(tables) => self.protections.layers.file = tables,
                Err(e) => problems.push(Problem {
                    store: "plugins.settings",
                    path: Path::default(),
                    kind: Kind::Parse,
                    message: format!("{e}; fix the file and `restart`"),
                    options: Vec::new(),
                }),
            }
        }
        for dropped in super::grants::load_grants(&self.matrix, &mut self.protections, &self.config.grantable).await {
            tracing::warn!("a capability moderators granted is no longer allowed by the config: {dropped}");
        }

        // Which rooms came from which space (read first: the protected
        // rooms' state below brings the spaces' `m.space.child` events).
        let content = read(self, crate::state::PROTECTED_SPACES.key, &mut problems).await;
        let (spaces, bad) = super::spaces::Spaces::read(content.as_ref());
        self.session.spaces = spaces;
        problems.extend(bad);

        // Protected rooms: joined, and their state loaded.
        let content = read(self, PROTECTED_ROOMS.key, &mut problems).await;
        let (rooms, bad) = PROTECTED_ROOMS.read(content.as_ref());
        problems.extend(bad);
        let mut protected = Vec::new();
        for (index, room) in rooms {
            // A room the bot is in already needs no join.
            if self.matrix.is_joined(&room) {
                protected.push(room);
                continue;
            }
            match self.matrix.join(&room).await {
                Ok(id) => protected.push(id.to_string()),
                Err(e) => problems.push(PROTECTED_ROOMS.use_problem(content.as_ref(), index, &room, format!("{e:#}"))),
            }
        }
        // Their state is read again (all at once) so that members and the
        // current ACL are known as protected.
        for room in &protected {
            self.protected.insert(room);
        }
        self.load_room_states(&protected).await;
        for room in &protected {
            self.begin_counting(room);
        }
        self.steps.done("rooms");

        // Enabled protections, with the settings moderators gave them.
        let content = read(self, ENABLED_PROTECTIONS.key, &mut problems).await;
        let (names, bad) = ENABLED_PROTECTIONS.read(content.as_ref());
        problems.extend(bad);
        let mut needed = BTreeSet::new();
        let mut from_draupnir = Vec::new();
        for (index, name) in names {
            // A Draupnir account's names: run as their counterpart, or kept and said.
            let name = match (draupnir::is_draupnir_name(&name), draupnir::counterpart(&name)) {
                (false, _) => name,
                (true, Some(ours)) if self.protections.plugins.contains_key(ours) => {
                    from_draupnir.push(format!("{name} runs as {ours}"));
                    ours.to_owned()
                }
                // Its counterpart is not installed: kept, like one without any.
                (true, Some(ours)) => {
                    from_draupnir.push(format!("{name} would run as {ours}, whose plugin is not loaded"));
                    self.protections.foreign.push(name);
                    continue;
                }
                (true, None) => {
                    self.protections.foreign.push(name);
                    continue;
                }
            };
            if self.protections.enabled.contains_key(&name) {
                continue;
            }
            let why = match self.protections.plugins.contains_key(&name) {
                false => Some("no loaded plugin has this name".to_owned()),
                true => self.protections.enable(&name).err().map(|e| format!("{e:#}")),
            };
            if let Some(mut why) = why {
                let mut problem = ENABLED_PROTECTIONS.use_problem(content.as_ref(), index, &name, String::new());
                // Its file is there but does not load: setting it aside is the other way out.
                for Unloaded { file, why: error } in unloaded.iter().filter(|u| file_names(&u.file, &name)) {
                    why = format!("{}: {error}", file.display());
                    needed.insert(file.clone());
                    problem.options.push(Recovery::SetAside { file: file.display().to_string() });
                }
                problem.message = format!("`{name}`: {why}");
                problems.push(problem);
                continue;
            }
            self.restore_protection_state(&name);
            let super::commands::Saved { values: moderator, problems: bad } =
                match super::commands::saved_settings(&self.matrix, &self.protections, &name).await {
                    Ok(saved) => saved,
                    Err(e) => {
                        problems.push(Problem {
                            store: state::PROTECTION_SETTINGS,
                            path: Path::default().key(&name),
                            kind: Kind::Use,
                            message: format!("{e}; `restart` tries again"),
                            options: Vec::new(),
                        });
                        continue;
                    }
                };
            problems.extend(bad);
            let moderator = match moderator.is_empty() {
                true => self.import_draupnir_settings(&name).await,
                false => moderator,
            };
            let configured = self.protections.configure_enabled(&name, moderator);
            problems.extend(configured.file_problems.into_iter().map(|message| Problem {
                store: "plugins.settings",
                path: Path::default(),
                kind: Kind::Use,
                message: format!("{message}; fix the settings file and `restart`"),
                options: Vec::new(),
            }));
            if let Some(e) = configured.refused {
                // Each value fits its spec, but the protection refuses them together.
                let content = self.matrix.account(state::PROTECTION_SETTINGS).await.ok().flatten();
                let saved = content.as_ref().and_then(|c| c.get(&name)).cloned().unwrap_or_default();
                problems.push(Problem {
                    store: state::PROTECTION_SETTINGS,
                    path: Path::default().key(&name),
                    kind: Kind::Use,
                    message: format!("{name} refuses its saved settings: {e}"),
                    options: vec![Recovery::Remove {
                        store: state::PROTECTION_SETTINGS,
                        path: Path::default().key(&name),
                        value: saved,
                    }],
                });
            }
        }

        if !from_draupnir.is_empty() || !self.protections.foreign.is_empty() {
            let mut said = format!("From Draupnir's account data: {}.", from_draupnir.join(", "));
            if from_draupnir.is_empty() {
                said.clear();
            }
            if !self.protections.foreign.is_empty() {
                let _ = write!(
                    said,
                    " Draupnir protections not run here, kept in the account data: {}.",
                    self.protections.foreign.join(", ")
                );
            }
            self.matrix.notify(said.trim()).await;
        }

        self.steps.done("protections");
        // The shape of the saved settings (their values were checked against
        // each enabled protection's spec above).
        let content = read(self, state::PROTECTION_SETTINGS, &mut problems).await;
        problems.extend(state::read_settings(content.as_ref()).1);

        // Watched lists.
        let content = read(self, WATCHED_LISTS.key, &mut problems).await;
        let (lists, bad) = WATCHED_LISTS.read(content.as_ref());
        problems.extend(bad);
        for (index, reference) in lists {
            if let Err(e) = self.watch_reference(&reference).await {
                problems.push(WATCHED_LISTS.use_problem(content.as_ref(), index, &reference, e.to_string()));
            }
        }

        self.steps.done("lists");
        self.protections.unloaded = unloaded.into_iter().filter(|u| !needed.contains(&u.file)).collect();
        if problems.is_empty() && self.config.protect_all_joined {
            self.protect_all_joined().await;
        }
        if problems.is_empty() {
            // Rooms added to or removed from a protected space while the bot was stopped.
            self.follow_space_changes().await;
        } else {
            self.session.space_changes.clear();
        }
        if problems.is_empty() {
            // Rules apply to the members already there.
            self.apply_policy().await;
        }
        self.steps.done("policy");
        // The first sync's state is for the first start only: later it would be stale.
        self.first_state.clear();
        problems
    }

    /// The settings a Draupnir account kept for the protection `name`
    /// corresponds to (`org.matrix.mjolnir.setting` state in the management
    /// room), where Gleipnir has the same setting: saved as the moderators'
    /// settings and said. Nothing when there are none.
    async fn import_draupnir_settings(&mut self, name: &str) -> super::layers::Overrides {
        let Some(theirs) = draupnir::draupnir_name(name) else { return Vec::new() };
        let management = self.matrix.management.to_string();
        let Ok(state) = self.matrix.room_state(&management).await else { return Vec::new() };
        let content = state
            .iter()
            .filter_map(|json| serde_json::from_str::<Value>(json).ok())
            .find(|e| e["type"] == draupnir::SETTINGS_EVENT && e["state_key"] == theirs)
            .and_then(|e| e.get("content").cloned())
            .unwrap_or_default();
        let (imported, left) = draupnir::import_settings(theirs, &content);
        let Some(plugin) = self.protections.plugins.get(name) else { return Vec::new() };
        let specs = plugin.descriptor().settings.clone();
        let mut values = Vec::new();
        let mut said = Vec::new();
        for (key, text) in imported {
            match settings::find(&specs, &key).and_then(|spec| settings::parse_value(spec, &text)) {
                Ok(value) => {
                    said.push(format!("{name}.{key} = {text}"));
                    values.push((key, value));
                }
                Err(e) => said.push(format!("{name}.{key} not imported: {e}")),
            }
        }
        if values.is_empty() && left.is_empty() {
            return values;
        }
        self.protections.layers.moderator.insert(name.to_owned(), values.clone());
        let saved = super::layers::save_moderator(&self.matrix, &self.protections.layers, name).await;
        let mut text = format!("Imported {theirs}'s settings from Draupnir: {}", said.join(", "));
        if !left.is_empty() {
            let _ = write!(text, "; no counterpart for {}", left.join(", "));
        }
        if saved.is_err() {
            text.push_str(" (saving them failed: they hold until a restart)");
        }
        self.matrix.notify(&format!("{text}.")).await;
        values
    }

    /// Counts messages in a protected room from now on, unless it counted
    /// before this start; a room protected for the first time has its
    /// present members vouched for (members who joined while the bot was
    /// stopped are not: the room was protected then already).
    fn begin_counting(&self, room: &str) {
        if self.rooms.count_from(room, self.queries.state.clock.now_ms()) {
            self.rooms.vouch_for_members(room);
        }
    }

    /// Enters safe mode: nothing protected, no protection running, no policy.
    pub(crate) async fn enter_safe_mode(&mut self, problems: Vec<Problem>) {
        self.safe_mode = true;
        self.protected.clear();
        self.session = Session { problems, ..Session::default() };
        self.protections.stop_all();
        let text = if self.session.problems.is_empty() {
            "Safe mode, as asked: nothing is protected and no policy is applied. `restart` returns to normal mode."
                .to_owned()
        } else {
            state::report(&self.session.problems)
        };
        tracing::warn!("{text}");
        self.session.report_event = self.matrix.send_notice(&text).await.map(|id| id.to_string());
    }

    /// `[rooms] protect_all_joined`: every room the bot is in, but the
    /// management room and the watched lists, is protected.
    async fn protect_all_joined(&mut self) {
        let joined = self.matrix.joined_rooms();
        for room in joined {
            if room == self.matrix.management.as_str()
                || self.session.policy.is_list(&room)
                || self.protected.contains(&room)
            {
                continue;
            }
            let added = self.rooms_add(&crate::parse::RoomRef::Id(room)).await;
            self.matrix.notify(&format!("{added} ([rooms] protect_all_joined)")).await;
        }
    }

    /// The bot lost a protected room while running (kicked, banned, room
    /// gone): stop protecting it, keep the rest, and offer recovery. With
    /// `[rooms] protect_all_joined`, leaving a room just ends its protection.
    pub(crate) async fn lost_protected_room(&mut self, room: &str, why: &str) {
        if !self.protected.remove(room) {
            return;
        }
        if self.config.protect_all_joined {
            self.session.policy.unprotected(room);
            let saved = self.save_rooms(room, false).await;
            let note = if saved.is_err() { " (saving the room list failed)" } else { "" };
            self.matrix.notify(&format!("No longer protecting {room}: {why}{note}.")).await;
            return;
        }
        self.session.policy.unprotected(room);
        let content = self.matrix.account(PROTECTED_ROOMS.key).await.ok().flatten();
        let (rooms, _) = PROTECTED_ROOMS.read(content.as_ref());
        let problem = match rooms.iter().find(|(_, r)| self.same_room(r, room)) {
            Some((index, stored)) => PROTECTED_ROOMS.use_problem(content.as_ref(), *index, stored, why.to_owned()),
            None => return,
        };
        self.report_runtime_problem(problem).await;
    }

    /// The bot lost a watched list while running: its rules stay as they
    /// were, and no ACL is sent until it is back or unwatched.
    pub(crate) async fn lost_list(&mut self, room: &str, why: &str) {
        let Some(reference) = self.session.policy.lost(room, why) else { return };
        let content = self.matrix.account(WATCHED_LISTS.key).await.ok().flatten();
        let (lists, _) = WATCHED_LISTS.read(content.as_ref());
        let problem = match lists.iter().find(|(_, r)| *r == reference || self.same_room(r, room)) {
            Some((index, stored)) => WATCHED_LISTS.use_problem(content.as_ref(), *index, stored, why.to_owned()),
            None => return,
        };
        self.report_runtime_problem(problem).await;
    }

    pub(crate) fn same_room(&self, stored: &str, room_id: &str) -> bool {
        crate::parse::room_ref(stored).is_ok_and(|r| r.to_string() == room_id)
    }

    async fn report_runtime_problem(&mut self, problem: Problem) {
        let first = state::numbered(&self.session.problems).len() + 1;
        let mut text = format!("{problem}. Everything else keeps running.");
        for (n, option) in problem.options.iter().enumerate() {
            let _ = write!(text, "\n  {}. {}", first + n, option.describe());
        }
        text.push_str("\n`recover N` applies option N (after a preview).");
        self.session.problems.push(problem);
        self.session.report_event = self.matrix.send_notice(&text).await.map(|id| id.to_string());
    }

    /// Carries out one recovery option: the stored value must still be what
    /// the option showed.
    pub(crate) async fn recover(&mut self, recovery: &Recovery) -> anyhow::Result<String> {
        match recovery {
            Recovery::SetAside { file } => {
                // Only a file of the plugin folder, renamed within it.
                let folder = &self.folders.plugins;
                let name = std::path::Path::new(file)
                    .file_name()
                    .and_then(|n| n.to_str())
                    .filter(|_| std::path::Path::new(file).parent() == Some(folder.path()))
                    .with_context(|| {
                        format!("{file} is not a file in the plugin folder {}", folder.path().display())
                    })?;
                let aside = format!("{name}.disabled");
                folder.rename(name, &aside).with_context(|| format!("cannot rename {file}"))?;
                Ok(format!("Renamed {file} to {}; it is no longer loaded.", folder.shown(&aside).display()))
            }
            other => {
                let store = other.store();
                let now = self.matrix.account(store).await?;
                let content = other.apply(now.as_ref()).map_err(anyhow::Error::msg)?;
                self.matrix.set_account(store, content.clone()).await?;
                Ok(format!("{store} is now {content}."))
            }
        }
    }

    /// `status` additions: the problems known, numbered.
    pub(crate) fn problems_status(&self) -> String {
        if self.session.problems.is_empty() {
            return String::new();
        }
        let mut out = String::from("\nProblems:");
        let mut n = 0;
        for problem in &self.session.problems {
            let _ = write!(out, "\n- {problem}");
            for option in &problem.options {
                n += 1;
                let _ = write!(out, "\n  {n}. {}", option.describe());
            }
        }
        out
    }

    /// Whether the bot itself just left or was removed from `room`.
    pub(crate) fn lost_room_check(&self, room: &str, user: &str, now: gleipnir_runtime::Membership) -> bool {
        user == self.matrix.bot_user
            && matches!(now, gleipnir_runtime::Membership::Leave | gleipnir_runtime::Membership::Ban)
            && (self.protected.contains(room) || self.session.policy.is_list(room))
    }
}

/// Whether `file` is the one that would provide protection `name` (named
/// after it, as `cargo xtask plugins` names them).
fn file_names(file: &std::path::Path, name: &str) -> bool {
    file.file_stem().and_then(|s| s.to_str()).is_some_and(|stem| stem == name || stem.replace('_', "-") == name)
}

/// How long each step of a start took, for the log line that says the bot
/// is ready (an operator's first question when a start is slow).
#[derive(Default)]
pub(crate) struct Steps {
    since: Option<Instant>,
    taken: Vec<(&'static str, Duration)>,
}

impl Steps {
    /// Starts timing from now, forgetting any earlier steps.
    pub(crate) fn begin() -> Steps {
        Steps { since: Some(Instant::now()), taken: Vec::new() }
    }

    /// The step named ended now (it began where the one before ended).
    pub(crate) fn done(&mut self, step: &'static str) {
        let now = Instant::now();
        let since = self.since.replace(now).unwrap_or(now);
        self.taken.push((step, now - since));
    }

    /// "1.24 s: login 310 ms, first sync 402 ms, …"
    pub(crate) fn said(&self) -> String {
        let total: Duration = self.taken.iter().map(|(_, took)| *took).sum();
        let steps: Vec<String> =
            self.taken.iter().map(|(step, took)| format!("{step} {} ms", took.as_millis())).collect();
        format!("{:.2} s: {}", total.as_secs_f64(), steps.join(", "))
    }
}

#[cfg(test)]
mod steps_tests {
    use super::*;

    #[test]
    fn each_step_is_timed_from_the_end_of_the_one_before() {
        let mut steps = Steps::begin();
        std::thread::sleep(Duration::from_millis(20));
        steps.done("login");
        steps.done("first sync");
        let said = steps.said();
        assert!(said.contains("login ") && said.contains(", first sync "), "{said}");
        assert!(steps.taken[0].1 >= Duration::from_millis(20) && steps.taken[1].1 < Duration::from_millis(20));
    }
}
