//! Erasing a person's data (GDPR art. 17): `eraseContact` for one lead, and the
//! workspace's retention for conversations resolved long ago.
//!
//! One transaction empties what could lead back to the person: the lead's details,
//! custom field values and identity binding (its visitor id, its verification);
//! in each of its conversations every message body (agents' and the AI's too,
//! since they quote the visitor) becomes [`ERASED`], the widget's context, the
//! rating's and the answers' feedback comments, agents' flags on answers, handoff
//! notes and the evidence of tags go, and the visitor id becomes one tied to no
//! one (a visitor token issued before no longer finds its lead). The event log's
//! payloads of those conversations are rewritten the same way, so `events`,
//! resumed subscriptions and webhook deliveries still pending read the erased
//! text. The rows stay, so what insights count (conversations, statuses, tags,
//! handoffs and their times, ratings' scores) still adds up, with no way back to
//! the person. The erasure is itself an event, `CONTACT_ERASED`, with ids only.

use std::net::IpAddr;

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait, Value,
};

use crate::auth::Principal;
use crate::db::stmt;
use crate::domain::Core;
use crate::domain::core::feed::{self, ERASED_VISITOR, Event, EventKind};
use crate::domain::tenancy::audit::{self, Act, By};
use crate::entity::audit_entry::AuditAction;
use crate::entity::{ConversationStatus, conversation, lead, now_ms, workspace};
use crate::error::{AppError, AppResult};

/// What an erased message reads.
pub const ERASED: &str = "[erased]";

/// Conversations erased per statement (and per retention transaction).
const CHUNK: usize = 200;

/// What `eraseContact` erased.
pub struct Erased {
    pub lead: lead::Model,
    pub conversations: usize,
    pub messages: u64,
}

/// Erase the lead `lead_id` and every conversation of its visitor, for an owner
/// or admin at `address`.
pub async fn erase_contact(
    core: &Core,
    principal: &Principal,
    address: IpAddr,
    lead_id: &str,
) -> AppResult<Erased> {
    let admin = principal.admin()?;
    let workspace_id = admin.workspace_id.as_str();
    let txn = core.db.writer.begin().await?;
    let found = lead::Entity::find_by_id(lead_id)
        .filter(lead::Column::WorkspaceId.eq(workspace_id))
        .one(&txn)
        .await?
        .ok_or(AppError::NotFound("lead"))?;
    let mut theirs = Condition::any().add(conversation::Column::LeadId.eq(lead_id));
    if let Some(visitor) = &found.visitor_id {
        theirs = theirs.add(conversation::Column::VisitorId.eq(visitor.as_str()));
    }
    let ids: Vec<String> = conversation::Entity::find()
        .select_only()
        .column(conversation::Column::Id)
        .filter(conversation::Column::WorkspaceId.eq(workspace_id))
        .filter(theirs)
        .order_by_asc(conversation::Column::Id)
        .into_tuple()
        .all(&txn)
        .await?;
    let now = now_ms();
    let messages = erase_conversations(&txn, &ids, now).await?;
    erase_leads(&txn, &[lead_id.to_owned()], now).await?;
    audit::record(
        &txn,
        &By::agent(admin, address),
        Act::on(AuditAction::ContactErased, "Lead", lead_id),
    )
    .await?;
    let conversations = ids.len();
    feed::commit(
        core,
        txn,
        &[Event::contact_erased(workspace_id, lead_id, ids)],
    )
    .await?;
    let lead = lead::Entity::find_by_id(lead_id)
        .one(&core.db.writer)
        .await?
        .ok_or(AppError::NotFound("lead"))?;
    tracing::info!(lead = %lead_id, conversations, messages, "erased a contact");
    Ok(Erased {
        lead,
        conversations,
        messages,
    })
}

