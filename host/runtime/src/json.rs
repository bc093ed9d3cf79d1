//! JSON renderings of the contract's types, for the CLI, logs and audit.
//! (The generated types carry no serde; these are the one place that
//! decides how they look outside.)

use serde_json::{Value, json};

use crate::capability;
use crate::settings::{format_kind, kind_name};
use crate::{
    Action, CheckClass, Deactivate, Descriptor, EventClass, JoinRule, NotifyManagement, PolicyRuleEdit, RedactEvent,
    RoomAction, RuleKind, SendNotice, ServerUser, SetJoinRule, SetPowerLevel, SettingKind, SettingValue, TargetUser,
};

pub fn action(action: &Action) -> Value {
    match action {
        Action::Redact(a) => {
            json!({"action": "redact", "room_id": a.room_id, "event_id": a.event_id, "reason": a.reason})
        }
        Action::Ban(a) => json!({"action": "ban", "room_id": a.room_id, "user_id": a.user_id, "reason": a.reason}),
        Action::Unban(a) => json!({"action": "unban", "room_id": a.room_id, "user_id": a.user_id, "reason": a.reason}),
        Action::Kick(a) => json!({"action": "kick", "room_id": a.room_id, "user_id": a.user_id, "reason": a.reason}),
        Action::SetJoinRule(a) => {
            json!({"action": "set-join-rule", "room_id": a.room_id, "join_rule": join_rule(a.rule), "reason": a.reason})
        }
        Action::SetPowerLevel(a) => {
            json!({"action": "set-power-level", "room_id": a.room_id, "user_id": a.user_id, "level": a.level, "reason": a.reason})
        }
        Action::SendNotice(a) => {
            json!({"action": "send-notice", "room_id": a.room_id, "body": a.body, "reason": a.reason})
        }
        Action::NotifyManagement(a) => json!({"action": "notify-management", "body": a.body, "reason": a.reason}),
        Action::AddPolicyRule(a) => {
            json!({"action": "add-policy-rule", "list_room": a.list_room, "kind": rule_kind(a.kind),
            "entity": a.entity, "recommendation": a.recommendation, "reason": a.reason})
        }
        Action::RemovePolicyRule(a) => {
            json!({"action": "remove-policy-rule", "list_room": a.list_room, "kind": rule_kind(a.kind),
            "entity": a.entity, "recommendation": a.recommendation, "reason": a.reason})
        }
        Action::SuspendUser(a) => json!({"action": "suspend-user", "user_id": a.user_id, "reason": a.reason}),
        Action::DeactivateUser(a) => {
            json!({"action": "deactivate-user", "user_id": a.user_id, "erase": a.erase, "reason": a.reason})
        }
        Action::DeleteUserMedia(a) => json!({"action": "delete-user-media", "user_id": a.user_id, "reason": a.reason}),
        Action::Invite(a) => {
            json!({"action": "invite", "room_id": a.room_id, "user_id": a.user_id, "reason": a.reason})
        }
        Action::RestoreJoinRule(a) => json!({"action": "restore-join-rule", "room_id": a.room_id, "reason": a.reason}),
        Action::BlockRoom(a) => json!({"action": "block-room", "room_id": a.room_id, "reason": a.reason}),
        Action::PurgeRoom(a) => json!({"action": "purge-room", "room_id": a.room_id, "reason": a.reason}),
    }
}

