//! A table of JSON objects stored by column: one [`Column`] per field path, objects flattened
//! (`address.city` is its own column; `address` holds only the marker that an object is
//! there). Profile traits (one row per profile slot) and event properties (one row per event)
//! are kept this way, so a condition reads one or two dense arrays instead of parsing JSON.
//!
//! Limits: paths deeper than [`MAX_DEPTH`] and fields beyond [`MAX_COLUMNS`] per table are not
//! stored, so a client cannot grow the hot state without bound with invented field names.

use super::column::{Cell, Column};
use hashbrown::HashMap;
use serde_json::{Map, Value};

/// Deepest field path stored.
pub const MAX_DEPTH: usize = 6;
/// Most columns one table holds.
pub const MAX_COLUMNS: usize = 2048;

#[derive(Default)]
pub struct Table {
    rows: usize,
    columns: Vec<Column>,
    paths: Vec<Vec<String>>,
    by_path: HashMap<Vec<String>, u32>,
    /// Columns of the fields of each column's objects.
    children: Vec<Vec<u32>>,
    roots: Vec<u32>,
    /// Whether fields were dropped because of the limits.
    pub truncated: bool,
}

impl Table {
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Adds an empty row; returns its index.
    pub fn push_row(&mut self) -> usize {
        self.rows += 1;
        self.rows - 1
    }

    /// Makes the table at least `rows` long.
    pub fn ensure_rows(&mut self, rows: usize) {
        self.rows = self.rows.max(rows);
    }

    /// The column at `path`, if any row ever had a value there.
    pub fn column(&self, path: &[String]) -> Option<&Column> {
        self.by_path.get(path).map(|&i| &self.columns[i as usize])
    }

    /// The value at `path` in `row`.
    pub fn get(&self, row: usize, path: &[String]) -> Cell<'_> {
        self.column(path).map_or(Cell::Absent, |c| c.get(row))
    }

    /// Writes every field of `object` into `row`, leaving other top-level fields as they are.
    pub fn write_object(&mut self, row: usize, object: &Map<String, Value>) {
        self.ensure_rows(row + 1);
        for (k, v) in object {
            self.set(row, std::slice::from_ref(k), Some(v));
        }
    }

    /// Sets the field at `path` (top level when one segment) to `value`, or clears it; the
    /// fields of an object it replaces are cleared.
    pub fn set(&mut self, row: usize, path: &[String], value: Option<&Value>) {
        self.ensure_rows(row + 1);
        let Some(col) = self.column_id(path, value.is_some_and(|v| !v.is_null())) else {
            return;
        };
        self.columns[col as usize].set(row, value);
        let new_fields = value.and_then(Value::as_object);
        // Clear fields the new value does not have (an object replaced by another or by a
        // scalar), then write the ones it has.
        for child in self.children[col as usize].clone() {
            let key = self.paths[child as usize]
                .last()
                .cloned()
                .unwrap_or_default();
            if new_fields.is_none_or(|f| !f.contains_key(&key)) {
                self.clear_subtree(row, child);
            }
        }
        if let Some(fields) = new_fields {
            let mut child_path = path.to_vec();
            for (k, v) in fields {
                child_path.push(k.clone());
                self.set(row, &child_path, Some(v));
                child_path.pop();
            }
        }
    }

    fn clear_subtree(&mut self, row: usize, col: u32) {
        if self.columns[col as usize].get(row).is_absent() {
            return;
        }
        self.columns[col as usize].set(row, None);
        for child in self.children[col as usize].clone() {
            self.clear_subtree(row, child);
        }
    }

    /// The column for `path`, created when `create` and the limits allow.
    fn column_id(&mut self, path: &[String], create: bool) -> Option<u32> {
        if let Some(&i) = self.by_path.get(path) {
            return Some(i);
        }
        if !create {
            return None;
        }
        if path.len() > MAX_DEPTH || self.columns.len() >= MAX_COLUMNS {
            self.truncated = true;
            return None;
        }
        let parent = match path.split_last() {
            Some((_, parent)) if !parent.is_empty() => Some(self.column_id(parent, true)?),
            _ => None,
        };
        let id = self.columns.len() as u32;
        self.columns.push(Column::with_rows(0));
        self.paths.push(path.to_vec());
        self.children.push(Vec::new());
        self.by_path.insert(path.to_vec(), id);
        match parent {
            Some(p) => self.children[p as usize].push(id),
            None => self.roots.push(id),
        }
        Some(id)
    }

    /// The whole row as a JSON object.
    pub fn row_object(&self, row: usize) -> Map<String, Value> {
        let mut out = Map::new();
        for &c in &self.roots {
            if let Some(v) = self.value_of(row, c) {
                let key = self.paths[c as usize][0].clone();
                out.insert(key, v);
            }
        }
        out
    }

    /// Only the fields at `paths` of `row`, nested as in the row (an object field comes with
    /// all its fields). Tests that read only these paths see the same values as on the whole
    /// row.
    pub fn project<'p>(
        &self,
        row: usize,
        paths: impl IntoIterator<Item = &'p Vec<String>>,
    ) -> Map<String, Value> {
        let mut out = Map::new();
        for path in paths {
            let Some(&col) = self.by_path.get(path) else {
                continue;
            };
            let Some(value) = self.value_of(row, col) else {
                continue;
            };
            insert_at(&mut out, path, value);
        }
        out
    }

    /// The top-level field `key` of `row`, objects rebuilt from their columns.
    pub fn field(&self, row: usize, key: &str) -> Option<Value> {
        let c = *self.by_path.get(&[key.to_owned()][..])?;
        self.value_of(row, c)
    }

    fn value_of(&self, row: usize, col: u32) -> Option<Value> {
        match self.columns[col as usize].get(row) {
            Cell::Absent => None,
            Cell::Object => {
                let mut obj = Map::new();
                for &child in &self.children[col as usize] {
                    if let Some(v) = self.value_of(row, child) {
                        let key = self.paths[child as usize]
                            .last()
                            .cloned()
                            .unwrap_or_default();
                        obj.insert(key, v);
                    }
                }
                Some(Value::Object(obj))
            }
            cell => Some(cell.to_value()),
        }
    }

    /// Approximate heap bytes.
    pub fn heap_bytes(&self) -> usize {
        self.columns.iter().map(Column::heap_bytes).sum::<usize>()
            + self.paths.iter().map(|p| p.len() * 32).sum::<usize>()
    }
}

