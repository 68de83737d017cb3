//! Answers written by a language model, grounded in the workspace's articles.
//!
//! The model is given the best passages retrieval found, numbered as sources, the
//! conversation's recent visitor and AI turns (never an internal note, never a
//! lead's fields), the workspace's instructions, and one tool, `handoff_to_human`.
//! Its answer streams to the conversation as `AnswerDelta` events while it is
//! written, through the citation guardrail ([`super::citations`]); the caller
//! stores it once it is whole. The guardrails are the server's, not the prompt's:
//! a person taking the conversation (or the visitor writing again) abandons the
//! request at once, and whatever goes wrong is a [`Reply::Failed`] the caller
//! answers the extractive way.

use std::time::Duration;

use futures_util::FutureExt;
use sea_orm::{ActiveModelTrait, ConnectionTrait, FromQueryResult, Set};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::citations::Citations;
use super::responder::{Grounding, Source};
use crate::db::stmt;
use crate::domain::Core;
use crate::domain::core::feed::{self, Event, EventKind};
use crate::entity::model_call::{self, ModelOutcome};
use crate::entity::{Author, ConversationStatus, conversation, message, now_ms, workspace};
use crate::error::{AppError, AppResult};
use crate::events::{Subscription, Topic};
use crate::ids::{Kind, new_id};
use crate::llm::{ChatMessage, Connector, Failure, Tool, Usage};

/// The tool the model calls to hand the conversation to a person.
pub const HANDOFF_TOOL: &str = "handoff_to_human";

/// Visitor and AI messages given to the model as the conversation, at most.
const RECENT_TURNS: u64 = 12;

/// At most one `AnswerDelta` per this long: the first piece goes at once (the
/// visitor sees the answer start as soon as it does), then a burst of tokens
/// gathers into one event, not one per token.
const DELTA_EVERY: Duration = Duration::from_millis(40);

/// Characters gathered that are sent at once, whatever the time.
const DELTA_CHARS: usize = 200;

/// Characters per token, to estimate usage when the server reports none.
const CHARS_PER_TOKEN: i64 = 4;

/// What the model did with a question.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// It answered: `body` is exactly the pieces sent, in order.
    Answered {
        body: String,
        /// The sources cited, in order of first citation.
        sources: Vec<Source>,
        /// The best score of the sources cited; 0 when it cited none.
        confidence: f64,
    },
    /// It called `handoff_to_human` (after writing `text`, maybe empty).
    Handoff {
        text: String,
        sources: Vec<Source>,
        reason: String,
    },
    /// A person took the conversation, or the visitor wrote again, while it was
    /// writing: nothing more was sent, and nothing is to be stored.
    Abandoned,
    /// It failed; nothing of it is to be stored.
    Failed(Failure),
}

/// A model request: what came of it and what it cost.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub reply: Reply,
    pub usage: Usage,
    /// The server reported no usage: it is estimated from the text.
    pub estimated: bool,
    pub first_token_ms: Option<i64>,
}

/// The one tool the model is given.
pub fn tools() -> Vec<Tool> {
    vec![Tool {
        name: HANDOFF_TOOL,
        description: "Hand the conversation to a person on the team: when the sources do not \
                      answer the question, or the visitor asks for a person.",
        parameters: serde_json::json!({
            "type": "object",
            "properties": {
                "reason": {
                    "type": "string",
                    "description": "Why a person should answer, in one sentence for the team.",
                },
            },
            "required": ["reason"],
        }),
    }]
}

/// A message of the conversation, as the model is given it.
#[derive(Clone, Copy, Debug)]
pub struct Turn<'a> {
    pub author: Author,
    pub body: &'a str,
}

impl<'a> From<&'a message::Model> for Turn<'a> {
    fn from(message: &'a message::Model) -> Self {
        Turn {
            author: message.author,
            body: &message.body,
        }
    }
}

