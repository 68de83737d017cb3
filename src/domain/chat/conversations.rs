//! Conversations: starting one from the widget, reading one, assigning it.

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};

use crate::auth::{AgentPrincipal, IssuedToken, Principal, VisitorPrincipal};
use crate::domain::Core;
use crate::domain::core::feed::{self, Change, Event};
use crate::entity::{ConversationStatus, conversation, message, now_ms};
use crate::error::{AppError, AppResult};
use crate::ids::{Kind, new_id, random_secret};

use super::leads::LeadInput;
use super::messages::{NewMessage, append, body_text};
use crate::domain::core::validate;

/// Largest `context` document a widget may send, in bytes.
const MAX_CONTEXT_BYTES: usize = 16 * 1024;

/// A conversation by id, if `principal` may see it; otherwise `NOT_FOUND`.
pub async fn get(core: &Core, principal: &Principal, id: &str) -> AppResult<conversation::Model> {
    principal.can_access_conversation(id)?;
    conversation::Entity::find_by_id(id)
        .filter(conversation::Column::WorkspaceId.eq(principal.workspace_id()))
        .one(&core.db.reader)
        .await?
        .ok_or(AppError::NotFound("conversation"))
}

pub struct StartInput {
    pub widget_key: String,
    pub visitor_id: Option<String>,
    /// The visitor the request proved to be (a visitor token it presented): only
    /// then does a client-sent `visitor_id` reach that visitor's lead.
    pub proof: Option<VisitorPrincipal>,
    /// An identity the site signed (see `identity`).
    pub identity_token: Option<String>,
    pub lead: LeadInput,
    pub context: Option<serde_json::Value>,
    pub message: Option<String>,
}

/// A visitor id the server makes: `vis_` and 128 random bits.
fn new_visitor_id() -> String {
    format!("vis_{}", random_secret(16))
}

pub struct Started {
    pub conversation: conversation::Model,
    pub visitor_token: IssuedToken,
    /// The visitor the token stands for.
    pub visitor: Principal,
    /// The visitor's first message, if it sent one.
    pub first: Option<message::Model>,
}

