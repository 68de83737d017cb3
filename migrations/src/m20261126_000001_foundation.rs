//! The foundation: workspaces, agents, teams, leads and lead fields, conversations,
//! messages, insight tags and the tags applied to conversations.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// A foreign key from `table.column` to `target.id`, with the given delete rule.
pub(crate) fn fk(
    table: &str,
    column: &str,
    target: &str,
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{table}_{column}"))
        .from(Alias::new(table), Alias::new(column))
        .to(Alias::new(target), Alias::new("id"))
        .on_delete(on_delete)
        .to_owned()
}

pub(crate) fn index(table: &str, columns: &[&str], unique: bool) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(format!("ix_{table}_{}", columns.join("_")))
        .table(Alias::new(table));
    for column in columns {
        stmt.col(Alias::new(*column));
    }
    if unique {
        stmt.unique();
    }
    stmt.to_owned()
}

fn id() -> ColumnDef {
    text("id").primary_key().take()
}

fn workspace_ref() -> ColumnDef {
    text("workspace_id")
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use ForeignKeyAction::{Cascade, SetNull};

        m.create_table(
            Table::create()
                .table("settings")
                .col(text("key").primary_key())
                .col(text("value"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("workspaces")
                .col(id())
                .col(text("name"))
                .col(text("widget_key"))
                .col(boolean("responder_enabled").default(true))
                .col(text_null("default_team_id"))
                .col(big_integer("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("workspaces", &["widget_key"], true))
            .await?;

        m.create_table(
            Table::create()
                .table("agents")
                .col(id())
                .col(workspace_ref())
                .col(text("email"))
                .col(text("name"))
                .col(text("password_hash"))
                .col(text("role"))
                .col(big_integer("created_at"))
                .foreign_key(&mut fk("agents", "workspace_id", "workspaces", Cascade))
                .to_owned(),
        )
        .await?;
        m.create_index(index("agents", &["workspace_id", "email"], true))
            .await?;
        m.create_index(index("agents", &["email"], false)).await?;

        m.create_table(
            Table::create()
                .table("teams")
                .col(id())
                .col(workspace_ref())
                .col(text("name"))
                .col(big_integer("created_at"))
                .foreign_key(&mut fk("teams", "workspace_id", "workspaces", Cascade))
                .to_owned(),
        )
        .await?;
        m.create_index(index("teams", &["workspace_id", "name"], true))
            .await?;

        m.create_table(
            Table::create()
                .table("team_members")
                .col(text("team_id"))
                .col(text("agent_id"))
                .primary_key(Index::create().col("team_id").col("agent_id"))
                .foreign_key(&mut fk("team_members", "team_id", "teams", Cascade))
                .foreign_key(&mut fk("team_members", "agent_id", "agents", Cascade))
                .to_owned(),
        )
        .await?;
        m.create_index(index("team_members", &["agent_id"], false))
            .await?;

        m.create_table(
            Table::create()
                .table("lead_fields")
                .col(id())
                .col(workspace_ref())
                .col(text("key"))
                .col(text("label"))
                .col(text("kind"))
                .col(text("options"))
                .col(boolean("required"))
                .col(big_integer("created_at"))
                .foreign_key(&mut fk(
                    "lead_fields",
                    "workspace_id",
                    "workspaces",
                    Cascade,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(index("lead_fields", &["workspace_id", "key"], true))
            .await?;

        m.create_table(
            Table::create()
                .table("leads")
                .col(id())
                .col(workspace_ref())
                .col(text_null("visitor_id"))
                .col(text_null("name"))
                .col(text_null("email"))
                .col(text_null("company"))
                .col(text("fields"))
                .col(big_integer("created_at"))
                .col(big_integer("updated_at"))
                .foreign_key(&mut fk("leads", "workspace_id", "workspaces", Cascade))
                .to_owned(),
        )
        .await?;
        m.create_index(index("leads", &["workspace_id", "visitor_id"], false))
            .await?;
        m.create_index(index("leads", &["workspace_id", "email"], false))
            .await?;

        m.create_table(
            Table::create()
                .table("conversations")
                .col(id())
                .col(workspace_ref())
                .col(text_null("lead_id"))
                .col(text("visitor_id"))
                .col(text("status"))
                .col(text_null("assignee_id"))
                .col(text_null("team_id"))
                .col(text("context"))
                .col(big_integer("last_seq").default(0))
                .col(big_integer("ai_boundary_seq").default(0))
                .col(big_integer("created_at"))
                .col(big_integer("updated_at"))
                .foreign_key(&mut fk(
                    "conversations",
                    "workspace_id",
                    "workspaces",
                    Cascade,
                ))
                .foreign_key(&mut fk("conversations", "lead_id", "leads", SetNull))
                .foreign_key(&mut fk("conversations", "assignee_id", "agents", SetNull))
                .foreign_key(&mut fk("conversations", "team_id", "teams", SetNull))
                .to_owned(),
        )
        .await?;
        m.create_index(index("conversations", &["workspace_id", "status"], false))
            .await?;
        m.create_index(index(
            "conversations",
            &["workspace_id", "updated_at"],
            false,
        ))
        .await?;
        m.create_index(index(
            "conversations",
            &["workspace_id", "created_at"],
            false,
        ))
        .await?;
        m.create_index(index("conversations", &["assignee_id"], false))
            .await?;
        m.create_index(index("conversations", &["lead_id"], false))
            .await?;

        m.create_table(
            Table::create()
                .table("messages")
                .col(id())
                .col(workspace_ref())
                .col(text("conversation_id"))
                .col(big_integer("seq"))
                .col(text("author"))
                .col(text_null("agent_id"))
                .col(text("body"))
                .col(boolean("internal"))
                .col(double_null("confidence"))
                .col(text("sources"))
                .col(text_null("client_message_id"))
                .col(big_integer("created_at"))
                .foreign_key(&mut fk(
                    "messages",
                    "conversation_id",
                    "conversations",
                    Cascade,
                ))
                .foreign_key(&mut fk("messages", "agent_id", "agents", SetNull))
                .to_owned(),
        )
        .await?;
        m.create_index(index("messages", &["conversation_id", "seq"], true))
            .await?;
        m.create_index(index(
            "messages",
            &["conversation_id", "client_message_id"],
            true,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("insight_tags")
                .col(id())
                .col(workspace_ref())
                .col(text("slug"))
                .col(text("label"))
                .col(text("description"))
                .col(text("keywords"))
                .col(text("patterns"))
                .col(text_null("team_id"))
                .col(boolean("escalate"))
                .col(integer("priority").default(0))
                .col(big_integer("created_at"))
                .col(big_integer("updated_at"))
                .foreign_key(&mut fk(
                    "insight_tags",
                    "workspace_id",
                    "workspaces",
                    Cascade,
                ))
                .foreign_key(&mut fk("insight_tags", "team_id", "teams", SetNull))
                .to_owned(),
        )
        .await?;
        m.create_index(index("insight_tags", &["workspace_id", "slug"], true))
            .await?;

        m.create_table(
            Table::create()
                .table("conversation_tags")
                .col(text("conversation_id"))
                .col(text("tag_id"))
                .col(workspace_ref())
                .col(text("source"))
                .col(text_null("evidence"))
                .col(double("confidence"))
                .col(text_null("message_id"))
                .col(text_null("applied_by"))
                .col(big_integer("applied_at"))
                .col(big_integer_null("removed_at"))
                .primary_key(Index::create().col("conversation_id").col("tag_id"))
                .foreign_key(&mut fk(
                    "conversation_tags",
                    "conversation_id",
                    "conversations",
                    Cascade,
                ))
                .foreign_key(&mut fk(
                    "conversation_tags",
                    "tag_id",
                    "insight_tags",
                    Cascade,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(index("conversation_tags", &["tag_id"], false))
            .await?;
        Ok(())
    }
}
