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
use crate::entity::HandoffReason;
use crate::error::{AppError, AppResult};

use crate::db::stmt;
use crate::domain::knowledge::text;

/// Unanswered questions read to find docs gaps, of each kind (unsure answers, and
/// low-confidence handoffs): the most recent 500 of each, enough to rank the twenty
/// most frequent wordings, and recent, which is what the docs lack now. A fixed
/// cost: reading more cost the digest a third of its time at 10,000 conversations.
const GAP_SAMPLE: u64 = 500;
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

const HANDED_OFF: &str = "EXISTS (SELECT 1 FROM handoffs h WHERE h.conversation_id = c.id)";

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

/// How fast handoffs were accepted and resolved, why they happened, and how many
/// there were per bucket of the series.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HandoffStats {
    /// Median and 90th percentile (nearest rank) of seconds from request to
    /// acceptance; `None` when nothing was accepted.
    pub accept: (Option<f64>, Option<f64>),
    /// The same, to resolution.
    pub resolve: (Option<f64>, Option<f64>),
    /// Handoffs by reason, most first.
    pub reasons: Vec<(HandoffReason, i64)>,
    /// Per bucket (by the conversation's start): conversations handed off,
    /// handoffs, and handed-off conversations now resolved.
    pub buckets: Vec<(i64, HandedOff)>,
}

/// The handoffs of one bucket's conversations.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HandedOff {
    pub conversations: i64,
    pub handoffs: i64,
    /// Of the handed-off conversations, those the AI or the clock resolved since
    /// (not AI-resolved: a human was involved).
    pub resolved: i64,
}

/// Everything about the cohort's handoffs, in one statement: they are joined with
/// their conversations once, into a materialised CTE; each duration is ranked by a
/// window function that keeps only the rows at the ranks wanted (both middles,
/// and ⌈0.9·n⌉); reasons and per-bucket counts are grouped from the same rows.
pub async fn handoff_stats(
    core: &Core,
    cohort: &Cohort,
    bucket_ms: i64,
) -> AppResult<HandoffStats> {
    let (condition, values) = cohort.condition();
    let ranked = |column: &str| {
        format!(
            "(SELECT {column} AS ms, ROW_NUMBER() OVER (ORDER BY {column}) AS k, \
             COUNT(*) OVER () AS n FROM d WHERE {column} IS NOT NULL) {column}_ranked"
        )
    };
    let wanted = "k IN ((n + 1) / 2, (n + 2) / 2, (9 * n + 9) / 10)";
    let sql = format!(
        "WITH d AS MATERIALIZED (SELECT (c.created_at - ?) / ? AS bucket, \
           c.id AS conversation_id, c.resolved_by AS resolved_by, h.reason AS reason, \
           h.accepted_at - h.requested_at AS accept_ms, \
           h.resolved_at - h.requested_at AS resolve_ms \
           FROM handoffs h JOIN conversations c ON c.id = h.conversation_id WHERE {condition}) \
         SELECT 'accept' AS part, NULL AS reason, ms, k, n, CAST(NULL AS BIGINT) AS x FROM {accept} WHERE {wanted} \
         UNION ALL SELECT 'resolve', NULL, ms, k, n, NULL FROM {resolve} WHERE {wanted} \
         UNION ALL SELECT 'reason', reason, NULL, NULL, COUNT(*), NULL FROM d GROUP BY reason \
         UNION ALL SELECT 'bucket', NULL, bucket, COUNT(DISTINCT conversation_id), COUNT(*), \
           COUNT(DISTINCT CASE WHEN resolved_by IN ('AI', 'AUTO') THEN conversation_id END) \
           FROM d GROUP BY bucket",
        accept = ranked("accept_ms"),
        resolve = ranked("resolve_ms"),
    );
    let mut all: Vec<Value> = vec![cohort.from.into(), bucket_ms.into()];
    all.extend(values);
    let mut stats = HandoffStats::default();
    let (mut accept, mut resolve) = (Vec::new(), Vec::new());
    let mut reasons: Vec<(String, i64)> = Vec::new();
    for row in rows(core, &sql, all).await? {
        let part: String = row.try_get("", "part")?;
        let n = int(&row, "n")?;
        match part.as_str() {
            "reason" => reasons.push((row.try_get("", "reason")?, n)),
            "accept" => accept.push((int(&row, "k")?, int(&row, "ms")?, n)),
            "resolve" => resolve.push((int(&row, "k")?, int(&row, "ms")?, n)),
            _ => stats.buckets.push((
                int(&row, "ms")?,
                HandedOff {
                    conversations: int(&row, "k")?,
                    handoffs: n,
                    resolved: int(&row, "x")?,
                },
            )),
        }
    }
    reasons.sort_by(|(a, x), (b, y)| y.cmp(x).then(a.cmp(b)));
    stats.accept = percentiles(&accept);
    stats.resolve = percentiles(&resolve);
    stats.reasons = reasons
        .iter()
        .map(|(reason, n)| (parse_reason(reason), *n))
        .collect();
    Ok(stats)
}

