use sea_orm::entity::prelude::*;

/// One request to the language model: the visitor message it answered, what came
/// of it, the tokens it used and how soon it started answering.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "model_calls")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub workspace_id: String,
    pub conversation_id: String,
    /// The visitor message answered.
    pub message_id: String,
    pub outcome: ModelOutcome,
    /// For `FAILED`: the kind of failure (never the server's text).
    pub failure: Option<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// The server reported no usage: the counts are estimated from the text.
    pub estimated: bool,
    /// Milliseconds from the request to its first piece, if one came.
    pub first_token_ms: Option<i64>,
    pub created_at: i64,
}

/// What came of a model request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum ModelOutcome {
    /// An answer, stored.
    #[sea_orm(string_value = "ANSWERED")]
    Answered,
    /// The model called `handoff_to_human`.
    #[sea_orm(string_value = "HANDOFF")]
    Handoff,
    /// It failed; the visitor was answered the extractive way.
    #[sea_orm(string_value = "FAILED")]
    Failed,
    /// A person took the conversation while it was answering: nothing stored.
    #[sea_orm(string_value = "ABANDONED")]
    Abandoned,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
