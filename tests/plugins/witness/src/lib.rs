//! A contract 0.2.0 protection that says what reaches it, to prove the host
//! delivers each kind of event, routes commands and asks for checks.
//!
//! - Every event it gets (invites, reports, join-rule and power-level
//!   changes, ticks, messages) is told to the management room (the host
//!   says it as `witness: …`).
//! - Commands: `say WORDS…` (replies with the words), `close ROOM` (sets
//!   the join rule to invite), `reopen ROOM` (puts the rule back),
//!   `invite ROOM USER`, `members ROOM` (how many the host lists), `set N`
//!   (changes the `level` setting), `many ROOM N` (N notices: a preview).
//! - `check`: denies events whose content contains `forbidden` (or
//!   `history`, saying what `history` answered), joins of
//!   users whose name starts with `@banned`, and invites from `@spammer`;
//!   `check-spin` set: spins past any deadline.

use gleipnir_sdk::prelude::*;

gleipnir_sdk::settings! {
    pub struct Config {
        /// A number commands may change (`set N`).
        level: i64 = 0;
        /// `check` spins forever (to prove its deadline).
        check_spin: bool = false;
    }
}

#[derive(Default)]
pub struct Witness {
    config: Config,
    ticks: u64,
}

fn describe(event: &Event) -> Option<String> {
    Some(match &event.kind {
        EventKind::Membership(m) if m.membership == Membership::Invite => {
            format!("invite of {} by {} in {}", m.target, event.sender, event.room_id)
        }
        EventKind::Report(r) => format!(
            "report by {} of {} ({}) in {}: {} score={:?} content={}",
            event.sender,
            r.reported_event.as_deref().unwrap_or("?"),
            r.reported_user.as_deref().unwrap_or("?"),
            event.room_id,
            r.reason.as_deref().unwrap_or("no reason"),
            r.score,
            r.reported_content.as_deref().unwrap_or("unreadable"),
        ),
        EventKind::JoinRule(j) => format!("join rule in {}: {:?} (was {:?})", event.room_id, j.rule, j.previous),
        EventKind::PowerLevels(p) => {
            format!("power levels in {}: ban {} for {} user(s)", event.room_id, p.levels.ban, p.users.len())
        }
        EventKind::Message(m) => format!("message from {}: {}", event.sender, m.body),
        _ => return None,
    })
}

impl Protection for Witness {
    const NAME: &'static str = "witness";
    const SUMMARY: &'static str = "Says what reaches it (test plugin for contract 0.2.0).";
    const CAPABILITIES: &'static [Capability] =
        &[Capability::NotifyManagement, Capability::SetJoinRule, Capability::Invite, Capability::SendNotice];
    const EVENTS: &'static [EventClass] = &[
        EventClass::Membership,
        EventClass::Report,
        EventClass::JoinRule,
        EventClass::PowerLevels,
        EventClass::Tick,
        EventClass::Message,
    ];
    const COMMANDS: &'static [Command] = &[
        Command { name: "say", args: "WORDS…", help: "reply with the words" },
        Command { name: "close", args: "ROOM", help: "set ROOM's join rule to invite" },
        Command { name: "reopen", args: "ROOM", help: "put back ROOM's join rule" },
        Command { name: "invite", args: "ROOM USER", help: "invite USER to ROOM" },
        Command { name: "members", args: "ROOM", help: "how many members the host lists" },
        Command { name: "set", args: "N", help: "change the `level` setting" },
        Command { name: "many", args: "ROOM N", help: "send N notices to ROOM" },
    ];
    const CHECKS: &'static [CheckClass] = &[CheckClass::Event, CheckClass::Join, CheckClass::Invite];
    const TICK: Option<Duration> = Some(Duration::from_secs(2));
    type Settings = Config;

    fn configure(&mut self, config: Config) -> Result<(), String> {
        self.config = config;
        Ok(())
    }

    fn handle(&mut self, event: &Event, _: &dyn Host) -> Vec<Action> {
        if let EventKind::Tick = event.kind {
            self.ticks += 1;
            return vec![Action::notify(&format!("tick {}", self.ticks), "tick")];
        }
        match describe(event) {
            Some(text) => vec![Action::notify(&text, "witness")],
            None => Vec::new(),
        }
    }

    fn command(
        &mut self,
        name: &str,
        args: &[String],
        caller: &Caller,
        host: &dyn Host,
    ) -> Result<CommandReply, String> {
        let reason = format!("asked by {}", caller.user_id);
        match (name, args) {
            ("say", words) => Ok(CommandReply::say(format!("witness says: {}", words.join(" ")))),
            ("close" | "reopen", [room]) => {
                let action = match name {
                    "close" => {
                        Action::SetJoinRule(SetJoinRule { room_id: room.clone(), rule: JoinRule::Invite, reason })
                    }
                    _ => Action::RestoreJoinRule(RoomAction { room_id: room.clone(), reason }),
                };
                Ok(CommandReply::say(format!("witness: {name} {room}")).with_actions(vec![action]))
            }
            ("invite", [room, user]) => {
                Ok(CommandReply::say(format!("witness: inviting {user}")).with_actions(vec![Action::Invite(
                    TargetUser { room_id: room.clone(), user_id: user.clone(), reason },
                )]))
            }
            ("members", [room]) => {
                let members = host.members(room);
                let joined = members.iter().filter(|m| m.membership == Membership::Join).count();
                Ok(CommandReply::say(format!("witness: {} member(s), {joined} joined", members.len())))
            }
            ("set", [n]) => {
                let n: i64 = n.parse().map_err(|_| format!("`{n}` is not a number"))?;
                Ok(CommandReply::say(format!("witness: level {} → {n}", self.config.level))
                    .with_setting("level", SettingValue::Integer(n)))
            }
            ("many", [room, n]) => {
                let n: u32 = n.parse().map_err(|_| format!("`{n}` is not a number"))?;
                let notices = (0..n).map(|i| Action::notice(room, &format!("notice {i}"), "many")).collect();
                Ok(CommandReply::say(format!("witness: {n} notice(s)")).with_actions(notices))
            }
            (name, _) => Err(format!("wrong arguments for `{name}`")),
        }
    }

    fn check(&mut self, pending: &Pending, host: &dyn Host) -> Verdict {
        if self.config.check_spin {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        let deny = |reason: &str| {
            Verdict::Deny(Denial { reason: reason.to_owned(), follow_up: vec![Action::notify(reason, "check")] })
        };
        match pending {
            Pending::Event(e) if e.content.contains("history") => {
                deny(&format!("history: {:?}", host.history(&e.room_id, &e.sender, 1).map(|h| h.len())))
            }
            Pending::Event(e) if e.content.contains("forbidden") => deny("forbidden word"),
            Pending::Join(j) if j.user_id.starts_with("@banned") => deny("banned name"),
            Pending::Invite(i) if i.inviter.starts_with("@spammer") => deny("invites from spammers"),
            _ => Verdict::Allow,
        }
    }
}

gleipnir_sdk::export_protection!(Witness);
