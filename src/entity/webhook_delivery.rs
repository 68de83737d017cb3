use sea_orm::entity::prelude::*;

/// One attempt to deliver one event to one webhook.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub webhook_id: String,
    pub workspace_id: String,
    pub event_id: String,
    pub event_type: String,
    /// 1 for the first attempt at this event, then 2, 3, …
    pub attempt: i32,
    pub succeeded: bool,
    pub response_code: Option<i32>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
