//! Which conversations each knowledge article was retrieved or cited in: one row
//! per article and conversation, written where it happens (retrieval for a
//! visitor message; an AI answer's sources, in the transaction that stores it), so
//! the effect of an article's edit can be measured on the conversations that used
//! it (`insights.articleImpact`).

use sea_orm::ConnectionTrait;

use crate::db::stmt;
use crate::entity::now_ms;
use crate::error::AppResult;

/// Note that `article_ids` were used in the conversation (`cited`: an AI answer
/// cites them, else retrieval found them); a citation is never undone.
pub async fn record(
    db: &impl ConnectionTrait,
    workspace_id: &str,
    conversation_id: &str,
    article_ids: &[&str],
    cited: bool,
) -> AppResult<()> {
    if article_ids.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let mut sql = String::from(
        "INSERT INTO article_uses (article_id, conversation_id, workspace_id, cited, created_at) VALUES ",
    );
    let mut values = Vec::with_capacity(article_ids.len() * 5);
    for (i, article_id) in article_ids.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str("(?, ?, ?, ?, ?)");
        values.extend([
            (*article_id).into(),
            conversation_id.into(),
            workspace_id.into(),
            cited.into(),
            now.into(),
        ]);
    }
    sql.push_str(
        " ON CONFLICT (article_id, conversation_id) DO UPDATE SET cited = \
         CASE WHEN article_uses.cited THEN article_uses.cited ELSE excluded.cited END",
    );
    db.execute_raw(stmt(db.get_database_backend(), &sql, values))
        .await?;
    Ok(())
}
