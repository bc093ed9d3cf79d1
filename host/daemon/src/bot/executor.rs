//! Carries out actions: in order, without duplicate redactions, never against
//! the bot, room moderators, management-room members or server admins,
//! checking the bot's own power first (a missing permission is reported once
//! per room and action), every reason capped, and only reporting when the
//! operator set `dry_run`.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use gleipnir_runtime::capability::MAX_REASON;
use gleipnir_runtime::rooms::RoomStates;
use gleipnir_runtime::{Action, Deactivate, Membership, ServerUser, json};
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::{EventId, RoomId, UserId};
use matrix_sdk::{Client, Room};

/// One thing to do: an action from a protection (named), or a report.
pub(crate) enum Job {
    Act(String, Action),
    Report(String),
}

/// What the executor needs to know of the bot to check an action.
pub(crate) struct Context<'a> {
    pub(crate) client: &'a Client,
    pub(crate) rooms: &'a RoomStates,
    pub(crate) bot: &'a str,
    pub(crate) management: Option<&'a Room>,
    pub(crate) protected: &'a BTreeSet<String>,
}

/// How long a server-admin answer ("is this user an admin?") is trusted.
const ADMIN_STATUS_TTL: Duration = Duration::from_secs(10 * 60);

pub(crate) struct Executor {
    dry_run: bool,
    /// Users of this homeserver known to be (or not be) server admins, and when asked.
    /// `None`: the homeserver would not say (the bot is no server admin).
    admins: HashMap<String, (Option<bool>, Instant)>,
    redacted: Recent<()>,
    /// (room, user) pairs the bot banned lately: a second ban (a protection
    /// and the policy engine acting on the same rule) is not sent again.
    banned: Recent<()>,
    /// Who sent the events protections saw lately, to check redactions against.
    senders: Recent<String>,
    /// (room, action kind) pairs already reported as not permitted.
    denied: HashSet<(String, &'static str)>,
    unsupported: HashSet<&'static str>,
}

impl Executor {
    pub(crate) fn new(dry_run: bool) -> Executor {
        Executor {
            dry_run,
            admins: HashMap::new(),
            redacted: Recent::default(),
            banned: Recent::default(),
            senders: Recent::default(),
            denied: HashSet::new(),
            unsupported: HashSet::new(),
        }
    }

    /// Records that the bot redacts `event`; false when it already did.
    pub(crate) fn mark_redacted(&mut self, event: &str) -> bool {
        self.redacted.insert(event.to_owned(), ())
    }

    /// Remembers who sent an event protections are about to see.
    pub(crate) fn saw(&mut self, event: &str, sender: &str) {
        self.senders.insert(event.to_owned(), sender.to_owned());
    }

