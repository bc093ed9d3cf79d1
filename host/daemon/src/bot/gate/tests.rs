use super::*;

/// Hands one stream of messages to a protection twice: each message
/// asked about before it lands (the gate, over one instance) and
/// handled after it lands (another instance, as the bot's sync path
/// does), and checks that it is refused before exactly when it is
/// redacted after. The indices refused, and what the gate told.
fn same_verdicts(
    plugin: &str,
    settings: &[(&str, gleipnir_runtime::SettingValue)],
    stream: &[(&str, &str)],
) -> (Vec<usize>, Vec<News>) {
    same_verdicts_granted(plugin, &GRANTED, settings, stream)
}

const GRANTED: [gleipnir_runtime::Capability; 4] = {
    use gleipnir_runtime::Capability;
    [Capability::Redact, Capability::Ban, Capability::NotifyManagement, Capability::SendNotice]
};

/// [`same_verdicts`] with the protection granted `granted` alone.
fn same_verdicts_granted(
    plugin: &str,
    granted: &[gleipnir_runtime::Capability],
    settings: &[(&str, gleipnir_runtime::SettingValue)],
    stream: &[(&str, &str)],
) -> (Vec<usize>, Vec<News>) {
    use gleipnir_runtime::CapabilitySet;
    let plugin = gleipnir_tests::load(plugin);
    let (queries, rooms) = gleipnir_tests::queries();
    // @old:x was here before the room was protected; @new:x joined after.
    let join = r#"{"membership": "join"}"#;
    rooms.apply("!room:x", "m.room.member", "@old:x", "@old:x", 1, join);
    rooms.count_from("!room:x", 2);
    rooms.vouch_for_members("!room:x");
    let now = gleipnir_runtime::Clock::System.now_ms();
    rooms.apply("!room:x", "m.room.member", "@new:x", "@new:x", now, join);
    let granted: CapabilitySet = granted.iter().copied().collect();
    let overrides: Vec<_> = settings.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    let instance = || {
        let mut i = plugin.instantiate(queries.clone(), granted).unwrap();
        i.configure(&overrides).unwrap();
        i
    };
    let (tell, mut news) = tokio::sync::mpsc::unbounded_channel();
    let protected = Protected::of(["!room:x"]);
    let metrics = Arc::new(super::super::metrics::Metrics::new());
    let gate =
        Gate::new("@gleipnir:test".into(), "!management:x".into(), protected, rooms.clone(), true, tell, metrics);
    let name = plugin.name().to_owned();
    let handler =
        Checker { name: name.clone(), slot: Slot::new(instance()), classes: Vec::new(), errcode: "M_TEST".into() };
    gate.publish(View { active: true, index: SharedIndex::default(), checkers: Vec::new(), handlers: vec![handler] });
    let mut after = instance();
    let mut refused = Vec::new();
    for (i, (sender, body)) in stream.iter().enumerate() {
        let json = serde_json::json!({
            "type": "m.room.message", "room_id": "!room:x", "sender": sender, "event_id": format!("$e{i}"),
            "origin_server_ts": 0, "content": {"msgtype": "m.text", "body": body},
        });
        let before = gate.event(&json, &Lateness::default());
        let mut event = gleipnir_runtime::event::from_json(&json.to_string(), None, &|_, _| None).unwrap().unwrap();
        event.received_ts = gleipnir_runtime::Clock::System.now_ms();
        let outcome = after.handle(&event).unwrap();
        let redacted = outcome
            .actions
            .iter()
            .any(|a| matches!(a, gleipnir_runtime::Action::Redact(r) if r.event_id == event.event_id));
        assert_eq!(before != Answer::Allow, redacted, "{name}: message {i} from {sender}: {before:?}");
        if let Answer::Deny { errcode, .. } = &before {
            assert_eq!(errcode, "M_TEST");
            refused.push(i);
        }
        // What landed is handled once: the sync path skips it.
        if before == Answer::Allow {
            assert_eq!(gate.handled_before(&event.event_id), std::slice::from_ref(&name));
        }
    }
    let mut told = Vec::new();
    while let Ok(n) = news.try_recv() {
        told.push(n);
    }
    (refused, told)
}

