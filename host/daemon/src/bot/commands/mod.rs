//! Running management-room commands. Every reply says what changed.

use std::fmt::Write;

use super::Bot;
use super::executor::Origin;
use super::plan::{self, Op, Plan};

mod audit;
mod import;
mod lists;
pub(crate) mod moderation;
mod protections;
mod rooms;

use crate::parse::{self, Command};
pub(crate) use protections::{Saved, saved_settings, set_enabled};

impl Bot {
    /// Handles a message in the management room.
    pub(crate) async fn command(&mut self, sender: &str, body: &str) {
        let Some(text) = self.addressed(body).await else { return };
        if let Some(why) = self.may_not_command(sender) {
            if self.refused_commanders.insert(sender.to_owned()) {
                self.matrix.notify(&why).await;
            }
            return;
        }
        let loaded: Vec<&str> = self.protections.plugins.keys().map(String::as_str).collect();
        let parsed = parse::parse_with(text, &loaded);
        let reply = match parsed {
            Ok(parsed) if self.safe_mode && !allowed_in_safe_mode(&parsed.command) => Reply::Done(
                "Gleipnir is in safe mode: only `status`, `help`, `audit`, `recover N`, `restart` and `safe mode` work now."
                    .to_owned(),
            ),
            Ok(parsed) => {
                tracing::info!(sender, command = text, "command");
                self.run_command(sender, text, parsed).await
            }
            Err(e) => Reply::Done(e.to_string()),
        };
        match reply {
            Reply::Done(text) => self.matrix.notify(&text).await,
            Reply::Plan(plan) => {
                if plan.ops.len() <= self.config.confirm_above && !plan.always_confirm {
                    let text = self.carry_out(sender, plan).await;
                    self.matrix.notify(&text).await;
                } else if let Some(preview) = self.matrix.send_notice(&plan.preview()).await {
                    self.confirmations.hold(preview.to_string(), plan, std::time::Instant::now());
                }
            }
        }
        self.redact_after_bans().await;
    }

