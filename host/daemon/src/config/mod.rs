//! The operator's config file (TOML): read once, every problem reported with
//! its key path, nothing half-applied. See `config.example.toml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gleipnir_runtime::{CapabilitySet, Limits, QueryGrants, event, settings};

/// One problem in the config, at `path` (e.g. `matrix.user_id`,
/// `protections.flooding.grants[2]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigProblem {
    pub(crate) path: String,
    pub(crate) message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// What the bot does when stored state cannot be parsed or used at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnProblem {
    /// Start in safe mode: answer in the management room, act on nothing.
    SafeMode,
    /// Exit with an error listing the problems.
    Exit,
}

/// How the bot logs in. `Debug` never shows the secret (configs get logged).
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Credentials {
    AccessToken(String),
    Password(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::AccessToken(_) => f.write_str("AccessToken(<secret>)"),
            Credentials::Password(_) => f.write_str("Password(<secret>)"),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) homeserver: String,
    pub(crate) user_id: String,
    /// `[log]`: what is logged and how.
    pub(crate) log: Log,
    pub(crate) credentials: Credentials,
    /// A room id (`!…`) or alias (`#…:server`).
    pub(crate) management_room: String,
    /// A config or secret file others can read is only warned about.
    pub(crate) allow_readable_secrets: bool,
    pub(crate) data_dir: PathBuf,
    pub(crate) plugin_dir: PathBuf,
    /// Operator settings for protections (TOML), watched and applied live.
    pub(crate) settings_file: Option<PathBuf>,
    /// Watch the plugin folder and the settings file for changes.
    pub(crate) watch: bool,
    /// A protection that appears in the plugin folder while running is
    /// enabled at once (otherwise a moderator enables it).
    pub(crate) enable_new: bool,
    pub(crate) prefix: String,
    /// In the management room, `!COMMAND` for a command of ours too (not
    /// for a room shared with another bot that answers `!word`).
    pub(crate) short_form: bool,
    /// A command acting on more than this many (room, target) pairs shows a
    /// preview and waits for a ✅ reaction (or `--no-confirm`).
    pub(crate) confirm_above: usize,
    /// The power level in the management room a member needs to give
    /// commands and confirm previews (Draupnir lets every member: 0).
    pub(crate) min_power_level: i64,
    pub(crate) limits: Limits,
    pub(crate) dry_run: bool,
    /// Actions on a user's account that a protection asks for (suspend,
    /// deactivate, delete media) wait for a moderator's ✅.
    pub(crate) confirm_account_actions: bool,
    /// What happens when stored state or a plugin has a problem at start.
    pub(crate) on_problem: OnProblem,
    /// Per protection: what the operator grants. Absent: nothing.
    pub(crate) grants: BTreeMap<String, CapabilitySet>,
    /// Per protection: the host queries the operator grants (`read-history`,
    /// `read-members` in the same `grants` list). Absent: none.
    pub(crate) query_grants: BTreeMap<String, QueryGrants>,
    /// Per protection: what moderators may grant with `protections grant`.
    pub(crate) grantable: BTreeMap<String, CapabilitySet>,
    /// Per protection: its own sandbox limits, where the operator set any.
    pub(crate) plugin_limits: PluginLimits,
    /// Per protection that asks for `tick` events: how often (default a minute).
    pub(crate) ticks: BTreeMap<String, Duration>,
    /// Room takedown rules in watched lists block and purge the room on this
    /// homeserver (the bot's account must be a server admin).
    pub(crate) room_takedowns: bool,
    /// Bans for these reasons redact the user's recent messages too.
    pub(crate) redact_on_ban: Option<RedactOnBan>,
    /// A ban moderators make with a client is written as a rule to this
    /// list (shortcode) without asking; otherwise they are asked which.
    pub(crate) propagate_bans_to: Option<String>,
    /// A room a management-room member invites the bot to is protected at
    /// once (otherwise moderators are asked with a ✅).
    pub(crate) protect_on_invite: bool,
    /// Every room the bot is in (but the management room and lists) is
    /// protected; a room it leaves stops being protected, without a problem.
    pub(crate) protect_all_joined: bool,
    /// How deep spaces are followed: 1 protects a space's own rooms, 2 also
    /// the rooms of the spaces in it, and so on.
    pub(crate) space_depth: u32,
    /// Read abuse reports from the homeserver's admin API this often
    /// (`[reports] poll = true`; the bot must be a server admin). `None`: off.
    pub(crate) report_poll: Option<Duration>,
    /// The listener for the homeserver's spam-checker module, health and
    /// metrics (`[http]`, `[antispam]`); `None`: off.
    pub(crate) http: Option<http::Http>,
    /// Per protection, the Matrix error code its pre-emptive denials carry.
    pub(crate) errcodes: BTreeMap<String, String>,
}

