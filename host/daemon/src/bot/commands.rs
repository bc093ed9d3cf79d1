//! Running management-room commands. Every reply says what changed.

use std::fmt::Write;

use gleipnir_runtime::settings;
use serde_json::{Value, json};

use super::executor::{Act, Origin, Outcome};
use super::plan::{self, Op, OpAct, Plan};
use super::{Bot, store};
use crate::commands::parse::{self, Command, ConfigOp, RedactTarget, RoomRef};

/// What moderators saved for one protection, and the values that no longer fit.
pub(super) type SavedSettings = (Vec<(String, gleipnir_runtime::SettingValue)>, Vec<crate::state::Problem>);

/// The stored protected-rooms content with `room` added or removed (`same`
/// tells whether a stored entry names it).
fn edit_rooms(stored: Option<Value>, room: &str, add: bool, same: impl Fn(&str) -> bool) -> anyhow::Result<Value> {
    let mut content = stored.unwrap_or_else(|| json!({"rooms": []}));
    let Some(rooms) = content.get_mut("rooms").and_then(Value::as_array_mut) else {
        anyhow::bail!(
            "{} is not {{\"rooms\": [...]}} (it is {content}); `restart` offers to fix it",
            store::PROTECTED_ROOMS
        );
    };
    let present = rooms.iter().any(|r| r.as_str().is_some_and(&same));
    if add && !present {
        rooms.push(Value::String(room.to_owned()));
    } else if !add {
        rooms.retain(|r| !r.as_str().is_some_and(&same));
    }
    Ok(content)
}

impl Bot {
    /// Handles a message in the management room.
    pub(crate) async fn command(&mut self, sender: &str, body: &str) {
        let display = self.client.account().get_display_name().await.ok().flatten();
        let Some(text) = parse::addressed(body, &self.config.prefix, &self.bot_user, display.as_deref()) else {
            return;
        };
        if let Some(why) = self.may_not_command(sender) {
            if self.refused_commanders.insert(sender.to_owned()) {
                self.notify(&why).await;
            }
            return;
        }
        let reply = match parse::parse(text) {
            Ok(parsed) if self.safe_mode && !allowed_in_safe_mode(&parsed.command) => Reply::Done(
                "Gleipnir is in safe mode: only `status`, `help`, `recover N`, `restart` and `safe mode` work now."
                    .to_owned(),
            ),
            Ok(parsed) => {
                tracing::info!(sender, command = text, "command");
                self.run_command(sender, text, parsed).await
            }
            Err(e) => Reply::Done(e.to_string()),
        };
        match reply {
            Reply::Done(text) => self.notify(&text).await,
            Reply::Plan(plan) => {
                if plan.ops.len() <= self.config.confirm_above && !plan.always_confirm {
                    let text = self.carry_out(sender, plan).await;
                    self.notify(&text).await;
                } else if let Some(preview) = self.send_notice(&plan.preview()).await {
                    self.confirmations.hold(preview.to_string(), plan, std::time::Instant::now());
                }
            }
        }
    }

    /// Why `sender` may not command the bot now, if they may not: the room
    /// became open to anyone, or their power level is too low.
    fn may_not_command(&self, sender: &str) -> Option<String> {
        if super::management::is_open(&self.management_rule) {
            return Some(format!(
                "Commands are refused: this management room's join rule is now `{}`, so anyone could give them. \
                 Make it invite-only again.",
                self.management_rule
            ));
        }
        let power = self.rooms.power_level(self.management.as_str(), sender);
        super::management::refusal(power, self.config.min_power_level)
    }

    /// A command sent while the bot was stopped: answered, not run (who sent
    /// it may have given up, or done it another way, since).
    pub(crate) async fn not_run(&mut self, sender: &str, body: &str) {
        let display = self.client.account().get_display_name().await.ok().flatten();
        let Some(text) = parse::addressed(body, &self.config.prefix, &self.bot_user, display.as_deref()) else {
            return;
        };
        if self.may_not_command(sender).is_some() {
            return;
        }
        let text = text.trim().to_owned();
        self.notify(&format!(
            "Not run: `{text}` was sent while Gleipnir was stopped; send it again if it is still wanted."
        ))
        .await;
    }

