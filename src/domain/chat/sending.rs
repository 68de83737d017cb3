//! Storing what principals send: each send waits for the writer (see
//! `core::writer`), batched with others on SQLite, and is stored with its events.

use futures_util::future::BoxFuture;
use sea_orm::DatabaseTransaction;
use tokio::sync::oneshot;

use super::messages::{Appended, NewMessage, append};
use crate::domain::Core;
use crate::domain::core::feed::{Change, Event};
use crate::domain::core::writer::Batched;
use crate::entity::ConversationStatus;
use crate::error::{AppError, AppResult};

/// A send, ready for the writer.
#[derive(Clone)]
struct Job {
    workspace_id: String,
    conversation_id: String,
    /// The conversation's status before: a change is an event too.
    before: ConversationStatus,
    new: NewMessage,
}

/// A send waiting for the writer (see `core::writer`), and what it stored once it
/// did.
struct Send {
    job: Job,
    appended: Option<Appended>,
    reply: oneshot::Sender<AppResult<Appended>>,
}

impl Batched for Send {
    fn write<'a>(
        &'a mut self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, AppResult<Option<Vec<Event>>>> {
        Box::pin(async move {
            let Job {
                workspace_id,
                conversation_id,
                before,
                new,
            } = self.job.clone();
            let appended = append(txn, &workspace_id, &conversation_id, new).await?;
            // A retry found its message already stored: nothing new is kept (the
            // `last_seq` bump is rolled back).
            let events = appended.created.then(|| events_of(before, &appended));
            self.appended = Some(appended);
            Ok(events)
        })
    }

    fn answer(self: Box<Self>, result: AppResult<()>) {
        let Send {
            appended, reply, ..
        } = *self;
        let answer = result.and_then(|()| {
            appended.ok_or_else(|| AppError::internal("a send was answered before it was written"))
        });
        let _ = reply.send(answer);
    }
}

/// Store a send with the writer, and its events with it.
async fn write(core: &Core, job: Job) -> AppResult<Appended> {
    let (reply, answer) = oneshot::channel();
    let send = Send {
        job,
        appended: None,
        reply,
    };
    core.write_batched(Box::new(send)).await?;
    answer
        .await
        .map_err(|_| AppError::Internal("the message writer stopped".to_owned()))?
}

/// The events of a stored send: its message, and its conversation's change of
/// status if it made one.
fn events_of(before: ConversationStatus, appended: &Appended) -> Vec<Event> {
    let mut events = Vec::with_capacity(2);
    if before != appended.conversation.status {
        events.push(Event::conversation_changed(
            appended.conversation.clone(),
            Change::Status,
        ));
    }
    events.push(Event::message_created(
        appended.message.clone(),
        appended.conversation.clone(),
    ));
    events
}

/// Store `new` in `conversation` (as read by the sender just before, so that a
/// change of its status is an event too), with the writer. A retry with the same
/// `clientMessageId` returns the first message (`created: false`) and stores
/// nothing.
pub async fn store(
    core: &Core,
    conversation: &crate::entity::conversation::Model,
    new: NewMessage,
) -> AppResult<Appended> {
    let job = Job {
        workspace_id: conversation.workspace_id.clone(),
        conversation_id: conversation.id.clone(),
        before: conversation.status,
        new,
    };
    write(core, job).await
}