/// The messages sent to the model: its instructions with the numbered sources, then
/// the conversation.
pub fn prompt(
    workspace: &workspace::Model,
    grounding: &[Grounding],
    turns: &[Turn<'_>],
) -> Vec<ChatMessage> {
    let mut system = format!(
        "You answer the questions of visitors of {name}'s website, using only the numbered \
         sources below, from {name}'s own documentation.\n\
         - Answer from the sources alone: add no facts, links or promises they do not contain.\n\
         - Cite the source of each statement with its number in square brackets, like [1], \
         right after it.\n\
         - If the sources do not answer the question, or the visitor asks for a person, say so \
         in one sentence and call the tool {HANDOFF_TOOL} with the reason.\n\
         - Keep answers short: a few sentences, or a few steps.\n",
        name = workspace.name,
    );
    let instructions = workspace.answer_instructions.trim();
    if !instructions.is_empty() {
        system.push_str("\nThe team's instructions:\n");
        system.push_str(instructions);
        system.push('\n');
    }
    system.push_str("\nSources:\n");
    for (i, source) in grounding.iter().enumerate() {
        system.push_str(&format!(
            "\n[{}] {} ({})\n{}\n",
            i + 1,
            source.source.title,
            source.source.url,
            source.passages.join("\n\n")
        ));
    }
    let mut messages = vec![ChatMessage {
        role: "system",
        content: system,
    }];
    for turn in turns {
        let (role, content) = match turn.author {
            Author::Visitor => ("user", turn.body.to_owned()),
            // Earlier answers' markers number other sources: left out.
            Author::Ai => {
                let mut strip = Citations::new(0);
                let mut text = strip.push(turn.body);
                text.push_str(&strip.finish());
                ("assistant", text)
            }
            Author::Agent | Author::System => continue,
        };
        messages.push(ChatMessage { role, content });
    }
    messages
}

/// The visitor's and the AI's recent public messages, up to and with `message`, in
/// order; `None` when the conversation has moved on (it left the AI, or the
/// visitor wrote after `message`), read in the same statement.
pub async fn recent_turns(
    core: &Core,
    conversation: &conversation::Model,
    message: &message::Model,
) -> AppResult<Option<Vec<message::Model>>> {
    let rows = core
        .db
        .reader
        .query_all_raw(stmt(
            core.db.backend(),
            "SELECT m.*, c.status AS conversation_status, \
             (SELECT MAX(v.seq) FROM messages v WHERE v.conversation_id = c.id AND v.author = 'VISITOR') AS last_visitor \
             FROM conversations c JOIN messages m ON m.conversation_id = c.id \
             WHERE c.id = ? AND m.internal = ? AND m.author IN ('VISITOR', 'AI') AND m.seq <= ? \
             ORDER BY m.seq DESC LIMIT ?",
            vec![
                conversation.id.as_str().into(),
                false.into(),
                message.seq.into(),
                (RECENT_TURNS as i64).into(),
            ],
        ))
        .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let status: String = first.try_get("", "conversation_status")?;
    let last_visitor: Option<i64> = first.try_get("", "last_visitor")?;
    if status != "AI" || last_visitor.is_some_and(|last| last > message.seq) {
        return Ok(None);
    }
    let mut turns = rows
        .iter()
        .map(|row| message::Model::from_query_result(row, ""))
        .collect::<Result<Vec<_>, _>>()?;
    turns.reverse();
    Ok(Some(turns))
}

/// Ask the model to answer `message` from `grounding`, streaming its answer to the
/// conversation as it is written.
pub async fn answer(
    core: &Core,
    connector: &Connector,
    workspace: &workspace::Model,
    conversation: &conversation::Model,
    message: &message::Model,
    grounding: &[Grounding],
) -> AppResult<Outcome> {
    // Subscribed before anything else, so no change of control is missed.
    let mut watch = core
        .events
        .subscribe(Topic::Conversation(conversation.id.clone()));
    let Some(turns) = recent_turns(core, conversation, message).await? else {
        return Ok(nothing(Reply::Abandoned));
    };
    let turns: Vec<Turn<'_>> = turns.iter().map(Turn::from).collect();
    let messages = prompt(workspace, grounding, &turns);
    let mut typing = Typing::after(core, Some(conversation), TYPING_AFTER);
    let written = write(
        core,
        connector,
        Some((conversation, message.seq)),
        (grounding, &messages),
        Some(&mut watch),
        &mut typing,
    )
    .await;
    typing.stop()?;
    Ok(outcome(&messages, written?))
}

/// What the model would answer to `question`, asked as a conversation's first
/// message: nothing is sent while it writes, and nothing abandons it.
pub async fn preview(
    core: &Core,
    connector: &Connector,
    workspace: &workspace::Model,
    question: &str,
    grounding: &[Grounding],
) -> AppResult<Outcome> {
    let turns = [Turn {
        author: Author::Visitor,
        body: question,
    }];
    let messages = prompt(workspace, grounding, &turns);
    let mut typing = Typing::after(core, None, TYPING_AFTER);
    let written = write(
        core,
        connector,
        None,
        (grounding, &messages),
        None,
        &mut typing,
    )
    .await?;
    Ok(outcome(&messages, written))
}

/// A request's outcome, its usage estimated from `messages` and the answer when
/// the server reported none.
fn outcome(messages: &[ChatMessage], written: Written) -> Outcome {
    let (reply, usage, first_token, completion_chars) = written;
    let prompt_chars: i64 = messages
        .iter()
        .map(|m| m.content.chars().count() as i64)
        .sum();
    let (usage, estimated) = match usage {
        Some(usage) => (usage, false),
        None => (
            Usage {
                prompt_tokens: estimate(prompt_chars),
                completion_tokens: estimate(completion_chars),
            },
            true,
        ),
    };
    Outcome {
        reply,
        usage,
        estimated,
        first_token_ms: first_token.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
    }
}

/// What a request that never started cost: nothing.
fn nothing(reply: Reply) -> Outcome {
    Outcome {
        reply,
        usage: Usage::default(),
        estimated: false,
        first_token_ms: None,
    }
}

fn estimate(chars: i64) -> i64 {
    (chars + CHARS_PER_TOKEN - 1) / CHARS_PER_TOKEN
}

/// The AI is shown typing when the answer has not started this soon: waiting for
/// a turn among `CASEFILE_LLM_CONCURRENCY`, or for a slow first token. A model that
/// starts at once shows its answer instead, with no typing events around it.
const TYPING_AFTER: Duration = Duration::from_millis(250);

/// The AI's typing indicator while a model answers: shown once it is due, if the
/// answer has not started by then, and stopped when the answer ends.
struct Typing<'a> {
    core: &'a Core,
    /// Where it shows; `None`: nowhere (a preview).
    conversation: Option<&'a conversation::Model>,
    /// When to show it; `None` once shown, or once the answer started.
    due: Option<Instant>,
    shown: bool,
}

