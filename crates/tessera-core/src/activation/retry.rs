//! What to do after a delivery attempt, and when to try again. Pure: the delivery workers pass
//! the response, the time and their own randomness.
//!
//! Classification follows what receivers mean by their status codes: 2xx is done; timeouts,
//! conflicts (often a lock on the receiver's side), rate limits and server errors are worth
//! another try; any other 4xx says the request itself is wrong and retrying would only repeat
//! it, so the record goes to the dead-letter queue at once. Redirects are not followed (a
//! webhook that moved should be reconfigured, not silently chased) and count as permanent.

use super::condition::{integer, object, only_keys, ConfigError};
use crate::time::{parse_iso8601, Millis};
use serde_json::{json, Value};

/// The outcome of one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Try again; `after_ms` is the receiver's own `Retry-After`, when it gave one we honour.
    Retry {
        after_ms: Option<u64>,
    },
    /// Never retry: dead-letter now.
    Permanent,
}

/// The longest `Retry-After` honoured: a receiver asking for a day would otherwise park the
/// destination's lanes far past any useful point.
pub const MAX_RETRY_AFTER_MS: u64 = 3_600_000;

/// Backoff never goes below this, so that a zero `unit` cannot turn into a busy loop.
pub const MIN_BACKOFF_MS: u64 = 50;

/// Classifies an attempt. `status` is `None` for a connection error or a timeout.
pub fn classify(status: Option<u16>, retry_after: Option<&str>, now: Millis) -> Verdict {
    let Some(status) = status else {
        return Verdict::Retry { after_ms: None };
    };
    match status {
        200..=299 => Verdict::Delivered,
        408 | 409 | 429 | 500..=599 => {
            // Retry-After is meaningful on 429 and 503 (RFC 9110 §10.2.3); elsewhere it is
            // more likely a misconfigured proxy than an instruction.
            let after_ms = match status {
                429 | 503 => retry_after.and_then(|h| parse_retry_after(h, now)),
                _ => None,
            };
            Verdict::Retry { after_ms }
        }
        300..=499 => Verdict::Permanent,
        // 1xx as a final answer, or a code outside HTTP's range: something in between is
        // confused. Retrying is the safe side; the window still bounds it.
        _ => Verdict::Retry { after_ms: None },
    }
}

/// Reads a `Retry-After` value (delay in seconds, or an IMF-fixdate), capped at one hour. A
/// date in the past means "now" (0). Unreadable values are ignored (`None`).
pub fn parse_retry_after(value: &str, now: Millis) -> Option<u64> {
    let v = value.trim();
    let ms = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // Overlong digit strings saturate rather than fail: they mean "a long time".
        v.parse::<u64>().unwrap_or(u64::MAX).saturating_mul(1000)
    } else {
        let at = parse_http_date(v)?;
        u64::try_from(at.saturating_sub(now)).unwrap_or(0)
    };
    Some(ms.min(MAX_RETRY_AFTER_MS))
}

/// Parses an IMF-fixdate (`Wed, 21 Oct 2015 07:28:00 GMT`), the only form HTTP senders may
/// generate (RFC 9110 §5.6.7). The obsolete RFC 850 and asctime forms are not accepted.
pub fn parse_http_date(s: &str) -> Option<Millis> {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let b = s.as_bytes();
    // "Wed, 21 Oct 2015 07:28:00 GMT" is fixed-width: 29 bytes.
    if b.len() != 29 || !s.is_ascii() {
        return None;
    }
    let fixed = [(3, b','), (4, b' '), (7, b' '), (11, b' '), (16, b' ')];
    let fixed2 = [(19, b':'), (22, b':'), (25, b' ')];
    if fixed.iter().chain(&fixed2).any(|&(i, c)| b[i] != c) || &s[26..] != "GMT" {
        return None;
    }
    if !DAYS.contains(&&s[0..3]) {
        return None;
    }
    let month = MONTHS.iter().position(|m| *m == &s[8..11])? + 1;
    let digits = |r: std::ops::Range<usize>| s[r.clone()].bytes().all(|c| c.is_ascii_digit());
    for r in [5..7, 12..16, 17..19, 20..22, 23..25] {
        if !digits(r) {
            return None;
        }
    }
    // The ISO parser validates the calendar (day of month, leap years, hours) for us.
    let iso = format!(
        "{}-{month:02}-{}T{}:{}:{}Z",
        &s[12..16],
        &s[5..7],
        &s[17..19],
        &s[20..22],
        &s[23..25]
    );
    parse_iso8601(&iso).ok()
}

