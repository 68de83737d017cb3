//! The insights digest: which topics cause handoffs, how fast humans pick them up,
//! and which questions the docs do not answer.
//!
//! Every number is an aggregate SQL query over the period's conversations (the
//! "cohort": conversations started in `[from, to)`, of one team if asked), the same
//! SQL on SQLite and PostgreSQL. Medians and percentiles are read with
//! `ORDER BY … LIMIT … OFFSET`, one row each. Only the docs gaps read text (a bounded
//! number of recent unanswered questions), to group them by wording.

use sea_orm::{ConnectionTrait, QueryResult, Value};

use crate::entity::HandoffReason;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

use super::{stmt, text};

/// Unanswered questions read to find docs gaps.
const GAP_SAMPLE: u64 = 2_000;
/// Docs gaps reported.
const MAX_GAPS: usize = 20;
/// Example conversations per docs gap.
const GAP_EXAMPLES: usize = 5;

/// Which conversations a digest counts.
#[derive(Clone, Debug)]
pub struct Cohort {
    pub workspace_id: String,
    /// Milliseconds since the epoch; conversations started in `[from, to)`.
    pub from: i64,
    pub to: i64,
    pub team_id: Option<String>,
}

impl Cohort {
    /// The same span just before this one (for trends).
    pub fn previous(&self) -> Cohort {
        let span = self.to - self.from;
        Cohort {
            from: self.from - span,
            to: self.from,
            ..self.clone()
        }
    }

    /// The SQL condition on conversations `c`, and its values.
    fn condition(&self) -> (String, Vec<Value>) {
        let mut sql = "c.workspace_id = ? AND c.created_at >= ? AND c.created_at < ?".to_owned();
        let mut values: Vec<Value> = vec![
            self.workspace_id.as_str().into(),
            self.from.into(),
            self.to.into(),
        ];
        if let Some(team) = &self.team_id {
            sql.push_str(" AND c.team_id = ?");
            values.push(team.as_str().into());
        }
        (sql, values)
    }
}

const HANDED_OFF: &str = "EXISTS (SELECT 1 FROM handoffs h WHERE h.conversation_id = c.id)";

async fn rows(state: &AppState, sql: &str, values: Vec<Value>) -> AppResult<Vec<QueryResult>> {
    Ok(state
        .db
        .reader
        .query_all_raw(stmt(state.db.backend(), sql, values))
        .await?)
}

fn int(row: &QueryResult, column: &str) -> AppResult<i64> {
    // SUM over no rows is NULL; COUNT and SUM are BIGINT or NUMERIC by database.
    if let Ok(value) = row.try_get::<Option<i64>>("", column) {
        return Ok(value.unwrap_or(0));
    }
    let value: Option<f64> = row.try_get("", column)?;
    Ok(value.unwrap_or(0.0) as i64)
}

/// Conversations, AI-resolved ones and handed-off ones of the cohort.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Summary {
    pub conversations: i64,
    pub ai_resolved: i64,
    pub handed_off: i64,
    pub handoffs: i64,
}

impl Summary {
    /// Share of the period's conversations handed to humans at least once.
    pub fn handoff_rate(&self) -> f64 {
        if self.conversations == 0 {
            0.0
        } else {
            self.handed_off as f64 / self.conversations as f64
        }
    }
}

pub async fn summary(state: &AppState, cohort: &Cohort) -> AppResult<Summary> {
    let (condition, values) = cohort.condition();
    let sql = format!(
        "SELECT COUNT(*) AS conversations, \
         SUM(CASE WHEN c.status = 'RESOLVED' AND NOT {HANDED_OFF} THEN 1 ELSE 0 END) AS ai_resolved, \
         SUM(CASE WHEN {HANDED_OFF} THEN 1 ELSE 0 END) AS handed_off, \
         (SELECT COUNT(*) FROM handoffs h JOIN conversations c ON c.id = h.conversation_id WHERE {condition}) AS handoffs \
         FROM conversations c WHERE {condition}"
    );
    let mut all = values.clone();
    all.extend(values);
    let row = rows(state, &sql, all)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| AppError::internal("no row"))?;
    Ok(Summary {
        conversations: int(&row, "conversations")?,
        ai_resolved: int(&row, "ai_resolved")?,
        handed_off: int(&row, "handed_off")?,
        handoffs: int(&row, "handoffs")?,
    })
}

