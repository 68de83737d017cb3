use sea_orm::entity::prelude::*;

#[derive(
    Clone, Debug, Default, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize,
)]
#[sea_orm(table_name = "conversations")]
/// Decoded with defaults for the columns a read left out: an inbox page reads only
/// what its document selects (`chat::lists`).
#[serde(default)]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub workspace_id: String,
    pub lead_id: Option<String>,
    pub visitor_id: String,
    pub status: super::ConversationStatus,
    pub assignee_id: Option<String>,
    pub team_id: Option<String>,
    /// JSON object: page URL, CMS version, anything the widget sent.
    pub context: String,
    /// The `seq` of the newest message; the next message gets `last_seq + 1`.
    pub last_seq: i64,
    /// Messages with `seq` up to this one are outside the AI's current context
    /// (set when a conversation is returned to the AI or resolved).
    pub ai_boundary_seq: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Who resolved the conversation; `None` while it is open (a visitor message
    /// reopens it).
    #[serde(default)]
    pub resolved_by: Option<super::ResolvedBy>,
    #[serde(default)]
    pub resolved_at: Option<i64>,
    /// When its visitor's data was erased (`eraseContact`, or the workspace's
    /// retention): bodies, context and notes are gone, the counts stay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased_at: Option<i64>,
}

impl Model {
    /// What the widget sent about where the visitor is.
    pub fn context(&self) -> crate::error::AppResult<serde_json::Map<String, serde_json::Value>> {
        super::decode("conversations", "context", &self.id, &self.context)
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
