//! The trait a protection implements.

use crate::Host;
use crate::prelude::*;
use crate::settings::Settings;

/// A command a protection answers, as `help` shows it. Moderators give it as
/// `!gleipnir <protection> <name> <args>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command {
    /// lower-case kebab-case, unique within the protection
    pub name: &'static str,
    /// The arguments as help shows them: `USER`, `ROOM [MINUTES]`.
    pub args: &'static str,
    /// One line for `help`.
    pub help: &'static str,
}

/// A protection: describe yourself once, take settings, turn events into
/// actions; optionally answer commands and veto what has not happened yet.
///
/// The host creates one instance with `Default`, calls
/// [`configure`](Protection::configure) with validated settings before the
/// first event, and then [`handle`](Protection::handle) for each event of the
/// classes listed in [`EVENTS`](Protection::EVENTS), in order, one at a time.
pub trait Protection: Default + 'static {
    /// The name moderators type: lower-case kebab-case, e.g. `flooding`.
    const NAME: &'static str;
    /// One sentence saying what the protection does.
    const SUMMARY: &'static str;
    /// Every kind of action the protection may return. Actions outside this
    /// list are refused by the host.
    const CAPABILITIES: &'static [Capability];
    /// The classes of event the host should deliver.
    const EVENTS: &'static [EventClass];
    /// The commands it answers ([`command`](Protection::command)).
    const COMMANDS: &'static [Command] = &[];
    /// What [`check`](Protection::check) is asked about (none: never asked).
    const CHECKS: &'static [CheckClass] = &[];
    /// With [`EventClass::Tick`] in `EVENTS`: how often (at least a second;
    /// `None`: the host's default, a minute).
    const TICK: Option<Duration> = None;
    /// Typed settings, usually declared with [`settings!`](crate::settings!);
    /// `()` when there are none.
    type Settings: Settings;

    /// Take new settings. Returning an error keeps the previous settings.
    fn configure(&mut self, settings: Self::Settings) -> Result<(), String> {
        let _ = settings;
        Ok(())
    }

    /// Decide what to do about one event.
    fn handle(&mut self, event: &Event, host: &dyn Host) -> Vec<Action>;

    /// Answer one of [`COMMANDS`](Protection::COMMANDS): `args` are the words
    /// after its name. The reply is said to the moderator; its actions are
    /// checked and carried out like `handle`'s, its settings changed like a
    /// moderator's `protections config`. An error is said and nothing is done.
    fn command(
        &mut self,
        name: &str,
        args: &[String],
        caller: &Caller,
        host: &dyn Host,
    ) -> Result<CommandReply, String> {
        let _ = (args, caller, host);
        Err(format!("{} has no command `{name}`", Self::NAME))
    }

    /// Decide, before the homeserver accepts it, whether a join, an invite
    /// or an event of the classes in [`CHECKS`](Protection::CHECKS) may
    /// happen. Runs under a short deadline (5 ms by default) and without
    /// [`Host::history`]: decide from what is in memory.
    fn check(&mut self, pending: &Pending, host: &dyn Host) -> Verdict {
        let _ = (pending, host);
        Verdict::Allow
    }

    /// State to hand to the next version of this protection on a hot swap
    /// ([`state`](crate::state) tags it with a format version).
    fn snapshot(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Take over the state from [`snapshot`](Protection::snapshot) of an earlier
    /// instance (possibly an older version of this protection).
    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let _ = state;
        Ok(())
    }
}

impl CommandReply {
    /// A reply that only says something.
    pub fn say(reply: impl Into<String>) -> CommandReply {
        CommandReply { reply: reply.into(), actions: Vec::new(), settings: Vec::new() }
    }

    /// The same reply, also carrying out `actions`.
    pub fn with_actions(mut self, actions: Vec<Action>) -> CommandReply {
        self.actions.extend(actions);
        self
    }

    /// The same reply, also changing setting `key` to `value`.
    pub fn with_setting(mut self, key: &str, value: SettingValue) -> CommandReply {
        self.settings.push(Setting { key: key.to_owned(), value });
        self
    }
}