    fn recover_plan(&self, n: usize) -> Reply {
        let options = crate::state::numbered(&self.problems);
        match options.get(n.wrapping_sub(1)) {
            Some(recovery) => Reply::Plan(Plan {
                command: format!("recover {n}"),
                ops: vec![Op::Recover { room: recovery.store().to_owned(), recovery: (*recovery).clone() }],
                always_confirm: true,
                ..Plan::default()
            }),
            None if options.is_empty() => Reply::Done("There are no recovery options: nothing is wrong.".to_owned()),
            None => Reply::Done(format!("There is no option {n}; `status` lists 1 to {}.", options.len())),
        }
    }

    /// A reaction in the management room: ✅ on a preview carries out its
    /// plan; a number on a problem report previews that recovery option.
    pub(crate) async fn reaction(&mut self, sender: &str, relates_to: &str, key: &str) {
        // Who may not command may not confirm either.
        if let Some(why) = self.may_not_command(sender) {
            if (self.report_event.as_deref() == Some(relates_to) || plan::is_yes(key))
                && self.refused_commanders.insert(sender.to_owned())
            {
                self.notify(&why).await;
            }
            return;
        }
        if self.report_event.as_deref() == Some(relates_to)
            && let Some(n) = plan::keycap_number(key)
        {
            match self.recover_plan(n) {
                Reply::Done(text) => self.notify(&text).await,
                Reply::Plan(plan) => {
                    if let Some(preview) = self.send_notice(&plan.preview()).await {
                        self.confirmations.hold(preview.to_string(), plan, std::time::Instant::now());
                    }
                }
            }
            return;
        }
        if !plan::is_yes(key) {
            return;
        }
        match self.confirmations.take(relates_to, std::time::Instant::now()) {
            plan::Confirmed::Go(plan) => {
                tracing::info!(sender, command = plan.command, "confirmed");
                let text = self.carry_out(sender, plan).await;
                self.notify(&text).await;
            }
            plan::Confirmed::Expired(command) => {
                self.notify(&format!("The preview of `{command}` expired; nothing was done. Give the command again."))
                    .await;
            }
            plan::Confirmed::NotAPreview => {}
        }
    }

    async fn run_command(&mut self, sender: &str, text: &str, parsed: parse::Parsed) -> Reply {
        let moderator = Origin::Moderator { user: sender.to_owned(), command: text.trim().to_owned() };
        let mut reply = match parsed.command {
            Command::Help { topic } => Reply::Done(help(topic.as_deref())),
            Command::Status => Reply::Done(self.status()),
            Command::Rooms => Reply::Done(if self.protected.is_empty() {
                "No protected rooms. Add one with `rooms add ROOM`.".to_owned()
            } else {
                format!("Protected rooms ({}):\n{}", self.protected.len(), list(self.protected.iter()))
            }),
            Command::RoomsAdd(room) => Reply::Done(self.rooms_add(&room).await),
            Command::RoomsRemove(room) => Reply::Done(self.rooms_remove(&room).await),
            Command::Protections => Reply::Done(self.protections()),
            Command::Enable(name) => Reply::Done(self.set_enabled(&name, true).await),
            Command::Disable(name) => Reply::Done(self.set_enabled(&name, false).await),
            Command::Show(name) => Reply::Done(self.show(&name)),
            Command::Preview { name, limit } => Reply::Done(self.preview(&name, limit).await),
            Command::Config { op, protection, key, value } => {
                Reply::Done(self.configure(op, &protection, &key, value).await)
            }
            Command::Ban { entity, room, reason } => self.ban_command(&moderator, &entity, room, reason).await,
            Command::Unban { entity, room } => self.unban_command(&entity, room).await,
            Command::Takedown { entity, list, reason } => {
                Reply::Done(self.takedown_command(&moderator, &entity, &list, reason).await)
            }
            Command::Trust { user, trust } => Reply::Done(self.trust(&user, trust).await),
            Command::Plugins => Reply::Done(self.plugins_report()),
            Command::Reload(name) => Reply::Done(self.reload(&name)),
            Command::Grant { name, capability, grant } => Reply::Done(self.grant(&name, &capability, grant).await),
            Command::Recover(n) => self.recover_plan(n),
            Command::Restart => {
                self.restart = true;
                self.safe_mode = false;
                Reply::Done("Restarting: reading stored state again…".to_owned())
            }
            Command::SafeMode if self.safe_mode => Reply::Done("Already in safe mode; `restart` leaves it.".to_owned()),
            Command::SafeMode => {
                self.restart = true;
                self.safe_mode = true;
                Reply::Done("Entering safe mode…".to_owned())
            }
            Command::ListCreate { shortcode, alias_localpart } => {
                Reply::Done(self.list_create(&shortcode, &alias_localpart).await)
            }
            Command::Kick { user, room, reason } => self.membership_plan(Verb::Kick, &user, room, reason).await,
            Command::Redact { target, limit, room } => self.redact_plan(target, limit, room).await,
            Command::Watch(room) => Reply::Done(self.watch(&room).await),
            Command::Unwatch(room) => Reply::Done(self.unwatch(&room).await),
            Command::Rules { matching } => Reply::Done(self.rules(matching.as_deref())),
        };
        if let Reply::Plan(plan) = &mut reply {
            plan.command = text.trim().to_owned();
            if parsed.no_confirm {
                return Reply::Done(self.carry_out(sender, std::mem::take(plan)).await);
            }
        }
        reply
    }

