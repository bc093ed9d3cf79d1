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
fn join_rules_and_power_levels_have_kinds_of_their_own() {
    check(
        r#"{"room_id":"!r","event_id":"$e","sender":"@a:x","type":"m.room.join_rules","state_key":"","origin_server_ts":5,"content":{"join_rule":"invite"},"unsigned":{"prev_content":{"join_rule":"public"}}}"#,
        r#"!r $e @a:x 5 EventKind::JoinRule(JoinRuleChange { rule: JoinRule::Invite, previous: Some(JoinRule::Public) })"#,
    );
    // A rule the contract has no word for stays a plain state change.
    check(
        r#"{"room_id":"!r","event_id":"$e","sender":"@a:x","type":"m.room.join_rules","state_key":"","origin_server_ts":5,"content":{"join_rule":"knock_restricted"}}"#,
        r#"!r $e @a:x 5 EventKind::State(StateChange { event-type: "m.room.join_rules", state-key: "" })"#,
    );
    check(
        r#"{"room_id":"!r","event_id":"$e","sender":"@a:x","type":"m.room.power_levels","state_key":"","origin_server_ts":5,"content":{"ban":40,"users":{"@b:x":100,"@a:x":"50","@c:x":[]}},"unsigned":{"prev_content":{"ban":60}}}"#,
        r#"!r $e @a:x 5 EventKind::PowerLevels(PowerLevelsChange { levels: RoomLevels { ban: 40, kick: 50, redact: 50, invite: 0, state-default: 50, events-default: 0, users-default: 0 }, users: [UserLevel { user: "@a:x", level: 50 }, UserLevel { user: "@b:x", level: 100 }], previous: Some(RoomLevels { ban: 60, kick: 50, redact: 50, invite: 0, state-default: 50, events-default: 0, users-default: 0 }) })"#,
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
        "error: field `origin_server_ts`: `-5` is not a timestamp (whole milliseconds)",
    );
}

/// An event of `kind` from `@a:x` in `!r` with `content`, and `extra`
/// top-level fields (`"state_key": "k"`, …) when not empty.
fn envelope(kind: &str, extra: &str, content: &str) -> String {
    let extra = if extra.is_empty() { String::new() } else { format!(",{extra}") };
    format!(
        r#"{{"room_id":"!r","event_id":"$e","sender":"@a:x","type":"{kind}","origin_server_ts":5{extra},"content":{content}}}"#
    )
}

/// The rendering of a plain `m.text` message with `body` and nothing else.
fn plain(body: &str) -> String {
    format!(
        r#"!r $e @a:x 5 EventKind::Message(Message {{ msgtype: Msgtype::Text, body: "{body}", formatted-body: None, mentions: None, replaces: None, in-reply-to: None, media: None }})"#
    )
}

