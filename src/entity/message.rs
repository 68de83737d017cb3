use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub workspace_id: String,
    pub conversation_id: String,
    pub seq: i64,
    pub author: super::Author,
    pub agent_id: Option<String>,
    pub body: String,
    #[serde(deserialize_with = "super::bool_or_int")]
    pub internal: bool,
    pub confidence: Option<f64>,
    /// JSON array of cited sources (`{articleId, title, url, score}`).
    pub sources: String,
    pub client_message_id: Option<String>,
    /// For AI answers: the `seq` of the visitor message answered.
    pub reply_to_seq: Option<i64>,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
