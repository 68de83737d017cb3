use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "workspaces")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    pub widget_key: String,
    pub responder_enabled: bool,
    pub default_team_id: Option<String>,
    /// JSON: the workspace's `HandoffPolicy` (defaults fill what is absent).
    pub handoff_policy: String,
    pub created_at: i64,
    /// The HS256 secret the site's backend signs visitor identities with
    /// (`rotateIdentitySecret`); `None` until made.
    pub identity_secret: Option<String>,
    /// Conversations need a valid identity token.
    pub require_verified_identity: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
