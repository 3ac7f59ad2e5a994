//! The derived state of one workspace, shared by its applier (which writes it), the readers
//! (Profile API, audiences API) and its destinations' delivery lanes (which report attempts).

use crate::activation::Activation;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tessera_core::activation::DeliveryAttempt;
use tessera_core::identity::Engine;
use tessera_core::segment::Segmenter;
use tessera_store::ProfileDb;

/// What delivery reported since the applier's last commit; it goes into the next one.
#[derive(Default)]
pub struct DeliveryReports {
    pub attempts: Vec<DeliveryAttempt>,
    /// Dead letters sent back to their queue: (destination, key).
    pub requeued: Vec<(String, String)>,
}

/// The derived state of one workspace, shared by its applier and the readers.
pub struct WorkspaceState {
    pub workspace: String,
    pub engine: RwLock<Engine>,
    /// Segmentation: computed traits and audience memberships. Locked after `engine` when
    /// both are needed.
    pub segments: RwLock<Segmenter>,
    pub(crate) db: RwLock<Arc<ProfileDb>>,
    /// The last log position committed to the state file.
    pub committed: AtomicI64,
    /// The log position up to which every event (of any workspace) has been looked at.
    pub(crate) scanned: AtomicI64,
    /// How long the last commit without and with documents took, in milliseconds.
    pub(crate) commit_took_ms: AtomicI64,
    pub(crate) docs_took_ms: AtomicI64,
    /// Batches handed to the state writer and not yet written.
    pub(crate) writer_queue: AtomicI64,
    /// Batches the state writer wrote (so delivery can tell when what it left in the outbox
    /// is there to read).
    pub(crate) commits: AtomicU64,
    /// Destinations and journeys with their state. Locked after `segments`.
    pub activation: RwLock<Activation>,
    pub(crate) reports: Mutex<DeliveryReports>,
}

impl WorkspaceState {
    /// The current state file (a rebuild may swap it).
    pub fn db(&self) -> Arc<ProfileDb> {
        self.db.read().expect("state lock poisoned").clone()
    }

    /// The log position applied so far.
    pub fn applied(&self) -> i64 {
        self.engine.read().expect("engine poisoned").position()
    }

    pub(crate) fn took(&self, ms: &AtomicI64) -> Duration {
        Duration::from_millis(ms.load(Ordering::SeqCst).max(0) as u64)
    }

    /// Whether the state file holds everything applied up to `position`.
    pub fn persisted(&self, position: i64) -> bool {
        self.committed.load(Ordering::SeqCst) >= position
    }

    /// Delivery attempts to write with the next commit.
    pub fn record_attempts(&self, rows: Vec<DeliveryAttempt>) {
        self.reports
            .lock()
            .expect("reports poisoned")
            .attempts
            .extend(rows);
    }

    /// Dead letters replayed, to mark pending again with the next commit.
    pub fn record_requeued(&self, rows: Vec<(String, String)>) {
        self.reports
            .lock()
            .expect("reports poisoned")
            .requeued
            .extend(rows);
    }

    /// How many reports wait for a commit.
    pub fn reports_waiting(&self) -> usize {
        let r = self.reports.lock().expect("reports poisoned");
        r.attempts.len() + r.requeued.len()
    }
}