    /// Runs one job; returns what to tell the management room, if anything.
    pub(crate) async fn run(&mut self, ctx: &Context<'_>, job: Job) -> Option<String> {
        let (protection, mut action) = match job {
            Job::Report(text) => return Some(text),
            Job::Act(p, a) => (p, a),
        };
        // A reason may come from anywhere (a policy list, a protection): every one is capped alike.
        cap_reason(&mut action);
        let (client, rooms, bot) = (ctx.client, ctx.rooms, ctx.bot);
        let management_id = ctx.management.map(|m| m.room_id().as_str());
        // For the actions carried out here, the capability's name is the action's.
        let kind = gleipnir_runtime::capability::name(gleipnir_runtime::capability::required(&action));

        // Who the action is against, and where.
        let (room, target) = match &action {
            Action::Ban(a) | Action::Kick(a) | Action::Unban(a) => (Some(a.room_id.clone()), Some(a.user_id.clone())),
            Action::Redact(a) => (Some(a.room_id.clone()), None),
            Action::SendNotice(a) => (Some(a.room_id.clone()), None),
            _ => (None, None),
        };
        if let (Some(room), Some(target)) = (&room, &target)
            && matches!(action, Action::Ban(_) | Action::Kick(_))
        {
            let why = match protected_from(rooms, management_id, room, target, bot) {
                Some(why) => Some(why.to_owned()),
                None => self.server_admin(client, bot, target, false).await.err(),
            };
            if let Some(why) = why {
                return Some(format!("{protection}: not {kind}ning {target} in {room}: {why}."));
            }
        }
        // Actions on a user's account reach every room: the same people are
        // out of reach as for bans, in every protected room.
        if let Some(target) = account_target(&action)
            && let Some(why) = self.account_out_of_reach(ctx, target).await
        {
            return Some(format!("{protection}: not acting on {target}'s account ({kind}): {why}."));
        }
        if let Action::Redact(a) = &action {
            // A protection may only redact what it can name the sender of,
            // and never a moderator's or a management-room member's event.
            let sender = match self.senders.get(&a.event_id) {
                Some(s) => Some(s.clone()),
                None => sender_of(client, &a.room_id, &a.event_id).await,
            };
            let Some(sender) = sender else {
                return Some(format!(
                    "{protection}: not redacting {} in {}: I cannot tell who sent it.",
                    a.event_id, a.room_id
                ));
            };
            if let Some(why) = protected_from(rooms, management_id, &a.room_id, &sender, bot) {
                return Some(format!("{protection}: not redacting {}'s event {}: {why}.", sender, a.event_id));
            }
            if !self.redacted.insert(a.event_id.clone(), ()) {
                return None;
            }
        }
        if let Action::Ban(a) = &action
            && (rooms.membership(&a.room_id, &a.user_id) == Some(Membership::Ban)
                || !self.banned.insert(format!("{}\n{}", a.room_id, a.user_id), ()))
        {
            return None;
        }
        if self.dry_run {
            return Some(format!("{protection} (dry run, nothing done): {}", json::action(&action)));
        }
        // The bot's own power, from the room's state.
        if let Some(room) = &room {
            let levels = rooms.room_levels(room);
            let needed = match &action {
                Action::Ban(_) | Action::Unban(_) => Some(levels.ban),
                Action::Kick(_) => Some(levels.kick),
                Action::Redact(_) => Some(levels.redact),
                _ => None,
            };
            if let Some(needed) = needed
                && rooms.power_level(room, bot) < needed
            {
                return self.denied.insert((room.clone(), kind)).then(|| {
                    format!("{protection}: I cannot {kind} in {room}: that needs power level {needed}. (Said once per room.)")
                });
            }
        }

        let result = match &action {
            Action::Redact(a) => {
                match (client.get_room(&room_id(&a.room_id)?), <&EventId>::try_from(a.event_id.as_str())) {
                    (Some(r), Ok(event)) => {
                        r.redact(event, Some(&a.reason), None).await.map(|_| ()).map_err(|e| e.to_string())
                    }
                    _ => Err("not in that room".to_owned()),
                }
            }
            Action::Ban(a) | Action::Kick(a) | Action::Unban(a) => {
                match (client.get_room(&room_id(&a.room_id)?), <&UserId>::try_from(a.user_id.as_str())) {
                    (Some(r), Ok(user)) => {
                        let reason = Some(a.reason.as_str());
                        let done = match &action {
                            Action::Ban(_) => r.ban_user(user, reason).await,
                            Action::Kick(_) => r.kick_user(user, reason).await,
                            _ => r.unban_user(user, reason).await,
                        };
                        done.map_err(|e| e.to_string())
                    }
                    _ => Err("not in that room".to_owned()),
                }
            }
            Action::SendNotice(a) => match client.get_room(&room_id(&a.room_id)?) {
                Some(r) => {
                    r.send(RoomMessageEventContent::notice_plain(&a.body)).await.map(|_| ()).map_err(|e| e.to_string())
                }
                None => Err("not in that room".to_owned()),
            },
            Action::NotifyManagement(a) => return Some(format!("{protection}: {}", a.body)),
            Action::SuspendUser(a) => {
                let path = format!("/_synapse/admin/v1/suspend/{}", urlencode(&a.user_id));
                admin(client, reqwest_method::PUT, &path, Some(serde_json::json!({"suspend": true}))).await.map(|_| ())
            }
            Action::DeleteUserMedia(a) => {
                let path = format!("/_synapse/admin/v1/users/{}/media", urlencode(&a.user_id));
                admin(client, reqwest_method::DELETE, &path, None).await.map(|_| ())
            }
            Action::SetJoinRule(_)
            | Action::SetPowerLevel(_)
            | Action::AddPolicyRule(_)
            | Action::RemovePolicyRule(_)
            | Action::DeactivateUser(_) => {
                let name = match &action {
                    Action::SetJoinRule(_) => "set-join-rule",
                    Action::SetPowerLevel(_) => "set-power-level",
                    Action::AddPolicyRule(_) | Action::RemovePolicyRule(_) => "policy rule edits",
                    _ => "deactivate-user",
                };
                return self.unsupported.insert(name).then(|| {
                    format!("{protection}: this version of Gleipnir cannot carry out {name} yet; refused. (Said once.)")
                });
            }
        };
        match result {
            Ok(()) => {
                tracing::info!(protection, action = %json::action(&action), "done");
                None
            }
            Err(e) => Some(format!("{protection}: {kind} failed: {e}")),
        }
    }
}

pub(crate) use matrix_sdk::reqwest::Method as reqwest_method;

/// The longest an admin API request may take, connecting included: no
/// single request may hold the event loop longer.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The one HTTP client for the admin API, with its timeout.
fn admin_http() -> &'static matrix_sdk::reqwest::Client {
    static HTTP: std::sync::OnceLock<matrix_sdk::reqwest::Client> = std::sync::OnceLock::new();
    HTTP.get_or_init(|| http_client(ADMIN_TIMEOUT))
}

