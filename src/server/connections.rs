//! Open connections as a bounded resource. Every accepted socket takes a
//! ticket; past the cap, the connection that has waited longest without a
//! request in progress is told to close (idle keep-alive first, then one
//! still dribbling its head), so a flood of idle or slow sockets can never
//! keep /health or a real client out. Only when every connection is busy
//! with a request is a newcomer refused (503).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_channel::{Receiver, Sender};

/// Where a connection is in its request cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Phase {
    /// Waiting for the first byte of a request: the cheapest to close.
    Idle = 0,
    /// Reading a request head that has begun to arrive.
    Head = 1,
    /// A request is being read, handled or answered: never shed.
    Busy = 2,
    /// Told to close; it goes as soon as it notices.
    Shed = 3,
}

struct Slot {
    phase: AtomicU8,
    /// When the current phase began, in microseconds since the registry's
    /// start (oldest goes first).
    since_us: AtomicU64,
    shed: Sender<()>,
}

pub(super) struct Connections {
    cap: usize,
    started: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Slot>>>,
}

/// A connection's place in the registry; dropping it frees the place.
pub(super) struct Ticket {
    id: u64,
    slot: Arc<Slot>,
    registry: Arc<Connections>,
    /// Receives once when the registry wants this connection closed.
    pub(super) shed: Receiver<()>,
}

impl Connections {
    pub(super) fn new(cap: usize) -> Arc<Connections> {
        Arc::new(Connections {
            cap: cap.max(1),
            started: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        })
    }

    pub(super) fn cap(&self) -> usize {
        self.cap
    }

    fn now_us(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }

    /// A ticket for a new connection, making room by shedding the
    /// longest-waiting idle (else slow-head) connection when the cap is
    /// reached; `None` when every connection is busy.
    pub(super) fn admit(self: &Arc<Self>) -> Option<Ticket> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let shedding = open
            .values()
            .filter(|s| s.phase.load(Ordering::Relaxed) == Phase::Shed as u8)
            .count();
        // Connections already told to close are on their way out; count
        // them only up to a small slack, so that a burst of newcomers
        // cannot overshoot the cap by much before they are gone.
        if open.len() - shedding.min(self.cap / 8 + 1) >= self.cap {
            let victim = [Phase::Idle, Phase::Head].into_iter().find_map(|phase| {
                open.values()
                    .filter(|s| s.phase.load(Ordering::Relaxed) == phase as u8)
                    .min_by_key(|s| s.since_us.load(Ordering::Relaxed))
            });
            let victim = victim?;
            victim.phase.store(Phase::Shed as u8, Ordering::Relaxed);
            let _ = victim.shed.try_send(());
        }
        let (tx, rx) = async_channel::bounded(1);
        let slot = Arc::new(Slot {
            phase: AtomicU8::new(Phase::Idle as u8),
            since_us: AtomicU64::new(self.now_us()),
            shed: tx,
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        open.insert(id, slot.clone());
        Some(Ticket {
            id,
            slot,
            registry: self.clone(),
            shed: rx,
        })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Ticket {
    /// Moves to `phase`, unless the connection was already told to close.
    pub(super) fn set(&self, phase: Phase) {
        let current = self.slot.phase.load(Ordering::Relaxed);
        if current != Phase::Shed as u8 && current != phase as u8 {
            self.slot.phase.store(phase as u8, Ordering::Relaxed);
            self.slot
                .since_us
                .store(self.registry.now_us(), Ordering::Relaxed);
        }
    }

    pub(super) fn is_shed(&self) -> bool {
        self.slot.phase.load(Ordering::Relaxed) == Phase::Shed as u8
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.registry
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

/// How many connections the fd limit leaves room for: the soft limit is
/// raised to the hard one first (as Go's runtime and nginx do), and a
/// reserve is kept for the stores, the listeners and the blocking pool.
pub(super) fn fd_room() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    const RESERVE: u64 = 64;
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current < lim.maximum {
        let raised = rustix::process::Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            lim = getrlimit(Resource::Nofile);
        }
    }
    lim.current.map(|n| n.saturating_sub(RESERVE).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_cap_the_oldest_idle_connection_is_shed_first() {
        let reg = Connections::new(3);
        let a = reg.admit().expect("room");
        let b = reg.admit().expect("room");
        let c = reg.admit().expect("room");
        a.set(Phase::Busy);
        b.set(Phase::Head);
        // c is idle, b is slow in its head, a is busy: c goes first.
        let d = reg.admit().expect("an idle one makes room");
        assert!(c.is_shed() && c.shed.try_recv().is_ok());
        assert!(!a.is_shed() && !b.is_shed());
        drop(c);
        // Next the slow head, never the busy one.
        d.set(Phase::Busy);
        let e = reg.admit().expect("a slow head makes room");
        assert!(b.is_shed());
        drop(b);
        e.set(Phase::Busy);
        assert!(reg.admit().is_none(), "every connection busy: refused");
        assert_eq!(reg.len(), 3);
        drop((a, d, e));
        assert_eq!(reg.len(), 0);
    }

    #[test]
    fn a_shed_connection_stays_shed() {
        let reg = Connections::new(1);
        let a = reg.admit().expect("room");
        let _b = reg.admit().expect("room");
        assert!(a.is_shed());
        a.set(Phase::Busy);
        assert!(a.is_shed());
    }
}
