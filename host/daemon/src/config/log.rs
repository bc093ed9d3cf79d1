//! `[log]`: what is logged, and how (`cli/run.rs` sets the subscriber up).

use super::Reader;

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Log {
    /// A tracing filter: `info`, `debug`, `info,gleipnir=debug`, … (`RUST_LOG` overrides it).
    pub(crate) level: String,
    /// One JSON object per line instead of text.
    pub(crate) json: bool,
}

/// The default filter: the bot's own lines, and only warnings of the Matrix SDK.
pub(crate) const DEFAULT_LOG: &str = "info,matrix_sdk=warn,matrix_sdk_base=warn,matrix_sdk::http_client=off";

pub(super) fn log_config(r: &mut Reader, root: &toml::Table) -> Log {
    let section = r.section(root, "log", &["level", "format"]);
    let level = section.and_then(|s| r.string(s, "log", "level", false).map(str::to_owned));
    let level = match level {
        Some(level) if tracing_subscriber::EnvFilter::try_new(&level).is_err() => {
            r.problem(
                "log.level",
                format!("`{level}` is not a log filter (like `info`, `debug` or `info,gleipnir=debug`)"),
            );
            DEFAULT_LOG.to_owned()
        }
        // A bare level keeps the Matrix SDK quiet as by default.
        Some(level) if matches!(level.as_str(), "error" | "warn" | "info" | "debug" | "trace") => {
            DEFAULT_LOG.replacen("info", &level, 1)
        }
        Some(level) => level,
        None => DEFAULT_LOG.to_owned(),
    };
    let json = match section.and_then(|s| r.string(s, "log", "format", false)) {
        None | Some("text") => false,
        Some("json") => true,
        Some(other) => {
            r.problem("log.format", format!("`{other}` is not a log format: use \"text\" or \"json\""));
            false
        }
    };
    Log { level, json }
}