/// Puts `value` at `path` inside `map`, creating objects on the way. A parent that is already
/// there whole (projected as an object) already holds the field.
fn insert_at(map: &mut Map<String, Value>, path: &[String], value: Value) {
    match path {
        [] => {}
        [last] => {
            map.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let parent = map
                .entry(first.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = parent {
                insert_at(m, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(s: &str) -> Vec<String> {
        s.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn objects_are_flattened_and_rebuilt() {
        let mut t = Table::default();
        let obj = json!({"plan": "pro", "address": {"city": "Berlin", "geo": {"lat": 52.5}}, "tags": ["a"]});
        t.write_object(3, obj.as_object().unwrap());
        assert_eq!(t.rows(), 4);
        assert_eq!(t.get(3, &path("address.city")), Cell::Str("Berlin"));
        assert_eq!(t.get(3, &path("address.geo.lat")), Cell::Float(52.5));
        assert_eq!(Value::Object(t.row_object(3)), obj);
        assert!(t.row_object(0).is_empty());
    }

    #[test]
    fn projections_keep_only_the_paths_asked() {
        let mut t = Table::default();
        let obj = json!({"plan": "pro", "address": {"city": "Berlin", "zip": "10115"}, "n": 1});
        t.write_object(0, obj.as_object().unwrap());
        let paths = [path("address.city"), path("n"), path("missing.x")];
        assert_eq!(
            Value::Object(t.project(0, &paths)),
            json!({"address": {"city": "Berlin"}, "n": 1})
        );
        let paths = [path("address"), path("address.city")];
        assert_eq!(
            Value::Object(t.project(0, &paths)),
            json!({"address": {"city": "Berlin", "zip": "10115"}})
        );
    }

    #[test]
    fn replacing_an_object_clears_fields_it_no_longer_has() {
        let mut t = Table::default();
        t.set(
            0,
            &path("address"),
            Some(&json!({"city": "Berlin", "zip": "10115"})),
        );
        t.set(0, &path("address"), Some(&json!({"city": "Paris"})));
        assert_eq!(t.field(0, "address"), Some(json!({"city": "Paris"})));
        assert!(t.get(0, &path("address.zip")).is_absent());
        t.set(0, &path("address"), Some(&json!("unknown")));
        assert!(t.get(0, &path("address.city")).is_absent());
        assert_eq!(t.field(0, "address"), Some(json!("unknown")));
        t.set(0, &path("address"), None);
        assert_eq!(t.field(0, "address"), None);
    }

    #[test]
    fn limits_drop_fields_and_say_so() {
        let mut t = Table::default();
        let deep = json!({"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}});
        t.write_object(0, deep.as_object().unwrap());
        assert!(t.truncated);
        assert!(
            t.get(0, &path("a.b.c.d.e.f")).is_absent()
                || t.get(0, &path("a.b.c.d.e.f")) == Cell::Object
        );
    }
}