impl<'a> Typing<'a> {
    fn after(
        core: &'a Core,
        conversation: Option<&'a conversation::Model>,
        delay: Duration,
    ) -> Self {
        Typing {
            core,
            conversation,
            due: conversation.map(|_| Instant::now() + delay),
            shown: false,
        }
    }

    fn set(&self, typing: bool) -> AppResult<()> {
        let Some(conversation) = self.conversation else {
            return Ok(());
        };
        let event = Event::typing(conversation, Author::Ai, None, typing, false);
        feed::ephemeral(self.core, &event)
    }

    /// It is due: show it.
    fn show(&mut self) -> AppResult<()> {
        self.due = None;
        self.shown = true;
        self.set(true)
    }

    /// The answer started: it is not to be shown any more (once shown, it stays
    /// until [`Typing::stop`]).
    fn started(&mut self) {
        self.due = None;
    }

    /// The answer ended: the typing shown, if any, stops.
    fn stop(&mut self) -> AppResult<()> {
        self.due = None;
        if std::mem::take(&mut self.shown) {
            self.set(false)?;
        }
        Ok(())
    }

    /// `future`'s output, showing the typing if it is due before that.
    async fn during<F: Future>(&mut self, future: F) -> AppResult<F::Output> {
        let Some(due) = self.due else {
            return Ok(future.await);
        };
        tokio::pin!(future);
        tokio::select! {
            biased;
            out = &mut future => return Ok(out),
            () = tokio::time::sleep_until(due) => self.show()?,
        }
        Ok(future.await)
    }
}

type Written = (Reply, Option<Usage>, Option<Duration>, i64);

