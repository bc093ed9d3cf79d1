//! The HTTP listener (`[http] listen`, off by default): the spam-checker
//! module's callbacks under `/api/1/spam_check/{callback}` (Draupnir's
//! path, so a Synapse config written for it keeps working), `GET /healthz`
//! and `GET /metrics`. axum on hyper and tokio; every callback needs the
//! module's bearer token (compared in constant time), bodies are capped,
//! at most [`CONCURRENT`] callbacks run at once (more are answered 503 at
//! once, which the module treats as its fail-open or fail-closed case),
//! and each is answered within `[antispam] deadline`, or with the answer
//! configured for when it is not.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use super::gate::{Answer, Gate, Lateness};
use super::metrics::Metrics;
use crate::config::http::{Antispam, Http};

/// Callbacks answered at once; more wait for none (503).
const CONCURRENT: usize = 64;
/// The largest request body: an event is at most 64 KiB, sent with a little around it.
const MAX_BODY: usize = 256 * 1024;

#[derive(Clone)]
struct Served {
    gate: Gate,
    /// The homeserver, for forwarded abuse reports.
    homeserver: String,
    http: matrix_sdk::reqwest::Client,
    antispam: Option<Arc<Antispam>>,
    metrics: Arc<Metrics>,
    healthy_within: Duration,
    slots: Arc<Semaphore>,
}

/// Binds the listener and serves it in the background. An address that
/// cannot be bound is an error the caller reports at start.
pub(crate) async fn start(
    config: &Http,
    homeserver: &str,
    gate: Gate,
    metrics: Arc<Metrics>,
) -> anyhow::Result<std::net::SocketAddr> {
    let http = matrix_sdk::reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| anyhow::anyhow!("cannot build the HTTP client for forwarded reports: {e}"))?;
    let served = Served {
        gate,
        homeserver: homeserver.trim_end_matches('/').to_owned(),
        http,
        antispam: config.antispam.clone().map(Arc::new),
        metrics,
        healthy_within: config.healthy_within,
        slots: Arc::new(Semaphore::new(CONCURRENT)),
    };
    let callbacks = Router::new()
        .route("/api/1/spam_check/{callback}", post(callback))
        .layer(axum::middleware::from_fn_with_state(served.clone(), guard))
        .layer(DefaultBodyLimit::max(MAX_BODY));
    // Abuse reports a reverse proxy forwards (for a bot that is not a
    // server admin): by Draupnir's path, or the client's own.
    let reports = Router::new()
        .route("/api/1/report/{room}/{event}", post(report))
        .route("/_matrix/client/v3/rooms/{room}/report/{event}", post(report))
        .layer(DefaultBodyLimit::max(MAX_BODY));
    let app = Router::new()
        .route("/healthz", get(healthz))
        .merge(reports)
        .route("/metrics", get(scrape))
        .merge(callbacks)
        .with_state(served);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {} ([http] listen): {e}", config.listen))?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("the HTTP listener stopped: {e}");
        }
    });
    tracing::info!(address = %bound, "listening for the spam-checker module, /healthz and /metrics");
    Ok(bound)
}

/// The listener while the bot starts (before it has logged in and read its
/// rooms): `/healthz` says what it is doing and what stands in its way,
/// `/metrics` answers; the module's callbacks are not served yet, so Synapse
/// falls back to its fail-open or fail-closed answers as when the bot is
/// down. [`Early::stop`] frees the address for [`start`].
pub(crate) struct Early {
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<()>,
}

impl Early {
    pub(crate) async fn start(config: &Http, metrics: Arc<Metrics>) -> anyhow::Result<Early> {
        let healthy_within = config.healthy_within;
        let for_health = metrics.clone();
        let app = Router::new()
            .route(
                "/healthz",
                get(move || {
                    let metrics = for_health.clone();
                    async move {
                        match metrics.health(healthy_within) {
                            Ok(note) => (StatusCode::OK, format!("{note}\n")).into_response(),
                            Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
                        }
                    }
                }),
            )
            .route(
                "/metrics",
                get(move || {
                    let metrics = metrics.clone();
                    async move { metrics.render() }
                }),
            );
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {} ([http] listen): {e}", config.listen))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                tracing::error!("the HTTP listener stopped: {e}");
            }
        });
        Ok(Early { stop, served })
    }

    /// Stops serving and waits until the address is free again.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.served.await;
    }
}

