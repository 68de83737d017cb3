//! How handoffs went: how many, why, how fast humans took them, out of hours, and
//! against each team's accept target.

use sea_orm::Value;

use super::{Cohort, int, rows};
use crate::domain::Core;
use crate::entity::HandoffReason;
use crate::error::{AppError, AppResult};

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
/// and ⌈0.9·n⌉); reasons and per-bucket counts are grouped from the same rows,
/// the buckets' through one row per conversation (a conversation is in one
/// bucket), which costs less than counting distinct conversations per bucket.
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
         UNION ALL SELECT 'bucket', NULL, bucket, COUNT(*), CAST(SUM(n) AS BIGINT), \
           SUM(CASE WHEN resolved_by IN ('AI', 'AUTO') THEN 1 ELSE 0 END) \
           FROM (SELECT bucket, resolved_by, COUNT(*) AS n FROM d \
                 GROUP BY conversation_id, bucket, resolved_by) per_conversation \
           GROUP BY bucket",
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
        .map(|(reason, n)| Ok((parse_reason(reason)?, *n)))
        .collect::<AppResult<_>>()?;
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

fn parse_reason(reason: &str) -> AppResult<HandoffReason> {
    <HandoffReason as sea_orm::ActiveEnum>::try_from_value(&reason.to_owned()).map_err(|_| {
        AppError::internal(format!(
            "a handoff reason this build does not know: {reason}"
        ))
    })
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
}
