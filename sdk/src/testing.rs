//! Test a protection natively with plain `cargo test`, without wasm.
//!
//! [`Harness`] holds one instance, configured like the host would (defaults,
//! then your overrides, each checked against its spec), and a [`TestHost`]
//! whose clock, memberships and power levels you set.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use crate::prelude::*;
use crate::settings::Settings;

/// (room, user) → membership and join time.
type Members = HashMap<(String, String), (Membership, Option<u64>)>;

/// A host whose answers the test decides.
#[derive(Debug)]
pub struct TestHost {
    now: Cell<u64>,
    bot: String,
    members: RefCell<Members>,
    levels: RefCell<HashMap<(String, String), i64>>,
    room_levels: RefCell<HashMap<String, RoomLevels>>,
    kv: RefCell<HashMap<String, Vec<u8>>>,
    logs: RefCell<Vec<(LogLevel, String)>>,
    message_counts: RefCell<HashMap<(String, String), Option<u32>>>,
    protected: RefCell<Vec<String>>,
    history: RefCell<HashMap<String, Vec<HistoryEvent>>>,
    accounts: RefCell<HashMap<String, Result<u64, String>>>,
}

impl Default for TestHost {
    fn default() -> Self {
        TestHost {
            now: Cell::new(0),
            bot: "@gleipnir:test".to_owned(),
            members: RefCell::default(),
            levels: RefCell::default(),
            room_levels: RefCell::default(),
            kv: RefCell::default(),
            logs: RefCell::default(),
            message_counts: RefCell::default(),
            protected: RefCell::default(),
            history: RefCell::default(),
            accounts: RefCell::default(),
        }
    }
}

/// The levels a room has when its power levels event sets none (the spec's defaults).
pub fn default_room_levels() -> RoomLevels {
    RoomLevels { ban: 50, kick: 50, redact: 50, invite: 0, state_default: 50, events_default: 0, users_default: 0 }
}

impl TestHost {
    pub fn set_now(&self, ms: u64) {
        self.now.set(ms);
    }
    pub fn set_bot_user_id(&mut self, user: &str) {
        self.bot = user.to_owned();
    }
    pub fn set_membership(&self, room: &str, user: &str, membership: Membership, joined_at: Option<u64>) {
        self.members.borrow_mut().insert((room.to_owned(), user.to_owned()), (membership, joined_at));
    }
    pub fn set_power_level(&self, room: &str, user: &str, level: i64) {
        self.levels.borrow_mut().insert((room.to_owned(), user.to_owned()), level);
    }
    pub fn set_room_levels(&self, room: &str, levels: RoomLevels) {
        self.room_levels.borrow_mut().insert(room.to_owned(), levels);
    }
    /// What [`Host::message_count`] answers for `user` in `room` (`None`
    /// when unset: the host does not count there).
    pub fn set_message_count(&self, room: &str, user: &str, count: Option<u32>) {
        self.message_counts.borrow_mut().insert((room.to_owned(), user.to_owned()), count);
    }
    /// The rooms [`Host::protected_rooms`] lists.
    pub fn set_protected_rooms(&self, rooms: &[&str]) {
        *self.protected.borrow_mut() = rooms.iter().map(|r| (*r).to_owned()).collect();
    }
    /// A room's history, newest first, as [`Host::history`] serves it (all
    /// senders: the test host does not filter, as a homeserver may not).
    pub fn set_history(&self, room: &str, events: Vec<HistoryEvent>) {
        self.history.borrow_mut().insert(room.to_owned(), events);
    }
    /// What [`Host::account_created`] answers for `user`: when the account
    /// was made (ms), or why the host cannot tell. Unset users get an error,
    /// as another server's users do.
    pub fn set_account_created(&self, user: &str, created: Result<u64, String>) {
        self.accounts.borrow_mut().insert(user.to_owned(), created);
    }
    /// What the protection logged, oldest first.
    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        self.logs.borrow().clone()
    }
}

