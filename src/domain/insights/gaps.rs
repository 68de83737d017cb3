//! Docs gaps: the questions the AI could not answer with confidence, grouped by
//! wording, biggest first.

use sea_orm::Value;

use super::{Cohort, int, rows};
use crate::domain::Core;
use crate::error::AppResult;

use crate::domain::knowledge::responder::{self, Source};
use crate::domain::knowledge::{articles, text};

/// Unanswered questions read to find docs gaps, of each kind (unsure answers, and
/// low-confidence handoffs): the most recent 500 of each, enough to rank the twenty
/// most frequent wordings, and recent, which is what the docs lack now. A fixed
/// cost: reading more cost the digest a third of its time at 10,000 conversations.
const GAP_SAMPLE: u64 = 500;
/// Docs gaps reported.
const MAX_GAPS: usize = 20;
/// Example conversations per docs gap.
const GAP_EXAMPLES: usize = 5;

/// Visitor questions the AI could not answer with confidence, grouped by wording.
#[derive(Clone, Debug, PartialEq)]
pub struct Gap {
    /// The most recent wording.
    pub question: String,
    /// The content words the group shares.
    pub terms: Vec<String>,
    pub count: i64,
    pub conversation_ids: Vec<String>,
    /// The article that answers the question now (with confidence at least the
    /// threshold), if one does: the gap is closed.
    pub answered_by: Option<Source>,
    /// When that article last changed: the gap is answered since then, at the
    /// latest.
    pub answered_since: Option<i64>,
}

/// Group questions that share most of their content words with the first question
/// of a group (overlap coefficient ≥ 0.6: shared words over the shorter question's
/// words, so "Salesforce integration?" joins "Does Inkwell integrate with
/// Salesforce CRM?"); biggest groups first.
pub fn group_questions(questions: &[(String, String)]) -> Vec<Gap> {
    let mut groups: Vec<(Vec<String>, Gap)> = Vec::new();
    for (conversation_id, question) in questions {
        let terms = text::terms(question);
        if terms.is_empty() {
            continue;
        }
        let similar = groups.iter_mut().find(|(anchor, _)| {
            let shared = terms.iter().filter(|t| anchor.contains(t)).count();
            let shorter = anchor.len().min(terms.len());
            shorter > 0 && shared as f64 / shorter as f64 >= 0.6
        });
        match similar {
            Some((_, gap)) => {
                gap.count += 1;
                gap.terms.retain(|t| terms.contains(t));
                if gap.conversation_ids.len() < GAP_EXAMPLES
                    && !gap.conversation_ids.contains(conversation_id)
                {
                    gap.conversation_ids.push(conversation_id.clone());
                }
            }
            None => groups.push((
                terms.clone(),
                Gap {
                    question: question.clone(),
                    terms,
                    count: 1,
                    conversation_ids: vec![conversation_id.clone()],
                    answered_by: None,
                    answered_since: None,
                },
            )),
        }
    }
    let mut gaps: Vec<Gap> = groups.into_iter().map(|(_, gap)| gap).collect();
    gaps.sort_by_key(|gap| std::cmp::Reverse(gap.count));
    gaps.truncate(MAX_GAPS);
    gaps
}

