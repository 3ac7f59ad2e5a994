//! The events of a workspace as segmentation reads them: one partition per event name, rows in
//! log order, each row the profile slot the event was applied to, its time and its properties
//! (in a column [`Table`]). A condition on "Product Viewed" reads only that partition; a
//! profile's rows of a partition are chained, so one profile's events are found without a
//! scan.
//!
//! Rows keep the slot they were applied to; merges are resolved when reading, through the
//! identity engine's merge links, so a merge never rewrites rows.

use super::table::Table;
use crate::time::Millis;
use hashbrown::HashMap;
use serde_json::Value;

const NO_ROW: u32 = u32::MAX;

/// The rows of one event name.
#[derive(Default)]
pub struct Partition {
    pub name: Box<str>,
    pub slot: Vec<u32>,
    pub ts: Vec<Millis>,
    /// The previous row of the same slot, or `NO_ROW`.
    prev: Vec<u32>,
    last: HashMap<u32, u32>,
    pub props: Table,
}

impl Partition {
    pub fn len(&self) -> usize {
        self.slot.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slot.is_empty()
    }

    /// The rows of `slot`, newest first.
    pub fn rows_of(&self, slot: u32) -> impl Iterator<Item = usize> + '_ {
        let mut row = self.last.get(&slot).copied().unwrap_or(NO_ROW);
        std::iter::from_fn(move || {
            if row == NO_ROW {
                return None;
            }
            let r = row as usize;
            row = self.prev[r];
            Some(r)
        })
    }

    fn push(&mut self, slot: u32, ts: Millis, properties: Option<&Value>) {
        let row = self.props.push_row();
        self.slot.push(slot);
        self.ts.push(ts);
        let prev = self.last.insert(slot, row as u32).unwrap_or(NO_ROW);
        self.prev.push(prev);
        if let Some(Value::Object(map)) = properties {
            self.props.write_object(row, map);
        }
    }

    fn heap_bytes(&self) -> usize {
        self.slot.capacity() * 4
            + self.ts.capacity() * 8
            + self.prev.capacity() * 4
            + self.last.capacity() * 9
            + self.props.heap_bytes()
    }
}

/// Every event of a workspace that has a name (track calls by `event`, page and screen calls
/// as `page` and `screen`).
#[derive(Default)]
pub struct EventStore {
    ids: HashMap<Box<str>, u32>,
    parts: Vec<Partition>,
    rows: usize,
}

impl EventStore {
    /// Appends an event applied to `slot`.
    pub fn push(&mut self, slot: u32, name: &str, ts: Millis, properties: Option<&Value>) {
        let id = match self.ids.get(name) {
            Some(&id) => id,
            None => {
                let id = self.parts.len() as u32;
                self.parts.push(Partition {
                    name: name.into(),
                    ..Partition::default()
                });
                self.ids.insert(name.into(), id);
                id
            }
        };
        self.parts[id as usize].push(slot, ts, properties);
        self.rows += 1;
    }

    /// The partition of an event name.
    pub fn partition(&self, name: &str) -> Option<&Partition> {
        self.ids.get(name).map(|&i| &self.parts[i as usize])
    }

    pub fn partitions(&self) -> &[Partition] {
        &self.parts
    }

    /// How many events are held.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Approximate heap bytes.
    pub fn heap_bytes(&self) -> usize {
        self.parts.iter().map(Partition::heap_bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_are_chained_per_slot_and_partitioned_by_name() {
        let mut s = EventStore::default();
        s.push(1, "Viewed", 10, Some(&json!({"category": "jeans"})));
        s.push(2, "Viewed", 11, None);
        s.push(1, "Bought", 12, Some(&json!({"total": 9.5})));
        s.push(1, "Viewed", 13, Some(&json!({"category": "shirts"})));
        let viewed = s.partition("Viewed").unwrap();
        assert_eq!(viewed.rows_of(1).collect::<Vec<_>>(), vec![2, 0]);
        assert_eq!(viewed.rows_of(2).collect::<Vec<_>>(), vec![1]);
        assert_eq!(viewed.rows_of(3).count(), 0);
        assert_eq!(s.partition("Bought").unwrap().ts, vec![12]);
        assert_eq!(s.rows(), 4);
        assert_eq!(viewed.props.field(2, "category"), Some(json!("shirts")));
    }
}
