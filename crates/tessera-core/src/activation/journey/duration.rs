//! Durations of waits, timeouts and windows: `"90s"`, `"30m"`, `"1h"`, `"2d"`, `"1w"`,
//! `"500ms"`, or an integer number of milliseconds. The form given is kept, so the canonical
//! JSON shows what the author wrote.

use super::JourneyError;
use crate::time::Millis;
use serde_json::Value;

/// The longest duration accepted: ten years. Far beyond any journey, and small enough that
/// adding it to any timestamp cannot overflow.
const MAX_MS: i64 = 10 * 366 * 86_400_000;

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Dur {
    pub ms: Millis,
    /// The value as written (a string or an integer).
    pub source: Value,
}

impl Dur {
    /// A duration that was not written (a default): rendered as text.
    pub fn default_text(text: &str) -> Dur {
        let ms = text_ms(text).expect("a valid default duration");
        Dur {
            ms,
            source: Value::from(text),
        }
    }

    pub fn parse(v: &Value, pointer: &str) -> Result<Dur, JourneyError> {
        let ms = match v {
            Value::String(s) => text_ms(s).ok_or_else(|| {
                JourneyError::new(
                    pointer,
                    format!(
                        "\"{s}\" is not a duration; expected a positive number with a unit \
                         (ms, s, m, h, d, w) such as \"30m\", or milliseconds as an integer"
                    ),
                )
            })?,
            Value::Number(n) => n.as_i64().filter(|&ms| ms > 0).ok_or_else(|| {
                JourneyError::new(
                    pointer,
                    "a duration in milliseconds must be a positive integer",
                )
            })?,
            _ => {
                return Err(JourneyError::new(
                    pointer,
                    "expected a duration such as \"30m\" or an integer of milliseconds",
                ))
            }
        };
        if ms > MAX_MS {
            return Err(JourneyError::new(
                pointer,
                "a duration may not exceed ten years",
            ));
        }
        Ok(Dur {
            ms,
            source: v.clone(),
        })
    }
}

/// Milliseconds of `"<digits><unit>"`, if it is one and positive.
fn text_ms(s: &str) -> Option<Millis> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = s.split_at(split);
    // A bound on the digits keeps the parse from overflowing before the range check.
    if digits.is_empty() || digits.len() > 12 {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms).filter(|&ms| ms > 0)
}
