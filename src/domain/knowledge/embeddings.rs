//! Retrieval by meaning. With an embedding server (`CASEFILE_EMBEDDINGS_URL`),
//! each passage of each article ([`super::passages`]) is embedded in the
//! background, when the article changes: never in the upsert's way, a few at a
//! time, retried with a growing delay when the server fails, and again when the
//! configured model changes. A question is embedded when it is asked (within
//! `CASEFILE_EMBEDDINGS_TIMEOUT`), and its articles ranked by their best passage's
//! cosine; [`super::responder::retrieve`] fuses that ranking with full-text's. A
//! question whose embedding fails is answered from full-text alone.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

use crate::db::stmt;
use crate::domain::Core;
use crate::entity::{article, article_passage, now_ms};
use crate::error::AppResult;
use crate::llm::embeddings::{Embedder, Indexed, Input, from_bytes, to_bytes};

/// Passages embedded per request.
const BATCH: u64 = 8;

/// How long the background work waits for a batch.
const BATCH_TIMEOUT: Duration = Duration::from_secs(120);

/// The longest wait before a passage whose embedding failed is tried again.
const MAX_RETRY: Duration = Duration::from_secs(600);

/// How often the background work looks for passages without embeddings when
/// nothing wakes it.
const IDLE: Duration = Duration::from_secs(30);

/// Embed passages in the background until the server shuts down (with an
/// embedding server).
pub fn start(core: &Core) {
    if core.embedder.is_none() {
        return;
    }
    let core = core.clone();
    core.tasks.clone().spawn(async move {
        tokio::select! {
            () = core.shutdown.cancelled() => {}
            () = run(&core) => {}
        }
    });
}

