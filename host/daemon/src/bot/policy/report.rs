//! What the policy engine says in the management room: the watched lists,
//! the rules matching an entity or the protected rooms' members, what a list
//! would ban before it is watched, and each batch of rule changes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::sync::Arc;

use gleipnir_policy::{Delta, EntityKind, PolicyList, Recommendation, Rule};

use super::Policy;

impl Policy {
    /// The report of the rule changes `changes` (those not reported before),
    /// one notice for the lot: per list, who changed it, each change and how
    /// many members of the protected rooms its rule matches. `None` when
    /// there is nothing to say.
    pub(crate) fn change_report(&mut self, changes: &Delta) -> Option<String> {
        let changed_by = std::mem::take(&mut self.changed_by);
        if changes.is_empty() {
            return None;
        }
        let mut by_list: BTreeMap<&str, Vec<&gleipnir_policy::Change>> = BTreeMap::new();
        for change in &changes.changes {
            let rule = change.new_rule().or(change.old_rule());
            by_list.entry(rule.map_or("?", |r| &*r.list)).or_default().push(change);
        }
        let mut out = format!("Policy rules that changed or newly apply ({}):", changes.changes.len());
        // Changes shown one a line, at most; the lists past them are named
        // with their counts (watching many lists at once must still make one
        // message a moderator can read).
        const SHOWN: usize = 40;
        let mut shown = 0;
        let mut rest: Vec<(String, usize)> = Vec::new();
        for (list, list_changes) in by_list {
            let name = self.shortcodes.iter().find(|(_, r)| *r == list).map_or(list.to_owned(), |(c, _)| c.clone());
            if shown >= SHOWN {
                rest.push((name, list_changes.len()));
                continue;
            }
            let who: Vec<String> = changed_by.get(list).map(|s| s.iter().cloned().collect()).unwrap_or_default();
            let by = if who.is_empty() { String::new() } else { format!(" by {}", who.join(", ")) };
            let _ = write!(out, "\n{name}{by}:");
            let here = list_changes.len().min(10).min(SHOWN - shown);
            shown += here;
            for change in list_changes.iter().take(here) {
                let (verb, rule) = match change {
                    gleipnir_policy::Change::Added(rule) => ("added", rule),
                    gleipnir_policy::Change::Modified { new, .. } => ("changed", new),
                    gleipnir_policy::Change::Removed(rule) => ("removed", rule),
                };
                let matched = match rule.kind {
                    EntityKind::User => {
                        let bans = gleipnir_policy::bans_for(
                            &Delta { changes: vec![gleipnir_policy::Change::Added(rule.clone())] },
                            &self.members,
                        );
                        let users: BTreeSet<&str> = bans.iter().map(|b| b.user.as_str()).collect();
                        format!("; matches {} member(s) of the protected rooms", users.len())
                    }
                    _ => String::new(),
                };
                let _ = write!(out, "\n- {verb} {rule}{matched}");
            }
            if list_changes.len() > here {
                let _ = write!(out, "\n- … and {} more", list_changes.len() - here);
            }
        }
        if !rest.is_empty() {
            let count: usize = rest.iter().map(|(_, n)| n).sum();
            let named: Vec<String> = rest.iter().take(10).map(|(name, n)| format!("{name} ({n})")).collect();
            let more = if rest.len() > 10 { format!(", and {} more", rest.len() - 10) } else { String::new() };
            let _ = write!(
                out,
                "\n… and {count} change(s) in {} more list(s): {}{more}. `!gleipnir rules` shows every list.",
                rest.len(),
                named.join(", ")
            );
        }
        Some(out)
    }

    /// What watching the list in `state` (its room's state events) would
    /// ban among `members` (`(room, user)` pairs): its rule count and the
    /// members its ban or takedown rules match. Nothing here changes.
    pub(crate) fn preview_list(list: &str, state: &[String], members: &[(String, String)]) -> (usize, Vec<String>) {
        #[derive(serde::Deserialize)]
        struct StateEvent<'a> {
            #[serde(rename = "type")]
            kind: String,
            state_key: Option<String>,
            #[serde(borrow)]
            content: Option<&'a serde_json::value::RawValue>,
        }
        let mut alone = Policy::default();
        alone.lists.insert(list.to_owned(), PolicyList::new(list));
        for json in state {
            let Ok(event) = serde_json::from_str::<StateEvent<'_>>(json) else { continue };
            if let (Some(key), Some(content)) = (event.state_key, event.content) {
                alone.on_rule_state(list, &event.kind, &key, content.get(), "");
            }
        }
        let banned = members
            .iter()
            .filter(|(_, user)| {
                alone
                    .matching(user)
                    .iter()
                    .any(|rule| matches!(rule.recommendation, Recommendation::Ban | Recommendation::Takedown))
            })
            .map(|(room, user)| format!("{user} in {room}"))
            .collect();
        (alone.rule_count(list), banned)
    }

    /// `rules matching members`: the members of protected rooms (`(room,
    /// user)` pairs) that a rule matches, with the rules; at most 50 lines.
    pub(crate) fn members_report(&self, members: &[(String, String)]) -> String {
        let matched: Vec<(&String, &String, Vec<Arc<Rule>>)> = members
            .iter()
            .map(|(room, user)| (room, user, self.matching(user)))
            .filter(|(_, _, rules)| !rules.is_empty())
            .collect();
        if matched.is_empty() {
            return format!("No rule matches any of the {} member(s) of the protected rooms.", members.len());
        }
        let mut out =
            format!("{} of the {} member(s) of the protected rooms match a rule:", matched.len(), members.len());
        for (room, user, rules) in matched.iter().take(50) {
            let shown: Vec<String> = rules.iter().take(3).map(|r| r.to_string()).collect();
            let _ = write!(
                out,
                "
- {user} in {room}: {}",
                shown.join("; ")
            );
        }
        if matched.len() > 50 {
            let _ = write!(
                out,
                "
- … and {} more",
                matched.len() - 50
            );
        }
        out
    }

    /// `rules` and `rules matching ENTITY`
    pub(crate) fn report(&self, matching: Option<&str>) -> String {
        if let Some(entity) = matching {
            let rules = self.matching(entity);
            if rules.is_empty() {
                return format!("No rule matches {entity}.");
            }
            let mut out = format!("{} rule(s) match {entity}:", rules.len());
            for rule in rules {
                let _ = write!(out, "\n- {rule}");
            }
            return out;
        }
        if self.lists.is_empty() && self.failed.is_empty() {
            return "No watched lists. Watch one with `watch LIST`.".to_owned();
        }
        let mut out = String::from("Watched lists:");
        for (room, list) in &self.lists {
            let count = |kind| list.rules().filter(|r| r.kind == kind).count();
            let _ = write!(
                out,
                "\n- {room}: {} rule(s) ({} user, {} room, {} server)",
                list.len(),
                count(EntityKind::User),
                count(EntityKind::Room),
                count(EntityKind::Server)
            );
            let invalid = list.invalid().count();
            if invalid > 0 {
                let _ = write!(out, ", {invalid} unusable rule event(s)");
            }
        }
        for (reference, why) in &self.failed {
            let _ = write!(out, "\n- {reference}: FAILED to load: {why}");
        }
        out
    }
}
