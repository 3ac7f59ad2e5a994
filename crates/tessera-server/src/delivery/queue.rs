//! One destination's queue: its lanes' in-memory queues, the keys it holds (so a record is
//! never queued twice), the refill from the outbox when memory overflowed or at start-up, and
//! its figures.

use super::http::Endpoint;
use super::lane;
use crate::applier::WorkspaceState;
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tessera_core::activation::destination::Destination;
use tessera_core::activation::OutboxRecord;
use tessera_core::Millis;
use tessera_store::StoredRecord;
use tokio::sync::Notify;

/// Records held in memory per lane (queued, retrying or in flight); beyond this they wait in
/// the outbox.
const LANE_CAPACITY: usize = 10_000;
/// Keys of finished records remembered, so a refill does not send again what was delivered
/// but not yet recorded in the state file.
const RECENT_KEYS: usize = 200_000;
/// Records read from the outbox per refill query.
const REFILL_PAGE: usize = 1_000;
/// Latencies kept for the percentiles of [`Health`].
const LATENCY_SAMPLES: usize = 2_048;

/// A record on its way.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub key: String,
    pub payload: Arc<str>,
    pub profile: Option<i64>,
    /// When the record was decided.
    pub at: Millis,
    pub attempts: u32,
    pub first_attempt: Option<Millis>,
}

pub(crate) struct LaneQueue {
    pub items: Mutex<VecDeque<Item>>,
    pub notify: Notify,
}

/// A destination's delivery figures, for its admin API page and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    pub queued: usize,
    pub delivered: u64,
    pub failed_attempts: u64,
    pub dead: u64,
    /// Records not sent because consent was revoked before they left.
    pub skipped_revoked: u64,
    pub last_success_at: Option<Millis>,
    pub last_error: Option<String>,
    pub last_error_at: Option<Millis>,
    /// Milliseconds from a record's decision to its successful delivery, over recent ones.
    pub delay_p50_ms: Option<u64>,
    pub delay_p99_ms: Option<u64>,
    /// Request latencies over recent successful requests.
    pub latency_p50_ms: Option<u64>,
    pub latency_p99_ms: Option<u64>,
}

#[derive(Default)]
struct Figures {
    health: Health,
    delays: VecDeque<u64>,
    latencies: VecDeque<u64>,
}

pub(crate) struct DestQueue {
    pub ws: Arc<WorkspaceState>,
    pub id: String,
    /// The settings, and the endpoint built from them (or why it cannot be built).
    config: RwLock<Settings>,
    pub lanes: Vec<LaneQueue>,
    stopped: AtomicBool,
    /// Keys queued, retrying or in flight.
    tracked: Mutex<HashSet<String>>,
    recent: Mutex<(HashSet<String>, VecDeque<String>)>,
    /// Records were left in the outbox (memory was full, or the process started): a refill
    /// reads them once the state writer has written this many batches (-1: none left).
    left_until: AtomicI64,
    /// Set while a refill reads the outbox.
    refilling: AtomicBool,
    refill_cursor: AtomicI64,
    next_lane: AtomicUsize,
    figures: Mutex<Figures>,
    pub refill_notify: Notify,
    /// Profiles deleted since start: their records are dropped, not sent.
    forgotten: RwLock<HashSet<i64>>,
}

impl DestQueue {
    /// Starts the lanes and the refill task; what the outbox holds as pending is read first:
    /// at once at start-up (`in_outbox_now`), else after the next commits (records decided
    /// for a previous set of lanes may still be on their way to the outbox).
    pub fn start(
        rt: &tokio::runtime::Handle,
        ws: Arc<WorkspaceState>,
        dest: Destination,
        in_outbox_now: bool,
    ) -> Arc<DestQueue> {
        let lanes = dest.concurrency.max(1) as usize;
        let commits = ws.commits.load(Ordering::SeqCst) as i64;
        let left_until = if in_outbox_now { commits } else { commits + 2 };
        let q = Arc::new(DestQueue {
            id: dest.id.clone(),
            ws,
            config: RwLock::new(settings(dest)),
            lanes: (0..lanes)
                .map(|_| LaneQueue {
                    items: Mutex::new(VecDeque::new()),
                    notify: Notify::new(),
                })
                .collect(),
            stopped: AtomicBool::new(false),
            tracked: Mutex::new(HashSet::new()),
            recent: Mutex::new(Default::default()),
            left_until: AtomicI64::new(left_until),
            refilling: AtomicBool::new(false),
            refill_cursor: AtomicI64::new(0),
            next_lane: AtomicUsize::new(0),
            figures: Mutex::new(Figures::default()),
            refill_notify: Notify::new(),
            forgotten: RwLock::new(HashSet::new()),
        });
        for i in 0..lanes {
            rt.spawn(lane::run(q.clone(), i));
        }
        rt.spawn(refill_loop(q.clone()));
        q
    }

    pub fn lanes(&self) -> u32 {
        self.lanes.len() as u32
    }

    pub fn config(&self) -> Arc<Destination> {
        self.config.read().expect("config poisoned").0.clone()
    }