/// Run the request (`messages`, asked from `grounding`) and stream its answer
/// `to` a conversation's visitor message `seq` (`None`: to nobody, a preview),
/// abandoning it when `watch` tells a person took it; the reply, the usage the server reported, how soon it
/// started, and the characters it wrote.
async fn write(
    core: &Core,
    connector: &Connector,
    to: Option<(&conversation::Model, i64)>,
    (grounding, messages): (&[Grounding], &[ChatMessage]),
    mut watch: Option<&mut Subscription>,
    typing: &mut Typing<'_>,
) -> AppResult<Written> {
    let started = tokio::select! {
        biased;
        moved = taken_from(core, watch.as_deref_mut(), to) => {
            moved?;
            return Ok((Reply::Abandoned, None, None, 0));
        }
        turn = typing.during(connector.turn()) => turn?,
    };
    let Some(_turn) = started else {
        return Err(AppError::internal("the model's turns are closed"));
    };
    let tools = tools();
    let mut completion = tokio::select! {
        biased;
        moved = taken_from(core, watch.as_deref_mut(), to) => {
            moved?;
            return Ok((Reply::Abandoned, None, None, 0));
        }
        started = typing.during(connector.start(messages, &tools)) => match started? {
            Ok(completion) => completion,
            Err(failure) => return Ok((Reply::Failed(failure), None, None, 0)),
        },
    };
    let mut citations = Citations::new(grounding.len());
    let mut sent = String::new();
    let mut gathered = String::new();
    let mut flush_at: Option<Instant> = None;
    let mut flushed_at: Option<Instant> = None;
    let mut written_chars: i64 = 0;
    let flush = |gathered: &mut String, sent: &mut String, flushed_at: &mut Option<Instant>| {
        if gathered.is_empty() {
            return Ok(());
        }
        *flushed_at = Some(Instant::now());
        let offset = sent.chars().count() as i64;
        let text = std::mem::take(gathered);
        sent.push_str(&text);
        match to {
            Some((conversation, seq)) => {
                feed::ephemeral(core, &Event::answer_delta(conversation, seq, offset, text))
            }
            None => Ok(()),
        }
    };
    loop {
        tokio::select! {
            biased;
            moved = taken_from(core, watch.as_deref_mut(), to) => {
                moved?;
                let usage = completion.usage();
                return Ok((Reply::Abandoned, usage, completion.first_token_after(), written_chars));
            }
            () = sleep_until(typing.due), if typing.due.is_some() => typing.show()?,
            () = sleep_until(flush_at), if flush_at.is_some() => {
                flush(&mut gathered, &mut sent, &mut flushed_at)?;
                flush_at = None;
            }
            piece = completion.next() => match piece {
                Err(failure) => {
                    return Ok((Reply::Failed(failure), None, completion.first_token_after(), written_chars));
                }
                Ok(Some(text)) => {
                    typing.started();
                    written_chars += text.chars().count() as i64;
                    gathered.push_str(&citations.push(&text));
                    // What has arrived with it goes with it: a burst is one event,
                    // sent without waiting.
                    let mut ended = false;
                    while let Some(next) = completion.next().now_or_never() {
                        match next {
                            Ok(Some(text)) => {
                                written_chars += text.chars().count() as i64;
                                gathered.push_str(&citations.push(&text));
                            }
                            Ok(None) => {
                                ended = true;
                                break;
                            }
                            Err(failure) => {
                                return Ok((Reply::Failed(failure), None, completion.first_token_after(), written_chars));
                            }
                        }
                    }
                    if ended {
                        break;
                    }
                    let due = flushed_at.map(|at| at + DELTA_EVERY);
                    if due.is_none_or(|due| due <= Instant::now())
                        || gathered.chars().count() >= DELTA_CHARS
                    {
                        flush(&mut gathered, &mut sent, &mut flushed_at)?;
                        flush_at = None;
                    } else if !gathered.is_empty() && flush_at.is_none() {
                        flush_at = due;
                    }
                }
                Ok(None) => break,
            },
        }
    }
    gathered.push_str(&citations.finish());
    flush(&mut gathered, &mut sent, &mut flushed_at)?;
    let sources: Vec<Source> = citations
        .cited()
        .iter()
        .map(|i| grounding[*i].source.clone())
        .collect();
    let usage = completion.usage();
    let first = completion.first_token_after();
    let handoff = completion
        .tool_calls()
        .into_iter()
        .find(|call| call.name == HANDOFF_TOOL);
    let reply = match handoff {
        Some(call) => Reply::Handoff {
            text: sent,
            sources,
            reason: reason(&call.arguments),
        },
        None if sent.trim().is_empty() => {
            Reply::Failed(Failure::Malformed("an empty answer".to_owned()))
        }
        None => {
            let confidence = sources.iter().map(|s| s.score).fold(0.0, f64::max);
            Reply::Answered {
                body: sent,
                sources,
                confidence,
            }
        }
    };
    Ok((reply, usage, first, written_chars))
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The `reason` of a `handoff_to_human` call (as the model wrote it, trimmed).
fn reason(arguments: &str) -> String {
    serde_json::from_str::<serde_json::Value>(arguments)
        .ok()
        .and_then(|args| {
            args.get("reason")?
                .as_str()
                .map(str::trim)
                .map(str::to_owned)
        })
        .filter(|reason| !reason.is_empty())
        .map(|reason| reason.chars().take(500).collect())
        .unwrap_or_else(|| "the AI asked for a person".to_owned())
}

/// [`taken`], when the answer goes to a conversation; otherwise never.
async fn taken_from(
    core: &Core,
    watch: Option<&mut Subscription>,
    to: Option<(&conversation::Model, i64)>,
) -> AppResult<()> {
    match (watch, to) {
        (Some(watch), Some((conversation, seq))) => taken(core, watch, &conversation.id, seq).await,
        _ => std::future::pending().await,
    }
}

/// Wait until a person takes the conversation (its status leaves `AI`) or the
/// visitor writes again after `seq`; never returns otherwise.
async fn taken(
    core: &Core,
    watch: &mut Subscription,
    conversation_id: &str,
    seq: i64,
) -> AppResult<()> {
    loop {
        let record = match watch.recv().await {
            Ok(record) => record,
            // Missed events: the database says where things are.
            Err(RecvError::Lagged(_)) => {
                if moved_on(core, conversation_id, seq).await? {
                    return Ok(());
                }
                continue;
            }
            Err(RecvError::Closed) => return std::future::pending().await,
        };
        let Some(event) = feed::decode(&record) else {
            continue;
        };
        let moved = match &event.kind {
            EventKind::MessageCreated { message, .. } => {
                message.author == Author::Visitor && message.seq > seq
            }
            EventKind::ConversationChanged { conversation, .. }
            | EventKind::HandoffChanged { conversation, .. } => {
                conversation.status != ConversationStatus::Ai
            }
            _ => false,
        };
        if moved {
            return Ok(());
        }
    }
}

/// Whether the conversation left the AI, or the visitor wrote after `seq`, as the
/// database has it now.
async fn moved_on(core: &Core, conversation_id: &str, seq: i64) -> AppResult<bool> {
    let row = core
        .db
        .reader
        .query_one_raw(stmt(
            core.db.backend(),
            "SELECT c.status AS status, \
             (SELECT MAX(m.seq) FROM messages m WHERE m.conversation_id = c.id AND m.author = 'VISITOR') AS last_visitor \
             FROM conversations c WHERE c.id = ?",
            vec![conversation_id.into()],
        ))
        .await?;
    let Some(row) = row else {
        return Ok(true);
    };
    let status: String = row.try_get("", "status")?;
    let last_visitor: Option<i64> = row.try_get("", "last_visitor")?;
    Ok(status != "AI" || last_visitor.is_some_and(|last| last > seq))
}

/// Keep the request's outcome and cost, for the daily limit and insights: in
/// `db`, the transaction that stores the answer when there is one.
pub async fn record(
    db: &impl ConnectionTrait,
    conversation: &conversation::Model,
    message: &message::Model,
    outcome: &Outcome,
    stored: ModelOutcome,
) -> AppResult<()> {
    let failure = match &outcome.reply {
        Reply::Failed(failure) => Some(failure.to_string()),
        _ => None,
    };
    model_call::ActiveModel {
        id: Set(new_id(Kind::ModelCall)),
        workspace_id: Set(conversation.workspace_id.clone()),
        conversation_id: Set(conversation.id.clone()),
        message_id: Set(message.id.clone()),
        outcome: Set(stored),
        failure: Set(failure),
        prompt_tokens: Set(outcome.usage.prompt_tokens),
        completion_tokens: Set(outcome.usage.completion_tokens),
        estimated: Set(outcome.estimated),
        first_token_ms: Set(outcome.first_token_ms),
        created_at: Set(now_ms()),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The model tokens `workspace_id` used since midnight UTC.
pub async fn tokens_today(core: &Core, workspace_id: &str) -> AppResult<i64> {
    let midnight = chrono::Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_millis())
        .unwrap_or(0);
    let row = core
        .db
        .reader
        .query_one_raw(stmt(
            core.db.backend(),
            "SELECT CAST(COALESCE(SUM(prompt_tokens + completion_tokens), 0) AS BIGINT) AS tokens \
             FROM model_calls WHERE workspace_id = ? AND created_at >= ?",
            vec![workspace_id.into(), midnight.into()],
        ))
        .await?;
    Ok(match row {
        Some(row) => row.try_get::<i64>("", "tokens")?,
        None => 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handoff_reason_is_the_models_or_a_plain_default() {
        assert_eq!(
            reason(r#"{"reason": " billing dispute "}"#),
            "billing dispute"
        );
        assert_eq!(reason("{\"reason\": \"\"}"), "the AI asked for a person");
        assert_eq!(reason("not json"), "the AI asked for a person");
    }

    #[test]
    fn usage_is_estimated_at_four_characters_a_token() {
        assert_eq!(estimate(0), 0);
        assert_eq!(estimate(1), 1);
        assert_eq!(estimate(400), 100);
    }
}
