//! Contract tests of `new-joiner-servers`, through the real runtime.

use super::*;
use gleipnir_runtime::host::HostQueries;
use gleipnir_runtime::{Checked, Pending, PendingJoin, QueryGrant, SettingValue};

pub(super) fn covered() {}

const ROOM: &str = "!room:test";

fn join(user: &str, id: usize) -> String {
    state(ROOM, user, "m.room.member", user, json!({"membership": "join"}), id)
}

#[test]
fn describes_itself() {
    let p = load(plugins::NEW_JOINER_SERVERS);
    let keys: Vec<_> = p.descriptor().settings.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["servers", "consequence", "reason", "notify", "younger-than", "young-reason"]);
    assert_eq!(p.declared().to_string(), "ban, kick, notify-management");
}

/// A joiner from a listed server (by glob) is banned; others stay; with the
/// module the join is refused first.
#[test]
fn joiners_from_listed_servers_are_banned_or_refused() {
    let plugin = load(plugins::NEW_JOINER_SERVERS);
    let servers =
        [("servers", SettingValue::TextList(vec!["*.evil.test".into()])), ("notify", SettingValue::Flag(false))];
    check(
        &plugin,
        &servers,
        &[join("@a:good.test", 1), join("@b:hs.evil.test", 2)],
        "ban !room:test @b:hs.evil.test (Unfortunately we cannot accept new users from your homeserver at this time.)",
    );
    let (mut instance, _, _) = start(&plugin, &servers);
    let pending = Pending::Join(PendingJoin { room_id: ROOM.into(), user_id: "@c:hs.evil.test".into() });
    assert!(matches!(instance.check_pending(&pending).unwrap(), Checked::Deny { .. }));
}

const DAY: u64 = 86_400_000;
const NOW: u64 = 1_700_000_000_000;

/// A homeserver that tells when its own accounts (`:test`) were made, after
/// a wait longer than a call's deadline.
struct Accounts {
    wait: std::time::Duration,
}

impl HostQueries for Accounts {
    fn now_ms(&self) -> u64 {
        NOW
    }
    fn bot_user_id(&self) -> &str {
        "@bot:test"
    }
    no_room_state!();
    fn account_created(&self, user: &str) -> Result<u64, String> {
        std::thread::sleep(self.wait);
        match user {
            "@new:test" => Ok(NOW - 2 * DAY),
            "@old:test" => Ok(NOW - 400 * DAY),
            other => Err(format!("{other} is not an account of test")),
        }
    }
}

fn with_ages(grants: bool) -> gleipnir_runtime::Instance {
    let plugin = load(plugins::NEW_JOINER_SERVERS);
    let host = std::sync::Arc::new(Accounts { wait: std::time::Duration::from_millis(120) });
    let mut instance = plugin.instantiate(host, plugin.declared()).expect("instantiates");
    if grants {
        instance.set_query_grants([QueryGrant::ReadAccounts].into_iter().collect());
    }
    let settings = [
        ("younger-than".to_owned(), SettingValue::Duration(7 * DAY)),
        ("notify".to_owned(), SettingValue::Flag(false)),
    ];
    instance.configure(&settings).expect("configures");
    instance
}

fn joined(instance: &mut gleipnir_runtime::Instance, user: &str) -> Vec<String> {
    let event = event::from_json(&join(user, 1), None, &|_, _| None).unwrap().unwrap();
    let outcome = instance.handle(&event).expect("the wait on the homeserver does not time the call out");
    outcome.actions.iter().map(render_action).collect()
}

/// With `read-accounts`, a local account younger than `younger-than` is
/// banned with the young reason; an old one, another server's, stay. The
/// time the homeserver takes to answer (longer than the call's deadline)
/// is not counted against the protection.
#[test]
fn young_accounts_are_banned_when_the_homeserver_tells() {
    let mut instance = with_ages(true);
    assert_eq!(
        joined(&mut instance, "@new:test"),
        ["ban !room:test @new:test (Your account is too new to join this room; please try again later.)"]
    );
    assert!(joined(&mut instance, "@old:test").is_empty());
    assert!(joined(&mut instance, "@far:elsewhere").is_empty());
}

/// Without the operator's `read-accounts` the host refuses the query:
/// nobody is acted on for their age, and the management room hears why
/// (once).
#[test]
fn without_read_accounts_no_age_is_read() {
    let mut instance = with_ages(false);
    assert_eq!(
        joined(&mut instance, "@new:test"),
        ["notify-management new-joiner-servers cannot tell how old accounts are, so `younger-than` turns nobody \
          away: `account-created` needs `read-accounts`, which the operator has not granted. (account ages unknown)"]
    );
    assert!(joined(&mut instance, "@new:test").is_empty());
}