/// The docs gaps of the cohort: the most recent questions the AI answered below
/// `threshold`, and those handed off as `LOW_CONFIDENCE`, newest first, each
/// question once (an unsure answer that led to a handoff is one gap, not two).
///
/// Two statements, each reading newest first along an index and stopping at the
/// sample size: the AI's answers through `ix_messages_ai_answers`, the handoffs
/// through `(workspace_id, requested_at)`.
pub async fn docs_gaps(core: &Core, cohort: &Cohort, threshold: f64) -> AppResult<Vec<Gap>> {
    let (condition, values) = cohort.condition();
    let answers = format!(
        "SELECT a.created_at AS at, q.conversation_id AS conversation_id, q.seq AS seq, \
         q.body AS body FROM messages a \
         JOIN conversations c ON c.id = a.conversation_id \
         JOIN messages q ON q.conversation_id = a.conversation_id AND q.seq = a.reply_to_seq \
         WHERE a.workspace_id = ? AND a.author = 'AI' AND c.erased_at IS NULL \
         AND (a.confidence IS NULL OR a.confidence < ?) AND {condition} \
         ORDER BY a.created_at DESC LIMIT {GAP_SAMPLE}"
    );
    // The sample of handoffs first, then each one's question, both looked up by
    // index per row: joined with the messages, PostgreSQL hashed every message of
    // the workspace (300 ms at 100,000 conversations) to find 500.
    let handed = format!(
        "SELECT x.at AS at, x.conversation_id AS conversation_id, x.seq AS seq, ( \
           SELECT q.body FROM messages q \
           WHERE q.conversation_id = x.conversation_id AND q.seq = x.seq) AS body \
         FROM ( \
           SELECT h.requested_at AS at, h.conversation_id AS conversation_id, ( \
             SELECT MAX(m.seq) FROM messages m WHERE m.conversation_id = h.conversation_id \
             AND m.author = 'VISITOR' AND m.seq <= h.trigger_seq) AS seq \
           FROM handoffs h JOIN conversations c ON c.id = h.conversation_id \
           WHERE h.workspace_id = ? AND h.reason = 'LOW_CONFIDENCE' AND c.erased_at IS NULL \
           AND {condition} \
           ORDER BY h.requested_at DESC LIMIT {GAP_SAMPLE}) x \
         WHERE x.seq IS NOT NULL ORDER BY x.at DESC"
    );
    let workspace: Value = cohort.workspace_id.as_str().into();
    let mut answer_values = vec![workspace.clone(), threshold.into()];
    answer_values.extend(values.clone());
    let mut handed_values = vec![workspace];
    handed_values.extend(values);
    let (answers, handed) = tokio::try_join!(
        rows(core, &answers, answer_values),
        rows(core, &handed, handed_values)
    )?;
    let mut questions: Vec<(i64, String, i64, String)> = answers
        .iter()
        .chain(&handed)
        .map(|row| {
            Ok((
                int(row, "at")?,
                row.try_get("", "conversation_id")?,
                int(row, "seq")?,
                row.try_get("", "body")?,
            ))
        })
        .collect::<AppResult<_>>()?;
    questions.sort_by_key(|q| std::cmp::Reverse(q.0));
    let mut seen = std::collections::HashSet::new();
    let newest: Vec<(String, String)> = questions
        .into_iter()
        .filter(|(_, conversation, seq, _)| seen.insert((conversation.clone(), *seq)))
        .take(GAP_SAMPLE as usize)
        .map(|(_, conversation, _, body)| (conversation, body))
        .collect();
    let mut gaps = group_questions(&newest);
    // A few at a time: one after the other, the twenty searches were the digest's
    // longest path at 10,000 conversations.
    let mut answered = Vec::with_capacity(gaps.len());
    for chunk in gaps.chunks(GAP_CHECKS_AT_ONCE) {
        let checks: Vec<_> = chunk
            .iter()
            .map(|gap| answered_now(core, &cohort.workspace_id, &gap.question, threshold))
            .collect();
        answered.extend(futures_util::future::try_join_all(checks).await?);
    }
    for (gap, answered) in gaps.iter_mut().zip(answered) {
        if let Some((source, since)) = answered {
            gap.answered_by = Some(source);
            gap.answered_since = since;
        }
    }
    Ok(gaps)
}

/// Searches run at once to see which gaps the docs answer now.
const GAP_CHECKS_AT_ONCE: usize = 4;

/// The article that answers `question` now with confidence at least `threshold`,
/// and when it last changed; `None` when none does.
async fn answered_now(
    core: &Core,
    workspace_id: &str,
    question: &str,
    threshold: f64,
) -> AppResult<Option<(Source, Option<i64>)>> {
    let now = responder::retrieve(core, workspace_id, question).await?;
    if now.answer.confidence < threshold {
        return Ok(None);
    }
    let Some(source) = now.answer.sources.into_iter().next() else {
        return Ok(None);
    };
    let since = articles::last_revised(core, &source.article_id).await?;
    Ok(Some((source, since)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_wordings_are_grouped() {
        let questions = [
            (
                "c1".to_owned(),
                "Does Inkwell integrate with Salesforce?".to_owned(),
            ),
            ("c2".to_owned(), "Salesforce integration?".to_owned()),
            (
                "c3".to_owned(),
                "How do I cancel my subscription?".to_owned(),
            ),
            (
                "c4".to_owned(),
                "integrate inkwell with salesforce CRM".to_owned(),
            ),
        ];
        let gaps = group_questions(&questions);
        assert_eq!(gaps.len(), 2, "{gaps:#?}");
        assert_eq!(gaps[0].count, 3);
        assert_eq!(gaps[0].conversation_ids, ["c1", "c2", "c4"]);
        assert!(gaps[0].terms.contains(&"salesforc".to_owned()));
        assert_eq!(gaps[1].question, "How do I cancel my subscription?");
    }
}
