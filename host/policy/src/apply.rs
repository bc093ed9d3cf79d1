//! From rules to bans: who is in which protected room, and which bans a
//! delta calls for. A delta of a few rules is checked against the members
//! directly (a hash lookup for a literal, one pass for a glob); a large delta
//! (a list loaded at start) is indexed first and each member matched once.

use std::collections::HashMap;
use std::sync::Arc;

use crate::index::Index;
use crate::list::{Change, Delta};
use crate::rule::{EntityKind, EntityRef, Rule};

/// Members (joined, invited or knocking) of the protected rooms.
#[derive(Debug, Default)]
pub struct Members {
    rooms: Vec<Arc<str>>,
    room_ids: HashMap<Arc<str>, u32>,
    users: HashMap<String, Vec<u32>>,
}

impl Members {
    pub fn new() -> Members {
        Members::default()
    }

    /// Records whether `user` is in `room` (join, invite, knock) or not.
    pub fn set(&mut self, room: &str, user: &str, present: bool) {
        let id = match self.room_ids.get(room) {
            Some(id) => *id,
            None if !present => return,
            None => {
                let room: Arc<str> = Arc::from(room);
                self.rooms.push(room.clone());
                let id = (self.rooms.len() - 1) as u32;
                self.room_ids.insert(room, id);
                id
            }
        };
        if present {
            let rooms = self.users.entry(user.to_owned()).or_default();
            if !rooms.contains(&id) {
                rooms.push(id);
            }
        } else if let Some(rooms) = self.users.get_mut(user) {
            rooms.retain(|r| *r != id);
            if rooms.is_empty() {
                self.users.remove(user);
            }
        }
    }

    /// Forgets a room (no longer protected).
    pub fn remove_room(&mut self, room: &str) {
        let Some(id) = self.room_ids.get(room).copied() else { return };
        self.users.retain(|_, rooms| {
            rooms.retain(|r| *r != id);
            !rooms.is_empty()
        });
    }

    pub fn rooms_of(&self, user: &str) -> impl Iterator<Item = &Arc<str>> {
        self.users.get(user).into_iter().flatten().map(|id| &self.rooms[*id as usize])
    }

    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    /// Distinct users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// One ban to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub room: Arc<str>,
    pub user: String,
    pub rule: Arc<Rule>,
}

/// Above this many non-literal rules, a delta is indexed and each member
/// matched once, instead of each rule scanning all members.
const SCAN_PER_RULE_UP_TO: usize = 16;

/// The bans a delta calls for: every member of a protected room matched by
/// a user rule the delta added or changed whose recommendation acts. One ban
/// per (room, user), naming the first matching rule.
pub fn bans_for(delta: &Delta, members: &Members) -> Vec<Ban> {
    let acting: Vec<&Arc<Rule>> = delta
        .changes
        .iter()
        .filter_map(Change::new_rule)
        .filter(|r| r.kind == EntityKind::User && r.recommendation.acts())
        .collect();
    let mut matched: Vec<(&str, Arc<Rule>)> = Vec::new();
    let (literal, other): (Vec<&Arc<Rule>>, Vec<&Arc<Rule>>) =
        acting.iter().partition(|r| matches!(r.entity(), EntityRef::Literal(_)));
    for rule in literal {
        if let EntityRef::Literal(user) = rule.entity()
            && let Some((user, _)) = members.users.get_key_value(user)
        {
            matched.push((user, (*rule).clone()));
        }
    }
    if other.len() <= SCAN_PER_RULE_UP_TO {
        for rule in other {
            matched.extend(
                members.users().filter(|u| rule.entity().matches(EntityKind::User, u)).map(|u| (u, (*rule).clone())),
            );
        }
    } else {
        let mut index = Index::new();
        index.apply(&Delta { changes: other.iter().map(|r| Change::Added((*r).clone())).collect() });
        for user in members.users() {
            if let Some(rule) = index.acting(EntityKind::User, user) {
                matched.push((user, rule.clone()));
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut bans = Vec::new();
    for (user, rule) in matched {
        for room in members.rooms_of(user) {
            if seen.insert((room.clone(), user)) {
                bans.push(Ban { room: room.clone(), user: user.to_owned(), rule: rule.clone() });
            }
        }
    }
    bans
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::list::PolicyList;

    fn members() -> Members {
        let mut m = Members::new();
        for (room, user) in [
            ("!a", "@spam:evil.example"),
            ("!b", "@spam:evil.example"),
            ("!a", "@fine:good.example"),
            ("!b", "@bot2:good.example"),
            ("!b", "@gone:evil.example"),
        ] {
            m.set(room, user, true);
        }
        m.set("!b", "@gone:evil.example", false);
        m
    }

    fn delta(rules: &[(&str, &str)]) -> Delta {
        let mut list = PolicyList::new("!list");
        let contents: Vec<(String, String)> = rules
            .iter()
            .enumerate()
            .map(|(i, (e, r))| (format!("k{i}"), format!(r#"{{"entity": "{e}", "recommendation": "{r}"}}"#)))
            .collect();
        list.apply_all(contents.iter().map(|(k, c)| ("m.policy.rule.user", k.as_str(), c.as_str())))
    }

    fn render(bans: &[Ban]) -> Vec<String> {
        let mut out: Vec<String> =
            bans.iter().map(|b| format!("{} {} ({})", b.room, b.user, b.rule.entity())).collect();
        out.sort();
        out
    }

    #[test]
    fn a_literal_rule_bans_the_member_in_every_room() {
        let bans = bans_for(&delta(&[("@spam:evil.example", "m.ban")]), &members());
        assert_eq!(
            render(&bans),
            ["!a @spam:evil.example (@spam:evil.example)", "!b @spam:evil.example (@spam:evil.example)"]
        );
    }

    #[test]
    fn globs_takedowns_and_non_acting_rules() {
        let bans = bans_for(
            &delta(&[("@*:evil.example", "m.takedown"), ("@bot?:*", "m.ban"), ("@fine:*", "org.example.watch")]),
            &members(),
        );
        assert_eq!(
            render(&bans),
            [
                "!a @spam:evil.example (@*:evil.example)",
                "!b @bot2:good.example (@bot?:*)",
                "!b @spam:evil.example (@*:evil.example)"
            ]
        );
    }

    #[test]
    fn a_large_delta_gives_the_same_bans_as_a_small_one() {
        let mut rules: Vec<(String, &str)> = (0..40).map(|i| (format!("@nobody{i}*:*"), "m.ban")).collect();
        rules.push(("@*:evil.example".to_owned(), "m.ban"));
        let refs: Vec<(&str, &str)> = rules.iter().map(|(e, r)| (e.as_str(), *r)).collect();
        let bans = bans_for(&delta(&refs), &members());
        assert_eq!(
            render(&bans),
            ["!a @spam:evil.example (@*:evil.example)", "!b @spam:evil.example (@*:evil.example)"]
        );
    }

    #[test]
    fn removed_rules_and_other_kinds_ban_nobody() {
        let mut list = PolicyList::new("!list");
        list.apply("m.policy.rule.user", "k", r#"{"entity": "@spam:evil.example", "recommendation": "m.ban"}"#);
        let removed = list.apply_all([("m.policy.rule.user", "k", "{}")]);
        assert!(bans_for(&removed, &members()).is_empty());
        let server =
            list.apply_all([("m.policy.rule.server", "s", r#"{"entity": "evil.example", "recommendation": "m.ban"}"#)]);
        assert!(bans_for(&server, &members()).is_empty());
    }
}
