//! `gleipnir config check`.

use std::path::Path;
use std::process::ExitCode;

use crate::config;

pub(crate) fn check(path: &Path) -> anyhow::Result<ExitCode> {
    match config::load(path) {
        Ok(c) => {
            println!("{}: ok", path.display());
            println!("  homeserver {} as {}, management room {}", c.homeserver, c.user_id, c.management_room);
            let login = match c.credentials {
                config::Credentials::AccessToken(_) => "access token",
                config::Credentials::Password(_) => "password",
            };
            println!("  logs in with a {login}; commands start with {}", c.prefix);
            println!("  data in {}, plugins from {}", c.data_dir.display(), c.plugin_dir.display());
            println!(
                "  sandbox: {:?} per call, {} MiB memory, {} actions per call",
                c.limits.call_deadline,
                c.limits.memory_bytes >> 20,
                c.limits.max_actions
            );
            for (name, grants) in &c.grants {
                println!("  {name} may: {grants}");
            }
            if c.dry_run {
                println!("  dry run: actions are reported, not carried out");
            }
            if let Some(http) = &c.http {
                println!("  listens on {} for /healthz and /metrics", http.listen);
                if let Some(a) = &http.antispam {
                    let closed = if a.fail_closed.is_empty() {
                        "none".to_owned()
                    } else {
                        a.fail_closed.iter().cloned().collect::<Vec<_>>().join(", ")
                    };
                    println!(
                        "  answers the spam-checker module at /api/1/spam_check within {:?} (fail closed: {closed}){}",
                        a.deadline,
                        if a.reports { "; takes forwarded abuse reports" } else { "" }
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            eprintln!("{}: {} problem(s)", path.display(), problems.len());
            for p in &problems {
                eprintln!("  {p}");
            }
            Ok(ExitCode::from(1))
        }
    }
}