    /// Where requests go under the current settings.
    pub fn endpoint(&self) -> Arc<Result<Endpoint, String>> {
        self.config.read().expect("config poisoned").1.clone()
    }

    pub fn set_config(&self, d: Destination) {
        *self.config.write().expect("config poisoned") = settings(d);
        // A resumed destination starts at once.
        self.wake_all();
    }

    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.wake_all();
        self.refill_notify.notify_one();
    }

    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    fn wake_all(&self) {
        for l in &self.lanes {
            l.notify.notify_one();
        }
    }

    /// The lane of a record: by profile when the destination keeps per-profile order, else
    /// the lanes in turn, a batch's worth of records each, so batches fill up.
    fn lane_of(&self, profile: Option<i64>, dest: &Destination) -> usize {
        let n = self.lanes.len();
        match (dest.ordered, profile) {
            (true, Some(p)) => (p.unsigned_abs() % n as u64) as usize,
            _ => {
                let turn = self.next_lane.fetch_add(1, Ordering::Relaxed);
                (turn / dest.batching.size.max(1) as usize) % n
            }
        }
    }

    /// Queues a record just decided by the applier; when memory is full it stays in the
    /// outbox for a refill. So does every record of a destination keeping per-profile order
    /// while older records wait there, so that none overtakes them.
    pub fn offer_new(&self, r: &OutboxRecord) {
        let waiting =
            self.left_until.load(Ordering::SeqCst) >= 0 || self.refilling.load(Ordering::SeqCst);
        if waiting && self.config().ordered {
            self.note_left_in_outbox();
            return;
        }
        let item = Item {
            key: r.key.clone(),
            payload: Arc::from(r.payload.as_str()),
            profile: r.profile,
            at: r.at,
            attempts: 0,
            first_attempt: None,
        };
        if !self.offer(item) {
            self.note_left_in_outbox();
        }
    }

    /// Queues a replayed dead letter (finished before, so no longer remembered as such); its
    /// backoff starts over.
    pub fn offer_replayed(&self, mut r: StoredRecord) -> bool {
        r.attempts = 0;
        self.recent
            .lock()
            .expect("recent poisoned")
            .0
            .remove(&r.key);
        self.offer_stored(r)
    }

    /// Queues a record read back from the outbox. False when memory is full.
    pub fn offer_stored(&self, r: StoredRecord) -> bool {
        if self
            .recent
            .lock()
            .expect("recent poisoned")
            .0
            .contains(&r.key)
        {
            return true;
        }
        self.offer(Item {
            key: r.key,
            payload: Arc::from(r.payload),
            profile: r.profile,
            at: r.at,
            attempts: r.attempts,
            first_attempt: r.first_attempt_at,
        })
    }

    fn offer(&self, item: Item) -> bool {
        let lane = &self.lanes[self.lane_of(item.profile, &self.config())];
        let mut items = lane.items.lock().expect("lane poisoned");
        let mut tracked = self.tracked.lock().expect("tracked poisoned");
        if tracked.contains(&item.key) {
            return true;
        }
        // Retrying records count too, so a receiver that is down cannot fill memory.
        if items.len() >= LANE_CAPACITY || tracked.len() >= LANE_CAPACITY * self.lanes.len() {
            return false;
        }
        tracked.insert(item.key.clone());
        drop(tracked);
        items.push_back(item);
        drop(items);
        lane.notify.notify_one();
        true
    }

    /// Records were left in the outbox: a refill reads them once the state writer has
    /// written the batch they are in (the next one, or the one after when one is being
    /// written now).
    pub fn note_left_in_outbox(&self) {
        let until = self.ws.commits.load(Ordering::SeqCst) as i64 + 2;
        self.left_until.fetch_max(until, Ordering::SeqCst);
    }

    /// Dead letters sent back: they may sit below the refill's cursor.
    pub fn note_replayed(&self) {
        self.refill_cursor.store(0, Ordering::SeqCst);
        self.note_left_in_outbox();
    }

    /// Records about these profiles are dropped from now on: those queued now, those retrying,
    /// and any still read back from the outbox before it was rewritten.
    pub fn forget(&self, profiles: &[i64]) {
        self.forgotten
            .write()
            .expect("forgotten poisoned")
            .extend(profiles.iter().copied());
        for lane in &self.lanes {
            let mut items = lane.items.lock().expect("lane poisoned");
            let gone: Vec<String> = items
                .iter()
                .filter(|i| i.profile.is_some_and(|p| profiles.contains(&p)))
                .map(|i| i.key.clone())
                .collect();
            items.retain(|i| !i.profile.is_some_and(|p| profiles.contains(&p)));
            drop(items);
            for k in gone {
                self.finish(&k);
            }
        }
    }

    /// Whether a record is about a deleted profile.
    pub fn forgotten(&self, profile: Option<i64>) -> bool {
        profile.is_some_and(|p| {
            let f = self.forgotten.read().expect("forgotten poisoned");
            !f.is_empty() && f.contains(&p)
        })
    }

    /// A record is finished (delivered or dead): it is no longer held.
    pub fn finish(&self, key: &str) {
        self.tracked.lock().expect("tracked poisoned").remove(key);
        let mut recent = self.recent.lock().expect("recent poisoned");
        if recent.0.insert(key.to_string()) {
            recent.1.push_back(key.to_string());
            if recent.1.len() > RECENT_KEYS {
                if let Some(old) = recent.1.pop_front() {
                    recent.0.remove(&old);
                }
            }
        }
    }

    pub fn record_success(&self, items: &[Item], latency_ms: u64, now: Millis) {
        let mut f = self.figures.lock().expect("figures poisoned");
        f.health.delivered += items.len() as u64;
        f.health.last_success_at = Some(now);
        push_sample(&mut f.latencies, latency_ms);
        for i in items {
            push_sample(&mut f.delays, (now - i.at).max(0) as u64);
        }
    }

    pub fn record_skipped(&self, n: usize) {
        self.figures
            .lock()
            .expect("figures poisoned")
            .health
            .skipped_revoked += n as u64;
    }

    pub fn record_failure(&self, error: String, now: Millis, dead: usize) {
        let mut f = self.figures.lock().expect("figures poisoned");
        f.health.failed_attempts += 1;
        f.health.dead += dead as u64;
        f.health.last_error = Some(error);
        f.health.last_error_at = Some(now);
    }

    pub fn health(&self) -> Health {
        let f = self.figures.lock().expect("figures poisoned");
        let mut h = f.health.clone();
        h.queued = self.tracked.lock().expect("tracked poisoned").len();
        (h.delay_p50_ms, h.delay_p99_ms) = percentiles(&f.delays);
        (h.latency_p50_ms, h.latency_p99_ms) = percentiles(&f.latencies);
        h
    }

    /// Reads pending records from the outbox into the lanes, when records were left there
    /// and the state file holds them. Returns whether everything left there was read.
    fn refill(&self) -> Result<bool, tessera_store::StoreError> {
        let until = self.left_until.load(Ordering::SeqCst);
        if until < 0 {
            return Ok(true);
        }
        if (self.ws.commits.load(Ordering::SeqCst) as i64) < until {
            return Ok(false);
        }
        let held = self.tracked.lock().expect("tracked poisoned").len();
        if held > LANE_CAPACITY * self.lanes.len() / 2 {
            return Ok(false);
        }
        self.refilling.store(true, Ordering::SeqCst);
        // Cleared before reading: anything left from now on asks for another refill.
        self.left_until
            .compare_exchange(until, -1, Ordering::SeqCst, Ordering::SeqCst)
            .ok();
        let outcome = self.read_outbox();
        self.refilling.store(false, Ordering::SeqCst);
        outcome
    }

    fn read_outbox(&self) -> Result<bool, tessera_store::StoreError> {
        let db = self.ws.db();
        loop {
            let after = self.refill_cursor.load(Ordering::SeqCst);
            let page = db.pending_records(&self.id, after, REFILL_PAGE)?;
            let Some(last) = page.last().map(|r| r.seq) else {
                return Ok(true);
            };
            for r in page {
                let seq = r.seq;
                if !self.offer_stored(r) {
                    // Memory is full again: the rest waits for the next refill.
                    self.refill_cursor.store(seq - 1, Ordering::SeqCst);
                    let now = self.ws.commits.load(Ordering::SeqCst) as i64;
                    self.left_until.fetch_max(now, Ordering::SeqCst);
                    return Ok(false);
                }
            }
            self.refill_cursor.store(last, Ordering::SeqCst);
        }
    }
}