/// How a destination retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// After this long since the first attempt, a record goes to the dead-letter queue.
    pub window_ms: u64,
    pub base_ms: u64,
    pub max_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            window_ms: 24 * 3_600_000,
            base_ms: 500,
            max_ms: 60_000,
        }
    }
}

impl RetryPolicy {
    /// Full-jitter exponential backoff ("Exponential Backoff and Jitter", AWS, 2015): uniform
    /// in `[0, min(max, base * 2^(attempt-1))]`, using the caller's `unit` in `[0, 1)`, and
    /// never below [`MIN_BACKOFF_MS`]. Full jitter spreads a destination's retries after an
    /// outage instead of having them all return at once. `attempt` counts from 1.
    pub fn backoff_ms(&self, attempt: u32, unit: f64) -> u64 {
        let exp = attempt.saturating_sub(1).min(63);
        let ceiling = self.base_ms.saturating_mul(1u64 << exp).min(self.max_ms);
        // NaN and out-of-range units are the caller's bug; clamp rather than misbehave.
        let unit = if unit.is_nan() {
            0.0
        } else {
            unit.clamp(0.0, 1.0)
        };
        let ms = (unit * ceiling as f64) as u64;
        ms.min(ceiling).max(MIN_BACKOFF_MS)
    }

    /// Reads a destination's `retry` object; missing fields keep their defaults. Errors carry
    /// a pointer relative to the object.
    pub fn from_json(v: &Value) -> Result<RetryPolicy, ConfigError> {
        let mut p = RetryPolicy::default();
        let m = object(v, "")?;
        only_keys(m, "", &["window", "base_ms", "max_ms"])?;
        if let Some(w) = m.get("window") {
            p.window_ms = parse_duration_ms(w).map_err(|e| ConfigError::new("/window", e))?;
            // Under a second nothing could be retried; past 30 days the outbox would hold
            // records nobody is waiting for any more.
            if !(1_000..=30 * 86_400_000).contains(&p.window_ms) {
                return Err(ConfigError::new("/window", "expected from 1s to 30d"));
            }
        }
        if let Some(b) = m.get("base_ms") {
            p.base_ms = integer(b, "/base_ms", 10, 600_000)?;
        }
        if let Some(x) = m.get("max_ms") {
            p.max_ms = integer(x, "/max_ms", 10, 86_400_000)?;
        }
        if p.max_ms < p.base_ms {
            let message = format!("must be at least base_ms ({})", p.base_ms);
            return Err(ConfigError::new("/max_ms", message));
        }
        Ok(p)
    }

    /// The canonical JSON form, every field explicit.
    pub fn to_json(&self) -> Value {
        json!({
            "window": format_duration_ms(self.window_ms),
            "base_ms": self.base_ms,
            "max_ms": self.max_ms,
        })
    }

    /// Whether a record first tried at `first_attempt` may be tried again at `now + delay_ms`:
    /// the retry must start within the window.
    pub fn within_window(&self, first_attempt: Millis, now: Millis, delay_ms: u64) -> bool {
        let next = now as i128 + delay_ms as i128;
        next - (first_attempt as i128) <= self.window_ms as i128
    }
}

/// Reads a duration: an integer number of milliseconds, or digits followed by `ms`, `s`, `m`,
/// `h` or `d` (`"10s"`, `"5m"`, `"24h"`, `"2d"`).
pub fn parse_duration_ms(v: &Value) -> Result<u64, String> {
    const EXPECTED: &str =
        "expected a duration such as \"10s\", \"5m\", \"24h\" or \"2d\", or milliseconds";
    match v {
        Value::Number(n) => n.as_u64().ok_or_else(|| EXPECTED.to_owned()),
        Value::String(s) => {
            let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let (digits, unit) = s.split_at(split);
            let factor = match unit {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return Err(EXPECTED.into()),
            };
            digits
                .parse::<u64>()
                .ok()
                .and_then(|n| n.checked_mul(factor))
                .ok_or_else(|| EXPECTED.to_owned())
        }
        _ => Err(EXPECTED.into()),
    }
}

/// The shortest exact text of a duration: the largest of `d`, `h`, `m`, `s` that divides it,
/// else plain milliseconds (as a number).
pub fn format_duration_ms(ms: u64) -> Value {
    for (unit, factor) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        // Not `is_multiple_of`: the workspace still supports Rust 1.85.
        if ms > 0 && ms / factor * factor == ms {
            return Value::String(format!("{}{unit}", ms / factor));
        }
    }
    Value::from(ms)
}

#[cfg(test)]
#[path = "tests/retry.rs"]
mod tests;
