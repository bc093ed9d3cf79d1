//! `gleipnir audit`: the audit trail read from the command line (see
//! `bot/audit.rs`), oldest first like a log, or as JSON lines.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::bot::audit;
use crate::config;

pub(crate) struct AuditOptions<'a> {
    pub(crate) config: &'a Path,
    pub(crate) user: Option<String>,
    pub(crate) room: Option<String>,
    pub(crate) since: Option<String>,
    pub(crate) limit: Option<usize>,
    pub(crate) json: bool,
}

pub(crate) fn audit(options: AuditOptions<'_>) -> anyhow::Result<ExitCode> {
    let config = match config::load(options.config) {
        Ok(config) => config,
        Err(problems) => {
            eprintln!("{}: {} problem(s)", options.config.display(), problems.len());
            for p in &problems {
                eprintln!("  {p}");
            }
            return Ok(ExitCode::from(1));
        }
    };
    let data = gleipnir_runtime::Folder::open(&config.data_dir)
        .with_context(|| format!("the data folder {}", config.data_dir.display()))?;
    let since = match &options.since {
        Some(text) => {
            let ago = gleipnir_runtime::settings::parse_duration(text)
                .map_err(|e| anyhow::anyhow!("--since `{text}`: {e} (like 30m, 1h, 7d)"))?;
            Some(gleipnir_runtime::Clock::System.now_ms().saturating_sub(ago))
        }
        None => None,
    };
    let (entries, skipped) = audit::read(&data);
    let about = |e: &audit::Entry, who: &str| {
        e.by == who || e.target.as_deref() == Some(who) || e.sender.as_deref() == Some(who)
    };
    let mut chosen: Vec<&audit::Entry> = entries
        .iter()
        .filter(|e| options.user.as_deref().is_none_or(|u| about(e, u)))
        .filter(|e| options.room.as_deref().is_none_or(|r| e.room.as_deref() == Some(r)))
        .filter(|e| since.is_none_or(|s| e.ts >= s))
        .collect();
    if let Some(limit) = options.limit {
        let drop = chosen.len().saturating_sub(limit);
        chosen.drain(..drop);
    }
    for entry in &chosen {
        if options.json {
            println!("{}", serde_json::to_string(entry)?);
        } else {
            println!("{}", audit::sentence(entry));
        }
    }
    if skipped > 0 {
        eprintln!("{skipped} line(s) of the audit trail are not entries (cut short by a crash): skipped");
    }
    if chosen.is_empty() && !options.json {
        eprintln!("nothing recorded that matches ({} entries in {})", entries.len(), data.shown(audit::FILE).display());
    }
    Ok(ExitCode::SUCCESS)
}
