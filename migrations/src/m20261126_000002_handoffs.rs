//! Knowledge articles with a full-text index, handoffs, API keys, and the handoff
//! policy of each workspace.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000001_foundation::{fk, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use ForeignKeyAction::{Cascade, SetNull};
        let db = m.get_connection();
        let postgres = m.get_database_backend() == sea_orm::DbBackend::Postgres;

        m.alter_table(
            Table::alter()
                .table("workspaces")
                .add_column(text("handoff_policy").default("{}"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("messages")
                .add_column(big_integer_null("reply_to_seq"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("articles")
                .col(text("id").primary_key())
                .col(text("workspace_id"))
                .col(text("title"))
                .col(text("url"))
                .col(text("body"))
                .col(big_integer("created_at"))
                .col(big_integer("updated_at"))
                .foreign_key(&mut fk("articles", "workspace_id", "workspaces", Cascade))
                .to_owned(),
        )
        .await?;
        m.create_index(index("articles", &["workspace_id", "id"], false))
            .await?;
        // The full-text index, kept in step with `articles` by the same transactions.
        if postgres {
            db.execute_unprepared(
                "ALTER TABLE articles ADD COLUMN search tsvector GENERATED ALWAYS AS \
                 (setweight(to_tsvector('english', title), 'A') || \
                  setweight(to_tsvector('english', body), 'B')) STORED",
            )
            .await?;
            db.execute_unprepared("CREATE INDEX ix_articles_search ON articles USING GIN (search)")
                .await?;
        } else {
            db.execute_unprepared(
                "CREATE VIRTUAL TABLE articles_fts USING fts5(\
                 article_id UNINDEXED, workspace_id UNINDEXED, title, body, \
                 tokenize = 'porter unicode61')",
            )
            .await?;
        }

        m.create_table(
            Table::create()
                .table("handoffs")
                .col(text("id").primary_key())
                .col(text("workspace_id"))
                .col(text("conversation_id"))
                .col(text("reason"))
                .col(text("status"))
                .col(text_null("team_id"))
                .col(text_null("accepted_by"))
                .col(text_null("note"))
                .col(big_integer("trigger_seq"))
                .col(big_integer("requested_at"))
                .col(big_integer_null("accepted_at"))
                .col(big_integer_null("resolved_at"))
                .col(big_integer_null("cancelled_at"))
                .foreign_key(&mut fk("handoffs", "workspace_id", "workspaces", Cascade))
                .foreign_key(&mut fk(
                    "handoffs",
                    "conversation_id",
                    "conversations",
                    Cascade,
                ))
                .foreign_key(&mut fk("handoffs", "team_id", "teams", SetNull))
                .foreign_key(&mut fk("handoffs", "accepted_by", "agents", SetNull))
                .to_owned(),
        )
        .await?;
        m.create_index(index("handoffs", &["workspace_id", "status"], false))
            .await?;
        m.create_index(index("handoffs", &["workspace_id", "requested_at"], false))
            .await?;
        m.create_index(index("handoffs", &["conversation_id"], false))
            .await?;
        // At most one open handoff per conversation, whoever races to open one.
        db.execute_unprepared(
            "CREATE UNIQUE INDEX ux_handoffs_open ON handoffs (conversation_id) \
             WHERE status IN ('REQUESTED', 'ACCEPTED')",
        )
        .await?;

        m.create_table(
            Table::create()
                .table("api_keys")
                .col(text("id").primary_key())
                .col(text("workspace_id"))
                .col(text("name"))
                .col(text("secret_hash"))
                .col(text("scopes"))
                .col(text_null("created_by"))
                .col(big_integer("created_at"))
                .col(big_integer_null("last_used_at"))
                .col(big_integer_null("revoked_at"))
                .foreign_key(&mut fk("api_keys", "workspace_id", "workspaces", Cascade))
                .to_owned(),
        )
        .await?;
        m.create_index(index("api_keys", &["secret_hash"], true))
            .await?;
        Ok(())
    }
}