/// Anyone in a room can send content of any shape; a wrongly typed optional
/// field reads as absent, so a message with a body is never dropped.
#[test]
fn wrongly_typed_optional_message_fields_read_as_absent() {
    let message = |content: &str| envelope("m.room.message", "", content);
    for content in [
        r#"{"msgtype":"m.text","body":"hi","format":1,"formatted_body":"<b>hi</b>"}"#,
        r#"{"msgtype":"m.text","body":"hi","format":"org.matrix.custom.html","formatted_body":5}"#,
        r#"{"msgtype":"m.text","body":"hi","m.mentions":{"room":"x","user_ids":"@b:x"}}"#,
        r#"{"msgtype":"m.text","body":"hi","m.mentions":"everyone"}"#,
        r#"{"msgtype":"m.text","body":"hi","m.mentions":{"user_ids":[1,null,{}]}}"#,
        r#"{"msgtype":"m.text","body":"hi","m.relates_to":{"event_id":1,"rel_type":"m.replace"}}"#,
        r#"{"msgtype":"m.text","body":"hi","m.relates_to":{"event_id":"$old","rel_type":7}}"#,
        r#"{"msgtype":"m.text","body":"hi","m.relates_to":"x"}"#,
        r#"{"msgtype":"m.text","body":"hi","m.relates_to":{"m.in_reply_to":"$q"}}"#,
        r#"{"msgtype":"m.text","body":"hi","m.relates_to":{"m.in_reply_to":{"event_id":7}}}"#,
        r#"{"msgtype":"m.text","body":"hi","m.new_content":"x"}"#,
        r#"{"msgtype":"m.text","body":"hi","url":5,"file":{"url":6}}"#,
        r#"{"msgtype":"m.text","body":"hi","file":"mxc://x/y"}"#,
        r#"{"msgtype":"m.text","body":"hi","info":"big","url":null}"#,
    ] {
        check(&message(content), &plain("hi"));
    }
    for (content, expected) in [
        (
            r#"{"msgtype":3,"body":"hi"}"#,
            r#"EventKind::Message(Message { msgtype: Msgtype::Other(""), body: "hi", formatted-body: None, mentions: None, replaces: None, in-reply-to: None, media: None })"#,
        ),
        (
            r#"{"msgtype":"m.text","body":"hi","m.mentions":{"user_ids":["@b:x",2],"room":"yes"}}"#,
            r#"EventKind::Message(Message { msgtype: Msgtype::Text, body: "hi", formatted-body: None, mentions: Some(Mentions { users: ["@b:x"], room: false }), replaces: None, in-reply-to: None, media: None })"#,
        ),
        // An edit whose new content is not usable shows its fallback body.
        (
            r#"{"msgtype":"m.text","body":"* spam","m.new_content":"x","m.relates_to":{"rel_type":"m.replace","event_id":"$old"}}"#,
            r#"EventKind::Message(Message { msgtype: Msgtype::Text, body: "* spam", formatted-body: None, mentions: None, replaces: Some("$old"), in-reply-to: None, media: None })"#,
        ),
        (
            r#"{"msgtype":"m.text","body":"* spam","m.new_content":{"msgtype":"m.text"},"m.relates_to":{"rel_type":"m.replace","event_id":"$old"}}"#,
            r#"EventKind::Message(Message { msgtype: Msgtype::Text, body: "* spam", formatted-body: None, mentions: None, replaces: Some("$old"), in-reply-to: None, media: None })"#,
        ),
        (
            r#"{"msgtype":"m.text","body":"* spam","m.new_content":{"body":"spam","msgtype":9,"m.mentions":7},"m.relates_to":{"rel_type":"m.replace","event_id":"$old"}}"#,
            r#"EventKind::Message(Message { msgtype: Msgtype::Other(""), body: "spam", formatted-body: None, mentions: None, replaces: Some("$old"), in-reply-to: None, media: None })"#,
        ),
        (
            r#"{"msgtype":"m.image","body":"cat","url":"mxc://x/y","info":{"mimetype":5,"size":"big"}}"#,
            r#"EventKind::Message(Message { msgtype: Msgtype::Image, body: "cat", formatted-body: None, mentions: None, replaces: None, in-reply-to: None, media: Some(MediaInfo { url: Some("mxc://x/y"), mimetype: None, size: None }) })"#,
        ),
        (
            r#"{"msgtype":"m.file","body":"f","file":{"url":"mxc://x/e"},"url":false}"#,
            r#"EventKind::Message(Message { msgtype: Msgtype::File, body: "f", formatted-body: None, mentions: None, replaces: None, in-reply-to: None, media: Some(MediaInfo { url: Some("mxc://x/e"), mimetype: None, size: None }) })"#,
        ),
        // Without any usable field, still a message (with an empty body).
        (
            r#"{"msgtype":[],"body":null,"format":{},"m.mentions":[],"m.relates_to":[],"m.new_content":[],"url":{},"info":[]}"#,
            r#"EventKind::Message(Message { msgtype: Msgtype::Other(""), body: "", formatted-body: None, mentions: None, replaces: None, in-reply-to: None, media: None })"#,
        ),
    ] {
        check(&message(content), &format!("!r $e @a:x 5 {expected}"));
    }
    check(
        &envelope("m.sticker", "", r#"{"body":"wave","url":5,"info":7}"#),
        r#"!r $e @a:x 5 EventKind::Message(Message { msgtype: Msgtype::Sticker, body: "wave", formatted-body: None, mentions: None, replaces: None, in-reply-to: None, media: None })"#,
    );
    // Wrongly typed optional top-level fields are ignored too.
    check(
        &envelope("m.room.message", r#""redacts":5,"unsigned":"x""#, r#"{"msgtype":"m.text","body":"hi"}"#),
        &plain("hi"),
    );
    check(
        &envelope("m.room.message", r#""unsigned":{"redacted_because":null}"#, r#"{"msgtype":"m.text","body":"hi"}"#),
        &plain("hi"),
    );
}

#[test]
fn wrongly_typed_fields_of_other_events() {
    let cases = [
        // Reactions: the key is optional, the target is not.
        (
            envelope("m.reaction", "", r#"{"m.relates_to":{"rel_type":"m.annotation","event_id":"$m","key":5}}"#),
            r#"!r $e @a:x 5 EventKind::Reaction(Reaction { relates-to: "$m", key: "" })"#,
        ),
        (
            envelope("m.reaction", "", r#"{"m.relates_to":{"event_id":5,"key":"👍"}}"#),
            "error: field `content.m.relates_to.event_id`: is a number, not a string",
        ),
        (
            envelope("m.reaction", "", r#"{"m.relates_to":"$m"}"#),
            "error: field `content.m.relates_to`: is a string, not an object",
        ),
        (envelope("m.reaction", "", r#"{}"#), "error: field `content.m.relates_to`: missing"),
        // Redactions: room version 11 puts `redacts` in content, older ones on top.
        (
            envelope("m.room.redaction", r#""redacts":"$old""#, r#"{"redacts":5,"reason":7}"#),
            r#"!r $e @a:x 5 EventKind::Redaction(Redaction { redacts: Some("$old"), reason: None })"#,
        ),
        (
            envelope("m.room.redaction", r#""redacts":5"#, r#"{"redacts":"$v11","reason":"r"}"#),
            r#"!r $e @a:x 5 EventKind::Redaction(Redaction { redacts: Some("$v11"), reason: Some("r") })"#,
        ),
        // Membership: the membership is required, the rest is optional.
        (
            envelope(
                "m.room.member",
                r#""state_key":"@b:x","unsigned":{"prev_content":{"membership":5}}"#,
                r#"{"membership":"join","displayname":5,"reason":["x"]}"#,
            ),
            r#"!r $e @a:x 5 EventKind::Membership(MembershipChange { target: "@b:x", membership: Membership::Join, previous: None, reason: None, displayname: None })"#,
        ),
        (
            envelope("m.room.member", r#""state_key":"@known:x","unsigned":{"prev_content":"x"}"#, r#"{"membership":"leave"}"#),
            r#"!r $e @a:x 5 EventKind::Membership(MembershipChange { target: "@known:x", membership: Membership::Leave, previous: Some(Membership::Join), reason: None, displayname: None })"#,
        ),
        (
            envelope("m.room.member", r#""state_key":"@b:x""#, r#"{"membership":5}"#),
            "error: field `content.membership`: is a number, not a string",
        ),
        // Policy rules: entity or hash, and a recommendation, are required.
        (
            envelope("m.policy.rule.user", r#""state_key":"k""#, r#"{"entity":"@s:x","recommendation":"m.ban","reason":5,"hashes":"x"}"#),
            r#"!r $e @a:x 5 EventKind::Policy(PolicyChange { change: RuleChange::Added, rule: PolicyRule { kind: RuleKind::User, entity: Some("@s:x"), entity-sha256: None, recommendation: "m.ban", reason: "" } })"#,
        ),
        (
            envelope(
                "m.policy.rule.user",
                r#""state_key":"k""#,
                r#"{"entity":5,"recommendation":"m.ban","hashes":{"sha256":7},"org.matrix.msc4205.hashes":{"sha256":"abc="}}"#,
            ),
            r#"!r $e @a:x 5 EventKind::Policy(PolicyChange { change: RuleChange::Added, rule: PolicyRule { kind: RuleKind::User, entity: None, entity-sha256: Some("abc="), recommendation: "m.ban", reason: "" } })"#,
        ),
        (
            envelope("m.policy.rule.user", r#""state_key":"k","unsigned":{"prev_content":7}"#, r#"{"entity":"@s:x","recommendation":"m.ban"}"#),
            r#"!r $e @a:x 5 EventKind::Policy(PolicyChange { change: RuleChange::Added, rule: PolicyRule { kind: RuleKind::User, entity: Some("@s:x"), entity-sha256: None, recommendation: "m.ban", reason: "" } })"#,
        ),
        (
            envelope("m.policy.rule.server", r#""state_key":"k","unsigned":{"prev_content":{"entity":5}}"#, r#"{}"#),
            "skip",
        ),
        (
            envelope("m.policy.rule.user", r#""state_key":"k""#, r#"{"entity":"@s:x","recommendation":5}"#),
            "error: field `content.recommendation`: is a number, not a string",
        ),
        (
            envelope("m.policy.rule.user", r#""state_key":"k""#, r#"{"entity":5,"recommendation":"m.ban"}"#),
            "error: field `content.entity`: is a number, not a string (and no hashes.sha256)",
        ),
        // Top-level fields set by the server are required with their type.
        (envelope("m.room.message", r#""state_key":5"#, "{}"), "error: field `state_key`: is a number, not a string"),
        (
            r#"{"room_id":"!r","event_id":"$e","sender":"@a:x","type":5,"origin_server_ts":5,"content":{}}"#.to_owned(),
            "error: field `type`: is a number, not a string",
        ),
        (
            r#"{"room_id":"!r","event_id":"$e","sender":"@a:x","type":"m.room.message","origin_server_ts":"5","content":{}}"#.to_owned(),
            "error: field `origin_server_ts`: is a string, not a timestamp (whole milliseconds)",
        ),
        (
            r#"{"room_id":["!r"],"event_id":"$e","sender":"@a:x","type":"m.room.message","origin_server_ts":5,"content":{}}"#.to_owned(),
            "error: field `room_id`: is a list, not a string",
        ),
    ];
    for (json, expected) in cases {
        check(&json, expected);
    }
}
