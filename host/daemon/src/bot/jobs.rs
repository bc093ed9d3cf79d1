//! The actions decided while handling a sync: held for a moderator's ✅
//! (actions on accounts), written to the journal with the sync token,
//! carried out through the executor (neighbours that may go out at once
//! together), and the protections' own
//! state kept beside them; failed writes to the data directory are said
//! once and tried again.

use std::collections::BTreeMap;
use std::time::Instant;

use super::{Bot, executor, plan};

/// The executor's view of the bot. A macro, not a method: the executor
/// itself is borrowed mutably beside it.
macro_rules! context {
    ($bot:ident) => {
        executor::Context {
            client: &$bot.matrix.client,
            rooms: &$bot.rooms,
            bot: &$bot.matrix.bot_user,
            management: Some($bot.matrix.management.as_str()),
            protected: &$bot.protected,
            is_list: &|room| $bot.session.policy.is_list(room),
        }
    };
}

impl Bot {
    /// Carries out the actions decided while handling a sync, and moves the
    /// stored sync token past it. The actions are written down with the
    /// token first, so a crash in between neither loses nor repeats them.
    pub(super) async fn flush_jobs(&mut self, token: &str) {
        let mut jobs = std::mem::take(&mut self.jobs);
        if self.config.confirm_account_actions {
            jobs = self.hold_account_actions(jobs).await;
        }
        attacker_first(&mut jobs);
        // What the protections know goes to disk before what they decided is done.
        if self.kept_state.due(!jobs.is_empty()) {
            self.save_protection_states().await;
        }
        if !jobs.is_empty()
            && let Err(e) = self.journal.begin(token, &jobs)
        {
            // Not written down: carried out all the same, rather than not at all.
            self.write_failed("journal", &format!("{e:#}; actions are carried out without it")).await;
        }
        match self.delivered.save() {
            Ok(()) => {
                self.write_failures.remove("delivered");
            }
            Err(e) => self.write_failed("delivered", &format!("{e:#}")).await,
        }
        self.save_token(token).await;
        if jobs.is_empty() {
            return;
        }
        // Neighbours that may go out at once do (all the bans of a rule
        // across rooms, all the redactions of a flood); the rest one by one.
        let mut jobs = jobs.into_iter().enumerate().peekable();
        while let Some((index, job)) = jobs.next() {
            let class = executor::together(&job);
            let (mut indices, mut wave) = (vec![index], vec![job]);
            while let Some((index, job)) =
                jobs.next_if(|(_, next)| class.is_some() && executor::together(next) == class)
            {
                indices.push(index);
                wave.push(job);
            }
            // Each is marked done as soon as its request returns: a crash
            // mid-way repeats only what was in flight.
            let marked = std::sync::Mutex::new((&mut self.journal, vec![false; indices.len()]));
            let sent = |i: usize| {
                let mut marked = marked.lock().unwrap_or_else(|e| e.into_inner());
                marked.0.done(indices[i]);
                marked.1[i] = true;
            };
            let ctx = context!(self);
            let reports = self.executor.run_together(&ctx, wave, &sent).await;
            let (_, sent) = marked.into_inner().unwrap_or_else(|e| e.into_inner());
            for ((index, report), sent) in indices.iter().zip(reports).zip(sent) {
                if let Some(text) = report {
                    self.matrix.notify(&text).await;
                }
                if !sent {
                    self.journal.done(*index);
                }
            }
        }
        self.journal.finish();
        self.redact_after_bans().await;
    }

    /// Takes out the actions on accounts that protections asked for
    /// (suspend, deactivate, delete media) and shows them, one preview per
    /// protection, to be carried out on a moderator's ✅. Accounts out of
    /// reach (see the executor) are refused at once.
    pub(super) async fn hold_account_actions(&mut self, jobs: Vec<executor::Job>) -> Vec<executor::Job> {
        let mut kept = Vec::with_capacity(jobs.len());
        let mut held: BTreeMap<String, plan::Plan> = BTreeMap::new();
        for job in jobs {
            let executor::Job::Act(origin, action) = &job else {
                kept.push(job);
                continue;
            };
            let Some(user) = executor::account_target(action) else {
                kept.push(job);
                continue;
            };
            let op = plan::Op::Protection { origin: origin.to_string(), action: action.clone() };
            let ctx = context!(self);
            if let Some(why) = self.executor.account_out_of_reach(&ctx, user).await {
                kept.push(executor::Job::Report(format!("{origin}: not {}: {why}.", op.describe())));
                continue;
            }
            let plan = held.entry(origin.to_string()).or_insert_with(|| plan::Plan {
                command: format!("{origin}: actions on accounts"),
                always_confirm: true,
                ..plan::Plan::default()
            });
            if !plan.ops.contains(&op) {
                plan.ops.push(op);
            }
        }
        for (origin, plan) in held {
            let text = format!(
                "{origin} asks for actions on accounts, which wait for a moderator ({}):\n{}",
                "`[actions] confirm_account_actions = false` lets them go ahead at once",
                plan.preview()
            );
            if let Some(preview) = self.matrix.send_notice(&text).await {
                self.confirmations.hold(preview.to_string(), plan, Instant::now());
            }
        }
        kept
    }

