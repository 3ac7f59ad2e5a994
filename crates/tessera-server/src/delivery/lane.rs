//! One lane of a destination: takes records from its queue in batches, sends them, and
//! decides from the answer whether they are delivered, tried again later (exponential backoff
//! with jitter, or the receiver's `Retry-After`), or dead letters (a permanent error, or the
//! retry window is over). Every attempt goes to the delivery log.
//!
//! A destination that keeps per-profile order has each profile on one lane, and a lane whose
//! batch must be retried sends nothing else until it succeeds or is dead. Otherwise a failed
//! batch waits aside while the lane goes on.

use super::http::Connection;
use super::queue::{DestQueue, Item};
use crate::state::now_millis;
use axum::http::{HeaderName, HeaderValue, Method};
use base64::Engine as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_core::activation::destination::{Destination, Transport};
use tessera_core::activation::retry::{classify, Verdict, MIN_BACKOFF_MS};
use tessera_core::activation::router::{batch_idempotency_key, segment_batch_body, webhook_body};
use tessera_core::activation::signature::{sign, IDEMPOTENCY_HEADER, SIGNATURE_HEADER};
use tessera_core::activation::{AttemptOutcome, DeliveryAttempt};
use tessera_core::identity::CONSENT_PREFIX;

/// How long an idle lane sleeps before looking again (it is woken at once by new records).
const IDLE_WAIT: Duration = Duration::from_secs(1);

pub(crate) async fn run(q: Arc<DestQueue>, lane: usize) {
    let mut conn = Connection::default();
    let mut retries: Vec<(Instant, Vec<Item>)> = Vec::new();
    let mut rng = Jitter::new();
    while !q.stopped() {
        let dest = q.config();
        if dest.paused {
            let _ = tokio::time::timeout(IDLE_WAIT, q.lanes[lane].notify.notified()).await;
            continue;
        }
        let now = Instant::now();
        let due = retries.iter().position(|(t, _)| *t <= now);
        let batch = match due {
            Some(i) => retries.swap_remove(i).1,
            // An ordered lane with a batch waiting sends nothing else meanwhile.
            None if dest.ordered && !retries.is_empty() => Vec::new(),
            None => take_batch(&q, lane, &dest).await,
        };
        if batch.is_empty() {
            let wait = retries
                .iter()
                .map(|(t, _)| t.saturating_duration_since(now))
                .min()
                .unwrap_or(IDLE_WAIT)
                .min(IDLE_WAIT);
            let _ = tokio::time::timeout(wait, q.lanes[lane].notify.notified()).await;
            continue;
        }
        if let Some(later) = send(&q, &dest, &mut conn, batch, &mut rng).await {
            retries.push(later);
        }
    }
}

/// Up to a batch of records: what is queued, and when the destination batches with a wait,
/// whatever else arrives within that wait.
async fn take_batch(q: &DestQueue, lane: usize, dest: &Destination) -> Vec<Item> {
    let size = dest.batching.size.max(1) as usize;
    let mut batch = Vec::new();
    let take = |batch: &mut Vec<Item>| {
        let mut items = q.lanes[lane].items.lock().expect("lane poisoned");
        while batch.len() < size {
            match items.pop_front() {
                Some(i) => batch.push(i),
                None => break,
            }
        }
    };
    take(&mut batch);
    if batch.is_empty() || batch.len() >= size || dest.batching.wait_ms == 0 {
        return batch;
    }
    let deadline = Instant::now() + Duration::from_millis(dest.batching.wait_ms);
    while batch.len() < size && !q.stopped() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let _ = tokio::time::timeout(left, q.lanes[lane].notify.notified()).await;
        take(&mut batch);
    }
    batch
}

