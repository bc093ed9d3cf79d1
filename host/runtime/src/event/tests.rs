use super::*;

/// Converts `json` and renders the result as compact text.
fn check(json: &str, expected: &str) {
    let previous = |_: &str, user: &str| (user == "@known:x").then_some(Membership::Join);
    let got = match from_json(json, None, &previous) {
        Ok(None) => "skip".to_owned(),
        Ok(Some(e)) => format!("{} {} {} {} {:?}", e.room_id, e.event_id, e.sender, e.origin_ts, e.kind),
        Err(e) => format!("error: {e}"),
    };
    assert_eq!(got, expected, "\n{json}");
}

#[test]
fn messages() {
    check(
        r#"{"room_id":"!r","event_id":"$e","sender":"@a:x","type":"m.room.message","origin_server_ts":5,"content":{"msgtype":"m.text","body":"hi"}}"#,
        r#"!r $e @a:x 5 EventKind::Message(Message { msgtype: Msgtype::Text, body: "hi", formatted-body: None, mentions: None, replaces: None, in-reply-to: None, media: None })"#,
    );
    // An edit is seen with its new text; HTML only when the format says so.
    check(
        r#"{"room_id":"!r:x","event_id":"$e","sender":"@a:x","type":"m.room.message","origin_server_ts":5,"content":{"msgtype":"m.text","body":"* old","m.new_content":{"msgtype":"m.text","body":"new","format":"org.matrix.custom.html","formatted_body":"<b>new</b>"},"m.relates_to":{"rel_type":"m.replace","event_id":"$old"}}}"#,
        r#"!r:x $e @a:x 5 EventKind::Message(Message { msgtype: Msgtype::Text, body: "new", formatted-body: Some("<b>new</b>"), mentions: None, replaces: Some("$old"), in-reply-to: None, media: None })"#,
    );
    check(
        r#"{"room_id":"!r","event_id":"$e","sender":"@a:x","type":"m.room.message","origin_server_ts":5,"content":{"msgtype":"m.image","body":"cat.png","url":"mxc://x/y","info":{"mimetype":"image/png","size":1234},"m.mentions":{"user_ids":["@b:x",7],"room":true},"m.relates_to":{"m.in_reply_to":{"event_id":"$q"}}}}"#,
        r#"!r $e @a:x 5 EventKind::Message(Message { msgtype: Msgtype::Image, body: "cat.png", formatted-body: None, mentions: Some(Mentions { users: ["@b:x"], room: true }), replaces: None, in-reply-to: Some("$q"), media: Some(MediaInfo { url: Some("mxc://x/y"), mimetype: Some("image/png"), size: Some(1234) }) })"#,
    );
    check(
        r#"{"room_id":"!r","event_id":"$e","sender":"@a:x","type":"m.sticker","origin_server_ts":5,"content":{"body":"wave","url":"mxc://x/s"}}"#,
        r#"!r $e @a:x 5 EventKind::Message(Message { msgtype: Msgtype::Sticker, body: "wave", formatted-body: None, mentions: None, replaces: None, in-reply-to: None, media: Some(MediaInfo { url: Some("mxc://x/s"), mimetype: None, size: None }) })"#,
    );
}

#[test]
fn state_membership_redaction_reaction() {
    check(
        r#"{"room_id":"!r","event_id":"$e","sender":"@a:x","type":"m.room.member","state_key":"@known:x","origin_server_ts":5,"content":{"membership":"ban","reason":"spam"}}"#,
        r#"!r $e @a:x 5 EventKind::Membership(MembershipChange { target: "@known:x", membership: Membership::Ban, previous: Some(Membership::Join), reason: Some("spam"), displayname: None })"#,
    );
    check(
        r#"{"room_id":"!r","event_id":"$e","sender":"@b:x","type":"m.room.member","state_key":"@b:x","origin_server_ts":5,"content":{"membership":"join","displayname":"B"},"unsigned":{"prev_content":{"membership":"invite"}}}"#,
        r#"!r $e @b:x 5 EventKind::Membership(MembershipChange { target: "@b:x", membership: Membership::Join, previous: Some(Membership::Invite), reason: None, displayname: Some("B") })"#,
    );
    check(
        r#"{"room_id":"!r","event_id":"$e","sender":"@a:x","type":"m.room.topic","state_key":"","origin_server_ts":5,"content":{"topic":"t"}}"#,
        r#"!r $e @a:x 5 EventKind::State(StateChange { event-type: "m.room.topic", state-key: "" })"#,
    );
    check(
        r#"{"room_id":"!r","event_id":"$e","sender":"@a:x","type":"m.room.redaction","redacts":"$old","origin_server_ts":5,"content":{"reason":"r"}}"#,
        r#"!r $e @a:x 5 EventKind::Redaction(Redaction { redacts: Some("$old"), reason: Some("r") })"#,
    );
    check(
        r#"{"room_id":"!r","event_id":"$e","sender":"@a:x","type":"m.room.redaction","origin_server_ts":5,"content":{"redacts":"$v11"}}"#,
        r#"!r $e @a:x 5 EventKind::Redaction(Redaction { redacts: Some("$v11"), reason: None })"#,
    );
    check(
        r#"{"room_id":"!r","event_id":"$e","sender":"@a:x","type":"m.reaction","origin_server_ts":5,"content":{"m.relates_to":{"rel_type":"m.annotation","event_id":"$m","key":"👍"}}}"#,
        r#"!r $e @a:x 5 EventKind::Reaction(Reaction { relates-to: "$m", key: "👍" })"#,
    );
}

