//! Columns of JSON values, as the segmentation store keeps traits and event properties: one
//! `u32` per row saying what the value is (absent, a number, an object, a boolean, or an
//! entry of the column's dictionary of strings and lists), plus the numbers themselves in a
//! second array allocated only once the column holds a number.
//!
//! Numbers keep their JSON kind (integer or float) so that reading a value back gives exactly
//! what was written; strings and lists are stored once per distinct value.

use hashbrown::{DefaultHashBuilder, HashTable};
use serde_json::{Number, Value};
use std::hash::BuildHasher;

const ABSENT: u32 = 0;
const INT: u32 = 1;
const FLOAT: u32 = 2;
const OBJECT: u32 = 3;
const FALSE: u32 = 4;
const TRUE: u32 = 5;
const UINT: u32 = 6;
/// Dictionary entries start here.
const DICT: u32 = 7;

/// A value as a column holds it. `Object` is only the marker that an object is there: its
/// fields live in their own columns (see `table.rs`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    Absent,
    Int(i64),
    /// An integer above `i64::MAX` (JSON integers are exact up to 64 unsigned bits).
    UInt(u64),
    Float(f64),
    Object,
    Bool(bool),
    Str(&'a str),
    /// A JSON array, as its JSON text.
    List(&'a str),
}

impl Cell<'_> {
    /// The value as JSON; objects come back empty (their fields are in other columns).
    pub fn to_value(self) -> Value {
        match self {
            Cell::Absent => Value::Null,
            Cell::Int(i) => Value::from(i),
            Cell::UInt(u) => Value::from(u),
            Cell::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
            Cell::Object => Value::Object(Default::default()),
            Cell::Bool(b) => Value::Bool(b),
            Cell::Str(s) => Value::String(s.to_owned()),
            Cell::List(json) => serde_json::from_str(json).unwrap_or(Value::Null),
        }
    }

    pub fn is_absent(self) -> bool {
        matches!(self, Cell::Absent)
    }
}

