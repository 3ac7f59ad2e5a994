//! Activation: what must be delivered where, decided by the applier from the log, without I/O.
//!
//! Destinations (`destination.rs`) say what they receive: filters (`condition.rs`), a payload
//! template (`template.rs`), batching, consent and retry settings. The router (`router.rs`)
//! turns applied events and audience changes into [`OutboxRecord`]s; journeys (`journey/`) turn
//! them into steps, timers and actions. Delivery rules that need no I/O live here too: retry
//! classification and backoff (`retry.rs`), request signatures (`signature.rs`).
//!
//! Everything here is deterministic: the same log and definitions give the same records with
//! the same idempotency keys, so a record re-derived after a crash is recognised as the same.

pub mod condition;
pub mod destination;
pub mod journey;
pub mod retry;
pub mod router;
pub mod signature;
pub mod template;

use crate::time::Millis;
use serde_json::{Map, Value};

/// What a record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// A forwarded event.
    Event,
    /// An audience entry or exit (audience sync), including the backfill on connection.
    AudienceEntered,
    AudienceExited,
    /// A journey's send step.
    Journey,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Event => "event",
            RecordKind::AudienceEntered => "audience_entered",
            RecordKind::AudienceExited => "audience_exited",
            RecordKind::Journey => "journey",
        }
    }

    pub fn parse(s: &str) -> Option<RecordKind> {
        Some(match s {
            "event" => RecordKind::Event,
            "audience_entered" => RecordKind::AudienceEntered,
            "audience_exited" => RecordKind::AudienceExited,
            "journey" => RecordKind::Journey,
            _ => return None,
        })
    }
}

/// One message that must reach one destination, written to the outbox in the same
/// transaction as the state change that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    pub destination: String,
    /// The idempotency key: derived from the log (destination, cause, position), so a record
    /// re-derived after a crash has the same key and is stored once.
    pub key: String,
    /// The log position of the entry that caused it.
    pub position: i64,
    /// The profile it concerns (its key), when there is one.
    pub profile: Option<i64>,
    pub kind: RecordKind,
    /// The message as the destination receives it (one item; batching happens at delivery),
    /// as JSON text.
    pub payload: String,
    /// When it was decided (the event's receipt time, or a timer's instant).
    pub at: Millis,
}

/// An applied log entry as activation sees it.
#[derive(Debug, Clone, Copy)]
pub struct EventView<'a> {
    pub position: i64,
    /// `track`, `identify`, `page`, `screen`, `group` or `alias`.
    pub kind: &'a str,
    /// `event` of a track, `name` of a page or screen.
    pub name: Option<&'a str>,
    /// Event time (skew-corrected).
    pub timestamp: Millis,
    pub received_at: Millis,
    /// The stored Segment message.
    pub message: &'a Value,
    /// The profile (key) it was applied to, if it carried a usable identifier.
    pub profile: Option<i64>,
}

/// An audience entry or exit as activation sees it.
#[derive(Debug, Clone, Copy)]
pub struct AudienceView<'a> {
    pub audience: &'a str,
    pub name: &'a str,
    pub profile: i64,
    pub entered: bool,
    pub at: Millis,
    /// The log position it is attributed to (the event, or the last applied position for a
    /// change driven by time or a definition).
    pub position: i64,
    /// `event`, `merge`, `time`, `backfill`, `definition_updated` or `rebuilt`.
    pub reason: &'a str,
}

/// What activation may read of the profiles (implemented over the engine and the segmenter).
pub trait ProfileLookup {
    /// The profile's current traits (computed traits included).
    fn traits(&self, profile: i64) -> Map<String, Value>;
    /// Its user id, if known (for Segment-shaped payloads).
    fn user_id(&self, profile: i64) -> Option<String>;
    /// Whether it is currently a member of the audience (by id).
    fn in_audience(&self, profile: i64, audience: &str) -> bool;
    /// Its consent for a category, if it ever gave an answer (the `consent.<category>` trait).
    fn consent(&self, profile: i64, category: &str) -> Option<bool> {
        self.traits(profile)
            .get(&format!("{}{category}", crate::identity::CONSENT_PREFIX))
            .and_then(Value::as_bool)
    }
}

/// How one delivery attempt of a record ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered,
    /// Failed; it will be tried again.
    Retry,
    /// Failed for good (a permanent error, or the retry window is over): a dead letter.
    Dead,
    /// Not sent: the consent it needs was revoked before it left.
    Skipped,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Retry => "retry",
            AttemptOutcome::Dead => "dead",
            AttemptOutcome::Skipped => "skipped",
        }
    }
}

/// One attempt to deliver one record (a request carrying several records makes one attempt
/// per record), for the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub destination: String,
    pub key: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub at: Millis,
    /// The HTTP status, when a response came.
    pub status: Option<u16>,
    pub outcome: AttemptOutcome,
    pub latency_ms: u32,
    /// The start of the response body.
    pub response: String,
    /// What went wrong without a response (connection refused, timeout), or why it is dead.
    pub error: Option<String>,
}

/// What activation adds to a commit of the state file, in the same transaction as the state
/// change that caused it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivationBatch {
    /// New outbox records, in the order they were decided.
    pub records: Vec<OutboxRecord>,
    /// Delivery attempts since the last commit (written after `records`).
    pub attempts: Vec<DeliveryAttempt>,
    /// Dead letters sent back to their queue by a replay: (destination, key).
    pub requeued: Vec<(String, String)>,
    /// Journey state changed since the last commit: key, new value (`None`: deleted).
    pub journey_rows: Vec<(String, Option<String>)>,
}

impl ActivationBatch {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
            && self.attempts.is_empty()
            && self.requeued.is_empty()
            && self.journey_rows.is_empty()
    }
}