/// The largest secret file read (`access_token_file`, `password_file`).
const MAX_SECRET_FILE: usize = 64 << 10;

/// Reads and checks the config at `path`. Relative paths inside it are
/// relative to the file's directory.
pub(crate) fn load(path: &Path) -> Result<Config, Vec<ConfigProblem>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigProblem { path: "(file)".into(), message: format!("cannot read {}: {e}", path.display()) }]
    })?;
    let base = path.parent().map_or_else(|| PathBuf::from("."), Path::to_owned);
    let config = parse(&text, &base)?;
    // A config holding a secret itself must be as private as a token file.
    let inline = ["password", "access_token"].iter().any(|key| {
        text.parse::<toml::Table>().ok().and_then(|t| t.get("matrix")?.as_table()?.get(*key).cloned()).is_some()
    });
    if inline && let Err(e) = private_file(path, config.allow_readable_secrets) {
        return Err(vec![ConfigProblem { path: "(file)".into(), message: e }]);
    }
    Ok(config)
}

/// Refuses a file holding a secret that others on the machine can read
/// (group or world bits set), unless `allowed` (then a warning is logged).
pub(crate) fn private_file(path: &Path, allowed: bool) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?.permissions().mode();
        if mode & 0o077 != 0 {
            let message = format!(
                "{} holds a secret and others can read it (mode {:o}); make it private with `chmod 600 {}`, \
                 or set `matrix.allow_readable_secrets = true`",
                path.display(),
                mode & 0o777,
                path.display()
            );
            if !allowed {
                return Err(message);
            }
            tracing::warn!("{message}");
        }
    }
    let _ = (path, allowed);
    Ok(())
}