#[test]
fn policy_rules() {
    check(
        r#"{"room_id":"!l","event_id":"$e","sender":"@a:x","type":"m.policy.rule.user","state_key":"k","origin_server_ts":5,"content":{"entity":"@spam:*","recommendation":"m.ban","reason":"spam"}}"#,
        r#"!l $e @a:x 5 EventKind::Policy(PolicyChange { change: RuleChange::Added, rule: PolicyRule { kind: RuleKind::User, entity: Some("@spam:*"), entity-sha256: None, recommendation: "m.ban", reason: "spam" } })"#,
    );
    check(
        r#"{"room_id":"!l","event_id":"$e","sender":"@a:x","type":"org.matrix.mjolnir.rule.server","state_key":"k","origin_server_ts":5,"content":{"org.matrix.msc4205.hashes":{"sha256":"abc="},"recommendation":"m.takedown"},"unsigned":{"prev_content":{"entity":"x","recommendation":"m.ban"}}}"#,
        r#"!l $e @a:x 5 EventKind::Policy(PolicyChange { change: RuleChange::Modified, rule: PolicyRule { kind: RuleKind::Server, entity: None, entity-sha256: Some("abc="), recommendation: "m.takedown", reason: "" } })"#,
    );
    check(
        r#"{"room_id":"!l","event_id":"$e","sender":"@a:x","type":"m.policy.rule.room","state_key":"k","origin_server_ts":5,"content":{},"unsigned":{"prev_content":{"entity":"!bad:x","recommendation":"m.ban","reason":"r"}}}"#,
        r#"!l $e @a:x 5 EventKind::Policy(PolicyChange { change: RuleChange::Removed, rule: PolicyRule { kind: RuleKind::Room, entity: Some("!bad:x"), entity-sha256: None, recommendation: "m.ban", reason: "r" } })"#,
    );
    check(
        r#"{"room_id":"!l","event_id":"$e","sender":"@a:x","type":"m.policy.rule.user","state_key":"k","origin_server_ts":5,"content":{"recommendation":"m.ban"}}"#,
        "error: field `content.entity`: missing (and no hashes.sha256)",
    );
}

#[test]
fn skipped_and_malformed() {
    check(
        r#"{"room_id":"!r","event_id":"$e","sender":"@a:x","type":"m.room.encrypted","origin_server_ts":5,"content":{"algorithm":"x"}}"#,
        "skip",
    );
    check(
        r#"{"room_id":"!r","event_id":"$e","sender":"@a:x","type":"m.room.message","origin_server_ts":5,"content":{},"unsigned":{"redacted_because":{}}}"#,
        "skip",
    );
    check("not json", "error: not a JSON event: expected ident at line 1 column 2");
    check(r#"{"event_id":"$e"}"#, "error: field `room_id`: missing");
    check(
        r#"{"room_id":"!r","event_id":"$e","sender":"alice","type":"m.room.message","origin_server_ts":5,"content":{}}"#,
        "error: field `sender`: `alice` is not a user id (@user:server)",
    );
    check(
        r#"{"room_id":"!r","event_id":"$e","sender":"@a:x","type":"m.room.message","origin_server_ts":5,"content":[1]}"#,
        "error: field `content`: not an object",
    );
    check(
        r#"{"room_id":"!r","event_id":"$e","sender":"@a:x","type":"m.room.member","state_key":"@b:x","origin_server_ts":5,"content":{"membership":"dance"}}"#,
        "error: field `content.membership`: unknown `dance`",
    );
    check(
        r#"{"room_id":"!r","event_id":"$e","sender":"@a:x","type":"m.room.message","origin_server_ts":-5,"content":{}}"#,
        "error: not a JSON event: invalid value: integer `-5`, expected u64 at line 1 column 93",
    );
}