fn http_client(timeout: Duration) -> matrix_sdk::reqwest::Client {
    matrix_sdk::reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .build()
        .unwrap_or_else(|e| {
            // Only a broken TLS setup fails here; the default client has the same one.
            tracing::error!("cannot build the admin API client with a timeout: {e}");
            matrix_sdk::reqwest::Client::new()
        })
}

/// A call to the homeserver's admin API (Synapse), with the bot's token:
/// the bot's account must be a server admin.
pub(crate) async fn admin(
    client: &Client,
    method: reqwest_method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, String> {
    tracing::info!(%method, path, "admin API call");
    let token = client.access_token().ok_or("not logged in")?;
    admin_request(admin_http(), client.homeserver().as_str(), &token, method, path, body).await
}

async fn admin_request(
    http: &matrix_sdk::reqwest::Client,
    homeserver: &str,
    token: &str,
    method: reqwest_method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, String> {
    let url = format!("{}{path}", homeserver.trim_end_matches('/'));
    let mut request = http.request(method, &url).bearer_auth(token);
    if let Some(body) = body {
        request = request.header("Content-Type", "application/json").body(body.to_string());
    }
    let response = request.send().await.map_err(|e| format!("the admin API cannot be reached: {e}"))?;
    let status = response.status();
    if status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null));
    }
    let text = response.text().await.unwrap_or_default();
    Err(format!("the admin API answered {status}: {}", text.chars().take(300).collect::<String>()))
}

/// Cuts an action's reason to [`MAX_REASON`] bytes, on a character boundary.
fn cap_reason(action: &mut Action) {
    let reason = match action {
        Action::Redact(a) => &mut a.reason,
        Action::Ban(a) | Action::Unban(a) | Action::Kick(a) => &mut a.reason,
        Action::SetJoinRule(a) => &mut a.reason,
        Action::SetPowerLevel(a) => &mut a.reason,
        Action::SendNotice(a) => &mut a.reason,
        Action::NotifyManagement(a) => &mut a.reason,
        Action::AddPolicyRule(a) | Action::RemovePolicyRule(a) => &mut a.reason,
        Action::SuspendUser(a) | Action::DeleteUserMedia(a) => &mut a.reason,
        Action::DeactivateUser(a) => &mut a.reason,
    };
    if reason.len() > MAX_REASON {
        let mut end = MAX_REASON - '…'.len_utf8();
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push('…');
    }
}

