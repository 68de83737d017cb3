//! A message's `clientMessageId` is found through a partial index of the messages
//! that have one.
//!
//! The full `(conversation_id, client_message_id)` index held every message, most
//! with no key; deduplicated, it was a third the size of `(conversation_id, seq)`,
//! so PostgreSQL chose it for "the message at this seq" lookups (the inbox page's
//! newest message, a docs gap's question) and filtered about four messages per
//! conversation on `seq`. Indexing only the keyed messages keeps the key unique
//! and found (`client_message_id = ?` implies it is not null), and leaves seq
//! lookups to their own index.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let conn = m.get_connection();
        conn.execute_unprepared(
            "CREATE UNIQUE INDEX ix_messages_client_message_id \
             ON messages (conversation_id, client_message_id) \
             WHERE client_message_id IS NOT NULL",
        )
        .await?;
        conn.execute_unprepared("DROP INDEX ix_messages_conversation_id_client_message_id")
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let conn = m.get_connection();
        conn.execute_unprepared(
            "CREATE UNIQUE INDEX ix_messages_conversation_id_client_message_id \
             ON messages (conversation_id, client_message_id)",
        )
        .await?;
        conn.execute_unprepared("DROP INDEX ix_messages_client_message_id")
            .await?;
        Ok(())
    }
}
