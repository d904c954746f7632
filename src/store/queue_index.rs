//! An in-memory mirror of the queue tree's order, kept in step with every
//! committed queue change. It answers what would otherwise scan the queue:
//! a run's position, the oldest queued run, and how many wait for a retry
//! backoff. Rebuilt from the tree at open; bounded by max_pending.

use std::collections::{HashMap, VecDeque};

use crate::run::RunId;

#[derive(Debug, Default)]
pub(super) struct QueueIndex {
    /// Queued ids per priority (0 = calibrate), in id (= submit) order.
    lanes: [VecDeque<RunId>; 2],
    /// Entries waiting for a retry backoff: id -> not before (ms).
    delayed: HashMap<RunId, u64>,
}

impl QueueIndex {
    fn lane(&mut self, priority: u8) -> &mut VecDeque<RunId> {
        &mut self.lanes[usize::from(priority.min(1))]
    }

    pub fn insert(&mut self, priority: u8, id: RunId, not_before_ms: u64) {
        let lane = self.lane(priority);
        // New submits land at the end; a requeued run goes back to its place.
        let at = lane.partition_point(|x| *x < id);
        if lane.get(at) != Some(&id) {
            lane.insert(at, id);
        }
        if not_before_ms > 0 {
            self.delayed.insert(id, not_before_ms);
        }
    }

    pub fn remove(&mut self, priority: u8, id: &RunId) {
        let lane = self.lane(priority);
        if let Ok(at) = lane.binary_search(id) {
            lane.remove(at);
        }
        self.delayed.remove(id);
    }

    /// 0-based dispatch position: every calibrate run goes first.
    pub fn position(&self, priority: u8, id: &RunId) -> Option<u64> {
        let p = usize::from(priority.min(1));
        let at = self.lanes[p].binary_search(id).ok()?;
        let ahead: usize = self.lanes[..p].iter().map(VecDeque::len).sum();
        Some((ahead + at) as u64)
    }

    /// The first run in dispatch order that is due at `now_ms` and not in
    /// `skip`, with its priority.
    pub fn next_ready(&self, now_ms: u64, skip: &[RunId]) -> Option<(u8, RunId)> {
        self.lanes.iter().zip(0u8..).find_map(|(lane, priority)| {
            lane.iter()
                .find(|id| !skip.contains(id) && self.delayed.get(id).is_none_or(|t| *t <= now_ms))
                .map(|id| (priority, *id))
        })
    }

    /// Submit time (ms) of the oldest queued run.
    pub fn oldest_ms(&self) -> Option<u64> {
        self.lanes
            .iter()
            .filter_map(|l| l.front())
            .map(RunId::unix_ms)
            .min()
    }

    /// (due now, waiting for a backoff)
    pub fn ready_and_future(&self, now_ms: u64) -> (u64, u64) {
        let future = self.delayed.values().filter(|t| **t > now_ms).count() as u64;
        let total: usize = self.lanes.iter().map(VecDeque::len).sum();
        ((total as u64).saturating_sub(future), future)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64) -> RunId {
        RunId::new(ms, 0, 0)
    }

    #[test]
    fn positions_put_calibrate_first_and_follow_id_order() {
        let mut q = QueueIndex::default();
        q.insert(1, id(10), 0);
        q.insert(1, id(30), 0);
        q.insert(1, id(20), 0);
        q.insert(0, id(40), 0);
        assert_eq!(q.position(0, &id(40)), Some(0));
        assert_eq!(q.position(1, &id(10)), Some(1));
        assert_eq!(q.position(1, &id(20)), Some(2));
        assert_eq!(q.position(1, &id(30)), Some(3));
        assert_eq!(q.oldest_ms(), Some(10));
        q.remove(1, &id(10));
        assert_eq!(q.position(1, &id(30)), Some(2));
        assert_eq!(q.position(1, &id(10)), None);
        q.insert(1, id(20), 0);
        assert_eq!(q.ready_and_future(0), (3, 0), "no duplicates");
    }

    #[test]
    fn backoffs_count_as_future_until_due() {
        let mut q = QueueIndex::default();
        q.insert(1, id(1), 500);
        q.insert(1, id(2), 0);
        assert_eq!(q.ready_and_future(100), (1, 1));
        assert_eq!(q.ready_and_future(500), (2, 0));
        q.remove(1, &id(1));
        assert_eq!(q.ready_and_future(100), (1, 0));
    }

    #[test]
    fn next_ready_takes_calibrate_first_and_skips_backoffs_and_taken_ones() {
        let mut q = QueueIndex::default();
        q.insert(1, id(1), 500);
        q.insert(1, id(2), 0);
        q.insert(1, id(3), 0);
        q.insert(0, id(4), 0);
        assert_eq!(q.next_ready(100, &[]), Some((0, id(4))));
        assert_eq!(q.next_ready(100, &[id(4)]), Some((1, id(2))));
        assert_eq!(q.next_ready(100, &[id(4), id(2)]), Some((1, id(3))));
        assert_eq!(q.next_ready(100, &[id(4), id(2), id(3)]), None);
        assert_eq!(
            q.next_ready(500, &[id(4)]),
            Some((1, id(1))),
            "due once its backoff ends"
        );
    }
}
