//! `[http]` and `[antispam]`: the listener the homeserver's spam-checker
//! module calls (synapse-http-antispam), with health and metrics beside it.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::reader::{Reader, read_secret};

/// The callbacks the listener answers (the module's names).
pub(crate) const CALLBACKS: &[&str] =
    &["ping", "check_event_for_spam", "user_may_invite", "user_may_join_room", "user_may_create_room"];

/// The listener, when `[http] listen` is set.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Http {
    pub(crate) listen: SocketAddr,
    /// `/healthz` answers 503 once the last sync is older than this.
    pub(crate) healthy_within: Duration,
    /// The spam-checker callbacks, when `[antispam]` is configured.
    pub(crate) antispam: Option<Antispam>,
}

#[derive(Clone, PartialEq)]
pub(crate) struct Antispam {
    /// The bearer token the module sends (`[antispam] authorization_file`).
    pub(crate) token: String,
    /// A callback not decided by then gets its fail-open or fail-closed answer.
    pub(crate) deadline: Duration,
    /// A user a watched list bans cannot invite anyone on this homeserver.
    pub(crate) block_invites_from_banned: bool,
    /// Callbacks answered "no" when the deadline passes or the bot fails
    /// (the others are answered "yes").
    pub(crate) fail_closed: BTreeSet<String>,
    /// Forwarded abuse reports (`POST /api/1/report/{room}/{event}`) are accepted.
    pub(crate) reports: bool,
}

impl std::fmt::Debug for Antispam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Antispam")
            .field("token", &"(secret)")
            .field("deadline", &self.deadline)
            .field("block_invites_from_banned", &self.block_invites_from_banned)
            .field("fail_closed", &self.fail_closed)
            .field("reports", &self.reports)
            .finish()
    }
}

/// Reads `[http]` and `[antispam]` (relative paths from `base`).
pub(super) fn read(r: &mut Reader, root: &toml::Table, base: &Path, readable_allowed: bool) -> Option<Http> {
    let http = r.section(root, "http", &["listen", "healthy_within"]);
    let antispam_table = r.section(
        root,
        "antispam",
        &["authorization_file", "deadline", "block_invites_from_banned", "fail_closed", "reports"],
    );
    let Some(http) = http else {
        if antispam_table.is_some() {
            r.problem("antispam", "needs `[http] listen = \"127.0.0.1:8081\"`: the module calls that listener");
        }
        return None;
    };
    let listen = match r.string(http, "http", "listen", true).map(str::parse::<SocketAddr>) {
        Some(Ok(addr)) => addr,
        Some(Err(_)) => {
            r.problem("http.listen", "must be an address and port, e.g. \"127.0.0.1:8081\"");
            return None;
        }
        None => return None,
    };
    let healthy_within =
        r.duration(http, "http", "healthy_within", 1_000, 86_400_000).unwrap_or(Duration::from_secs(120));
    let antispam = antispam_table.and_then(|table| antispam(r, table, base, readable_allowed));
    Some(Http { listen, healthy_within, antispam })
}

fn antispam(r: &mut Reader, table: &toml::Table, base: &Path, readable_allowed: bool) -> Option<Antispam> {
    let token = match r.string(table, "antispam", "authorization_file", true) {
        None => None,
        Some(file) => {
            let file = base.join(file);
            match super::private_file(&file, readable_allowed).and_then(|()| {
                read_secret(&file)
                    .map_err(|e| format!("cannot read {}: {e}", file.display()))?
                    .ok_or_else(|| format!("{} is larger than 64 KiB; it should hold one token", file.display()))
            }) {
                Ok(text) if text.trim().len() >= 16 => Some(text.trim().to_owned()),
                Ok(_) => {
                    r.problem(
                        "antispam.authorization_file",
                        format!("{} must hold a token of at least 16 characters", file.display()),
                    );
                    None
                }
                Err(e) => {
                    r.problem("antispam.authorization_file", e);
                    None
                }
            }
        }
    };
    let deadline = r.duration(table, "antispam", "deadline", 1, 10_000).unwrap_or(Duration::from_millis(50));
    let block_invites_from_banned = r.flag(Some(table), "antispam", "block_invites_from_banned", true);
    let reports = r.flag(Some(table), "antispam", "reports", false);
    let mut fail_closed = BTreeSet::new();
    match table.get("fail_closed") {
        None => {}
        Some(toml::Value::Array(items)) => {
            for item in items {
                match item.as_str().filter(|c| CALLBACKS.contains(c) && *c != "ping") {
                    Some(callback) => {
                        fail_closed.insert(callback.to_owned());
                    }
                    None => r.problem(
                        "antispam.fail_closed",
                        format!("{item:?} is not a callback; use {}", CALLBACKS[1..].join(", ")),
                    ),
                }
            }
        }
        Some(_) => r.problem("antispam.fail_closed", "must be a list of callbacks, e.g. [\"user_may_invite\"]"),
    }
    Some(Antispam { token: token?, deadline, block_invites_from_banned, fail_closed, reports })
}

/// `[protections.NAME] errcode`: the Matrix error code a denial of this
/// protection is given (`M_FORBIDDEN` when not set).
pub(super) fn errcode(r: &mut Reader, table: &toml::Table, path: &str) -> Option<String> {
    let code = r.string(table, path, "errcode", false)?;
    let fits = code
        .strip_prefix("M_")
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'));
    if !fits {
        r.problem(&format!("{path}.errcode"), format!("`{code}` is not a Matrix error code like M_LIMIT_EXCEEDED"));
        return None;
    }
    Some(code.to_owned())
}
