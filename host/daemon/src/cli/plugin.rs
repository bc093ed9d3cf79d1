//! `gleipnir plugin inspect`, `gleipnir plugin run` and `gleipnir plugin test`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use gleipnir_runtime::host::StateQueries;
use gleipnir_runtime::rooms::RoomStates;
use gleipnir_runtime::{
    CapabilitySet, Checked, Clock, Event, EventKind, Membership, Pending, PendingEvent, PendingInvite, PendingJoin,
    Plugin, Runtime, RuntimeConfig, SettingValue, capability, event, json, settings,
};
use serde_json::json;

/// Where compiled components are cached for command-line use.
fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("gleipnir").join("components"))
}

/// How the plugin commands load a component.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct Loading {
    /// Compiled components are cached here; by default under $XDG_CACHE_HOME or ~/.cache.
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// A sandbox limit for this protection, as `[protections.NAME]` sets it in
    /// the config: call_deadline, check_deadline, memory, max_actions,
    /// instances, tables, table_elements (e.g. --limit memory=256MiB; repeatable).
    #[arg(long = "limit", value_name = "KEY=VALUE")]
    limits: Vec<String>,
}

fn load(file: &Path, loading: &Loading) -> anyhow::Result<Plugin> {
    let limits = crate::config::limits_from_pairs(&loading.limits).map_err(|e| anyhow::anyhow!("--limit: {e}"))?;
    // A cache folder asked for must work; the default one is a convenience
    // (without it every run compiles again).
    let cache = match &loading.cache_dir {
        Some(dir) => Some(gleipnir_runtime::Folder::create(dir).context("--cache-dir")?),
        None => default_cache_dir().and_then(|dir| gleipnir_runtime::Folder::create(&dir).ok()),
    };
    let runtime = Runtime::new(RuntimeConfig { cache, limits })?;
    runtime.load_file(file).with_context(|| format!("cannot load {}", file.display()))
}