/// The median and 90th percentile (nearest rank) of a duration over the cohort's
/// handoffs, in seconds; `None` when there is no value.
pub async fn durations(
    state: &AppState,
    cohort: &Cohort,
    end_column: &str,
) -> AppResult<(Option<f64>, Option<f64>)> {
    let (condition, values) = cohort.condition();
    let from = format!(
        "FROM handoffs h JOIN conversations c ON c.id = h.conversation_id \
         WHERE {condition} AND h.{end_column} IS NOT NULL"
    );
    let count_sql = format!("SELECT COUNT(*) AS n {from}");
    let n = int(&rows(state, &count_sql, values.clone()).await?[0], "n")?;
    if n == 0 {
        return Ok((None, None));
    }
    let nth = |offset: i64, limit: i64| {
        let sql = format!(
            "SELECT h.{end_column} - h.requested_at AS ms {from} ORDER BY ms LIMIT {limit} OFFSET {offset}"
        );
        let values = values.clone();
        async move {
            let found = rows(state, &sql, values).await?;
            found
                .iter()
                .map(|r| int(r, "ms"))
                .collect::<AppResult<Vec<i64>>>()
        }
    };
    let middle = nth((n - 1) / 2, if n % 2 == 0 { 2 } else { 1 }).await?;
    let median = middle.iter().sum::<i64>() as f64 / middle.len().max(1) as f64 / 1000.0;
    let rank = ((n as f64) * 0.9).ceil() as i64;
    let p90 = nth(rank - 1, 1)
        .await?
        .first()
        .map(|ms| *ms as f64 / 1000.0);
    Ok((Some(median), p90))
}

/// Average visitor rating (1–5) of the cohort, and how many rated.
pub async fn csat(state: &AppState, cohort: &Cohort) -> AppResult<(Option<f64>, i64)> {
    let (condition, values) = cohort.condition();
    let sql = format!(
        "SELECT COUNT(*) AS n, SUM(r.score) AS total FROM conversation_ratings r \
         JOIN conversations c ON c.id = r.conversation_id WHERE {condition}"
    );
    let row = &rows(state, &sql, values).await?[0];
    let (n, total) = (int(row, "n")?, int(row, "total")?);
    Ok(((n > 0).then(|| total as f64 / n as f64), n))
}

/// Handoffs by reason.
pub async fn reasons(state: &AppState, cohort: &Cohort) -> AppResult<Vec<(HandoffReason, i64)>> {
    let (condition, values) = cohort.condition();
    let sql = format!(
        "SELECT h.reason AS reason, COUNT(*) AS n FROM handoffs h \
         JOIN conversations c ON c.id = h.conversation_id WHERE {condition} \
         GROUP BY h.reason ORDER BY n DESC, h.reason"
    );
    let mut out = Vec::new();
    for row in rows(state, &sql, values).await? {
        let reason: String = row.try_get("", "reason")?;
        let reason = match reason.as_str() {
            "VISITOR_REQUESTED" => HandoffReason::VisitorRequested,
            "LOW_CONFIDENCE" => HandoffReason::LowConfidence,
            "UNRESOLVED" => HandoffReason::Unresolved,
            "POLICY" => HandoffReason::Policy,
            _ => HandoffReason::AgentTakeover,
        };
        out.push((reason, int(&row, "n")?));
    }
    Ok(out)
}

/// Per topic: conversations of the cohort carrying it, and of those, handed off.
#[derive(Clone, Debug, PartialEq)]
pub struct Topic {
    pub tag_id: String,
    pub conversations: i64,
    pub handoffs: i64,
    pub previous_period_handoffs: i64,
}

async fn topic_counts(state: &AppState, cohort: &Cohort) -> AppResult<Vec<(String, i64, i64)>> {
    let (condition, values) = cohort.condition();
    let sql = format!(
        "SELECT ct.tag_id AS tag_id, COUNT(*) AS conversations, \
         SUM(CASE WHEN {HANDED_OFF} THEN 1 ELSE 0 END) AS handoffs \
         FROM conversation_tags ct JOIN conversations c ON c.id = ct.conversation_id \
         WHERE ct.removed_at IS NULL AND {condition} GROUP BY ct.tag_id"
    );
    rows(state, &sql, values)
        .await?
        .iter()
        .map(|row| {
            Ok((
                row.try_get("", "tag_id")?,
                int(row, "conversations")?,
                int(row, "handoffs")?,
            ))
        })
        .collect()
}

/// Topics by handoffs (then conversations), with the previous period's handoffs.
pub async fn topics(state: &AppState, cohort: &Cohort) -> AppResult<Vec<Topic>> {
    let previous = cohort.previous();
    let (now, before) =
        tokio::try_join!(topic_counts(state, cohort), topic_counts(state, &previous))?;
    let mut topics: Vec<Topic> = now
        .into_iter()
        .map(|(tag_id, conversations, handoffs)| {
            let previous = before
                .iter()
                .find(|(id, _, _)| *id == tag_id)
                .map_or(0, |(_, _, h)| *h);
            Topic {
                tag_id,
                conversations,
                handoffs,
                previous_period_handoffs: previous,
            }
        })
        .collect();
    topics.sort_by(|a, b| {
        b.handoffs
            .cmp(&a.handoffs)
            .then(b.conversations.cmp(&a.conversations))
            .then(a.tag_id.cmp(&b.tag_id))
    });
    Ok(topics)
}

