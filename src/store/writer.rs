//! The single writer. Every change of a run's state goes through one
//! thread that takes all commands waiting for it, applies them in one sled
//! transaction, answers those that need not wait for the disk, flushes
//! once if any of them must be durable (submits, cancels), and answers
//! those.
//!
//! Why one thread: sled's transactions share one global lock, so writers
//! on many threads mostly wait for each other and wake each other up (a
//! third of the CPU went to futex calls under load). One transaction and
//! one flush for a whole batch costs about the same as for one command, so
//! the batch, not the command, is the unit of cost: at 32 concurrent
//! submits a batch carries up to 32 of them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};

use super::{Command, Outcome, Store, StoreError};

/// A command and where its answer goes.
struct Job {
    command: Command,
    reply: Sender<Result<Outcome, StoreError>>,
}

/// Most commands in one transaction: bounds the time a transaction holds
/// sled's lock and the size of its write set.
const MAX_BATCH: usize = 512;

/// How long a batch waits for company when durable commands arrive
/// concurrently.
const LINGER: Duration = Duration::from_micros(300);

/// A batch not answered after this long is taken as a failed store: sled
/// 0.34 can wait forever in flush after a write error (disk full), and a
/// submit must get its 503 rather than hang.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) struct Writer {
    jobs: Sender<Job>,
    /// Set when a batch hangs; the store then refuses writes.
    failed: Arc<AtomicBool>,
}

impl Writer {
    /// Starts the writer thread. It holds the store weakly, so dropping
    /// the store closes the channel and ends the thread.
    pub(super) fn start(store: Weak<Store>, failed: Arc<AtomicBool>) -> Writer {
        let (jobs, rx) = async_channel::unbounded();
        std::thread::Builder::new()
            .name("synqc-writer".into())
            .spawn(move || writer_loop(store, rx))
            .map(|_| ())
            .unwrap_or_else(|e| log::error!("cannot start the store writer thread: {e}"));
        Writer { jobs, failed }
    }

    /// Applies one command (with whatever else is waiting) and answers once
    /// it is committed, or once it is on disk if it is durable.
    pub(super) async fn call(&self, command: Command) -> Result<Outcome, StoreError> {
        self.call_many(vec![command])
            .await
            .pop()
            .unwrap_or_else(|| Err(StoreError::Unavailable("the store writer gave no answer".into())))
    }

    /// Applies several commands, in order, normally in one transaction:
    /// they reach the channel together, before the writer can wake up
    /// and take the first alone. One answer per command.
    pub(super) async fn call_many(&self, commands: Vec<Command>) -> Vec<Result<Outcome, StoreError>> {
        let mut answers = Vec::with_capacity(commands.len());
        for command in commands {
            let (reply, answer) = async_channel::bounded(1);
            // Unbounded: try_send fails only once the writer has stopped.
            let sent = self.jobs.try_send(Job { command, reply }).is_ok();
            answers.push(sent.then_some(answer));
        }
        // One deadline for all: the batch is answered together or not at all.
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        let mut out = Vec::with_capacity(answers.len());
        for answer in answers {
            out.push(match answer {
                Some(answer) => self.wait(answer, deadline).await,
                None => Err(StoreError::Unavailable("the store writer stopped".into())),
            });
        }
        out
    }

    async fn wait(
        &self,
        answer: Receiver<Result<Outcome, StoreError>>,
        deadline: Instant,
    ) -> Result<Outcome, StoreError> {
        let answer = self
            .until(deadline, async {
                answer
                    .recv()
                    .await
                    .map_err(|_| StoreError::Unavailable("the store writer stopped".into()))
            })
            .await;
        answer.and_then(|outcome| outcome)
    }

    /// Awaits a write done outside the writer thread, with the writer's
    /// own bound: one that hangs makes the store refuse writes too.
    pub(super) async fn bounded<T>(
        &self,
        write: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.until(Instant::now() + ANSWER_TIMEOUT, write).await
    }

    async fn until<T>(
        &self,
        deadline: Instant,
        write: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let done = smol::future::or(async { Some(write.await) }, async {
            smol::Timer::at(deadline).await;
            None
        })
        .await;
        done.unwrap_or_else(|| {
            if !self.failed.swap(true, Ordering::SeqCst) {
                log::error!(
                    "a store write did not finish in {ANSWER_TIMEOUT:?}; writes are refused until synqc \
                     restarts: free space on the data directory's disk and restart synqc"
                );
            }
            Err(StoreError::WritesRefused)
        })
    }
}

fn writer_loop(store: Weak<Store>, jobs: Receiver<Job>) {
    let mut flushing_concurrently = false;
    while let Ok(first) = jobs.recv_blocking() {
        // Under concurrent submits, wait a moment so that more of them join
        // this batch and its flush (sled's flush costs the same for one
        // submit as for fifty). A lone client, and batches that need no
        // flush (claims, finishes), are served at once.
        if flushing_concurrently {
            std::thread::sleep(LINGER);
        }
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        flushing_concurrently = batch.len() > 1 && batch.iter().any(|j| j.command.durable());
        let Some(store) = store.upgrade() else { break };
        run_batch(&store, batch);
    }
}

fn run_batch(store: &Store, batch: Vec<Job>) {
    let (commands, replies): (Vec<Command>, Vec<_>) = batch.into_iter().map(|j| (j.command, j.reply)).unzip();
    let outcomes = match store.apply(&commands) {
        Ok(outcomes) => outcomes,
        // Only storage aborts a batch (see commands.rs).
        Err(e) => {
            let e = store.refuse_writes(e);
            for reply in replies {
                let _ = reply.try_send(Err(e.clone()));
            }
            return;
        }
    };
    // What need not wait for the disk is answered at once.
    let mut waiting = Vec::new();
    for ((command, outcome), reply) in commands.into_iter().zip(outcomes).zip(replies) {
        if command.durable() {
            waiting.push((command, outcome, reply));
        } else {
            // A caller that gave up (client gone) is not an error.
            let _ = reply.try_send(Ok(outcome));
        }
    }
    if waiting.is_empty() {
        return;
    }
    let started = Instant::now();
    // The main database only: what goes to the archive is flushed by
    // whoever writes it (see archive.rs).
    let flushed = store.db.flush().map(drop).map_err(StoreError::from);
    metrics::histogram!("synqc_store_flush_duration_seconds").record(started.elapsed().as_secs_f64());
    match flushed {
        Ok(()) => {
            for (_, outcome, reply) in waiting {
                let _ = reply.try_send(Ok(outcome));
            }
        }
        Err(e) => {
            log::error!("store flush failed for {} waiting writes: {e}", waiting.len());
            // Not durable: take the accepted submits back, so a client that
            // saw an error never finds its run executing later.
            let undo: Vec<Command> = waiting
                .iter()
                .filter_map(|(command, outcome, _)| match (command, outcome) {
                    (Command::Submit { run, .. }, Outcome::Submitted(super::Submitted::Accepted { .. })) => {
                        Some(Command::Unsubmit { run: run.clone() })
                    }
                    _ => None,
                })
                .collect();
            if let Err(e2) = store.apply(&undo) {
                log::error!(
                    "{} submits could not be taken back after the failed flush: {e2}",
                    undo.len()
                );
            }
            let e = store.refuse_writes(e);
            for (_, _, reply) in waiting {
                let _ = reply.try_send(Err(e.clone()));
            }
        }
    }
}
