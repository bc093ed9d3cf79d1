//! JSON renderings of the contract's types, for the CLI, logs and audit.
//! (The generated types carry no serde; these are the one place that
//! decides how they look outside.)

use serde_json::{Value, json};

use crate::capability;
use crate::settings::{format_kind, kind_name};
use crate::{Action, Descriptor, EventClass, JoinRule, RuleKind, SettingKind, SettingValue};

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
    }
}

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
            "doc": s.doc,
        })).collect::<Vec<_>>(),
        "capabilities": d.capabilities.iter().map(|c| capability::name(*c)).collect::<Vec<_>>(),
        "events": d.events.iter().map(|e| event_class(*e)).collect::<Vec<_>>(),
    })
}