/// One bucket of the series.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Point {
    /// Start of the bucket, ms since the epoch.
    pub start: i64,
    pub conversations: i64,
    pub handed_off: i64,
    pub ai_resolved: i64,
}

/// Counts per bucket of `bucket_ms`, from `cohort.from`, every bucket present.
pub async fn series(state: &AppState, cohort: &Cohort, bucket_ms: i64) -> AppResult<Vec<Point>> {
    let buckets = ((cohort.to - cohort.from) + bucket_ms - 1) / bucket_ms;
    if buckets > 2_000 {
        return Err(AppError::bad_input(
            "bucket",
            "too many buckets for this period; use a larger bucket",
        ));
    }
    let (condition, values) = cohort.condition();
    let sql = format!(
        "SELECT (c.created_at - ?) / ? AS bucket, COUNT(*) AS conversations, \
         SUM(CASE WHEN {HANDED_OFF} THEN 1 ELSE 0 END) AS handed_off, \
         SUM(CASE WHEN c.status = 'RESOLVED' AND NOT {HANDED_OFF} THEN 1 ELSE 0 END) AS ai_resolved \
         FROM conversations c WHERE {condition} GROUP BY bucket ORDER BY bucket"
    );
    let mut all: Vec<Value> = vec![cohort.from.into(), bucket_ms.into()];
    all.extend(values);
    let mut points: Vec<Point> = (0..buckets)
        .map(|i| Point {
            start: cohort.from + i * bucket_ms,
            ..Point::default()
        })
        .collect();
    for row in rows(state, &sql, all).await? {
        let bucket = int(&row, "bucket")?;
        if let Some(point) = usize::try_from(bucket).ok().and_then(|b| points.get_mut(b)) {
            point.conversations = int(&row, "conversations")?;
            point.handed_off = int(&row, "handed_off")?;
            point.ai_resolved = int(&row, "ai_resolved")?;
        }
    }
    Ok(points)
}

/// Visitor questions the AI could not answer with confidence, grouped by wording.
#[derive(Clone, Debug, PartialEq)]
pub struct Gap {
    /// The most recent wording.
    pub question: String,
    /// The content words the group shares.
    pub terms: Vec<String>,
    pub count: i64,
    pub conversation_ids: Vec<String>,
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
                },
            )),
        }
    }
    let mut gaps: Vec<Gap> = groups.into_iter().map(|(_, gap)| gap).collect();
    gaps.sort_by_key(|gap| std::cmp::Reverse(gap.count));
    gaps.truncate(MAX_GAPS);
    gaps
}

/// The docs gaps of the cohort: questions answered below `threshold`, and those
/// handed off as `LOW_CONFIDENCE`, newest first.
pub async fn docs_gaps(state: &AppState, cohort: &Cohort, threshold: f64) -> AppResult<Vec<Gap>> {
    let (condition, values) = cohort.condition();
    let sql = format!(
        "SELECT q.conversation_id AS conversation_id, q.body AS body, q.created_at AS at FROM messages a \
         JOIN messages q ON q.conversation_id = a.conversation_id AND q.seq = a.reply_to_seq \
         JOIN conversations c ON c.id = a.conversation_id \
         WHERE a.author = 'AI' AND (a.confidence IS NULL OR a.confidence < ?) AND {condition} \
         UNION ALL \
         SELECT q.conversation_id AS conversation_id, q.body AS body, q.created_at AS at FROM handoffs h \
         JOIN conversations c ON c.id = h.conversation_id \
         JOIN messages q ON q.conversation_id = h.conversation_id AND q.seq = ( \
           SELECT MAX(m.seq) FROM messages m WHERE m.conversation_id = h.conversation_id \
           AND m.author = 'VISITOR' AND m.seq <= h.trigger_seq) \
         WHERE h.reason = 'LOW_CONFIDENCE' AND {condition} \
         ORDER BY at DESC LIMIT {GAP_SAMPLE}"
    );
    let mut all: Vec<Value> = vec![threshold.into()];
    all.extend(values.clone());
    all.extend(values);
    let questions: Vec<(String, String)> = rows(state, &sql, all)
        .await?
        .iter()
        .map(|row| {
            Ok((
                row.try_get("", "conversation_id")?,
                row.try_get("", "body")?,
            ))
        })
        .collect::<AppResult<_>>()?;
    Ok(group_questions(&questions))
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
