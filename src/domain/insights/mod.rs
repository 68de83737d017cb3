//! The insights digest: which topics cause handoffs, how fast humans pick them up,
//! and which questions the docs do not answer.
//!
//! Every number is an aggregate SQL query over the period's conversations (the
//! "cohort": conversations started in `[from, to)`, of one team if asked), the same
//! SQL on SQLite and PostgreSQL. Medians and percentiles are read with
//! `ORDER BY … LIMIT … OFFSET`, one row each. Only the docs gaps read text (a bounded
//! number of recent unanswered questions), to group them by wording.

use sea_orm::{ConnectionTrait, QueryResult, Value};

use crate::domain::Core;
use crate::error::{AppError, AppResult};

use crate::db::stmt;

mod feedback;
mod gaps;
mod handoffs;
mod impact;
mod usage;

pub use feedback::{AnswerFeedback, ArticleFeedback, answer_feedback, article_feedback};
pub use gaps::{Gap, docs_gaps, group_questions};
pub use handoffs::{
    HandedOff, HandoffStats, SlaBreaches, handoff_stats, out_of_hours_handoffs, sla_breaches,
};
pub use impact::{ArticleImpact, article_impact};
pub use usage::{ModelUsage, model_usage};

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
    /// The conversations of `workspace_id` started in `[from, to)` (milliseconds),
    /// of the team `team_id` when given (a team of the workspace).
    pub async fn of(
        core: &Core,
        workspace_id: &str,
        from: i64,
        to: i64,
        team_id: Option<String>,
    ) -> AppResult<Cohort> {
        if from >= to {
            return Err(AppError::bad_input("to", "must be after `from`"));
        }
        if let Some(team) = &team_id {
            crate::domain::tenancy::teams::get(core, workspace_id, team).await?;
        }
        Ok(Cohort {
            workspace_id: workspace_id.to_owned(),
            from,
            to,
            team_id,
        })
    }

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

