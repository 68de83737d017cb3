//! Articles cut into passages (as retrieval cuts them, [`super::responder::passages`]),
//! kept beside the article by the transaction that writes it, each waiting for its
//! embedding until the embedding server has made it ([`super::embeddings`]).

use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, Set};

use crate::entity::{article, article_passage};
use crate::error::AppResult;
use crate::ids::{Kind, new_id};

/// Cut `article` into passages again, replacing those it had (and their
/// embeddings).
pub async fn replace(txn: &DatabaseTransaction, article: &article::Model) -> AppResult<()> {
    remove(txn, &article.id).await?;
    let rows: Vec<article_passage::ActiveModel> = super::responder::passages(&article.body)
        .into_iter()
        .enumerate()
        .map(|(position, text)| article_passage::ActiveModel {
            id: Set(new_id(Kind::Passage)),
            workspace_id: Set(article.workspace_id.clone()),
            article_id: Set(article.id.clone()),
            position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
            text: Set(text),
            embedding: Set(None),
            embedded_model: Set(None),
            attempts: Set(0),
            next_attempt_at: Set(0),
        })
        .collect();
    // In chunks, under every database's limit of bound values.
    for chunk in rows.chunks(100) {
        article_passage::Entity::insert_many(chunk.to_vec())
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// Forget the passages of article `article_id`.
pub async fn remove(txn: &DatabaseTransaction, article_id: &str) -> AppResult<()> {
    article_passage::Entity::delete_many()
        .filter(article_passage::Column::ArticleId.eq(article_id))
        .exec(txn)
        .await?;
    Ok(())
}
