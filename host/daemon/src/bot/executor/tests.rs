//! The safety rules by origin, without a homeserver: every case here is
//! decided before any request (the users are of another server than the
//! bot, so no admin query is made; the client points nowhere).

use gleipnir_runtime::{JoinRule, RedactEvent, TargetUser};
use serde_json::json;

use super::send::{AT_ONCE_PER_ROOM, act_room};
use super::*;

const BOT: &str = "@bot:here";
const ROOM: &str = "!room:here";

fn rooms() -> RoomStates {
    let rooms = RoomStates::new();
    let levels = r#"{"users": {"@mod:there": 50, "@bot:here": 100}, "ban": 50, "kick": 50, "redact": 50}"#;
    rooms.apply(ROOM, "m.room.power_levels", "", "@mod:there", 1, levels);
    rooms.apply(ROOM, "m.room.create", "", "@owner:here", 1, r#"{"room_version": "11"}"#);
    rooms.apply("!weak:here", "m.room.power_levels", "", "@owner:here", 1, r#"{"users": {}, "ban": 50}"#);
    rooms.apply("!weak:here", "m.room.create", "", "@owner:here", 1, r#"{"room_version": "11"}"#);
    rooms
}

async fn client() -> Client {
    Client::builder().homeserver_url("http://127.0.0.1:9").build().await.expect("a client that never connects")
}

fn ban(room: &str, user: &str) -> Act {
    Act::Contract(Action::Ban(TargetUser { room_id: room.into(), user_id: user.into(), reason: "spam".into() }))
}

fn redact(event: &str) -> Act {
    Act::Contract(Action::Redact(RedactEvent { room_id: ROOM.into(), event_id: event.into(), reason: String::new() }))
}

fn moderator() -> Origin {
    Origin::Moderator { user: "@mod:there".into(), command: "ban".into() }
}

struct Fixture {
    client: Client,
    rooms: RoomStates,
    protected: super::super::protected::Protected,
}

impl Fixture {
    async fn new() -> Fixture {
        Fixture { client: client().await, rooms: rooms(), protected: super::super::protected::Protected::of([ROOM]) }
    }

    async fn check(&self, executor: &mut Executor, origin: &Origin, act: &Act) -> Option<Outcome> {
        let is_list = |room: &str| room == "!list:here";
        let ctx = Context {
            client: &self.client,
            rooms: &self.rooms,
            bot: BOT,
            management: None,
            protected: &self.protected,
            is_list: &is_list,
        };
        executor.check(&ctx, origin, act).await
    }
}

fn refused(outcome: Option<Outcome>) -> String {
    match outcome {
        Some(Outcome::Refused(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn nobody_bans_the_bot_and_only_moderators_ban_moderators() {
    let f = Fixture::new().await;
    let mut executor = Executor::new(false, Default::default());
    let protection = Origin::Protection("flooding".into());
    for origin in [&protection, &Origin::Policy, &moderator()] {
        assert!(refused(f.check(&mut executor, origin, &ban(ROOM, BOT)).await).contains("that is me"));
    }
    let why = refused(f.check(&mut executor, &protection, &ban(ROOM, "@mod:there")).await);
    assert!(why.contains("they are a moderator there"), "{why}");
    assert!(refused(f.check(&mut executor, &Origin::Policy, &ban(ROOM, "@mod:there")).await).contains("moderator"));
    assert_eq!(f.check(&mut executor, &moderator(), &ban(ROOM, "@mod:there")).await, None, "a moderator's call");
    assert_eq!(f.check(&mut executor, &protection, &ban(ROOM, "@spam:there")).await, None);
}

#[tokio::test]
async fn a_ban_is_sent_once_and_again_after_an_unban() {
    let f = Fixture::new().await;
    let mut executor = Executor::new(false, Default::default());
    let protection = Origin::Protection("flooding".into());
    assert_eq!(f.check(&mut executor, &protection, &ban(ROOM, "@spam:there")).await, None);
    assert_eq!(f.check(&mut executor, &Origin::Policy, &ban(ROOM, "@spam:there")).await, Some(Outcome::Unneeded));
    assert_eq!(f.check(&mut executor, &moderator(), &ban(ROOM, "@spam:there")).await, Some(Outcome::Unneeded));
    // An unban (seen in the room's state, by anyone) makes the next ban a new one.
    executor.unbanned(ROOM, "@spam:there");
    assert_eq!(f.check(&mut executor, &protection, &ban(ROOM, "@spam:there")).await, None, "banned again");
}

#[tokio::test]
async fn protections_redact_only_events_whose_sender_is_known_and_in_reach() {
    let f = Fixture::new().await;
    let mut executor = Executor::new(false, Default::default());
    let protection = Origin::Protection("flooding".into());
    executor.saw("$mod", "@mod:there");
    executor.saw("$spam", "@spam:there");
    assert!(refused(f.check(&mut executor, &protection, &redact("$mod")).await).contains("moderator"));
    assert_eq!(f.check(&mut executor, &protection, &redact("$spam")).await, None);
    assert_eq!(f.check(&mut executor, &protection, &redact("$spam")).await, Some(Outcome::Unneeded), "once");
    // A moderator may redact a moderator's event; once.
    assert_eq!(f.check(&mut executor, &moderator(), &redact("$mod")).await, None);
    assert_eq!(f.check(&mut executor, &moderator(), &redact("$mod")).await, Some(Outcome::Unneeded));
}

#[tokio::test]
async fn the_bots_own_power_is_checked_for_every_origin() {
    let f = Fixture::new().await;
    let mut executor = Executor::new(false, Default::default());
    for origin in [Origin::Protection("flooding".into()), Origin::Policy, moderator()] {
        let outcome = f.check(&mut executor, &origin, &ban("!weak:here", "@spam:there")).await;
        assert_eq!(outcome, Some(Outcome::Unpermitted { room: "!weak:here".into(), kind: "ban", needed: 50 }));
    }
    // Refused for power, not recorded as done: once the bot has the power, the ban goes out.
    f.rooms.apply(
        "!weak:here",
        "m.room.power_levels",
        "",
        "@owner:here",
        2,
        r#"{"users": {"@bot:here": 50}, "ban": 50}"#,
    );
    assert_eq!(f.check(&mut executor, &Origin::Policy, &ban("!weak:here", "@spam:there")).await, None);
}

#[tokio::test]
async fn a_moderator_acting_where_the_levels_are_unknown_is_left_to_the_homeserver() {
    let f = Fixture::new().await;
    let mut executor = Executor::new(false, Default::default());
    assert_eq!(f.check(&mut executor, &moderator(), &ban("!unseen:here", "@spam:there")).await, None);
    let outcome = f.check(&mut executor, &Origin::Policy, &ban("!unseen:here", "@spam:there")).await;
    assert!(matches!(outcome, Some(Outcome::Unpermitted { .. })), "automatic origins fail closed: {outcome:?}");
}

#[tokio::test]
async fn accounts_of_other_servers_are_out_of_reach() {
    let f = Fixture::new().await;
    let mut executor = Executor::new(false, Default::default());
    let suspend = Act::Contract(Action::SuspendUser(gleipnir_runtime::ServerUser {
        user_id: "@spam:there".into(),
        reason: "spam".into(),
    }));
    let why = refused(f.check(&mut executor, &Origin::Protection("takedown".into()), &suspend).await);
    assert!(why.contains("not a user of this homeserver"), "{why}");
}

#[tokio::test]
async fn protected_rooms_lists_and_the_management_room_are_never_taken_down() {
    let f = Fixture::new().await;
    let mut executor = Executor::new(false, Default::default());
    let take_down = |room: &str| Act::TakeDownRoom { room: room.into(), reason: String::new() };
    assert!(refused(f.check(&mut executor, &Origin::Policy, &take_down(ROOM)).await).contains("I protect this room"));
    assert!(refused(f.check(&mut executor, &Origin::Policy, &take_down("!list:here")).await).contains("policy list"));
    assert_eq!(f.check(&mut executor, &Origin::Policy, &take_down("!elsewhere:there")).await, None);
}

#[tokio::test]
async fn a_protection_blocks_or_purges_only_rooms_the_bot_neither_protects_nor_watches() {
    let f = Fixture::new().await;
    let mut executor = Executor::new(false, Default::default());
    let protection = Origin::Protection("takedown".into());
    let room = |room: &str| gleipnir_runtime::RoomAction { room_id: room.into(), reason: "abuse".into() };
    for act in [|r| Act::Contract(Action::BlockRoom(r)), |r| Act::Contract(Action::PurgeRoom(r))]
        as [fn(gleipnir_runtime::RoomAction) -> Act; 2]
    {
        assert!(refused(f.check(&mut executor, &protection, &act(room(ROOM))).await).contains("I protect this room"));
        assert!(refused(f.check(&mut executor, &protection, &act(room("!list:here"))).await).contains("policy list"));
        assert_eq!(f.check(&mut executor, &protection, &act(room("!elsewhere:there"))).await, None);
    }
}

#[tokio::test]
async fn a_join_rule_is_put_back_only_after_the_bot_changed_it() {
    let f = Fixture::new().await;
    let mut executor = Executor::new(true, Default::default());
    let is_list = |_: &str| false;
    let ctx = Context {
        client: &f.client,
        rooms: &f.rooms,
        bot: BOT,
        management: None,
        protected: &f.protected,
        is_list: &is_list,
    };
    let protection = Origin::Protection("join-wave".into());
    let restore = || {
        Act::Contract(Action::RestoreJoinRule(gleipnir_runtime::RoomAction {
            room_id: ROOM.into(),
            reason: "calm again".into(),
        }))
    };
    match executor.act(&ctx, &protection, restore()).await {
        Outcome::Refused(why) => assert!(why.contains("nothing to put back"), "{why}"),
        other => panic!("{other:?}"),
    }
    // After a change, putting back is setting the rule from before it.
    f.rooms.apply(ROOM, "m.room.join_rules", "", "@owner:here", 1, r#"{"join_rule": "knock"}"#);
    executor.join_rule_set(&f.rooms, ROOM, "invite");
    f.rooms.apply(ROOM, "m.room.join_rules", "", "@bot:here", 1, r#"{"join_rule": "invite"}"#);
    match executor.act(&ctx, &protection, restore()).await {
        Outcome::DryRun(what) => assert!(what.contains("set the join rule to knock"), "{what}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_dry_run_says_what_it_would_do_and_does_nothing() {
    let f = Fixture::new().await;
    let mut executor = Executor::new(true, Default::default());
    let is_list = |_: &str| false;
    let ctx = Context {
        client: &f.client,
        rooms: &f.rooms,
        bot: BOT,
        management: None,
        protected: &f.protected,
        is_list: &is_list,
    };
    let acl = Act::ServerAcl { room: ROOM.into(), content: json!({"deny": ["evil.example"]}) };
    match executor.act(&ctx, &Origin::Policy, acl).await {
        Outcome::DryRun(what) => assert!(what.contains("server ACL") && what.contains("evil.example"), "{what}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_join_rule_is_set_only_with_the_power_for_it_and_not_when_already_in_force() {
    let f = Fixture::new().await;
    let mut executor = Executor::new(false, Default::default());
    let protection = Origin::Protection("join-wave".into());
    let close = |room: &str| {
        Act::Contract(Action::SetJoinRule(gleipnir_runtime::SetJoinRule {
            room_id: room.into(),
            rule: JoinRule::Invite,
            reason: "raid".into(),
        }))
    };
    // The bot (100) may change it where `m.room.join_rules` needs the default 50.
    assert_eq!(f.check(&mut executor, &protection, &close(ROOM)).await, None);
    // Not where that state event needs more than the bot has.
    f.rooms.apply(
        "!weak:here",
        "m.room.power_levels",
        "",
        "@owner:here",
        1,
        r#"{"users": {"@bot:here": 50}, "events": {"m.room.join_rules": 100}}"#,
    );
    assert!(matches!(
        f.check(&mut executor, &protection, &close("!weak:here")).await,
        Some(Outcome::Unpermitted { needed: 100, .. })
    ));
    // A room already invite-only: nothing to do.
    f.rooms.apply(ROOM, "m.room.join_rules", "", "@owner:here", 1, r#"{"join_rule": "invite"}"#);
    assert_eq!(f.check(&mut executor, &protection, &close(ROOM)).await, Some(Outcome::Unneeded));
    // The change is said with the rule it replaced and the one before any change.
    f.rooms.apply(ROOM, "m.room.join_rules", "", "@owner:here", 1, r#"{"join_rule": "public"}"#);
    assert_eq!(
        executor.join_rule_set(&f.rooms, ROOM, "invite"),
        "!room:here's join rule: public → invite (before any change: public)"
    );
    f.rooms.apply(ROOM, "m.room.join_rules", "", "@bot:here", 1, r#"{"join_rule": "invite"}"#);
    assert_eq!(
        executor.join_rule_set(&f.rooms, ROOM, "knock"),
        "!room:here's join rule: invite → knock (before any change: public)"
    );
    f.rooms.apply(ROOM, "m.room.join_rules", "", "@bot:here", 1, r#"{"join_rule": "knock"}"#);
    executor.join_rule_set(&f.rooms, ROOM, "public");
    assert!(executor.join_rules_before.is_empty(), "back on the first rule: nothing to remember");
}

/// Bans in many rooms go out together, at most `AT_ONCE` at a time and
/// `AT_ONCE_PER_ROOM` in one room, and each result comes back in its place.
#[tokio::test]
async fn acts_go_out_together_within_the_bounds_and_come_back_in_order() {
    use std::sync::Mutex;
    #[derive(Default)]
    struct Seen {
        out: usize,
        most: usize,
        per_room: HashMap<String, usize>,
        most_in_a_room: usize,
    }
    let seen = Mutex::new(Seen::default());
    // 40 rooms with one ban each, one room with 20 redactions, and one act not sent.
    let mut acts: Vec<Act> = (0..40).map(|i| ban(&format!("!r{i}:here"), "@spam:there")).collect();
    acts.extend((0..20).map(|i| redact(&format!("$e{i}"))));
    let mut given: Vec<Option<&Act>> = acts.iter().map(Some).collect();
    given.insert(3, None);
    let returned = Mutex::new(Vec::new());
    let results = send_together(
        given.into_iter(),
        |act| {
            let seen = &seen;
            async move {
                let room = act_room(act).to_owned();
                {
                    let mut s = seen.lock().unwrap();
                    s.out += 1;
                    s.most = s.most.max(s.out);
                    let in_room = s.per_room.entry(room.clone()).or_default();
                    *in_room += 1;
                    let in_room = *in_room;
                    s.most_in_a_room = s.most_in_a_room.max(in_room);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                let mut s = seen.lock().unwrap();
                s.out -= 1;
                *s.per_room.get_mut(&room).unwrap() -= 1;
                Ok(Some(describe(act)))
            }
        },
        &|i| returned.lock().unwrap().push(i),
        &Pace::default(),
    )
    .await;
    let mut returned = returned.into_inner().unwrap();
    returned.sort_unstable();
    assert_eq!(returned, (0..61).filter(|i| *i != 3).collect::<Vec<_>>(), "each sent act said once as it returns");
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.most, AT_ONCE, "as many out at once as allowed, and no more");
    assert_eq!(seen.most_in_a_room, AT_ONCE_PER_ROOM, "no more than allowed in one room");
    assert_eq!(results.len(), 61);
    let results: Vec<Option<String>> = results.into_iter().map(|r| r.map(|r| r.ok().flatten().unwrap())).collect();
    assert_eq!(results[3], None, "nothing sent where nothing was to be sent");
    let expected: Vec<Option<String>> = acts
        .iter()
        .map(|act| Some(describe(act)))
        .take(3)
        .chain([None])
        .chain(acts.iter().skip(3).map(|a| Some(describe(a))))
        .collect();
    assert_eq!(results, expected, "each result in the place of its act");
}

/// A `429` holds back every request of the executor for as long as the
/// homeserver said, not only the one refused, and the refused one is sent
/// again; a network failure is tried again too.
#[tokio::test]
async fn a_429_holds_every_request_back_and_the_refused_one_is_sent_again() {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    let begun = Instant::now();
    let calls: Mutex<Vec<(String, Duration)>> = Mutex::new(Vec::new());
    let (limited, dropped) = (AtomicBool::new(false), AtomicBool::new(false));
    // More acts than go out at once: the last ones are sent after the 429.
    let acts: Vec<Act> = (0..AT_ONCE + 4).map(|i| ban(&format!("!r{i}:here"), "@spam:there")).collect();
    let results = send_together(
        acts.iter().map(Some),
        |act| {
            let (calls, limited, dropped) = (&calls, &limited, &dropped);
            async move {
                let room = act_room(act).to_owned();
                calls.lock().unwrap().push((room.clone(), begun.elapsed()));
                if room == "!r0:here" && !limited.swap(true, Ordering::SeqCst) {
                    return Err(Performed::Again { after: Some(Duration::from_millis(300)), why: "429".into() });
                }
                if room == "!r1:here" && !dropped.swap(true, Ordering::SeqCst) {
                    return Err(Performed::Again { after: None, why: "connection reset".into() });
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
                Ok(None)
            }
        },
        &|_| {},
        &Pace::default(),
    )
    .await;
    assert!(results.iter().all(|r| matches!(r, Some(Ok(None)))), "every act done in the end");
    let calls = calls.into_inner().unwrap();
    let tries = |room: &str| calls.iter().filter(|(r, _)| r == room).count();
    assert_eq!((tries("!r0:here"), tries("!r1:here"), tries("!r2:here")), (2, 2, 1));
    // Those that waited for a place went out only once the pause was over.
    for i in AT_ONCE..AT_ONCE + 4 {
        let room = format!("!r{i}:here");
        let (_, at) = calls.iter().find(|(r, _)| *r == room).unwrap();
        assert!(*at >= Duration::from_millis(290), "{room} went out {at:?} after the start, inside the pause");
    }
}

/// A homeserver that refuses the bot its admin API is not asked again for
/// every ban: the first refusal is remembered, and the next user of this
/// homeserver is banned without a request waiting on it.
#[tokio::test]
async fn a_refused_admin_api_is_not_asked_again_before_each_ban() {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let asked = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = asked.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            counted.fetch_add(1, Ordering::SeqCst);
            let body = r#"{"errcode":"M_FORBIDDEN","error":"You are not a server admin"}"#;
            let reply = format!(
                "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    let client = Client::builder().homeserver_url(&url).build().await.unwrap();
    let session = matrix_sdk::authentication::matrix::MatrixSession {
        meta: matrix_sdk::SessionMeta { user_id: BOT.try_into().unwrap(), device_id: "TEST".into() },
        tokens: matrix_sdk::SessionTokens { access_token: "token".into(), refresh_token: None },
    };
    client.restore_session(session).await.unwrap();
    let mut executor = Executor::new(false, Default::default());
    for user in ["@first:here", "@second:here", "@third:here"] {
        assert_eq!(executor.server_admin(&client, BOT, user, false).await, Ok(()), "unknown is no reason not to ban");
    }
    assert_eq!(asked.load(Ordering::SeqCst), 1, "asked once, refused, then not again");
    assert!(
        executor.server_admin(&client, BOT, "@fourth:here", true).await.is_err(),
        "where it must be known (accounts), unknown still refuses"
    );
}
