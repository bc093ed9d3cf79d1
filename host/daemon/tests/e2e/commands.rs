//! Management-room commands that act: redact, previews and confirmations, invites.

use std::time::Duration;

use serde_json::json;
use synapse_harness::Options;

use crate::common::*;

/// `redact USER` previews a large redaction and carries it out on ✅;
/// `redact PERMALINK` removes one event at once; invites are accepted from
/// management-room members only.
#[test]
fn redact_with_preview_and_confirmation_and_invites() {
    let scene = Scene::new(Options::default());
    let _gleipnir = scene.start(&[], &[]);
    let (synapse, moderator, bot) = (&scene.synapse, &scene.moderator, &scene.bot.user_id);

    let spam: Vec<String> =
        (0..8).map(|i| send(synapse, &scene.spammer, &scene.protected, &format!("spam {i}"))).collect();
    let fine = send(synapse, moderator, &scene.protected, "a moderator's message");
    let preview = scene.command(&format!("redact {}", scene.spammer.user_id), "would carry out 8 operation(s)");
    assert!(preview.contains("React with ✅"), "{preview}");
    // Nothing happens before the ✅.
    std::thread::sleep(Duration::from_secs(2));
    assert!(spam.iter().all(|id| !is_redacted(synapse, moderator, &scene.protected, id)));

    let preview_id = notice_id(synapse, moderator, &scene.management, bot, "would carry out 8").unwrap();
    react(synapse, moderator, &scene.management, &preview_id, "✅");
    eventually("the redaction result", Duration::from_secs(60), || {
        scene.notices().into_iter().find(|n| n.contains("8 of 8 operation(s) done in 1 room(s)"))
    });
    assert!(spam.iter().all(|id| is_redacted(synapse, moderator, &scene.protected, id)));
    assert!(!is_redacted(synapse, moderator, &scene.protected, &fine));

    // One event by permalink: no preview needed.
    let link = format!("https://matrix.to/#/{}/{}?via=localhost", scene.protected, fine);
    scene.command(&format!("redact {link}"), "1 of 1 operation(s) done");
    assert!(is_redacted(synapse, moderator, &scene.protected, &fine));

    // Invites: a stranger's is ignored, a moderator's accepted.
    let strangers = create_room(synapse, &scene.spammer, &[&scene.bot], json!({}));
    let moderators = create_room(synapse, moderator, &[&scene.bot], json!({}));
    eventually("the bot to join on the moderator's invite", Duration::from_secs(30), || {
        (membership(synapse, moderator, &moderators, bot).as_deref() == Some("join")).then_some(())
    });
    assert_eq!(membership(synapse, &scene.spammer, &strangers, bot).as_deref(), Some("invite"));
}