    fn status(&self) -> String {
        let mut out = String::new();
        let uptime = self.started.elapsed().as_secs();
        let _ = writeln!(out, "Gleipnir {}: up {}m{}s", env!("CARGO_PKG_VERSION"), uptime / 60, uptime % 60);
        if self.safe_mode {
            let _ = writeln!(out, "SAFE MODE: nothing is protected and no policy is applied; `restart` to leave it.");
        }
        let _ = writeln!(out, "Protected rooms: {}", self.protected.len());
        let _ = writeln!(
            out,
            "Watched lists: {} ({} rules){}",
            self.policy.lists.len(),
            self.policy.index.len(),
            if self.policy.failed.is_empty() {
                String::new()
            } else {
                format!("; {} FAILED to load, so no server ACL is sent (see `rules`)", self.policy.failed.len())
            }
        );
        let lag = self
            .last_sync
            .map_or("no sync yet".to_owned(), |t| format!("last sync {} ms ago", t.elapsed().as_millis()));
        let _ = writeln!(out, "Sync: {lag}");
        if self.config.dry_run {
            let _ = writeln!(out, "Dry run: actions are reported, not carried out");
        }
        out.push_str(&self.protections());
        let broken = self.files.values().filter(|f| f.running.is_none() && f.refused.is_some()).count();
        if broken > 0 {
            let _ = write!(out, "\nPlugin files that do not load: {broken} (see `plugins`)");
        }
        out.push_str(&self.problems_status());
        out
    }

    fn protections(&self) -> String {
        let mut out = String::from("Protections:");
        if self.plugins.is_empty() {
            out += " none loaded";
        }
        for (name, plugin) in &self.plugins {
            let now = std::time::Instant::now();
            let health = self.health.get(name);
            let mut state = match self.enabled.get(name) {
                Some(instance) => match (health.and_then(|h| h.quarantined_for(now)), instance.fault()) {
                    (Some(left), _) => format!("enabled, QUARANTINED for {} s more", left.as_secs()),
                    (None, Some(fault)) => format!("enabled, FAULTED: {fault}"),
                    (None, None) => "enabled".to_owned(),
                },
                None => "disabled".to_owned(),
            };
            if let Some(h) = health {
                if h.faults > 0 {
                    let _ = write!(state, "; {} fault(s), last: {}", h.faults, h.last_fault.as_deref().unwrap_or(""));
                }
                for (kind, count) in &h.refused {
                    let _ = write!(state, "; {count} refused {kind}");
                }
            }
            let _ = write!(out, "\n- {name} {} ({state})", plugin.descriptor().version);
        }
        out
    }

    async fn rooms_add(&mut self, room: &RoomRef) -> String {
        let id = match super::join(&self.client, &room.to_string()).await {
            Ok(id) => id.to_string(),
            Err(e) => return format!("Could not join {room}: {e:#}. Nothing changed."),
        };
        if !self.protected.insert(id.clone()) {
            return format!("{room} ({id}) is already protected.");
        }
        if let Err(e) = self.save_rooms(&id, true).await {
            self.protected.remove(&id);
            return format!("Joined {room} but could not save the room list: {e:#}. It is not protected.");
        }
        self.load_room_state(&id).await;
        // The members here now are the ones the moderators chose to protect.
        if self.rooms.count_from(&id, self.queries.state.clock.now_ms()) {
            self.rooms.vouch_for_members(&id);
        }
        self.share_protected();
        format!("Now protecting {room} ({id}).")
    }

