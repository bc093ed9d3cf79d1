//! What protections may ask the bot: the room state the runtime answers
//! from memory, plus what only the bot knows (the protected rooms, which
//! members a policy rule names) and the two queries that wait on the
//! homeserver (a room's history for one sender, when an account was made).

use gleipnir_policy::rule::{Entity, EntityKind};
use gleipnir_runtime::host::{HostQueries, StateQueries};
use gleipnir_runtime::{HistoryEvent, Membership, PolicyRule, RoomLevels, RuleKind};
use matrix_sdk::Client;

/// Pages of history read for one `history` call, at most.
const MAX_PAGES: usize = 20;
/// Users one `members-matching` call returns at most.
const MAX_MATCHES: usize = 1000;
/// Time one `members-matching` call may spend matching (host time, which the
/// guest's deadline cannot interrupt).
const MATCH_BUDGET: std::time::Duration = std::time::Duration::from_millis(50);

pub(crate) struct BotQueries {
    pub(crate) state: StateQueries,
    /// The protected rooms, as last shared by the bot.
    pub(crate) protected: super::protected::Protected,
    pub(crate) client: Client,
    /// Creation times the homeserver told, by user: they never change.
    pub(crate) accounts: Accounts,
}

impl HostQueries for BotQueries {
    fn now_ms(&self) -> u64 {
        self.state.now_ms()
    }
    fn bot_user_id(&self) -> &str {
        self.state.bot_user_id()
    }
    fn membership(&self, room: &str, user: &str) -> Option<Membership> {
        self.state.membership(room, user)
    }
    fn joined_at(&self, room: &str, user: &str) -> Option<u64> {
        self.state.joined_at(room, user)
    }
    fn power_level(&self, room: &str, user: &str) -> i64 {
        self.state.power_level(room, user)
    }
    fn room_levels(&self, room: &str) -> RoomLevels {
        self.state.room_levels(room)
    }
    fn message_count(&self, room: &str, user: &str) -> Option<u32> {
        self.state.message_count(room, user)
    }

    fn protected_rooms(&self) -> Vec<String> {
        self.protected.rooms()
    }

    fn members_matching(&self, rule: &PolicyRule) -> Vec<String> {
        if rule.kind != RuleKind::User {
            return Vec::new();
        }
        let entity = match (&rule.entity, &rule.entity_sha256) {
            (Some(text), _) => Entity::from_text(text),
            (None, Some(hash)) => match gleipnir_policy::rule::decode_hash(hash) {
                Some(h) => Entity::Hashed(Box::new(h)),
                None => return Vec::new(),
            },
            (None, None) => return Vec::new(),
        };
        members_matching(&self.state.rooms, &self.protected_rooms(), &entity, MAX_MATCHES, MATCH_BUDGET)
    }

    fn history(&self, room: &str, sender: &str, limit: u32) -> Result<Vec<HistoryEvent>, String> {
        // Protections see the protected rooms, nothing else (not the management room).
        if !self.protected.contains(room) {
            return Err(format!("{room} is not a protected room"));
        }
        // Guest code runs under `block_in_place`, so the bot's runtime may be
        // entered here to wait for the homeserver.
        let handle = tokio::runtime::Handle::try_current().map_err(|_| "no runtime to read history on".to_owned())?;
        handle.block_on(read_history(&self.client, room, sender, limit as usize))
    }

    fn account_created(&self, user: &str) -> Result<u64, String> {
        let ours = server_of(self.state.bot_user_id());
        if server_of(user).is_none() || server_of(user) != ours {
            return Err(format!(
                "{user} is not an account of {}: a homeserver tells only about its own accounts",
                ours.unwrap_or("the bot's homeserver")
            ));
        }
        if let Some(created) = self.accounts.get(user) {
            return Ok(created);
        }
        let handle = tokio::runtime::Handle::try_current().map_err(|_| "no runtime to ask on".to_owned())?;
        let path = format!("/_synapse/admin/v2/users/{}", super::executor::urlencode(user));
        let answer = handle.block_on(super::executor::query(&self.client, &path)).map_err(|e| match e {
            super::executor::AdminError::Status { status: 403, .. } => {
                "the bot's account is not a server admin, so the homeserver does not say when accounts were made"
                    .to_owned()
            }
            super::executor::AdminError::Status { status: 404, .. } => format!("the homeserver has no account {user}"),
            other => format!("cannot ask when {user} was made: {other}"),
        })?;
        let created = creation_ms(&answer).ok_or_else(|| format!("the homeserver did not say when {user} was made"))?;
        self.accounts.put(user, created);
        Ok(created)
    }
}

/// The server part of a user id, with any port (`@a:b.example:8448` → `b.example:8448`).
fn server_of(user: &str) -> Option<&str> {
    user.split_once(':').map(|(_, server)| server).filter(|s| !s.is_empty())
}

/// `creation_ts` of Synapse's user admin API, in ms. Synapse stores it in
/// seconds; a value too large for seconds (after the year 5000) is taken as
/// ms already, should a homeserver send that.
fn creation_ms(user: &serde_json::Value) -> Option<u64> {
    let ts = user.get("creation_ts")?.as_u64().filter(|ts| *ts > 0)?;
    Some(if ts < 100_000_000_000 { ts.saturating_mul(1000) } else { ts })
}