fn acted(told: &[News]) -> Vec<gleipnir_runtime::Action> {
    told.iter()
        .filter_map(|n| if let News::Acted { actions, .. } = n { Some(actions.clone()) } else { None })
        .flatten()
        .collect()
}

#[test]
fn flooding_decides_the_same_before_and_after_a_message_lands() {
    use gleipnir_runtime::{Action, SettingValue};
    let senders = ["@spam:x", "@spam:x", "@fine:x", "@spam:x", "@spam:x", "@fine:x", "@spam:x", "@fine:x"];
    let stream: Vec<(&str, &str)> = senders.iter().map(|s| (*s, "a message")).collect();
    let settings = [("max-per-minute", SettingValue::Integer(3))];
    let (refused, told) = same_verdicts(gleipnir_tests::plugins::FLOODING, &settings, &stream);
    assert_eq!(refused, [4, 6], "the 4th message of @spam:x and every one after");
    let acted = acted(&told);
    // The ban and the flood that landed are carried out as the protection's; a refused message is not redacted.
    assert!(acted.iter().any(|a| matches!(a, Action::Ban(b) if b.user_id == "@spam:x")));
    assert!(acted.iter().any(|a| matches!(a, Action::Redact(r) if r.event_id == "$e3")));
    assert!(!acted.iter().any(|a| matches!(a, Action::Redact(r) if r.event_id == "$e4" || r.event_id == "$e6")));
}

/// What a protection may not do is said when it decides before a message
/// lands as when it decides after (the sync path skips what the gate handled).
#[test]
fn an_action_refused_before_a_message_lands_is_told() {
    use gleipnir_runtime::{Action, Capability, SettingValue};
    let stream: Vec<(&str, &str)> = (0..5).map(|_| ("@spam:x", "a message")).collect();
    let settings = [("max-per-minute", SettingValue::Integer(3))];
    let no_ban = [Capability::Redact, Capability::NotifyManagement, Capability::SendNotice];
    let (refused, told) = same_verdicts_granted(gleipnir_tests::plugins::FLOODING, &no_ban, &settings, &stream);
    assert_eq!(refused, [3, 4], "the 4th message and after, still refused: redacting is granted");
    assert!(!acted(&told).iter().any(|a| matches!(a, Action::Ban(_))));
    let refusals: Vec<_> = told
        .iter()
        .filter_map(|n| if let News::Refusals { by, refused } = n { Some((by, refused)) } else { None })
        .collect();
    assert!(!refusals.is_empty(), "{told:?}");
    for (by, refused) in refusals {
        assert_eq!(by, "flooding");
        assert!(refused.iter().all(|r| matches!(&r.action, Action::Ban(b) if b.user_id == "@spam:x")), "{refused:?}");
        assert!(refused.iter().all(|r| r.why.contains("not granted")), "{refused:?}");
    }
}

#[test]
fn least_authority_decides_the_same_before_and_after_a_message_lands() {
    let stream = [
        ("@new:x", "hello everyone"),
        ("@new:x", "cheap deals at https://spam.example"),
        ("@old:x", "the rules are at https://example.org/rules"),
        ("@new:x", "<b>bold</b> and plain"),
    ];
    let (refused, told) = same_verdicts(gleipnir_tests::plugins::LEAST_AUTHORITY, &[], &stream);
    assert_eq!(refused, [1], "the newcomer's link only");
    // The explanation in the room still goes out.
    assert!(acted(&told).iter().any(|a| matches!(a, gleipnir_runtime::Action::SendNotice(_))));
}

#[test]
fn newcomer_watch_words_decides_the_same_before_and_after_a_message_lands() {
    use gleipnir_runtime::SettingValue;
    let stream = [
        ("@new:x", "hi, where do I find the docs?"),
        ("@new:x", "get ｃｈｅａｐ p\u{200B}ills now"),
        ("@old:x", "nobody sells cheap pills here"),
    ];
    let settings = [("words", SettingValue::TextList(vec!["cheap pills".to_owned()]))];
    let (refused, _) = same_verdicts(gleipnir_tests::plugins::NEWCOMER_WATCH_WORDS, &settings, &stream);
    assert_eq!(refused, [1], "the newcomer's disguised phrase only");
}