    async fn rooms_remove(&mut self, room: &RoomRef) -> String {
        let id = match room {
            RoomRef::Id(id) => id.clone(),
            RoomRef::Alias(alias) => match self.resolve(alias).await {
                Some(id) => id,
                None => return format!("Could not resolve {alias}. Nothing changed."),
            },
        };
        if !self.protected.remove(&id) {
            return format!("{room} is not protected.");
        }
        self.share_protected();
        if let Err(e) = self.save_rooms(&id, false).await {
            self.protected.insert(id);
            self.share_protected();
            return format!("Could not save the room list: {e:#}. {room} is still protected.");
        }
        let left = match self.client.get_room(&matrix_sdk::ruma::OwnedRoomId::try_from(id.as_str()).expect("validated"))
        {
            Some(r) => r.leave().await.is_ok(),
            None => false,
        };
        self.policy.members.remove_room(&id);
        format!("No longer protecting {room} ({id}){}.", if left { "; left the room" } else { "" })
    }

    pub(crate) async fn resolve(&self, alias: &str) -> Option<String> {
        let alias = <&matrix_sdk::ruma::RoomAliasId>::try_from(alias).ok()?;
        self.client.resolve_room_alias(alias).await.ok().map(|r| r.room_id.to_string())
    }

    /// Adds `room` to the stored protected rooms (`add`) or removes it. The
    /// stored list is changed, not rewritten from memory: rooms lost while
    /// running (kept there for their recovery options) and entries this
    /// version cannot read stay as they are.
    async fn save_rooms(&self, room: &str, add: bool) -> anyhow::Result<()> {
        let stored = store::read(&self.client, store::PROTECTED_ROOMS).await?;
        let content = edit_rooms(stored, room, add, |stored| self.same_room(stored, room))?;
        store::write(&self.client, store::PROTECTED_ROOMS, content).await
    }

    pub(crate) async fn set_enabled(&mut self, name: &str, on: bool) -> String {
        if !self.plugins.contains_key(name) {
            let names: Vec<&str> = self.plugins.keys().map(String::as_str).collect();
            return match parse::closest(name, &names) {
                Some(best) => format!("No protection named `{name}`; did you mean `{best}`?"),
                None => format!("No protection named `{name}`. Loaded: {}", names.join(", ")),
            };
        }
        // Enabling (again) lifts a quarantine.
        let lifted = on && self.health.get_mut(name).is_some_and(super::health::Health::clear);
        if on == self.enabled.contains_key(name) {
            if lifted {
                return format!("{name} is enabled; its quarantine is lifted.");
            }
            return format!("{name} is already {}.", if on { "enabled" } else { "disabled" });
        }
        if on {
            let (moderator, problems) = match self.saved_settings(name).await {
                Ok(saved) => saved,
                Err(e) => return format!("Could not enable {name}: {e}. Nothing changed; try again."),
            };
            if let Err(e) = self.enable(name) {
                return format!("Could not enable {name}: {e:#}");
            }
            self.layers.moderator.insert(name.to_owned(), moderator);
            let (overrides, file_problems) = self.effective(name, &self.plugins[name].clone());
            if let Some(instance) = self.enabled.get_mut(name)
                && let Err(e) = super::sandboxed(|| instance.configure(&overrides))
            {
                tracing::warn!(protection = name, "saved settings refused: {e}");
                self.notify(&format!("{name} refuses its saved settings ({e}): it runs with its defaults.")).await;
            }
            for problem in problems {
                self.notify(&format!("{problem}: using the default instead.")).await;
            }
            for problem in file_problems {
                self.notify(&format!("Ignored from the settings file: {problem}.")).await;
            }
        } else {
            self.enabled.remove(name);
        }
        let names: Vec<String> = self.enabled.keys().cloned().collect();
        if let Err(e) = store::write(&self.client, store::ENABLED_PROTECTIONS, store::enabled_content(&names)).await {
            return format!("{name} is {} for now, but saving failed: {e:#}", if on { "enabled" } else { "disabled" });
        }
        let granted = self.granted(name);
        let declared = self.plugins[name].declared();
        let mut reply = format!("{name} {}.", if on { "enabled" } else { "disabled" });
        if on && declared.intersection(granted) != declared {
            let _ = write!(reply, " It declares {declared}; the operator grants {granted}: the rest will be refused.");
        }
        reply
    }