/// Empty the conversations `ids` as of `at`; how many messages they held.
async fn erase_conversations(txn: &DatabaseTransaction, ids: &[String], at: i64) -> AppResult<u64> {
    let backend = txn.get_database_backend();
    let mut messages = 0;
    for chunk in ids.chunks(CHUNK) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let these = || chunk.iter().map(|id| Value::from(id.as_str()));
        let run = |sql: String, before: Vec<Value>| {
            let mut values = before;
            values.extend(these());
            stmt(backend, &sql, values)
        };
        messages += txn
            .execute_raw(run(
                format!(
                    "UPDATE messages SET body = ?, client_message_id = NULL \
                     WHERE conversation_id IN ({marks})"
                ),
                vec![ERASED.into()],
            ))
            .await?
            .rows_affected();
        for (sql, before) in [
            (
                format!(
                    "UPDATE conversations SET context = '{{}}', visitor_id = ? || id, \
                     erased_at = ? WHERE id IN ({marks})"
                ),
                vec![ERASED_VISITOR.into(), at.into()],
            ),
            (
                format!(
                    "UPDATE conversation_ratings SET comment = NULL WHERE conversation_id IN ({marks})"
                ),
                vec![],
            ),
            (
                format!(
                    "UPDATE answer_feedback SET comment = NULL WHERE conversation_id IN ({marks})"
                ),
                vec![],
            ),
            (
                format!("UPDATE answer_flags SET reason = ? WHERE conversation_id IN ({marks})"),
                vec![ERASED.into()],
            ),
            (
                format!("UPDATE handoffs SET note = NULL WHERE conversation_id IN ({marks})"),
                vec![],
            ),
            (
                format!(
                    "UPDATE conversation_tags SET evidence = NULL WHERE conversation_id IN ({marks})"
                ),
                vec![],
            ),
        ] {
            txn.execute_raw(run(sql, before)).await?;
        }
        erase_events(txn, chunk, &marks, at).await?;
    }
    Ok(messages)
}

/// Rewrite the logged events of the conversations `chunk` (`marks` their
/// placeholders) as they read once erased.
async fn erase_events(
    txn: &DatabaseTransaction,
    chunk: &[String],
    marks: &str,
    at: i64,
) -> AppResult<()> {
    let backend = txn.get_database_backend();
    let rows = txn
        .query_all_raw(stmt(
            backend,
            &format!("SELECT pos, payload FROM events WHERE conversation_id IN ({marks})"),
            chunk.iter().map(|id| Value::from(id.as_str())).collect(),
        ))
        .await?;
    for row in rows {
        let pos: i64 = row.try_get("", "pos")?;
        let payload: String = row.try_get("", "payload")?;
        // An event this build cannot read is not shown to anyone; it goes whole.
        let erased = match serde_json::from_str::<EventKind>(&payload) {
            Ok(mut kind) => {
                kind.erase(at, ERASED);
                serde_json::to_string(&kind)?
            }
            Err(_) => "{}".to_owned(),
        };
        txn.execute_raw(stmt(
            backend,
            "UPDATE events SET payload = ? WHERE pos = ?",
            vec![erased.into(), pos.into()],
        ))
        .await?;
    }
    Ok(())
}

/// Empty the leads `ids` as of `at`.
async fn erase_leads(txn: &DatabaseTransaction, ids: &[String], at: i64) -> AppResult<()> {
    for chunk in ids.chunks(CHUNK) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let mut values: Vec<Value> = vec![false.into(), at.into(), at.into()];
        values.extend(chunk.iter().map(|id| Value::from(id.as_str())));
        txn.execute_raw(stmt(
            txn.get_database_backend(),
            &format!(
                "UPDATE leads SET visitor_id = NULL, name = NULL, email = NULL, company = NULL, \
                 fields = '{{}}', verified = ?, erased_at = ?, updated_at = ? WHERE id IN ({marks})"
            ),
            values,
        ))
        .await?;
    }
    Ok(())
}

/// Erase, from this process until shutdown, the conversations resolved longer ago
/// than their workspace's `retentionDays` (looked for every `--sweep-every`).
pub fn start_retention(core: &Core) {
    let every = core
        .config
        .sweep_every
        .max(std::time::Duration::from_millis(10));
    core.repeat(
        every,
        "erasing conversations past retention",
        |core| async move { retention_sweep(&core).await.map(drop) },
    );
}

