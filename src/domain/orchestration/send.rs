//! A message sent by a principal (`sendMessage`), from the checks of who may say
//! what to what happens after it is stored: an agent's public reply takes the
//! conversation from the AI, a visitor's message goes to the pipeline, and an AI
//! answer applies the tags that cover the articles it cites.

use crate::auth::Principal;
use crate::domain::Core;
use crate::domain::chat::messages::NewMessage;
use crate::domain::chat::{conversations, sending};
use crate::domain::core::validate;
use crate::domain::handoff::accept;
use crate::domain::knowledge::{articles, tagger};
use crate::entity::{Author, ConversationStatus, message};
use crate::error::{AppError, AppResult};

/// What a principal sends.
pub struct Send {
    pub conversation_id: String,
    pub body: String,
    pub client_message_id: Option<String>,
    pub internal: bool,
    /// For the AI: how sure the answer is, 0..1 (1 when not given).
    pub confidence: Option<f64>,
    /// For the AI: the articles the answer cites.
    pub source_article_ids: Option<Vec<String>>,
    /// For the AI: the `seq` of the visitor message answered.
    pub reply_to_seq: Option<i64>,
}

/// Store a message from `principal` in a conversation it may access, and publish
/// it. A retry with the same `clientMessageId` returns the first message and stores
/// nothing.
pub async fn send(core: &Core, principal: &Principal, send: Send) -> AppResult<message::Model> {
    core.rate.visitor_write(principal)?;
    let new = new_message(core, principal, &send).await?;
    let mut before = conversations::get(core, principal, &send.conversation_id).await?;
    if let Principal::Agent(agent) = principal
        && !new.internal
        && before.status == ConversationStatus::Ai
    {
        // An agent's public reply takes the conversation from the AI (as a
        // teammate's reply does in Intercom): an `AGENT_TAKEOVER` handoff, accepted
        // by this agent, and the visitor told who joined, before the reply itself.
        match accept::take_over(core, agent, &before.id).await {
            Ok(_) | Err(AppError::Conflict { .. }) => {}
            Err(err) => return Err(err),
        }
        before = conversations::get(core, principal, &send.conversation_id).await?;
    }
    let stored = sending::store(core, &before, new).await?;
    if !stored.created {
        return Ok(stored.message);
    }
    match stored.message.author {
        Author::Visitor => super::pipeline::after_visitor_message(core, &stored.message),
        Author::Ai => {
            tagger::tag_cited_articles(core, &stored.conversation, &stored.message).await?;
        }
        Author::Agent | Author::System => {}
    }
    Ok(stored.message)
}

/// The message `principal` may send: only the AI gives confidence, sources and
/// the `seq` it answers, and the sources it cites are articles of its workspace.
async fn new_message(core: &Core, principal: &Principal, send: &Send) -> AppResult<NewMessage> {
    let mut new = NewMessage::from_principal(
        principal,
        &send.body,
        send.internal,
        send.client_message_id.as_deref(),
    )?;
    let ai_fields = send.confidence.is_some()
        || send.source_article_ids.is_some()
        || send.reply_to_seq.is_some();
    if !principal.is_ai() {
        if ai_fields {
            return Err(AppError::bad_input(
                "confidence",
                "only the AI gives confidence, sources and replyToSeq",
            ));
        }
        return Ok(new);
    }
    let confidence = send.confidence.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&confidence) {
        return Err(AppError::bad_input("confidence", "must be between 0 and 1"));
    }
    let mut sources = Vec::new();
    for id in send.source_article_ids.iter().flatten() {
        let article = validate::existing(
            articles::get(core, principal.workspace_id(), id).await,
            "sourceArticleIds",
            || format!("no article {id}"),
        )?;
        sources.push(message::Source {
            article_id: article.id,
            title: article.title,
            url: article.url,
            score: confidence,
        });
    }
    new.confidence = Some(confidence);
    new.sources = crate::entity::encode(&sources)?;
    new.reply_to_seq = send.reply_to_seq;
    Ok(new)
}
