//! Notices to the management room, sent off the event path. Anyone who can
//! make the bot report (a refused action, a protection's notice, a flood of
//! commands from someone who may not give them) must not be able to stall
//! the sync loop with them: notices are queued, repeats of one text are
//! folded into one notice with a count, the queue is bounded, and notices go
//! out at a bounded rate.

use std::collections::VecDeque;
use std::time::Duration;

use matrix_sdk::Client;
use matrix_sdk::ruma::{OwnedEventId, OwnedRoomId};
use tokio::sync::{mpsc, oneshot};

/// Notices waiting at most; past that the oldest plain ones are dropped (and counted).
const MAX_QUEUED: usize = 200;
/// Notices sent back to back before the rate applies.
const BURST: u32 = 10;
/// Then one notice per this much time.
const SPACING: Duration = Duration::from_millis(500);
/// What one notice's text may take, plain and HTML together: a homeserver
/// refuses an event over 65,536 bytes (Synapse: `M_TOO_LARGE`), and the
/// event's own fields come on top.
const MAX_NOTICE: usize = 48 * 1024;

/// One notice to send; `reply` wants the sent event's id.
struct Outgoing {
    text: String,
    repeats: u32,
    reply: Option<oneshot::Sender<Option<OwnedEventId>>>,
}

/// The queue's logic, without the network: what to send next.
#[derive(Default)]
struct Outbox {
    queue: VecDeque<Outgoing>,
    dropped: usize,
}

impl Outbox {
    fn push(&mut self, text: String, reply: Option<oneshot::Sender<Option<OwnedEventId>>>) {
        // A notice nobody waits on folds into an identical one still waiting.
        if reply.is_none()
            && let Some(same) = self.queue.iter_mut().find(|o| o.reply.is_none() && o.text == text)
        {
            same.repeats = same.repeats.saturating_add(1);
            return;
        }
        self.queue.push_back(Outgoing { text, repeats: 1, reply });
        while self.queue.len() > MAX_QUEUED {
            let Some(index) = self.queue.iter().position(|o| o.reply.is_none()) else { break };
            self.queue.remove(index);
            self.dropped += 1;
        }
    }

    /// The next notice's text, with its repeat count and what was dropped.
    fn pop(&mut self) -> Option<(String, Option<oneshot::Sender<Option<OwnedEventId>>>)> {
        let next = self.queue.pop_front()?;
        let mut text = next.text;
        if next.repeats > 1 {
            text.push_str(&format!(" (×{})", next.repeats));
        }
        if self.dropped > 0 {
            text.push_str(&format!(
                "\n({} other notice(s) were dropped: too many at once; the log has them.)",
                std::mem::take(&mut self.dropped)
            ));
        }
        Some((text, next.reply))
    }
}

enum Message {
    Notice(String, Option<oneshot::Sender<Option<OwnedEventId>>>),
}

/// The sending side, held by the bot. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Notices {
    tx: mpsc::UnboundedSender<Message>,
}

impl Notices {
    /// Starts the sender task for `room`.
    pub(crate) fn start(client: Client, room: OwnedRoomId) -> Notices {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(send_loop(client, room, rx));
        Notices { tx }
    }

    /// Queues a notice; returns at once.
    pub(crate) fn notify(&self, text: &str) {
        let _ = self.tx.send(Message::Notice(text.to_owned(), None));
    }

    /// Queues a notice and waits until it is sent (in order with the rest); its id.
    pub(crate) async fn send(&self, text: &str) -> Option<OwnedEventId> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Message::Notice(text.to_owned(), Some(reply))).ok()?;
        answer.await.ok().flatten()
    }
}

async fn send_loop(client: Client, room: OwnedRoomId, mut rx: mpsc::UnboundedReceiver<Message>) {
    let mut outbox = Outbox::default();
    let mut tokens = BURST;
    let mut refill = tokio::time::interval(SPACING);
    refill.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Take in everything that is waiting, so repeats fold before sending.
        while let Ok(Message::Notice(text, reply)) = rx.try_recv() {
            outbox.push(text, reply);
        }
        if tokens > 0
            && let Some((text, reply)) = outbox.pop()
        {
            tokens -= 1;
            let id = send(&client, &room, &text).await;
            if let Some(reply) = reply {
                let _ = reply.send(id);
            }
            continue;
        }
        tokio::select! {
            message = rx.recv() => match message {
                Some(Message::Notice(text, reply)) => outbox.push(text, reply),
                None if outbox.queue.is_empty() => return,
                None => {}
            },
            _ = refill.tick() => tokens = (tokens + 1).min(BURST),
        }
    }
}

