//! The sync loop: one sync after another, each handled whole and its
//! actions carried out before the next is handled; between syncs, the
//! watcher's changes, ticks, report polls, the pre-emptive checks' news and
//! the refusals to say.

use std::time::{Duration, Instant};

use anyhow::Context;
use matrix_sdk::Client;
use matrix_sdk::ruma::api::client::sync::sync_events::v3::{Filter, Request, Response};

use super::{Bot, gate, ingest, watch};

impl Bot {
    /// The sync loop; returns when a moderator asks to start over. While a
    /// sync request waits, changes to plugin files and the settings file are
    /// applied: always between two events, never during one.
    pub(super) async fn serve(&mut self, filter: &Filter, token: &mut String) -> anyhow::Result<()> {
        let mut backoff = Duration::from_millis(500);
        let mut changes = self.changes.take();
        // The next sync, asked for while a sync's actions are carried out, so
        // that what arrives meanwhile is here as soon as they are done.
        let mut next: Option<tokio::task::JoinHandle<_>> = None;
        while !self.restart {
            let mut request = next.take().unwrap_or_else(|| self.sync_from(filter, token));
            let result = loop {
                let ticking = self.protections.ticking(&self.config.ticks);
                self.ticks.schedule(Instant::now(), &ticking);
                let tick_at = self.ticks.next_due().map(tokio::time::Instant::from_std);
                // In safe mode no protection runs: reports wait where they are.
                let reports_at = (self.reports.as_ref())
                    .filter(|_| !self.safe_mode)
                    .map(|r| tokio::time::Instant::from_std(r.next_due()));
                let say_at = self.refusals.due_at().map(tokio::time::Instant::from_std);
                self.publish_gate();
                tokio::select! {
                    result = &mut request => break result,
                    Some(change) = next_change(&mut changes) => self.live_change(change).await,
                    () = until(tick_at) => self.tick(token).await,
                    () = until(reports_at) => self.poll_reports(token).await,
                    Some(news) = next_news(&mut self.gate_news) => self.gate_news(news, token).await,
                    () = until(say_at) => self.say_refusals().await,
                }
            };
            let result = match result {
                Ok(r) => r,
                Err(e) => {
                    self.changes = changes;
                    return Err(e).context("the sync task failed");
                }
            };
            match result {
                Ok(response) => {
                    backoff = Duration::from_millis(500);
                    self.last_sync = Some(Instant::now());
                    let parts = ingest::Parts::of(&response, &self.matrix.bot_user);
                    let (joined, left) = (parts.joined.iter().map(|j| j.room), parts.left.iter().map(|l| l.room));
                    self.matrix.joined_and_left(joined, left);
                    // Before the token is saved (in `flush_jobs`): a start from
                    // it finds the rooms' state as of it.
                    self.room_log.record(&parts, &response.next_batch, false);
                    self.handle_sync(parts, token).await;
                    *token = response.next_batch;
                    // Handled only after these actions, in order: asking early
                    // changes when the next events arrive, not when they are handled.
                    if !self.restart && !self.jobs.is_empty() {
                        next = Some(self.sync_from(filter, token));
                    }
                    self.flush_jobs(token).await;
                    self.save_counts().await;
                    self.give_back.now_and_then();
                    let rules = self.session.policy.rule_counts();
                    self.metrics.synced(self.protected.len(), &rules, self.safe_mode);
                }
                Err(e) => {
                    // Retry from the same token: nothing is lost and nothing handled twice.
                    tracing::warn!("sync failed, retrying in {backoff:?}: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
        if let Some(next) = next {
            // Starting over syncs again from `token`: nothing it brought is lost.
            next.abort();
        }
        self.changes = changes;
        Ok(())
    }

    /// A sync from `token`, on its own task.
    fn sync_from(
        &self,
        filter: &Filter,
        token: &str,
    ) -> tokio::task::JoinHandle<Result<Response, matrix_sdk::HttpError>> {
        // An ACL waits for rule changes to settle: come back soon to send it.
        let wait = if self.session.policy.acl_due() { Duration::from_millis(500) } else { Duration::from_secs(30) };
        let (client, filter, token) = (self.matrix.client.clone(), filter.clone(), token.to_owned());
        tokio::spawn(async move { sync(&client, &filter, Some(&token), false, wait).await })
    }
}

/// One `/sync`, read by the bot itself: the client keeps no room state (the
/// bot's own room cache and `room_log` do), so a sync costs the client
/// nothing but the request, and a restart needs no full-state sync to know
/// its rooms again. `full`: every room's whole state.
pub(super) async fn sync(
    client: &Client,
    filter: &Filter,
    since: Option<&str>,
    full: bool,
    wait: Duration,
) -> Result<Response, matrix_sdk::HttpError> {
    let mut request = Request::new();
    request.filter = Some(filter.clone());
    request.since = since.map(str::to_owned);
    request.full_state = full;
    request.timeout = Some(wait);
    // The homeserver may hold the request for `wait`: the client waits longer.
    let config = client.request_config().timeout(Duration::from_secs(30) + wait);
    client.send(request).with_request_config(config).await
}

/// Resolves at `at`; never, without one.
async fn until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The next thing the pre-emptive checks tell; never, without a listener.
async fn next_news(news: &mut Option<tokio::sync::mpsc::UnboundedReceiver<gate::News>>) -> Option<gate::News> {
    match news {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The next change the watcher saw; never, when nothing is watched.
async fn next_change(
    changes: &mut Option<tokio::sync::mpsc::UnboundedReceiver<watch::Change>>,
) -> Option<watch::Change> {
    match changes {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
