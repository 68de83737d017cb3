//! Re-running the tagging rules over stored conversations after the rules change.
//!
//! A job walks the workspace's conversations updated since a time, in id order and
//! batches, recording its position after each batch, so it never holds the writer
//! for long and a restarted server resumes it where it stopped. For each
//! conversation it applies the `AUTO` tags whose rules now match (its visitor
//! messages, and the articles its AI answers cite) and removes the `AUTO` tags whose
//! rules no longer match; agents' tags and agents' removals are left alone.

use std::collections::HashMap;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};

use crate::domain::Core;
use crate::domain::core::feed::{self, Change, Event};
use crate::entity::{
    Author, TagSource, conversation, conversation_tag, insight_tag, message, now_ms, retag_job,
};
use crate::error::{AppError, AppResult};
use crate::ids::{Kind, new_id};

use super::tagger;

/// Conversations per batch.
const BATCH: u64 = 100;

/// Start a job over the conversations updated at or after `since`.
pub async fn start(core: &Core, workspace_id: &str, since: i64) -> AppResult<retag_job::Model> {
    let total = conversation::Entity::find()
        .filter(conversation::Column::WorkspaceId.eq(workspace_id))
        .filter(conversation::Column::UpdatedAt.gte(since))
        .count(&core.db.reader)
        .await?;
    let job = retag_job::ActiveModel {
        id: Set(new_id(Kind::Job)),
        workspace_id: Set(workspace_id.to_owned()),
        since: Set(since),
        cursor: Set(None),
        processed: Set(0),
        tagged: Set(0),
        untagged: Set(0),
        total: Set(total as i64),
        status: Set("RUNNING".to_owned()),
        created_at: Set(now_ms()),
        finished_at: Set(None),
    }
    .insert(&core.db.writer)
    .await?;
    spawn(core, job.clone());
    Ok(job)
}

/// Resume the jobs a previous run of the server left unfinished.
pub async fn resume(core: &Core) -> AppResult<()> {
    let unfinished = retag_job::Entity::find()
        .filter(retag_job::Column::Status.eq("RUNNING"))
        .all(&core.db.writer)
        .await?;
    for job in unfinished {
        spawn(core, job);
    }
    Ok(())
}

pub async fn get(core: &Core, workspace_id: &str, id: &str) -> AppResult<retag_job::Model> {
    retag_job::Entity::find_by_id(id)
        .filter(retag_job::Column::WorkspaceId.eq(workspace_id))
        .one(&core.db.writer)
        .await?
        .ok_or(AppError::NotFound("retag job"))
}

fn spawn(core: &Core, job: retag_job::Model) {
    let core = core.clone();
    let tracker = core.tasks.clone();
    tracker.spawn(async move {
        let id = job.id.clone();
        if let Err(err) = run(&core, job).await {
            tracing::error!(job.id = %id, error.detail = %err.detail(), "retagging failed");
            let failed = retag_job::ActiveModel {
                id: Set(id),
                status: Set("FAILED".to_owned()),
                finished_at: Set(Some(now_ms())),
                ..Default::default()
            };
            let _ = failed.update(&core.db.writer).await;
        }
    });
}

async fn run(core: &Core, mut job: retag_job::Model) -> AppResult<()> {
    let tags = super::tags::list(core, &job.workspace_id).await?;
    loop {
        if core.shutdown.is_cancelled() {
            return Ok(());
        }
        let mut select = conversation::Entity::find()
            .filter(conversation::Column::WorkspaceId.eq(job.workspace_id.as_str()))
            .filter(conversation::Column::UpdatedAt.gte(job.since));
        if let Some(cursor) = &job.cursor {
            select = select.filter(conversation::Column::Id.gt(cursor.as_str()));
        }
        let batch = select
            .order_by_asc(conversation::Column::Id)
            .limit(BATCH)
            .all(&core.db.reader)
            .await?;
        let Some(last) = batch.last().map(|c| c.id.clone()) else {
            break;
        };
        for conversation in &batch {
            let (tagged, untagged) = retag_one(core, &tags, conversation).await?;
            job.tagged += tagged;
            job.untagged += untagged;
        }
        job.processed += batch.len() as i64;
        job.cursor = Some(last);
        let mut active: retag_job::ActiveModel = job.clone().into();
        active.cursor = Set(job.cursor.clone());
        active.processed = Set(job.processed);
        active.tagged = Set(job.tagged);
        active.untagged = Set(job.untagged);
        active.update(&core.db.writer).await?;
        // Let requests at the writer between batches.
        tokio::task::yield_now().await;
    }
    let mut active: retag_job::ActiveModel = job.into();
    active.status = Set("DONE".to_owned());
    active.finished_at = Set(Some(now_ms()));
    active.update(&core.db.writer).await?;
    Ok(())
}

/// Retag one conversation; how many tags were applied and removed.
async fn retag_one(
    core: &Core,
    tags: &[insight_tag::Model],
    conversation: &conversation::Model,
) -> AppResult<(i64, i64)> {
    let messages = message::Entity::find()
        .filter(message::Column::ConversationId.eq(conversation.id.as_str()))
        .filter(message::Column::Author.is_in([Author::Visitor, Author::Ai]))
        .order_by_asc(message::Column::Seq)
        .all(&core.db.reader)
        .await?;
    // What the rules say now: the first evidence for each tag.
    let mut wanted: HashMap<&str, (String, f64, String)> = HashMap::new();
    for message in &messages {
        for tag in tags {
            if wanted.contains_key(tag.id.as_str()) {
                continue;
            }
            let found = match message.author {
                Author::Visitor => tagger::matches(tag, &message.body)?
                    .map(|m| (m.evidence.join(", "), m.confidence)),
                _ => tagger::cites_covered_article(tag, &message.sources()?)?,
            };
            if let Some((evidence, confidence)) = found {
                wanted.insert(&tag.id, (evidence, confidence, message.id.clone()));
            }
        }
    }
    let existing = conversation_tag::Entity::find()
        .filter(conversation_tag::Column::ConversationId.eq(conversation.id.as_str()))
        .all(&core.db.writer)
        .await?;
    let mut untagged = 0;
    for row in existing
        .iter()
        .filter(|r| r.source == TagSource::Auto && r.removed_at.is_none())
    {
        if !wanted.contains_key(row.tag_id.as_str()) {
            let txn = core.db.writer.begin().await?;
            conversation_tag::Entity::delete_many()
                .filter(conversation_tag::Column::ConversationId.eq(conversation.id.as_str()))
                .filter(conversation_tag::Column::TagId.eq(row.tag_id.as_str()))
                .filter(conversation_tag::Column::Source.eq(TagSource::Auto))
                .exec(&txn)
                .await?;
            let untag = Event::conversation_changed(
                conversation.clone(),
                Change::Untagged {
                    tag_id: row.tag_id.clone(),
                },
            );
            feed::commit(core, txn, &[untag]).await?;
            untagged += 1;
        }
    }
    let mut tagged = 0;
    for (tag_id, (evidence, confidence, message_id)) in wanted {
        if existing.iter().any(|r| r.tag_id == tag_id) {
            continue;
        }
        if tagger::apply(
            core,
            conversation,
            tag_id,
            &evidence,
            confidence,
            Some(&message_id),
        )
        .await?
        {
            tagged += 1;
        }
    }
    Ok((tagged, untagged))
}