/// Sends one batch; returns it with the instant to try again when it must be retried.
async fn send(
    q: &DestQueue,
    dest: &Destination,
    conn: &mut Connection,
    mut batch: Vec<Item>,
    rng: &mut Jitter,
) -> Option<(Instant, Vec<Item>)> {
    // Records of a profile deleted meanwhile are dropped, not sent.
    batch.retain(|i| {
        let gone = q.forgotten(i.profile);
        if gone {
            q.finish(&i.key);
        }
        !gone
    });
    skip_revoked(q, dest, &mut batch);
    if batch.is_empty() {
        return None;
    }
    let payloads: Vec<&str> = batch.iter().map(|i| &*i.payload).collect();
    let keys: Vec<&str> = batch.iter().map(|i| i.key.as_str()).collect();
    let started_ms = now_millis();
    let (body, method) = match &dest.transport {
        Transport::Webhook { method, .. } => (
            webhook_body(&payloads),
            Method::from_bytes(method.as_str().as_bytes()).unwrap_or(Method::POST),
        ),
        Transport::Segment { .. } => (segment_batch_body(&payloads, started_ms), Method::POST),
    };
    let headers = headers(dest, &keys, body.as_bytes(), started_ms);
    let started = Instant::now();
    let timeout = Duration::from_millis(dest.timeout_ms);
    let result = match &*q.endpoint() {
        Ok(endpoint) => {
            conn.send(endpoint, &method, &headers, body.into(), timeout)
                .await
        }
        Err(e) => Err(e.clone()),
    };
    let latency_ms = started.elapsed().as_millis() as u64;
    let now = now_millis();
    let (verdict, status, response, error) = match result {
        Ok(a) => (
            classify(Some(a.status), a.retry_after.as_deref(), now),
            Some(a.status),
            a.excerpt,
            None,
        ),
        Err(e) => (classify(None, None, now), None, String::new(), Some(e)),
    };
    for i in &mut batch {
        i.attempts += 1;
        i.first_attempt.get_or_insert(started_ms);
    }
    let attempts = batch.iter().map(|i| i.attempts).max().unwrap_or(1);
    let first = batch
        .iter()
        .filter_map(|i| i.first_attempt)
        .min()
        .unwrap_or(started_ms);
    let (outcome, retry_in, why) = match verdict {
        Verdict::Delivered => (AttemptOutcome::Delivered, None, None),
        Verdict::Permanent => (
            AttemptOutcome::Dead,
            None,
            Some(format!(
                "not retried: HTTP {}",
                status.map_or("error".into(), |s| s.to_string())
            )),
        ),
        Verdict::Retry { after_ms } => {
            // `Retry-After: 0` (or a past date) must not turn into a tight loop.
            let delay = match after_ms {
                Some(ms) => ms.max(MIN_BACKOFF_MS),
                None => dest.retry.backoff_ms(attempts, rng.unit()),
            };
            if dest.retry.within_window(first, now, delay) {
                (AttemptOutcome::Retry, Some(delay), None)
            } else {
                (
                    AttemptOutcome::Dead,
                    None,
                    Some("the retry window is over".to_string()),
                )
            }
        }
    };
    let error = match (error, why) {
        (Some(e), Some(w)) => Some(format!("{e}; {w}")),
        (e, w) => e.or(w),
    };
    let rows: Vec<DeliveryAttempt> = batch
        .iter()
        .map(|i| DeliveryAttempt {
            destination: q.id.clone(),
            key: i.key.clone(),
            attempt: i.attempts,
            at: started_ms,
            status,
            outcome,
            latency_ms: latency_ms.min(u32::MAX as u64) as u32,
            response: response.clone(),
            error: error.clone(),
        })
        .collect();
    q.ws.record_attempts(rows);
    match outcome {
        AttemptOutcome::Delivered => {
            q.record_success(&batch, latency_ms, now);
            for i in &batch {
                q.finish(&i.key);
            }
            None
        }
        AttemptOutcome::Dead | AttemptOutcome::Skipped => {
            let what = error.unwrap_or_default();
            tracing::warn!(destination = %q.id, records = batch.len(), status, reason = %what, "records moved to the dead-letter queue");
            q.record_failure(what, now, batch.len());
            for i in &batch {
                q.finish(&i.key);
            }
            None
        }
        AttemptOutcome::Retry => {
            let what = error.unwrap_or_else(|| {
                format!("HTTP {}", status.map_or("error".into(), |s| s.to_string()))
            });
            q.record_failure(what, now, 0);
            let delay = Duration::from_millis(retry_in.unwrap_or(0));
            Some((Instant::now() + delay, batch))
        }
    }
}

/// Leaves out records whose profile no longer consents to what the destination requires (a
/// revocation after the record was decided): they are recorded as skipped, never sent.
fn skip_revoked(q: &DestQueue, dest: &Destination, batch: &mut Vec<Item>) {
    if dest.consent.is_empty() {
        return;
    }
    let revoked: Vec<usize> = {
        let engine = q.ws.engine.read().expect("engine poisoned");
        batch
            .iter()
            .enumerate()
            .filter(|(_, i)| {
                i.profile.is_some_and(|p| {
                    dest.consent.iter().any(|c| {
                        let name = format!("{CONSENT_PREFIX}{c}");
                        engine.trait_of(p, &name) != Some("true")
                    })
                })
            })
            .map(|(n, _)| n)
            .collect()
    };
    if revoked.is_empty() {
        return;
    }
    let now = now_millis();
    let mut rows = Vec::new();
    for n in revoked.into_iter().rev() {
        let i = batch.remove(n);
        rows.push(DeliveryAttempt {
            destination: q.id.clone(),
            key: i.key.clone(),
            attempt: i.attempts + 1,
            at: now,
            status: None,
            outcome: AttemptOutcome::Skipped,
            latency_ms: 0,
            response: String::new(),
            error: Some("consent revoked before delivery".into()),
        });
        q.finish(&i.key);
    }
    q.record_skipped(rows.len());
    q.ws.record_attempts(rows);
}

/// The headers of a request: the signature over the exact body, the idempotency key, the
/// destination's own headers, and Segment's Basic auth.
pub(super) fn headers(
    dest: &Destination,
    keys: &[&str],
    body: &[u8],
    now_ms: i64,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    let mut push = |name: &str, value: &str| {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            out.push((n, v));
        }
    };
    push(SIGNATURE_HEADER, &sign(&dest.secret, now_ms / 1000, body));
    push(IDEMPOTENCY_HEADER, &batch_idempotency_key(keys));
    match &dest.transport {
        Transport::Webhook { headers, .. } => {
            for (k, v) in headers {
                push(k, v);
            }
        }
        Transport::Segment { write_key } => {
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("{write_key}:"));
            push("authorization", &format!("Basic {basic}"));
        }
    }
    out
}

/// The randomness of backoff jitter: a small xorshift generator seeded from the OS, one per
/// lane (jitter needs spread, not secrecy).
struct Jitter(u64);

impl Jitter {
    fn new() -> Jitter {
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        Jitter(u64::from_le_bytes(seed) | 1)
    }

    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}
