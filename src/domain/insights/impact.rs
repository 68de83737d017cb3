//! Whether fixing an article worked: for each article edited in the period, its
//! latest revision then, and the conversations that used it (retrieved or cited
//! it, `article_uses`) started in a window of equal length before and after the
//! edit, with how many of them were handed off.
//!
//! The window is as long as the time since the edit, capped at 30 days and at the
//! article's next revision (so the "after" side measures this revision alone), and
//! the "before" side is as long, ending at the edit. An edit made an hour ago
//! compares the hour before with the hour since.

use super::{Cohort, int, rows};
use crate::domain::Core;
use crate::entity::now_ms;
use crate::error::AppResult;

/// The longest window on each side of an edit.
const MAX_WINDOW_MS: i64 = 30 * 24 * 3600 * 1000;

/// The conversations that used an article around one of its edits.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ArticleImpact {
    pub article_id: String,
    pub title: String,
    pub url: String,
    /// The revision the edit made.
    pub revision: i32,
    pub edited_at: i64,
    /// Each side's length, in milliseconds.
    pub window_ms: i64,
    pub conversations_before: i64,
    pub handoffs_before: i64,
    pub conversations_after: i64,
    pub handoffs_after: i64,
}

impl ArticleImpact {
    fn rate(handoffs: i64, conversations: i64) -> Option<f64> {
        (conversations > 0).then(|| handoffs as f64 / conversations as f64)
    }

    pub fn handoff_rate_before(&self) -> Option<f64> {
        Self::rate(self.handoffs_before, self.conversations_before)
    }

    pub fn handoff_rate_after(&self) -> Option<f64> {
        Self::rate(self.handoffs_after, self.conversations_after)
    }
}

/// The edits of the cohort's period (revisions after the first, of articles that
/// still exist), each article's latest, most recent first, with their windows'
/// counts; with a team, of the team's conversations.
pub async fn article_impact(core: &Core, cohort: &Cohort) -> AppResult<Vec<ArticleImpact>> {
    let edits = rows(
        core,
        "SELECT r.article_id AS article_id, a.title AS title, a.url AS url, \
         CAST(r.revision AS BIGINT) AS revision, r.edited_at AS edited_at, \
         (SELECT MIN(n.edited_at) FROM article_revisions n \
          WHERE n.article_id = r.article_id AND n.revision > r.revision) AS next_at \
         FROM article_revisions r JOIN articles a ON a.id = r.article_id \
         WHERE r.workspace_id = ? AND r.revision > 1 AND r.edited_at >= ? AND r.edited_at < ? \
         AND r.revision = (SELECT MAX(l.revision) FROM article_revisions l \
           WHERE l.article_id = r.article_id AND l.edited_at < ?) \
         ORDER BY r.edited_at DESC, r.article_id",
        vec![
            cohort.workspace_id.as_str().into(),
            cohort.from.into(),
            cohort.to.into(),
            cohort.to.into(),
        ],
    )
    .await?;
    let now = now_ms();
    let mut impacts = Vec::with_capacity(edits.len());
    for row in &edits {
        let edited_at = int(row, "edited_at")?;
        let next_at: Option<i64> = row.try_get("", "next_at").ok().flatten();
        let window_ms = (now - edited_at)
            .min(next_at.map_or(i64::MAX, |next| next - edited_at))
            .clamp(0, MAX_WINDOW_MS);
        let article_id: String = row.try_get("", "article_id")?;
        let (conversations_before, handoffs_before) = used(
            core,
            cohort,
            &article_id,
            (edited_at - window_ms, edited_at),
        )
        .await?;
        let (conversations_after, handoffs_after) = used(
            core,
            cohort,
            &article_id,
            (edited_at, edited_at + window_ms),
        )
        .await?;
        impacts.push(ArticleImpact {
            article_id,
            title: row.try_get("", "title")?,
            url: row.try_get("", "url")?,
            revision: i32::try_from(int(row, "revision")?).unwrap_or(i32::MAX),
            edited_at,
            window_ms,
            conversations_before,
            handoffs_before,
            conversations_after,
            handoffs_after,
        });
    }
    Ok(impacts)
}

/// The conversations started in `[from, to)` that used `article_id`, and how many
/// of them were handed off.
async fn used(
    core: &Core,
    cohort: &Cohort,
    article_id: &str,
    (from, to): (i64, i64),
) -> AppResult<(i64, i64)> {
    if to <= from {
        return Ok((0, 0));
    }
    let mut sql = "SELECT COUNT(*) AS conversations, \
         COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM handoffs h WHERE h.conversation_id = c.id) \
         THEN 1 ELSE 0 END), 0) AS handoffs \
         FROM article_uses u JOIN conversations c ON c.id = u.conversation_id \
         WHERE u.article_id = ? AND c.workspace_id = ? AND c.created_at >= ? AND c.created_at < ?"
        .to_owned();
    let mut values = vec![
        article_id.into(),
        cohort.workspace_id.as_str().into(),
        from.into(),
        to.into(),
    ];
    if let Some(team) = &cohort.team_id {
        sql.push_str(" AND c.team_id = ?");
        values.push(team.as_str().into());
    }
    let found = rows(core, &sql, values).await?;
    Ok(match found.first() {
        Some(row) => (int(row, "conversations")?, int(row, "handoffs")?),
        None => (0, 0),
    })
}
