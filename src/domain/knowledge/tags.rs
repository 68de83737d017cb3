//! Insight tags: topics with matching rules, and the tags applied to conversations.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};

use std::collections::HashMap;
use std::sync::Arc;

use crate::auth::AgentPrincipal;
use crate::domain::Core;
use crate::domain::core::TagsById;
use crate::domain::core::feed::{self, Change, Event};
use crate::domain::tenancy::audit::{self, Act, By};
use crate::entity::audit_entry::AuditAction;
use crate::entity::{conversation, conversation_tag, insight_tag, now_ms};
use crate::error::{AppError, AppResult};
use crate::ids::{Kind, new_id};

use crate::db::is_unique_violation;
use crate::db::stmt;
use crate::domain::core::validate;

/// Most keywords a tag may have.
const MAX_KEYWORDS: usize = 100;

/// The fields of a tag; `None` leaves a stored value alone on update.
#[derive(Clone, Debug, Default)]
pub struct TagInput {
    pub slug: Option<String>,
    pub label: Option<String>,
    pub description: Option<String>,
    pub keywords: Option<Vec<String>>,
    /// `Some(None)` clears the team.
    pub team_id: Option<Option<String>>,
    pub escalate: Option<bool>,
    pub priority: Option<i32>,
    /// Regular expressions (case-insensitive) that apply the tag.
    pub patterns: Option<Vec<String>>,
    /// Knowledge articles the topic covers: an AI answer citing one applies it.
    pub article_ids: Option<Vec<String>>,
}

impl TagInput {
    /// The names of the fields it changes, as the schema spells them.
    fn fields(&self) -> Vec<&'static str> {
        audit::given(&[
            ("slug", self.slug.is_some()),
            ("label", self.label.is_some()),
            ("description", self.description.is_some()),
            ("keywords", self.keywords.is_some()),
            ("teamId", self.team_id.is_some()),
            ("escalate", self.escalate.is_some()),
            ("priority", self.priority.is_some()),
            ("patterns", self.patterns.is_some()),
            ("articleIds", self.article_ids.is_some()),
        ])
    }
}

fn keywords(values: &[String]) -> AppResult<String> {
    if values.len() > MAX_KEYWORDS {
        return Err(AppError::bad_input(
            "keywords",
            format!("at most {MAX_KEYWORDS}"),
        ));
    }
    let mut cleaned: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        let value = validate::short("keywords", value)?.to_lowercase();
        if !cleaned.contains(&value) {
            cleaned.push(value);
        }
    }
    Ok(serde_json::to_string(&cleaned)?)
}

async fn apply(
    core: &Core,
    admin: &AgentPrincipal,
    active: &mut insight_tag::ActiveModel,
    input: &TagInput,
) -> AppResult<()> {
    if let Some(slug) = &input.slug {
        active.slug = Set(validate::identifier("slug", slug)?.to_lowercase());
    }
    if let Some(label) = &input.label {
        active.label = Set(validate::short("label", label)?);
    }
    if let Some(description) = &input.description {
        let description = description.trim();
        active.description = Set(if description.is_empty() {
            String::new()
        } else {
            validate::text("description", description, 2_000)?
        });
    }
    if let Some(values) = &input.keywords {
        active.keywords = Set(keywords(values)?);
    }
    if let Some(team) = &input.team_id {
        if let Some(id) = team {
            validate::existing(
                crate::domain::tenancy::teams::get(core, &admin.workspace_id, id).await,
                "teamId",
                || format!("no team {id}"),
            )?;
        }
        active.team_id = Set(team.clone());
    }
    if let Some(patterns) = &input.patterns {
        if patterns.len() > 20 {
            return Err(AppError::bad_input("patterns", "at most 20"));
        }
        for pattern in patterns {
            regex::RegexBuilder::new(pattern)
                .size_limit(1 << 20)
                .build()
                .map_err(|err| {
                    AppError::bad_input(
                        "patterns",
                        format!("`{pattern}` is not a regular expression: {err}"),
                    )
                })?;
        }
        active.patterns = Set(serde_json::to_string(patterns)?);
    }
    if let Some(ids) = &input.article_ids {
        for id in ids {
            validate::existing(
                super::articles::get(core, &admin.workspace_id, id).await,
                "articleIds",
                || format!("no article {id}"),
            )?;
        }
        active.article_ids = Set(serde_json::to_string(ids)?);
    }
    if let Some(escalate) = input.escalate {
        active.escalate = Set(escalate);
    }
    if let Some(priority) = input.priority {
        active.priority = Set(priority);
    }
    active.updated_at = Set(now_ms());
    Ok(())
}

