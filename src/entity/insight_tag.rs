use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "insight_tags")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub workspace_id: String,
    pub slug: String,
    pub label: String,
    pub description: String,
    /// JSON array of keywords and phrases.
    pub keywords: String,
    /// JSON array of regular expressions.
    pub patterns: String,
    pub team_id: Option<String>,
    pub escalate: bool,
    /// Higher wins when a conversation's tags route to different teams.
    pub priority: i32,
    /// JSON array of knowledge article ids this topic covers: an AI answer citing
    /// one tags its conversation.
    pub article_ids: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Model {
    pub fn keywords(&self) -> crate::error::AppResult<Vec<String>> {
        super::decode("insight_tags", "keywords", &self.id, &self.keywords)
    }

    pub fn patterns(&self) -> crate::error::AppResult<Vec<String>> {
        super::decode("insight_tags", "patterns", &self.id, &self.patterns)
    }

    pub fn article_ids(&self) -> crate::error::AppResult<Vec<String>> {
        super::decode("insight_tags", "article_ids", &self.id, &self.article_ids)
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
