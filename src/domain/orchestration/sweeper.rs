//! Conversations that end on a clock: an AI conversation in which nothing has
//! happened for the workspace's `autoResolveAfterSeconds` (the visitor silent after
//! the AI's answer) is resolved as `AUTO`, with a `SYSTEM` message; a later visitor
//! message reopens it, as any resolved conversation.
//!
//! Nothing is scheduled in memory: every process looks every `--sweep-every` for
//! such conversations in the database, so a restart loses nothing. Processes
//! sharing a PostgreSQL database may look at once; each resolution is a conditional
//! update of a conversation still held by the AI (`handoff::resolution::close`), so one
//! of them resolves it and the others' attempts change nothing.

use std::time::Duration;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::domain::Core;
use crate::entity::{ConversationStatus, ResolvedBy, conversation, now_ms, workspace};
use crate::error::AppResult;

/// What the visitor is told when a silent conversation is resolved.
pub const AUTO_RESOLVED_NOTE: &str =
    "This conversation was closed after a while without messages. Write again any time.";

/// Conversations resolved per workspace per sweep at most (the rest at the next).
const BATCH: u64 = 200;

/// Sweep from this process until shutdown.
pub fn start(core: &Core) {
    let every = core.config.sweep_every.max(Duration::from_millis(10));
    core.repeat(every, "resolving silent conversations", |core| async move {
        sweep(&core).await.map(drop)
    });
}

/// One look at every workspace; how many conversations this process resolved.
pub async fn sweep(core: &Core) -> AppResult<usize> {
    // Read on the background connections: a sweep with nothing to do is not a
    // statement any request is counted for (`Db::statement_count`).
    let workspaces = workspace::Entity::find().all(&core.db.background).await?;
    let mut resolved = 0;
    for workspace in workspaces {
        let policy = workspace.handoff_policy()?;
        let Some(seconds) = policy.auto_resolve_after_seconds else {
            continue;
        };
        let cutoff = now_ms() - i64::from(seconds) * 1000;
        let silent = conversation::Entity::find()
            .filter(conversation::Column::WorkspaceId.eq(workspace.id.as_str()))
            .filter(conversation::Column::Status.eq(ConversationStatus::Ai))
            .filter(conversation::Column::UpdatedAt.lt(cutoff))
            .order_by_asc(conversation::Column::UpdatedAt)
            .limit(BATCH)
            .all(&core.db.background)
            .await?;
        for conversation in silent {
            let note = Some(AUTO_RESOLVED_NOTE.to_owned());
            let closed = crate::domain::handoff::resolution::close(
                core,
                &conversation,
                ResolvedBy::Auto,
                note,
            )
            .await?;
            resolved += usize::from(closed.is_some());
        }
    }
    Ok(resolved)
}