async fn rows(core: &Core, sql: &str, values: Vec<Value>) -> AppResult<Vec<QueryResult>> {
    Ok(core
        .db
        .analytics
        .query_all_raw(stmt(core.db.backend(), sql, values))
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

    /// The summary of a whole series: its buckets cover the cohort.
    pub fn of(points: &[Point]) -> Summary {
        points.iter().fold(Summary::default(), |sum, p| Summary {
            conversations: sum.conversations + p.conversations,
            ai_resolved: sum.ai_resolved + p.ai_resolved,
            handed_off: sum.handed_off + p.handed_off,
            handoffs: sum.handoffs + p.handoffs,
        })
    }
}

/// Average visitor rating (1–5) of the cohort, and how many rated.
pub async fn csat(core: &Core, cohort: &Cohort) -> AppResult<(Option<f64>, i64)> {
    let (condition, values) = cohort.condition();
    let sql = format!(
        "SELECT COUNT(*) AS n, SUM(r.score) AS total FROM conversation_ratings r \
         JOIN conversations c ON c.id = r.conversation_id WHERE {condition}"
    );
    let row = &rows(core, &sql, values).await?[0];
    let (n, total) = (int(row, "n")?, int(row, "total")?);
    Ok(((n > 0).then(|| total as f64 / n as f64), n))
}

/// Per topic: conversations of the cohort carrying it, and of those, handed off.
#[derive(Clone, Debug, PartialEq)]
pub struct Topic {
    pub tag_id: String,
    pub conversations: i64,
    pub handoffs: i64,
    pub previous_period_handoffs: i64,
}

async fn topic_counts(core: &Core, cohort: &Cohort) -> AppResult<Vec<(String, i64, i64)>> {
    let (condition, values) = cohort.condition();
    // The handed-off conversations are read once, as a set each row is looked up
    // in (a hashed subplan on PostgreSQL, an ephemeral index on SQLite): probed per
    // applied tag with `EXISTS`, they cost PostgreSQL 22 ms at 10,000
    // conversations, 10 ms so; joined as a `DISTINCT` subquery, SQLite scanned it
    // per row (1.9 s).
    let sql = format!(
        "SELECT ct.tag_id AS tag_id, COUNT(*) AS conversations, \
         SUM(CASE WHEN c.id IN (SELECT h.conversation_id FROM handoffs h \
           WHERE h.workspace_id = ?) THEN 1 ELSE 0 END) AS handoffs \
         FROM conversation_tags ct JOIN conversations c ON c.id = ct.conversation_id \
         WHERE ct.removed_at IS NULL AND {condition} GROUP BY ct.tag_id"
    );
    let mut all: Vec<Value> = vec![cohort.workspace_id.as_str().into()];
    all.extend(values);
    rows(core, &sql, all)
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
pub async fn topics(core: &Core, cohort: &Cohort) -> AppResult<Vec<Topic>> {
    let previous = cohort.previous();
    let (now, before) =
        tokio::try_join!(topic_counts(core, cohort), topic_counts(core, &previous))?;
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
    /// Conversations handed to humans at least once.
    pub handed_off: i64,
    pub ai_resolved: i64,
    /// Handoffs of the bucket's conversations.
    pub handoffs: i64,
}

/// Buckets a series may have.
pub const MAX_BUCKETS: i64 = 2_000;

/// The period's series by bucket of `bucket_ms` and its handoff statistics: the
/// conversation pass (`series`) and the handoff pass ([`handoff_stats`]), run
/// concurrently and merged.
pub async fn passes(
    core: &Core,
    cohort: &Cohort,
    bucket_ms: i64,
) -> AppResult<(Vec<Point>, HandoffStats)> {
    let (points, handoffs) = tokio::try_join!(
        series(core, cohort, bucket_ms),
        handoff_stats(core, cohort, bucket_ms),
    )?;
    Ok((with_handoffs(points, &handoffs), handoffs))
}

/// Counts per bucket of `bucket_ms`, from `cohort.from`, every bucket present:
/// one pass over the cohort's conversations (how many, how many resolved by the AI
/// or the clock; the AI-resolved ones are those less the handed-off ones, which
/// [`with_handoffs`] takes from the handoff pass).
async fn series(core: &Core, cohort: &Cohort, bucket_ms: i64) -> AppResult<Vec<Point>> {
    let buckets = ((cohort.to - cohort.from) + bucket_ms - 1) / bucket_ms;
    if buckets > MAX_BUCKETS {
        return Err(AppError::bad_input(
            "bucket",
            "too many buckets for this period; use a larger bucket",
        ));
    }
    let (condition, values) = cohort.condition();
    let sql = format!(
        "SELECT (c.created_at - ?) / ? AS bucket, COUNT(*) AS conversations, \
         SUM(CASE WHEN c.resolved_by IN ('AI', 'AUTO') THEN 1 ELSE 0 END) AS resolved \
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
    for row in rows(core, &sql, all).await? {
        let bucket = int(&row, "bucket")?;
        if let Some(point) = usize::try_from(bucket).ok().and_then(|b| points.get_mut(b)) {
            point.conversations = int(&row, "conversations")?;
            point.ai_resolved = int(&row, "resolved")?;
        }
    }
    Ok(points)
}

/// The series of [`series`] with the handoff counts of the same buckets.
fn with_handoffs(mut points: Vec<Point>, handoffs: &HandoffStats) -> Vec<Point> {
    for &(bucket, handed) in &handoffs.buckets {
        if let Some(point) = usize::try_from(bucket).ok().and_then(|b| points.get_mut(b)) {
            point.handed_off = handed.conversations;
            point.handoffs = handed.handoffs;
            point.ai_resolved -= handed.resolved;
        }
    }
    points
}

/// A series with `n` times larger buckets, from the same start: every `n`
/// consecutive points summed.
pub fn regroup(points: &[Point], n: usize) -> Vec<Point> {
    points
        .chunks(n.max(1))
        .map(|chunk| {
            let sum = Summary::of(chunk);
            Point {
                start: chunk[0].start,
                conversations: sum.conversations,
                handed_off: sum.handed_off,
                ai_resolved: sum.ai_resolved,
                handoffs: sum.handoffs,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regrouping_sums_consecutive_buckets_from_the_same_start() {
        let days: Vec<Point> = (0..9)
            .map(|i| Point {
                start: i * 10,
                conversations: 1,
                handed_off: i % 2,
                ai_resolved: 1 - i % 2,
                handoffs: 2 * (i % 2),
            })
            .collect();
        let weeks = regroup(&days, 7);
        assert_eq!(weeks.len(), 2);
        assert_eq!((weeks[0].start, weeks[1].start), (0, 70));
        assert_eq!(weeks[0].conversations, 7);
        assert_eq!(weeks[0].handed_off, 3);
        assert_eq!(weeks[0].ai_resolved, 4);
        assert_eq!(weeks[0].handoffs, 6);
        assert_eq!(weeks[1].conversations, 2);
        assert_eq!(Summary::of(&weeks), Summary::of(&days));
    }
}