    fn show(&self, name: &str) -> String {
        let Some(plugin) = self.plugins.get(name) else { return format!("No protection named `{name}`.") };
        let d = plugin.descriptor();
        let mut out = format!("{} {}: {}\n", d.name, d.version, d.summary);
        let instance = self.enabled.get(name);
        let (overrides, _) = self.effective(name, plugin);
        for spec in &d.settings {
            let value = match instance.and_then(|i| i.settings().iter().find(|s| s.key == spec.key)) {
                Some(s) => settings::format_value(&s.value),
                None => match overrides.iter().find(|(k, _)| *k == spec.key) {
                    Some((_, v)) => settings::format_value(v),
                    None => settings::format_value(&spec.default),
                },
            };
            let source = self.source(name, &spec.key);
            let _ = writeln!(
                out,
                "- {} = {value} ({source}; {}, default {})",
                spec.key,
                settings::format_kind(&spec.kind),
                settings::format_value(&spec.default)
            );
        }
        out
    }

    /// The settings moderators saved for a protection, each checked against
    /// its spec; the problems with the ones that do not fit it.
    /// What moderators set for `name`, and the values that no longer fit
    /// its spec. An error when the store cannot be read: running (and later
    /// saving) without what was stored would lose it.
    pub(super) async fn saved_settings(&self, name: &str) -> Result<SavedSettings, String> {
        let content = store::read(&self.client, store::SETTINGS)
            .await
            .map_err(|e| format!("the settings moderators saved cannot be read ({e:#})"))?;
        // Entries that do not fit the shape are reported at start, not here.
        let (all, _) = crate::state::read_settings(content.as_ref());
        let mut problems = Vec::new();
        let Some(plugin) = self.plugins.get(name) else { return Ok((Vec::new(), problems)) };
        let specs = &plugin.descriptor().settings;
        let mut out = Vec::new();
        for (key, text) in all.get(name).into_iter().flatten() {
            match settings::find(specs, key).and_then(|spec| settings::parse_value(spec, text)) {
                Ok(value) => out.push((key.clone(), value)),
                Err(e) => problems.push(crate::state::setting_problem(name, key, text, e.to_string())),
            }
        }
        Ok((out, problems))
    }

    async fn configure(&mut self, op: ConfigOp, name: &str, key: &str, value: Option<String>) -> String {
        let Some(instance) = self.enabled.get_mut(name) else {
            return format!("{name} is not enabled; enable it first with `protections enable {name}`.");
        };
        let specs = instance.plugin().descriptor().settings.clone();
        let spec = match settings::find(&specs, key) {
            Ok(s) => s,
            Err(e) => return format!("{e}. Nothing changed."),
        };
        let mut overrides = self.layers.moderator.get(name).cloned().unwrap_or_default();
        let old = instance
            .settings()
            .iter()
            .find(|s| s.key == key)
            .map(|s| settings::format_value(&s.value))
            .unwrap_or_default();
        match op {
            ConfigOp::Reset => overrides.retain(|(k, _)| k != key),
            ConfigOp::Set => {
                let text = value.unwrap_or_default();
                match settings::parse_value(spec, &text) {
                    Ok(v) => {
                        overrides.retain(|(k, _)| k != key);
                        overrides.push((key.to_owned(), v));
                    }
                    Err(e) => return format!("{e}. Nothing changed."),
                }
            }
            ConfigOp::Add | ConfigOp::Remove => {
                let edit = if op == ConfigOp::Add { settings::ListEdit::Add } else { settings::ListEdit::Remove };
                let current = instance.settings().iter().find(|s| s.key == key).map(|s| s.value.clone());
                let Some(current) = current else { return format!("{name} has no setting `{key}`. Nothing changed.") };
                match settings::edit_list(spec, &current, edit, &value.unwrap_or_default()) {
                    Ok(v) => {
                        overrides.retain(|(k, _)| k != key);
                        overrides.push((key.to_owned(), v));
                    }
                    Err(e) => return format!("{e}. Nothing changed."),
                }
            }
        }
        let plugin = instance.plugin().clone();
        let (file, _) = super::layers::file_values(name, self.layers.file.get(name), &plugin.descriptor().settings);
        let effective = super::layers::merge(file, &overrides);
        let instance = self.enabled.get_mut(name).expect("checked above");
        if let Err(e) = super::sandboxed(|| instance.configure(&effective)) {
            return format!("{e}. The previous settings stay.");
        }
        let new = instance
            .settings()
            .iter()
            .find(|s| s.key == key)
            .map(|s| settings::format_value(&s.value))
            .unwrap_or_default();
        // Persist what moderators set, as text, per protection.
        self.layers.moderator.insert(name.to_owned(), overrides);
        let persisted = match self.save_moderator_settings(name).await {
            Ok(()) => "",
            Err(_) => " (live, but saving failed: it will not survive a restart)",
        };
        format!("{name}.{key}: {old} → {new}{persisted}")
    }

