//! Knowledge you can measure:
//!
//! - `article_revisions`: each version of an article's text, who made it (an agent
//!   or an API key; neither for imports) and when; existing articles get their
//!   first revision from what they are now.
//! - `article_uses`: which conversations an article was retrieved or cited in (one
//!   row per article and conversation), so `articleImpact` can compare the
//!   conversations before and after an edit.
//! - `article_passages`: articles cut into passages, with their embedding (little-
//!   endian `f32`s) once the embedding server has made it, for retrieval by
//!   meaning; `embedded_model` names the model that made it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let conn = m.get_connection();
        let bytes = match m.get_database_backend() {
            DbBackend::Postgres => "BYTEA",
            _ => "BLOB",
        };
        for statement in [
            "CREATE TABLE article_revisions ( \
                id TEXT NOT NULL PRIMARY KEY, \
                workspace_id TEXT NOT NULL, \
                article_id TEXT NOT NULL, \
                revision INTEGER NOT NULL, \
                title TEXT NOT NULL, \
                url TEXT NOT NULL, \
                body TEXT NOT NULL, \
                edited_at BIGINT NOT NULL, \
                edited_by_agent_id TEXT, \
                edited_by_api_key_id TEXT, \
                UNIQUE (article_id, revision) \
            )"
            .to_owned(),
            "CREATE INDEX article_revisions_by_workspace ON article_revisions (workspace_id, edited_at)"
                .to_owned(),
            "INSERT INTO article_revisions (id, workspace_id, article_id, revision, title, url, body, edited_at) \
             SELECT 'rev_' || id, workspace_id, id, 1, title, url, body, updated_at FROM articles"
                .to_owned(),
            "CREATE TABLE article_uses ( \
                article_id TEXT NOT NULL, \
                conversation_id TEXT NOT NULL, \
                workspace_id TEXT NOT NULL, \
                cited BOOLEAN NOT NULL DEFAULT FALSE, \
                created_at BIGINT NOT NULL, \
                PRIMARY KEY (article_id, conversation_id) \
            )"
            .to_owned(),
            "CREATE INDEX article_uses_by_conversation ON article_uses (conversation_id)".to_owned(),
            format!(
                "CREATE TABLE article_passages ( \
                    id TEXT NOT NULL PRIMARY KEY, \
                    workspace_id TEXT NOT NULL, \
                    article_id TEXT NOT NULL, \
                    position INTEGER NOT NULL, \
                    text TEXT NOT NULL, \
                    embedding {bytes}, \
                    embedded_model TEXT, \
                    attempts INTEGER NOT NULL DEFAULT 0, \
                    next_attempt_at BIGINT NOT NULL DEFAULT 0, \
                    UNIQUE (article_id, position) \
                )"
            ),
            "CREATE INDEX article_passages_by_workspace ON article_passages (workspace_id)".to_owned(),
            "CREATE INDEX article_passages_to_embed ON article_passages (next_attempt_at) WHERE embedding IS NULL"
                .to_owned(),
        ] {
            conn.execute_unprepared(&statement).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let conn = m.get_connection();
        for statement in [
            "DROP TABLE article_passages",
            "DROP TABLE article_uses",
            "DROP TABLE article_revisions",
        ] {
            conn.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