/// Why `user` is out of reach of actions on their account: the bot, a
/// management-room member, or a moderator in any protected room.
fn out_of_reach_anywhere(ctx: &Context<'_>, user: &str) -> Option<String> {
    let management = ctx.management.map(|m| m.room_id().as_str());
    if let Some(why) = out_of_reach_everywhere(ctx.rooms, management, user, ctx.bot) {
        return Some(why.to_owned());
    }
    ctx.protected
        .iter()
        .find(|room| ctx.rooms.power_level(room, user) >= ctx.rooms.room_levels(room).ban)
        .map(|room| format!("they are a moderator in {room}"))
}

/// The user whose account an action acts on (suspend, deactivate, delete media).
pub(crate) fn account_target(action: &Action) -> Option<&str> {
    match action {
        Action::SuspendUser(ServerUser { user_id, .. })
        | Action::DeleteUserMedia(ServerUser { user_id, .. })
        | Action::DeactivateUser(Deactivate { user_id, .. }) => Some(user_id),
        _ => None,
    }
}

impl Executor {
    /// Why `user`'s account is out of reach of automatic actions, if it is:
    /// the bot, a management-room member, a moderator of a protected room, a
    /// server admin, or a user of another homeserver.
    pub(crate) async fn account_out_of_reach(&mut self, ctx: &Context<'_>, user: &str) -> Option<String> {
        match out_of_reach_anywhere(ctx, user) {
            Some(why) => Some(why),
            None => self.server_admin(ctx.client, ctx.bot, user, true).await.err(),
        }
    }

    /// `Err(why)` when `user` is a server admin of the bot's homeserver (out
    /// of reach). Users of other homeservers are no admins here. When the
    /// homeserver cannot say, `strict` refuses (actions on an account) and
    /// otherwise lets the other checks decide (a ban needs no admin rights).
    async fn server_admin(&mut self, client: &Client, bot: &str, user: &str, strict: bool) -> Result<(), String> {
        let server = |id: &str| id.split_once(':').map(|(_, s)| s.to_ascii_lowercase());
        if server(user) != server(bot) {
            return if strict { Err("not a user of this homeserver".to_owned()) } else { Ok(()) };
        }
        let cached = self.admins.get(user).filter(|(_, at)| at.elapsed() < ADMIN_STATUS_TTL).map(|(a, _)| *a);
        let is_admin = match cached {
            Some(known) => known,
            None => {
                let path = format!("/_synapse/admin/v1/users/{}/admin", urlencode(user));
                let known = match admin(client, reqwest_method::GET, &path, None).await {
                    Ok(reply) => Some(reply.get("admin").and_then(serde_json::Value::as_bool).unwrap_or(false)),
                    Err(e) => {
                        tracing::debug!(user, "cannot tell whether this is a server admin: {e}");
                        None
                    }
                };
                if self.admins.len() > 10_000 {
                    self.admins.clear();
                }
                self.admins.insert(user.to_owned(), (known, Instant::now()));
                known
            }
        };
        match is_admin {
            Some(true) => Err("they are a server admin".to_owned()),
            Some(false) => Ok(()),
            None if strict => Err("I cannot tell whether they are a server admin".to_owned()),
            None => Ok(()),
        }
    }
}

/// Percent-encodes a path segment (a user or room id).
pub(crate) fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A bounded map of recent event ids: the oldest are forgotten first.
struct Recent<V> {
    map: HashMap<String, V>,
    order: VecDeque<String>,
}

impl<V> Default for Recent<V> {
    fn default() -> Self {
        Recent { map: HashMap::new(), order: VecDeque::new() }
    }
}

impl<V> Recent<V> {
    const CAPACITY: usize = 50_000;

    /// Inserts unless present; false when it was.
    fn insert(&mut self, id: String, value: V) -> bool {
        if self.map.contains_key(&id) {
            return false;
        }
        if self.order.len() == Self::CAPACITY
            && let Some(oldest) = self.order.pop_front()
        {
            self.map.remove(&oldest);
        }
        self.order.push_back(id.clone());
        self.map.insert(id, value);
        true
    }

    fn get(&self, id: &str) -> Option<&V> {
        self.map.get(id)
    }
}

