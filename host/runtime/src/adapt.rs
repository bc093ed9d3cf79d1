//! Contract 0.1.0 values ↔ the runtime's (0.2.0) values, for components
//! built for 0.1.0. Up (0.1.0 → 0.2.0): what such a component returns
//! (descriptor, actions) and passes to host functions. Down (0.2.0 → 0.1.0):
//! what it is handed (events, settings) and host functions' answers. Every
//! 0.1.0 value has a 0.2.0 value; of 0.2.0's events, power-level and
//! join-rule changes go down as the plain state changes 0.1.0 knew them as.

use crate::bindings::v0_1::gleipnir::protection::{host as h1, types as t1};
use crate::bindings::v0_2::gleipnir::protection::{host as h2, types as t2};

/// The same value in the other contract version.
pub(crate) trait Adapt<T> {
    fn adapt(self) -> T;
}

macro_rules! same {
    ($($t:ty),*) => {$(
        impl Adapt<$t> for $t {
            fn adapt(self) -> $t {
                self
            }
        }
    )*};
}
same!(String, bool, u32, u64, i64, f64);

impl<A: Adapt<B>, B> Adapt<Vec<B>> for Vec<A> {
    fn adapt(self) -> Vec<B> {
        self.into_iter().map(Adapt::adapt).collect()
    }
}

impl<A: Adapt<B>, B> Adapt<Option<B>> for Option<A> {
    fn adapt(self) -> Option<B> {
        self.map(Adapt::adapt)
    }
}

/// A record with the same fields in `$from` and `$to`.
macro_rules! record {
    ($from:ident => $to:ident: $($name:ident { $($field:ident),* })*) => {$(
        impl Adapt<$to::$name> for $from::$name {
            fn adapt(self) -> $to::$name {
                $to::$name { $($field: self.$field.adapt()),* }
            }
        }
    )*};
}

/// An enum or variant with the same cases (each with at most one payload).
macro_rules! cases {
    ($from:ident => $to:ident: $($name:ident { $($case:ident $(($x:ident))?),* })*) => {$(
        impl Adapt<$to::$name> for $from::$name {
            fn adapt(self) -> $to::$name {
                match self {
                    $($from::$name::$case $(($x))? => $to::$name::$case $(($x.adapt()))?),*
                }
            }
        }
    )*};
}

/// Records and cases that are the same in both versions, both ways.
macro_rules! both_ways {
    (records { $($r:tt)* } cases { $($c:tt)* }) => {
        record!(t1 => t2: $($r)*);
        record!(t2 => t1: $($r)*);
        cases!(t1 => t2: $($c)*);
        cases!(t2 => t1: $($c)*);
    };
}

both_ways! {
    records {
        MediaInfo { url, mimetype, size }
        Mentions { users, room }
        Message { msgtype, body, formatted_body, mentions, replaces, in_reply_to, media }
        MembershipChange { target, membership, previous, reason, displayname }
        StateChange { event_type, state_key }
        Redaction { redacts, reason }
        Reaction { relates_to, key }
        PolicyRule { kind, entity, entity_sha256, recommendation, reason }
        PolicyChange { change, rule }
        RedactEvent { room_id, event_id, reason }
        TargetUser { room_id, user_id, reason }
        SetJoinRule { room_id, rule, reason }
        SetPowerLevel { room_id, user_id, level, reason }
        SendNotice { room_id, body, reason }
        NotifyManagement { body, reason }
        PolicyRuleEdit { list_room, kind, entity, recommendation, reason }
        ServerUser { user_id, reason }
        Deactivate { user_id, erase, reason }
        IntegerBounds { min, max }
        NumberBounds { min, max }
        SettingSpec { key, doc, kind, default }
        Setting { key, value }
        RoomLevels { ban, kick, redact, invite, state_default, events_default, users_default }
    }
    cases {
        Membership { Invite, Join, Leave, Ban, Knock }
        Msgtype { Text, Notice, Emote, Image, File, Audio, Video, Location, Sticker, Other(x) }
        RuleKind { User, Room, Server }
        RuleChange { Added, Modified, Removed }
        JoinRule { Public, Invite, Knock, Restricted, Private }
        SettingKind {
            Flag, Integer(x), Number(x), Text, TextList, UserId, UserIds, RoomId, RoomIds, Duration, Choice(x)
        }
        SettingValue {
            Flag(x), Integer(x), Number(x), Text(x), TextList(x), UserId(x), UserIds(x), RoomId(x), RoomIds(x),
            Duration(x), Choice(x)
        }
        LogLevel { Trace, Debug, Info, Warn, Error }
        KvError { KeyTooLong(x), ValueTooLarge(x), QuotaExceeded(x) }
    }
}

record!(h2 => h1: HistoryEvent { event_id, sender, event_type, is_state, redacted });

// ---- up: what a 0.1.0 component returns -------------------------------------

cases!(t1 => t2:
    EventClass { Message, Membership, State, Redaction, Reaction, Report, Policy, Tick }
    Capability {
        Redact, Ban, Unban, Kick, SetJoinRule, SetPowerLevel, SendNotice, NotifyManagement, EditPolicyLists,
        SuspendUser, DeactivateUser, DeleteUserMedia
    }
    Action {
        Redact(x), Ban(x), Unban(x), Kick(x), SetJoinRule(x), SetPowerLevel(x), SendNotice(x), NotifyManagement(x),
        AddPolicyRule(x), RemovePolicyRule(x), SuspendUser(x), DeactivateUser(x), DeleteUserMedia(x)
    }
);