/// Distinct strings and lists of a column. Entry text starts with `s` (a string) or `l` (a
/// list's JSON), so the two never collide.
#[derive(Default)]
struct Dict {
    entries: Vec<Box<str>>,
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl Dict {
    fn id(&mut self, tagged: &str) -> u32 {
        let h = self.hasher.hash_one(tagged);
        let entries = &self.entries;
        if let Some(&i) = self.index.find(h, |&i| &*entries[i as usize] == tagged) {
            return i;
        }
        let i = self.entries.len() as u32;
        self.entries.push(tagged.into());
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.index
            .insert_unique(h, i, |&j| hasher.hash_one(&*entries[j as usize]));
        i
    }

    fn find(&self, tagged: &str) -> Option<u32> {
        let h = self.hasher.hash_one(tagged);
        self.index
            .find(h, |&i| &*self.entries[i as usize] == tagged)
            .copied()
    }

    fn cell(&self, i: u32) -> Cell<'_> {
        let e = &self.entries[i as usize];
        match e.as_bytes()[0] {
            b's' => Cell::Str(&e[1..]),
            _ => Cell::List(&e[1..]),
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// One column: a value (or none) per row.
#[derive(Default)]
pub struct Column {
    codes: Vec<u32>,
    /// Integer bits or float bits, by `codes`; empty until the first number.
    nums: Vec<u64>,
    dict: Dict,
}

impl Column {
    /// A column with `rows` absent values.
    pub fn with_rows(rows: usize) -> Column {
        Column {
            codes: vec![ABSENT; rows],
            ..Column::default()
        }
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Makes the column at least `rows` long (new rows absent).
    pub fn grow(&mut self, rows: usize) {
        if self.codes.len() < rows {
            self.codes.resize(rows, ABSENT);
            if !self.nums.is_empty() {
                self.nums.resize(rows, 0);
            }
        }
    }

    /// Stores a scalar, list or object marker at `row` (growing the column as needed); `None`
    /// and JSON null clear it.
    pub fn set(&mut self, row: usize, value: Option<&Value>) {
        self.grow(row + 1);
        let code = match value {
            None | Some(Value::Null) => ABSENT,
            Some(Value::Bool(false)) => FALSE,
            Some(Value::Bool(true)) => TRUE,
            Some(Value::Object(_)) => OBJECT,
            Some(Value::Number(n)) => {
                let (code, bits) = match (n.as_i64(), n.as_u64()) {
                    (Some(i), _) => (INT, i as u64),
                    (None, Some(u)) => (UINT, u),
                    _ => (FLOAT, n.as_f64().unwrap_or(0.0).to_bits()),
                };
                if self.nums.is_empty() {
                    self.nums = vec![0; self.codes.len()];
                }
                self.nums[row] = bits;
                code
            }
            Some(Value::String(s)) => DICT + self.dict.id(&format!("s{s}")),
            Some(list @ Value::Array(_)) => DICT + self.dict.id(&format!("l{list}")),
        };
        self.codes[row] = code;
    }

    /// The value at `row` (absent beyond the end).
    #[inline]
    pub fn get(&self, row: usize) -> Cell<'_> {
        match self.codes.get(row).copied().unwrap_or(ABSENT) {
            ABSENT => Cell::Absent,
            INT => Cell::Int(self.nums[row] as i64),
            UINT => Cell::UInt(self.nums[row]),
            FLOAT => Cell::Float(f64::from_bits(self.nums[row])),
            OBJECT => Cell::Object,
            FALSE => Cell::Bool(false),
            TRUE => Cell::Bool(true),
            c => self.dict.cell(c - DICT),
        }
    }

    /// The raw code at `row`, for scans that precompute a result per distinct value.
    #[inline]
    pub fn code(&self, row: usize) -> u32 {
        self.codes.get(row).copied().unwrap_or(ABSENT)
    }

    /// The code a string has in this column, if it occurs.
    pub fn string_code(&self, s: &str) -> Option<u32> {
        self.dict.find(&format!("s{s}")).map(|i| i + DICT)
    }

    /// How many distinct codes there can be (for tables indexed by code).
    pub fn code_count(&self) -> usize {
        DICT as usize + self.dict.len()
    }

    /// The cell a code stands for, with the number of `row` when the code is a number.
    pub fn cell_of_code(&self, code: u32, row: usize) -> Cell<'_> {
        match code {
            INT | UINT | FLOAT => self.get(row),
            ABSENT => Cell::Absent,
            OBJECT => Cell::Object,
            FALSE => Cell::Bool(false),
            TRUE => Cell::Bool(true),
            c => self.dict.cell(c - DICT),
        }
    }

    /// Whether a code is a number (its value is per row, not per code).
    #[inline]
    pub fn is_number_code(code: u32) -> bool {
        code == INT || code == UINT || code == FLOAT
    }

    /// Approximate heap bytes.
    pub fn heap_bytes(&self) -> usize {
        self.codes.capacity() * 4
            + self.nums.capacity() * 8
            + self
                .dict
                .entries
                .iter()
                .map(|e| e.len() + 16)
                .sum::<usize>()
            + self.dict.index.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_read_back_as_written() {
        let mut c = Column::default();
        let values = [
            json!(1),
            json!(1.0),
            json!(-7.25),
            json!("DE"),
            json!(true),
            json!(false),
            json!(["a", {"b": 1}]),
            json!(i64::MIN),
            json!(u64::MAX),
        ];
        for (i, v) in values.iter().enumerate() {
            c.set(i * 2, Some(v));
        }
        for (i, v) in values.iter().enumerate() {
            assert_eq!(c.get(i * 2).to_value(), *v, "row {}", i * 2);
            assert!(c.get(i * 2 + 1).is_absent());
        }
        assert_eq!(c.get(1000), Cell::Absent);
        assert_eq!(c.get(0), Cell::Int(1));
        assert_eq!(c.get(2), Cell::Float(1.0));
    }

    #[test]
    fn strings_are_stored_once_and_null_clears() {
        let mut c = Column::default();
        c.set(0, Some(&json!("x")));
        c.set(1, Some(&json!("x")));
        c.set(2, Some(&json!(["x"])));
        assert_eq!(c.dict.len(), 2);
        assert_eq!(c.code(0), c.code(1));
        assert_eq!(c.string_code("x"), Some(c.code(0)));
        c.set(1, Some(&Value::Null));
        assert!(c.get(1).is_absent());
        assert_eq!(c.get(0), Cell::Str("x"));
    }
}
