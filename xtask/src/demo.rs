//! `cargo xtask demo`: a local Synapse on loopback (installed on first use),
//! a bot and a moderator account, a management room and one protected room,
//! the plugins built, and Gleipnir running with flooding enabled, Synapse
//! asking it before accepting a message (synapse-http-antispam, installed
//! beside Synapse). Prints how to log in; Ctrl-C stops everything it started.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use synapse_harness::{Options, Synapse};

pub(crate) fn run(root: &Path, build_plugins: fn() -> Result<Vec<PathBuf>, String>) -> Result<(), String> {
    build_plugins()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("==> building gleipnir");
    let status = Command::new(&cargo)
        .args(["build", "--quiet", "-p", "gleipnir"])
        .current_dir(root)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("building gleipnir failed".to_owned());
    }

    eprintln!(
        "==> starting Synapse {} on loopback, with synapse-http-antispam {}",
        synapse_harness::SYNAPSE_VERSION,
        synapse_harness::ANTISPAM_VERSION
    );
    // The bot's listener: a free port, and a token the module sends.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("cannot find a free port: {e}"))?
        .port();
    let token = format!("demo-antispam-{}-{port}", std::process::id());
    let module =
        synapse_harness::antispam_module_with(&format!("http://127.0.0.1:{port}/api/1/spam_check"), &token, true);
    let synapse = Synapse::start(Options { extra_config: module, ..Options::default() })?;
    let password = format!("demo-{}", std::process::id());
    let bot = synapse.register("gleipnir", &format!("bot-{password}"), false)?;
    let moderator = synapse.register("moderator", &password, false)?;

    let create = |name: &str, invite: &[&str]| {
        let body = json!({"name": name, "preset": "private_chat", "invite": invite,
            "power_level_content_override": {"users": {bot.user_id.clone(): 100}}});
        synapse
            .call(&moderator, "POST", "/_matrix/client/v3/createRoom", Some(&body))
            .map(|r| r["room_id"].as_str().unwrap_or_default().to_owned())
    };
    let management = create("Gleipnir management", &[&bot.user_id])?;
    let protected = create("Protected room", &[&bot.user_id])?;
    let account_data = |kind: &str, content: serde_json::Value| {
        let path = format!("/_matrix/client/v3/user/{}/account_data/{kind}", bot.user_id);
        synapse.call(&bot, "PUT", &path, Some(&content)).map(|_| ())
    };
    account_data("org.matrix.mjolnir.protected_rooms", json!({"rooms": [protected]}))?;
    account_data("org.matrix.mjolnir.enabled_protections", json!({"enabled": ["flooding"]}))?;

    let dir = root.join("data/demo");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let _ = std::fs::remove_file(dir.join("sync_token"));
    let config = format!(
        r#"# Written by `cargo xtask demo`.
[matrix]
homeserver = "{homeserver}"
user_id = "{bot}"
password = "{bot_password}"
management_room = "{management}"
[storage]
data_dir = "."
[plugins]
dir = "{plugins}"
# Synapse asks before it accepts a message, a join or an invite.
[http]
listen = "127.0.0.1:{port}"
[antispam]
authorization_file = "antispam.token"
[protections.flooding]
grants = ["redact", "ban", "notify-management"]
errcode = "M_LIMIT_EXCEEDED"
# The protection in Python (built when componentize-py is installed) needs a
# larger sandbox than a Rust one.
[protections.shouting]
grants = ["redact"]
instances = 16
{grants}"#,
        grants = first_party_grants(),
        homeserver = synapse.url(),
        bot = bot.user_id,
        bot_password = bot.password,
        plugins = root.join("target/plugins").display(),
    );
    std::fs::write(dir.join("config.toml"), config).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("antispam.token"), &token).map_err(|e| e.to_string())?;
    // They hold the bot's password and the module's token: private, as Gleipnir requires.
    #[cfg(unix)]
    for file in ["config.toml", "antispam.token"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())?;
    }

    println!();
    println!("Gleipnir demo");
    println!("  homeserver:       {}", synapse.url());
    println!("  log in as:        {} / {}", moderator.user_id, password);
    println!("  management room:  {management}  (try: !gleipnir help)");
    println!("  protected room:   {protected}  (invite someone and let them flood it: the 11th message is refused)");
    println!("  health, metrics:  http://127.0.0.1:{port}/healthz  http://127.0.0.1:{port}/metrics");
    println!("  config:           {}", dir.join("config.toml").display());
    println!("Ctrl-C stops Gleipnir and Synapse.");
    println!();

    let status = Command::new(root.join("target/debug/gleipnir"))
        .args(["run", "--config"])
        .arg(dir.join("config.toml"))
        .status()
        .map_err(|e| format!("cannot start gleipnir: {e}"))?;
    drop(synapse);
    if status.success() { Ok(()) } else { Err(format!("gleipnir exited ({status})")) }
}

/// The grants `config.example.toml` gives the first-party protections (the
/// block that opens with "What each first-party protection's README asks
/// for"), so the demo's bot acts as soon as a moderator enables one.
fn first_party_grants() -> String {
    const EXAMPLE: &str = include_str!("../../config.example.toml");
    let start = EXAMPLE.find("# What each first-party protection's README asks for").unwrap_or(EXAMPLE.len());
    let rest = &EXAMPLE[start..];
    let end = rest.find("\n# A protection may get a sandbox of its own").unwrap_or(rest.len());
    format!("\n{}", &rest[..end].trim_end())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_demo_grants_what_the_example_grants() {
        let grants = super::first_party_grants();
        for name in ["least-authority", "mention-limit", "join-wave", "invalid-event"] {
            assert!(grants.contains(&format!("[protections.{name}]\ngrants = [")), "{name}: {grants}");
        }
        assert!(!grants.contains("sandbox of its own"), "only the grants block: {grants}");
    }
}
