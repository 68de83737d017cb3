use sea_orm::entity::prelude::*;

/// One version of an article's text: what it said, when, and who wrote it (an
/// agent or an API key; neither for imports and the demo).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "article_revisions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub workspace_id: String,
    pub article_id: String,
    /// 1 for the article as created, then one more per change of its text.
    pub revision: i32,
    pub title: String,
    pub url: String,
    pub body: String,
    pub edited_at: i64,
    pub edited_by_agent_id: Option<String>,
    pub edited_by_api_key_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
