//! Insights: conversation ratings, tags that cover articles, and resumable retag jobs.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000001_foundation::{fk, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use ForeignKeyAction::Cascade;
        m.alter_table(
            Table::alter()
                .table("insight_tags")
                .add_column(text("article_ids").default("[]"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("conversation_ratings")
                .col(text("conversation_id").primary_key())
                .col(text("workspace_id"))
                .col(integer("score"))
                .col(text_null("comment"))
                .col(big_integer("created_at"))
                .foreign_key(&mut fk(
                    "conversation_ratings",
                    "conversation_id",
                    "conversations",
                    Cascade,
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("retag_jobs")
                .col(text("id").primary_key())
                .col(text("workspace_id"))
                .col(big_integer("since"))
                .col(text_null("cursor"))
                .col(big_integer("processed"))
                .col(big_integer("tagged"))
                .col(big_integer("untagged"))
                .col(big_integer("total"))
                .col(text("status"))
                .col(big_integer("created_at"))
                .col(big_integer_null("finished_at"))
                .foreign_key(&mut fk("retag_jobs", "workspace_id", "workspaces", Cascade))
                .to_owned(),
        )
        .await?;
        m.create_index(index("retag_jobs", &["status"], false))
            .await?;
        m.create_index(index(
            "messages",
            &["workspace_id", "author", "created_at"],
            false,
        ))
        .await?;
        Ok(())
    }
}