/// Whether `url`'s host is this machine (loopback), where plain http is safe.
fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(host, _)| host),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Parses config text; every problem is collected, not just the first.
pub(crate) fn parse(text: &str, base: &Path) -> Result<Config, Vec<ConfigProblem>> {
    let root: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map_or(0, |span| text.get(..span.start).unwrap_or(text).matches('\n').count() + 1);
        vec![ConfigProblem { path: "(file)".into(), message: format!("line {line}: not valid TOML: {}", e.message()) }]
    })?;
    let mut r = Reader { problems: Vec::new() };
    r.known_keys(
        "",
        &root,
        &[
            "matrix",
            "storage",
            "plugins",
            "commands",
            "sandbox",
            "actions",
            "startup",
            "policy",
            "reports",
            "rooms",
            "protections",
            "http",
            "antispam",
            "log",
        ],
    );

    let matrix = r.table(&root, "matrix", true);
    let mut homeserver = String::new();
    let mut user_id = String::new();
    let mut management_room = String::new();
    let mut credentials = None;
    let mut allow_insecure = false;
    let mut allow_readable_secrets = false;
    if let Some(m) = matrix {
        r.known_keys(
            "matrix",
            m,
            &[
                "homeserver",
                "user_id",
                "access_token",
                "access_token_file",
                "password",
                "password_file",
                "management_room",
                "allow_insecure",
                "allow_readable_secrets",
            ],
        );
        for (key, value) in
            [("allow_insecure", &mut allow_insecure), ("allow_readable_secrets", &mut allow_readable_secrets)]
        {
            if let Some(v) = m.get(key) {
                match v.as_bool() {
                    Some(b) => *value = b,
                    None => r.problem(&format!("matrix.{key}"), "must be true or false"),
                }
            }
        }
        if let Some(h) = r.string(m, "matrix", "homeserver", true) {
            if (h.starts_with("http://") || h.starts_with("https://"))
                && !h.contains(char::is_whitespace)
                && h.len() > 8
            {
                homeserver = h.trim_end_matches('/').to_owned();
                if homeserver.starts_with("http://") && !is_loopback(&homeserver) && !allow_insecure {
                    r.problem(
                        "matrix.homeserver",
                        format!(
                            "`{h}` is plain http to another machine: the access token would cross the network \
                             unencrypted; use https://, or set `matrix.allow_insecure = true`"
                        ),
                    );
                }
            } else {
                r.problem("matrix.homeserver", format!("`{h}` is not an http:// or https:// URL"));
            }
        }
        if let Some(u) = r.string(m, "matrix", "user_id", true) {
            match event::check_user_id(u) {
                Ok(()) => user_id = u.to_owned(),
                Err(e) => r.problem("matrix.user_id", e),
            }
        }
        if let Some(room) = r.string(m, "matrix", "management_room", true) {
            let alias_ok = room.strip_prefix('#').is_some_and(|rest| rest.contains(':') && !rest.starts_with(':'));
            if event::check_room_id(room).is_ok() || alias_ok {
                management_room = room.to_owned();
            } else {
                r.problem(
                    "matrix.management_room",
                    format!("`{room}` is neither a room id (!room) nor an alias (#room:server)"),
                );
            }
        }
        credentials = r.credentials(m, base, allow_readable_secrets);
    }

    let data_dir = r
        .section(&root, "storage", &["data_dir"])
        .and_then(|s| r.string(s, "storage", "data_dir", false).map(|d| base.join(d)))
        .unwrap_or_else(|| base.join("data"));
    let plugins = r.section(&root, "plugins", &["dir", "settings", "watch", "enable_new"]);
    let plugin_dir = plugins
        .and_then(|s| r.string(s, "plugins", "dir", false).map(|d| base.join(d)))
        .unwrap_or_else(|| base.join("target/plugins"));
    if !plugin_dir.is_dir() {
        r.problem("plugins.dir", format!("{} is not a directory", plugin_dir.display()));
    }
    let settings_file = plugins.and_then(|s| r.string(s, "plugins", "settings", false).map(|f| base.join(f)));
    if let Some(file) = &settings_file
        && !file.parent().is_some_and(Path::is_dir)
    {
        r.problem("plugins.settings", format!("{} is not in an existing directory", file.display()));
    }
    let watch = r.flag(plugins, "plugins", "watch", true);
    let enable_new = r.flag(plugins, "plugins", "enable_new", false);
    let log = log_config(&mut r, &root);
    let commands = r.section(&root, "commands", &["prefix", "short_form", "confirm_above", "min_power_level"]);
    let prefix = commands
        .and_then(|s| r.string(s, "commands", "prefix", false).map(str::to_owned))
        .unwrap_or_else(|| "!gleipnir".to_owned());
    let mut short_form = true;
    if let Some(value) = commands.and_then(|s| s.get("short_form")) {
        match value.as_bool() {
            Some(b) => short_form = b,
            None => r.problem("commands.short_form", "must be true or false"),
        }
    }
    let mut confirm_above = 5;
    if let Some(value) = commands.and_then(|s| s.get("confirm_above")) {
        match value.as_integer() {
            Some(n) if (0..=1_000_000).contains(&n) => confirm_above = n as usize,
            _ => r.problem("commands.confirm_above", "must be a whole number from 0 to 1000000"),
        }
    }
    let mut min_power_level = 50;
    if let Some(value) = commands.and_then(|s| s.get("min_power_level")) {
        match value.as_integer() {
            Some(n) if (0..=100).contains(&n) => min_power_level = n,
            _ => r.problem("commands.min_power_level", "must be a whole number from 0 to 100"),
        }
    }
    if prefix.is_empty() || prefix.contains(char::is_whitespace) {
        r.problem("commands.prefix", format!("`{prefix}` must be non-empty and without spaces"));
    }

    let mut limits = Limits::default();
    if let Some(s) = r.section(&root, "sandbox", LIMIT_KEYS) {
        limits = read_limits(&mut r, s, "sandbox", limits);
    }

    let mut dry_run = false;
    let mut confirm_account_actions = true;
    if let Some(s) = r.section(&root, "actions", &["dry_run", "confirm_account_actions"]) {
        for (key, value) in [("dry_run", &mut dry_run), ("confirm_account_actions", &mut confirm_account_actions)] {
            if let Some(v) = s.get(key) {
                match v.as_bool() {
                    Some(b) => *value = b,
                    None => r.problem(&format!("actions.{key}"), "must be true or false"),
                }
            }
        }
    }

    let (mut protect_on_invite, mut protect_all_joined, mut space_depth) = (false, false, 3);
    if let Some(s) = r.section(&root, "rooms", &["protect_on_invite", "protect_all_joined", "space_depth"]) {
        for (key, out) in
            [("protect_on_invite", &mut protect_on_invite), ("protect_all_joined", &mut protect_all_joined)]
        {
            if let Some(v) = s.get(key) {
                match v.as_bool() {
                    Some(b) => *out = b,
                    None => r.problem(&format!("rooms.{key}"), "must be true or false"),
                }
            }
        }
        if let Some(value) = s.get("space_depth") {
            match value.as_integer() {
                Some(n) if (1..=10).contains(&n) => space_depth = n as u32,
                _ => r.problem("rooms.space_depth", "must be a whole number from 1 to 10"),
            }
        }
    }
    let mut report_poll = None;
    if let Some(s) = r.section(&root, "reports", &["poll", "every"]) {
        let every = r.duration(s, "reports", "every", 1_000, 3_600_000).unwrap_or(Duration::from_secs(5));
        match s.get("poll").map(|v| v.as_bool()) {
            None | Some(Some(false)) => {}
            Some(Some(true)) => report_poll = Some(every),
            Some(None) => r.problem("reports.poll", "must be true or false"),
        }
    }

    let mut room_takedowns = false;
    let mut propagate_bans_to = None;
    let policy = r.section(
        &root,
        "policy",
        &["room_takedowns", "propagate_bans_to", "redact_on_ban_reasons", "redact_on_ban_limit", "redact_on_ban_age"],
    );
    let mut redact_on_ban = None;
    if let Some(s) = policy {
        let reasons = match s.get("redact_on_ban_reasons") {
            None => Vec::new(),
            Some(value) => match value.as_array().map(|a| a.iter().map(|v| v.as_str()).collect::<Option<Vec<_>>>()) {
                Some(Some(list)) => list.into_iter().map(str::to_owned).collect(),
                _ => {
                    r.problem("policy.redact_on_ban_reasons", "must be a list of texts, e.g. [\"spam\"]");
                    Vec::new()
                }
            },
        };
        let mut limit = 100;
        if let Some(value) = s.get("redact_on_ban_limit") {
            match value.as_integer() {
                Some(n) if (1..=1000).contains(&n) => limit = n as usize,
                _ => r.problem("policy.redact_on_ban_limit", "must be a whole number from 1 to 1000"),
            }
        }
        let age = r
            .duration(s, "policy", "redact_on_ban_age", 60_000, 30 * 86_400_000)
            .unwrap_or(Duration::from_secs(24 * 3600));
        if !reasons.is_empty() {
            redact_on_ban = Some(RedactOnBan::new(&reasons, limit, age));
        }
    }
    if let Some(s) = policy
        && let Some(code) = r.string(s, "policy", "propagate_bans_to", false)
    {
        propagate_bans_to = Some(code.to_owned());
    }
    if let Some(s) = policy
        && let Some(v) = s.get("room_takedowns")
    {
        match v.as_bool() {
            Some(b) => room_takedowns = b,
            None => r.problem("policy.room_takedowns", "must be true or false"),
        }
    }

    let mut on_problem = OnProblem::SafeMode;
    if let Some(s) = r.section(&root, "startup", &["on_problem"])
        && let Some(v) = s.get("on_problem")
    {
        match v.as_str() {
            Some("safe_mode") => on_problem = OnProblem::SafeMode,
            Some("exit") => on_problem = OnProblem::Exit,
            _ => r.problem("startup.on_problem", "must be \"safe_mode\" or \"exit\""),
        }
    }

    let mut grants = BTreeMap::new();
    let mut query_grants = BTreeMap::new();
    let mut grantable = BTreeMap::new();
    let mut ticks = BTreeMap::new();
    let mut own_limits = BTreeMap::new();
    let mut errcodes = BTreeMap::new();
    if let Some(protections) = r.table(&root, "protections", false) {
        for (name, value) in protections {
            let path = format!("protections.{name}");
            if !settings::is_kebab(name) {
                r.problem(&path, "protection names are lower-case kebab-case, e.g. `flooding`");
                continue;
            }
            let Some(table) = value.as_table() else {
                r.problem(&path, "must be a table");
                continue;
            };
            let known: Vec<&str> =
                ["grants", "grantable", "tick", "errcode"].iter().chain(LIMIT_KEYS).copied().collect();
            r.known_keys(&path, table, &known);
            if LIMIT_KEYS.iter().any(|k| table.contains_key(*k)) {
                own_limits.insert(name.clone(), read_limits(&mut r, table, &path, limits));
            }
            if let Some(every) = r.duration(table, &path, "tick", 1_000, 86_400_000) {
                ticks.insert(name.clone(), every);
            }
            if let Some(code) = http::errcode(&mut r, table, &path) {
                errcodes.insert(name.clone(), code);
            }
            let mut queries = QueryGrants::EMPTY;
            grants.insert(name.clone(), r.capabilities(table, &path, "grants", Some(&mut queries)));
            query_grants.insert(name.clone(), queries);
            grantable.insert(name.clone(), r.capabilities(table, &path, "grantable", None));
        }
    }

    let http = http::read(&mut r, &root, base, allow_readable_secrets);

    if !r.problems.is_empty() {
        return Err(r.problems);
    }
    Ok(Config {
        homeserver,
        user_id,
        credentials: credentials.expect("no problems means credentials were read"),
        management_room,
        allow_readable_secrets,
        data_dir,
        plugin_dir,
        settings_file,
        watch,
        enable_new,
        prefix,
        short_form,
        log,
        confirm_above,
        min_power_level,
        limits,
        dry_run,
        confirm_account_actions,
        on_problem,
        grants,
        query_grants,
        grantable,
        ticks,
        room_takedowns,
        propagate_bans_to,
        redact_on_ban,
        protect_on_invite,
        protect_all_joined,
        space_depth,
        report_poll,
        http,
        errcodes,
        plugin_limits: PluginLimits { default: limits, by_name: own_limits },
    })
}

pub(crate) mod http;
mod log;
mod reader;
mod sandbox;

use sandbox::{LIMIT_KEYS, read_limits};
pub(crate) use sandbox::{PluginLimits, RedactOnBan, limits_from_pairs};

#[cfg(test)]
use log::DEFAULT_LOG;
pub(crate) use log::Log;
use log::log_config;
use reader::Reader;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz;
