//! `audit [USER|ROOM|PROTECTION] [--limit N]`: the audit trail, answered in
//! the management room (see `bot/audit.rs`).

use crate::bot::Bot;
use crate::bot::audit;

impl Bot {
    pub(crate) async fn audit_command(&self, about: Option<String>, limit: u32) -> String {
        let about = match about {
            Some(alias) if alias.starts_with('#') => match self.matrix.resolve(&alias).await {
                Some(id) => Some(id),
                None => return format!("I cannot resolve {alias} to a room; give its id (!…) instead."),
            },
            other => other,
        };
        let data = self.folders.data.clone();
        let read = tokio::task::spawn_blocking(move || audit::read(&data)).await;
        let Ok((entries, skipped)) = read else { return "Reading the audit trail failed.".to_owned() };
        let filter = audit::Filter { about: about.clone(), since: None };
        let found = audit::query(&entries, &filter, limit as usize);
        let matching = entries.iter().filter(|e| filter.matches(e)).count();
        let subject = about.as_deref().map_or(String::new(), |a| format!(" about {a}"));
        let mut out = if found.is_empty() {
            format!("Nothing recorded{subject} in the audit trail ({} entries in all).", entries.len())
        } else {
            let mut out = format!("Audit trail{subject}, newest first ({} of {matching}):", found.len());
            for entry in &found {
                out.push_str(&format!("\n- {}", audit::sentence(entry)));
            }
            out
        };
        if skipped > 0 {
            out.push_str(&format!("\n({skipped} line(s) of the file are not entries, cut short by a crash; skipped.)"));
        }
        out
    }
}
