//! A real Synapse on loopback, for end-to-end tests and the local demo.
//!
//! Synapse comes from PyPI (pinned to [`SYNAPSE_VERSION`]) into the git-ignored
//! virtualenv `.venv` at the workspace root; [`ensure_installed`] creates it on
//! first use. [`Synapse::start`] writes a minimal config on a free port, starts
//! the homeserver, and waits until it answers (or reports its log if it died).
//! Dropping a [`Synapse`] stops the process it started, and only that one.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};

/// The Synapse release the project is tested with.
pub const SYNAPSE_VERSION: &str = "1.163.2";
/// The spam-checker module that calls Gleipnir before Synapse accepts an event.
pub const ANTISPAM_VERSION: &str = "0.5.1";

/// The `modules:` block that wires synapse-http-antispam to a listener at
/// `base_url` (Gleipnir's `/api/1/spam_check`), sending `token`. Messages,
/// joins and room creation fail open (accepted when the listener does not
/// answer); invites fail closed (the README's block).
pub fn antispam_module(base_url: &str, token: &str) -> String {
    antispam_module_with(base_url, token, false)
}

/// [`antispam_module`], with invites failing open too when `invites_open`
/// (a demo that invites before the bot is up).
pub fn antispam_module_with(base_url: &str, token: &str, invites_open: bool) -> String {
    let invites = if invites_open { ", user_may_invite: true" } else { "" };
    format!(
        "modules:
  - module: synapse_http_antispam.HTTPAntispam
    config:
      base_url: '{base_url}'
      authorization: '{token}'
      enabled_callbacks: [check_event_for_spam, user_may_invite, user_may_join_room, user_may_create_room]
      fail_open: {{check_event_for_spam: true, user_may_join_room: true, user_may_create_room: true{invites}}}
"
    )
}

/// The workspace root (two levels above this crate).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root exists")
}

fn venv() -> PathBuf {
    workspace().join(".venv")
}

fn python() -> PathBuf {
    venv().join("bin/python")
}

/// Installs Synapse into `.venv` unless the pinned version is there already.
/// Tests of one binary call this from many threads: one installs, the others wait.
pub fn ensure_installed() -> Result<(), String> {
    static INSTALLED: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if !*installed {
        install()?;
        *installed = true;
    }
    Ok(())
}

fn install() -> Result<(), String> {
    // Synapse, and the spam-checker module Gleipnir's pre-emptive checks use.
    let script = "import sys, synapse, importlib.metadata as m; \
                  sys.stdout.write(synapse.__version__ + ' ' + m.version('synapse-http-antispam'))";
    let check = Command::new(python()).args(["-c", script]).output();
    // Synapse's version may carry its git state ("1.163.2 (b=main,…)") when run inside a checkout.
    if let Ok(out) = &check
        && out.status.success()
    {
        let text = String::from_utf8_lossy(&out.stdout);
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.first() == Some(&SYNAPSE_VERSION) && words.last() == Some(&ANTISPAM_VERSION) {
            return Ok(());
        }
    }
    eprintln!(
        "installing Synapse {SYNAPSE_VERSION} and synapse-http-antispam {ANTISPAM_VERSION} into {} (first use)",
        venv().display()
    );
    if !venv().join("bin/pip").exists() {
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(venv())
            .status()
            .map_err(|e| format!("cannot run python3 to create {}: {e}", venv().display()))?;
        if !status.success() {
            return Err(format!("`python3 -m venv {}` failed ({status})", venv().display()));
        }
    }
    let packages = [format!("matrix-synapse=={SYNAPSE_VERSION}"), format!("synapse-http-antispam=={ANTISPAM_VERSION}")];
    let status = Command::new(venv().join("bin/pip"))
        .args(["install", "--quiet"])
        .args(&packages)
        .status()
        .map_err(|e| format!("cannot run pip: {e}"))?;
    if !status.success() {
        return Err(format!("`pip install {}` failed ({status})", packages.join(" ")));
    }
    Ok(())
}

/// How to run the homeserver.
#[derive(Debug, Clone)]
pub struct Options {
    /// `default_room_version`; `None` keeps Synapse's default (12).
    pub room_version: Option<String>,
    /// Raise every rate limit so tests are not throttled. Turn off to test
    /// that the bot survives `429 M_LIMIT_EXCEEDED`.
    pub raise_rate_limits: bool,
    /// Keep the database in a file under the server's directory, so a restart
    /// keeps rooms and users; otherwise in memory (faster).
    pub persistent: bool,
    /// Where the server keeps its files; `None` makes a fresh directory under
    /// the system temp dir.
    pub dir: Option<PathBuf>,
    /// YAML appended to the generated `homeserver.yaml` (e.g. one rate limit).
    pub extra_config: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            room_version: None,
            raise_rate_limits: true,
            persistent: false,
            dir: None,
            extra_config: String::new(),
        }
    }
}

