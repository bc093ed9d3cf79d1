//! Abuse reports members file with their clients (`POST
//! /rooms/{room}/report/{event}`), read from Synapse's admin API (the bot's
//! account must be a server admin) every `[reports] every`, posted in the
//! management room with reactions to act on them (`report_notices.rs`), and
//! handed to the protections that ask for `report` events. The position is kept in the
//! bot's account data under Draupnir's key, so a restart neither repeats
//! nor skips a report, and an account moved from Draupnir goes on where it
//! stopped. Reports in rooms the bot does not protect are passed over.

use std::time::{Duration, Instant};

use gleipnir_runtime::{AbuseReport, Event, EventKind};
use serde_json::{Value, json};

use super::Bot;
use super::executor::query;

/// The account data holding the position: `{"from": N}` (Draupnir's key).
pub(crate) const POSITION: &str = "org.matrix.mjolnir.report_poll";

/// Reports read per request.
const PAGE: u64 = 100;

/// When to read reports next, and from where.
#[derive(Debug)]
pub(crate) struct ReportPoll {
    every: Duration,
    next_at: Instant,
    /// The admin API's offset of the first report not yet read; `None`
    /// until read from account data.
    from: Option<u64>,
    /// Reading failed and the management room was told (said once until it works).
    told: bool,
}

impl ReportPoll {
    pub(crate) fn new(every: Duration) -> ReportPoll {
        ReportPoll { every, next_at: Instant::now(), from: None, told: false }
    }

    pub(crate) fn next_due(&self) -> Instant {
        self.next_at
    }
}

/// One report as the admin API lists it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Listed {
    pub(crate) id: u64,
    pub(crate) room_id: String,
    pub(crate) event_id: String,
    /// Who reported.
    pub(crate) reporter: String,
    /// Who sent the reported event.
    pub(crate) sender: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) score: Option<i64>,
    pub(crate) received_ts: u64,
}

/// The reports of one page of `GET /_synapse/admin/v1/event_reports`, and
/// the offset after it; entries without a room, event or reporter are
/// skipped (a homeserver bug must not stop the rest).
pub(crate) fn page(reply: &Value, from: u64) -> (Vec<Listed>, u64) {
    let entries = reply["event_reports"].as_array().map(Vec::as_slice).unwrap_or_default();
    let text = |e: &Value, key: &str| e[key].as_str().map(str::to_owned);
    let listed = entries
        .iter()
        .filter_map(|e| {
            Some(Listed {
                id: e["id"].as_u64()?,
                room_id: text(e, "room_id")?,
                event_id: text(e, "event_id")?,
                reporter: text(e, "user_id")?,
                sender: text(e, "sender"),
                reason: text(e, "reason").filter(|r| !r.is_empty()),
                score: e["score"].as_i64(),
                received_ts: e["received_ts"].as_u64().unwrap_or_default(),
            })
        })
        .collect();
    let next = reply["next_token"].as_u64().unwrap_or(from + entries.len() as u64);
    (listed, next.max(from))
}

/// The `report` event protections get: sent by the reporter, in the room of
/// the reported event, with that event's content when the homeserver gave it.
pub(crate) fn event(report: &Listed, content: Option<String>, now_ms: u64) -> Event {
    Event {
        room_id: report.room_id.clone(),
        event_id: report.event_id.clone(),
        sender: report.reporter.clone(),
        origin_ts: report.received_ts,
        received_ts: now_ms,
        content: json!({"reason": report.reason, "score": report.score}).to_string(),
        kind: EventKind::Report(AbuseReport {
            reported_event: Some(report.event_id.clone()),
            reported_user: report.sender.clone(),
            reason: report.reason.clone(),
            score: report.score,
            reported_content: content,
        }),
    }
}

impl Bot {
    /// A report forwarded to the listener (see `listener.rs`): in a
    /// protected room, and not posted already, it is posted and handed to
    /// the protections like one read from the admin API. The reported
    /// event is read with the bot's own account.
    pub(super) async fn forwarded_report(&mut self, mut report: Listed, token: &str) {
        if !self.protected.contains(&report.room_id) || self.report_notices.has_report(&report) {
            return;
        }
        let content = match self.reported_event(&report.room_id, &report.event_id).await {
            Some(event) => {
                report.sender = event["sender"].as_str().map(str::to_owned);
                event.get("content").cloned()
            }
            None => None,
        };
        let now = gleipnir_runtime::Clock::System.now_ms();
        let event = event(&report, content.as_ref().map(Value::to_string), now);
        tracing::info!(
            reporter = report.reporter,
            room = report.room_id,
            event = report.event_id,
            "forwarded abuse report"
        );
        self.post_report(&report, content.as_ref()).await;
        let jobs = self.protections.handle(&event, &self.protected, Instant::now(), &[]);
        self.jobs.extend(jobs);
        self.flush_jobs(token).await;
    }