/// Median and nearest-rank 90th percentile, in seconds, from the rows `(rank, ms, n)`
/// at ranks `(n + 1) / 2`, `(n + 2) / 2` and `⌈0.9·n⌉`.
fn percentiles(ranked: &[(i64, i64, i64)]) -> (Option<f64>, Option<f64>) {
    let Some(&(_, _, n)) = ranked.first() else {
        return (None, None);
    };
    let at = |rank: i64| ranked.iter().find(|(k, _, _)| *k == rank).map(|r| r.1);
    let median = match (at((n + 1) / 2), at((n + 2) / 2)) {
        (Some(a), Some(b)) => Some((a + b) as f64 / 2.0 / 1000.0),
        _ => None,
    };
    let p90 = at((9 * n + 9) / 10).map(|ms| ms as f64 / 1000.0);
    (median, p90)
}

fn parse_reason(reason: &str) -> HandoffReason {
    match reason {
        "VISITOR_REQUESTED" => HandoffReason::VisitorRequested,
        "LOW_CONFIDENCE" => HandoffReason::LowConfidence,
        "UNRESOLVED" => HandoffReason::Unresolved,
        "POLICY" => HandoffReason::Policy,
        _ => HandoffReason::AgentTakeover,
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
    let sql = format!(
        "SELECT ct.tag_id AS tag_id, COUNT(*) AS conversations, \
         SUM(CASE WHEN {HANDED_OFF} THEN 1 ELSE 0 END) AS handoffs \
         FROM conversation_tags ct JOIN conversations c ON c.id = ct.conversation_id \
         WHERE ct.removed_at IS NULL AND {condition} GROUP BY ct.tag_id"
    );
    rows(core, &sql, values)
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
/// conversation pass ([`series`]) and the handoff pass ([`handoff_stats`]), run
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
         WHERE a.workspace_id = ? AND a.author = 'AI' \
         AND (a.confidence IS NULL OR a.confidence < ?) AND {condition} \
         ORDER BY a.created_at DESC LIMIT {GAP_SAMPLE}"
    );
    let handed = format!(
        "SELECT h.requested_at AS at, q.conversation_id AS conversation_id, q.seq AS seq, \
         q.body AS body FROM handoffs h \
         JOIN conversations c ON c.id = h.conversation_id \
         JOIN messages q ON q.conversation_id = h.conversation_id AND q.seq = ( \
           SELECT MAX(m.seq) FROM messages m WHERE m.conversation_id = h.conversation_id \
           AND m.author = 'VISITOR' AND m.seq <= h.trigger_seq) \
         WHERE h.workspace_id = ? AND h.reason = 'LOW_CONFIDENCE' AND {condition} \
         ORDER BY h.requested_at DESC LIMIT {GAP_SAMPLE}"
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
    Ok(group_questions(&newest))
}

/// Handoffs of the cohort's conversations requested outside their team's
/// business hours.
pub async fn out_of_hours_handoffs(core: &Core, cohort: &Cohort) -> AppResult<i64> {
    let (condition, values) = cohort.condition();
    let sql = format!(
        "SELECT COUNT(*) AS n FROM handoffs h JOIN conversations c ON c.id = h.conversation_id \
         WHERE h.out_of_hours = TRUE AND {condition}"
    );
    match rows(core, &sql, values).await?.first() {
        Some(row) => int(row, "n"),
        None => Ok(0),
    }
}

/// A team's handoffs with an accept target in the cohort, and how many missed it.
#[derive(Clone, Debug, PartialEq)]
pub struct SlaBreaches {
    pub team_id: String,
    pub handoffs: i64,
    pub breached: i64,
}

/// Per team, the cohort's handoffs that had an accept target (`slaDueAt`) and
/// those that missed it (marked breached, or accepted after it), most breaches
/// first.
pub async fn sla_breaches(core: &Core, cohort: &Cohort) -> AppResult<Vec<SlaBreaches>> {
    let (condition, values) = cohort.condition();
    let sql = format!(
        "SELECT h.team_id AS team_id, COUNT(*) AS handoffs, \
           SUM(CASE WHEN h.sla_breached_at IS NOT NULL OR h.accepted_at > h.sla_due_at \
               THEN 1 ELSE 0 END) AS breached \
         FROM handoffs h JOIN conversations c ON c.id = h.conversation_id \
         WHERE h.sla_due_at IS NOT NULL AND h.team_id IS NOT NULL AND {condition} \
         GROUP BY h.team_id"
    );
    let mut out = Vec::new();
    for row in rows(core, &sql, values).await? {
        out.push(SlaBreaches {
            team_id: row.try_get("", "team_id")?,
            handoffs: int(&row, "handoffs")?,
            breached: int(&row, "breached")?,
        });
    }
    out.sort_by(|a, b| b.breached.cmp(&a.breached).then(a.team_id.cmp(&b.team_id)));
    Ok(out)
}

/// The visitors' answers to "Did that answer your question?" in the cohort's
/// conversations.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AnswerFeedback {
    pub helpful: i64,
    pub unhelpful: i64,
}

