//! A conversation opened from the widget (`startConversation`): within the
//! caller's budget, and with its first message, if any, handled like any visitor
//! message.

use std::net::IpAddr;

use crate::domain::Core;
use crate::domain::chat::conversations::{self, StartInput, Started};
use crate::error::AppResult;

/// Open a conversation for a caller at `client` (see `conversations::start`).
pub async fn start(core: &Core, client: IpAddr, input: StartInput) -> AppResult<Started> {
    core.rate.start_conversation(client, &input.widget_key)?;
    let started = conversations::start(core, input).await?;
    if let Some(message) = &started.first {
        super::pipeline::after_visitor_message(core, message);
    }
    Ok(started)
}