/// Reads back what [`action`] wrote (the daemon's journal of actions not yet
/// carried out); `None` for anything else.
pub fn action_from(value: &Value) -> Option<Action> {
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    let reason = text("reason").unwrap_or_default();
    let target = || -> Option<TargetUser> {
        Some(TargetUser { room_id: text("room_id")?, user_id: text("user_id")?, reason: reason.clone() })
    };
    let server_user =
        || -> Option<ServerUser> { Some(ServerUser { user_id: text("user_id")?, reason: reason.clone() }) };
    let room = || -> Option<RoomAction> { Some(RoomAction { room_id: text("room_id")?, reason: reason.clone() }) };
    let rule_edit = || -> Option<PolicyRuleEdit> {
        let kind = match value.get("kind")?.as_str()? {
            "user" => RuleKind::User,
            "room" => RuleKind::Room,
            "server" => RuleKind::Server,
            _ => return None,
        };
        Some(PolicyRuleEdit {
            list_room: text("list_room")?,
            kind,
            entity: text("entity")?,
            recommendation: text("recommendation")?,
            reason: reason.clone(),
        })
    };
    Some(match value.get("action")?.as_str()? {
        "redact" => Action::Redact(RedactEvent {
            room_id: text("room_id")?,
            event_id: text("event_id")?,
            reason: reason.clone(),
        }),
        "ban" => Action::Ban(target()?),
        "unban" => Action::Unban(target()?),
        "kick" => Action::Kick(target()?),
        "set-join-rule" => {
            let rule = join_rule_from(value.get("join_rule")?.as_str()?)?;
            Action::SetJoinRule(SetJoinRule { room_id: text("room_id")?, rule, reason: reason.clone() })
        }
        "set-power-level" => Action::SetPowerLevel(SetPowerLevel {
            room_id: text("room_id")?,
            user_id: text("user_id")?,
            level: value.get("level")?.as_i64()?,
            reason: reason.clone(),
        }),
        "send-notice" => {
            Action::SendNotice(SendNotice { room_id: text("room_id")?, body: text("body")?, reason: reason.clone() })
        }
        "notify-management" => {
            Action::NotifyManagement(NotifyManagement { body: text("body")?, reason: reason.clone() })
        }
        "add-policy-rule" => Action::AddPolicyRule(rule_edit()?),
        "remove-policy-rule" => Action::RemovePolicyRule(rule_edit()?),
        "suspend-user" => Action::SuspendUser(server_user()?),
        "deactivate-user" => Action::DeactivateUser(Deactivate {
            user_id: text("user_id")?,
            erase: value.get("erase")?.as_bool()?,
            reason: reason.clone(),
        }),
        "delete-user-media" => Action::DeleteUserMedia(server_user()?),
        "invite" => Action::Invite(target()?),
        "restore-join-rule" => Action::RestoreJoinRule(room()?),
        "block-room" => Action::BlockRoom(room()?),
        "purge-room" => Action::PurgeRoom(room()?),
        _ => return None,
    })
}

/// Reads back what [`join_rule`] wrote (`m.room.join_rules`' `join_rule`).
pub use crate::event::parse_join_rule as join_rule_from;

pub fn join_rule(rule: JoinRule) -> &'static str {
    match rule {
        JoinRule::Public => "public",
        JoinRule::Invite => "invite",
        JoinRule::Knock => "knock",
        JoinRule::Restricted => "restricted",
        JoinRule::Private => "private",
    }
}

pub fn rule_kind(kind: RuleKind) -> &'static str {
    match kind {
        RuleKind::User => "user",
        RuleKind::Room => "room",
        RuleKind::Server => "server",
    }
}

pub fn event_class(class: EventClass) -> &'static str {
    match class {
        EventClass::Message => "message",
        EventClass::Membership => "membership",
        EventClass::State => "state",
        EventClass::Redaction => "redaction",
        EventClass::Reaction => "reaction",
        EventClass::Report => "report",
        EventClass::Policy => "policy",
        EventClass::Tick => "tick",
        EventClass::PowerLevels => "power-levels",
        EventClass::JoinRule => "join-rule",
    }
}

/// The class of what `check` is asked about: `join`, `invite` or `event`.
pub fn pending_class(pending: &crate::Pending) -> &'static str {
    check_class(match pending {
        crate::Pending::Join(_) => CheckClass::Join,
        crate::Pending::Invite(_) => CheckClass::Invite,
        crate::Pending::Event(_) => CheckClass::Event,
    })
}

pub fn check_class(class: CheckClass) -> &'static str {
    match class {
        CheckClass::Join => "join",
        CheckClass::Invite => "invite",
        CheckClass::Event => "event",
    }
}

pub fn setting_value(value: &SettingValue) -> Value {
    match value {
        SettingValue::Flag(b) => json!(b),
        SettingValue::Integer(i) => json!(i),
        SettingValue::Number(n) => json!(n),
        SettingValue::Text(t) | SettingValue::UserId(t) | SettingValue::RoomId(t) | SettingValue::Choice(t) => json!(t),
        SettingValue::TextList(l) | SettingValue::UserIds(l) | SettingValue::RoomIds(l) => json!(l),
        SettingValue::Duration(ms) => json!(ms),
    }
}

