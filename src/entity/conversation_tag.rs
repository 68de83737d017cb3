use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, Default, PartialEq, DeriveEntityModel, serde::Deserialize)]
#[sea_orm(table_name = "conversation_tags")]
/// Decoded with defaults for the columns a read left out: an inbox page reads only
/// what its document selects (`chat::lists`).
#[serde(default)]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub conversation_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub tag_id: String,
    pub workspace_id: String,
    pub source: super::TagSource,
    /// The words or article that matched (AUTO), or the agent's note (AGENT).
    pub evidence: Option<String>,
    pub confidence: f64,
    pub message_id: Option<String>,
    pub applied_by: Option<String>,
    pub applied_at: i64,
    /// Set when an agent removed the tag; the auto-tagger does not re-apply it.
    pub removed_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::insight_tag::Entity",
        from = "Column::TagId",
        to = "super::insight_tag::Column::Id"
    )]
    Tag,
}

impl Related<super::insight_tag::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tag.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