impl Host for TestHost {
    fn now_ms(&self) -> u64 {
        self.now.get()
    }
    fn bot_user_id(&self) -> String {
        self.bot.clone()
    }
    fn membership(&self, room: &str, user: &str) -> Option<Membership> {
        self.members.borrow().get(&(room.to_owned(), user.to_owned())).map(|m| m.0)
    }
    fn joined_at(&self, room: &str, user: &str) -> Option<u64> {
        self.members.borrow().get(&(room.to_owned(), user.to_owned())).and_then(|m| m.1)
    }
    fn power_level(&self, room: &str, user: &str) -> i64 {
        let users_default = self.room_levels(room).users_default;
        self.levels.borrow().get(&(room.to_owned(), user.to_owned())).copied().unwrap_or(users_default)
    }
    fn room_levels(&self, room: &str) -> RoomLevels {
        self.room_levels.borrow().get(room).copied().unwrap_or_else(default_room_levels)
    }
    fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        self.kv.borrow().get(key).cloned()
    }
    fn kv_set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.kv.borrow_mut().insert(key.to_owned(), value.to_vec());
        Ok(())
    }
    fn kv_delete(&self, key: &str) {
        self.kv.borrow_mut().remove(key);
    }
    fn log(&self, level: LogLevel, message: &str) {
        self.logs.borrow_mut().push((level, message.to_owned()));
    }
    fn message_count(&self, room: &str, user: &str) -> Option<u32> {
        self.message_counts.borrow().get(&(room.to_owned(), user.to_owned())).copied().flatten()
    }
    fn protected_rooms(&self) -> Vec<String> {
        self.protected.borrow().clone()
    }
    /// Members of the protected rooms the rule's literal entity or glob (`*`,
    /// `?`) names; hashed rules match nobody here.
    fn members_matching(&self, rule: &PolicyRule) -> Vec<String> {
        let Some(entity) = &rule.entity else { return Vec::new() };
        let protected = self.protected.borrow();
        let mut out: Vec<String> = self
            .members
            .borrow()
            .keys()
            .filter(|(room, user)| protected.contains(room) && crate::text::glob(entity, user))
            .map(|(_, user)| user.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }
    fn members(&self, room: &str) -> Vec<Member> {
        let members = self.members.borrow();
        let mut out: Vec<Member> = members
            .iter()
            .filter(|((r, _), _)| r == room)
            .map(|((_, user), (membership, joined_at))| Member {
                user_id: user.clone(),
                membership: *membership,
                joined_at: *joined_at,
                power_level: self.power_level(room, user),
            })
            .collect();
        out.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        out
    }
    fn history(&self, room: &str, _sender: &str, limit: u32) -> Result<Vec<HistoryEvent>, String> {
        match self.history.borrow().get(room) {
            Some(events) => Ok(events.iter().take(limit as usize).cloned().collect()),
            None => Err(format!("no history set for {room}")),
        }
    }
    fn account_created(&self, user: &str) -> Result<u64, String> {
        self.accounts.borrow().get(user).cloned().unwrap_or_else(|| Err(format!("{user} is not an account here")))
    }
}

/// One configured protection and its [`TestHost`].
pub struct Harness<P: Protection> {
    pub protection: P,
    pub host: TestHost,
    overrides: Vec<Setting>,
}

impl<P: Protection> Default for Harness<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Protection> Harness<P> {
    /// A protection configured with its defaults.
    ///
    /// Panics if the defaults do not configure: that is a bug in the protection.
    pub fn new() -> Self {
        let mut harness = Harness { protection: P::default(), host: TestHost::default(), overrides: Vec::new() };
        if let Err(e) = harness.reconfigure() {
            panic!("{} does not accept its own defaults: {e}", P::NAME);
        }
        harness
    }

    /// Change one setting, checked against its spec like the host does.
    pub fn set(&mut self, key: &str, value: SettingValue) -> Result<(), String> {
        let spec = P::Settings::specs()
            .into_iter()
            .find(|s| s.key == key)
            .ok_or_else(|| format!("{} has no setting `{key}`", P::NAME))?;
        check_value(&spec, &value)?;
        self.overrides.retain(|s| s.key != key);
        self.overrides.push(Setting { key: key.to_owned(), value });
        self.reconfigure()
    }

