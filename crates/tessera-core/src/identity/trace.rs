//! What applying one event did to its profile, reported for the segmentation evaluator: the
//! live profile, the profiles merged into it, and the traits whose value may have changed.

use super::engine::{Engine, NONE};
use super::facts::EventFacts;
use serde_json::Value;

/// The profile side of one applied event.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedProfile {
    /// The live profile's slot and key.
    pub slot: u32,
    pub key: i64,
    /// Slots and keys of the profiles this event merged into it.
    pub absorbed: Vec<(u32, i64)>,
    /// Traits of the live profile that were written (all of them after a merge), with their
    /// current value.
    pub traits: Vec<(String, Option<Value>)>,
}

impl Engine {
    /// [`Engine::apply`], reporting what happened to the profile.
    pub fn apply_traced(&mut self, f: &EventFacts<'_>) -> Option<AppliedProfile> {
        let merges_before = self.changes.merges.len();
        let history_before = self.changes.history.len();
        let key = self.apply(f)?;
        let slot = self.profile_slots[&key];
        let absorbed: Vec<(u32, i64)> = self.changes.merges[merges_before..]
            .iter()
            .flat_map(|m| m.absorbed.iter())
            .map(|&s| (s, self.profiles[s as usize].key))
            .collect();
        let p = &self.profiles[slot as usize];
        let mut keys: Vec<u32> = if absorbed.is_empty() {
            self.changes.history[history_before..]
                .iter()
                .filter(|h| h.slot == slot)
                .map(|h| h.key)
                .collect()
        } else {
            p.traits.iter().map(|t| t.key).collect()
        };
        keys.sort_unstable();
        keys.dedup();
        let traits = keys
            .into_iter()
            .map(|k| {
                let value = p
                    .traits
                    .iter()
                    .find(|t| t.key == k)
                    .and_then(|t| serde_json::from_str(&t.value).ok());
                (self.strings.name(k).to_string(), value)
            })
            .collect();
        Some(AppliedProfile {
            slot,
            key,
            absorbed,
            traits,
        })
    }

    /// Every profile slot ever created: (slot, key, slot of the live profile it belongs to).
    pub fn slots(&self) -> impl Iterator<Item = (u32, i64, u32)> + '_ {
        self.profiles.iter().enumerate().map(|(i, p)| {
            let live = match p.merged_into {
                NONE => i as u32,
                s => self.live(s),
            };
            (i as u32, p.key, live)
        })
    }

    /// The slot of a profile key (live or merged away).
    pub fn slot_of(&self, key: i64) -> Option<u32> {
        self.profile_slots.get(&key).copied()
    }

    /// The traits of a profile slot as JSON values.
    pub fn slot_traits(&self, slot: u32) -> Vec<(String, Value)> {
        self.profiles[slot as usize]
            .traits
            .iter()
            .filter_map(|t| {
                let v = serde_json::from_str(&t.value).ok()?;
                Some((self.strings.name(t.key).to_string(), v))
            })
            .collect()
    }
}
