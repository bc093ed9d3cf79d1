//! Events sent as JSON, as given: for the parts that send without the
//! `Matrix` (the notices' task, the executor).

use anyhow::Context;
use matrix_sdk::Client;
use matrix_sdk::ruma::{OwnedEventId, OwnedRoomId, TransactionId};
use serde_json::Value;

/// Sends an event of `event_type` with `content` to `room`; its id.
pub(crate) async fn send_raw(
    client: &Client,
    room: &str,
    event_type: &str,
    content: &Value,
) -> anyhow::Result<OwnedEventId> {
    use matrix_sdk::ruma::api::client::message::send_message_event;
    use matrix_sdk::ruma::serde::Raw;
    let id = OwnedRoomId::try_from(room).with_context(|| format!("`{room}` is not a room id"))?;
    let content = Raw::from_json(serde_json::value::to_raw_value(content)?);
    let request = send_message_event::v3::Request::new_raw(id, TransactionId::new(), event_type.into(), content);
    Ok(client.send(request).await?.event_id)
}
