use sea_orm::entity::prelude::*;

#[derive(
    Clone, Debug, Default, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize,
)]
#[sea_orm(table_name = "messages")]
/// Decoded with defaults for the columns a read left out: an inbox page reads only
/// what its document selects (`chat::lists`).
#[serde(default)]
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

impl Model {
    /// The articles an AI answer cites.
    pub fn sources(&self) -> crate::error::AppResult<Vec<Source>> {
        decode_sources(&self.id, &self.sources)
    }
}

/// The `sources` of the message `id`, read without the rest of its row.
pub fn decode_sources(id: &str, json: &str) -> crate::error::AppResult<Vec<Source>> {
    super::decode("messages", "sources", id, json)
}

/// A cited article, as stored in a message's `sources`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    pub article_id: String,
    pub title: String,
    pub url: String,
    pub score: f64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
