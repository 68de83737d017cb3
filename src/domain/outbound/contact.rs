//! A person's data, for an access request (GDPR art. 15, portability art. 20):
//! everything stored about one lead as one JSON document. The lead with its custom
//! fields (labelled), and each of its conversations with what the visitor could
//! see of it: the messages that are not internal notes (with the name of the agent
//! who wrote each), the rating, the visitor's feedback on AI answers, and the
//! handoffs' visitor-facing parts (when and why it went to a person, when a person
//! took it and when it ended; never the team's notes or who accepted it).

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use std::net::IpAddr;

use crate::auth::Principal;
use crate::domain::Core;
use crate::domain::tenancy::audit::{self, Act, By};
use crate::entity::audit_entry::AuditAction;
use crate::entity::{
    agent, answer_feedback, conversation, handoff, lead, lead_field, message, rating,
};
use crate::error::{AppError, AppResult};

/// The document's format, for whoever reads it later.
pub const FORMAT: &str = "casefile.contact.v1";

fn at(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Everything stored about lead `lead_id` of `principal`'s workspace, for an owner
/// or admin or a key with `LEADS_READ` and `CONVERSATIONS_READ`, at `address`;
/// recorded in the audit log before it is handed over.
pub async fn export(
    core: &Core,
    principal: &Principal,
    address: IpAddr,
    lead_id: &str,
) -> AppResult<Value> {
    principal.exports_contacts()?;
    let workspace_id = principal.workspace_id();
    let db = &core.db.reader;
    let lead = lead::Entity::find_by_id(lead_id)
        .filter(lead::Column::WorkspaceId.eq(workspace_id))
        .one(db)
        .await?
        .ok_or(AppError::NotFound("lead"))?;
    let definitions = lead_field::Entity::find()
        .filter(lead_field::Column::WorkspaceId.eq(workspace_id))
        .all(db)
        .await?;
    let fields: serde_json::Map<String, Value> = lead
        .fields()?
        .into_iter()
        .map(|(key, value)| {
            let label = definitions
                .iter()
                .find(|d| d.key == key)
                .map_or_else(|| key.clone(), |d| d.label.clone());
            (key, json!({ "label": label, "value": value }))
        })
        .collect();
    let conversations = conversation::Entity::find()
        .filter(conversation::Column::WorkspaceId.eq(workspace_id))
        .filter(conversation::Column::LeadId.eq(lead_id))
        .order_by_asc(conversation::Column::CreatedAt)
        .all(db)
        .await?;
    let ids: Vec<&str> = conversations.iter().map(|c| c.id.as_str()).collect();
    let messages = message::Entity::find()
        .filter(message::Column::ConversationId.is_in(ids.clone()))
        .filter(message::Column::Internal.eq(false))
        .order_by_asc(message::Column::Seq)
        .all(db)
        .await?;
    let agent_ids: Vec<&str> = messages
        .iter()
        .filter_map(|m| m.agent_id.as_deref())
        .collect();
    let agents = agent::Entity::find()
        .filter(agent::Column::Id.is_in(agent_ids))
        .all(db)
        .await?;
    let ratings = rating::Entity::find()
        .filter(rating::Column::ConversationId.is_in(ids.clone()))
        .all(db)
        .await?;
    let feedback = answer_feedback::Entity::find()
        .filter(answer_feedback::Column::ConversationId.is_in(ids.clone()))
        .order_by_asc(answer_feedback::Column::CreatedAt)
        .all(db)
        .await?;
    let handoffs = handoff::Entity::find()
        .filter(handoff::Column::ConversationId.is_in(ids))
        .order_by_asc(handoff::Column::RequestedAt)
        .all(db)
        .await?;
    let conversations = conversations
        .iter()
        .map(|c| -> AppResult<Value> {
            let seq_of = |message_id: &str| {
                messages
                    .iter()
                    .find(|m| m.id == message_id)
                    .map(|m| m.seq)
            };
            Ok(json!({
                "id": c.id,
                "status": c.status,
                "startedAt": at(c.created_at),
                "resolvedAt": c.resolved_at.map(at),
                "context": c.context()?,
                "messages": messages.iter().filter(|m| m.conversation_id == c.id).map(|m| json!({
                    "seq": m.seq,
                    "author": m.author,
                    "agent": m.agent_id.as_ref().and_then(|id| agents.iter().find(|a| &a.id == id)).map(|a| &a.name),
                    "body": m.body,
                    "sentAt": at(m.created_at),
                })).collect::<Vec<_>>(),
                "rating": ratings.iter().find(|r| r.conversation_id == c.id).map(|r| json!({
                    "score": r.score,
                    "comment": r.comment,
                    "ratedAt": at(r.created_at),
                })),
                "answerFeedback": feedback.iter().filter(|f| f.conversation_id == c.id).map(|f| json!({
                    "messageSeq": seq_of(&f.message_id),
                    "helpful": f.helpful,
                    "comment": f.comment,
                    "givenAt": at(f.created_at),
                })).collect::<Vec<_>>(),
                "handoffs": handoffs.iter().filter(|h| h.conversation_id == c.id).map(|h| json!({
                    "reason": h.reason,
                    "status": h.status,
                    "requestedAt": at(h.requested_at),
                    "acceptedAt": h.accepted_at.map(at),
                    "resolvedAt": h.resolved_at.map(at),
                    "cancelledAt": h.cancelled_at.map(at),
                })).collect::<Vec<_>>(),
            }))
        })
        .collect::<AppResult<Vec<Value>>>()?;
    audit::record(
        &core.db.writer,
        &By::principal(principal, address),
        Act::on(AuditAction::ContactExported, "Lead", lead_id),
    )
    .await?;
    Ok(json!({
        "format": FORMAT,
        "exportedAt": at(crate::entity::now_ms()),
        "lead": {
            "id": lead.id,
            "name": lead.name,
            "email": lead.email,
            "company": lead.company,
            "verified": lead.verified,
            "visitorId": lead.visitor_id,
            "createdAt": at(lead.created_at),
            "updatedAt": at(lead.updated_at),
            "fields": fields,
        },
        "conversations": conversations,
    }))
}
