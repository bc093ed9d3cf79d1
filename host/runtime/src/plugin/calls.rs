//! What contract 0.2.0 added to a running protection: several events in one
//! call, its own commands, and the pre-emptive check with its deadline.

use super::{Fault, Instance, Outcome, truncate_bytes};
use crate::capability;
use crate::{Event, SettingValue};

/// What a protection's command did: its reply, its actions checked like
/// `handle`'s, and the settings it asks to change (not yet validated: the
/// caller applies them like a moderator's change, or not at all).
#[derive(Debug, Default, Clone)]
pub struct CommandOutcome {
    pub reply: String,
    pub outcome: Outcome,
    pub settings: Vec<(String, SettingValue)>,
}

/// A pre-emptive verdict; a denial's follow-up actions checked like `handle`'s.
#[derive(Debug, Clone)]
pub enum Checked {
    Allow,
    Deny { reason: String, follow_up: Outcome },
}

/// The longest command reply or denial reason passed on, in bytes.
const MAX_REPLY: usize = 16 * 1024;

impl Instance {
    /// Hands several events to the protection in one call (the same as one
    /// `handle` each, in order); one outcome per event.
    pub fn handle_batch(&mut self, events: &[Event]) -> Result<Vec<Outcome>, Fault> {
        let returned = self.call("handle-batch", |b, s| b.handle_batch(s, events))?;
        if returned.len() != events.len() {
            let message = format!("returned {} lists of actions for {} events", returned.len(), events.len());
            let fault = Fault::Trap { call: "handle-batch", message };
            self.fault = Some(fault.clone());
            return Err(fault);
        }
        let limit = self.plugin.inner.limits.max_actions;
        if let Some(too_many) = returned.iter().find(|actions| actions.len() > limit) {
            return Err(Fault::TooManyActions { returned: too_many.len(), limit });
        }
        Ok(returned.into_iter().map(|actions| self.check(actions)).collect())
    }

    /// Runs one of the protection's commands (`name` must be in its
    /// descriptor). `Ok(Err(why))` is the protection's own refusal, said to
    /// the caller.
    pub fn command(
        &mut self,
        name: &str,
        args: &[String],
        caller: &crate::Caller,
    ) -> Result<Result<CommandOutcome, String>, Fault> {
        let commands = &self.plugin.descriptor().commands;
        if !commands.iter().any(|c| c.name == name) {
            let known: Vec<&str> = commands.iter().map(|c| c.name.as_str()).collect();
            return Ok(Err(match known.is_empty() {
                true => format!("`{}` has no commands", self.plugin.name()),
                false => format!("`{}` has no command `{name}`; it has: {}", self.plugin.name(), known.join(", ")),
            }));
        }
        let returned = self.call("command", |b, s| b.command(s, name, args, caller))?;
        let reply = match returned {
            Err(mut why) => {
                truncate_bytes(&mut why, MAX_REPLY);
                return Ok(Err(why));
            }
            Ok(reply) => reply,
        };
        let limit = self.plugin.inner.limits.max_actions;
        if reply.actions.len() > limit {
            return Err(Fault::TooManyActions { returned: reply.actions.len(), limit });
        }
        let mut text = reply.reply;
        truncate_bytes(&mut text, MAX_REPLY);
        let settings = reply.settings.into_iter().map(|s| (s.key, s.value)).collect();
        Ok(Ok(CommandOutcome { reply: text, outcome: self.check(reply.actions), settings }))
    }

    /// Asks the protection whether `pending` may happen, under the check
    /// deadline and without `history`. Classes it did not ask for are
    /// allowed without calling it.
    pub fn check_pending(&mut self, pending: &crate::Pending) -> Result<Checked, Fault> {
        let class = match pending {
            crate::Pending::Join(_) => crate::CheckClass::Join,
            crate::Pending::Invite(_) => crate::CheckClass::Invite,
            crate::Pending::Event(_) => crate::CheckClass::Event,
        };
        if !self.plugin.descriptor().checks.contains(&class) {
            return Ok(Checked::Allow);
        }
        self.store.data_mut().checking = true;
        let verdict = self.call("check", |b, s| b.check(s, pending));
        self.store.data_mut().checking = false;
        Ok(match verdict? {
            crate::Verdict::Allow => Checked::Allow,
            crate::Verdict::Deny(denial) => {
                let limit = self.plugin.inner.limits.max_actions;
                if denial.follow_up.len() > limit {
                    return Err(Fault::TooManyActions { returned: denial.follow_up.len(), limit });
                }
                let mut reason = denial.reason;
                truncate_bytes(&mut reason, capability::MAX_REASON);
                Checked::Deny { reason, follow_up: self.check(denial.follow_up) }
            }
        })
    }
}
