//! Logging in: a password login keeps its session (device and token) in the
//! data folder and reuses it; an access token is asked who it is.

use std::time::Duration;

use anyhow::{Context, bail};
use matrix_sdk::Client;
use matrix_sdk::ruma::UserId;

use super::files;
use crate::config::{Config, Credentials};

/// How every request to the homeserver is retried. matrix-sdk honours
/// `429 M_LIMIT_EXCEEDED`'s `retry_after_ms` and retries 5xx by itself; with a
/// retry limit it also retries when the homeserver cannot be reached (a restart),
/// with exponential backoff capped at 30 s per wait. Sends carry a transaction id,
/// so a retried send is not doubled.
pub(super) fn request_config() -> matrix_sdk::config::RequestConfig {
    matrix_sdk::config::RequestConfig::new().retry_limit(12).max_retry_time(Duration::from_secs(30))
}

/// The longest wait between two tries to reach the homeserver at start.
const MOST_BETWEEN_TRIES: Duration = Duration::from_secs(30);

/// Waits until the homeserver answers `GET /_matrix/client/versions`,
/// saying each failed try in one warning line with the error and when the
/// next comes (1 s, doubling, at most 30 s apart), so an operator whose
/// homeserver is down sees why nothing happens instead of silence.
pub(super) async fn wait_for_homeserver(homeserver: &str, metrics: &super::metrics::Metrics) -> anyhow::Result<()> {
    let http = matrix_sdk::reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .context("cannot build an HTTP client")?;
    let url = format!("{}/_matrix/client/versions", homeserver.trim_end_matches('/'));
    let mut wait = Duration::from_secs(1);
    for attempt in 1u32.. {
        let why = match http.get(&url).send().await {
            Ok(reply) if reply.status().is_success() => {
                if attempt > 1 {
                    tracing::info!(homeserver, attempt, "the homeserver answers");
                }
                return Ok(());
            }
            Ok(reply) => format!("it answered {}", reply.status()),
            Err(e) => error_chain(&e),
        };
        tracing::warn!(homeserver, attempt, "cannot reach the homeserver: {why}; trying again in {} s", wait.as_secs());
        metrics.starting(format!("cannot reach the homeserver at {homeserver} (try {attempt}: {why})"));
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(MOST_BETWEEN_TRIES);
    }
    unreachable!("the loop returns or waits forever")
}

/// An error with its causes, on one line (`error sending request: connection refused`).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = cause_of(source);
    }
    text
}

fn cause_of<'a>(e: Option<&'a (dyn std::error::Error + 'static)>) -> Option<&'a (dyn std::error::Error + 'static)> {
    e.and_then(std::error::Error::source)
}

pub(super) async fn login(client: &Client, config: &Config, data: &gleipnir_runtime::Folder) -> anyhow::Result<()> {
    match &config.credentials {
        Credentials::Password(password) => {
            // The session of the last run, if the homeserver still takes it:
            // a new login at every start would leave a device behind each time.
            let kept = files::SessionFile::new(data);
            let previous = kept.load();
            if let Some(session) = &previous
                && session.user_id == config.user_id
                && restore(client, &config.homeserver, session).await.is_ok()
            {
                tracing::info!(device = session.device_id, "reusing the kept session");
            } else {
                let localpart = config.user_id.trim_start_matches('@').split(':').next().unwrap_or_default();
                let mut login = client.matrix_auth().login_username(localpart, password);
                // The same device as before, when there was one: its keys and name stay.
                if let Some(session) = &previous {
                    login = login.device_id(&session.device_id);
                }
                let response = login
                    .initial_device_display_name("gleipnir")
                    .send()
                    .await
                    .context("cannot log in with the password")?;
                let session = files::KeptSession {
                    user_id: response.user_id.to_string(),
                    device_id: response.device_id.to_string(),
                    access_token: response.access_token.clone(),
                };
                if let Err(e) = kept.save(&session) {
                    tracing::warn!("{e:#}; the next start logs in again");
                }
            }
        }
        Credentials::AccessToken(token) => {
            use matrix_sdk::authentication::matrix::MatrixSession;
            use matrix_sdk::{SessionMeta, SessionTokens};
            // The device id comes from the homeserver: ask who this token is.
            let whoami = reqwest_whoami(&config.homeserver, token).await?;
            let session = MatrixSession {
                meta: SessionMeta {
                    user_id: UserId::parse(&whoami.0)?,
                    device_id: whoami.1.unwrap_or_else(|| "GLEIPNIR".to_owned()).into(),
                },
                tokens: SessionTokens { access_token: token.clone(), refresh_token: None },
            };
            client.restore_session(session).await.context("cannot use the access token")?;
        }
    }
    let user = client.user_id().context("no user after login")?;
    if user.as_str() != config.user_id {
        bail!("logged in as {user}, but the config says matrix.user_id = {}", config.user_id);
    }
    Ok(())
}

/// Restores a kept session once the homeserver says it still takes its
/// token. The token is checked on a client of its own first: a client that
/// had a session set cannot log in with a password after it (matrix-sdk
/// panics on a second session).
async fn restore(client: &Client, homeserver: &str, kept: &files::KeptSession) -> anyhow::Result<()> {
    use matrix_sdk::authentication::matrix::MatrixSession;
    use matrix_sdk::{SessionMeta, SessionTokens};
    let (user, device) = reqwest_whoami(homeserver, &kept.access_token).await?;
    if user != kept.user_id || device.as_deref().is_some_and(|d| d != kept.device_id) {
        bail!("the kept token is {user}'s, device {device:?}");
    }
    let session = MatrixSession {
        meta: SessionMeta { user_id: UserId::parse(&kept.user_id)?, device_id: kept.device_id.clone().into() },
        tokens: SessionTokens { access_token: kept.access_token.clone(), refresh_token: None },
    };
    client.restore_session(session).await?;
    Ok(())
}

/// `whoami` for a token, before there is a session to ask with.
async fn reqwest_whoami(homeserver: &str, token: &str) -> anyhow::Result<(String, Option<String>)> {
    let probe = Client::builder().homeserver_url(homeserver).request_config(request_config()).build().await?;
    use matrix_sdk::authentication::matrix::MatrixSession;
    use matrix_sdk::{SessionMeta, SessionTokens};
    let placeholder = MatrixSession {
        meta: SessionMeta { user_id: UserId::parse("@whoami:invalid")?, device_id: "WHOAMI".into() },
        tokens: SessionTokens { access_token: token.to_owned(), refresh_token: None },
    };
    probe.restore_session(placeholder).await?;
    let reply = probe.whoami().await.context("the access token was refused")?;
    Ok((reply.user_id.to_string(), reply.device_id.map(|d| d.to_string())))
}
