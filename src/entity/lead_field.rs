use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "lead_fields")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub workspace_id: String,
    pub key: String,
    pub label: String,
    pub kind: super::LeadFieldType,
    /// JSON array of strings: the allowed values of a `SELECT` field.
    pub options: String,
    pub required: bool,
    pub created_at: i64,
}

impl Model {
    /// The allowed values of a `SELECT` field.
    pub fn options(&self) -> crate::error::AppResult<Vec<String>> {
        super::decode("lead_fields", "options", &self.id, &self.options)
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