/// The notice's plain text and HTML, cut after a line so that both fit in
/// one event (with what was left out said at the end), or whole.
fn fit(text: &str) -> (String, String) {
    let html = super::html::render(text);
    if text.len() + html.len() <= MAX_NOTICE {
        return (text.to_owned(), html);
    }
    let lines: Vec<&str> = text.lines().collect();
    let cut = |kept: usize| {
        let mut head = lines[..kept].join("\n");
        if kept == 0 {
            // Not even the first line fits: as much of it as surely does.
            let mut end = lines.first().map_or(0, |l| l.len()).min(MAX_NOTICE / 8);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            head = format!("{}…", &text[..end]);
        }
        let left = lines.len() - kept;
        let body = format!(
            "{head}\n… {left} more line(s) not shown: the notice was too long for one message (the bot's log has all of it)."
        );
        let html = super::html::render(&body);
        (body, html)
    };
    // The most lines that fit, by halving.
    let (mut fits, mut too_many) = (0, lines.len());
    while too_many - fits > 1 {
        let mid = (fits + too_many) / 2;
        let (body, html) = cut(mid);
        if body.len() + html.len() <= MAX_NOTICE {
            fits = mid;
        } else {
            too_many = mid;
        }
    }
    tracing::warn!("a notice too long for one message was cut; the whole notice: {text}");
    cut(fits)
}

async fn send(client: &Client, room: &OwnedRoomId, text: &str) -> Option<OwnedEventId> {
    let (body, html) = fit(text);
    let content = serde_json::json!({
        "msgtype": "m.notice", "body": body, "format": "org.matrix.custom.html", "formatted_body": html,
    });
    match super::raw::send_raw(client, room.as_str(), "m.room.message", &content).await {
        Ok(id) => Some(id),
        Err(e) => {
            tracing::warn!("cannot send to the management room: {e}; the notice was: {text}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(outbox: &mut Outbox) -> Vec<String> {
        std::iter::from_fn(|| outbox.pop().map(|(text, _)| text)).collect()
    }

    #[test]
    fn repeats_fold_order_holds_and_the_queue_is_bounded() {
        let mut outbox = Outbox::default();
        outbox.push("a refused".into(), None);
        outbox.push("b".into(), None);
        outbox.push("a refused".into(), None);
        let (reply, _answer) = oneshot::channel();
        outbox.push("preview".into(), Some(reply));
        outbox.push("a refused".into(), None);
        assert_eq!(drain(&mut outbox), vec!["a refused (×3)", "b", "preview"]);

        for i in 0..MAX_QUEUED + 50 {
            outbox.push(format!("report {i}"), None);
        }
        let sent = drain(&mut outbox);
        assert_eq!(sent.len(), MAX_QUEUED);
        assert_eq!(sent[0], "report 50\n(50 other notice(s) were dropped: too many at once; the log has them.)");
        assert_eq!(sent[MAX_QUEUED - 1], format!("report {}", MAX_QUEUED + 49));
    }

    #[test]
    fn a_notice_too_long_for_one_event_is_cut_after_a_line_and_says_so() {
        let short = "Policy rules that changed (2):\n- added a\n- added b";
        assert_eq!(fit(short), (short.to_owned(), crate::bot::html::render(short)));

        let long: String =
            (0..5000).map(|i| format!("\n- added user @held{i}:elsewhere.example m.ban: spam")).collect();
        let text = format!("Policy rules that changed (5000):{long}");
        let (body, html) = fit(&text);
        assert!(body.len() + html.len() <= MAX_NOTICE, "{} bytes", body.len() + html.len());
        assert!(body.len() + html.len() > MAX_NOTICE * 3 / 4, "as much as fits is kept");
        let kept = body.lines().count() - 1;
        assert!(text.starts_with(&body.lines().take(kept).collect::<Vec<_>>().join("\n")));
        assert!(body.ends_with(&format!(
            "… {} more line(s) not shown: the notice was too long for one message (the bot's log has all of it).",
            5001 - kept
        )));

        // One line longer than a message, of characters HTML escapes: part of it.
        let line = "<&>é".repeat(20_000);
        let (body, html) = fit(&line);
        assert!(body.len() + html.len() <= MAX_NOTICE);
        assert!(body.starts_with("<&>é<&>é") && body.contains("…\n… 1 more line(s) not shown"));
    }

    #[test]
    fn a_notice_someone_waits_for_is_never_dropped_nor_folded() {
        let mut outbox = Outbox::default();
        let mut answers = Vec::new();
        for _ in 0..MAX_QUEUED + 10 {
            let (reply, answer) = oneshot::channel();
            outbox.push("same".into(), Some(reply));
            answers.push(answer);
        }
        assert_eq!(drain(&mut outbox).len(), MAX_QUEUED + 10);
    }
}
