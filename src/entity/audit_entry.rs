use sea_orm::entity::prelude::*;

/// One administrative act: who did it (an agent or an API key; neither for the
/// server's own sweeps and for a sign-in that named no agent), what, to which
/// object, from which address and which fields it changed (names only, never
/// values). Append-only: the database refuses updates and deletes.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    /// `aud_…`, in the order the acts were recorded.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub workspace_id: String,
    pub action: AuditAction,
    pub actor_agent_id: Option<String>,
    pub actor_key_id: Option<String>,
    /// The schema's type name of what the act was on (`Agent`, `ApiKey`, …).
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    /// JSON array of the names of the fields the act changed.
    pub fields: String,
    /// The client's address (see `crate::net::client_ip`); `None` for the server's
    /// own acts.
    pub address: Option<String>,
    pub created_at: i64,
}

impl Model {
    /// The names of the fields the act changed.
    pub fn fields(&self) -> crate::error::AppResult<Vec<String>> {
        super::decode("audit_log", "fields", &self.id, &self.fields)
    }
}

/// What an administrative act was.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    EnumIter,
    DeriveActiveEnum,
    async_graphql::Enum,
    serde::Serialize,
    serde::Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuditAction {
    /// An agent signed in.
    #[sea_orm(string_value = "SIGN_IN")]
    SignIn,
    /// A sign-in to an agent of the workspace failed (a wrong password, or a
    /// deactivated agent).
    #[sea_orm(string_value = "SIGN_IN_FAILED")]
    SignInFailed,
    /// An agent changed its password.
    #[sea_orm(string_value = "PASSWORD_CHANGED")]
    PasswordChanged,
    #[sea_orm(string_value = "AGENT_CREATED")]
    AgentCreated,
    /// An agent's name, role or teams changed.
    #[sea_orm(string_value = "AGENT_UPDATED")]
    AgentUpdated,
    #[sea_orm(string_value = "AGENT_DEACTIVATED")]
    AgentDeactivated,
    #[sea_orm(string_value = "AGENT_REACTIVATED")]
    AgentReactivated,
    #[sea_orm(string_value = "TEAM_CREATED")]
    TeamCreated,
    #[sea_orm(string_value = "TEAM_UPDATED")]
    TeamUpdated,
    /// `updateWorkspace`.
    #[sea_orm(string_value = "WORKSPACE_UPDATED")]
    WorkspaceUpdated,
    /// `updateHandoffPolicy`.
    #[sea_orm(string_value = "HANDOFF_POLICY_UPDATED")]
    HandoffPolicyUpdated,
    /// A lead field was defined or redefined.
    #[sea_orm(string_value = "LEAD_FIELD_DEFINED")]
    LeadFieldDefined,
    #[sea_orm(string_value = "TAG_CREATED")]
    TagCreated,
    #[sea_orm(string_value = "TAG_UPDATED")]
    TagUpdated,
    #[sea_orm(string_value = "TAG_DELETED")]
    TagDeleted,
    #[sea_orm(string_value = "IDENTITY_SECRET_ROTATED")]
    IdentitySecretRotated,
    #[sea_orm(string_value = "API_KEY_CREATED")]
    ApiKeyCreated,
    #[sea_orm(string_value = "API_KEY_REVOKED")]
    ApiKeyRevoked,
    #[sea_orm(string_value = "WEBHOOK_CREATED")]
    WebhookCreated,
    #[sea_orm(string_value = "WEBHOOK_UPDATED")]
    WebhookUpdated,
    #[sea_orm(string_value = "WEBHOOK_DELETED")]
    WebhookDeleted,
    #[sea_orm(string_value = "WEBHOOK_SECRET_ROTATED")]
    WebhookSecretRotated,
    /// A CSV export was downloaded (`objectType`: `Lead` or `Conversation`, with
    /// no `objectId`: all of them).
    #[sea_orm(string_value = "DATA_EXPORTED")]
    DataExported,
    /// `exportContact`.
    #[sea_orm(string_value = "CONTACT_EXPORTED")]
    ContactExported,
    /// `eraseContact`.
    #[sea_orm(string_value = "CONTACT_ERASED")]
    ContactErased,
    /// The retention sweep erased a conversation resolved longer ago than the
    /// workspace's `retentionDays`.
    #[sea_orm(string_value = "CONVERSATION_ERASED")]
    ConversationErased,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
