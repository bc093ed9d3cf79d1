//! Running management-room commands. Every reply says what changed.

use std::fmt::Write;

use gleipnir_runtime::settings;
use serde_json::{Value, json};

use super::{Bot, store};
use crate::commands::parse::{self, Command, ConfigOp, RoomRef};

/// Account data holding settings moderators set with commands.
pub(crate) const SETTINGS: &str = "org.gleipnir.protection_settings";

impl Bot {
    /// Handles a message in the management room.
    pub(crate) async fn command(&mut self, sender: &str, body: &str) {
        let display = self.client.account().get_display_name().await.ok().flatten();
        let Some(text) = parse::addressed(body, &self.config.prefix, &self.bot_user, display.as_deref()) else {
            return;
        };
        let reply = match parse::parse(text) {
            Ok(parsed) => {
                tracing::info!(sender, command = text, "command");
                self.run_command(parsed.command).await
            }
            Err(e) => e.to_string(),
        };
        self.notify(&reply).await;
    }

    async fn run_command(&mut self, command: Command) -> String {
        match command {
            Command::Help { topic } => help(topic.as_deref()),
            Command::Status => self.status(),
            Command::Rooms => {
                if self.protected.is_empty() {
                    "No protected rooms. Add one with `rooms add ROOM`.".to_owned()
                } else {
                    format!("Protected rooms ({}):\n{}", self.protected.len(), list(self.protected.iter()))
                }
            }
            Command::RoomsAdd(room) => self.rooms_add(&room).await,
            Command::RoomsRemove(room) => self.rooms_remove(&room).await,
            Command::Protections => self.protections(),
            Command::Enable(name) => self.set_enabled(&name, true).await,
            Command::Disable(name) => self.set_enabled(&name, false).await,
            Command::Show(name) => self.show(&name),
            Command::Config { op, protection, key, value } => self.configure(op, &protection, &key, value).await,
            Command::Ban { user, room, reason } => self.moderate("ban", &user, room, reason).await,
            Command::Unban { user, room } => self.moderate("unban", &user, room, None).await,
            Command::Kick { user, room, reason } => self.moderate("kick", &user, room, reason).await,
            Command::Redact { .. } => "`redact` is not available in this version yet; nothing was done.".to_owned(),
        }
    }

    fn status(&self) -> String {
        let mut out = String::new();
        let uptime = self.started.elapsed().as_secs();
        let _ = writeln!(out, "Gleipnir {}: up {}m{}s", env!("CARGO_PKG_VERSION"), uptime / 60, uptime % 60);
        let _ = writeln!(out, "Protected rooms: {}", self.protected.len());
        let lag = self
            .last_sync
            .map_or("no sync yet".to_owned(), |t| format!("last sync {} ms ago", t.elapsed().as_millis()));
        let _ = writeln!(out, "Sync: {lag}");
        if self.config.dry_run {
            let _ = writeln!(out, "Dry run: actions are reported, not carried out");
        }
        out.push_str(&self.protections());
        out
    }

