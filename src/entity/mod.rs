//! sea-orm entities, one per table, and the enums stored in them.
//!
//! Times are `i64` milliseconds since the Unix epoch (see the migrations). JSON
//! documents are `String` columns (portable between SQLite and PostgreSQL, and
//! copied as they are into event payloads), each read through one typed accessor on
//! its model (`message::Model::sources`, `workspace::Model::handoff_policy`, …) and
//! written through [`encode`]: a value that does not decode is an error naming its
//! table, column and row, never an empty default. The enums are both stored
//! (`DeriveActiveEnum`, as text) and exposed in GraphQL (`async_graphql::Enum`), so the
//! names in the database, the schema and the code are the same.

pub mod agent;
pub mod answer_feedback;
pub mod answer_flag;
pub mod api_key;
pub mod article;
pub mod article_passage;
pub mod article_revision;
pub mod audit_entry;
pub mod conversation;
pub mod conversation_tag;
pub mod handoff;
pub mod handoff_offer;
pub mod insight_tag;
pub mod lead;
pub mod lead_field;
pub mod message;
pub mod model_call;
pub mod rating;
pub mod retag_job;
pub mod setting;
pub mod team;
pub mod team_member;
pub mod webhook;
pub mod webhook_delivery;
pub mod workspace;

use sea_orm::{DeriveActiveEnum, EnumIter};

use crate::error::{AppError, AppResult};

/// The JSON column `column` of the row `id` of `table`, decoded: the one place each
/// column is read. A stored value that does not decode (written by hand, or by a
/// newer version) is an `INTERNAL` error whose detail, logged where it is handled,
/// names the row.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    table: &'static str,
    column: &'static str,
    id: &str,
    json: &str,
) -> AppResult<T> {
    serde_json::from_str(json).map_err(|err| {
        AppError::internal(format!(
            "{table}.{column} of row {id} does not decode: {err}"
        ))
    })
}

/// A value as its JSON column stores it.
pub fn encode<T: serde::Serialize>(value: &T) -> AppResult<String> {
    Ok(serde_json::to_string(value)?)
}