/// A running Synapse. Stops on drop.
pub struct Synapse {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    shared_secret: String,
    owns_dir: bool,
}

/// A registered account.
#[derive(Debug, Clone)]
pub struct Account {
    pub user_id: String,
    pub password: String,
    pub access_token: String,
}

static STARTED: AtomicU64 = AtomicU64::new(0);

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Rate limits raised for tests, except those `extra` sets itself (a test
/// that wants one limit low keeps the rest out of its way).
fn rate_limits(extra: &str) -> String {
    let fast = "{per_second: 10000, burst_count: 10000}";
    let mut yaml = String::new();
    let set_by_extra = |key: &str| extra.lines().any(|l| l.trim_start().starts_with(&format!("{key}:")));
    for key in [
        "rc_message",
        "rc_registration",
        "rc_admin_redaction",
        "rc_3pid_validation",
        "rc_third_party_invite",
        "rc_media_create",
        "rc_delayed_event_mgmt",
        "rc_reports",
        "rc_user_directory",
        "rc_profile",
        "rc_key_requests",
        "rc_joins_per_room",
        "rc_room_creation",
    ] {
        if !set_by_extra(key) {
            yaml += &format!("{key}: {fast}\n");
        }
    }
    yaml += &format!("rc_login: {{address: {fast}, account: {fast}, failed_attempts: {fast}}}\n");
    yaml += &format!("rc_joins: {{local: {fast}, remote: {fast}}}\n");
    yaml += &format!("rc_invites: {{per_room: {fast}, per_user: {fast}, per_issuer: {fast}}}\n");
    yaml += &format!("rc_presence: {{per_user: {fast}}}\n");
    yaml
}

impl Synapse {
    /// Installs if needed, writes a config, starts, and waits until ready.
    pub fn start(options: Options) -> Result<Synapse, String> {
        ensure_installed()?;
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let (dir, owns_dir) = match &options.dir {
            Some(d) => (d.clone(), false),
            None => (std::env::temp_dir().join(format!("gleipnir-synapse-{}-{n}", std::process::id())), true),
        };
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let port = free_port()?;
        let shared_secret = format!("gleipnir-test-{}-{n}", std::process::id());
        let database =
            if options.persistent { dir.join("homeserver.db").display().to_string() } else { ":memory:".to_owned() };
        let mut config = format!(
            "server_name: localhost
pid_file: {dir}/homeserver.pid
listeners:
  - port: {port}
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources: [{{names: [client], compress: false}}]
database: {{name: sqlite3, args: {{database: '{database}'}}}}
log_config: {dir}/log.yaml
media_store_path: {dir}/media
signing_key_path: {dir}/signing.key
report_stats: false
enable_registration: false
registration_shared_secret: '{shared_secret}'
macaroon_secret_key: 'macaroon-{shared_secret}'
form_secret: 'form-{shared_secret}'
trusted_key_servers: []
suppress_key_server_warning: true
room_list_publication_rules: [{{action: allow}}]
",
            dir = dir.display()
        );
        if let Some(version) = &options.room_version {
            config += &format!("default_room_version: '{version}'\n");
        }
        if options.raise_rate_limits {
            config += &rate_limits(&options.extra_config);
        }
        config += &options.extra_config;
        let log = format!(
            "version: 1
formatters: {{precise: {{format: '%(asctime)s %(levelname)s %(name)s %(message)s'}}}}
handlers: {{file: {{class: logging.FileHandler, formatter: precise, filename: '{}/homeserver.log'}}}}
root: {{level: WARNING, handlers: [file]}}
disable_existing_loggers: false
",
            dir.display()
        );
        std::fs::write(dir.join("homeserver.yaml"), config).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("log.yaml"), log).map_err(|e| e.to_string())?;
        let mut synapse = Synapse { child: None, port, dir, shared_secret, owns_dir };
        synapse.launch()?;
        Ok(synapse)
    }

    fn launch(&mut self) -> Result<(), String> {
        let child = Command::new(python())
            .args(["-m", "synapse.app.homeserver", "-c"])
            .arg(self.dir.join("homeserver.yaml"))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("stderr.log")).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("cannot start Synapse: {e}"))?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(60))
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        let url = format!("{}/_matrix/client/versions", self.url());
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!("Synapse exited ({status}) before it was ready:\n{}", self.log_tail()));
            }
            if ureq::get(&url).call().is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("Synapse did not answer within {limit:?}:\n{}", self.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last lines of the server's logs, for error messages.
    pub fn log_tail(&self) -> String {
        let mut out = String::new();
        for name in ["stderr.log", "homeserver.log"] {
            let mut text = String::new();
            if let Ok(mut f) = std::fs::File::open(self.dir.join(name)) {
                let _ = f.read_to_string(&mut text);
            }
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(30);
            out += &format!("--- {name} ---\n{}\n", lines[start..].join("\n"));
        }
        out
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn server_name(&self) -> &'static str {
        "localhost"
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the stopped server again on the same port and files.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        self.launch()
    }

    /// Stops the server, appends `yaml` to its config (e.g. a module) and
    /// starts it again: rooms and accounts stay with a `persistent` server.
    pub fn restart_with(&mut self, yaml: &str) -> Result<(), String> {
        self.stop();
        let path = self.dir.join("homeserver.yaml");
        let config = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        std::fs::write(&path, format!("{config}{yaml}")).map_err(|e| e.to_string())?;
        self.launch()
    }

    /// Registers an account through the shared-secret admin API.
    pub fn register(&self, localpart: &str, password: &str, admin: bool) -> Result<Account, String> {
        let url = format!("{}/_synapse/admin/v1/register", self.url());
        let nonce: Value = ureq::get(&url)
            .call()
            .map_err(|e| format!("register nonce: {e}"))?
            .body_mut()
            .read_json()
            .map_err(|e| format!("register nonce: {e}"))?;
        let nonce = nonce["nonce"].as_str().ok_or("register: no nonce")?.to_owned();
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(self.shared_secret.as_bytes()).map_err(|e| e.to_string())?;
        mac.update(nonce.as_bytes());
        mac.update(b"\0");
        mac.update(localpart.as_bytes());
        mac.update(b"\0");
        mac.update(password.as_bytes());
        mac.update(b"\0");
        mac.update(if admin { b"admin" } else { b"notadmin" });
        let mac: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        let body = json!({"nonce": nonce, "username": localpart, "password": password, "admin": admin, "mac": mac});
        let reply: Value = ureq::post(&url)
            .send_json(&body)
            .map_err(|e| format!("register {localpart}: {e}"))?
            .body_mut()
            .read_json()
            .map_err(|e| format!("register {localpart}: {e}"))?;
        Ok(Account {
            user_id: reply["user_id"].as_str().ok_or("register: no user_id")?.to_owned(),
            password: password.to_owned(),
            access_token: reply["access_token"].as_str().ok_or("register: no access_token")?.to_owned(),
        })
    }

    /// A client-server API call as `account`; the JSON reply, or an error
    /// with the status and the homeserver's error body.
    pub fn call(&self, account: &Account, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let url = format!("{}{path}", self.url());
        let auth = format!("Bearer {}", account.access_token);
        let empty = json!({});
        let response = match method {
            "GET" => agent.get(&url).header("Authorization", &auth).call(),
            "DELETE" => agent.delete(&url).header("Authorization", &auth).call(),
            "POST" => agent.post(&url).header("Authorization", &auth).send_json(body.unwrap_or(&empty)),
            "PUT" => agent.put(&url).header("Authorization", &auth).send_json(body.unwrap_or(&empty)),
            other => return Err(format!("unsupported method {other}")),
        };
        let mut response = response.map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status();
        let text = response.body_mut().read_to_string().map_err(|e| format!("{method} {path}: {e}"))?;
        if !status.is_success() {
            return Err(format!("{method} {path}: {status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("{method} {path}: {e}: {text}"))
    }
}

impl Synapse {
    /// A `GET` as `account` whose reply may be large (a full-state `/sync`):
    /// the reply's length in bytes, read whole.
    pub fn get_whole(&self, account: &Account, path: &str) -> Result<usize, String> {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let url = format!("{}{path}", self.url());
        let auth = format!("Bearer {}", account.access_token);
        let mut response =
            agent.get(&url).header("Authorization", &auth).call().map_err(|e| format!("GET {path}: {e}"))?;
        let status = response.status();
        let body =
            response.body_mut().with_config().limit(u64::MAX).read_to_vec().map_err(|e| format!("GET {path}: {e}"))?;
        if !status.is_success() {
            return Err(format!("GET {path}: {status}: {}", String::from_utf8_lossy(&body)));
        }
        Ok(body.len())
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        self.stop();
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A user name no other test uses.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{prefix}{}x{}x{nanos}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}
