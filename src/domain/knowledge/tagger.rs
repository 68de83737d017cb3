//! Automatic topic tags: each visitor message is matched against the workspace's
//! tags (keywords and phrases with stemming and word boundaries, and optional
//! regular expressions) before the handoff policy decides, so escalating tags and
//! routing see them. A tag an agent removed from a conversation is never put back.

use regex::RegexBuilder;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait};

use crate::domain::Core;
use crate::domain::core::feed::{self, Change, Event};
use crate::entity::{conversation, conversation_tag, insight_tag, message, now_ms};
use crate::error::AppResult;

use super::text;
use crate::db::stmt;

/// Why a tag matched a text: the words (as written) or pattern matches.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    pub evidence: Vec<String>,
    pub confidence: f64,
}

/// Whether `tag`'s rules match `body`.
pub fn matches(tag: &insight_tag::Model, body: &str) -> AppResult<Option<Match>> {
    let keywords = tag.keywords()?;
    let patterns = tag.patterns()?;
    let mut evidence: Vec<String> = keywords
        .iter()
        .filter_map(|keyword| text::find_phrase(body, keyword))
        .collect();
    for pattern in &patterns {
        let Ok(re) = RegexBuilder::new(pattern)
            .case_insensitive(true)
            .size_limit(1 << 20)
            .build()
        else {
            continue;
        };
        if let Some(found) = re.find(body) {
            evidence.push(found.as_str().to_owned());
        }
    }
    evidence.dedup();
    if evidence.is_empty() {
        return Ok(None);
    }
    // One matching keyword is a hint; several agree.
    let confidence = (0.55 + 0.15 * evidence.len() as f64).min(0.95);
    Ok(Some(Match {
        evidence,
        confidence,
    }))
}

/// Apply every matching tag that the conversation does not have (and that no agent
/// removed from it) for a visitor message; the ids of the tags applied.
pub async fn tag_message(
    core: &Core,
    conversation: &conversation::Model,
    message: &message::Model,
) -> AppResult<Vec<String>> {
    let tags = super::tags::list(core, &conversation.workspace_id).await?;
    if tags.is_empty() {
        return Ok(Vec::new());
    }
    let known: Vec<String> = conversation_tag::Entity::find()
        .filter(conversation_tag::Column::ConversationId.eq(conversation.id.as_str()))
        .all(&core.db.reader)
        .await?
        .into_iter()
        .map(|row| row.tag_id)
        .collect();
    let mut applied = Vec::new();
    for tag in tags.iter().filter(|t| !known.contains(&t.id)) {
        let Some(found) = matches(tag, &message.body)? else {
            continue;
        };
        apply(
            core,
            conversation,
            &tag.id,
            &found.evidence.join(", "),
            found.confidence,
            Some(&message.id),
        )
        .await?;
        applied.push(tag.id.clone());
    }
    Ok(applied)
}

/// Put an `AUTO` tag on a conversation unless it is there already or was removed.
pub async fn apply(
    core: &Core,
    conversation: &conversation::Model,
    tag_id: &str,
    evidence: &str,
    confidence: f64,
    message_id: Option<&str>,
) -> AppResult<bool> {
    let txn = core.db.writer.begin().await?;
    let inserted = txn
        .execute_raw(stmt(
            core.db.backend(),
            "INSERT INTO conversation_tags \
             (conversation_id, tag_id, workspace_id, source, evidence, confidence, message_id, applied_by, applied_at, removed_at) \
             VALUES (?, ?, ?, 'AUTO', ?, ?, ?, NULL, ?, NULL) ON CONFLICT (conversation_id, tag_id) DO NOTHING",
            vec![
                conversation.id.as_str().into(),
                tag_id.into(),
                conversation.workspace_id.as_str().into(),
                evidence.into(),
                confidence.into(),
                message_id.map(str::to_owned).into(),
                now_ms().into(),
            ],
        ))
        .await?;
    let applied = inserted.rows_affected() == 1;
    let events = if applied {
        vec![Event::conversation_changed(
            conversation.clone(),
            Change::Tagged {
                tag_id: tag_id.to_owned(),
            },
        )]
    } else {
        Vec::new()
    };
    feed::commit(core, txn, &events).await?;
    Ok(applied)
}

/// The evidence and confidence with which `tag` covers an article an answer
/// cites, if it does.
pub fn cites_covered_article(
    tag: &insight_tag::Model,
    cited: &[message::Source],
) -> AppResult<Option<(String, f64)>> {
    if cited.is_empty() {
        return Ok(None);
    }
    let covers = tag.article_ids()?;
    Ok(cited
        .iter()
        .find(|source| covers.contains(&source.article_id))
        .map(|source| {
            let evidence = format!("article: {}", source.title);
            (evidence, source.score.clamp(0.0, 1.0))
        }))
}

/// Apply the tags that cover the articles an AI answer cites.
pub async fn tag_cited_articles(
    core: &Core,
    conversation: &conversation::Model,
    answer: &message::Model,
) -> AppResult<Vec<String>> {
    let cited = answer.sources()?;
    if cited.is_empty() {
        return Ok(Vec::new());
    }
    let mut applied = Vec::new();
    for tag in super::tags::list(core, &conversation.workspace_id).await? {
        let Some((evidence, confidence)) = cites_covered_article(&tag, &cited)? else {
            continue;
        };
        if apply(
            core,
            conversation,
            &tag.id,
            &evidence,
            confidence,
            Some(&answer.id),
        )
        .await?
        {
            applied.push(tag.id);
        }
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(keywords: &[&str], patterns: &[&str]) -> insight_tag::Model {
        insight_tag::Model {
            id: "tag_1".into(),
            workspace_id: "ws".into(),
            slug: "media".into(),
            label: "Media".into(),
            description: String::new(),
            keywords: serde_json::to_string(keywords).expect("json"),
            patterns: serde_json::to_string(patterns).expect("json"),
            team_id: None,
            escalate: false,
            priority: 0,
            article_ids: "[]".into(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn keywords_match_inflections_as_whole_words() {
        let media = tag(&["upload", "media library"], &[]);
        let matches = |body| matches(&media, body).expect("rules decode");
        let found = matches("Uploading to the Media Library fails").expect("a match");
        assert_eq!(found.evidence, ["Uploading", "Media Library"]);
        assert!(found.confidence > matches("my uploads").expect("a match").confidence);
        assert_eq!(matches("reuploaded nothing"), None);
    }

    #[test]
    fn patterns_are_case_insensitive_regular_expressions() {
        let version = tag(&[], &[r"v\d+\.\d+"]);
        assert_eq!(
            matches(&version, "broke after V5.2")
                .expect("rules decode")
                .map(|m| m.evidence),
            Some(vec!["V5.2".to_owned()])
        );
    }
}