/// A boolean from JSON `true`/`false`, or from the `1`/`0` that SQLite's JSON
/// functions give for its boolean columns (see `crate::db::json_rows`). A visitor
/// of its own: an untagged enum would buffer each value and build (and drop) an
/// error message for every SQLite flag before trying the integer.
pub(crate) fn bool_or_int<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct Flag;
    impl serde::de::Visitor<'_> for Flag {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a boolean, or 0 or 1")
        }
        fn visit_bool<E>(self, b: bool) -> Result<bool, E> {
            Ok(b)
        }
        fn visit_i64<E>(self, i: i64) -> Result<bool, E> {
            Ok(i != 0)
        }
        fn visit_u64<E>(self, i: u64) -> Result<bool, E> {
            Ok(i != 0)
        }
    }
    d.deserialize_any(Flag)
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize)]
    struct Row {
        #[serde(deserialize_with = "super::bool_or_int")]
        flag: bool,
    }

    #[test]
    fn flags_read_from_booleans_and_sqlite_integers() {
        let read = |json: &str| serde_json::from_str::<Row>(json).map(|row| row.flag).ok();
        assert_eq!(read(r#"{"flag": true}"#), Some(true));
        assert_eq!(read(r#"{"flag": false}"#), Some(false));
        assert_eq!(read(r#"{"flag": 1}"#), Some(true));
        assert_eq!(read(r#"{"flag": 0}"#), Some(false));
        assert_eq!(read(r#"{"flag": "yes"}"#), None);
    }
}

/// What an API key may do.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Scope {
    /// Read the insights digest.
    InsightsRead,
    /// Read and export leads.
    LeadsRead,
    /// Read conversations and messages (internal notes included), and export them.
    ConversationsRead,
    /// Post AI answers and request handoffs, as the AI; read the conversations it
    /// answers (without internal notes).
    AiWrite,
    /// Read the event log (`events`): what happened, in order, by cursor. What each
    /// event shows still follows the key's other scopes (internal notes only with
    /// `CONVERSATIONS_READ`, never with `AI_WRITE`).
    EventsRead,
    /// Create, replace and delete knowledge articles (`upsertArticle`,
    /// `deleteArticle`): a docs pipeline keeping the help center in sync. Its edits
    /// are the key's in `Article.revisions`.
    KnowledgeWrite,
}

/// What an agent may do in its workspace.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, async_graphql::Enum,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum Role {
    /// Created the workspace; everything an admin can do.
    #[sea_orm(string_value = "OWNER")]
    Owner,
    /// Manages agents, teams, tags, lead fields and policies.
    #[sea_orm(string_value = "ADMIN")]
    Admin,
    /// Answers conversations.
    #[sea_orm(string_value = "AGENT")]
    Agent,
}

impl Role {
    pub fn manages_workspace(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "OWNER",
            Role::Admin => "ADMIN",
            Role::Agent => "AGENT",
        }
    }
}

/// Who controls a conversation. `AI → QUEUED → HUMAN → RESOLVED`; a visitor message on
/// a resolved conversation reopens it.
#[derive(
    Clone,
    Copy,
    Default,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    async_graphql::Enum,
    serde::Serialize,
    serde::Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConversationStatus {
    /// The AI is answering.
    #[default]
    #[sea_orm(string_value = "AI")]
    Ai,
    /// Waiting for a human to accept the handoff.
    #[sea_orm(string_value = "QUEUED")]
    Queued,
    /// A human owns the conversation.
    #[sea_orm(string_value = "HUMAN")]
    Human,
    /// Closed.
    #[sea_orm(string_value = "RESOLVED")]
    Resolved,
}

/// Who resolved a conversation.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    async_graphql::Enum,
    serde::Serialize,
    serde::Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResolvedBy {
    /// The AI: the visitor confirmed an answer helped, or an `AI_WRITE` key
    /// resolved a conversation it held.
    #[sea_orm(string_value = "AI")]
    Ai,
    /// An agent.
    #[sea_orm(string_value = "AGENT")]
    Agent,
    /// The visitor ended the chat.
    #[sea_orm(string_value = "VISITOR")]
    Visitor,
    /// The visitor was silent for the policy's `autoResolveAfterSeconds` while the
    /// AI held the conversation.
    #[sea_orm(string_value = "AUTO")]
    Auto,
}

/// Whether an agent can take conversations now.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    async_graphql::Enum,
    serde::Serialize,
    serde::Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Availability {
    /// Set so, with a socket open.
    #[sea_orm(string_value = "ONLINE")]
    Online,
    /// Set so, with a socket open: present, not taking new conversations.
    #[sea_orm(string_value = "AWAY")]
    Away,
    /// No socket open for the presence timeout (60 s by default).
    #[sea_orm(string_value = "OFFLINE")]
    Offline,
}

/// How a team's handoffs reach its agents.
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
pub enum TeamRouting {
    /// Handoffs wait in the team's queue for an agent to accept one.
    #[sea_orm(string_value = "MANUAL")]
    Manual,
    /// Each handoff is offered to the next available agent in turn.
    #[sea_orm(string_value = "ROUND_ROBIN")]
    RoundRobin,
    /// Each handoff is offered to the available agent holding the fewest open
    /// conversations.
    #[sea_orm(string_value = "LEAST_BUSY")]
    LeastBusy,
}

/// A day of the week (business hours).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    async_graphql::Enum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl From<chrono::Weekday> for Weekday {
    fn from(day: chrono::Weekday) -> Self {
        match day {
            chrono::Weekday::Mon => Weekday::Monday,
            chrono::Weekday::Tue => Weekday::Tuesday,
            chrono::Weekday::Wed => Weekday::Wednesday,
            chrono::Weekday::Thu => Weekday::Thursday,
            chrono::Weekday::Fri => Weekday::Friday,
            chrono::Weekday::Sat => Weekday::Saturday,
            chrono::Weekday::Sun => Weekday::Sunday,
        }
    }
}

/// Who wrote a message.
#[derive(
    Clone,
    Copy,
    Default,
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
pub enum Author {
    /// The person chatting on the website.
    #[default]
    #[sea_orm(string_value = "VISITOR")]
    Visitor,
    /// The AI agent (built-in responder or an integrator's model).
    #[sea_orm(string_value = "AI")]
    Ai,
    /// A human team member.
    #[sea_orm(string_value = "AGENT")]
    Agent,
    /// Casefile itself, telling the visitor what is happening.
    #[sea_orm(string_value = "SYSTEM")]
    System,
}

/// How a tag came to be on a conversation.
#[derive(
    Clone,
    Copy,
    Default,
    Debug,
    PartialEq,
    Eq,
    EnumIter,
    DeriveActiveEnum,
    async_graphql::Enum,
    serde::Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TagSource {
    /// Applied by the tag's matching rules.
    #[default]
    #[sea_orm(string_value = "AUTO")]
    Auto,
    /// Applied by an agent.
    #[sea_orm(string_value = "AGENT")]
    Agent,
}

/// The type of a workspace-defined lead field; values are validated against it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, async_graphql::Enum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum LeadFieldType {
    #[sea_orm(string_value = "TEXT")]
    Text,
    #[sea_orm(string_value = "NUMBER")]
    Number,
    #[sea_orm(string_value = "BOOLEAN")]
    Boolean,
    #[sea_orm(string_value = "URL")]
    Url,
    #[sea_orm(string_value = "EMAIL")]
    Email,
    /// One of the field's `options`.
    #[sea_orm(string_value = "SELECT")]
    Select,
}

/// Why a conversation went to humans.
#[derive(
    Clone,
    Copy,
    Default,
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
pub enum HandoffReason {
    /// The visitor asked for a person (a phrase, or the widget's button).
    #[default]
    #[sea_orm(string_value = "VISITOR_REQUESTED")]
    VisitorRequested,
    /// The AI's answers were below the confidence threshold.
    #[sea_orm(string_value = "LOW_CONFIDENCE")]
    LowConfidence,
    /// The AI answered as many times as the policy allows, and the visitor went on.
    #[sea_orm(string_value = "UNRESOLVED")]
    Unresolved,
    /// A tag the workspace always escalates.
    #[sea_orm(string_value = "POLICY")]
    Policy,
    /// An agent took over a chat they were watching.
    #[sea_orm(string_value = "AGENT_TAKEOVER")]
    AgentTakeover,
    /// The language model judged that a person should answer (its
    /// `handoff_to_human` tool call; its reason is the handoff's note).
    #[sea_orm(string_value = "AI_REQUESTED")]
    AiRequested,
}

/// Where a workspace's AI answers come from.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    async_graphql::Enum,
    serde::Serialize,
    serde::Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AnswerEngine {
    /// A language model behind the server's OpenAI-compatible API
    /// (`CASEFILE_LLM_URL`), writing from the workspace's articles and citing them;
    /// the extractive responder whenever the model cannot.
    #[sea_orm(string_value = "MODEL")]
    Model,
    /// The extractive responder: quotes the best passage of the articles.
    #[sea_orm(string_value = "EXTRACTIVE")]
    Extractive,
    /// No built-in answers: an integrator's model posts them with an `AI_WRITE` key.
    #[sea_orm(string_value = "OFF")]
    Off,
}

/// Where a handoff is: `REQUESTED → ACCEPTED → RESOLVED`, or `CANCELLED` when the
/// conversation went back to the AI; a team with automatic routing offers it to
/// one agent at a time on the way (`REQUESTED ⇄ OFFERED → ACCEPTED`).
#[derive(
    Clone,
    Copy,
    Default,
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
pub enum HandoffStatus {
    #[default]
    #[sea_orm(string_value = "REQUESTED")]
    Requested,
    /// Offered to one agent of its team, who may accept or decline it
    /// (`offeredTo`, until `offerExpiresAt`).
    #[sea_orm(string_value = "OFFERED")]
    Offered,
    #[sea_orm(string_value = "ACCEPTED")]
    Accepted,
    #[sea_orm(string_value = "RESOLVED")]
    Resolved,
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
}

impl HandoffStatus {
    pub fn is_open(self) -> bool {
        matches!(
            self,
            HandoffStatus::Requested | HandoffStatus::Offered | HandoffStatus::Accepted
        )
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