pub async fn answer_feedback(core: &Core, cohort: &Cohort) -> AppResult<AnswerFeedback> {
    let (condition, values) = cohort.condition();
    let sql = format!(
        "SELECT SUM(CASE WHEN f.helpful THEN 1 ELSE 0 END) AS helpful, \
         SUM(CASE WHEN f.helpful THEN 0 ELSE 1 END) AS unhelpful \
         FROM answer_feedback f JOIN conversations c ON c.id = f.conversation_id WHERE {condition}"
    );
    let mut feedback = AnswerFeedback::default();
    if let Some(row) = rows(core, &sql, values).await?.first() {
        feedback.helpful = int(row, "helpful")?;
        feedback.unhelpful = int(row, "unhelpful")?;
    }
    Ok(feedback)
}

/// What visitors and agents said about the answers citing one article.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ArticleFeedback {
    pub article_id: String,
    pub title: String,
    /// The AI answers citing the article that a visitor confirmed or an agent
    /// flagged.
    pub answers: i64,
    pub helpful: i64,
    pub unhelpful: i64,
    /// Answers flagged as wrong (by one agent or more).
    pub flagged: i64,
}

/// Per cited article, the feedback and flags on the cohort's AI answers citing
/// it, worst first (unhelpful and flagged answers, then fewest helpful): the docs
/// to fix. Only answers with feedback or a flag are read, so its cost follows
/// what people said, not how much the AI answered.
pub async fn article_feedback(core: &Core, cohort: &Cohort) -> AppResult<Vec<ArticleFeedback>> {
    let (condition, values) = cohort.condition();
    let sql = format!(
        "SELECT m.id AS id, m.sources AS sources, \
         (SELECT CAST(CASE WHEN f.helpful THEN 1 ELSE 0 END AS BIGINT) \
           FROM answer_feedback f WHERE f.message_id = m.id) AS helpful, \
         (SELECT COUNT(*) FROM answer_flags g WHERE g.message_id = m.id) AS flags \
         FROM messages m JOIN conversations c ON c.id = m.conversation_id \
         WHERE {condition} AND m.id IN (SELECT message_id FROM answer_feedback WHERE workspace_id = ? \
           UNION SELECT message_id FROM answer_flags WHERE workspace_id = ?)"
    );
    let mut all = values;
    all.push(cohort.workspace_id.as_str().into());
    all.push(cohort.workspace_id.as_str().into());
    let mut by_article: std::collections::HashMap<String, ArticleFeedback> = Default::default();
    for row in rows(core, &sql, all).await? {
        let id: String = row.try_get("", "id")?;
        let sources: String = row.try_get("", "sources")?;
        let helpful: Option<bool> = row.try_get::<Option<i64>>("", "helpful")?.map(|h| h == 1);
        let flagged = int(&row, "flags")? > 0;
        let cited = crate::entity::message::decode_sources(&id, &sources)?;
        for source in cited {
            let entry = by_article
                .entry(source.article_id.clone())
                .or_insert_with(|| ArticleFeedback {
                    article_id: source.article_id,
                    title: source.title,
                    ..ArticleFeedback::default()
                });
            entry.answers += 1;
            entry.helpful += i64::from(helpful == Some(true));
            entry.unhelpful += i64::from(helpful == Some(false));
            entry.flagged += i64::from(flagged);
        }
    }
    let mut articles: Vec<ArticleFeedback> = by_article.into_values().collect();
    articles.sort_by(|a, b| {
        (b.unhelpful + b.flagged)
            .cmp(&(a.unhelpful + a.flagged))
            .then(a.helpful.cmp(&b.helpful))
            .then(a.article_id.cmp(&b.article_id))
    });
    Ok(articles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_read_the_middle_ranks_and_the_nearest_rank_p90() {
        // n = 4: the median averages ranks 2 and 3; p90 is rank ⌈3.6⌉ = 4.
        let even = [(2, 2_000, 4), (3, 4_000, 4), (4, 9_000, 4)];
        assert_eq!(percentiles(&even), (Some(3.0), Some(9.0)));
        // n = 5: rank 3 is both middles; p90 is rank ⌈4.5⌉ = 5.
        let odd = [(3, 3_000, 5), (5, 10_000, 5)];
        assert_eq!(percentiles(&odd), (Some(3.0), Some(10.0)));
        // n = 1: one row is every rank.
        assert_eq!(percentiles(&[(1, 1_500, 1)]), (Some(1.5), Some(1.5)));
        assert_eq!(percentiles(&[]), (None, None));
    }

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