fn duplicate_slug(err: sea_orm::DbErr) -> AppError {
    if is_unique_violation(&err) {
        AppError::conflict("a tag with this slug already exists")
    } else {
        err.into()
    }
}

/// Create a tag (`admin` at `address`).
pub async fn create(
    core: &Core,
    admin: &AgentPrincipal,
    address: std::net::IpAddr,
    input: &TagInput,
) -> AppResult<insight_tag::Model> {
    let label = input
        .label
        .as_deref()
        .ok_or_else(|| AppError::bad_input("label", "is required"))?;
    let now = now_ms();
    let mut active = insight_tag::ActiveModel {
        id: Set(new_id(Kind::Tag)),
        workspace_id: Set(admin.workspace_id.clone()),
        slug: Set(slugify(label)),
        label: Set(String::new()),
        description: Set(String::new()),
        keywords: Set("[]".to_owned()),
        patterns: Set("[]".to_owned()),
        team_id: Set(None),
        escalate: Set(false),
        priority: Set(0),
        article_ids: Set("[]".to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
    };
    apply(core, admin, &mut active, input).await?;
    let txn = core.db.writer.begin().await?;
    let tag = active.insert(&txn).await.map_err(duplicate_slug)?;
    let act = Act::on(AuditAction::TagCreated, "InsightTag", &tag.id).changing(input.fields());
    audit::record(&txn, &By::agent(admin, address), act).await?;
    txn.commit().await?;
    core.workspace_tags.forget(&admin.workspace_id);
    Ok(tag)
}

/// Change a tag (`admin` at `address`).
pub async fn update(
    core: &Core,
    admin: &AgentPrincipal,
    address: std::net::IpAddr,
    id: &str,
    input: &TagInput,
) -> AppResult<insight_tag::Model> {
    let tag = get(core, &admin.workspace_id, id).await?;
    let mut active: insight_tag::ActiveModel = tag.into();
    apply(core, admin, &mut active, input).await?;
    let txn = core.db.writer.begin().await?;
    let tag = active.update(&txn).await.map_err(duplicate_slug)?;
    let act = Act::on(AuditAction::TagUpdated, "InsightTag", id).changing(input.fields());
    audit::record(&txn, &By::agent(admin, address), act).await?;
    txn.commit().await?;
    core.workspace_tags.forget(&admin.workspace_id);
    Ok(tag)
}

/// Delete a tag, and with it every application of it to a conversation (`admin`
/// at `address`).
pub async fn delete(
    core: &Core,
    admin: &AgentPrincipal,
    address: std::net::IpAddr,
    id: &str,
) -> AppResult<()> {
    let tag = get(core, &admin.workspace_id, id).await?;
    let txn = core.db.writer.begin().await?;
    conversation_tag::Entity::delete_many()
        .filter(conversation_tag::Column::TagId.eq(tag.id.as_str()))
        .exec(&txn)
        .await?;
    insight_tag::Entity::delete_by_id(tag.id.as_str())
        .exec(&txn)
        .await?;
    let act = Act::on(AuditAction::TagDeleted, "InsightTag", id);
    audit::record(&txn, &By::agent(admin, address), act).await?;
    txn.commit().await?;
    core.workspace_tags.forget(&admin.workspace_id);
    // Lists filtered by the tag change without an event.
    core.list_counts.changed(&admin.workspace_id);
    Ok(())
}

pub async fn get(core: &Core, workspace_id: &str, id: &str) -> AppResult<insight_tag::Model> {
    insight_tag::Entity::find_by_id(id)
        .filter(insight_tag::Column::WorkspaceId.eq(workspace_id))
        .one(&core.db.reader)
        .await?
        .ok_or(AppError::NotFound("tag"))
}

pub async fn list(core: &Core, workspace_id: &str) -> AppResult<Vec<insight_tag::Model>> {
    Ok(insight_tag::Entity::find()
        .filter(insight_tag::Column::WorkspaceId.eq(workspace_id))
        .order_by_asc(insight_tag::Column::Id)
        .all(&core.db.reader)
        .await?)
}

/// An agent tags a conversation (`source: AGENT`); re-tagging after a removal
/// restores the tag.
pub async fn tag_conversation(
    core: &Core,
    agent: &AgentPrincipal,
    conversation_id: &str,
    tag_id: &str,
) -> AppResult<conversation::Model> {
    set_by_agent(core, agent, conversation_id, tag_id, true).await
}

/// An agent removes a tag. The removal is remembered (`removed_at`), so the
/// auto-tagger does not apply the tag to this conversation again.
pub async fn untag_conversation(
    core: &Core,
    agent: &AgentPrincipal,
    conversation_id: &str,
    tag_id: &str,
) -> AppResult<conversation::Model> {
    set_by_agent(core, agent, conversation_id, tag_id, false).await
}

/// An agent's tag (or removal of it) on a conversation: the row becomes the
/// agent's, whoever applied it first.
async fn set_by_agent(
    core: &Core,
    agent: &AgentPrincipal,
    conversation_id: &str,
    tag_id: &str,
    applied: bool,
) -> AppResult<conversation::Model> {
    let ws = &agent.workspace_id;
    let principal = crate::auth::Principal::Agent(agent.clone());
    crate::domain::chat::conversations::get(core, &principal, conversation_id).await?;
    get(core, ws, tag_id).await?;
    let now = now_ms();
    let on_conflict = if applied {
        "source = 'AGENT', evidence = NULL, confidence = 1.0, message_id = NULL, \
         applied_by = excluded.applied_by, applied_at = excluded.applied_at, removed_at = NULL"
    } else {
        "source = 'AGENT', applied_by = excluded.applied_by, removed_at = excluded.removed_at"
    };
    let sql = format!(
        "INSERT INTO conversation_tags \
         (conversation_id, tag_id, workspace_id, source, evidence, confidence, message_id, applied_by, applied_at, removed_at) \
         VALUES (?, ?, ?, 'AGENT', NULL, 1.0, NULL, ?, ?, ?) \
         ON CONFLICT (conversation_id, tag_id) DO UPDATE SET {on_conflict}"
    );
    let removed_at = (!applied).then_some(now);
    let txn = core.db.writer.begin().await?;
    txn.execute_raw(stmt(
        core.db.backend(),
        &sql,
        vec![
            conversation_id.into(),
            tag_id.into(),
            ws.as_str().into(),
            agent.agent_id.as_str().into(),
            now.into(),
            removed_at.into(),
        ],
    ))
    .await?;
    let tag_id = tag_id.to_owned();
    let change = if applied {
        Change::Tagged { tag_id }
    } else {
        Change::Untagged { tag_id }
    };
    touch(core, txn, ws, conversation_id, change).await
}

/// Mark the conversation changed, store the change's event, and commit `txn`. The
/// conversation as it is then.
async fn touch(
    core: &Core,
    txn: sea_orm::DatabaseTransaction,
    workspace_id: &str,
    conversation_id: &str,
    change: Change,
) -> AppResult<conversation::Model> {
    let row = txn
        .query_one_raw(stmt(
            core.db.backend(),
            "UPDATE conversations SET updated_at = ? WHERE id = ? AND workspace_id = ? RETURNING *",
            vec![now_ms().into(), conversation_id.into(), workspace_id.into()],
        ))
        .await?
        .ok_or(AppError::NotFound("conversation"))?;
    let conversation = conversation::Model::from_query_result(&row, "")?;
    feed::commit(
        core,
        txn,
        &[Event::conversation_changed(conversation.clone(), change)],
    )
    .await?;
    Ok(conversation)
}

/// The tags of `workspace_id` by id, from `Core::workspace_tags` unless `fresh` (or not cached): a workspace has tens of tags, read whole.
async fn by_id(core: &Core, workspace_id: &str, fresh: bool) -> AppResult<TagsById> {
    if !fresh && let Some(tags) = core.workspace_tags.get(workspace_id) {
        return Ok(tags);
    }
    let tags: TagsById = Arc::new(
        list(core, workspace_id)
            .await?
            .into_iter()
            .map(|tag| (tag.id.clone(), Arc::new(tag)))
            .collect(),
    );
    core.workspace_tags
        .put(workspace_id.to_owned(), Arc::clone(&tags));
    Ok(tags)
}

/// The tags currently on these conversations, with their tags, in the order they
/// were applied: one query of `conversation_tags`, the tags themselves from the
/// workspace's cached list (read again when one is missing from it).
pub async fn applied(
    core: &Core,
    conversation_ids: &[String],
) -> AppResult<Vec<(conversation_tag::Model, Arc<insight_tag::Model>)>> {
    let select = conversation_tag::Entity::find()
        .filter(conversation_tag::Column::ConversationId.is_in(conversation_ids.iter().cloned()))
        .filter(conversation_tag::Column::RemovedAt.is_null());
    let rows = crate::db::json_models(&core.db.reader, select).await?;
    with_tags(core, rows).await
}

/// Applications of tags, each with its tag, in the order they were applied (those
/// whose tag was deleted meanwhile left out).
pub async fn with_tags(
    core: &Core,
    mut rows: Vec<conversation_tag::Model>,
) -> AppResult<Vec<(conversation_tag::Model, Arc<insight_tag::Model>)>> {
    rows.sort_by_key(|row| row.applied_at);
    let mut out = Vec::with_capacity(rows.len());
    // By workspace (one, in practice).
    let mut lists: HashMap<String, TagsById> = HashMap::new();
    for row in rows {
        let tags = match lists.get(&row.workspace_id) {
            Some(tags) => Arc::clone(tags),
            None => by_id(core, &row.workspace_id, false).await?,
        };
        let tag = match tags.get(&row.tag_id) {
            Some(tag) => Arc::clone(tag),
            // Made since the list was read (by another process): read it again.
            None => {
                let fresh = by_id(core, &row.workspace_id, true).await?;
                let tag = fresh.get(&row.tag_id).cloned();
                lists.insert(row.workspace_id.clone(), fresh);
                match tag {
                    Some(tag) => tag,
                    // Deleted meanwhile.
                    None => continue,
                }
            }
        };
        lists
            .entry(row.workspace_id.clone())
            .or_insert_with(|| Arc::clone(&tags));
        out.push((row, tag));
    }
    Ok(out)
}

/// A slug from a label: lower-case words joined by `-`.
pub fn slugify(label: &str) -> String {
    let mut slug = String::new();
    for word in label
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !slug.is_empty() {
            slug.push('-');
        }
        slug.push_str(&word.to_ascii_lowercase());
    }
    if slug.is_empty() || !slug.starts_with(|c: char| c.is_ascii_alphabetic()) {
        slug.insert_str(0, "tag-");
    }
    slug.truncate(64);
    slug
}

#[cfg(test)]
mod tests {
    use super::slugify;

    #[test]
    fn slugs_are_made_from_labels() {
        assert_eq!(slugify("Media library uploads"), "media-library-uploads");
        assert_eq!(slugify("2FA & login"), "tag-2fa-login");
    }
}