/// A destination's settings and the endpoint built from them (or why it cannot be built).
type Settings = (Arc<Destination>, Arc<Result<Endpoint, String>>);

fn settings(d: Destination) -> Settings {
    let endpoint = Endpoint::of(&d);
    (Arc::new(d), Arc::new(endpoint))
}

fn push_sample(v: &mut VecDeque<u64>, x: u64) {
    if v.len() >= LATENCY_SAMPLES {
        v.pop_front();
    }
    v.push_back(x);
}

fn percentiles(v: &VecDeque<u64>) -> (Option<u64>, Option<u64>) {
    if v.is_empty() {
        return (None, None);
    }
    let mut s: Vec<u64> = v.iter().copied().collect();
    s.sort_unstable();
    let at = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
    (Some(at(0.5)), Some(at(0.99)))
}

/// Refills from the outbox whenever records were left there, checking twice a second.
async fn refill_loop(q: Arc<DestQueue>) {
    while !q.stopped() {
        let qq = q.clone();
        match tokio::task::spawn_blocking(move || qq.refill()).await {
            Ok(Err(e)) => {
                tracing::warn!(destination = %q.id, error = %e, "reading the outbox failed")
            }
            Err(e) => tracing::warn!(destination = %q.id, error = %e, "outbox refill stopped"),
            Ok(Ok(_)) => {}
        }
        let _ = tokio::time::timeout(Duration::from_millis(500), q.refill_notify.notified()).await;
    }
}
