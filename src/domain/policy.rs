//! The handoff policy: when the AI gives up and hands the conversation to humans.
//!
//! Stored per workspace as JSON; absent fields take the defaults below. The
//! decisions are pure functions, evaluated on each visitor message in a
//! conversation the AI controls, counting only what happened since the AI last took
//! control (so an old request for a person never triggers a new handoff).

use serde::{Deserialize, Serialize};

use crate::entity::HandoffReason;

use super::text;

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

impl HandoffPolicy {
    /// The stored policy; a malformed one falls back to the defaults.
    pub fn parse(stored: &str) -> HandoffPolicy {
        serde_json::from_str(stored).unwrap_or_default()
    }
}

/// What is known when a visitor message arrives in a conversation the AI controls.
#[derive(Clone, Debug, Default)]
pub struct Situation<'a> {
    pub message: &'a str,
    /// The conversation carries a tag that always escalates.
    pub escalating_tag: bool,
    /// AI answers since the AI last took control.
    pub ai_answers: u32,
    /// Of those, answers below the threshold.
    pub low_confidence_answers: u32,
}

/// After the visitor called an answer unhelpful, `unhelpful` such answers since the
/// AI took control: hand off?
pub fn after_unhelpful(policy: &HandoffPolicy, unhelpful: u32) -> Option<HandoffReason> {
    (policy.max_unhelpful_answers > 0 && unhelpful >= policy.max_unhelpful_answers)
        .then_some(HandoffReason::Unresolved)
}

/// Before answering: does this message go straight to humans, and why?
pub fn before_answer(
    policy: &HandoffPolicy,
    situation: &Situation<'_>,
) -> Option<(HandoffReason, Option<String>)> {
    if let Some(phrase) = policy
        .handoff_phrases
        .iter()
        .find_map(|p| text::find_phrase(situation.message, p))
    {
        return Some((HandoffReason::VisitorRequested, Some(phrase)));
    }
    if situation.escalating_tag {
        return Some((HandoffReason::Policy, None));
    }
    if policy.max_ai_attempts > 0 && situation.ai_answers >= policy.max_ai_attempts {
        return Some((HandoffReason::Unresolved, None));
    }
    None
}

/// After the responder found an answer of `confidence`: post it, or hand off?
pub fn after_answer(
    policy: &HandoffPolicy,
    situation: &Situation<'_>,
    confidence: f64,
) -> Option<HandoffReason> {
    let unsure = confidence < policy.confidence_threshold;
    (unsure && situation.low_confidence_answers >= policy.max_low_confidence_answers)
        .then_some(HandoffReason::LowConfidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visitor(message: &str) -> Situation<'_> {
        Situation {
            message,
            ..Situation::default()
        }
    }

    #[test]
    fn asking_for_a_person_hands_off_at_once() {
        let policy = HandoffPolicy::default();
        for message in [
            "Can I talk to a human?",
            "I want a REAL PERSON now",
            "agents please",
            "¿Puedo hablar con una persona?",
        ] {
            assert_eq!(
                before_answer(&policy, &visitor(message)).map(|d| d.0),
                Some(HandoffReason::VisitorRequested),
                "{message}"
            );
        }
        assert_eq!(
            before_answer(&policy, &visitor("How do I schedule a draft?")),
            None
        );
        assert_eq!(
            before_answer(&policy, &visitor("My agency manages the site")),
            None,
            "whole words only"
        );
    }

    #[test]
    fn escalating_tags_and_exhausted_attempts_hand_off() {
        let policy = HandoffPolicy {
            max_ai_attempts: 2,
            ..HandoffPolicy::default()
        };
        let tagged = Situation {
            escalating_tag: true,
            ..visitor("my invoice is wrong")
        };
        assert_eq!(
            before_answer(&policy, &tagged).map(|d| d.0),
            Some(HandoffReason::Policy)
        );
        let tried = Situation {
            ai_answers: 2,
            ..visitor("still broken")
        };
        assert_eq!(
            before_answer(&policy, &tried).map(|d| d.0),
            Some(HandoffReason::Unresolved)
        );
        let once = Situation {
            ai_answers: 1,
            ..visitor("still broken")
        };
        assert_eq!(before_answer(&policy, &once), None);
    }

    #[test]
    fn unsure_answers_are_allowed_up_to_the_limit() {
        let policy = HandoffPolicy {
            confidence_threshold: 0.6,
            max_low_confidence_answers: 1,
            ..HandoffPolicy::default()
        };
        let first = visitor("?");
        assert_eq!(
            after_answer(&policy, &first, 0.2),
            None,
            "one unsure answer is allowed"
        );
        let second = Situation {
            low_confidence_answers: 1,
            ..visitor("?")
        };
        assert_eq!(
            after_answer(&policy, &second, 0.2),
            Some(HandoffReason::LowConfidence)
        );
        assert_eq!(
            after_answer(&policy, &second, 0.9),
            None,
            "a sure answer is posted"
        );
    }

    #[test]
    fn unhelpful_answers_hand_off_at_the_limit_and_zero_never() {
        let policy = HandoffPolicy::default();
        assert_eq!(policy.max_unhelpful_answers, 1);
        assert_eq!(after_unhelpful(&policy, 1), Some(HandoffReason::Unresolved));
        let patient = HandoffPolicy {
            max_unhelpful_answers: 2,
            ..HandoffPolicy::default()
        };
        assert_eq!(after_unhelpful(&patient, 1), None);
        assert_eq!(
            after_unhelpful(&patient, 2),
            Some(HandoffReason::Unresolved)
        );
        let never = HandoffPolicy {
            max_unhelpful_answers: 0,
            ..HandoffPolicy::default()
        };
        assert_eq!(after_unhelpful(&never, 5), None);
    }

    #[test]
    fn auto_resolution_defaults_to_half_an_hour_and_null_means_never() {
        assert_eq!(
            HandoffPolicy::parse("{}").auto_resolve_after_seconds,
            Some(1800)
        );
        assert_eq!(
            HandoffPolicy::parse(r#"{"autoResolveAfterSeconds":null}"#).auto_resolve_after_seconds,
            None
        );
    }

    #[test]
    fn stored_policies_fill_absent_fields_with_defaults() {
        let policy = HandoffPolicy::parse(r#"{"confidenceThreshold":0.7}"#);
        assert_eq!(policy.confidence_threshold, 0.7);
        assert_eq!(policy.max_ai_attempts, 3);
        assert!(
            policy
                .handoff_phrases
                .iter()
                .any(|p| p == "talk to a human")
        );
    }
}
