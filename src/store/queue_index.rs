//! An in-memory mirror of the queue tree's order, kept in step with every
//! committed queue change, and of the pauses. It answers what would
//! otherwise scan the queue: the next run to claim, a run's position, the
//! oldest queued run, and how many wait for their earliest start (a retry
//! backoff or a request's not_before). Rebuilt from the tree at open;
//! bounded by max_pending.
//!
//! Runs are kept per hardware target and priority, each lane in id (=
//! submit) order, and a run whose earliest start is ahead waits in
//! `future` until it is due. So a claim looks at the head of each lane of
//! each target that is not paused: a paused target's backlog, however
//! long, is never walked, and neither are runs that are not due yet.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::layout::priority_of_byte;
use crate::run::{RunId, MAX_PRIORITY};

/// The pause key of the whole queue; targets are paused under their id.
pub const WHOLE_QUEUE: &str = "";

/// Why and since when a target (or the whole queue) starts no new run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pause {
    pub reason: String,
    /// Unix seconds.
    pub since: f64,
}

type Lanes = [VecDeque<RunId>; MAX_PRIORITY as usize + 1];

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// The queue key's first byte (see layout.rs).
    byte: u8,
    priority: u8,
    /// Index into `targets`.
    target: usize,
    not_before_ms: u64,
}

#[derive(Debug, Default)]
pub(super) struct QueueIndex {
    /// Target names, interned: a lane set per name.
    targets: Vec<String>,
    /// Due runs per target and priority, in id order.
    lanes: Vec<Lanes>,
    entries: HashMap<RunId, Entry>,
    /// Runs whose earliest start is still ahead, by that time.
    future: BTreeSet<(u64, RunId)>,
    /// Paused targets, and the whole queue under [`WHOLE_QUEUE`].
    paused: BTreeMap<String, Pause>,
}

impl QueueIndex {
    fn target_index(&mut self, name: &str) -> usize {
        match self.targets.iter().position(|t| t == name) {
            Some(i) => i,
            None => {
                self.targets.push(name.to_string());
                self.lanes.push(Lanes::default());
                self.targets.len() - 1
            }
        }
    }

    /// Adds (or puts back) a queued run; `byte` is its queue key's first
    /// byte and `not_before_ms` its earliest start (0: none).
    pub fn insert(&mut self, byte: u8, id: RunId, target: &str, not_before_ms: u64) {
        self.remove(&id);
        let target = self.target_index(target);
        let entry = Entry {
            byte,
            priority: priority_of_byte(byte),
            target,
            not_before_ms,
        };
        self.entries.insert(id, entry);
        if not_before_ms > 0 {
            // Moved to its lane by the first look at the queue once due.
            self.future.insert((not_before_ms, id));
        } else {
            self.put_in_lane(id, entry);
        }
    }

    fn put_in_lane(&mut self, id: RunId, e: Entry) {
        let lane = &mut self.lanes[e.target][usize::from(e.priority)];
        // New submits land at the end; a requeued run goes back to its place.
        let at = lane.partition_point(|x| *x < id);
        if lane.get(at) != Some(&id) {
            lane.insert(at, id);
        }
    }

    pub fn remove(&mut self, id: &RunId) {
        let Some(e) = self.entries.remove(id) else {
            return;
        };
        if !self.future.remove(&(e.not_before_ms, *id)) {
            let lane = &mut self.lanes[e.target][usize::from(e.priority)];
            if let Ok(at) = lane.binary_search(id) {
                lane.remove(at);
            }
        }
    }

    /// Moves the runs that are due at `now_ms` into their lanes.
    fn promote(&mut self, now_ms: u64) {
        while let Some(&(t, id)) = self.future.first() {
            if t > now_ms {
                break;
            }
            self.future.pop_first();
            if let Some(e) = self.entries.get(&id).copied() {
                self.put_in_lane(id, e);
            }
        }
    }

    fn target_paused(&self, target: usize) -> bool {
        self.paused.contains_key(&self.targets[target])
    }

    /// Whether a run of `target` would be started by the workers (the
    /// target is, and the whole queue is, not paused).
    fn startable(&self, target: usize) -> bool {
        !self.paused.contains_key(WHOLE_QUEUE) && !self.target_paused(target)
    }