impl Adapt<t2::Descriptor> for t1::Descriptor {
    fn adapt(self) -> t2::Descriptor {
        t2::Descriptor {
            name: self.name,
            version: self.version,
            summary: self.summary,
            settings: self.settings.adapt(),
            capabilities: self.capabilities.adapt(),
            events: events_up(self.events),
            // 0.1.0 has no commands, no checks, and ticks at the host's pace.
            commands: Vec::new(),
            checks: Vec::new(),
            tick_ms: None,
        }
    }
}

/// 0.1.0's `state` covered power levels and join rules, which 0.2.0 gives
/// classes of their own: a 0.1.0 component that asks for state gets them.
fn events_up(events: Vec<t1::EventClass>) -> Vec<t2::EventClass> {
    let mut up: Vec<t2::EventClass> = events.adapt();
    if up.contains(&t2::EventClass::State) {
        up.extend([t2::EventClass::PowerLevels, t2::EventClass::JoinRule]);
    }
    up
}

// ---- down: what a 0.1.0 component is handed ----------------------------------

impl Adapt<t1::AbuseReport> for t2::AbuseReport {
    fn adapt(self) -> t1::AbuseReport {
        // 0.1.0 has no score and no reported content.
        t1::AbuseReport { reported_event: self.reported_event, reported_user: self.reported_user, reason: self.reason }
    }
}

/// The event as 0.1.0 has it: power-level and join-rule changes are the
/// plain state changes they were in 0.1.0.
pub(crate) fn event_down(event: &t2::Event) -> t1::Event {
    let state = |event_type: &str| t1::StateChange { event_type: event_type.to_owned(), state_key: String::new() };
    let kind = match event.kind.clone() {
        t2::EventKind::Message(x) => t1::EventKind::Message(x.adapt()),
        t2::EventKind::Membership(x) => t1::EventKind::Membership(x.adapt()),
        t2::EventKind::State(x) => t1::EventKind::State(x.adapt()),
        t2::EventKind::Redaction(x) => t1::EventKind::Redaction(x.adapt()),
        t2::EventKind::Reaction(x) => t1::EventKind::Reaction(x.adapt()),
        t2::EventKind::Report(x) => t1::EventKind::Report(x.adapt()),
        t2::EventKind::Policy(x) => t1::EventKind::Policy(x.adapt()),
        t2::EventKind::Tick => t1::EventKind::Tick,
        t2::EventKind::PowerLevels(_) => t1::EventKind::State(state("m.room.power_levels")),
        t2::EventKind::JoinRule(_) => t1::EventKind::State(state("m.room.join_rules")),
    };
    t1::Event {
        room_id: event.room_id.clone(),
        event_id: event.event_id.clone(),
        sender: event.sender.clone(),
        origin_ts: event.origin_ts,
        received_ts: event.received_ts,
        content: event.content.clone(),
        kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_0_1_0_action_comes_up_as_the_same_action() {
        let user = || t1::TargetUser { room_id: "!r".into(), user_id: "@u:x".into(), reason: "why".into() };
        let up: t2::Action = t1::Action::Ban(user()).adapt();
        assert_eq!(
            up,
            t2::Action::Ban(t2::TargetUser { room_id: "!r".into(), user_id: "@u:x".into(), reason: "why".into() })
        );
        let rule = t1::Action::SetJoinRule(t1::SetJoinRule {
            room_id: "!r".into(),
            rule: t1::JoinRule::Knock,
            reason: "raid".into(),
        });
        assert_eq!(
            rule.adapt(),
            t2::Action::SetJoinRule(t2::SetJoinRule {
                room_id: "!r".into(),
                rule: t2::JoinRule::Knock,
                reason: "raid".into()
            })
        );
    }

    #[test]
    fn events_0_1_0_has_no_word_for_are_handed_down_as_it_knew_them() {
        let event = |kind| t2::Event {
            room_id: "!r".into(),
            event_id: "$e".into(),
            sender: "@s:x".into(),
            origin_ts: 1,
            received_ts: 2,
            content: "{}".into(),
            kind,
        };
        let rule = t2::JoinRuleChange { rule: t2::JoinRule::Invite, previous: None };
        let state = t1::StateChange { event_type: "m.room.join_rules".into(), state_key: String::new() };
        assert_eq!(event_down(&event(t2::EventKind::JoinRule(rule))).kind, t1::EventKind::State(state));
        let report = t2::AbuseReport {
            reported_event: Some("$bad".into()),
            reported_user: Some("@bad:x".into()),
            reason: Some("spam".into()),
            score: Some(-100),
            reported_content: Some("{}".into()),
        };
        let down = event_down(&event(t2::EventKind::Report(report)));
        assert_eq!(
            down.kind,
            t1::EventKind::Report(t1::AbuseReport {
                reported_event: Some("$bad".into()),
                reported_user: Some("@bad:x".into()),
                reason: Some("spam".into()),
            })
        );
        assert_eq!((down.origin_ts, down.received_ts), (1, 2));
    }
}
