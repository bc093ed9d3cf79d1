//! `gleipnir plugin inspect` and `gleipnir plugin run`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use gleipnir_runtime::host::StateQueries;
use gleipnir_runtime::rooms::RoomStates;
use gleipnir_runtime::{
    CapabilitySet, Clock, Plugin, Runtime, RuntimeConfig, SettingValue, capability, event, json, settings,
};

/// Where compiled components are cached for command-line use.
fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("gleipnir").join("components"))
}

fn load(file: &Path, cache_dir: Option<PathBuf>) -> anyhow::Result<Plugin> {
    // A cache folder asked for must work; the default one is a convenience
    // (without it every run compiles again).
    let cache = match cache_dir {
        Some(dir) => Some(gleipnir_runtime::Folder::create(&dir).context("--cache-dir")?),
        None => default_cache_dir().and_then(|dir| gleipnir_runtime::Folder::create(&dir).ok()),
    };
    let runtime = Runtime::new(RuntimeConfig { cache, ..Default::default() })?;
    runtime.load_file(file).with_context(|| format!("cannot load {}", file.display()))
}

pub(crate) fn inspect(file: &Path, as_json: bool, cache_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let plugin = load(file, cache_dir)?;
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
    pub(crate) cache_dir: Option<PathBuf>,
}

pub(crate) fn run(options: RunOptions) -> anyhow::Result<ExitCode> {
    let plugin = load(&options.file, options.cache_dir)?;
    let specs = &plugin.descriptor().settings;
    let mut overrides: Vec<(String, SettingValue)> = Vec::new();
    for item in &options.set {
        let Some((key, text)) = item.split_once('=') else {
            bail!("--set {item}: write KEY=VALUE");
        };
        let spec = settings::find(specs, key.trim()).map_err(|e| anyhow::anyhow!("--set {item}: {e}"))?;
        let value = settings::parse_value(spec, text).map_err(|e| anyhow::anyhow!("--set {item}: {e}"))?;
        overrides.push((spec.key.clone(), value));
    }
    let granted = match &options.grant {
        None => plugin.declared(),
        Some(names) => names
            .iter()
            .filter(|n| !n.is_empty())
            .map(|n| capability::parse(n.trim()))
            .collect::<Result<CapabilitySet, _>>()
            .map_err(|e| anyhow::anyhow!("--grant: {e}"))?,
    };
    gleipnir_runtime::event::check_user_id(&options.bot).map_err(|e| anyhow::anyhow!("--bot: {e}"))?;

    let rooms = Arc::new(RoomStates::new());
    let queries = Arc::new(StateQueries { bot: options.bot.clone(), clock: Clock::manual(0), rooms: rooms.clone() });
    let mut instance = plugin.instantiate(queries.clone(), granted).context("cannot start the protection")?;
    instance.configure(&overrides).context("the settings were not accepted")?;

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
        let converted = event::from_json(&line, None, &|room, user| rooms.membership(room, user));
        let event = match converted {
            Ok(Some(event)) => event,
            Ok(None) => continue,
            Err(e) => {
                eprintln!("line {number}: {e}");
                bad_lines += 1;
                continue;
            }
        };
        // State is applied before the protection sees the event, as in the bot.
        apply_state(&rooms, &line, &event);
        queries.clock.set(event.origin_ts);
        if !plugin.wants(event::class(&event.kind)) {
            continue;
        }
        match instance.handle(&event) {
            Ok(outcome) => {
                for action in &outcome.actions {
                    let mut value = json::action(action);
                    value["line"] = number.into();
                    writeln!(out, "{value}")?;
                }
                for refusal in &outcome.refused {
                    eprintln!("line {number}: refused {}: {}", json::action(&refusal.action), refusal.why);
                }
            }
            Err(fault) => {
                eprintln!("line {number}: {} faulted: {fault}", plugin.name());
                if fault.kills_instance() {
                    instance.restart().context("cannot restart the protection after its fault")?;
                    eprintln!("line {number}: {} restarted", plugin.name());
                }
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