fn error(status: StatusCode, errcode: &str, message: &str) -> Response {
    (status, axum::Json(json!({"errcode": errcode, "error": message}))).into_response()
}

/// The bearer token, then a free slot.
async fn guard(State(served): State<Served>, headers: HeaderMap, request: Request, next: Next) -> Response {
    let Some(antispam) = &served.antispam else {
        return error(StatusCode::NOT_FOUND, "M_NOT_FOUND", "no [antispam] section in the config");
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !bool::from(given.as_bytes().ct_eq(antispam.token.as_bytes())) {
        return error(StatusCode::UNAUTHORIZED, "M_UNAUTHORIZED", "wrong or missing bearer token");
    }
    let Ok(_slot) = served.slots.clone().try_acquire_owned() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "M_LIMIT_EXCEEDED", "too many checks at once");
    };
    next.run(request).await
}

async fn callback(
    State(served): State<Served>,
    Path(callback): Path<String>,
    body: Result<axum::Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let started = Instant::now();
    let Ok(axum::Json(body)) = body else {
        return error(StatusCode::BAD_REQUEST, "M_BAD_JSON", "the body is not JSON");
    };
    let antispam = served.antispam.clone().expect("guarded");
    if callback == "ping" {
        return axum::Json(json!({"id": body.get("id").cloned().unwrap_or(Value::Null), "status": "ok"}))
            .into_response();
    }
    let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
    let gate = served.gate.clone();
    let late = Arc::new(Lateness::default());
    let lateness = late.clone();
    let decide: Box<dyn FnOnce() -> Answer + Send> = match callback.as_str() {
        "check_event_for_spam" => match body.get("event").cloned() {
            Some(event) if event.is_object() => Box::new(move || gate.event(&event, &lateness)),
            _ => return error(StatusCode::BAD_REQUEST, "M_BAD_JSON", "`event` is missing"),
        },
        "user_may_join_room" => match (text("user"), text("room")) {
            (Some(user), Some(room)) => Box::new(move || gate.join(&user, &room)),
            _ => return error(StatusCode::BAD_REQUEST, "M_BAD_JSON", "`user` and `room` are needed"),
        },
        "user_may_invite" => match (text("inviter"), text("invitee"), text("room_id")) {
            (Some(inviter), Some(invitee), Some(room)) => Box::new(move || gate.invite(&inviter, &invitee, &room)),
            _ => return error(StatusCode::BAD_REQUEST, "M_BAD_JSON", "`inviter`, `invitee` and `room_id` are needed"),
        },
        "user_may_create_room" => match text("user_id") {
            Some(user) => Box::new(move || gate.create_room(&user)),
            None => return error(StatusCode::BAD_REQUEST, "M_BAD_JSON", "`user_id` is needed"),
        },
        other => return error(StatusCode::NOT_FOUND, "M_NOT_FOUND", &format!("no callback `{other}`")),
    };
    // Guest code may block (see `sandboxed`): on a blocking thread, under the deadline.
    let mut task = tokio::task::spawn_blocking(decide);
    let decided = match tokio::time::timeout(antispam.deadline, &mut task).await {
        Ok(decided) => Some(decided),
        Err(_) => {
            let (fallback, _) = fallback(&antispam, &callback);
            // Finished just as the deadline passed: its answer stands.
            if late.give_up(fallback == Answer::Allow) { None } else { Some(task.await) }
        }
    };
    let (answer, verdict) = match decided {
        Some(Ok(answer)) => {
            let verdict = if answer == Answer::Allow { "allow" } else { "deny" };
            (answer, verdict)
        }
        Some(Err(e)) => {
            tracing::error!(callback, "a check failed: {e}");
            fallback(&antispam, &callback)
        }
        None => {
            tracing::warn!(callback, deadline = ?antispam.deadline, "a check missed its deadline");
            fallback(&antispam, &callback)
        }
    };
    served.metrics.callback(&callback, verdict, started.elapsed());
    match answer {
        Answer::Allow => axum::Json(json!({})).into_response(),
        Answer::Deny { errcode, reason } => error(StatusCode::FORBIDDEN, &errcode, &reason),
    }
}

