//! Journeys: per-workspace, multi-step flows run per profile ("Product Added, then no Order
//! Completed within an hour → send the cart reminder").
//!
//! A definition ([`JourneyDef`]) is read from JSON and checked up front (every error names a
//! JSON Pointer), so the engine never meets a dangling step reference or a loop that would run
//! forever. The engine ([`Journeys`]) holds every definition of a workspace and every profile's
//! progress through them. It is fed, in log order, the applied events, audience changes,
//! merges and timer ticks, and answers with [`Action`]s (sends and trait writes) that the
//! router turns into outbox records.
//!
//! Like the rest of activation it is deterministic: no clock (an event's instant is its
//! timestamp, a timer's is its due time), no randomness (the holdout group is a fixed hash of
//! journey and profile), and iteration in sorted order only. The same log gives the same
//! actions with the same idempotency keys, and an engine restored from the rows of
//! [`Journeys::take_dirty`] continues exactly like one that never stopped.
//!
//! The `where` of triggers, goals and `wait_for` steps and a branch's `if` are conditions of
//! the language destinations filter with (`activation::condition`), `in_audience` answered for
//! the profile in the journey.
//!
//! Files: `duration.rs` (durations), `def.rs` (the parsed definition and its canonical JSON),
//! `parse.rs` (reading it; condition errors become [`JourneyError`]s), `graph.rs` (the
//! wait-free loop check), `state.rs` (per profile state and its bookkeeping), `run.rs`
//! (running steps until they wait), `flow.rs` (entries, events meeting instances, timers,
//! merges), `engine.rs` (the public entry points), `persist.rs` (state rows and restore).
//! Tests: `tests_parse.rs` (definitions and conditions in journeys), `tests.rs` and
//! `tests_engine.rs` (the rules one by one), `props.rs` (persistence, determinism and
//! invariants over random streams), `test_support.rs`.

mod def;
mod duration;
mod engine;
mod flow;
mod graph;
mod parse;
mod persist;
mod run;
mod state;

#[cfg(test)]
mod props;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_engine;
#[cfg(test)]
mod tests_parse;

pub use def::JourneyDef;
pub use engine::{Action, JourneyMetrics, Journeys};

use thiserror::Error;

/// A definition that cannot be used, or a stored row that cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("at {pointer}: {message}")]
pub struct JourneyError {
    /// A JSON Pointer into the definition (`/steps/2/timeout`), or the key of a stored row.
    pub pointer: String,
    pub message: String,
}

impl JourneyError {
    pub(crate) fn new(pointer: impl Into<String>, message: impl Into<String>) -> JourneyError {
        JourneyError {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

/// The holdout bucket of a profile in a journey, 0..100. FNV-1a 64 over
/// `"<journey id>:<profile key>"`: fixed forever, because changing it would move profiles
/// between the treated and the control group of running journeys.
pub(crate) fn holdout_bucket(journey: &str, profile: i64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(journey.as_bytes());
    eat(b":");
    eat(profile.to_string().as_bytes());
    h % 100
}