    /// 0-based dispatch position at `now_ms`: the runs that will start
    /// before this one. Those are the due runs of a higher priority, or of
    /// the same priority and older; for a run whose earliest start is
    /// ahead, also the waiting runs of that kind due by then. Runs of
    /// another paused target are not ahead of anyone; a paused run's
    /// position is where it will be when its pause ends.
    pub fn position(&mut self, id: &RunId, now_ms: u64) -> Option<u64> {
        self.promote(now_ms);
        let e = *self.entries.get(id)?;
        let p = usize::from(e.priority);
        let counted = |t: usize| t == e.target || !self.target_paused(t);
        let mut ahead = 0;
        for (_, lanes) in self.lanes.iter().enumerate().filter(|(t, _)| counted(*t)) {
            ahead += lanes[p + 1..].iter().map(VecDeque::len).sum::<usize>();
            ahead += lanes[p].partition_point(|x| x < id);
        }
        if e.not_before_ms > now_ms {
            ahead += self
                .future
                .range(..=(e.not_before_ms, *id))
                .filter_map(|(_, other)| self.entries.get(other).map(|o| (other, o)))
                .filter(|(other, o)| {
                    counted(o.target)
                        && (o.priority > e.priority || (o.priority == e.priority && *other < id))
                })
                .count();
        }
        Some(ahead as u64)
    }

    /// The first run in dispatch order that is due at `now_ms`, not
    /// paused and not in `skip`, with its queue key's first byte. Looks at
    /// the head of each lane of each target that is not paused.
    pub fn next_ready(&mut self, now_ms: u64, skip: &[RunId]) -> Option<(u8, RunId)> {
        if self.paused.contains_key(WHOLE_QUEUE) {
            return None;
        }
        self.promote(now_ms);
        let mut best: Option<(usize, RunId)> = None;
        for (t, lanes) in self.lanes.iter().enumerate() {
            if self.target_paused(t) {
                continue;
            }
            for p in (0..lanes.len()).rev() {
                if best.is_some_and(|(bp, _)| p < bp) {
                    break;
                }
                if let Some(id) = lanes[p].iter().find(|id| !skip.contains(id)) {
                    if best.is_none_or(|(bp, bid)| p > bp || *id < bid) {
                        best = Some((p, *id));
                    }
                    break;
                }
            }
        }
        let (_, id) = best?;
        self.entries.get(&id).map(|e| (e.byte, id))
    }

    /// Submit time (ms) of the oldest run the workers could start now:
    /// a run that waits for its earliest start or behind a pause waits on
    /// purpose, and is not what the oldest-run alert is about.
    pub fn oldest_ms(&mut self, now_ms: u64) -> Option<u64> {
        self.promote(now_ms);
        self.lanes
            .iter()
            .enumerate()
            .filter(|(t, _)| self.startable(*t))
            .flat_map(|(_, lanes)| lanes.iter().filter_map(VecDeque::front))
            .map(RunId::unix_ms)
            .min()
    }

    /// (due now, waiting for their earliest start)
    pub fn ready_and_future(&mut self, now_ms: u64) -> (u64, u64) {
        self.promote(now_ms);
        let future = self.future.len();
        ((self.entries.len() - future) as u64, future as u64)
    }

    /// Due runs that no pause holds back: what the workers can start.
    pub fn startable_count(&mut self, now_ms: u64) -> u64 {
        self.promote(now_ms);
        self.lanes
            .iter()
            .enumerate()
            .filter(|(t, _)| self.startable(*t))
            .map(|(_, lanes)| lanes.iter().map(VecDeque::len).sum::<usize>())
            .sum::<usize>() as u64
    }

    /// Pauses `key` (a target id, or [`WHOLE_QUEUE`]), or ends its pause.
    pub fn set_pause(&mut self, key: &str, pause: Option<Pause>) {
        match pause {
            Some(p) => self.paused.insert(key.to_string(), p),
            None => self.paused.remove(key),
        };
    }

    pub fn pauses(&self) -> &BTreeMap<String, Pause> {
        &self.paused
    }
}

#[cfg(test)]
mod tests {
    use super::super::layout::priority_byte;
    use super::*;

    fn id(ms: u64) -> RunId {
        RunId::new(ms, 0, 0)
    }

    fn b(priority: u8) -> u8 {
        priority_byte(Some(priority), crate::run::Mode::Explore)
    }

    fn pause() -> Option<Pause> {
        Some(Pause {
            reason: "maintenance".into(),
            since: 1.0,
        })
    }

    #[test]
    fn positions_put_higher_priorities_first_and_follow_id_order() {
        let mut q = QueueIndex::default();
        q.insert(b(4), id(10), "a", 0);
        q.insert(b(4), id(30), "b", 0);
        q.insert(b(4), id(20), "a", 0);
        q.insert(b(7), id(40), "b", 0);
        assert_eq!(q.position(&id(40), 0), Some(0));
        assert_eq!(q.position(&id(10), 0), Some(1));
        assert_eq!(q.position(&id(20), 0), Some(2));
        assert_eq!(q.position(&id(30), 0), Some(3));
        assert_eq!(q.oldest_ms(0), Some(10));
        q.remove(&id(10));
        assert_eq!(q.position(&id(30), 0), Some(2));
        assert_eq!(q.position(&id(10), 0), None);
        q.insert(b(4), id(20), "a", 0);
        assert_eq!(q.ready_and_future(0), (3, 0), "no duplicates");
    }