    /// `trust USER` / `untrust USER`: least-authority's `trusted` and `gated`
    /// settings, changed through the same path as `protections config`.
    async fn trust(&mut self, user: &str, trust: bool) -> String {
        const NAME: &str = "least-authority";
        let Some(instance) = self.enabled.get(NAME) else {
            return format!("{NAME} is not enabled; `protections enable {NAME}` first. Nothing changed.");
        };
        let listed = |key: &str| {
            instance.settings().iter().any(|s| {
                s.key == key
                    && matches!(&s.value, gleipnir_runtime::SettingValue::UserIds(u) if u.iter().any(|u| u == user))
            })
        };
        let (trusted, gated) = (listed("trusted"), listed("gated"));
        let edits: &[(ConfigOp, &str, bool)] = if trust {
            &[(ConfigOp::Remove, "gated", gated), (ConfigOp::Add, "trusted", !trusted)]
        } else {
            &[(ConfigOp::Remove, "trusted", trusted), (ConfigOp::Add, "gated", !gated)]
        };
        for &(op, key, needed) in edits {
            if needed {
                let reply = self.configure(op, NAME, key, Some(user.to_owned())).await;
                if !reply.starts_with(&format!("{NAME}.{key}:")) {
                    return reply;
                }
            }
        }
        if trust {
            format!(
                "{user} is trusted: {NAME} no longer restricts what they post. `untrust {user}` puts the gate back."
            )
        } else {
            format!(
                "{user} is gated: {NAME} restricts their links, media, mentions and formatting whatever their time                  and messages. `trust {user}` lifts it."
            )
        }
    }

    /// The rooms a command names, or every protected room.
    pub(crate) async fn target_rooms(&self, room: Option<RoomRef>) -> Result<Vec<String>, String> {
        let rooms: Vec<String> = match room {
            Some(RoomRef::Id(id)) => vec![id],
            Some(RoomRef::Alias(alias)) => match self.resolve(&alias).await {
                Some(id) => vec![id],
                None => return Err(format!("Could not resolve {alias}. Nothing changed.")),
            },
            None => self.protected.iter().cloned().collect(),
        };
        if rooms.is_empty() {
            return Err("No protected rooms to act in; name a room or add one with `rooms add`.".to_owned());
        }
        Ok(rooms)
    }

    fn joined(&self, room: &str) -> Option<matrix_sdk::Room> {
        let id = matrix_sdk::ruma::OwnedRoomId::try_from(room).ok()?;
        self.client.get_room(&id).filter(|r| r.state() == matrix_sdk::RoomState::Joined)
    }

    pub(crate) async fn membership_plan(
        &self,
        verb: Verb,
        user: &str,
        room: Option<RoomRef>,
        reason: Option<String>,
    ) -> Reply {
        let rooms = match self.target_rooms(room).await {
            Ok(r) => r,
            Err(e) => return Reply::Done(e),
        };
        let mut plan = Plan::default();
        for room in rooms {
            if self.joined(&room).is_none() {
                plan.skipped.push(format!("{room}: I am not in that room"));
                continue;
            }
            let (user, reason) = (user.to_owned(), reason.clone());
            plan.ops.push(match verb {
                Verb::Ban => Op::Ban { room, user, reason },
                Verb::Kick => Op::Kick { room, user, reason },
                Verb::Unban => Op::Unban { room, user },
            });
        }
        Reply::Plan(plan)
    }

