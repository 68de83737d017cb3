//! The language model's use in the period: its requests and what came of them, the
//! tokens they used, and how soon it started answering. Counted from the requests
//! made in `[from, to)` (of the team's conversations, with a team), whatever the
//! conversation's age.

use sea_orm::Value;

use super::{Cohort, int, rows};
use crate::domain::Core;
use crate::error::AppResult;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelUsage {
    /// Answers the model wrote and that were stored.
    pub answers: i64,
    /// Handoffs the model asked for (`handoff_to_human`).
    pub handoffs: i64,
    /// Requests that failed (answered the extractive way instead).
    pub failures: i64,
    /// Requests abandoned because a person took the conversation, or the visitor
    /// wrote again, while the model wrote.
    pub abandoned: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Requests whose usage the server did not report: their tokens are estimated.
    pub estimated: i64,
    pub first_token_p50_ms: Option<i64>,
    pub first_token_p95_ms: Option<i64>,
}

/// The calls of the cohort's workspace (and team) in its period, as SQL on
/// `model_calls m`.
fn condition(cohort: &Cohort) -> (String, Vec<Value>) {
    let mut sql = "m.workspace_id = ? AND m.created_at >= ? AND m.created_at < ?".to_owned();
    let mut values: Vec<Value> = vec![
        cohort.workspace_id.as_str().into(),
        cohort.from.into(),
        cohort.to.into(),
    ];
    if let Some(team) = &cohort.team_id {
        sql.push_str(
            " AND EXISTS (SELECT 1 FROM conversations c WHERE c.id = m.conversation_id AND c.team_id = ?)",
        );
        values.push(team.as_str().into());
    }
    (sql, values)
}

pub async fn model_usage(core: &Core, cohort: &Cohort) -> AppResult<ModelUsage> {
    let (condition, values) = condition(cohort);
    let sql = format!(
        "SELECT m.outcome AS outcome, COUNT(*) AS calls, \
         CAST(SUM(m.prompt_tokens) AS BIGINT) AS prompt, \
         CAST(SUM(m.completion_tokens) AS BIGINT) AS completion, \
         SUM(CASE WHEN m.estimated THEN 1 ELSE 0 END) AS estimated \
         FROM model_calls m WHERE {condition} GROUP BY m.outcome"
    );
    let mut usage = ModelUsage::default();
    for row in rows(core, &sql, values.clone()).await? {
        let outcome: String = row.try_get("", "outcome")?;
        let calls = int(&row, "calls")?;
        match outcome.as_str() {
            "ANSWERED" => usage.answers += calls,
            "HANDOFF" => usage.handoffs += calls,
            "FAILED" => usage.failures += calls,
            _ => usage.abandoned += calls,
        }
        usage.prompt_tokens += int(&row, "prompt")?;
        usage.completion_tokens += int(&row, "completion")?;
        usage.estimated += int(&row, "estimated")?;
    }
    let timed = format!("{condition} AND m.first_token_ms IS NOT NULL");
    let count_sql = format!("SELECT COUNT(*) AS n FROM model_calls m WHERE {timed}");
    let n = match rows(core, &count_sql, values.clone()).await?.first() {
        Some(row) => int(row, "n")?,
        None => 0,
    };
    // The nearest-rank percentile: the value at rank ⌈p·n⌉.
    let at = |p: i64| (p * n + 99) / 100;
    for (p, slot) in [
        (50, &mut usage.first_token_p50_ms),
        (95, &mut usage.first_token_p95_ms),
    ] {
        if n == 0 {
            break;
        }
        let offset = (at(p) - 1).max(0);
        let sql = format!(
            "SELECT m.first_token_ms AS ms FROM model_calls m WHERE {timed} \
             ORDER BY m.first_token_ms LIMIT 1 OFFSET {offset}"
        );
        if let Some(row) = rows(core, &sql, values.clone()).await?.first() {
            *slot = Some(int(row, "ms")?);
        }
    }
    Ok(usage)
}