    #[test]
    fn records_from_before_priorities_keep_calibrate_first() {
        let mut q = QueueIndex::default();
        q.insert(priority_byte(None, crate::run::Mode::Explore), id(1), "a", 0);
        q.insert(priority_byte(None, crate::run::Mode::Calibrate), id(2), "a", 0);
        q.insert(b(4), id(3), "a", 0);
        q.insert(b(8), id(4), "a", 0);
        let order: Vec<_> = (1..=4).map(|i| q.position(&id(i), 0).unwrap()).collect();
        assert_eq!(order, vec![2, 1, 3, 0]);
    }

    #[test]
    fn waiting_runs_count_as_future_until_due_and_are_placed_where_they_will_be() {
        let mut q = QueueIndex::default();
        q.insert(b(4), id(1), "a", 500);
        q.insert(b(4), id(2), "a", 0);
        q.insert(b(9), id(5), "a", 300);
        q.insert(b(4), id(4), "a", 0);
        assert_eq!(q.ready_and_future(100), (2, 2));
        assert_eq!(q.oldest_ms(100), Some(2), "a waiting run waits on purpose");
        // A due run: the due runs before it; the waiting ones are not due.
        assert_eq!(q.position(&id(2), 100), Some(0));
        assert_eq!(q.position(&id(4), 100), Some(1));
        // A waiting run: its place once due, behind run 5 (due before it).
        assert_eq!(q.position(&id(1), 100), Some(1));
        assert_eq!(q.position(&id(5), 100), Some(0));
        assert_eq!(q.ready_and_future(300), (3, 1));
        assert_eq!(q.position(&id(2), 300), Some(1));
        assert_eq!(q.next_ready(300, &[]), Some((b(9), id(5))));
        q.remove(&id(5));
        assert_eq!(q.ready_and_future(500), (3, 0));
        assert_eq!(q.position(&id(1), 500), Some(0), "the oldest of its priority");
        assert_eq!(q.next_ready(600, &[]), Some((b(4), id(1))));
    }

    #[test]
    fn next_ready_takes_the_highest_priority_and_skips_waiting_and_taken_ones() {
        let mut q = QueueIndex::default();
        q.insert(b(4), id(1), "a", 500);
        q.insert(b(4), id(2), "b", 0);
        q.insert(b(4), id(3), "a", 0);
        q.insert(b(7), id(4), "a", 0);
        assert_eq!(q.next_ready(100, &[]), Some((b(7), id(4))));
        assert_eq!(q.next_ready(100, &[id(4)]), Some((b(4), id(2))));
        assert_eq!(q.next_ready(100, &[id(4), id(2)]), Some((b(4), id(3))));
        assert_eq!(q.next_ready(100, &[id(4), id(2), id(3)]), None);
        assert_eq!(
            q.next_ready(500, &[id(4)]),
            Some((b(4), id(1))),
            "due at its start"
        );
    }

    #[test]
    fn a_paused_target_starts_nothing_and_is_ahead_of_no_one() {
        let mut q = QueueIndex::default();
        q.insert(b(9), id(1), "a", 0);
        q.insert(b(4), id(2), "b", 0);
        q.insert(b(4), id(3), "a", 0);
        assert_eq!(q.position(&id(2), 0), Some(1));
        q.set_pause("a", pause());
        assert_eq!(q.next_ready(0, &[]), Some((b(4), id(2))));
        assert_eq!(q.next_ready(0, &[id(2)]), None);
        assert_eq!(q.startable_count(0), 1);
        assert_eq!(q.oldest_ms(0), Some(2), "a paused run waits on purpose");
        assert_eq!(q.position(&id(2), 0), Some(0));
        // Where it will be on resume: behind run 1 of its own target and
        // run 2 (older, same priority) of the target that is not paused.
        assert_eq!(q.position(&id(3), 0), Some(2));
        assert_eq!(q.ready_and_future(0), (3, 0), "paused runs are still due");
        q.set_pause(WHOLE_QUEUE, pause());
        assert_eq!(q.next_ready(0, &[]), None);
        assert_eq!(q.startable_count(0), 0);
        q.set_pause(WHOLE_QUEUE, None);
        q.set_pause("a", None);
        assert_eq!(q.next_ready(0, &[]), Some((b(9), id(1))));
        assert!(q.pauses().is_empty());
    }
}