/// One look at every workspace with a retention; how many conversations this
/// process erased. Each batch is one transaction; its lead goes too once none of
/// its conversations is left unerased.
pub async fn retention_sweep(core: &Core) -> AppResult<usize> {
    let workspaces = workspace::Entity::find()
        .filter(workspace::Column::RetentionDays.is_not_null())
        .all(&core.db.background)
        .await?;
    let mut erased = 0;
    for workspace in workspaces {
        let Some(days) = workspace.retention_days else {
            continue;
        };
        let cutoff = now_ms() - i64::from(days) * 86_400_000;
        let due: Vec<(String, Option<String>)> = conversation::Entity::find()
            .select_only()
            .column(conversation::Column::Id)
            .column(conversation::Column::LeadId)
            .filter(conversation::Column::WorkspaceId.eq(workspace.id.as_str()))
            .filter(conversation::Column::Status.eq(ConversationStatus::Resolved))
            .filter(conversation::Column::ResolvedAt.lt(cutoff))
            .filter(conversation::Column::ErasedAt.is_null())
            .order_by_asc(conversation::Column::ResolvedAt)
            .limit(CHUNK as u64)
            .into_tuple()
            .all(&core.db.background)
            .await?;
        if due.is_empty() {
            continue;
        }
        erased += erase_due(core, &workspace.id, &due).await?;
    }
    Ok(erased)
}

/// Erase the conversations `due` (with their leads) of `workspace_id`, in one
/// transaction that first claims those still resolved and not yet erased (a visitor
/// may have written since; another process may be sweeping too: its claim waits
/// for this one and finds nothing left): how many it erased.
async fn erase_due(
    core: &Core,
    workspace_id: &str,
    due: &[(String, Option<String>)],
) -> AppResult<usize> {
    let txn = core.db.writer.begin().await?;
    let now = now_ms();
    let marks = vec!["?"; due.len()].join(", ");
    let mut values: Vec<Value> = vec![now.into()];
    values.extend(due.iter().map(|(id, _)| Value::from(id.as_str())));
    let claimed = txn
        .query_all_raw(stmt(
            txn.get_database_backend(),
            &format!(
                "UPDATE conversations SET erased_at = ? WHERE id IN ({marks}) \
                 AND status = 'RESOLVED' AND erased_at IS NULL RETURNING id"
            ),
            values,
        ))
        .await?;
    let ids = claimed
        .iter()
        .map(|row| row.try_get::<String>("", "id"))
        .collect::<Result<Vec<_>, _>>()?;
    erase_conversations(&txn, &ids, now).await?;
    let mut leads: Vec<String> = due
        .iter()
        .filter(|(id, _)| ids.contains(id))
        .filter_map(|(_, lead)| lead.clone())
        .collect();
    leads.sort();
    leads.dedup();
    let mut gone = Vec::new();
    for lead_id in leads {
        let left = conversation::Entity::find()
            .filter(conversation::Column::LeadId.eq(lead_id.as_str()))
            .filter(conversation::Column::ErasedAt.is_null())
            .count(&txn)
            .await?;
        if left == 0 {
            gone.push(lead_id);
        }
    }
    erase_leads(&txn, &gone, now).await?;
    let by = By::server(workspace_id);
    let mut events = Vec::new();
    for id in &ids {
        audit::record(
            &txn,
            &by,
            Act::on(AuditAction::ConversationErased, "Conversation", id),
        )
        .await?;
    }
    for lead_id in &gone {
        let theirs = due
            .iter()
            .filter(|(id, lead)| lead.as_ref() == Some(lead_id) && ids.contains(id))
            .map(|(id, _)| id.clone())
            .collect();
        events.push(Event::contact_erased(workspace_id, lead_id, theirs));
    }
    feed::commit(core, txn, &events).await?;
    if !ids.is_empty() {
        tracing::info!(
            conversations = ids.len(),
            leads = gone.len(),
            "erased conversations past retention"
        );
    }
    Ok(ids.len())
}
