//! What a test means on a value: the semantics of `=`, `in`, `contains`, `within` and the
//! others, shared by trait conditions and `where` filters.
//!
//! - A missing value and a JSON `null` are the same: absent. On an absent value every test is
//!   false except `not exists`, `!=`, `not in` and `= null`. `!=` and `not in` are exactly the
//!   negations of `=` and `in`, so "plan != pro" keeps profiles without a plan, as a marketer
//!   excluding the pro plan expects.
//! - `=` and `!=`: numbers compare as numbers (`1` equals `1.0`), strings exactly
//!   (case-sensitive), booleans as booleans; different kinds are never equal. `= null` means
//!   absent.
//! - `>`, `>=`, `<`, `<=`: numbers by value, strings by code point; anything else is false.
//! - `contains` and `starts_with` ignore case. On a string they test a substring / prefix; on a
//!   list, whether an element equals (`contains`) or starts with (`starts_with`) the text.
//! - `within`, `before`, `after` read the value as an ISO-8601 date-time string; other values
//!   are false. `within N units` is `(now - N units, now]`.

use crate::audience::ast::{CmpOp, Literal, Test};
use crate::time::{parse_iso8601, Millis};
use serde_json::{Number, Value};
use std::cmp::Ordering;

/// Whether `value` (absent as `None`) passes `test` at `now`.
pub fn test_value(value: Option<&Value>, test: &Test, now: Millis) -> bool {
    let value = value.filter(|v| !v.is_null());
    match test {
        Test::Compare(CmpOp::Eq, lit) => equals(value, lit),
        Test::Compare(CmpOp::Ne, lit) => !equals(value, lit),
        Test::Compare(op, lit) => value.and_then(|v| order(v, lit)).is_some_and(|o| match op {
            CmpOp::Gt => o.is_gt(),
            CmpOp::Ge => o.is_ge(),
            CmpOp::Lt => o.is_lt(),
            _ => o.is_le(),
        }),
        Test::In(list) => list.iter().any(|l| equals(value, l)),
        Test::NotIn(list) => !list.iter().any(|l| equals(value, l)),
        Test::Contains(s) => text_test(value, s, |v, s| v.contains(s), |e, s| e == s),
        Test::StartsWith(s) => {
            text_test(value, s, |v, s| v.starts_with(s), |e, s| e.starts_with(s))
        }
        Test::Exists => value.is_some(),
        Test::NotExists => value.is_none(),
        Test::Within(p) => date(value).is_some_and(|t| p.contains(t, now)),
        Test::Before(d) => date(value).is_some_and(|t| t < d.ms),
        Test::After(d) => date(value).is_some_and(|t| t > d.ms),
    }
}

/// The value at `path` under `root` (object fields only; lists are not indexed).
pub fn resolve<'v>(root: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(root, |v, seg| v.as_object()?.get(seg))
}

/// Numbers by value: exactly when both are integers, as 64-bit floats otherwise.
pub fn compare_numbers(a: &Number, b: &Number) -> Ordering {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x.cmp(&y);
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return x.cmp(&y);
    }
    let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
    // JSON numbers are finite, so this never meets a NaN.
    x.partial_cmp(&y).unwrap_or(Ordering::Equal)
}

fn equals(value: Option<&Value>, lit: &Literal) -> bool {
    match (value, lit) {
        (None, Literal::Null) => true,
        (None, _) | (Some(_), Literal::Null) => false,
        (Some(Value::Number(a)), Literal::Number(b)) => compare_numbers(a, b).is_eq(),
        (Some(Value::String(a)), Literal::String(b)) => a == b,
        (Some(Value::Bool(a)), Literal::Bool(b)) => a == b,
        _ => false,
    }
}

fn order(value: &Value, lit: &Literal) -> Option<Ordering> {
    match (value, lit) {
        (Value::Number(a), Literal::Number(b)) => Some(compare_numbers(a, b)),
        (Value::String(a), Literal::String(b)) => Some(a.as_str().cmp(b.as_str())),
        _ => None,
    }
}

/// A case-insensitive text test: `on_string` for a string value, `on_element` for each string
/// element of a list. Both receive lower-cased text.
fn text_test(
    value: Option<&Value>,
    needle: &str,
    on_string: fn(&str, &str) -> bool,
    on_element: fn(&str, &str) -> bool,
) -> bool {
    let needle = needle.to_lowercase();
    match value {
        Some(Value::String(s)) => on_string(&s.to_lowercase(), &needle),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .any(|e| on_element(&e.to_lowercase(), &needle)),
        _ => false,
    }
}

fn date(value: Option<&Value>) -> Option<Millis> {
    parse_iso8601(value?.as_str()?).ok()
}