fn setting_kind(kind: &SettingKind) -> Value {
    let mut out = json!({"type": kind_name(kind)});
    match kind {
        SettingKind::Integer(b) => {
            out["min"] = json!(b.min);
            out["max"] = json!(b.max);
        }
        SettingKind::Number(b) => {
            out["min"] = json!(b.min);
            out["max"] = json!(b.max);
        }
        SettingKind::Choice(options) => out["options"] = json!(options),
        SettingKind::Duration => out["unit"] = json!("ms"),
        _ => {}
    }
    out
}

pub fn descriptor(d: &Descriptor, wit_version: &str, content_hash: &str) -> Value {
    json!({
        "name": d.name,
        "version": d.version,
        "wit": format!("{}@{}", crate::WIT_PACKAGE, wit_version),
        "sha256": content_hash,
        "summary": d.summary,
        "settings": d.settings.iter().map(|s| json!({
            "key": s.key,
            "kind": setting_kind(&s.kind),
            "kind_text": format_kind(&s.kind),
            "default": setting_value(&s.default),
            "default_text": crate::settings::format_value(&s.default),
            "doc": s.doc,
        })).collect::<Vec<_>>(),
        "capabilities": d.capabilities.iter().map(|c| capability::name(*c)).collect::<Vec<_>>(),
        "events": d.events.iter().map(|e| event_class(*e)).collect::<Vec<_>>(),
        "commands": d.commands.iter().map(|c| json!({"name": c.name, "args": c.args, "help": c.help})).collect::<Vec<_>>(),
        "checks": d.checks.iter().map(|c| check_class(*c)).collect::<Vec<_>>(),
        "tick_ms": d.tick_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_reads_back_as_written() {
        let user = || TargetUser { room_id: "!r:x".into(), user_id: "@u:x".into(), reason: "why".into() };
        let edit = || PolicyRuleEdit {
            list_room: "!l:x".into(),
            kind: RuleKind::Server,
            entity: "*.bad".into(),
            recommendation: "m.ban".into(),
            reason: "why".into(),
        };
        let server = || ServerUser { user_id: "@u:x".into(), reason: "why".into() };
        let actions = vec![
            Action::Redact(RedactEvent { room_id: "!r:x".into(), event_id: "$e".into(), reason: "why".into() }),
            Action::Ban(user()),
            Action::Unban(user()),
            Action::Kick(user()),
            Action::SetJoinRule(SetJoinRule { room_id: "!r:x".into(), rule: JoinRule::Knock, reason: "why".into() }),
            Action::SetPowerLevel(SetPowerLevel {
                room_id: "!r:x".into(),
                user_id: "@u:x".into(),
                level: -5,
                reason: "why".into(),
            }),
            Action::SendNotice(SendNotice { room_id: "!r:x".into(), body: "hi".into(), reason: "why".into() }),
            Action::NotifyManagement(NotifyManagement { body: "hi".into(), reason: "".into() }),
            Action::AddPolicyRule(edit()),
            Action::RemovePolicyRule(edit()),
            Action::SuspendUser(server()),
            Action::DeactivateUser(Deactivate { user_id: "@u:x".into(), erase: true, reason: "why".into() }),
            Action::DeleteUserMedia(server()),
            Action::Invite(user()),
            Action::RestoreJoinRule(RoomAction { room_id: "!r:x".into(), reason: "calm".into() }),
            Action::BlockRoom(RoomAction { room_id: "!r:x".into(), reason: "why".into() }),
            Action::PurgeRoom(RoomAction { room_id: "!r:x".into(), reason: "why".into() }),
        ];
        for a in &actions {
            let written = action(a);
            let back = action_from(&written).unwrap_or_else(|| panic!("not read back: {written}"));
            assert_eq!(action(&back), written);
        }
        assert!(action_from(&json!({"action": "explode"})).is_none());
        assert!(action_from(&json!({"action": "ban", "room_id": 3})).is_none());
    }
}
