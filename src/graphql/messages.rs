//! Messages and sending them.

use std::sync::Arc;

use async_graphql::{ComplexObject, Context, ID, InputObject, Object, SimpleObject};

use crate::domain;
use crate::entity::{Author, answer_feedback, answer_flag, message};
use crate::graphql::loaders::{ArticleKey, FeedbackKey, FlagsKey};

use super::agents::Agent;
use super::knowledge::KnowledgeArticle;
use super::{ContextExt, timestamp};

/// One message of a conversation.
pub struct Message(pub Arc<message::Model>);

impl From<message::Model> for Message {
    fn from(message: message::Model) -> Self {
        Message(Arc::new(message))
    }
}

/// A knowledge article an AI answer cites, as it was when cited.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct ArticleRef {
    /// The article's id.
    pub article_id: ID,
    pub title: String,
    pub url: String,
    /// How well the article matched the question, 0..1.
    pub score: f64,
}

impl From<message::Source> for ArticleRef {
    fn from(source: message::Source) -> ArticleRef {
        ArticleRef {
            article_id: ID(source.article_id),
            title: source.title,
            url: source.url,
            score: source.score,
        }
    }
}

#[ComplexObject]
impl ArticleRef {
    /// The article now; `null` if it was deleted since.
    async fn article(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<KnowledgeArticle>> {
        let article = ctx
            .loaders()
            .load_one(ArticleKey(self.article_id.0.clone()))
            .await?;
        Ok(article.map(|a| KnowledgeArticle(Arc::unwrap_or_clone(a))))
    }
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
        Agent::load(ctx, id).await
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

    /// For `AI` answers: the `seq` of the visitor message answered (the
    /// `replyToSeq` of the `AnswerDelta`s it was streamed as).
    async fn reply_to_seq(&self) -> Option<i64> {
        self.0.reply_to_seq
    }

    /// For `AI` messages: the articles the answer cites.
    async fn sources(&self) -> async_graphql::Result<Vec<ArticleRef>> {
        Ok(self
            .0
            .sources()?
            .into_iter()
            .map(ArticleRef::from)
            .collect())
    }

    /// The sender's idempotency key, if it gave one.
    async fn client_message_id(&self) -> Option<&str> {
        self.0.client_message_id.as_deref()
    }

    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.created_at)
    }

    /// For AI answers: the visitor's answer to "Did that answer your question?"
    /// (`confirmAnswer`), if it gave one.
    async fn feedback(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<AnswerFeedback>> {
        if self.0.author != Author::Ai {
            return Ok(None);
        }
        let feedback = ctx
            .loaders()
            .load_one(FeedbackKey(self.0.id.clone()))
            .await?
            .flatten();
        Ok(feedback.map(AnswerFeedback))
    }

    /// For AI answers: agents' flags saying the answer was wrong (`flagAnswer`).
    /// Empty for visitors and API keys that do not read conversations.
    async fn flags(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<AnswerFlag>> {
        if self.0.author != Author::Ai || !ctx.principal()?.sees_internal() {
            return Ok(Vec::new());
        }
        let flags = ctx
            .loaders()
            .load_one(FlagsKey(self.0.id.clone()))
            .await?
            .unwrap_or_default();
        Ok(flags.into_iter().map(AnswerFlag).collect())
    }
}

/// The visitor's answer to "Did that answer your question?" about an AI answer.
pub struct AnswerFeedback(pub Arc<answer_feedback::Model>);

#[Object]
impl AnswerFeedback {
    async fn helpful(&self) -> bool {
        self.0.helpful
    }

    async fn comment(&self) -> Option<&str> {
        self.0.comment.as_deref()
    }

    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.created_at)
    }
}

/// An agent's flag on an AI answer that was wrong.
pub struct AnswerFlag(pub answer_flag::Model);

#[Object]
impl AnswerFlag {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    /// The AI answer flagged.
    async fn message_id(&self) -> ID {
        ID(self.0.message_id.clone())
    }

    /// What was wrong, in the agent's words.
    async fn reason(&self) -> &str {
        &self.0.reason
    }

    /// The agent who flagged it.
    async fn agent(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Agent>> {
        Agent::load(ctx, &self.0.agent_id).await
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
    /// For the AI (an `AI_WRITE` key): how sure the answer is, 0..1.
    pub confidence: Option<f64>,
    /// For the AI: the knowledge articles the answer cites.
    pub source_article_ids: Option<Vec<ID>>,
    /// For the AI: the `seq` of the visitor message answered. When the visitor has
    /// written again since, the answer is stale and refused (`CONFLICT`,
    /// `extensions.reason: STALE_ANSWER`).
    pub reply_to_seq: Option<i64>,
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
        let send = domain::orchestration::send::Send {
            conversation_id: input.conversation_id.0,
            body: input.body,
            client_message_id: input.client_message_id,
            internal: input.internal,
            confidence: input.confidence,
            source_article_ids: input
                .source_article_ids
                .map(|ids| ids.into_iter().map(|id| id.0).collect()),
            reply_to_seq: input.reply_to_seq,
        };
        let message = domain::orchestration::send::send(ctx.core(), principal, send).await?;
        Ok(Message::from(message))
    }

    /// The visitor answers "Did that answer your question?" about an AI answer of its
    /// conversation (answering again replaces it). `helpful: true` on the AI's latest
    /// answer resolves the conversation as resolved by the AI (`resolvedBy: AI`,
    /// with a `SYSTEM` message); `false` counts as an unhelpful answer, and after the
    /// policy's `maxUnhelpfulAnswers` (default 1) the conversation is handed off as
    /// `UNRESOLVED`. Visitors only. The conversation as it is afterwards.
    async fn confirm_answer(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        message_id: ID,
        helpful: bool,
        comment: Option<String>,
    ) -> async_graphql::Result<super::conversations::Conversation> {
        let principal = ctx.principal()?;
        let conversation = domain::handoff::feedback::confirm(
            ctx.core(),
            principal,
            &conversation_id,
            &message_id,
            helpful,
            comment.as_deref(),
        )
        .await?;
        Ok(super::conversations::Conversation(conversation))
    }

    /// Flag an AI answer as wrong, saying why (flagging again replaces the reason).
    /// Shown with the answer (`Message.flags`, the case file's `aiAnswers`) and
    /// counted per cited article in `insights.articleFeedback`. Agents only.
    async fn flag_answer(
        &self,
        ctx: &Context<'_>,
        message_id: ID,
        reason: String,
    ) -> async_graphql::Result<AnswerFlag> {
        let agent = ctx.principal()?.agent()?;
        let flag = domain::handoff::feedback::flag(ctx.core(), agent, &message_id, &reason).await?;
        Ok(AnswerFlag(flag))
    }
}
