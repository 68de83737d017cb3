//! Writes committed together. SQLite has one writer: concurrent writes queued for
//! it are taken (up to `MAX_BATCH`) into one transaction and committed once, so
//! they share one fsync. PostgreSQL commits concurrent transactions itself, so
//! there each write has a transaction of its own.
//!
//! A write that fails gets its own error and takes nothing of the others with it
//! (see `write_batch`). Each is answered after the commit (durable,
//! `synchronous=FULL`), with its own result; if the commit itself fails, every
//! write of the batch gets that error and none of them is stored.

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sea_orm::{DatabaseTransaction, TransactionTrait};
use tokio::sync::mpsc;

use super::Core;
use super::feed::{self, Event};
use crate::error::{AppError, AppResult};

/// A write that can wait for the writer and share its transaction.
pub trait Batched: Send + 'static {
    /// Write inside `txn` (the batch's transaction, or a savepoint of it), and
    /// return the events to store with it; `None` when there is nothing new to keep
    /// (a retry found what it stored before), and what it did is rolled back. It
    /// may run twice: a second time when a neighbour failed the first pass.
    fn write<'a>(
        &'a mut self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, AppResult<Option<Vec<Event>>>>;

    /// Tell the caller how it ended: `Ok` once what it wrote committed (or it had
    /// nothing to keep).
    fn answer(self: Box<Self>, result: AppResult<()>);
}

/// The queue of SQLite's writer.
pub struct Writer(mpsc::Sender<Box<dyn Batched>>);

/// Writes committed together at most.
const MAX_BATCH: usize = 64;

impl Writer {
    /// The queue, and the writer task that drains it while `core` lives.
    pub fn start(core: &Core) -> Writer {
        let (tx, mut rx) = mpsc::channel::<Box<dyn Batched>>(1024);
        let weak = core.downgrade();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                let Some(core) = weak.upgrade() else {
                    return;
                };
                // A panic fails this batch's writes (their answers are dropped),
                // not the writer.
                let _ = AssertUnwindSafe(write_batch(&core, batch))
                    .catch_unwind()
                    .await;
            }
        });
        Writer(tx)
    }
}

impl Core {
    /// Write `job`: batched with others waiting for SQLite's writer, or in a
    /// transaction of its own on PostgreSQL. `job` answers its caller; this fails
    /// only when the writer is gone (the job is then dropped unanswered).
    pub async fn write_batched(&self, job: Box<dyn Batched>) -> AppResult<()> {
        match self.writer.get() {
            Some(Writer(queue)) => queue
                .send(job)
                .await
                .map_err(|_| AppError::Internal("the writer stopped".to_owned())),
            None => {
                write_alone(self, job).await;
                Ok(())
            }
        }
    }
}

/// A write in a transaction of its own.
async fn write_alone(core: &Core, mut job: Box<dyn Batched>) {
    let result = async {
        let txn = core.db.writer.begin().await?;
        match job.write(&txn).await? {
            Some(events) => {
                let staged = feed::stage(&txn, &events).await?;
                txn.commit().await?;
                feed::publish(core, staged);
            }
            None => txn.rollback().await?,
        }
        Ok(())
    }
    .await;
    job.answer(result);
}

/// Answer every one of `jobs` with `err`.
fn fail_all(jobs: impl IntoIterator<Item = Box<dyn Batched>>, err: AppError) {
    for job in jobs {
        job.answer(Err(err.clone()));
    }
}

/// Write a batch as one transaction, without savepoints (a savepoint costs two
/// more statements per write, each a round trip to SQLite's thread, and a journal
/// of the pages it touches). If a write fails, or has nothing to keep (a retry,
/// whose effects must not stay), the transaction is rolled back, that write
/// answered, and the others written again, each in a savepoint
/// ([`write_guarded`]): two passes at most, however many fail.
async fn write_batch(core: &Core, mut batch: Vec<Box<dyn Batched>>) {
    let txn = match core.db.writer.begin().await {
        Ok(txn) => txn,
        Err(err) => return fail_all(batch, err.into()),
    };
    let mut events = Vec::with_capacity(batch.len() + 1);
    let mut stopped = None;
    for (i, job) in batch.iter_mut().enumerate() {
        match job.write(&txn).await {
            Ok(Some(written)) => events.extend(written),
            Ok(None) => {
                stopped = Some((i, Ok(())));
                break;
            }
            Err(err) => {
                stopped = Some((i, Err(err)));
                break;
            }
        }
    }
    if let Some((i, answer)) = stopped {
        if let Err(err) = txn.rollback().await {
            tracing::warn!(error = %err, "rolling back a batch of writes");
        }
        batch.remove(i).answer(answer);
        return write_guarded(core, batch).await;
    }
    // The batch's events in one statement.
    let staged = match feed::stage(&txn, &events).await {
        Ok(staged) => staged,
        // Nothing is committed: every write of the batch gets the error.
        Err(err) => return fail_all(batch, err),
    };
    match txn.commit().await {
        Ok(()) => {
            feed::publish(core, staged);
            for job in batch {
                job.answer(Ok(()));
            }
        }
        Err(err) => fail_all(batch, err.into()),
    }
}

/// Write a batch as one transaction, each write in a savepoint of its own.
async fn write_guarded(core: &Core, batch: Vec<Box<dyn Batched>>) {
    if batch.is_empty() {
        return;
    }
    let txn = match core.db.writer.begin().await {
        Ok(txn) => txn,
        Err(err) => return fail_all(batch, err.into()),
    };
    let mut written = Vec::with_capacity(batch.len());
    for mut job in batch {
        let result = async {
            let savepoint = txn.begin().await?;
            match job.write(&savepoint).await {
                Ok(Some(events)) => {
                    let staged = feed::stage(&savepoint, &events).await?;
                    savepoint.commit().await?;
                    Ok(Some(staged))
                }
                Ok(None) => {
                    savepoint.rollback().await?;
                    Ok(None)
                }
                Err(err) => {
                    savepoint.rollback().await?;
                    Err(err)
                }
            }
        }
        .await;
        match result {
            Ok(staged) => written.push((job, staged)),
            // Nothing of it stays: answered now.
            Err(err) => job.answer(Err(err)),
        }
    }
    match txn.commit().await {
        Ok(()) => {
            for (job, staged) in written {
                if let Some(staged) = staged {
                    feed::publish(core, staged);
                }
                job.answer(Ok(()));
            }
        }
        Err(err) => fail_all(written.into_iter().map(|(job, _)| job), err.into()),
    }
}