async fn run(core: &Core) {
    let Some(embedder) = core.embedder.as_ref() else {
        return;
    };
    if let Err(err) = prepare(core, embedder).await {
        tracing::warn!(error.detail = %err.detail(), "preparing passages for embeddings failed");
    }
    loop {
        let wait = match embed_some(core, embedder).await {
            Ok(0) => match next_due(core).await {
                // Passages waiting to be tried again: until the first is due.
                Ok(Some(due)) => {
                    Duration::from_millis(u64::try_from(due - now_ms()).unwrap_or(0)).min(IDLE)
                }
                _ => IDLE,
            },
            Ok(_) => continue,
            Err(err) => {
                tracing::warn!(error.detail = %err.detail(), "embedding passages failed");
                Duration::from_secs(5)
            }
        };
        tokio::select! {
            () = core.shutdown.cancelled() => return,
            () = core.embeddings_wanted.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Embed every passage waiting now (for `casefile eval`, which runs no
/// background work); how many were embedded, and how many are left (their
/// embedding failed).
pub async fn embed_all(core: &Core) -> AppResult<(usize, u64)> {
    let Some(embedder) = core.embedder.as_ref() else {
        return Ok((0, 0));
    };
    prepare(core, embedder).await?;
    let mut embedded = 0;
    loop {
        match embed_some(core, embedder).await? {
            0 => break,
            n => embedded += n,
        }
    }
    let left = article_passage::Entity::find()
        .filter(article_passage::Column::Embedding.is_null())
        .count(&core.db.reader)
        .await?;
    Ok((embedded, left))
}

/// Cut the articles that have no passages yet (written before passages were
/// kept), and embed again what another model embedded.
async fn prepare(core: &Core, embedder: &Embedder) -> AppResult<()> {
    core.db
        .writer
        .execute_raw(stmt(
            core.db.backend(),
            "UPDATE article_passages SET embedding = NULL, embedded_model = NULL, attempts = 0, \
             next_attempt_at = 0 WHERE embedded_model IS NOT NULL AND embedded_model <> ?",
            vec![embedder.model().into()],
        ))
        .await?;
    let bare = article::Entity::find()
        .filter(
            article::Column::Id.not_in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(article_passage::Column::ArticleId)
                    .from(article_passage::Entity)
                    .to_owned(),
            ),
        )
        .all(&core.db.reader)
        .await?;
    for article in bare {
        let txn = core.db.writer.begin().await?;
        super::passages::replace(&txn, &article).await?;
        txn.commit().await?;
    }
    Ok(())
}

/// When the first passage waiting for its embedding may be tried again.
async fn next_due(core: &Core) -> AppResult<Option<i64>> {
    Ok(article_passage::Entity::find()
        .select_only()
        .column_as(article_passage::Column::NextAttemptAt.min(), "due")
        .filter(article_passage::Column::Embedding.is_null())
        .into_tuple::<Option<i64>>()
        .one(&core.db.reader)
        .await?
        .flatten())
}

/// Embed the next few passages waiting; how many were embedded.
async fn embed_some(core: &Core, embedder: &Embedder) -> AppResult<usize> {
    let now = now_ms();
    let waiting = article_passage::Entity::find()
        .filter(article_passage::Column::Embedding.is_null())
        .filter(article_passage::Column::NextAttemptAt.lte(now))
        .order_by_asc(article_passage::Column::NextAttemptAt)
        .order_by_asc(article_passage::Column::Id)
        .limit(BATCH)
        .all(&core.db.reader)
        .await?;
    if waiting.is_empty() {
        return Ok(0);
    }
    let ids: Vec<&str> = waiting.iter().map(|p| p.article_id.as_str()).collect();
    let titles: HashMap<String, String> = article::Entity::find()
        .filter(article::Column::Id.is_in(ids))
        .all(&core.db.reader)
        .await?
        .into_iter()
        .map(|a| (a.id, a.title))
        .collect();
    // The title gives a passage its context ("Scheduling drafts: To change it…").
    let texts: Vec<String> = waiting
        .iter()
        .map(|p| match titles.get(&p.article_id) {
            Some(title) => format!("{title}: {}", p.text),
            None => p.text.clone(),
        })
        .collect();
    match embedder.embed(&texts, Input::Passage, BATCH_TIMEOUT).await {
        Ok(vectors) => {
            let txn = core.db.writer.begin().await?;
            for (passage, vector) in waiting.iter().zip(&vectors) {
                txn.execute_raw(stmt(
                    core.db.backend(),
                    "UPDATE article_passages SET embedding = ?, embedded_model = ?, attempts = 0 \
                     WHERE id = ?",
                    vec![
                        to_bytes(vector).into(),
                        embedder.model().into(),
                        passage.id.as_str().into(),
                    ],
                ))
                .await?;
            }
            txn.commit().await?;
            for passage in &waiting {
                core.vectors.forget(&passage.workspace_id);
            }
            Ok(waiting.len())
        }
        Err(failure) => {
            tracing::warn!(
                embeddings.host = %embedder.host(),
                failure = %failure,
                passages = waiting.len(),
                "the embedding server failed: retrying later (retrieval is full-text meanwhile)"
            );
            for passage in &waiting {
                let delay = Duration::from_secs(5)
                    .saturating_mul(1 << passage.attempts.clamp(0, 16))
                    .min(MAX_RETRY);
                core.db
                    .writer
                    .execute_raw(stmt(
                        core.db.backend(),
                        "UPDATE article_passages SET attempts = attempts + 1, next_attempt_at = ? \
                         WHERE id = ?",
                        vec![
                            (now + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)).into(),
                            passage.id.as_str().into(),
                        ],
                    ))
                    .await?;
            }
            Ok(0)
        }
    }
}

/// The workspace's embedded passages (of the configured model).
async fn index(
    core: &Core,
    embedder: &Embedder,
    workspace_id: &str,
) -> AppResult<Arc<Vec<Indexed>>> {
    if let Some(found) = core.vectors.get(workspace_id) {
        return Ok(found);
    }
    let rows: Vec<(String, Option<Vec<u8>>)> = article_passage::Entity::find()
        .select_only()
        .column(article_passage::Column::ArticleId)
        .column(article_passage::Column::Embedding)
        .filter(article_passage::Column::WorkspaceId.eq(workspace_id))
        .filter(article_passage::Column::EmbeddedModel.eq(embedder.model()))
        .filter(article_passage::Column::Embedding.is_not_null())
        .into_tuple()
        .all(&core.db.reader)
        .await?;
    let index: Arc<Vec<Indexed>> = Arc::new(
        rows.into_iter()
            .filter_map(|(article_id, bytes)| {
                Some(Indexed {
                    article_id,
                    vector: from_bytes(&bytes?)?,
                })
            })
            .collect(),
    );
    core.vectors
        .put(workspace_id.to_owned(), Arc::clone(&index));
    Ok(index)
}

/// The workspace's articles by meaning for `question`: by their best passage's
/// cosine, best first. `None` without an embedding server, before anything is
/// embedded, or when the question's embedding failed (logged): full-text alone.
pub async fn rank(core: &Core, workspace_id: &str, question: &str) -> Option<Vec<(String, f32)>> {
    let embedder = core.embedder.as_ref()?;
    let index = match index(core, embedder, workspace_id).await {
        Ok(index) => index,
        Err(err) => {
            tracing::warn!(error.detail = %err.detail(), "reading the passages' embeddings failed");
            return None;
        }
    };
    if index.is_empty() {
        return None;
    }
    let asked = embedder
        .embed(
            &[question.to_owned()],
            Input::Query,
            embedder.question_timeout,
        )
        .await;
    let query = match asked {
        Ok(mut vectors) => vectors.pop()?,
        Err(failure) => {
            tracing::warn!(
                embeddings.host = %embedder.host(),
                failure = %failure,
                "embedding a question failed: answered from full-text retrieval alone"
            );
            return None;
        }
    };
    let mut best: HashMap<&str, f32> = HashMap::new();
    for passage in index.iter() {
        if passage.vector.len() != query.len() {
            continue;
        }
        let cosine = crate::llm::embeddings::dot(&passage.vector, &query);
        let entry = best.entry(passage.article_id.as_str()).or_insert(f32::MIN);
        if cosine > *entry {
            *entry = cosine;
        }
    }
    let mut ranked: Vec<(String, f32)> = best
        .into_iter()
        .map(|(id, cosine)| (id.to_owned(), cosine))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Some(ranked)
}

/// Reciprocal rank fusion (Cormack et al., 2009): each ranking gives an item
/// `1 / (K + rank)`; the sums decide. It needs no calibration between BM25 and
/// cosine scores, which live on different scales, and an item both rankings
/// agree on rises above one that only one of them likes.
const RRF_K: f64 = 60.0;

/// `rankings` fused, best first (ties in the first ranking's order).
pub fn fuse(rankings: &[Vec<String>]) -> Vec<String> {
    let mut scores: Vec<(String, f64, usize)> = Vec::new();
    for (which, ranking) in rankings.iter().enumerate() {
        for (rank, id) in ranking.iter().enumerate() {
            let gain = 1.0 / (RRF_K + rank as f64 + 1.0);
            let order = which * 10_000 + rank;
            match scores.iter_mut().find(|(seen, _, _)| seen == id) {
                Some((_, score, first)) => {
                    *score += gain;
                    *first = (*first).min(order);
                }
                None => scores.push((id.clone(), gain, order)),
            }
        }
    }
    scores.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    scores.into_iter().map(|(id, _, _)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn fusion_lifts_what_both_rankings_agree_on() {
        let full_text = ids(&["a", "b", "c"]);
        let meaning = ids(&["c", "d", "a"]);
        // a: 1/61 + 1/63, c: 1/63 + 1/61 (tie: a first, as full-text had it), b
        // and d once each.
        assert_eq!(fuse(&[full_text, meaning]), ids(&["a", "c", "b", "d"]));
        assert_eq!(fuse(&[ids(&["x"]), Vec::new()]), ids(&["x"]));
        // Found by meaning alone, it still ranks.
        assert_eq!(fuse(&[Vec::new(), ids(&["y", "z"])]), ids(&["y", "z"]));
    }
}
