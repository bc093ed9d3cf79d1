//! The actions decided for one sync, written down (with the sync token they
//! belong to) before any of them is carried out. A crash between deciding
//! and doing then loses nothing and repeats nothing: at the next start,
//! what is not marked done is carried out, and the events that led to it are
//! not decided again, since the token written with them is already past them.
//!
//! The file is one JSON line (`{"token": …, "jobs": […]}`) written durably,
//! then one line per job carried out (its index). A damaged file is reported
//! and set aside; the stored sync token then makes the events be decided again.

use std::io::Write;

use gleipnir_runtime::{Folder, json};
use serde_json::{Value, json};

use super::executor::{Job, Origin};
use super::files;

const JOURNAL: &str = "journal";

pub(crate) struct Journal {
    data: Folder,
    /// The open file while a batch is being carried out.
    open: Option<std::fs::File>,
}

/// A batch left by a run that stopped before finishing it.
pub(crate) struct Unfinished {
    pub(crate) token: String,
    pub(crate) jobs: Vec<Job>,
}

impl Journal {
    pub(crate) fn new(data: &Folder) -> Journal {
        Journal { data: data.clone(), open: None }
    }

    /// Writes the batch down, durably, before any job in it is carried out.
    pub(crate) fn begin(&mut self, token: &str, jobs: &[Job]) -> anyhow::Result<()> {
        let jobs: Vec<Value> = jobs.iter().map(job_json).collect();
        let mut text = json!({"token": token, "jobs": jobs}).to_string();
        text.push('\n');
        self.data.write_durably(JOURNAL, text.as_bytes(), false)?;
        self.open = self.data.append(JOURNAL).ok();
        Ok(())
    }

    /// Job `index` of the batch was carried out (or refused for good).
    /// Not synced to disk: after a crash of the process the page cache still
    /// has it, and after a power loss a job is at worst carried out twice.
    pub(crate) fn done(&mut self, index: usize) {
        if let Some(file) = &mut self.open
            && let Err(e) = writeln!(file, "{index}")
        {
            tracing::warn!("cannot write to {}: {e}", self.data.shown(JOURNAL).display());
        }
    }

    /// The whole batch was carried out.
    pub(crate) fn finish(&mut self) {
        self.open = None;
        if let Err(e) = self.data.remove(JOURNAL)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("cannot remove {}: {e}", self.data.shown(JOURNAL).display());
        }
    }

    /// What a previous run left unfinished, if anything. A damaged journal is
    /// renamed aside and reported as an error.
    pub(crate) fn unfinished(&self) -> Result<Option<Unfinished>, String> {
        let text = match self.data.read_to_string(JOURNAL) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.set_aside(&format!("cannot read it: {e}"))),
        };
        match parse(&text) {
            Ok(unfinished) => Ok(Some(unfinished)),
            Err(why) => Err(self.set_aside(&why)),
        }
    }

    fn set_aside(&self, why: &str) -> String {
        let moved = files::set_aside(&self.data, JOURNAL, "journal.damaged");
        format!("{} is damaged ({why}); {moved}", self.data.shown(JOURNAL).display())
    }
}

/// Reads a journal: the batch, less the jobs marked done. A last line cut
/// short by a crash is ignored.
fn parse(text: &str) -> Result<Unfinished, String> {
    let mut lines = text.lines();
    let head: Value = serde_json::from_str(lines.next().unwrap_or_default()).map_err(|e| e.to_string())?;
    let token = head.get("token").and_then(Value::as_str).ok_or("no sync token")?.to_owned();
    let listed = head.get("jobs").and_then(Value::as_array).ok_or("no jobs")?;
    let mut jobs = Vec::with_capacity(listed.len());
    for (index, job) in listed.iter().enumerate() {
        jobs.push(Some(job_from_json(job).ok_or_else(|| format!("job {index} is not understood: {job}"))?));
    }
    for line in lines {
        if let Ok(index) = line.trim().parse::<usize>()
            && let Some(slot) = jobs.get_mut(index)
        {
            *slot = None;
        }
    }
    Ok(Unfinished { token, jobs: jobs.into_iter().flatten().collect() })
}

fn job_json(job: &Job) -> Value {
    match job {
        Job::Act(origin, action) => json!({"origin": origin.key(), "action": json::action(action)}),
        Job::Report(text) => json!({"report": text}),
    }
}

fn job_from_json(value: &Value) -> Option<Job> {
    if let Some(text) = value.get("report").and_then(Value::as_str) {
        return Some(Job::Report(text.to_owned()));
    }
    let origin = Origin::from_key(value.get("origin")?.as_str()?);
    Some(Job::Act(origin, json::action_from(value.get("action")?)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gleipnir_runtime::{Action, NotifyManagement, RedactEvent, TargetUser};

    fn jobs() -> Vec<Job> {
        vec![
            Job::Act(
                Origin::Protection("flooding".into()),
                Action::Redact(RedactEvent { room_id: "!r".into(), event_id: "$1".into(), reason: "spam".into() }),
            ),
            Job::Report("flooding: @s:x sent 12 messages".into()),
            Job::Act(
                Origin::Policy,
                Action::Ban(TargetUser { room_id: "!r".into(), user_id: "@s:x".into(), reason: "spam".into() }),
            ),
            Job::Act(
                Origin::Protection("takedown".into()),
                Action::NotifyManagement(NotifyManagement { body: "b".into(), reason: "".into() }),
            ),
        ]
    }

    fn render(jobs: &[Job]) -> Vec<String> {
        jobs.iter().map(|j| job_json(j).to_string()).collect()
    }

    #[test]
    fn a_batch_comes_back_less_what_was_done() {
        let dir = std::env::temp_dir().join(format!("gleipnir-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut journal = Journal::new(&Folder::open(&dir).unwrap());
        assert!(journal.unfinished().unwrap().is_none());
        journal.begin("s42", &jobs()).unwrap();
        journal.done(0);
        journal.done(2);
        // A crash here: the next run finds jobs 1 and 3.
        let left = journal.unfinished().unwrap().expect("unfinished");
        assert_eq!(left.token, "s42");
        let all = render(&jobs());
        assert_eq!(render(&left.jobs), vec![all[1].clone(), all[3].clone()]);
        journal.finish();
        assert!(journal.unfinished().unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_a_damaged_head_set_aside() {
        let head = json!({"token": "t", "jobs": [{"report": "a"}, {"report": "b"}]}).to_string();
        let left = parse(&format!("{head}\n0\n1x")).unwrap();
        assert_eq!(render(&left.jobs), vec![json!({"report": "b"}).to_string()]);

        let dir = std::env::temp_dir().join(format!("gleipnir-journal-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("journal"), "{\"token\": \"t\", \"jo").unwrap();
        let journal = Journal::new(&Folder::open(&dir).unwrap());
        let error = journal.unfinished().err().expect("damaged");
        assert!(error.contains("is damaged") && error.contains("kept as"), "{error}");
        assert!(journal.unfinished().unwrap().is_none(), "set aside, not read again");
        assert!(dir.join("journal.damaged").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
