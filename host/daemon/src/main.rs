//! `gleipnir`: the moderation bot's binary. For now the plugin tools:
//! inspect a protection and run one over recorded events.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bot;
mod cli;
mod config;
mod memory;
mod parse;
mod state;

/// Fuzz tests bound the memory each input takes, so this test binary counts
/// allocations.
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: gleipnir_fuzz::CountingAllocator = gleipnir_fuzz::CountingAllocator;

/// `gleipnir --version`: the bot's version and every protection contract it loads.
static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let contracts: Vec<String> =
        gleipnir_runtime::WIT_VERSIONS.iter().map(|v| format!("{}@{v}", gleipnir_runtime::WIT_PACKAGE)).collect();
    format!("{} (loads protections built for {})", env!("CARGO_PKG_VERSION"), contracts.join(", "))
});

#[derive(Parser)]
#[command(name = "gleipnir", version = VERSION.as_str(), about = "A moderation bot for Matrix with sandboxed protections")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with protection plugins (.wasm components).
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Run the bot.
    Run {
        /// The config file (TOML).
        #[arg(long)]
        config: PathBuf,
    },
    /// Work with the config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Read the audit trail: every action carried out, refused or failed, and who decided it.
    Audit {
        /// The config file (TOML) of the bot whose trail to read.
        #[arg(long)]
        config: PathBuf,
        /// Only entries about this user (acted on, or deciding).
        #[arg(long)]
        user: Option<String>,
        /// Only entries in this room (its id).
        #[arg(long)]
        room: Option<String>,
        /// Only entries this recent, e.g. 30m, 1h, 7d.
        #[arg(long)]
        since: Option<String>,
        /// Only the last N entries.
        #[arg(long)]
        limit: Option<usize>,
        /// One JSON object per line, as stored.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a config file and report every problem with its key path.
    Check {
        /// The config file (TOML).
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Show a protection's name, version, contract version, settings, capabilities and events.
    Inspect {
        /// The component file.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        loading: cli::plugin::Loading,
    },
    /// Feed recorded Matrix events (client-format JSON, one per line) through a
    /// protection and print every action it returns as one JSON line.
    Run {
        /// The component file.
        file: PathBuf,
        /// The events: one JSON object per line, as a homeserver serves them ("-" for stdin).
        #[arg(long)]
        events: PathBuf,
        /// Set a setting, e.g. --set max-per-minute=5 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Grant only these capabilities (comma-separated); by default all the protection declares.
        #[arg(long, value_delimiter = ',')]
        grant: Option<Vec<String>>,
        /// The bot's user id, as protections see it.
        #[arg(long, default_value = "@gleipnir:localhost")]
        bot: String,
        /// Ask the protection's pre-emptive `check` about each event first
        /// (a join, an invite, or any other event) and print its verdict; a
        /// denied event is not handled, as the homeserver would refuse it.
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        loading: cli::plugin::Loading,
    },
    /// Create a protection crate NAME (in ./NAME, or --dir) that builds and whose test passes.
    New {
        /// The protection's name, lower-case kebab-case.
        name: String,
        /// Where to create it (must not exist).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The gleipnir-sdk crate's folder; by default the one this binary was built with (Rust only).
        #[arg(long)]
        sdk: Option<PathBuf>,
        /// The language to write it in.
        #[arg(long, value_enum, default_value = "rust")]
        lang: cli::new::Lang,
    },
    /// Run the cases of a case file (JSON: `{"cases": [{"name", "settings", "events", "expect"}]}`)
    /// through a protection: events in, the expected actions out. Exit 1 when a case fails.
    Test {
        /// The component file.
        file: PathBuf,
        /// The case file.
        cases: PathBuf,
        #[command(flatten)]
        loading: cli::plugin::Loading,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Run { config } => cli::run::run(&config),
        Command::Config(ConfigCommand::Check { config }) => cli::config::check(&config),
        Command::Audit { config, user, room, since, limit, json } => {
            cli::audit::audit(cli::audit::AuditOptions { config: &config, user, room, since, limit, json })
        }
        Command::Plugin(PluginCommand::Inspect { file, json, loading }) => cli::plugin::inspect(&file, json, &loading),
        Command::Plugin(PluginCommand::Run { file, events, set, grant, bot, check, loading }) => {
            cli::plugin::run(cli::plugin::RunOptions { file, events, set, grant, bot, check, loading })
        }
        Command::Plugin(PluginCommand::Test { file, cases, loading }) => cli::plugin::test(&file, &cases, &loading),
        Command::Plugin(PluginCommand::New { name, dir, sdk, lang }) => cli::new::new(&name, dir, sdk, lang),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
