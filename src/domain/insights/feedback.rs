//! What visitors and agents said about the AI's answers, overall and per cited
//! article.

use super::{Cohort, int, rows};
use crate::domain::Core;
use crate::error::AppResult;

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
