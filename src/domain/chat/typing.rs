//! Typing indicators: who is typing in a conversation, delivered to its
//! `conversationEvents` subscribers and never stored.

use crate::auth::Principal;
use crate::domain::Core;
use crate::domain::core::feed::{self, Event};
use crate::entity::Author;
use crate::error::{AppError, AppResult};

/// `principal` started (`typing`) or stopped typing in a conversation it may
/// access; `internal` when it types a note (agents only), never shown to the
/// visitor.
pub async fn set(
    core: &Core,
    principal: &Principal,
    conversation_id: &str,
    typing: bool,
    internal: bool,
) -> AppResult<()> {
    core.rate.visitor_typing(principal)?;
    let conversation = super::conversations::get(core, principal, conversation_id).await?;
    let (author, agent_id) = match principal {
        Principal::Agent(agent) => (Author::Agent, Some(agent.agent_id.clone())),
        Principal::Visitor(_) if internal => {
            return Err(AppError::forbidden("visitors cannot write internal notes"));
        }
        Principal::Visitor(_) => (Author::Visitor, None),
        Principal::ApiKey(_) if principal.is_ai() => (Author::Ai, None),
        Principal::ApiKey(_) => return Err(AppError::forbidden("only the AI can type")),
    };
    let event = Event::typing(&conversation, author, agent_id, typing, internal);
    feed::ephemeral(core, &event)
}
