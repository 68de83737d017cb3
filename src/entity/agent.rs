use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "agents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub workspace_id: String,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub role: super::Role,
    pub created_at: i64,
    /// A deactivated agent cannot sign in, and its tokens and sockets end.
    pub active: bool,
    /// Tokens carry the generation they were issued in; only the current one's are
    /// valid (a password change or a reactivation moves it on).
    pub token_generation: i32,
    /// What the agent set (`ONLINE` or `AWAY`); without an open socket for the
    /// presence timeout it is `OFFLINE` whatever it set (`domain::tenancy::presence`).
    pub availability: super::Availability,
    /// The availability last announced to inboxes.
    pub announced: super::Availability,
    /// When a socket of the agent was last seen open (ms).
    pub last_seen_at: Option<i64>,
    /// Conversations the agent holds at most before routing passes it over.
    pub max_concurrent: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
