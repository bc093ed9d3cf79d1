//! The homeserver's admin API (Synapse): one HTTP client with a timeout,
//! the bot's token. Actions through it are carried out by the executor
//! alone; other code may only read (`GET`) through [`query`].

use std::time::Duration;

use matrix_sdk::Client;

pub(super) use matrix_sdk::reqwest::Method as reqwest_method;

/// The longest an admin API request may take, connecting included: no
/// single request may hold the event loop longer.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The one HTTP client for the admin API, with its timeout.
fn admin_http() -> &'static matrix_sdk::reqwest::Client {
    static HTTP: std::sync::OnceLock<matrix_sdk::reqwest::Client> = std::sync::OnceLock::new();
    HTTP.get_or_init(|| http_client(ADMIN_TIMEOUT))
}

fn http_client(timeout: Duration) -> matrix_sdk::reqwest::Client {
    matrix_sdk::reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .build()
        .unwrap_or_else(|e| {
            // Only a broken TLS setup fails here; the default client has the same one.
            tracing::error!("cannot build the admin API client with a timeout: {e}");
            matrix_sdk::reqwest::Client::new()
        })
}

/// Why an admin API call did not succeed.
#[derive(Debug)]
pub(crate) enum AdminError {
    NotLoggedIn,
    /// No answer (connection refused, timed out).
    Unreachable(String),
    /// An answer other than success: its status and the start of its body.
    Status {
        status: u16,
        body: String,
    },
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminError::NotLoggedIn => f.write_str("not logged in"),
            AdminError::Unreachable(e) => write!(f, "the admin API cannot be reached: {e}"),
            AdminError::Status { status, body } => write!(f, "the admin API answered {status}: {body}"),
        }
    }
}

/// A call to the homeserver's admin API (Synapse), with the bot's token:
/// the bot's account must be a server admin.
pub(super) async fn admin(
    client: &Client,
    method: reqwest_method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, AdminError> {
    tracing::info!(%method, path, "admin API call");
    let token = client.access_token().ok_or(AdminError::NotLoggedIn)?;
    admin_request(admin_http(), client.homeserver().as_str(), &token, method, path, body).await
}

async fn admin_request(
    http: &matrix_sdk::reqwest::Client,
    homeserver: &str,
    token: &str,
    method: reqwest_method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, AdminError> {
    let url = format!("{}{path}", homeserver.trim_end_matches('/'));
    let mut request = http.request(method, &url).bearer_auth(token);
    if let Some(body) = body {
        request = request.header("Content-Type", "application/json").body(body.to_string());
    }
    let response = request.send().await.map_err(|e| AdminError::Unreachable(e.to_string()))?;
    let status = response.status();
    if status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null));
    }
    let text = response.text().await.unwrap_or_default();
    Err(AdminError::Status { status: status.as_u16(), body: text.chars().take(300).collect() })
}

/// Percent-encodes a path segment (a user or room id).
pub(crate) fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A read-only admin API call (a `GET`): whether a user is an admin, the
/// homeserver's rooms. Anything that changes state goes through the executor.
pub(crate) async fn query(client: &Client, path: &str) -> Result<serde_json::Value, AdminError> {
    admin(client, reqwest_method::GET, path, None).await
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[tokio::test]
    async fn an_admin_request_to_a_silent_server_times_out() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        // Accepts, then never answers.
        let _held = std::thread::spawn(move || {
            let connections: Vec<_> = listener.incoming().take(1).collect();
            std::thread::sleep(Duration::from_secs(5));
            drop(connections);
        });
        let started = Instant::now();
        let result =
            admin_request(&http_client(Duration::from_millis(300)), &url, "t", reqwest_method::GET, "/x", None).await;
        assert!(result.is_err(), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        assert!(ADMIN_TIMEOUT <= Duration::from_secs(30));
    }
}
