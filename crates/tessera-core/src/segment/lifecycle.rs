//! Segmenter life-cycle beyond single events: taking definitions on at start-up without
//! recording anything, and telling what a rebuild changed by comparing memberships by
//! profile key (slots differ between the old and the re-derived engine).

use super::bitset::Bitset;
use super::registry::Registry;
use super::segmenter::{Reason, Segmenter};
use hashbrown::HashMap;
use std::collections::BTreeSet;

impl Segmenter {
    /// Takes definitions on and evaluates them over every profile without recording any
    /// change: the state being restored already recorded them.
    pub fn init_registry(&mut self, registry: Registry, threads: usize) {
        self.computed = vec![HashMap::new(); registry.computed.len()];
        self.members = vec![Bitset::default(); registry.audiences.len()];
        self.registry = registry;
        self.recompute(None, threads);
    }

    /// Members of every audience by profile key, by audience id.
    pub fn member_keys(&self) -> std::collections::BTreeMap<String, BTreeSet<i64>> {
        self.registry
            .audiences
            .iter()
            .zip(&self.members)
            .map(|(a, m)| {
                let keys = m.iter().map(|s| self.keys[s as usize]).collect();
                (a.id.clone(), keys)
            })
            .collect()
    }

    /// Records, as `Rebuilt` changes, how memberships differ from `before` (by key).
    pub fn record_rebuild(&mut self, before: &std::collections::BTreeMap<String, BTreeSet<i64>>) {
        let after = self.member_keys();
        let empty = BTreeSet::new();
        for (i, a) in self.registry.audiences.clone().iter().enumerate() {
            let old = before.get(&a.id).unwrap_or(&empty);
            let new = &after[&a.id];
            for &key in new.difference(old) {
                self.record_key(i, key, true, Reason::Rebuilt);
            }
            for &key in old.difference(new) {
                self.record_key(i, key, false, Reason::Rebuilt);
            }
        }
    }
}
