//! Who wants which event: an inbox's filter, an escalations subscriber's teams and
//! tags, a webhook's teams and tags. Read for every event delivered, so a tag
//! lookup happens only when the cheaper conditions leave it open.

use crate::domain::Core;
use crate::entity::{ConversationStatus, conversation};
use crate::error::AppResult;

/// Whether the conversation `conversation_id`, routed to `team_id`, is wanted by a
/// subscriber of `team_ids` and `tag_ids`: routed to one of the teams, or carrying
/// one of the tags; everything when both are empty.
pub async fn routed_or_tagged(
    core: &Core,
    conversation_id: &str,
    team_id: Option<&str>,
    team_ids: &[String],
    tag_ids: &[String],
) -> AppResult<bool> {
    if team_ids.is_empty() && tag_ids.is_empty() {
        return Ok(true);
    }
    if team_id.is_some_and(|team| team_ids.iter().any(|t| t == team)) {
        return Ok(true);
    }
    carries_any(core, conversation_id, tag_ids).await
}

/// Whether the conversation carries any of `tag_ids` now.
pub async fn carries_any(
    core: &Core,
    conversation_id: &str,
    tag_ids: &[String],
) -> AppResult<bool> {
    if tag_ids.is_empty() {
        return Ok(false);
    }
    let applied =
        crate::domain::knowledge::tags::applied(core, &[conversation_id.to_owned()]).await?;
    Ok(applied.iter().any(|(a, _)| tag_ids.contains(&a.tag_id)))
}

/// Which conversations an inbox shows: every condition given must hold.
#[derive(Clone, Debug, Default)]
pub struct InboxFilter {
    /// Any of these statuses.
    pub statuses: Option<Vec<ConversationStatus>>,
    /// Routed to any of these teams.
    pub team_ids: Option<Vec<String>>,
    /// Carrying any of these tags.
    pub tag_ids: Option<Vec<String>>,
    pub assignee_id: Option<String>,
}

impl InboxFilter {
    /// Whether `conversation`, as it is now, shows in the inbox.
    pub async fn matches(
        &self,
        core: &Core,
        conversation: &conversation::Model,
    ) -> AppResult<bool> {
        let status = self
            .statuses
            .as_ref()
            .is_none_or(|s| s.contains(&conversation.status));
        let team = self.team_ids.as_ref().is_none_or(|teams| {
            conversation
                .team_id
                .as_ref()
                .is_some_and(|t| teams.contains(t))
        });
        let assignee = self
            .assignee_id
            .as_ref()
            .is_none_or(|a| conversation.assignee_id.as_ref() == Some(a));
        if !(status && team && assignee) {
            return Ok(false);
        }
        match &self.tag_ids {
            Some(wanted) => carries_any(core, &conversation.id, wanted).await,
            None => Ok(true),
        }
    }
}
