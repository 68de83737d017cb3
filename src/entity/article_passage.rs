use sea_orm::entity::prelude::*;

/// A passage of an article, as retrieval cuts it, with its embedding once made.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "article_passages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub workspace_id: String,
    pub article_id: String,
    /// Its place among the article's passages, from 0.
    pub position: i32,
    pub text: String,
    /// Little-endian `f32`s, L2-normalised; `None` until the embedding server
    /// has made it.
    pub embedding: Option<Vec<u8>>,
    /// The embedding model that made `embedding`.
    pub embedded_model: Option<String>,
    /// Failed attempts to embed it so far.
    pub attempts: i32,
    /// Not to be tried again before this (milliseconds since the epoch).
    pub next_attempt_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