/// A gate over a list that bans @banned:x and evil.example, with
/// !room:x protected; @mod:x moderates it and @member:x is in the
/// management room.
fn gate_with_rules() -> (Gate, tokio::sync::mpsc::UnboundedReceiver<News>) {
    use gleipnir_policy::PolicyList;
    let (_, rooms) = gleipnir_tests::queries();
    rooms.apply("!management:x", "m.room.member", "@member:x", "@member:x", 1, r#"{"membership": "join"}"#);
    rooms.apply("!room:x", "m.room.power_levels", "", "@mod:x", 1, r#"{"users": {"@mod:x": 100}}"#);
    let index = SharedIndex::default();
    let mut list = PolicyList::new("!list:x");
    for (kind, entity) in [("m.policy.rule.user", "@banned:x"), ("m.policy.rule.server", "evil.example")] {
        let content = serde_json::json!({"entity": entity, "recommendation": "m.ban", "reason": "spam"}).to_string();
        if let Some(change) = list.apply(kind, entity, &content) {
            index.write().apply_change(&change);
        }
    }
    let (tell, news) = tokio::sync::mpsc::unbounded_channel();
    let metrics = Arc::new(super::super::metrics::Metrics::new());
    let protected = Protected::of(["!room:x"]);
    let gate = Gate::new("@gleipnir:x".into(), "!management:x".into(), protected, rooms, true, tell, metrics);
    gate.publish(View { active: true, index, checkers: Vec::new(), handlers: Vec::new() });
    (gate, news)
}

#[test]
fn list_bans_keep_users_out_and_the_bot_moderators_and_management_are_never_refused() {
    let (gate, mut news) = gate_with_rules();
    let refused = |a: Answer| matches!(a, Answer::Deny { errcode, .. } if errcode == "M_FORBIDDEN");
    assert!(refused(gate.join("@banned:x", "!room:x")));
    assert!(refused(gate.join("@anyone:evil.example", "!room:x")), "a banned server's user");
    assert_eq!(gate.join("@banned:x", "!elsewhere:x"), Answer::Allow, "rooms not protected are not ours");
    assert_eq!(gate.join("@fine:x", "!room:x"), Answer::Allow);
    assert!(refused(gate.invite("@banned:x", "@fine:x", "!elsewhere:x")), "no invites from the banned, anywhere");
    assert!(refused(gate.invite("@fine:x", "@banned:x", "!room:x")), "nor of them into a protected room");
    assert!(refused(gate.create_room("@banned:x")));
    assert_eq!(gate.create_room("@fine:x"), Answer::Allow);
    // Never refused: the room's moderator, a management-room member, the bot.
    assert_eq!(gate.invite("@mod:x", "@banned:x", "!room:x"), Answer::Allow);
    assert_eq!(gate.invite("@member:x", "@banned:x", "!room:x"), Answer::Allow);
    assert_eq!(gate.invite("@gleipnir:x", "@banned:x", "!room:x"), Answer::Allow);
    // Each refusal is told once, for the management room.
    let mut refusals = 0;
    while let Ok(n) = news.try_recv() {
        refusals += usize::from(matches!(n, News::Refused { .. }));
    }
    assert_eq!(refusals, 5);
    // In safe mode nothing is refused.
    gate.publish(View::default());
    assert_eq!(gate.join("@banned:x", "!room:x"), Answer::Allow);
}

#[test]
fn a_late_check_counts_only_if_it_finished_first() {
    let late = Lateness::default();
    assert_eq!(late.finish(), None, "in time: its answer is awaited");
    assert!(!late.give_up(true), "finished just before the deadline: its answer stands");
    let late = Lateness::default();
    assert!(late.give_up(true));
    assert_eq!(late.finish(), Some(true), "given up: the message was allowed and landed");
}