/// Account creation times already asked, at most [`MAX_ACCOUNTS`] of them
/// (all forgotten at once when full: they can be asked again).
#[derive(Default)]
pub(crate) struct Accounts(std::sync::Mutex<std::collections::HashMap<String, u64>>);

const MAX_ACCOUNTS: usize = 100_000;

impl Accounts {
    fn get(&self, user: &str) -> Option<u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(user).copied()
    }
    fn put(&self, user: &str, created: u64) {
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() >= MAX_ACCOUNTS {
            known.clear();
        }
        known.insert(user.to_owned(), created);
    }
}

/// `sender`'s newest events in `room`, newest first: pages of `/messages`
/// backwards from now, asking the homeserver to filter by sender. The
/// caller checks each event's sender itself.
async fn read_history(client: &Client, room: &str, sender: &str, limit: usize) -> Result<Vec<HistoryEvent>, String> {
    let mut pages = super::history::Backwards::new(room, MAX_PAGES)?.by(sender)?;
    let mut out = Vec::new();
    while let Some(chunk) = pages.next(client, 100).await? {
        for raw in &chunk {
            #[derive(serde::Deserialize)]
            struct Seen {
                event_id: String,
                sender: String,
                #[serde(rename = "type")]
                kind: String,
                state_key: Option<String>,
                #[serde(default)]
                unsigned: serde_json::Value,
            }
            let Ok(seen) = serde_json::from_str::<Seen>(raw.json().get()) else { continue };
            let redacted = seen.unsigned.get("redacted_because").is_some();
            out.push(HistoryEvent {
                event_id: seen.event_id,
                sender: seen.sender,
                event_type: seen.kind,
                is_state: seen.state_key.is_some(),
                redacted,
            });
            if out.len() >= limit {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

/// Users with any membership in `rooms` that `entity` names: each once,
/// sorted, at most `limit` of them, and no more matching than `budget` allows
/// (a glob such as `@*:*` over a room of 100,000 must not hold the bot).
fn members_matching(
    states: &gleipnir_runtime::rooms::RoomStates,
    rooms: &[String],
    entity: &Entity,
    limit: usize,
    budget: std::time::Duration,
) -> Vec<String> {
    let started = std::time::Instant::now();
    let mut found = std::collections::BTreeSet::new();
    for room in rooms {
        let complete = states.for_each_member(room, |user| {
            if found.len() >= limit || started.elapsed() > budget {
                return false;
            }
            if entity.matches(EntityKind::User, user) && !found.contains(user) {
                found.insert(user.to_owned());
            }
            true
        });
        if !complete {
            tracing::warn!(
                matched = found.len(),
                "members-matching stopped early (at {limit} users or after {budget:?}); the protection sees only these"
            );
            break;
        }
    }
    found.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_times_in_seconds_or_ms_and_servers() {
        assert_eq!(creation_ms(&serde_json::json!({"creation_ts": 1_700_000_000})), Some(1_700_000_000_000));
        assert_eq!(creation_ms(&serde_json::json!({"creation_ts": 1_700_000_000_123u64})), Some(1_700_000_000_123));
        for none in
            [serde_json::json!({}), serde_json::json!({"creation_ts": 0}), serde_json::json!({"creation_ts": "x"})]
        {
            assert_eq!(creation_ms(&none), None, "{none}");
        }
        assert_eq!(server_of("@a:b.example:8448"), Some("b.example:8448"));
        assert_eq!(server_of("@a:"), None);
        let accounts = Accounts::default();
        accounts.put("@a:b", 5);
        assert_eq!(accounts.get("@a:b"), Some(5));
        assert_eq!(accounts.get("@c:b"), None);
    }
    use gleipnir_runtime::rooms::RoomStates;

    #[test]
    fn members_matching_a_wide_glob_is_capped_and_fast() {
        let states = RoomStates::new();
        let join = r#"{"membership": "join"}"#;
        for i in 0..100_000 {
            let user = format!("@user{i}:example.org");
            states.apply("!big:x", "m.room.member", &user, &user, 1, join);
        }
        states.apply(
            "!big:x",
            "m.room.member",
            "@gone:example.org",
            "@gone:example.org",
            1,
            r#"{"membership": "leave"}"#,
        );
        let rooms = vec!["!big:x".to_owned(), "!big:x".to_owned()];
        let started = std::time::Instant::now();
        let all =
            members_matching(&states, &rooms, &Entity::from_text("@*:*"), 1000, std::time::Duration::from_secs(5));
        assert_eq!(all.len(), 1000, "capped");
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
        let one = members_matching(
            &states,
            &rooms,
            &Entity::from_text("@user99999:example.org"),
            1000,
            std::time::Duration::from_secs(5),
        );
        assert_eq!(one, vec!["@user99999:example.org".to_owned()], "each user once, across rooms");
        let left =
            members_matching(&states, &rooms, &Entity::from_text("@gone:*"), 1000, std::time::Duration::from_secs(5));
        assert_eq!(left, vec!["@gone:example.org".to_owned()], "any membership counts");
        let timed =
            members_matching(&states, &rooms, &Entity::from_text("@*:*"), usize::MAX, std::time::Duration::ZERO);
        assert!(timed.len() < 10, "the time budget stops it: {}", timed.len());
    }
}
