//! `gleipnir run`: check the config, then run the bot until Ctrl-C.

use std::path::Path;
use std::process::ExitCode;

use crate::{bot, config};

pub(crate) fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let config = match config::load(path) {
        Ok(c) => c,
        Err(problems) => {
            eprintln!("{}: {} problem(s)", path.display(), problems.len());
            for p in &problems {
                eprintln!("  {p}");
            }
            return Ok(ExitCode::from(1));
        }
    };
    init_logging(&config.log);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().worker_threads(2).build()?;
    runtime.block_on(async {
        tokio::select! {
            result = bot::run(config) => result,
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("stopping on Ctrl-C");
                Ok(())
            }
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Logs to stderr as `[log]` says; `RUST_LOG`, when set, overrides the level.
fn init_logging(log: &config::Log) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&log.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if log.json {
        builder.json().init();
    } else {
        // Colours only for a person at a terminal, not in log files.
        builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init();
    }
}