    fn protections(&self) -> String {
        let mut out = String::from("Protections:");
        if self.plugins.is_empty() {
            out += " none loaded";
        }
        for (name, plugin) in &self.plugins {
            let state = match self.enabled.get(name) {
                Some(instance) => match instance.fault() {
                    Some(fault) => format!("enabled, FAULTED: {fault}"),
                    None => "enabled".to_owned(),
                },
                None => "disabled".to_owned(),
            };
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
        if let Err(e) = self.save_rooms().await {
            self.protected.remove(&id);
            return format!("Joined {room} but could not save the room list: {e:#}. It is not protected.");
        }
        self.load_room_state(&id).await;
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
        if let Err(e) = self.save_rooms().await {
            self.protected.insert(id);
            return format!("Could not save the room list: {e:#}. {room} is still protected.");
        }
        let left = match self.client.get_room(&matrix_sdk::ruma::OwnedRoomId::try_from(id.as_str()).expect("validated"))
        {
            Some(r) => r.leave().await.is_ok(),
            None => false,
        };
        format!("No longer protecting {room} ({id}){}.", if left { "; left the room" } else { "" })
    }

    async fn resolve(&self, alias: &str) -> Option<String> {
        let alias = <&matrix_sdk::ruma::RoomAliasId>::try_from(alias).ok()?;
        self.client.resolve_room_alias(alias).await.ok().map(|r| r.room_id.to_string())
    }

    async fn save_rooms(&self) -> anyhow::Result<()> {
        let rooms: Vec<String> = self.protected.iter().cloned().collect();
        store::write(&self.client, store::PROTECTED_ROOMS, store::rooms_content(&rooms)).await
    }

    async fn set_enabled(&mut self, name: &str, on: bool) -> String {
        if !self.plugins.contains_key(name) {
            let names: Vec<&str> = self.plugins.keys().map(String::as_str).collect();
            return match parse::closest(name, &names) {
                Some(best) => format!("No protection named `{name}`; did you mean `{best}`?"),
                None => format!("No protection named `{name}`. Loaded: {}", names.join(", ")),
            };
        }
        if on == self.enabled.contains_key(name) {
            return format!("{name} is already {}.", if on { "enabled" } else { "disabled" });
        }
        if on {
            if let Err(e) = self.enable(name) {
                return format!("Could not enable {name}: {e:#}");
            }
            if let Some(overrides) = self.saved_settings(name).await
                && let Some(instance) = self.enabled.get_mut(name)
                && let Err(e) = instance.configure(&overrides)
            {
                tracing::warn!(protection = name, "saved settings refused: {e}");
            }
        } else {
            self.enabled.remove(name);
        }
        let names: Vec<String> = self.enabled.keys().cloned().collect();
        if let Err(e) = store::write(&self.client, store::ENABLED_PROTECTIONS, store::enabled_content(&names)).await {
            return format!("{name} is {} for now, but saving failed: {e:#}", if on { "enabled" } else { "disabled" });
        }
        let granted = self.config.grants.get(name).copied().unwrap_or_default();
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
        for spec in &d.settings {
            let (value, source) = match instance.and_then(|i| i.overrides().iter().find(|(k, _)| *k == spec.key)) {
                Some((_, v)) => (settings::format_value(v), "set by a moderator"),
                None => (settings::format_value(&spec.default), "default"),
            };
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

    pub(super) async fn saved_settings(&self, name: &str) -> Option<Vec<(String, gleipnir_runtime::SettingValue)>> {
        let all = store::read(&self.client, SETTINGS).await.ok().flatten()?;
        let plugin = self.plugins.get(name)?;
        let specs = &plugin.descriptor().settings;
        let mut out = Vec::new();
        for (key, text) in all.get(name)?.as_object()? {
            let spec = settings::find(specs, key).ok()?;
            out.push((key.clone(), settings::parse_value(spec, text.as_str()?).ok()?));
        }
        Some(out)
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
        let mut overrides = instance.overrides().to_vec();
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
                return "`protections config add/remove` is not available in this version yet; use `set` with the whole list.".to_owned();
            }
        }
        if let Err(e) = instance.configure(&overrides) {
            return format!("{e}. The previous settings stay.");
        }
        let new = instance
            .settings()
            .iter()
            .find(|s| s.key == key)
            .map(|s| settings::format_value(&s.value))
            .unwrap_or_default();
        // Persist what moderators set, as text, per protection.
        let mut all = store::read(&self.client, SETTINGS).await.ok().flatten().unwrap_or_else(|| json!({}));
        let saved: serde_json::Map<String, Value> =
            overrides.iter().map(|(k, v)| (k.clone(), Value::String(settings::format_value(v)))).collect();
        all[name] = Value::Object(saved);
        let persisted = match store::write(&self.client, SETTINGS, all).await {
            Ok(()) => "",
            Err(_) => " (live, but saving failed: it will not survive a restart)",
        };
        format!("{name}.{key}: {old} → {new}{persisted}")
    }

    async fn moderate(&mut self, verb: &str, user: &str, room: Option<RoomRef>, reason: Option<String>) -> String {
        let targets: Vec<String> = match room {
            Some(RoomRef::Id(id)) => vec![id],
            Some(RoomRef::Alias(alias)) => match self.resolve(&alias).await {
                Some(id) => vec![id],
                None => return format!("Could not resolve {alias}. Nothing changed."),
            },
            None => self.protected.iter().cloned().collect(),
        };
        if targets.is_empty() {
            return "No protected rooms to act in; name a room or add one with `rooms add`.".to_owned();
        }
        let Ok(user_id) = <&matrix_sdk::ruma::UserId>::try_from(user) else {
            return format!("`{user}` is not a user id.");
        };
        let reason = reason.unwrap_or_default();
        let mut done = Vec::new();
        let mut failed = Vec::new();
        for room in &targets {
            let Some(r) =
                matrix_sdk::ruma::OwnedRoomId::try_from(room.as_str()).ok().and_then(|id| self.client.get_room(&id))
            else {
                failed.push(format!("{room}: not joined"));
                continue;
            };
            let reason = (!reason.is_empty()).then_some(reason.as_str());
            let result = match verb {
                "ban" => r.ban_user(user_id, reason).await,
                "kick" => r.kick_user(user_id, reason).await,
                _ => r.unban_user(user_id, reason).await,
            };
            match result {
                Ok(()) => done.push(room.clone()),
                Err(e) => failed.push(format!("{room}: {e}")),
            }
        }
        let past = match verb {
            "ban" => "Banned",
            "kick" => "Kicked",
            _ => "Unbanned",
        };
        let mut out = format!("{past} {user} in {} of {} room(s).", done.len(), targets.len());
        if !failed.is_empty() {
            let _ = write!(out, "\nFailed:\n{}", list(failed.iter()));
        }
        out
    }
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