    fn reconfigure(&mut self) -> Result<(), String> {
        let values: Vec<Setting> = P::Settings::specs()
            .into_iter()
            .map(|spec| {
                let value = self.overrides.iter().find(|s| s.key == spec.key).map_or(spec.default, |s| s.value.clone());
                Setting { key: spec.key, value }
            })
            .collect();
        let settings = P::Settings::from_values(&values)?;
        self.protection.configure(settings)
    }

    /// Handle one event with the host's clock set to when it was received.
    pub fn handle(&mut self, event: &Event) -> Vec<Action> {
        if event.received_ts != 0 {
            self.host.set_now(event.received_ts);
        }
        self.protection.handle(event, &self.host)
    }

    /// Handle events in order; all the actions, in order.
    pub fn handle_all<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>) -> Vec<Action> {
        events.into_iter().flat_map(|e| self.handle(e)).collect()
    }

    /// Gives a command as `caller` (power level 100), like the host: a name
    /// the protection does not declare is refused without calling it, and
    /// the settings the reply changes are checked and applied (a bad one
    /// fails the command, as the host would report it).
    pub fn command(&mut self, caller: &str, name: &str, args: &[&str]) -> Result<CommandReply, String> {
        if !P::COMMANDS.iter().any(|c| c.name == name) {
            return Err(format!("{} has no command `{name}`", P::NAME));
        }
        let caller = Caller { user_id: caller.to_owned(), power_level: 100 };
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let reply = self.protection.command(name, &args, &caller, &self.host)?;
        for setting in &reply.settings {
            self.set(&setting.key, setting.value.clone())?;
        }
        Ok(reply)
    }

    /// Asks the protection's pre-emptive check, like the host: classes it
    /// did not declare in `CHECKS` are allowed without asking.
    pub fn check(&mut self, pending: &Pending) -> Verdict {
        let class = match pending {
            Pending::Join(_) => CheckClass::Join,
            Pending::Invite(_) => CheckClass::Invite,
            Pending::Event(_) => CheckClass::Event,
        };
        if !P::CHECKS.contains(&class) {
            return Verdict::Allow;
        }
        self.protection.check(pending, &self.host)
    }
}

/// The bounds and choice checks the host makes before `configure`.
fn check_value(spec: &SettingSpec, value: &SettingValue) -> Result<(), String> {
    let key = &spec.key;
    match (&spec.kind, value) {
        (SettingKind::Integer(b), SettingValue::Integer(v)) => {
            if b.min.is_some_and(|m| *v < m) || b.max.is_some_and(|m| *v > m) {
                return Err(format!("setting `{key}`: {v} is outside {:?}..={:?}", b.min, b.max));
            }
        }
        (SettingKind::Number(b), SettingValue::Number(v)) => {
            if !v.is_finite() || b.min.is_some_and(|m| *v < m) || b.max.is_some_and(|m| *v > m) {
                return Err(format!("setting `{key}`: {v} is outside {:?}..={:?}", b.min, b.max));
            }
        }
        (SettingKind::Choice(options), SettingValue::Choice(v)) => {
            if !options.contains(v) {
                return Err(format!("setting `{key}`: `{v}` is not one of {}", options.join(", ")));
            }
        }
        (SettingKind::Flag, SettingValue::Flag(_))
        | (SettingKind::Text, SettingValue::Text(_))
        | (SettingKind::TextList, SettingValue::TextList(_))
        | (SettingKind::UserId, SettingValue::UserId(_))
        | (SettingKind::UserIds, SettingValue::UserIds(_))
        | (SettingKind::RoomId, SettingValue::RoomId(_))
        | (SettingKind::RoomIds, SettingValue::RoomIds(_))
        | (SettingKind::Duration, SettingValue::Duration(_)) => {}
        (kind, value) => return Err(format!("setting `{key}`: expected {kind:?}, got {value:?}")),
    }
    Ok(())
}

/// Builders for the events tests feed a protection.
pub mod events {
    use std::sync::atomic::{AtomicU64, Ordering};

    use crate::prelude::*;

    static NEXT_ID: AtomicU64 = AtomicU64::new(1);