    /// The command in a management-room message, if it is addressed to the
    /// bot: after the prefix, the bot's id or its display name, or (short
    /// form, unless the operator turned it off) after a `!` when the word
    /// that follows is one of ours; another bot's `!word` is not ours to answer.
    async fn addressed<'a>(&self, body: &'a str) -> Option<&'a str> {
        let display = self.matrix.client.account().get_display_name().await.ok().flatten();
        if let Some(text) = parse::addressed(body, &self.config.prefix, &self.matrix.bot_user, display.as_deref()) {
            return Some(text);
        }
        let text = parse::short_form(body).filter(|_| self.config.short_form)?;
        let loaded: Vec<&str> = self.protections.plugins.keys().map(String::as_str).collect();
        parse::names_a_command(text, &loaded).then_some(text)
    }

    /// Why `sender` may not command the bot now, if they may not: the room
    /// became open to anyone, or their power level is too low.
    fn may_not_command(&self, sender: &str) -> Option<String> {
        if super::management::is_open(&self.matrix.management_rule) {
            return Some(format!(
                "Commands are refused: this management room's join rule is now `{}`, so anyone could give them. \
                 Make it invite-only again.",
                self.matrix.management_rule
            ));
        }
        let power = self.rooms.power_level(self.matrix.management.as_str(), sender);
        super::management::refusal(power, self.config.min_power_level)
    }

    /// A command sent while the bot was stopped: answered, not run (who sent
    /// it may have given up, or done it another way, since).
    pub(crate) async fn not_run(&mut self, sender: &str, body: &str) {
        let Some(text) = self.addressed(body).await else { return };
        if self.may_not_command(sender).is_some() {
            return;
        }
        let text = text.trim().to_owned();
        self.matrix
            .notify(&format!(
                "Not run: `{text}` was sent while Gleipnir was stopped; send it again if it is still wanted."
            ))
            .await;
    }

    fn recover_plan(&self, n: usize) -> Reply {
        let options = crate::state::numbered(&self.session.problems);
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
            if (self.session.report_event.as_deref() == Some(relates_to) || plan::is_yes(key))
                && self.refused_commanders.insert(sender.to_owned())
            {
                self.matrix.notify(&why).await;
            }
            return;
        }
        if self.report_reaction(sender, relates_to, key).await || self.proposal_reaction(sender, relates_to, key).await
        {
            self.redact_after_bans().await;
            return;
        }
        if self.session.report_event.as_deref() == Some(relates_to)
            && let Some(n) = plan::keycap_number(key)
        {
            match self.recover_plan(n) {
                Reply::Done(text) => self.matrix.notify(&text).await,
                Reply::Plan(plan) => {
                    if let Some(preview) = self.matrix.send_notice(&plan.preview()).await {
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
                self.matrix.notify(&text).await;
                self.redact_after_bans().await;
            }
            plan::Confirmed::Expired(command) => {
                self.matrix
                    .notify(&format!("The preview of `{command}` expired; nothing was done. Give the command again."))
                    .await;
            }
            plan::Confirmed::NotAPreview => {}
        }
    }

    async fn run_command(&mut self, sender: &str, text: &str, parsed: parse::Parsed) -> Reply {
        let moderator = Origin::Moderator { user: sender.to_owned(), command: text.trim().to_owned() };
        let mut reply = match parsed.command {
            Command::Help { topic } => Reply::Done(help(&self.protections, topic.as_deref())),
            Command::Status => Reply::Done(self.status()),
            Command::Rooms => Reply::Done(self.rooms_list()),
            Command::RoomsAdd(room) => Reply::Done(self.rooms_add(&room).await),
            Command::RoomsRemove(room) => Reply::Done(self.rooms_remove(&room).await),
            Command::Protections => Reply::Done(protections::list(&self.protections)),
            Command::Enable(name) => {
                Reply::Done(protections::set_enabled(&self.matrix, &mut self.protections, &name, true).await)
            }
            Command::Disable(name) => {
                Reply::Done(protections::set_enabled(&self.matrix, &mut self.protections, &name, false).await)
            }
            Command::Show(name) => Reply::Done(protections::show(&self.protections, &name)),
            Command::Preview { name, limit } => Reply::Done(self.preview(&name, limit).await),
            Command::Config { op, protection, key, value } => {
                let configured =
                    protections::configure(&self.matrix, &mut self.protections, op, &protection, &key, value);
                Reply::Done(configured.await.unwrap_or_else(|nothing| nothing))
            }
            Command::Ban { entity, room, reason } => self.ban_command(&moderator, &entity, room, reason).await,
            Command::Unban { entity, room } => self.unban_command(&entity, room).await,
            Command::Import { room, list } => self.import_command(&room, &list).await,
            Command::Takedown { entity, list, reason } => {
                Reply::Done(self.takedown_command(&moderator, &entity, &list, reason).await)
            }
            Command::Protection { name, command: None, .. } => Reply::Done(protection_help(&self.protections, &name)),
            Command::Protection { name, command: Some(command), args } => {
                let power = self.rooms.power_level(self.matrix.management.as_str(), sender);
                let caller = gleipnir_runtime::Caller { user_id: sender.to_owned(), power_level: power };
                let (m, p, protected) = (&self.matrix, &mut self.protections, &self.protected);
                match protections::protection_command(m, p, protected, &name, &command, &args, &caller).await {
                    Err(why) => Reply::Done(why),
                    Ok((said, ops)) if ops.is_empty() => Reply::Done(said),
                    Ok((said, ops)) => {
                        self.matrix.notify(&said).await;
                        Reply::Plan(Plan { ops, ..Plan::default() })
                    }
                }
            }
            Command::Plugins => Reply::Done(self.plugins_report()),
            Command::Reload(name) => Reply::Done(self.reload(&name)),
            Command::Grant { name, capability, grant } => {
                let grantable = &self.config.grantable;
                Reply::Done(
                    super::grants::grant(&self.matrix, &mut self.protections, grantable, &name, &capability, grant)
                        .await,
                )
            }
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
            Command::Kick { user, room, reason } => {
                moderation::membership_plan(&self.matrix, &self.protected, Verb::Kick, &user, room, reason).await
            }
            Command::KickGlob { pattern, room, reason } => {
                moderation::kick_glob_plan(&self.matrix, &self.protected, &self.rooms, &pattern, room, reason).await
            }
            Command::Redact { target, limit, room } => {
                moderation::redact_plan(&self.matrix, &self.protected, target, limit, room).await
            }
            Command::Watch(room) => self.watch_command(&room).await,
            Command::Unwatch(room) => Reply::Done(self.unwatch(&room).await),
            Command::Rules { matching: Some(members) } if members == "members" => {
                let mut joined = Vec::new();
                for room in self.protected.rooms() {
                    joined.extend(self.rooms.joined(&room).into_iter().map(|user| (room.clone(), user)));
                }
                Reply::Done(self.session.policy.members_report(&joined))
            }
            Command::Rules { matching } => Reply::Done(self.session.policy.report(matching.as_deref())),
            Command::Audit { about, limit } => Reply::Done(self.audit_command(about, limit).await),
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
        let _ = writeln!(out, "Watched lists: {}", self.session.policy.lists_status());
        let _ = writeln!(out, "Server ACL: {}", self.session.policy.acl_status());
        let lag = self
            .last_sync
            .map_or("no sync yet".to_owned(), |t| format!("last sync {} ms ago", t.elapsed().as_millis()));
        let _ = writeln!(out, "Sync: {lag}");
        if self.config.dry_run {
            let _ = writeln!(out, "Dry run: actions are reported, not carried out");
        }
        out.push_str(&protections::list(&self.protections));
        let broken = self.protections.files.values().filter(|f| f.running.is_none() && f.refused.is_some()).count();
        if broken > 0 {
            let _ = write!(out, "\nPlugin files that do not load: {broken} (see `plugins`)");
        }
        out.push_str(&self.problems_status());
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

/// `NAME` alone, or `help NAME`: a protection's summary and commands.
fn protection_help(p: &super::protections::Protections, name: &str) -> String {
    let Some(plugin) = p.plugins.get(name) else { return format!("No protection `{name}` is loaded.") };
    let d = plugin.descriptor();
    let mut out = format!("{name}: {}", d.summary);
    if d.commands.is_empty() {
        out.push_str("\nIt has no commands of its own; `protections show NAME` shows its settings.");
    }
    for c in &d.commands {
        let args = if c.args.is_empty() { String::new() } else { format!(" {}", c.args) };
        let _ = write!(out, "\n- {name} {}{args}: {}", c.name, c.help);
    }
    if !p.enabled.contains_key(name) {
        let _ = write!(out, "\n(Not enabled: `protections enable {name}` first.)");
    }
    out
}

fn allowed_in_safe_mode(command: &Command) -> bool {
    matches!(
        command,
        Command::Help { .. }
            | Command::Audit { .. }
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

/// Where moderators read about every protection there is.
const CATALOGUE: &str = "Every protection Gleipnir ships, with what it does, its settings and its Draupnir, \
    Mjolnir and Meowlnir counterpart: docs/protections.md in Gleipnir's source (`help NAME` for one loaded here).";

/// `help [TOPIC]`: the built-in commands, then each loaded protection's own.
fn help(p: &super::protections::Protections, topic: Option<&str>) -> String {
    match topic {
        Some(t) if p.plugins.contains_key(t) => protection_help(p, t),
        Some("protections") => {
            let line = parse::COMMANDS.iter().find(|(name, _)| *name == "protections").map_or("", |(_, l)| *l);
            let mut out = format!("{line}\nLoaded here:");
            for (name, plugin) in &p.plugins {
                let state = if p.enabled.contains_key(name) { "enabled" } else { "not enabled" };
                let _ = write!(out, "\n- {name} ({state}): {}", plugin.descriptor().summary);
            }
            out.push_str(&format!("\n{CATALOGUE}"));
            out
        }
        Some(t) => match parse::COMMANDS.iter().find(|(name, _)| *name == t) {
            Some((_, line)) => (*line).to_owned(),
            None => {
                let protections = p.plugins.keys().map(String::as_str);
                let names: Vec<&str> = parse::COMMANDS.iter().map(|(n, _)| *n).chain(protections).collect();
                match parse::closest(t, &names) {
                    Some(best) => format!("No command `{t}`; did you mean `{best}`?"),
                    None => format!("No command `{t}`."),
                }
            }
        },
        None => {
            let mut out =
                String::from("Commands (give them as `!gleipnir COMMAND`, or in short as `!COMMAND` where enabled):");
            for (_, line) in parse::COMMANDS {
                let _ = write!(out, "\n- {line}");
            }
            for (name, plugin) in &p.plugins {
                for c in &plugin.descriptor().commands {
                    let args = if c.args.is_empty() { String::new() } else { format!(" {}", c.args) };
                    let _ = write!(out, "\n- {name} {}{args}: {}", c.name, c.help);
                }
            }
            out
        }
    }
}
