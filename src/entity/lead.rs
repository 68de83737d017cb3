use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, Default, PartialEq, DeriveEntityModel, serde::Deserialize)]
#[sea_orm(table_name = "leads")]
/// Decoded with defaults for the columns a read left out: an inbox page reads only
/// what its document selects (`chat::lists`).
#[serde(default)]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub workspace_id: String,
    pub visitor_id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub company: Option<String>,
    /// JSON object of custom field values, keyed by lead field key.
    pub fields: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Its email and name came in an identity token the site signed.
    #[serde(deserialize_with = "super::bool_or_int")]
    pub verified: bool,
    /// When the person's data was erased (`eraseContact`, or the workspace's
    /// retention): every detail is gone, the row stays for the counts.
    #[serde(default)]
    pub erased_at: Option<i64>,
}

impl Model {
    /// The custom field values, by lead field key.
    pub fn fields(&self) -> crate::error::AppResult<serde_json::Map<String, serde_json::Value>> {
        super::decode("leads", "fields", &self.id, &self.fields)
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
