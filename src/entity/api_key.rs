use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    /// SHA-256 of the secret, hex; the secret itself is shown once and never stored.
    pub secret_hash: String,
    /// JSON array of scopes.
    pub scopes: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl Model {
    pub fn scopes(&self) -> crate::error::AppResult<Vec<super::Scope>> {
        super::decode("api_keys", "scopes", &self.id, &self.scopes)
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
