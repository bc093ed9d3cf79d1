//! Which capability each action needs, and the sets a protection declares and
//! an operator grants. Denied unless both say yes.

use std::fmt;

use crate::{Action, Capability};

/// The capability `action` needs. One exhaustive match with no catch-all, so
/// a new action cannot be added without deciding what guards it.
pub fn required(action: &Action) -> Capability {
    match action {
        Action::Redact(_) => Capability::Redact,
        Action::Ban(_) => Capability::Ban,
        Action::Unban(_) => Capability::Unban,
        Action::Kick(_) => Capability::Kick,
        Action::SetJoinRule(_) | Action::RestoreJoinRule(_) => Capability::SetJoinRule,
        Action::SetPowerLevel(_) => Capability::SetPowerLevel,
        Action::SendNotice(_) => Capability::SendNotice,
        Action::NotifyManagement(_) => Capability::NotifyManagement,
        Action::AddPolicyRule(_) | Action::RemovePolicyRule(_) => Capability::EditPolicyLists,
        Action::SuspendUser(_) => Capability::SuspendUser,
        Action::DeactivateUser(_) => Capability::DeactivateUser,
        Action::DeleteUserMedia(_) => Capability::DeleteUserMedia,
        Action::Invite(_) => Capability::Invite,
        Action::BlockRoom(_) => Capability::BlockRoom,
        Action::PurgeRoom(_) => Capability::PurgeRoom,
    }
}

/// Every capability, in the contract's order.
pub const ALL: [Capability; 15] = [
    Capability::Redact,
    Capability::Ban,
    Capability::Unban,
    Capability::Kick,
    Capability::SetJoinRule,
    Capability::SetPowerLevel,
    Capability::SendNotice,
    Capability::NotifyManagement,
    Capability::EditPolicyLists,
    Capability::SuspendUser,
    Capability::DeactivateUser,
    Capability::DeleteUserMedia,
    Capability::Invite,
    Capability::BlockRoom,
    Capability::PurgeRoom,
];

/// The name operators write in config and moderators in commands.
pub fn name(capability: Capability) -> &'static str {
    match capability {
        Capability::Redact => "redact",
        Capability::Ban => "ban",
        Capability::Unban => "unban",
        Capability::Kick => "kick",
        Capability::SetJoinRule => "set-join-rule",
        Capability::SetPowerLevel => "set-power-level",
        Capability::SendNotice => "send-notice",
        Capability::NotifyManagement => "notify-management",
        Capability::EditPolicyLists => "edit-policy-lists",
        Capability::SuspendUser => "suspend-user",
        Capability::DeactivateUser => "deactivate-user",
        Capability::DeleteUserMedia => "delete-user-media",
        Capability::Invite => "invite",
        Capability::BlockRoom => "block-room",
        Capability::PurgeRoom => "purge-room",
    }
}

/// Reads a capability name; the error lists the valid ones.
pub fn parse(text: &str) -> Result<Capability, String> {
    ALL.into_iter().find(|c| name(*c) == text).ok_or_else(|| {
        let names: Vec<_> = ALL.iter().map(|c| name(*c)).collect();
        format!("unknown capability `{text}`; known: {}", names.join(", "))
    })
}

fn bit(capability: Capability) -> u16 {
    1 << (capability as u16)
}

/// A set of capabilities.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct CapabilitySet(u16);

impl CapabilitySet {
    pub const EMPTY: CapabilitySet = CapabilitySet(0);

    pub fn all() -> Self {
        ALL.iter().copied().collect()
    }
    pub fn contains(self, capability: Capability) -> bool {
        self.0 & bit(capability) != 0
    }
    pub fn insert(&mut self, capability: Capability) {
        self.0 |= bit(capability);
    }
    pub fn remove(&mut self, capability: Capability) {
        self.0 &= !bit(capability);
    }
    pub fn intersection(self, other: CapabilitySet) -> CapabilitySet {
        CapabilitySet(self.0 & other.0)
    }
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        ALL.into_iter().filter(move |c| self.contains(*c))
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl FromIterator<Capability> for CapabilitySet {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        let mut set = CapabilitySet::EMPTY;
        for c in iter {
            set.insert(c);
        }
        set
    }
}

impl fmt::Debug for CapabilitySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(name)).finish()
    }
}

impl fmt::Display for CapabilitySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.iter().map(name).collect();
        if names.is_empty() { f.write_str("(none)") } else { f.write_str(&names.join(", ")) }
    }
}

/// An action the host would not carry out, and why.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub action: Action,
    pub why: String,
}

/// Why an action's fields are unusable, if they are. Checked after the
/// capability, before anything reaches the executor.
pub fn check_fields(action: &Action) -> Result<(), String> {
    fn room(id: &str) -> Result<(), String> {
        crate::event::check_room_id(id).map_err(|e| format!("room id: {e}"))
    }
    fn user(id: &str) -> Result<(), String> {
        crate::event::check_user_id(id).map_err(|e| format!("user id: {e}"))
    }
    fn reason(text: &str) -> Result<(), String> {
        if text.len() > MAX_REASON {
            Err(format!("reason is {} bytes; at most {MAX_REASON}", text.len()))
        } else {
            Ok(())
        }
    }
    fn body(text: &str) -> Result<(), String> {
        if text.is_empty() {
            Err("body is empty".to_owned())
        } else if text.len() > MAX_BODY {
            Err(format!("body is {} bytes; at most {MAX_BODY}", text.len()))
        } else {
            Ok(())
        }
    }
    match action {
        Action::Redact(a) => {
            room(&a.room_id)?;
            crate::event::check_event_id(&a.event_id).map_err(|e| format!("event id: {e}"))?;
            reason(&a.reason)
        }
        Action::Ban(a) | Action::Unban(a) | Action::Kick(a) | Action::Invite(a) => {
            room(&a.room_id)?;
            user(&a.user_id)?;
            reason(&a.reason)
        }
        Action::SetJoinRule(a) => {
            room(&a.room_id)?;
            reason(&a.reason)
        }
        Action::SetPowerLevel(a) => {
            room(&a.room_id)?;
            user(&a.user_id)?;
            // Canonical JSON integers are limited to ±(2^53 - 1).
            if a.level.unsigned_abs() > (1 << 53) - 1 {
                return Err(format!("level {} is outside what Matrix allows", a.level));
            }
            reason(&a.reason)
        }
        Action::SendNotice(a) => {
            room(&a.room_id)?;
            body(&a.body)?;
            reason(&a.reason)
        }
        Action::NotifyManagement(a) => {
            body(&a.body)?;
            reason(&a.reason)
        }
        Action::AddPolicyRule(a) | Action::RemovePolicyRule(a) => {
            room(&a.list_room)?;
            if a.entity.is_empty() || a.entity.len() > 255 {
                return Err("entity must be 1 to 255 bytes".to_owned());
            }
            if a.recommendation.is_empty() {
                return Err("recommendation is empty".to_owned());
            }
            reason(&a.reason)
        }
        Action::SuspendUser(a) | Action::DeleteUserMedia(a) => {
            user(&a.user_id)?;
            reason(&a.reason)
        }
        Action::DeactivateUser(a) => {
            user(&a.user_id)?;
            reason(&a.reason)
        }
        Action::RestoreJoinRule(a) | Action::BlockRoom(a) | Action::PurgeRoom(a) => {
            room(&a.room_id)?;
            reason(&a.reason)
        }
    }
}

/// The longest reason the host passes on.
pub const MAX_REASON: usize = 1024;
/// The longest notice body the host sends.
pub const MAX_BODY: usize = 16 * 1024;