    fn next_event_id() -> String {
        format!("$test{}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
    }

    fn event(room: &str, sender: &str, content: String, kind: EventKind) -> Event {
        Event {
            room_id: room.to_owned(),
            event_id: next_event_id(),
            sender: sender.to_owned(),
            origin_ts: 0,
            received_ts: 0,
            content,
            kind,
        }
    }

    /// A plain `m.text` message.
    pub fn message(room: &str, sender: &str, body: &str) -> Event {
        let content = format!(r#"{{"msgtype":"m.text","body":{body:?}}}"#);
        event(
            room,
            sender,
            content,
            EventKind::Message(Message {
                msgtype: Msgtype::Text,
                body: body.to_owned(),
                formatted_body: None,
                mentions: None,
                replaces: None,
                in_reply_to: None,
                media: None,
            }),
        )
    }

    /// A membership change of `target`, sent by `target`.
    pub fn membership(room: &str, target: &str, membership: Membership) -> Event {
        event(
            room,
            target,
            "{}".to_owned(),
            EventKind::Membership(MembershipChange {
                target: target.to_owned(),
                membership,
                previous: None,
                reason: None,
                displayname: None,
            }),
        )
    }

    /// A redaction of `redacts`.
    pub fn redaction(room: &str, sender: &str, redacts: &str) -> Event {
        event(
            room,
            sender,
            "{}".to_owned(),
            EventKind::Redaction(Redaction { redacts: Some(redacts.to_owned()), reason: None }),
        )
    }

    impl Event {
        /// The same event sent and received at `ms` since the epoch.
        pub fn at(mut self, ms: u64) -> Event {
            self.origin_ts = ms;
            self.received_ts = ms;
            self
        }

        /// The same event with another event id.
        pub fn with_id(mut self, event_id: &str) -> Event {
            self.event_id = event_id.to_owned();
            self
        }
    }

    /// One line per action, for comparing against expected text.
    pub fn render(actions: &[Action]) -> String {
        actions.iter().map(render_one).collect::<Vec<_>>().join("\n")
    }

    fn render_one(action: &Action) -> String {
        match action {
            Action::Redact(a) => format!("redact {} {} ({})", a.room_id, a.event_id, a.reason),
            Action::Ban(a) => format!("ban {} {} ({})", a.room_id, a.user_id, a.reason),
            Action::Unban(a) => format!("unban {} {} ({})", a.room_id, a.user_id, a.reason),
            Action::Kick(a) => format!("kick {} {} ({})", a.room_id, a.user_id, a.reason),
            Action::SetJoinRule(a) => format!("set-join-rule {} {:?} ({})", a.room_id, a.rule, a.reason),
            Action::SetPowerLevel(a) => {
                format!("set-power-level {} {} {} ({})", a.room_id, a.user_id, a.level, a.reason)
            }
            Action::SendNotice(a) => format!("notice {}: {} ({})", a.room_id, a.body, a.reason),
            Action::NotifyManagement(a) => format!("notify: {} ({})", a.body, a.reason),
            Action::AddPolicyRule(a) => {
                format!("add-rule {} {:?} {} {} ({})", a.list_room, a.kind, a.entity, a.recommendation, a.reason)
            }
            Action::RemovePolicyRule(a) => {
                format!("remove-rule {} {:?} {} {} ({})", a.list_room, a.kind, a.entity, a.recommendation, a.reason)
            }
            Action::SuspendUser(a) => format!("suspend {} ({})", a.user_id, a.reason),
            Action::DeactivateUser(a) => format!("deactivate {} erase={} ({})", a.user_id, a.erase, a.reason),
            Action::DeleteUserMedia(a) => format!("delete-media {} ({})", a.user_id, a.reason),
            Action::Invite(a) => format!("invite {} {} ({})", a.room_id, a.user_id, a.reason),
            Action::RestoreJoinRule(a) => format!("restore-join-rule {} ({})", a.room_id, a.reason),
            Action::BlockRoom(a) => format!("block-room {} ({})", a.room_id, a.reason),
            Action::PurgeRoom(a) => format!("purge-room {} ({})", a.room_id, a.reason),
        }
    }
}
