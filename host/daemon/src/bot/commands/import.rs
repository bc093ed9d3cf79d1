//! `import ROOM LIST`: the bans a room holds (and the servers its ACL
//! denies) written into a policy list as ban rules, after a preview, so a
//! community moving to shared lists keeps the bans its moderators made by
//! hand. Entities the list bans already are left out, and so is any denial
//! that would name the bot's own homeserver.

use gleipnir_policy::{EntityKind, Recommendation};
use serde_json::Value;

use super::super::Bot;
use super::super::plan::{Op, Plan};
use super::Reply;
use crate::parse::RoomRef;

/// The rules to write for a room's state (client-format JSON events):
/// one per banned member, one per server its ACL denies. `in_list` tells
/// whether the list bans an entity already; `own_server` is the bot's.
pub(crate) fn import_ops(
    state: &[String],
    room_name: &str,
    list: &str,
    own_server: &str,
    in_list: impl Fn(&str) -> bool,
) -> (Vec<Op>, Vec<String>) {
    let (mut ops, mut skipped) = (Vec::new(), Vec::new());
    let mut add = |entity: &str, reason: &str, skipped: &mut Vec<String>| {
        if in_list(entity) {
            skipped.push(format!("{entity}: the list bans it already"));
            return;
        }
        let published = gleipnir_policy::rule::publish(entity, &Recommendation::Ban, reason, false);
        ops.push(Op::AddRule {
            room: list.to_owned(),
            event_type: published.event_type.to_owned(),
            state_key: published.state_key,
            content: published.content,
            rule: format!("ban {} {entity} ({reason})", EntityKind::of(entity).name()),
        });
    };
    for json in state {
        let Ok(event) = serde_json::from_str::<Value>(json) else { continue };
        let (Some(kind), Some(key)) = (event["type"].as_str(), event["state_key"].as_str()) else { continue };
        match kind {
            "m.room.member" if event["content"]["membership"] == "ban" => {
                if gleipnir_runtime::event::check_user_id(key).is_err() {
                    skipped.push(format!("{key}: not a user id"));
                    continue;
                }
                let reason = event["content"]["reason"].as_str().map(str::trim).filter(|r| !r.is_empty());
                let reason = reason.map_or_else(|| format!("banned in {room_name}"), str::to_owned);
                add(key, &reason, &mut skipped);
            }
            "m.room.server_acl" if key.is_empty() => {
                let denied = event["content"]["deny"].as_array().cloned().unwrap_or_default();
                for server in denied.iter().filter_map(Value::as_str) {
                    let names_own = match gleipnir_policy::glob::Glob::new(server) {
                        Some(glob) => glob.matches(&own_server.to_ascii_lowercase()),
                        None => server.eq_ignore_ascii_case(own_server),
                    };
                    if server.is_empty() || names_own || EntityKind::of(server) != EntityKind::Server {
                        skipped.push(format!(
                            "{server}: denied by the ACL, but not a rule to write (it names my own server or no server)"
                        ));
                        continue;
                    }
                    add(server, &format!("denied by {room_name}'s server ACL"), &mut skipped);
                }
            }
            _ => {}
        }
    }
    (ops, skipped)
}

impl Bot {
    /// `import ROOM LIST`
    pub(crate) async fn import_command(&mut self, room: &RoomRef, list: &str) -> Reply {
        let Some(list_room) = self.find_list(list).await else {
            return Reply::Done(format!(
                "`{list}` is not a watched list (lists: {}). Nothing changed.",
                self.list_names()
            ));
        };
        if !self.can_edit(&list_room) {
            return Reply::Done(format!(
                "I cannot write rules in {list}: my power level there is too low. Nothing changed."
            ));
        }
        let id = match self.matrix.room_id(room).await {
            Ok(id) => id,
            Err(reply) => return Reply::Done(reply),
        };
        let state = match self.matrix.room_state(&id).await {
            Ok(state) => state,
            Err(e) => {
                return Reply::Done(format!(
                    "I cannot read {room}'s state ({e:#}): I must be in the room (`rooms add` it). Nothing changed."
                ));
            }
        };
        let name = super::rooms::RoomAbout::of(&state).name(&id);
        let own_server = self.matrix.bot_user.split_once(':').map_or("", |(_, server)| server).to_owned();
        let policy = &self.session.policy;
        let in_list = |entity: &str| {
            policy.naming(entity).iter().any(|r| *r.list == *list_room && r.recommendation == Recommendation::Ban)
        };
        let (ops, skipped) = import_ops(&state, &name, &list_room, &own_server, in_list);
        if ops.is_empty() {
            let mut out = format!("Nothing to import from {name}: no ban or server denial the list lacks.");
            for s in &skipped {
                out.push_str(&format!("\n- {s}"));
            }
            return Reply::Done(out);
        }
        Reply::Plan(Plan {
            command: format!("import {room} {list}"),
            ops,
            skipped,
            always_confirm: true,
            notes: vec![format!("Bans in every protected room follow once the rules are in {list}.")],
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn state(kind: &str, key: &str, content: Value) -> String {
        json!({"type": kind, "state_key": key, "content": content}).to_string()
    }

    #[test]
    fn bans_and_denied_servers_become_rules_and_known_or_unsafe_ones_do_not() {
        let room = [
            state("m.room.member", "@spam:evil.org", json!({"membership": "ban", "reason": "spam"})),
            state("m.room.member", "@quiet:evil.org", json!({"membership": "ban"})),
            state("m.room.member", "@known:evil.org", json!({"membership": "ban"})),
            state("m.room.member", "@member:good.org", json!({"membership": "join"})),
            state("m.room.server_acl", "", json!({"allow": ["*"], "deny": ["bad.example", "*.home.org", "", 7]})),
        ];
        let (ops, skipped) = import_ops(&room, "Lobby", "!list:x", "matrix.home.org", |e| e == "@known:evil.org");
        let rules: Vec<String> = ops.iter().map(Op::describe).collect();
        assert_eq!(
            rules,
            [
                "add the rule ban user @spam:evil.org (spam)",
                "add the rule ban user @quiet:evil.org (banned in Lobby)",
                "add the rule ban server bad.example (denied by Lobby's server ACL)",
            ]
        );
        assert!(ops.iter().all(|op| op.room() == "!list:x"));
        let Op::AddRule { event_type, content, .. } = &ops[0] else { panic!() };
        assert_eq!(event_type, "m.policy.rule.user");
        assert_eq!(content["entity"], "@spam:evil.org");
        assert_eq!(content["recommendation"], "m.ban");
        assert_eq!(skipped.len(), 3, "{skipped:?}");
        assert!(skipped[0].starts_with("@known:evil.org: the list bans it already"));
        assert!(skipped[1].starts_with("*.home.org: denied by the ACL, but not a rule"));
    }
}
