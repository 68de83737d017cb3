use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "retag_jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub workspace_id: String,
    /// Conversations updated at or after this time are retagged.
    pub since: i64,
    /// The last conversation id done: a restarted job resumes after it.
    pub cursor: Option<String>,
    pub processed: i64,
    pub tagged: i64,
    pub untagged: i64,
    pub total: i64,
    /// `RUNNING`, `DONE` or `FAILED`.
    pub status: String,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
