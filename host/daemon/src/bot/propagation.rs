//! Ban propagation (Draupnir's BanPropagation): a ban a moderator makes with
//! their client in a protected room is offered, in the management room,
//! for a watched list the bot can edit, so the ban follows the user into
//! every room those lists protect. Numbered reactions choose the list, ❌
//! declines; `[policy] propagate_bans_to = "SHORTCODE"` writes the rule
//! without asking. An unban made with a client offers (behind a ✅ preview)
//! to remove the rules that ban the user and unban them everywhere. The
//! bot's own bans and unbans are never proposed (its events route nowhere).

use std::collections::{HashMap, VecDeque};

use gleipnir_policy::Recommendation;
use gleipnir_runtime::{Event, EventKind, Membership};

use super::Bot;
use super::commands::Reply;
use super::executor::Origin;

/// Proposals waiting for a reaction, at most.
const KEPT: usize = 200;
/// The ❌ that declines a proposal.
pub(crate) const DECLINE: &str = "❌";

/// A client ban offered for a list.
#[derive(Debug, Clone)]
struct Proposal {
    user: String,
    room: String,
    reason: String,
    /// The lists offered, in the order of their numbers: (room id, name).
    lists: Vec<(String, String)>,
    /// Who decided, once someone did.
    decided: Option<String>,
}

/// Proposals by the event id of their notice (in memory: after a restart a
/// moderator writes the rule with `ban USER LIST`).
#[derive(Debug, Default)]
pub(crate) struct Proposals {
    by_notice: HashMap<String, Proposal>,
    order: VecDeque<String>,
}

impl Proposals {
    fn insert(&mut self, notice: String, proposal: Proposal) {
        self.by_notice.insert(notice.clone(), proposal);
        self.order.push_back(notice);
        while self.order.len() > KEPT {
            if let Some(oldest) = self.order.pop_front() {
                self.by_notice.remove(&oldest);
            }
        }
    }
}

/// What a protected room's event says a moderator did with a client: a ban
/// or an unban, with who and why.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ClientAction {
    Ban { user: String, by: String, reason: String },
    Unban { user: String, by: String },
}

/// The client ban or unban in `event`, if it is one (the bot's own never
/// reach here).
pub(crate) fn client_action(event: &Event) -> Option<ClientAction> {
    let EventKind::Membership(m) = &event.kind else { return None };
    match (m.previous, m.membership) {
        (Some(Membership::Ban), Membership::Ban) => None,
        (_, Membership::Ban) => Some(ClientAction::Ban {
            user: m.target.clone(),
            by: event.sender.clone(),
            reason: m.reason.clone().unwrap_or_default(),
        }),
        (Some(Membership::Ban), Membership::Leave) => {
            Some(ClientAction::Unban { user: m.target.clone(), by: event.sender.clone() })
        }
        _ => None,
    }
}

/// `1️⃣` … `9️⃣` for 1 to 9.
fn keycap(n: usize) -> String {
    format!("{n}\u{fe0f}\u{20e3}")
}

impl Bot {
    /// A moderator banned or unbanned someone in a protected room with their client.
    pub(super) async fn client_moderation(&mut self, room: &str, action: ClientAction) {
        match action {
            ClientAction::Ban { user, by, reason } => {
                self.client_ban_redaction(room, &user, &reason, &by).await;
                let command = format!("ban {user} (in a client)");
                self.propose_ban(room, &user, &by, &reason, &command).await;
            }
            ClientAction::Unban { user, by } => self.propose_unban(room, &user, &by).await,
        }
    }

    /// Offers `by`'s ban of `user` in `room` (a room, or "every protected
    /// room") for a list, or writes it to `[policy] propagate_bans_to`'s.
    /// What became of it, to follow "banned USER in ROOM".
    pub(super) async fn propose_ban(
        &mut self,
        room: &str,
        user: &str,
        by: &str,
        reason: &str,
        command: &str,
    ) -> String {
        let origin = Origin::Moderator { user: by.to_owned(), command: command.to_owned() };
        if let Some(code) = self.config.propagate_bans_to.clone() {
            let Some(list) = self.session.policy.shortcode(&code).map(str::to_owned) else {
                self.matrix
                    .notify(&format!(
                        "{by} banned {user} in {room}, but `[policy] propagate_bans_to = \"{code}\"` names no \
                         watched list; the ban stays where it was made."
                    ))
                    .await;
                return format!("; no rule written (`propagate_bans_to = \"{code}\"` names no watched list)");
            };
            let done = self.add_rule(&origin, &list, user, Recommendation::Ban, reason, false).await;
            self.matrix.notify(&format!("{by} banned {user} in {room}. {done}")).await;
            return if done.starts_with("Added to") {
                format!(" and a ban rule in {code}")
            } else {
                format!("; the rule in {code} was not written")
            };
        }
        let lists: Vec<(String, String)> = self
            .session
            .policy
            .lists()
            .into_iter()
            .filter(|(list, _)| self.can_edit(list))
            .map(|(list, code)| {
                let name = code.unwrap_or_else(|| list.clone());
                (list, name)
            })
            .take(9)
            .collect();
        if lists.is_empty() {
            return String::new();
        }
        let choices: Vec<String> =
            lists.iter().enumerate().map(|(i, (_, name))| format!("{} {name}", keycap(i + 1))).collect();
        let why = if reason.is_empty() { String::new() } else { format!(" ({reason})") };
        let text = format!(
            "{by} banned {user} in {room}{why}. Add the ban to a policy list, so it holds in every room the list \
             protects? React {}; {DECLINE} for none.",
            choices.join(", ")
        );
        let Some(notice) = self.matrix.send_notice(&text).await else { return String::new() };
        for key in (1..=lists.len()).map(keycap).chain([DECLINE.to_owned()]) {
            if let Err(e) = self.matrix.react(&notice, &key).await {
                tracing::warn!("cannot offer {key} on a ban proposal: {e:#}");
            }
        }
        let proposal =
            Proposal { user: user.to_owned(), room: room.to_owned(), reason: reason.to_owned(), lists, decided: None };
        self.proposals.insert(notice.to_string(), proposal);
        "; which list should carry the ban is asked below".to_owned()
    }

