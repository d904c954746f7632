//! Group commit. Many submits may be waiting for the same fsync: each
//! writes its records, then asks the flusher; the flusher thread takes every
//! request that has arrived, runs one `flush`, and answers them all. Every
//! write made before a request was queued is covered by the flush that
//! answers it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};

use super::StoreError;

type Reply = Sender<Result<(), StoreError>>;

/// How long a flush waits for company when submits arrive concurrently.
const LINGER: std::time::Duration = std::time::Duration::from_micros(500);

/// A flush that has not finished after this long is taken as a failed
/// store: sled 0.34 can wait forever in flush after a write error (disk
/// full), and a submit must get its 503 rather than hang.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Flusher {
    requests: Sender<Reply>,
    /// Set when a flush hangs; the store then refuses writes.
    failed: Arc<AtomicBool>,
}

impl Flusher {
    pub fn start(db: sled::Db, failed: Arc<AtomicBool>) -> Flusher {
        let (tx, rx) = async_channel::unbounded::<Reply>();
        std::thread::Builder::new()
            .name("synqc-flush".into())
            .spawn(move || flush_loop(db, rx))
            .map(|_| ())
            .unwrap_or_else(|e| log::error!("cannot start the flush thread: {e}"));
        Flusher { requests: tx, failed }
    }

    /// Resolves once everything written before the call is on disk.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = async_channel::bounded(1);
        self.requests
            .send(tx)
            .await
            .map_err(|_| StoreError::Io("flush thread stopped".into()))?;
        let answer = smol::future::or(async { Some(rx.recv().await) }, async {
            smol::Timer::after(FLUSH_TIMEOUT).await;
            None
        })
        .await;
        match answer {
            Some(Ok(outcome)) => outcome,
            Some(Err(_)) => Err(StoreError::Io("flush thread stopped".into())),
            None => {
                if !self.failed.swap(true, Ordering::SeqCst) {
                    log::error!(
                        "store flush did not finish in {FLUSH_TIMEOUT:?}; the store is now read-only"
                    );
                }
                Err(StoreError::Io("flush timed out".into()))
            }
        }
    }

    /// The same, from a blocking thread.
    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        smol::block_on(self.flush())
    }
}

fn flush_loop(db: sled::Db, requests: Receiver<Reply>) {
    let mut concurrent = false;
    while let Ok(first) = requests.recv_blocking() {
        // Under concurrent load, wait a moment so more writers join this
        // fsync: sled's flush stalls writers while it runs, so fewer, larger
        // flushes carry more submits per second (measured: 2.5k -> 3.2k/s
        // at 32 connections). A lone client is flushed at once.
        if concurrent {
            std::thread::sleep(LINGER);
        }
        let mut batch = vec![first];
        while let Ok(more) = requests.try_recv() {
            batch.push(more);
        }
        concurrent = batch.len() > 1;
        let started = Instant::now();
        let outcome = db.flush().map(|_| ()).map_err(|e| StoreError::Io(e.to_string()));
        metrics::histogram!("synqc_store_flush_duration_seconds").record(started.elapsed().as_secs_f64());
        if let Err(e) = &outcome {
            // A flush error answers its waiters (their submits are taken
            // back); only a flush that hangs makes the store read-only.
            log::error!("store flush failed for {} waiting writes: {e}", batch.len());
        }
        for reply in batch {
            // A waiter that gave up (client gone) is not an error.
            let _ = reply.try_send(outcome.clone());
        }
    }
}