/// Open a conversation from the widget: authorised by the workspace's public widget
/// key, it links (or creates) the visitor's lead, stores the first message if any,
/// and issues a visitor token scoped to this conversation.
///
/// A visitor id is not a credential (widgets keep it in local storage, sites derive
/// it from their own user ids): a client-sent `visitor_id` is kept only when the
/// request proves it is that visitor, with a still-valid visitor token of one of its
/// conversations in this workspace. Otherwise the conversation gets a new visitor
/// id (128 random bits) and a new, empty lead, so nobody reads another visitor's
/// details by naming their id.
pub async fn start(core: &Core, input: StartInput) -> AppResult<Started> {
    let ws = crate::domain::tenancy::workspaces::by_widget_key(core, &input.widget_key).await?;
    let identity = match input.identity_token.as_deref() {
        Some(token) => Some(crate::domain::tenancy::identity::verify(
            &core.db.sealer,
            &ws,
            token,
        )?),
        None if ws.require_verified_identity => {
            return Err(AppError::Unauthenticated(
                "this workspace talks only with signed-in visitors: pass their identityToken",
            ));
        }
        None => None,
    };
    let claimed = input
        .visitor_id
        .as_deref()
        .map(|id| validate::text("visitorId", id, 128))
        .transpose()?;
    let visitor_id = match (&identity, claimed, &input.proof) {
        (Some(identity), _, _) => identity.visitor_id(),
        (None, Some(id), Some(proof)) if proof.visitor_id == id && proof.workspace_id == ws.id => {
            id
        }
        _ => new_visitor_id(),
    };
    let context = validate::json_object("context", input.context, MAX_CONTEXT_BYTES)?;
    let first = input.message.as_deref().map(body_text).transpose()?;
    let now = now_ms();

    let txn = core.db.writer.begin().await?;
    let lead = match identity {
        // What the site signed wins over what the widget says.
        Some(identity) => {
            let mut lead = input.lead;
            lead.email = identity.email.or(lead.email);
            lead.name = identity.name.or(lead.name);
            Some(super::leads::for_verified_visitor(&txn, &ws.id, &visitor_id, &lead).await?)
        }
        None => super::leads::for_visitor(&txn, &ws.id, &visitor_id, &input.lead).await?,
    };
    let mut conversation = conversation::ActiveModel {
        id: Set(new_id(Kind::Conversation)),
        workspace_id: Set(ws.id.clone()),
        lead_id: Set(lead.map(|l| l.id)),
        visitor_id: Set(visitor_id.clone()),
        status: Set(ConversationStatus::Ai),
        assignee_id: Set(None),
        team_id: Set(ws.default_team_id.clone()),
        context: Set(serde_json::to_string(&context)?),
        last_seq: Set(0),
        ai_boundary_seq: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        resolved_by: Set(None),
        resolved_at: Set(None),
        erased_at: Set(None),
    }
    .insert(&txn)
    .await?;
    let first = match first {
        Some(body) => {
            let new = NewMessage::plain(crate::entity::Author::Visitor, body);
            let appended = append(&txn, &ws.id, &conversation.id, new).await?;
            conversation = appended.conversation;
            Some(appended.message)
        }
        None => None,
    };
    let mut events = vec![Event::conversation_changed(
        conversation.clone(),
        Change::Opened,
    )];
    if let Some(message) = &first {
        events.push(Event::message_created(
            message.clone(),
            conversation.clone(),
        ));
    }
    feed::commit(core, txn, &events).await?;

    let visitor_token = core
        .tokens
        .issue_visitor(&visitor_id, &ws.id, &conversation.id)?;
    let visitor = Principal::Visitor(VisitorPrincipal {
        visitor_id,
        workspace_id: ws.id.clone(),
        conversation_id: conversation.id.clone(),
        expires_at: visitor_token.expires_at.timestamp(),
    });
    Ok(Started {
        conversation,
        visitor_token,
        visitor,
        first,
    })
}

/// Assign a conversation to an agent of the workspace (or to nobody), and optionally
/// to a team.
pub async fn assign(
    core: &Core,
    agent: &AgentPrincipal,
    conversation_id: &str,
    assignee_id: Option<&str>,
    team_id: Option<&str>,
) -> AppResult<conversation::Model> {
    let ws = &agent.workspace_id;
    let principal = Principal::Agent(agent.clone());
    let conv = get(core, &principal, conversation_id).await?;
    if let Some(id) = assignee_id {
        crate::domain::tenancy::agents::get(core, ws, id).await?;
    }
    if let Some(id) = team_id {
        crate::domain::tenancy::teams::get(core, ws, id).await?;
    }
    let mut active: conversation::ActiveModel = conv.into();
    active.assignee_id = Set(assignee_id.map(str::to_owned));
    if let Some(team) = team_id {
        active.team_id = Set(Some(team.to_owned()));
    }
    active.updated_at = Set(now_ms());
    let txn = core.db.writer.begin().await?;
    let conv = active.update(&txn).await?;
    let assigned = Event::conversation_changed(conv.clone(), Change::Assigned);
    feed::commit(core, txn, &[assigned]).await?;
    Ok(conv)
}

/// The newest message visible to a reader, for each of these conversations: one
/// query, one index lookup per conversation.
pub async fn last_messages(
    core: &Core,
    conversation_ids: &[String],
    include_internal: bool,
) -> AppResult<Vec<message::Model>> {
    let newest = if include_internal {
        "messages.seq = (SELECT c.last_seq FROM conversations c WHERE c.id = messages.conversation_id)"
    } else {
        "messages.internal = false AND messages.seq = (SELECT MAX(m2.seq) FROM messages m2 \
         WHERE m2.conversation_id = messages.conversation_id AND m2.internal = false)"
    };
    Ok(message::Entity::find()
        .filter(message::Column::ConversationId.is_in(conversation_ids.iter().cloned()))
        .filter(Expr::cust(newest))
        .all(&core.db.reader)
        .await?)
}