    /// Writes each enabled protection's state (its `snapshot`) to the data
    /// directory, so a restart or a crash does not wipe it.
    pub(super) async fn save_protection_states(&mut self) {
        let mut faulted = Vec::new();
        let mut failures = Vec::new();
        for (name, state) in self.protections.snapshots(&mut faulted) {
            if let Err(e) = self.kept_state.save(&name, &state) {
                failures.push(format!("{e:#}"));
            }
        }
        for text in faulted {
            self.jobs.push(executor::Job::Report(text));
        }
        match failures.into_iter().next() {
            Some(e) => self.write_failed("protection state", &e).await,
            None => {
                self.write_failures.remove("protection state");
            }
        }
    }

    /// Gives a protection that just started the state it had before a
    /// restart, if any.
    pub(crate) fn restore_protection_state(&mut self, name: &str) {
        if let Some(state) = self.kept_state.load(name) {
            self.protections.restore(name, &state);
        }
    }

    /// Carries out one act now, for `origin`: the one way every action
    /// outside a sync's jobs (moderators' plans, server ACLs, room
    /// takedowns) is done.
    pub(crate) async fn act(&mut self, origin: &executor::Origin, act: executor::Act) -> executor::Outcome {
        let ctx = context!(self);
        self.executor.act(&ctx, origin, act).await
    }

    /// Carries out acts that may go out at once (see
    /// [`executor::Executor::act_together`]); the outcomes in order.
    pub(crate) async fn act_together(
        &mut self,
        acts: Vec<(executor::Origin, executor::Act)>,
    ) -> Vec<executor::Outcome> {
        let ctx = context!(self);
        self.executor.act_together(&ctx, acts, &|_| {}).await
    }

    pub(super) async fn save_token(&mut self, token: &str) {
        match self.tokens.save(token) {
            Ok(()) => {
                self.write_failures.remove("sync token");
            }
            Err(e) => self.write_failed("sync token", &format!("{e:#}")).await,
        }
    }

    /// A write to the data directory failed: logged each time, said in the
    /// management room once until it works again. Never fatal: the write is
    /// tried again next time.
    pub(super) async fn write_failed(&mut self, what: &str, error: &str) {
        tracing::error!("{error}");
        if self.write_failures.insert(what.to_owned()) {
            self.matrix
                .notify(&format!(
                    "Cannot write to the data directory: {error}. Gleipnir keeps running and tries again; \
                 a restart before this is fixed may repeat or miss work."
                ))
                .await;
        }
    }
}

/// Stops the attacker before cleaning up after them: within each run of
/// bans, kicks, redactions and reports, the bans and kicks go first, then
/// the redactions, then the reports, each in the order decided. Anything
/// else (an unban, a join rule, a power level…) stays where it is and
/// nothing moves past it, so an unban and a ban keep their order.
pub(super) fn attacker_first(jobs: &mut [executor::Job]) {
    use gleipnir_runtime::Action;
    let rank = |job: &executor::Job| match job {
        executor::Job::Act(_, Action::Ban(_) | Action::Kick(_)) => Some(0),
        executor::Job::Act(_, Action::Redact(_)) => Some(1),
        executor::Job::Act(_, Action::NotifyManagement(_)) | executor::Job::Report(_) => Some(2),
        executor::Job::Act(..) => None,
    };
    let mut start = 0;
    while start < jobs.len() {
        if rank(&jobs[start]).is_none() {
            start += 1;
            continue;
        }
        let end = jobs[start..].iter().position(|j| rank(j).is_none()).map_or(jobs.len(), |n| start + n);
        // A stable sort: the order decided is kept within each rank.
        jobs[start..end].sort_by_key(|j| rank(j).unwrap_or(3));
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gleipnir_runtime::{Action, NotifyManagement, RedactEvent, TargetUser};

    fn origin() -> executor::Origin {
        executor::Origin::Protection("flooding".into())
    }
    fn ban(user: &str) -> executor::Job {
        executor::Job::Act(
            origin(),
            Action::Ban(TargetUser { room_id: "!r".into(), user_id: user.into(), reason: String::new() }),
        )
    }
    fn unban(user: &str) -> executor::Job {
        executor::Job::Act(
            origin(),
            Action::Unban(TargetUser { room_id: "!r".into(), user_id: user.into(), reason: String::new() }),
        )
    }
    fn redact(event: &str) -> executor::Job {
        executor::Job::Act(
            origin(),
            Action::Redact(RedactEvent { room_id: "!r".into(), event_id: event.into(), reason: String::new() }),
        )
    }
    fn notify() -> executor::Job {
        executor::Job::Act(
            origin(),
            Action::NotifyManagement(NotifyManagement { body: "n".into(), reason: String::new() }),
        )
    }
    fn names(jobs: &[executor::Job]) -> Vec<String> {
        jobs.iter()
            .map(|j| match j {
                executor::Job::Act(_, Action::Ban(a)) => format!("ban {}", a.user_id),
                executor::Job::Act(_, Action::Unban(a)) => format!("unban {}", a.user_id),
                executor::Job::Act(_, Action::Redact(a)) => format!("redact {}", a.event_id),
                executor::Job::Act(_, Action::NotifyManagement(_)) => "notify".to_owned(),
                executor::Job::Report(_) => "report".to_owned(),
                executor::Job::Act(..) => "other".to_owned(),
            })
            .collect()
    }

    #[test]
    fn the_ban_goes_before_the_redactions_and_nothing_moves_past_an_unban() {
        let mut jobs =
            vec![redact("$1"), redact("$2"), notify(), ban("@a"), redact("$3"), unban("@b"), redact("$4"), ban("@b")];
        attacker_first(&mut jobs);
        assert_eq!(
            names(&jobs),
            ["ban @a", "redact $1", "redact $2", "redact $3", "notify", "unban @b", "ban @b", "redact $4"]
        );
    }
}