    async fn redact_plan(&self, target: RedactTarget, limit: Option<u32>, room: Option<RoomRef>) -> Reply {
        let mut plan = Plan::default();
        match target {
            RedactTarget::Event { room: event_room, event_id } => {
                let room = match self.target_rooms(Some(event_room)).await {
                    Ok(mut r) => r.remove(0),
                    Err(e) => return Reply::Done(e),
                };
                if self.joined(&room).is_none() {
                    return Reply::Done(format!("I am not in {room}, so I cannot redact there. Nothing changed."));
                }
                plan.ops.push(Op::Redact { room, event: event_id, reason: None });
            }
            RedactTarget::User(user) => {
                let rooms = match self.target_rooms(room).await {
                    Ok(r) => r,
                    Err(e) => return Reply::Done(e),
                };
                let limit = limit.unwrap_or(DEFAULT_REDACT_LIMIT) as usize;
                for room in rooms {
                    match self.events_by(&room, &user, limit).await {
                        Ok(events) => plan.ops.extend(events.into_iter().map(|event| Op::Redact {
                            room: room.clone(),
                            event,
                            reason: None,
                        })),
                        Err(e) => plan.skipped.push(format!("{room}: {e}")),
                    }
                }
                if plan.ops.is_empty() {
                    let mut out = format!("Found nothing of {user}'s to redact. Nothing changed.");
                    for skipped in &plan.skipped {
                        let _ = write!(out, "\n- left out: {skipped}");
                    }
                    return Reply::Done(out);
                }
            }
        }
        Reply::Plan(plan)
    }

    /// The newest `limit` events `user` sent in `room` that are not state and
    /// not redacted yet, newest first.
    async fn events_by(&self, room: &str, user: &str, limit: usize) -> Result<Vec<String>, String> {
        use matrix_sdk::ruma::api::client::message::get_message_events;
        #[derive(serde::Deserialize)]
        struct Seen {
            event_id: String,
            state_key: Option<serde::de::IgnoredAny>,
            #[serde(default)]
            content: serde_json::Map<String, Value>,
            #[serde(default)]
            unsigned: serde_json::Map<String, Value>,
        }
        if self.joined(room).is_none() {
            return Err("I am not in that room".to_owned());
        }
        let room_id = matrix_sdk::ruma::OwnedRoomId::try_from(room).map_err(|e| e.to_string())?;
        let user_id = matrix_sdk::ruma::OwnedUserId::try_from(user).map_err(|e| e.to_string())?;
        let mut found = Vec::new();
        let mut from = None;
        for _ in 0..MAX_PAGES {
            let mut request = get_message_events::v3::Request::backward(room_id.clone());
            request.from = from.take();
            request.limit = 100u32.into();
            request.filter.senders = Some(vec![user_id.clone()]);
            let response = self.client.send(request).await.map_err(|e| format!("cannot read the history: {e}"))?;
            for raw in &response.chunk {
                let Ok(seen) = serde_json::from_str::<Seen>(raw.json().get()) else { continue };
                let redacted = seen.content.is_empty() || seen.unsigned.contains_key("redacted_because");
                if seen.state_key.is_none() && !redacted {
                    found.push(seen.event_id);
                    if found.len() == limit {
                        return Ok(found);
                    }
                }
            }
            match response.end {
                Some(end) => from = Some(end),
                None => break,
            }
        }
        Ok(found)
    }

