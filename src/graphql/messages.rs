//! Messages and sending them.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use serde::Deserialize;

use crate::domain;
use crate::domain::messages::NewMessage;
use crate::entity::{Author, message};
use crate::loaders::AgentKey;

use super::agents::Agent;
use super::{ContextExt, timestamp};

/// One message of a conversation.
pub struct Message(pub message::Model);

/// A knowledge article an AI answer cites.
#[derive(SimpleObject, Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArticleRef {
    /// The article's id.
    pub article_id: ID,
    pub title: String,
    pub url: String,
    /// How well the article matched the question, 0..1.
    pub score: f64,
}

#[Object]
impl Message {
    pub async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn conversation_id(&self) -> ID {
        ID(self.0.conversation_id.clone())
    }

    /// Position in the conversation: 1, 2, 3 … with no gaps. Resume a subscription
    /// with the last `seq` you saw.
    async fn seq(&self) -> i64 {
        self.0.seq
    }

    async fn author(&self) -> Author {
        self.0.author
    }

    /// The agent who wrote an `AGENT` message.
    async fn agent(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Agent>> {
        let Some(id) = &self.0.agent_id else {
            return Ok(None);
        };
        Ok(ctx
            .loaders()
            .load_one(AgentKey(id.clone()))
            .await?
            .map(Agent))
    }

    async fn body(&self) -> &str {
        &self.0.body
    }

    /// An internal note: visible to agents only, never to the visitor.
    async fn internal(&self) -> bool {
        self.0.internal
    }

    /// For `AI` messages: how sure the AI was, 0..1.
    async fn confidence(&self) -> Option<f64> {
        self.0.confidence
    }

    /// For `AI` messages: the articles the answer cites.
    async fn sources(&self) -> Vec<ArticleRef> {
        serde_json::from_str(&self.0.sources).unwrap_or_default()
    }

    /// The sender's idempotency key, if it gave one.
    async fn client_message_id(&self) -> Option<&str> {
        self.0.client_message_id.as_deref()
    }

    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.created_at)
    }
}

#[derive(InputObject)]
pub struct SendMessageInput {
    pub conversation_id: ID,
    /// At most 10,000 characters; longer is refused, never truncated.
    pub body: String,
    /// A key the sender chooses per message: a retry with the same key returns the
    /// first message and stores nothing new.
    pub client_message_id: Option<String>,
    /// An internal note (agents only).
    #[graphql(default)]
    pub internal: bool,
}

#[derive(Default)]
pub struct MessageMutation;

#[Object]
impl MessageMutation {
    /// Post a message as the token's holder: a visitor into its own conversation, an
    /// agent into any conversation of the workspace.
    async fn send_message(
        &self,
        ctx: &Context<'_>,
        input: SendMessageInput,
    ) -> async_graphql::Result<Message> {
        let principal = ctx.principal()?;
        let new = NewMessage::from_principal(
            principal,
            &input.body,
            input.internal,
            input.client_message_id.as_deref(),
        )?;
        let message =
            domain::messages::send(ctx.state(), principal, &input.conversation_id, new).await?;
        Ok(Message(message))
    }
}
