//! The `messageId` deduplication window of the event log.
//!
//! A unique index on `(workspace, messageId)` in SQLite put every insert of a random UUID on a
//! random B-tree page: one dirty 4 KiB page per event, which cut ingest from ~220K to ~76K
//! events/s at only a million events, and it gets worse as the log grows. Instead the writer
//! keeps, in memory, a hash of every `(workspace, messageId)` of the last 24 hours mapped to
//! its log position, rebuilt from the log at start. A hash hit is confirmed against the stored
//! row, so a hash collision never drops an event. Memory is bounded by `capacity`; when the
//! window holds more, the oldest entries leave early (counted, and logged once).

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use tessera_core::Millis;

/// The default window: Segment's 24 hours.
pub const DEFAULT_WINDOW_MS: Millis = 24 * 3600 * 1000;
/// The default capacity: 10 million ids, about 700 MB (measured: ~70 bytes per id).
pub const DEFAULT_CAPACITY: usize = 10_000_000;

pub struct DedupWindow {
    /// Random keys: callers cannot craft ids that collide on purpose.
    hasher: RandomState,
    positions: HashMap<u64, i64>,
    /// `(receivedAt, key, position)` in arrival order, for expiry.
    order: VecDeque<(Millis, u64, i64)>,
    window_ms: Millis,
    capacity: usize,
    /// Entries that left before their time because of `capacity`.
    pub evicted_early: u64,
}

impl DedupWindow {
    pub fn new(window_ms: Millis, capacity: usize) -> DedupWindow {
        DedupWindow {
            hasher: RandomState::new(),
            positions: HashMap::new(),
            order: VecDeque::new(),
            window_ms,
            capacity: capacity.max(1),
            evicted_early: 0,
        }
    }

    pub fn key(&self, workspace_id: &str, message_id: &str) -> u64 {
        self.hasher.hash_one((workspace_id, message_id))
    }

    /// The position of the message with this key, if one is in the window.
    pub fn get(&self, key: u64) -> Option<i64> {
        self.positions.get(&key).copied()
    }

    pub fn insert(&mut self, key: u64, position: i64, received_at: Millis) {
        self.positions.insert(key, position);
        self.order.push_back((received_at, key, position));
        while self.order.len() > self.capacity {
            self.pop_oldest();
            self.evicted_early += 1;
            if self.evicted_early == 1 {
                tracing::warn!(
                    capacity = self.capacity,
                    "the messageId dedup window is full; older ids leave it before 24 hours"
                );
            }
        }
    }

    /// Forgets a key added by a transaction that then failed.
    pub fn remove(&mut self, key: u64, position: i64) {
        if self.positions.get(&key) == Some(&position) {
            self.positions.remove(&key);
        }
    }

    /// Drops entries received before `now - window`.
    pub fn expire(&mut self, now: Millis) {
        while self
            .order
            .front()
            .is_some_and(|(at, _, _)| *at < now - self.window_ms)
        {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some((_, key, position)) = self.order.pop_front() {
            // A colliding newer message may have taken the key since; keep that one.
            self.remove(key, position);
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.positions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_within_the_window_and_forgets_after() {
        let mut w = DedupWindow::new(1_000, 100);
        let k = w.key("ws", "m1");
        assert_ne!(k, w.key("other", "m1"), "workspaces are separate");
        w.insert(k, 7, 10_000);
        assert_eq!(w.get(k), Some(7));
        w.expire(10_900);
        assert_eq!(w.get(k), Some(7));
        w.expire(11_001);
        assert_eq!(w.get(k), None);
    }

    #[test]
    fn capacity_bounds_memory() {
        let mut w = DedupWindow::new(DEFAULT_WINDOW_MS, 3);
        let keys: Vec<u64> = (0..5).map(|i| w.key("ws", &format!("m{i}"))).collect();
        for (i, k) in keys.iter().enumerate() {
            w.insert(*k, i as i64, 0);
        }
        assert_eq!(w.len(), 3);
        assert_eq!(w.evicted_early, 2);
        assert_eq!(w.get(keys[0]), None);
        assert_eq!(w.get(keys[4]), Some(4));
    }
}