    /// Carries out a plan, in order, through the executor (as `moderator`'s
    /// command; actions on accounts a protection asked for stay the
    /// protection's), and says what happened. With `dry_run` it only says
    /// what it would have done.
    pub(crate) async fn carry_out(&mut self, moderator: &str, plan: Plan) -> String {
        if self.config.dry_run {
            let mut out = format!("Dry run, nothing done. `{}` would carry out:", plan.command);
            for op in &plan.ops {
                let _ = write!(out, "\n- {} in {}", op.describe(), op.room());
            }
            return out;
        }
        let moderator = Origin::Moderator { user: moderator.to_owned(), command: plan.command.clone() };
        let mut failed = Vec::new();
        for op in &plan.ops {
            if let Op::Recover { recovery, .. } = op {
                match self.recover(recovery).await {
                    // Option numbers stay as shown until `restart`.
                    Ok(done) => return format!("{done} `restart` to start with it."),
                    Err(e) => return format!("Recovery refused: {e}. Nothing changed."),
                }
            }
            let (origin, act) = match op.act() {
                Some(OpAct::Account { origin, action }) => (Origin::Protection(origin), Act::Contract(action)),
                Some(OpAct::Moderator(act)) => (moderator.clone(), act),
                None => continue,
            };
            let outcome = self.act(&origin, act).await;
            match outcome {
                Outcome::Done(_) | Outcome::Unneeded => {}
                Outcome::Notice(text) => failed.push(text),
                other => failed.push(format!("{} in {}: {}", op.describe(), op.room(), other.text())),
            }
        }
        let rooms: std::collections::BTreeSet<&str> = plan.ops.iter().map(Op::room).collect();
        let mut out = format!(
            "`{}`: {} of {} operation(s) done in {} room(s).",
            plan.command,
            plan.ops.len() - failed.len(),
            plan.ops.len(),
            rooms.len()
        );
        if !failed.is_empty() {
            let _ = write!(out, "\nFailed:\n{}", list(failed.iter().take(20)));
            if failed.len() > 20 {
                let _ = write!(out, "\n- … and {} more", failed.len() - 20);
            }
        }
        for skipped in &plan.skipped {
            let _ = write!(out, "\n- left out: {skipped}");
        }
        out
    }
}

/// What a command handler answers: text, or a plan to carry out (perhaps after a ✅).
pub(crate) enum Reply {
    Done(String),
    Plan(Plan),
}

#[derive(Clone, Copy)]
pub(crate) enum Verb {
    Ban,
    Kick,
    Unban,
}

/// `redact USER` without `--limit`: this many events per room.
const DEFAULT_REDACT_LIMIT: u32 = 1000;

/// Pages of 100 events read back per room when looking for a user's events.
const MAX_PAGES: usize = 100;

fn allowed_in_safe_mode(command: &Command) -> bool {
    matches!(
        command,
        Command::Help { .. }
            | Command::Status
            | Command::Plugins
            | Command::Recover(_)
            | Command::Restart
            | Command::SafeMode
    )
}

fn list<'a>(items: impl Iterator<Item = &'a String>) -> String {
    items.map(|i| format!("- {i}")).collect::<Vec<_>>().join("\n")
}

fn help(topic: Option<&str>) -> String {
    match topic {
        Some(t) => match parse::COMMANDS.iter().find(|(name, _)| *name == t) {
            Some((_, line)) => (*line).to_owned(),
            None => {
                let names: Vec<&str> = parse::COMMANDS.iter().map(|(n, _)| *n).collect();
                match parse::closest(t, &names) {
                    Some(best) => format!("No command `{t}`; did you mean `{best}`?"),
                    None => format!("No command `{t}`."),
                }
            }
        },
        None => {
            let mut out = String::from("Commands:");
            for (_, line) in parse::COMMANDS {
                let _ = write!(out, "\n- {line}");
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_room_list_is_edited_not_rewritten() {
        let same = |room: &'static str| move |stored: &str| stored == room;
        let stored = json!({"rooms": ["!lost:x", 42, "!kept:x"], "note": "kept"});
        let added = edit_rooms(Some(stored.clone()), "!new:x", true, same("!new:x")).unwrap();
        assert_eq!(added, json!({"rooms": ["!lost:x", 42, "!kept:x", "!new:x"], "note": "kept"}));
        let removed = edit_rooms(Some(stored), "!kept:x", false, same("!kept:x")).unwrap();
        assert_eq!(removed, json!({"rooms": ["!lost:x", 42], "note": "kept"}));
        assert_eq!(edit_rooms(None, "!a:x", true, same("!a:x")).unwrap(), json!({"rooms": ["!a:x"]}));
        assert!(edit_rooms(Some(json!({"rooms": "!a:x"})), "!b:x", true, same("!b:x")).is_err());
    }
}