pub(crate) fn inspect(file: &Path, as_json: bool, loading: &Loading) -> anyhow::Result<ExitCode> {
    let plugin = load(file, loading)?;
    let d = plugin.descriptor();
    let mut out = std::io::stdout().lock();
    if as_json {
        writeln!(out, "{:#}", json::descriptor(d, plugin.wit_version(), plugin.content_hash()))?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "{} {}", d.name, d.version)?;
    writeln!(out, "  {}", d.summary)?;
    writeln!(out, "contract: {}@{}", gleipnir_runtime::WIT_PACKAGE, plugin.wit_version())?;
    writeln!(out, "sha256:   {}", plugin.content_hash())?;
    let caps: Vec<_> = d.capabilities.iter().map(|c| capability::name(*c)).collect();
    writeln!(out, "capabilities: {}", if caps.is_empty() { "(none)".to_owned() } else { caps.join(", ") })?;
    let events: Vec<_> = d.events.iter().map(|e| json::event_class(*e)).collect();
    writeln!(out, "events: {}", if events.is_empty() { "(none)".to_owned() } else { events.join(", ") })?;
    if let Some(ms) = d.tick_ms {
        writeln!(out, "ticks: every {}", settings::format_value(&gleipnir_runtime::SettingValue::Duration(ms)))?;
    }
    let checks: Vec<_> = d.checks.iter().map(|c| json::check_class(*c)).collect();
    if !checks.is_empty() {
        writeln!(out, "checks (pre-emptive): {}", checks.join(", "))?;
    }
    if !d.commands.is_empty() {
        writeln!(out, "commands:")?;
        for c in &d.commands {
            let args = if c.args.is_empty() { String::new() } else { format!(" {}", c.args) };
            writeln!(out, "  {} {}{args}: {}", d.name, c.name, c.help)?;
        }
    }
    if d.settings.is_empty() {
        writeln!(out, "settings: (none)")?;
    } else {
        writeln!(out, "settings:")?;
        for s in &d.settings {
            writeln!(out, "  {} ({}) = {}", s.key, settings::format_kind(&s.kind), settings::format_value(&s.default))?;
            if !s.doc.is_empty() {
                writeln!(out, "      {}", s.doc)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) struct RunOptions {
    pub(crate) file: PathBuf,
    pub(crate) events: PathBuf,
    pub(crate) set: Vec<String>,
    pub(crate) grant: Option<Vec<String>>,
    pub(crate) bot: String,
    /// Ask `check` about each event before it is handled.
    pub(crate) check: bool,
    pub(crate) loading: Loading,
}

/// A protection started as the bot starts it, fed events as the bot feeds
/// them (state applied first, the clock at each event's time).
struct Player {
    plugin: Plugin,
    rooms: Arc<RoomStates>,
    queries: Arc<StateQueries>,
    instance: gleipnir_runtime::Instance,
}

/// What one event made the protection do.
#[derive(Default)]
struct Played {
    /// The verdict of `check`, when asked.
    verdict: Option<serde_json::Value>,
    actions: Vec<serde_json::Value>,
    /// Refusals, faults and restarts, for the operator.
    notes: Vec<String>,
}

impl Player {
    /// `set`: `KEY=VALUE` texts; `grant`: capability names (all it declares when `None`).
    fn start(plugin: Plugin, set: &[String], grant: Option<&[String]>, bot: &str) -> anyhow::Result<Player> {
        let specs = &plugin.descriptor().settings;
        let mut overrides: Vec<(String, SettingValue)> = Vec::new();
        for item in set {
            let Some((key, text)) = item.split_once('=') else {
                bail!("setting {item}: write KEY=VALUE");
            };
            let spec = settings::find(specs, key.trim()).map_err(|e| anyhow::anyhow!("setting {item}: {e}"))?;
            let value = settings::parse_value(spec, text).map_err(|e| anyhow::anyhow!("setting {item}: {e}"))?;
            overrides.push((spec.key.clone(), value));
        }
        let granted = match grant {
            None => plugin.declared(),
            Some(names) => names
                .iter()
                .filter(|n| !n.is_empty())
                .map(|n| capability::parse(n.trim()))
                .collect::<Result<CapabilitySet, _>>()
                .map_err(|e| anyhow::anyhow!("grant: {e}"))?,
        };
        gleipnir_runtime::event::check_user_id(bot).map_err(|e| anyhow::anyhow!("bot: {e}"))?;
        let rooms = Arc::new(RoomStates::new());
        let queries = Arc::new(StateQueries { bot: bot.to_owned(), clock: Clock::manual(0), rooms: rooms.clone() });
        let mut instance = plugin.instantiate(queries.clone(), granted).context("cannot start the protection")?;
        instance.configure(&overrides).context("the settings were not accepted")?;
        Ok(Player { plugin, rooms, queries, instance })
    }

    /// Feeds one client-format event; `Err` when it is not a usable event.
    /// With `check`, the protection's verdict comes first, and a denied
    /// event goes no further.
    fn play(&mut self, json: &str, check: bool) -> anyhow::Result<Played> {
        let rooms = &self.rooms;
        let converted = event::from_json(json, None, &|room, user| rooms.membership(room, user));
        let event = match converted {
            Ok(Some(event)) => event,
            Ok(None) => return Ok(Played::default()),
            Err(e) => bail!("{e}"),
        };
        self.queries.clock.set(event.origin_ts);
        let mut played = Played::default();
        if check {
            let pending = pending(json, &event)?;
            let name = self.plugin.name().to_owned();
            let verdict = match self.instance.check_pending(&pending) {
                Ok(Checked::Allow) => json!({"check": json::pending_class(&pending), "verdict": "allow"}),
                Ok(Checked::Deny { reason, follow_up }) => {
                    for refusal in &follow_up.refused {
                        played.notes.push(format!("refused {}: {}", json::action(&refusal.action), refusal.why));
                    }
                    let follow_up: Vec<_> = follow_up.actions.iter().map(json::action).collect();
                    json!({"check": json::pending_class(&pending), "verdict": "deny", "reason": reason, "follow_up": follow_up})
                }
                Err(fault) => {
                    played.notes.push(format!("{name} faulted in check: {fault} (the event is allowed)"));
                    if fault.kills_instance() {
                        self.instance.restart().context("cannot restart the protection after its fault")?;
                        played.notes.push(format!("{name} restarted"));
                    }
                    json!({"check": json::pending_class(&pending), "verdict": "allow", "fault": fault.to_string()})
                }
            };
            let denied = verdict["verdict"] == "deny";
            played.verdict = Some(verdict);
            if denied {
                return Ok(played);
            }
        }
        // State is applied before the protection sees the event, as in the bot.
        apply_state(&self.rooms, json, &event);
        if !self.plugin.wants(event::class(&event.kind)) {
            return Ok(played);
        }
        let name = self.plugin.name().to_owned();
        match self.instance.handle(&event) {
            Ok(outcome) => {
                played.actions = outcome.actions.iter().map(json::action).collect();
                for refusal in &outcome.refused {
                    played.notes.push(format!("refused {}: {}", json::action(&refusal.action), refusal.why));
                }
            }
            Err(fault) => {
                played.notes.push(format!("{name} faulted: {fault}"));
                if fault.kills_instance() {
                    self.instance.restart().context("cannot restart the protection after its fault")?;
                    played.notes.push(format!("{name} restarted"));
                }
            }
        }
        Ok(played)
    }
}

/// What the homeserver would ask `check` about before accepting `event`:
/// a member joining, an invite, or the event itself.
fn pending(json: &str, event: &Event) -> anyhow::Result<Pending> {
    let raw: serde_json::Value = serde_json::from_str(json)?;
    let text = |key: &str| raw.get(key).and_then(serde_json::Value::as_str).map(str::to_owned);
    if let EventKind::Membership(m) = &event.kind {
        if m.membership == Membership::Join && m.target == event.sender {
            return Ok(Pending::Join(PendingJoin { room_id: event.room_id.clone(), user_id: m.target.clone() }));
        }
        if m.membership == Membership::Invite {
            return Ok(Pending::Invite(PendingInvite {
                room_id: event.room_id.clone(),
                inviter: event.sender.clone(),
                invitee: m.target.clone(),
            }));
        }
    }
    Ok(Pending::Event(PendingEvent {
        room_id: event.room_id.clone(),
        sender: event.sender.clone(),
        event_type: text("type").unwrap_or_default(),
        state_key: text("state_key"),
        content: event.content.clone(),
    }))
}

pub(crate) fn run(options: RunOptions) -> anyhow::Result<ExitCode> {
    let plugin = load(&options.file, &options.loading)?;
    let mut player = Player::start(plugin, &options.set, options.grant.as_deref(), &options.bot)?;
    let input: Box<dyn BufRead> = if options.events == Path::new("-") {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let file = std::fs::File::open(&options.events)
            .with_context(|| format!("cannot open {}", options.events.display()))?;
        Box::new(BufReader::new(file))
    };

    let mut out = std::io::stdout().lock();
    let mut bad_lines = 0usize;
    for (index, line) in input.lines().enumerate() {
        let number = index + 1;
        let line = line.with_context(|| format!("cannot read line {number}"))?;
        if line.trim().is_empty() {
            continue;
        }
        match player.play(&line, options.check) {
            Ok(played) => {
                if let Some(mut verdict) = played.verdict {
                    verdict["line"] = number.into();
                    writeln!(out, "{verdict}")?;
                }
                for mut value in played.actions {
                    value["line"] = number.into();
                    writeln!(out, "{value}")?;
                }
                for note in played.notes {
                    eprintln!("line {number}: {note}");
                }
            }
            Err(e) => {
                eprintln!("line {number}: {e:#}");
                bad_lines += 1;
            }
        }
    }
    out.flush()?;
    if bad_lines > 0 {
        eprintln!("{bad_lines} malformed line(s) skipped");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// One case of a `plugin test` file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    /// Settings as text, like `--set`.
    #[serde(default)]
    settings: std::collections::BTreeMap<String, String>,
    /// Capabilities granted; all it declares when absent.
    grant: Option<Vec<String>>,
    bot: Option<String>,
    /// Client-format events, in order.
    events: Vec<serde_json::Value>,
    /// Every action the protection returns over the events, in order, as
    /// `plugin run` prints them (without `line`).
    expect: Vec<serde_json::Value>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Cases {
    cases: Vec<Case>,
}

/// `gleipnir plugin test FILE CASES`: each case starts the protection
/// afresh, feeds it its events and compares every action with the expected
/// ones. Exit 0 when all pass, 1 when one fails, 2 on a bad file.
pub(crate) fn test(file: &Path, cases: &Path, loading: &Loading) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(cases).with_context(|| format!("cannot read {}", cases.display()))?;
    let path = cases;
    let Cases { cases } =
        serde_json::from_str(&text).with_context(|| format!("{} is not a case file", path.display()))?;
    if cases.is_empty() {
        bail!("{} holds no cases", path.display());
    }
    let plugin = load(file, loading)?;
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for case in &cases {
        let set: Vec<String> = case.settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let bot = case.bot.as_deref().unwrap_or("@gleipnir:localhost");
        let mut player = Player::start(plugin.clone(), &set, case.grant.as_deref(), bot)
            .with_context(|| format!("case `{}`", case.name))?;
        let mut got = Vec::new();
        let mut notes = Vec::new();
        for (n, event) in case.events.iter().enumerate() {
            match player.play(&event.to_string(), false) {
                Ok(played) => {
                    got.extend(played.actions);
                    notes.extend(played.notes.into_iter().map(|note| format!("event {}: {note}", n + 1)));
                }
                Err(e) => bail!("case `{}`, event {}: {e:#}", case.name, n + 1),
            }
        }
        if got == case.expect {
            writeln!(out, "ok   {}", case.name)?;
            continue;
        }
        failed += 1;
        writeln!(out, "FAIL {}", case.name)?;
        let show = |v: Option<&serde_json::Value>| v.map_or("(nothing)".to_owned(), |v| v.to_string());
        for i in 0..case.expect.len().max(got.len()) {
            let (expected, returned) = (case.expect.get(i), got.get(i));
            if expected != returned {
                writeln!(out, "  action {}: expected {}", i + 1, show(expected))?;
                writeln!(out, "  action {}: got      {}", i + 1, show(returned))?;
            }
        }
        for note in notes {
            writeln!(out, "  {note}")?;
        }
    }
    writeln!(out, "{} passed, {failed} failed", cases.len() - failed)?;
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn apply_state(rooms: &RoomStates, line: &str, event: &gleipnir_runtime::Event) {
    #[derive(serde::Deserialize)]
    struct State {
        #[serde(rename = "type")]
        kind: String,
        state_key: Option<String>,
    }
    if let Ok(State { kind, state_key: Some(state_key) }) = serde_json::from_str::<State>(line) {
        rooms.apply(&event.room_id, &kind, &state_key, &event.sender, event.origin_ts, &event.content);
    }
}
