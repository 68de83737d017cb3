//! The case file of a handoff: everything the human who takes over needs, so the
//! visitor never repeats themselves.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::domain::Core;
pub use crate::domain::core::feed::CaseFile;
use crate::entity::{
    Author, HandoffReason, conversation, conversation_tag, handoff, insight_tag, lead, message,
};
use crate::error::{AppError, AppResult};

fn reason_text(reason: HandoffReason) -> &'static str {
    match reason {
        HandoffReason::VisitorRequested => "the visitor asked for a person",
        HandoffReason::LowConfidence => "the AI was not confident it could answer from the docs",
        HandoffReason::Unresolved => "the AI's answers did not resolve it",
        HandoffReason::Policy => "the topic is one the team always handles",
        HandoffReason::AgentTakeover => "an agent took over the chat",
        HandoffReason::AiRequested => "the AI judged that a person should answer",
    }
}

fn quote(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        format!("{}…", flat.chars().take(max).collect::<String>().trim_end())
    }
}

/// A few sentences: the question, what the AI suggested, why it escalated, who the
/// visitor is and what the chat is about.
pub fn summarize(
    handoff: &handoff::Model,
    question: Option<&str>,
    ai_answers: &[message::Model],
    lead: Option<&lead::Model>,
    tags: &[(conversation_tag::Model, std::sync::Arc<insight_tag::Model>)],
) -> AppResult<String> {
    let mut parts = Vec::new();
    match question {
        Some(q) => parts.push(format!("The visitor asked: “{}”.", quote(q, 200))),
        None => parts.push("The visitor has not asked anything yet.".to_owned()),
    }
    if let Some(best) = ai_answers.iter().max_by(|a, b| {
        a.confidence
            .unwrap_or(0.0)
            .total_cmp(&b.confidence.unwrap_or(0.0))
    }) {
        let titles: Vec<String> = best
            .sources()?
            .iter()
            .map(|s| format!("“{}”", s.title))
            .collect();
        let cited = if titles.is_empty() {
            String::new()
        } else {
            format!(", citing {}", titles.join(", "))
        };
        parts.push(format!(
            "The AI answered {} time{} (best confidence {:.2}{cited}).",
            ai_answers.len(),
            if ai_answers.len() == 1 { "" } else { "s" },
            best.confidence.unwrap_or(0.0),
        ));
    } else {
        parts.push("The AI did not answer.".to_owned());
    }
    let mut why = format!("Escalated because {}", reason_text(handoff.reason));
    if let Some(note) = handoff.note.as_deref().filter(|n| !n.trim().is_empty()) {
        why.push_str(&format!(": “{}”", quote(note, 160)));
    }
    parts.push(format!("{why}."));
    if let Some(lead) = lead {
        let who: Vec<&str> = [
            lead.name.as_deref(),
            lead.email.as_deref(),
            lead.company.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let fields = lead.fields()?;
        let details: Vec<String> = fields
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}: {}",
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string())
                )
            })
            .collect();
        if !who.is_empty() || !details.is_empty() {
            let mut line = format!("Lead: {}", who.join(", "));
            if !details.is_empty() {
                line.push_str(&format!(" ({})", details.join(", ")));
            }
            parts.push(format!("{}.", line.trim_end_matches(": ")));
        }
    }
    if !tags.is_empty() {
        let labels: Vec<&str> = tags.iter().map(|(_, t)| t.label.as_str()).collect();
        parts.push(format!("Topics: {}.", labels.join(", ")));
    }
    Ok(parts.join(" "))
}

/// Gather the case file of `handoff`.
pub async fn build(core: &Core, handoff: &handoff::Model) -> AppResult<CaseFile> {
    let conversation = conversation::Entity::find_by_id(handoff.conversation_id.as_str())
        .one(&core.db.reader)
        .await?
        .ok_or(AppError::NotFound("conversation"))?;
    let transcript = message::Entity::find()
        .filter(message::Column::ConversationId.eq(conversation.id.as_str()))
        .order_by_asc(message::Column::Seq)
        .all(&core.db.reader)
        .await?;
    // The AI's context when it handed off started after its last boundary.
    let boundary = if conversation.ai_boundary_seq < handoff.trigger_seq {
        conversation.ai_boundary_seq
    } else {
        0
    };
    let window =
        |m: &&message::Model| m.seq > boundary && m.seq <= handoff.trigger_seq.max(boundary + 1);
    let question = transcript
        .iter()
        .filter(window)
        .find(|m| m.author == Author::Visitor)
        .map(|m| m.body.clone());
    let ai_answers: Vec<message::Model> = transcript
        .iter()
        .filter(|m| m.author == Author::Ai && m.seq <= handoff.trigger_seq)
        .cloned()
        .collect();
    let attempts = ai_answers.iter().filter(|m| m.seq > boundary).count();
    let lead = match &conversation.lead_id {
        Some(id) => {
            lead::Entity::find_by_id(id.as_str())
                .one(&core.db.reader)
                .await?
        }
        None => None,
    };
    let tags =
        crate::domain::knowledge::tags::applied(core, std::slice::from_ref(&conversation.id))
            .await?;
    let recent: Vec<message::Model> = ai_answers
        .iter()
        .filter(|m| m.seq > boundary)
        .cloned()
        .collect();
    let summary = summarize(handoff, question.as_deref(), &recent, lead.as_ref(), &tags)?;
    Ok(CaseFile {
        summary,
        question,
        transcript,
        ai_answers,
        lead,
        conversation,
        tags,
        attempts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::HandoffStatus;

    #[test]
    fn the_summary_says_what_was_asked_tried_and_why() {
        let handoff = handoff::Model {
            id: "hof".into(),
            workspace_id: "ws".into(),
            conversation_id: "conv".into(),
            reason: HandoffReason::LowConfidence,
            status: HandoffStatus::Requested,
            team_id: None,
            accepted_by: None,
            note: None,
            trigger_seq: 3,
            requested_at: 0,
            accepted_at: None,
            resolved_at: None,
            cancelled_at: None,
            out_of_hours: false,
            offered_to: None,
            offer_expires_at: None,
            sla_due_at: None,
            sla_breached_at: None,
        };
        let answer = message::Model {
            id: "m2".into(),
            workspace_id: "ws".into(),
            conversation_id: "conv".into(),
            seq: 2,
            author: Author::Ai,
            agent_id: None,
            body: "…".into(),
            internal: false,
            confidence: Some(0.31),
            sources: r#"[{"articleId":"art","title":"Scheduling drafts","url":"u","score":0.3}]"#
                .into(),
            client_message_id: None,
            reply_to_seq: Some(1),
            created_at: 0,
        };
        let summary = summarize(
            &handoff,
            Some("Why did my scheduled post not go live?"),
            &[answer],
            None,
            &[],
        )
        .expect("sources decode");
        assert!(
            summary.contains("“Why did my scheduled post not go live?”"),
            "{summary}"
        );
        assert!(
            summary.contains("answered 1 time (best confidence 0.31, citing “Scheduling drafts”)"),
            "{summary}"
        );
        assert!(summary.contains("not confident"), "{summary}");
    }
}
