use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "workspaces")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    pub widget_key: String,
    /// Kept equal to `answer_engine != OFF` (what older releases read); the engine
    /// decides.
    pub responder_enabled: bool,
    pub default_team_id: Option<String>,
    /// JSON: the workspace's [`HandoffPolicy`] (defaults fill what is absent); read
    /// it with [`Model::handoff_policy`].
    pub handoff_policy: String,
    pub created_at: i64,
    /// The HS256 secret the site's backend signs visitor identities with
    /// (`rotateIdentitySecret`); `None` until made.
    pub identity_secret: Option<String>,
    /// Conversations need a valid identity token.
    pub require_verified_identity: bool,
    /// Where AI answers come from; `None` takes the server's default (`MODEL` with a
    /// model configured, else `EXTRACTIVE`).
    pub answer_engine: Option<super::AnswerEngine>,
    /// Tone and house rules for the model's system prompt (empty: none).
    pub answer_instructions: String,
    /// Model tokens the workspace may use per UTC day; `None`: no limit.
    pub model_daily_token_limit: Option<i64>,
    /// Conversations resolved more than this many days ago are erased by the
    /// retention sweep; `None`: kept until erased by hand.
    pub retention_days: Option<i32>,
}

impl Model {
    /// When the AI hands a conversation to humans.
    pub fn handoff_policy(&self) -> crate::error::AppResult<HandoffPolicy> {
        super::decode(
            "workspaces",
            "handoff_policy",
            &self.id,
            &self.handoff_policy,
        )
    }
}

/// Phrases that mean "I want a person", in the languages our customers' visitors
/// write most. Matched as whole words, with stemming ("agents" matches "agent").
pub const DEFAULT_PHRASES: &[&str] = &[
    // English
    "talk to a human",
    "talk to a person",
    "speak to a human",
    "speak to a person",
    "speak to someone",
    "talk to someone",
    "real person",
    "human agent",
    "live agent",
    "customer service",
    "agent",
    "operator",
    "representative",
    "human please",
    // Spanish
    "hablar con una persona",
    "hablar con un agente",
    "persona real",
    "agente humano",
    // French
    "parler à un humain",
    "parler à une personne",
    "un conseiller",
    "vrai humain",
    // German
    "mit einem menschen sprechen",
    "echte person",
    "mitarbeiter sprechen",
    "menschlichen mitarbeiter",
    // Portuguese
    "falar com um atendente",
    "pessoa real",
    "falar com uma pessoa",
    // Italian
    "parlare con un operatore",
    "persona reale",
    // Dutch
    "met een medewerker",
    "echt persoon",
];

/// A silent AI conversation is resolved after 30 minutes by default.
pub const DEFAULT_AUTO_RESOLVE_SECONDS: u32 = 1800;

/// When the AI hands a conversation to humans.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HandoffPolicy {
    /// Answers below this confidence (0..1) count as unsure.
    pub confidence_threshold: f64,
    /// How many unsure answers the AI may give (asking the visitor to rephrase)
    /// before it hands off with `LOW_CONFIDENCE`; 0 hands off at the first.
    pub max_low_confidence_answers: u32,
    /// How many answers the AI may give in all; when the visitor writes again after
    /// that many, the conversation is handed off as `UNRESOLVED`.
    pub max_ai_attempts: u32,
    /// Phrases that mean "I want a person" (`VISITOR_REQUESTED`).
    pub handoff_phrases: Vec<String>,
    /// Tags that always go to humans (`POLICY`), besides tags marked `escalate`.
    pub escalate_tag_ids: Vec<String>,
    /// Ask the visitor for an email address when a handoff starts and none is known.
    pub ask_for_email: bool,
    /// How many AI answers the visitor may call unhelpful ("Did that answer your
    /// question?" → no, `confirmAnswer`) since the AI last took control before the
    /// conversation is handed off as `UNRESOLVED`; 0 never hands off for it.
    pub max_unhelpful_answers: u32,
    /// A conversation the AI holds whose visitor has been silent this long is
    /// resolved (`resolvedBy: AUTO`); `None` never.
    pub auto_resolve_after_seconds: Option<u32>,
}

impl Default for HandoffPolicy {
    fn default() -> Self {
        HandoffPolicy {
            confidence_threshold: 0.5,
            max_low_confidence_answers: 1,
            max_ai_attempts: 3,
            handoff_phrases: DEFAULT_PHRASES.iter().map(|p| (*p).to_owned()).collect(),
            escalate_tag_ids: Vec::new(),
            ask_for_email: true,
            max_unhelpful_answers: 1,
            auto_resolve_after_seconds: Some(DEFAULT_AUTO_RESOLVE_SECONDS),
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(policy: &str) -> crate::error::AppResult<HandoffPolicy> {
        Model {
            id: "ws_1".into(),
            name: "Inkwell".into(),
            widget_key: "wk".into(),
            responder_enabled: true,
            default_team_id: None,
            handoff_policy: policy.into(),
            created_at: 0,
            identity_secret: None,
            require_verified_identity: false,
            answer_engine: None,
            answer_instructions: String::new(),
            model_daily_token_limit: None,
            retention_days: None,
        }
        .handoff_policy()
    }

    #[test]
    fn auto_resolution_defaults_to_half_an_hour_and_null_means_never() {
        let policy = |json| stored(json).expect("decodes").auto_resolve_after_seconds;
        assert_eq!(policy("{}"), Some(1800));
        assert_eq!(policy(r#"{"autoResolveAfterSeconds":null}"#), None);
    }

    #[test]
    fn stored_policies_fill_absent_fields_with_defaults() {
        let policy = stored(r#"{"confidenceThreshold":0.7}"#).expect("decodes");
        assert_eq!(policy.confidence_threshold, 0.7);
        assert_eq!(policy.max_ai_attempts, 3);
        assert!(
            policy
                .handoff_phrases
                .iter()
                .any(|p| p == "talk to a human")
        );
    }

    #[test]
    fn a_corrupt_policy_is_an_error_naming_its_row() {
        let err = stored(r#"{"confidenceThreshold":"high"}"#).expect_err("does not decode");
        assert_eq!(err.code(), crate::error::code::INTERNAL);
        assert!(
            err.detail()
                .contains("workspaces.handoff_policy of row ws_1"),
            "{}",
            err.detail()
        );
    }
}