/// Why `user` is out of reach of automatic actions in `room`, if they are:
/// the bot itself, a moderator there, or a management-room member.
fn protected_from(
    rooms: &RoomStates,
    management: Option<&str>,
    room: &str,
    user: &str,
    bot: &str,
) -> Option<&'static str> {
    if rooms.power_level(room, user) >= rooms.room_levels(room).ban && user != bot {
        return Some("they are a moderator there");
    }
    out_of_reach_everywhere(rooms, management, user, bot)
}

/// Who is out of reach wherever they are: the bot, and management-room members.
fn out_of_reach_everywhere(
    rooms: &RoomStates,
    management: Option<&str>,
    user: &str,
    bot: &str,
) -> Option<&'static str> {
    if user == bot {
        return Some("that is me");
    }
    if let Some(management) = management
        && rooms.membership(management, user) == Some(Membership::Join)
    {
        return Some("they are in the management room");
    }
    None
}

/// The sender of an event, asked of the homeserver.
async fn sender_of(client: &Client, room: &str, event: &str) -> Option<String> {
    use matrix_sdk::ruma::api::client::room::get_room_event;
    let request = get_room_event::v3::Request::new(room_id(room)?, <&EventId>::try_from(event).ok()?.to_owned());
    let response = client.send(request).await.ok()?;
    response.event.get_field::<String>("sender").ok().flatten()
}

fn room_id(id: &str) -> Option<matrix_sdk::ruma::OwnedRoomId> {
    <&RoomId>::try_from(id).ok().map(ToOwned::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_capped() {
        let long = "é".repeat(4 * MAX_REASON);
        let mut ban = Action::Ban(gleipnir_runtime::TargetUser {
            room_id: "!r:x".into(),
            user_id: "@u:x".into(),
            reason: long.clone(),
        });
        cap_reason(&mut ban);
        let Action::Ban(ban) = ban else { unreachable!() };
        assert!(ban.reason.len() <= MAX_REASON && ban.reason.ends_with('…'), "{}", ban.reason.len());
        let mut short = Action::SuspendUser(ServerUser { user_id: "@u:x".into(), reason: "spam".into() });
        cap_reason(&mut short);
        assert!(matches!(short, Action::SuspendUser(ServerUser { reason, .. }) if reason == "spam"));
    }

    #[tokio::test]
    async fn an_admin_request_to_a_silent_server_times_out() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        // Accepts, then never answers.
        let _held = std::thread::spawn(move || {
            let connections: Vec<_> = listener.incoming().take(1).collect();
            std::thread::sleep(Duration::from_secs(5));
            drop(connections);
        });
        let started = Instant::now();
        let result =
            admin_request(&http_client(Duration::from_millis(300)), &url, "t", reqwest_method::GET, "/x", None).await;
        assert!(result.is_err(), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        assert!(ADMIN_TIMEOUT <= Duration::from_secs(30));
    }

    #[test]
    fn moderators_members_of_the_management_room_and_the_bot_are_out_of_reach() {
        let rooms = RoomStates::new();
        let levels = r#"{"users": {"@mod:x": 50, "@bot:x": 100}, "ban": 50}"#;
        rooms.apply("!room", "m.room.power_levels", "", "@mod:x", 1, levels);
        rooms.apply("!room", "m.room.create", "", "@owner:x", 1, r#"{"room_version": "11"}"#);
        for (room, user) in [("!room", "@spam:x"), ("!management", "@watcher:x"), ("!management", "@spam:x")] {
            let membership = if user == "@spam:x" && room == "!management" { "leave" } else { "join" };
            rooms.apply(room, "m.room.member", user, user, 1, &format!(r#"{{"membership": "{membership}"}}"#));
        }
        let check = |user: &str| protected_from(&rooms, Some("!management"), "!room", user, "@bot:x");
        assert_eq!(check("@mod:x"), Some("they are a moderator there"));
        assert_eq!(check("@watcher:x"), Some("they are in the management room"));
        assert_eq!(check("@bot:x"), Some("that is me"));
        assert_eq!(check("@spam:x"), None, "someone who left the management room is not protected by it");
    }
}
