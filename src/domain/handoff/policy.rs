//! The handoff policy: when the AI gives up and hands the conversation to humans.
//!
//! Stored per workspace as JSON (`entity::workspace::HandoffPolicy`, whose absent
//! fields take their defaults) and changed with [`update`]. The decisions are pure
//! functions, evaluated on each visitor message in a
//! conversation the AI controls, counting only what happened since the AI last took
//! control (so an old request for a person never triggers a new handoff).

use crate::entity::HandoffReason;

use crate::domain::knowledge::text;

pub use crate::entity::workspace::HandoffPolicy;

use crate::auth::AgentPrincipal;
use crate::domain::Core;
use crate::domain::core::validate;
use crate::domain::knowledge::tags;
use crate::domain::tenancy::audit::{self, By};
use crate::domain::tenancy::workspaces;
use crate::error::{AppError, AppResult};

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

/// The longest `autoResolveAfterSeconds`: 30 days.
const MAX_AUTO_RESOLVE_SECONDS: u32 = 30 * 24 * 3600;

/// Changes to a workspace's handoff policy; `None` leaves a value as it is.
#[derive(Clone, Debug, Default)]
pub struct PolicyChange {
    pub confidence_threshold: Option<f64>,
    pub max_low_confidence_answers: Option<i32>,
    pub max_ai_attempts: Option<i32>,
    pub handoff_phrases: Option<Vec<String>>,
    pub escalate_tag_ids: Option<Vec<String>>,
    pub ask_for_email: Option<bool>,
    pub max_unhelpful_answers: Option<i32>,
    /// `Some(None)`: never resolve silent AI conversations.
    pub auto_resolve_after_seconds: Option<Option<i32>>,
}

impl PolicyChange {
    /// The names of the fields it changes, as the schema spells them.
    fn fields(&self) -> Vec<&'static str> {
        audit::given(&[
            ("confidenceThreshold", self.confidence_threshold.is_some()),
            (
                "maxLowConfidenceAnswers",
                self.max_low_confidence_answers.is_some(),
            ),
            ("maxAiAttempts", self.max_ai_attempts.is_some()),
            ("handoffPhrases", self.handoff_phrases.is_some()),
            ("escalateTagIds", self.escalate_tag_ids.is_some()),
            ("askForEmail", self.ask_for_email.is_some()),
            ("maxUnhelpfulAnswers", self.max_unhelpful_answers.is_some()),
            (
                "autoResolveAfterSeconds",
                self.auto_resolve_after_seconds.is_some(),
            ),
        ])
    }
}

/// Change `admin`'s workspace's handoff policy: each value checked, the tags it
/// escalates tags of the workspace. The policy as stored. By `admin` at `address`.
pub async fn update(
    core: &Core,
    admin: &AgentPrincipal,
    address: std::net::IpAddr,
    change: PolicyChange,
) -> AppResult<HandoffPolicy> {
    let fields = change.fields();
    let workspace = workspaces::get(core, &admin.workspace_id).await?;
    let mut policy = workspace.handoff_policy()?;
    if let Some(threshold) = change.confidence_threshold {
        if !(0.0..=1.0).contains(&threshold) {
            return Err(AppError::bad_input(
                "confidenceThreshold",
                "must be between 0 and 1",
            ));
        }
        policy.confidence_threshold = threshold;
    }
    let count = |field: &str, value: i32| {
        u32::try_from(value)
            .ok()
            .filter(|v| *v <= 100)
            .ok_or_else(|| AppError::bad_input(field, "must be between 0 and 100"))
    };
    if let Some(max) = change.max_low_confidence_answers {
        policy.max_low_confidence_answers = count("maxLowConfidenceAnswers", max)?;
    }
    if let Some(max) = change.max_ai_attempts {
        policy.max_ai_attempts = count("maxAiAttempts", max)?;
    }
    if let Some(phrases) = change.handoff_phrases {
        if phrases.len() > 500 {
            return Err(AppError::bad_input("handoffPhrases", "at most 500"));
        }
        policy.handoff_phrases = phrases
            .iter()
            .map(|p| validate::short("handoffPhrases", p))
            .collect::<Result<_, _>>()?;
    }
    if let Some(ids) = change.escalate_tag_ids {
        for id in &ids {
            validate::existing(
                tags::get(core, &admin.workspace_id, id).await,
                "escalateTagIds",
                || format!("no tag {id}"),
            )?;
        }
        policy.escalate_tag_ids = ids;
    }
    if let Some(ask) = change.ask_for_email {
        policy.ask_for_email = ask;
    }
    if let Some(max) = change.max_unhelpful_answers {
        policy.max_unhelpful_answers = count("maxUnhelpfulAnswers", max)?;
    }
    match change.auto_resolve_after_seconds {
        None => {}
        Some(None) => policy.auto_resolve_after_seconds = None,
        Some(Some(seconds)) => {
            let seconds = u32::try_from(seconds)
                .ok()
                .filter(|s| (1..=MAX_AUTO_RESOLVE_SECONDS).contains(s))
                .ok_or_else(|| {
                    AppError::bad_input(
                        "autoResolveAfterSeconds",
                        "must be between 1 second and 30 days, or null for never",
                    )
                })?;
            policy.auto_resolve_after_seconds = Some(seconds);
        }
    }
    let by = By::agent(admin, address);
    workspaces::set_policy(core, &admin.workspace_id, &policy, &by, fields).await?;
    Ok(policy)
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
}