    /// An unban in a client: when rules the bot can remove still ban the
    /// user, the `unban` plan (rules removed, unbanned everywhere) is shown
    /// for a ✅.
    async fn propose_unban(&mut self, room: &str, user: &str, by: &str) {
        let named = self.session.policy.naming(user);
        if named.is_empty() {
            return;
        }
        match self.unban_command(user, None).await {
            Reply::Done(_) => {}
            Reply::Plan(mut plan) => {
                plan.command = format!("unban {user} (after {by} unbanned them in {room} in a client)");
                plan.always_confirm = true;
                if let Some(preview) = self.matrix.send_notice(&plan.preview()).await {
                    self.confirmations.hold(preview.to_string(), plan, std::time::Instant::now());
                }
            }
        }
    }

    /// A reaction to a ban proposal, if `notice` is one: the numbered list
    /// gets the rule, ❌ declines. False when it is not a proposal.
    pub(super) async fn proposal_reaction(&mut self, moderator: &str, notice: &str, key: &str) -> bool {
        let Some(proposal) = self.proposals.by_notice.get(notice).cloned() else { return false };
        if let Some(decided) = &proposal.decided {
            if super::plan::keycap_number(key).is_some() || key == DECLINE {
                self.matrix.notify(&format!("The ban of {} was decided already ({decided}).", proposal.user)).await;
            }
            return true;
        }
        let decided = if key.trim_end_matches('\u{fe0f}') == DECLINE.trim_end_matches('\u{fe0f}') {
            format!("{moderator}: not added to a list")
        } else if let Some((list, name)) =
            super::plan::keycap_number(key).and_then(|n| proposal.lists.get(n.wrapping_sub(1)).cloned())
        {
            let origin =
                Origin::Moderator { user: moderator.to_owned(), command: format!("ban {} {name}", proposal.user) };
            let done =
                self.add_rule(&origin, &list, &proposal.user, Recommendation::Ban, &proposal.reason, false).await;
            self.matrix.notify(&done).await;
            format!("{moderator}: added to {name}")
        } else {
            return true;
        };
        if let Some(p) = self.proposals.by_notice.get_mut(notice) {
            p.decided = Some(decided.clone());
        }
        let edited = format!("{} banned in {}: ✔ {decided}", proposal.user, proposal.room);
        if let Err(e) = self.matrix.edit_notice(notice, &edited).await {
            tracing::warn!("cannot edit the ban proposal {notice}: {e:#}");
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gleipnir_runtime::MembershipChange;

    fn member(sender: &str, previous: Option<Membership>, now: Membership, reason: Option<&str>) -> Event {
        Event {
            room_id: "!r:x".into(),
            event_id: "$e".into(),
            sender: sender.into(),
            origin_ts: 1,
            received_ts: 1,
            content: "{}".into(),
            kind: EventKind::Membership(MembershipChange {
                target: "@bad:x".into(),
                membership: now,
                previous,
                reason: reason.map(str::to_owned),
                displayname: None,
            }),
        }
    }

    #[test]
    fn bans_and_unbans_are_told_apart_from_other_changes() {
        assert_eq!(
            client_action(&member("@mod:x", Some(Membership::Join), Membership::Ban, Some("spam"))),
            Some(ClientAction::Ban { user: "@bad:x".into(), by: "@mod:x".into(), reason: "spam".into() })
        );
        assert_eq!(
            client_action(&member("@mod:x", Some(Membership::Ban), Membership::Leave, None)),
            Some(ClientAction::Unban { user: "@bad:x".into(), by: "@mod:x".into() })
        );
        // A ban repeated (a reason edited), a kick, a join: nothing to propose.
        assert_eq!(client_action(&member("@mod:x", Some(Membership::Ban), Membership::Ban, None)), None);
        assert_eq!(client_action(&member("@mod:x", Some(Membership::Join), Membership::Leave, None)), None);
        assert_eq!(client_action(&member("@bad:x", None, Membership::Join, None)), None);
        assert_eq!(keycap(3), "3\u{fe0f}\u{20e3}");
        assert_eq!(crate::bot::plan::keycap_number(&keycap(3)), Some(3));
    }
}