    /// An event of a room the bot is in, as client-format JSON.
    async fn reported_event(&self, room: &str, event: &str) -> Option<Value> {
        use matrix_sdk::ruma::api::client::room::get_room_event;
        let request = get_room_event::v3::Request::new(room.try_into().ok()?, event.try_into().ok()?);
        let response = self.matrix.client.send(request).await.ok()?;
        serde_json::from_str(response.event.json().get()).ok()
    }

    /// Reads the reports filed since the last read and hands those in
    /// protected rooms to the protections; a failure is said once.
    pub(super) async fn poll_reports(&mut self, token: &str) {
        let Some(poll) = self.reports.as_mut() else { return };
        poll.next_at = Instant::now() + poll.every;
        match self.read_reports().await {
            Ok(()) => {
                if let Some(poll) = self.reports.as_mut() {
                    poll.told = false;
                }
            }
            Err(e) => {
                tracing::warn!("reading abuse reports failed: {e:#}");
                if let Some(poll) = self.reports.as_mut()
                    && !std::mem::replace(&mut poll.told, true)
                {
                    self.matrix
                        .notify(&format!(
                            "Abuse reports cannot be read: {e:#}. The bot's account must be a server admin to read \
                             them; `[reports] poll = false` turns this off. (Said once until it works again.)"
                        ))
                        .await;
                }
            }
        }
        self.flush_jobs(token).await;
    }

    async fn read_reports(&mut self) -> anyhow::Result<()> {
        let client = self.matrix.client.clone();
        let from = match self.reports.as_ref().and_then(|p| p.from) {
            Some(from) => from,
            None => self.report_position().await?,
        };
        let path = format!("/_synapse/admin/v1/event_reports?from={from}&limit={PAGE}&dir=f");
        let reply = query(&client, &path).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let (listed, next) = page(&reply, from);
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        // In a protected room, and not seen already (a crash between posting a
        // report and keeping the position reads it again).
        let protected: Vec<&Listed> = listed
            .iter()
            .filter(|r| self.protected.contains(&r.room_id) && !self.report_notices.has_report(r))
            .collect();
        for report in protected {
            // The reported event as the homeserver stored it, for its content.
            let detail = query(&client, &format!("/_synapse/admin/v1/event_reports/{}", report.id)).await;
            let content = detail.ok().and_then(|d| d["event_json"].get("content").cloned());
            let event = event(report, content.as_ref().map(Value::to_string), now);
            tracing::info!(reporter = report.reporter, room = report.room_id, event = report.event_id, "abuse report");
            self.post_report(report, content.as_ref()).await;
            let jobs = self.protections.handle(&event, &self.protected, Instant::now(), &[]);
            self.jobs.extend(jobs);
        }
        if next != from {
            self.matrix.set_account(POSITION, json!({"from": next})).await?;
        }
        if let Some(poll) = self.reports.as_mut() {
            poll.from = Some(next);
        }
        Ok(())
    }

    /// Where reading starts: the kept position, or (the first time) after
    /// every report filed so far, which are not news.
    async fn report_position(&mut self) -> anyhow::Result<u64> {
        if let Some(from) = self.matrix.account(POSITION).await?.and_then(|v| v["from"].as_u64()) {
            return Ok(from);
        }
        let reply = query(&self.matrix.client, "/_synapse/admin/v1/event_reports?limit=1&dir=f")
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let total = reply["total"].as_u64().unwrap_or_default();
        self.matrix.set_account(POSITION, json!({"from": total})).await?;
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_of_reports_is_read_field_by_field() {
        let reply = json!({"event_reports": [
            {"id": 7, "room_id": "!r:x", "event_id": "$e", "user_id": "@reporter:x", "sender": "@bad:x",
             "reason": "spam", "score": -100, "received_ts": 5},
            {"id": 8, "room_id": "!r:x", "event_id": "$f", "user_id": "@reporter:x", "reason": ""},
            {"id": 9, "room_id": "!r:x", "user_id": "@reporter:x"},
        ], "next_token": 13, "total": 13});
        let (listed, next) = page(&reply, 10);
        assert_eq!(next, 13);
        assert_eq!(listed.len(), 2, "the entry without an event is skipped");
        assert_eq!((listed[0].sender.as_deref(), listed[0].score), (Some("@bad:x"), Some(-100)));
        assert_eq!((listed[1].reason.as_deref(), listed[1].sender.as_deref()), (None, None));
        let e = event(&listed[0], Some(r#"{"body":"buy"}"#.into()), 99);
        assert_eq!((e.sender.as_str(), e.room_id.as_str(), e.received_ts), ("@reporter:x", "!r:x", 99));
        let EventKind::Report(r) = e.kind else { panic!("a report") };
        assert_eq!(r.reported_content.as_deref(), Some(r#"{"body":"buy"}"#));
        // Without a next token, the offset moves by what the page held; never back.
        assert_eq!(page(&json!({"event_reports": [{}, {}]}), 4).1, 6);
        assert_eq!(page(&json!({"next_token": 1}), 4).1, 4);
        assert_eq!(page(&json!("garbage"), 4), (Vec::new(), 4));
    }
}
