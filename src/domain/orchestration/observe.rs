//! What this process does with each record of the event log before its
//! subscribers get it (registered with the log by the composition root).

use std::sync::Arc;

use crate::domain::Core;
use crate::domain::core::feed::{EventKind, decode};
use crate::entity::HandoffStatus;
use crate::events::Record;

/// Run by the log reader on every record before its subscribers get it: decode it
/// once, and for a new handoff request read its case file and team now, in the
/// background, so that no subscriber of escalations waits for the first one to
/// get to the event (they deliver in order, and a storm of requests would otherwise
/// queue behind each one's case file). Only while a subscription listens here.
pub fn observe(core: &Core, record: &Arc<Record>) {
    // Other processes' changes too (this process's own were counted at commit);
    // typing is not stored and changes no list.
    if record.cursor.is_some() {
        core.list_counts.changed(&record.workspace_id);
    }
    let Some(event) = decode(record) else {
        return;
    };
    let EventKind::HandoffChanged {
        handoff, resolved, ..
    } = &event.kind
    else {
        return;
    };
    // With no subscription listening on this process, nobody waits for it: one
    // that starts later reads it when it gets to the event.
    if handoff.status != HandoffStatus::Requested || core.events.streams_listening() == 0 {
        return;
    }
    let (core, handoff, resolved) = (core.clone(), Arc::clone(handoff), Arc::clone(resolved));
    core.tasks.clone().spawn(async move {
        let case_file = resolved.case_file.get_or_try_init(|| async {
            crate::domain::handoff::case_file::build(&core, &handoff)
                .await
                .map(Arc::new)
        });
        let team = resolved.team.get_or_try_init(|| async {
            match &handoff.team_id {
                Some(id) => crate::domain::tenancy::teams::get(&core, &handoff.workspace_id, id)
                    .await
                    .map(|team| Some(Arc::new(team))),
                None => Ok(None),
            }
        });
        // A failure here is the subscribers' to meet: they try again themselves.
        let _ = tokio::join!(case_file, team);
    });
}
