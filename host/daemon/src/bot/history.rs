//! A room's past, read backwards through `/messages`: the one paginator
//! every reader of history uses (the gap before a limited timeline,
//! previews, `redact`, the `history` protections may ask for).

use matrix_sdk::Client;
use matrix_sdk::ruma::api::client::message::get_message_events;
use matrix_sdk::ruma::events::AnyTimelineEvent;
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::{OwnedRoomId, OwnedUserId};

/// What can go wrong reading history.
#[derive(Debug)]
pub(crate) enum HistoryError {
    NotARoom(String),
    NotAUser(String),
    /// The homeserver did not answer with a page.
    Request {
        room: OwnedRoomId,
        error: matrix_sdk::HttpError,
    },
}

impl std::fmt::Display for HistoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HistoryError::NotARoom(room) => write!(f, "`{room}` is not a room id"),
            HistoryError::NotAUser(user) => write!(f, "`{user}` is not a user id"),
            HistoryError::Request { room, error } => write!(f, "cannot read {room}'s history: {error}"),
        }
    }
}

impl std::error::Error for HistoryError {}

/// Readers that answer in text (a reply, a protection's query) say it.
impl From<HistoryError> for String {
    fn from(e: HistoryError) -> String {
        e.to_string()
    }
}

/// Pages of a room's events, newest first, at most `pages` of them.
pub(crate) struct Backwards {
    room: OwnedRoomId,
    from: Option<String>,
    to: Option<String>,
    sender: Option<OwnedUserId>,
    pages_left: usize,
    ended: bool,
}

impl Backwards {
    /// From now (or [`from`](Self::from) a token) back to the room's start.
    pub(crate) fn new(room: &str, pages: usize) -> Result<Backwards, HistoryError> {
        let room = OwnedRoomId::try_from(room).map_err(|_| HistoryError::NotARoom(room.to_owned()))?;
        Ok(Backwards { room, from: None, to: None, sender: None, pages_left: pages, ended: false })
    }

    pub(crate) fn from(mut self, token: &str) -> Backwards {
        self.from = Some(token.to_owned());
        self
    }

    /// Stops at `token` (a sync's `since`): the events after it only.
    pub(crate) fn until(mut self, token: &str) -> Backwards {
        self.to = Some(token.to_owned());
        self
    }

    /// Only events `sender` sent (the homeserver filters; callers that act
    /// on the sender check it themselves).
    pub(crate) fn by(mut self, sender: &str) -> Result<Backwards, HistoryError> {
        self.sender = Some(OwnedUserId::try_from(sender).map_err(|_| HistoryError::NotAUser(sender.to_owned()))?);
        Ok(self)
    }

    /// The next page (at most `limit` events, newest first); `None` once the
    /// start of the room, the `until` token or the page limit is reached.
    pub(crate) async fn next(
        &mut self,
        client: &Client,
        limit: u32,
    ) -> Result<Option<Vec<Raw<AnyTimelineEvent>>>, HistoryError> {
        if self.ended || self.pages_left == 0 {
            return Ok(None);
        }
        self.pages_left -= 1;
        let mut request = get_message_events::v3::Request::backward(self.room.clone());
        request.from = self.from.clone();
        request.to = self.to.clone();
        request.limit = limit.into();
        if let Some(sender) = &self.sender {
            request.filter.senders = Some(vec![sender.clone()]);
        }
        let response =
            client.send(request).await.map_err(|error| HistoryError::Request { room: self.room.clone(), error })?;
        // A page with a new token goes on (a filtered page may be empty);
        // no token, or the same one again, is the end.
        match response.end {
            Some(end) if self.from.as_deref() != Some(end.as_str()) => self.from = Some(end),
            _ => self.ended = true,
        }
        Ok(Some(response.chunk))
    }

    /// Whether reading stopped at the page limit, not at the end.
    pub(crate) fn cut_short(&self) -> bool {
        !self.ended && self.pages_left == 0
    }
}