/// The answer when a check could not decide in time: open unless the
/// operator listed the callback in `[antispam] fail_closed`.
fn fallback(antispam: &Antispam, callback: &str) -> (Answer, &'static str) {
    if antispam.fail_closed.contains(callback) {
        let reason = "the moderation bot could not decide in time; try again".to_owned();
        (Answer::Deny { errcode: "M_FORBIDDEN".to_owned(), reason }, "fail_closed")
    } else {
        (Answer::Allow, "fail_open")
    }
}

async fn healthz(State(served): State<Served>) -> Response {
    match served.metrics.health(served.healthy_within) {
        Ok(note) => (StatusCode::OK, format!("{note}\n")).into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

async fn scrape(State(served): State<Served>) -> Response {
    let headers = [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")];
    (headers, served.metrics.render()).into_response()
}

/// A member's abuse report, forwarded by a reverse proxy in front of the
/// homeserver (`[antispam] reports = true`). It is passed on to the
/// homeserver with the member's own token, so the homeserver keeps it (and
/// says who is reporting); once accepted, the bot posts it like a report
/// it read itself. The homeserver's answer is the member's.
async fn report(
    State(served): State<Served>,
    Path((room, event)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !served.antispam.as_ref().is_some_and(|a| a.reports) {
        return error(StatusCode::NOT_FOUND, "M_NOT_FOUND", "forwarded reports are off ([antispam] reports)");
    }
    let Some(auth) = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return error(StatusCode::UNAUTHORIZED, "M_MISSING_TOKEN", "no access token");
    };
    let (Ok(room_id), Ok(event_id)) =
        (<&matrix_sdk::ruma::RoomId>::try_from(room.as_str()), <&matrix_sdk::ruma::EventId>::try_from(event.as_str()))
    else {
        return error(StatusCode::BAD_REQUEST, "M_INVALID_PARAM", "not a room id and an event id");
    };
    let details: Value = serde_json::from_slice(&body).unwrap_or_else(|_| json!({}));
    let path = format!(
        "{}/_matrix/client/v3/rooms/{}/report/{}",
        served.homeserver,
        urlencode(room_id.as_str()),
        urlencode(event_id.as_str())
    );
    let forwarded = served
        .http
        .post(&path)
        .header("Authorization", auth)
        .header("Content-Type", "application/json")
        .body(details.to_string())
        .send()
        .await;
    let response = match forwarded {
        Ok(r) => r,
        Err(e) => {
            return error(StatusCode::BAD_GATEWAY, "M_UNKNOWN", &format!("the homeserver cannot be reached: {e}"));
        }
    };
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let text = response.text().await.unwrap_or_default();
    if status.is_success() {
        // Who reported: the homeserver says whose token it is.
        let whoami = served
            .http
            .get(format!("{}/_matrix/client/v3/account/whoami", served.homeserver))
            .header("Authorization", auth)
            .send()
            .await;
        let reporter = match whoami {
            Ok(r) => r
                .text()
                .await
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .and_then(|v| v["user_id"].as_str().map(str::to_owned)),
            Err(_) => None,
        };
        match reporter {
            Some(reporter) => served.gate.report(super::reports::Listed {
                id: 0,
                room_id: room,
                event_id: event,
                reporter,
                sender: None,
                reason: details["reason"].as_str().filter(|r| !r.is_empty()).map(str::to_owned),
                score: details["score"].as_i64(),
                received_ts: gleipnir_runtime::Clock::System.now_ms(),
            }),
            None => tracing::warn!("a forwarded report was accepted, but whose it is could not be read"),
        }
    }
    let mut reply = (status, text).into_response();
    reply.headers_mut().insert(axum::http::header::CONTENT_TYPE, "application/json".parse().expect("a header value"));
    reply
}

/// Percent-encodes a path segment (room and event ids hold `!`, `$`, `:`).
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
