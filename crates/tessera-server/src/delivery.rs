//! Delivery: one queue per destination, drained by that destination's own lanes (tasks), so a
//! slow or dead destination never delays another.
//!
//! The applier hands every record it decides to [`Delivery::dispatch`] at once (the record is
//! written to the outbox in the next commit of the state file), so a webhook can leave
//! milliseconds after its event was acknowledged. Records that do not fit in memory, and
//! records still pending at start-up, are read back from the outbox. Delivery is at least
//! once: a record whose success was not yet recorded when the process died is sent again
//! with the same idempotency key.
//!
//! Workers run on their own small tokio runtime, apart from the HTTP server's, so a burst of
//! deliveries cannot slow the Tracking API down.

mod http;
mod lane;
mod queue;

pub use queue::Health;

use crate::applier::WorkspaceState;
use queue::DestQueue;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use tessera_core::activation::destination::Destination;
use tessera_core::activation::OutboxRecord;
use tessera_store::StoredRecord;

pub use http::{client_config, Endpoint, Target};

/// Threads of the delivery runtime: requests are I/O; two threads keep one slow TLS-less
/// serialisation from holding everything else.
const DELIVERY_THREADS: usize = 2;

impl Drop for Delivery {
    fn drop(&mut self) {
        // Dropped at shutdown, possibly from the HTTP server's runtime, where waiting for
        // this one's tasks is not allowed; unfinished requests are simply abandoned (their
        // records are still pending in the outbox).
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Every destination's queue and lanes.
#[derive(Default)]
pub struct Delivery {
    runtime: OnceLock<tokio::runtime::Runtime>,
    /// By workspace, then destination id.
    queues: Mutex<HashMap<String, HashMap<String, Arc<DestQueue>>>>,
}

impl Delivery {
    /// Starts the delivery runtime now, on the calling thread's CPU priority: threads inherit
    /// it, and the appliers (which configure destinations later) run at a lower one.
    pub fn new() -> Delivery {
        let d = Delivery::default();
        d.runtime();
        d
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(DELIVERY_THREADS)
                .thread_name("delivery")
                .enable_all()
                .build()
                .expect("the delivery runtime starts")
        })
    }

    /// Makes a workspace's running queues match its destinations: new ones start (and read
    /// what is pending in the outbox), changed ones take their new settings (a change of
    /// concurrency restarts their lanes), removed ones stop.
    /// `at_start`: the process is starting, so everything pending is in the outbox already.
    pub fn configure(&self, state: &Arc<WorkspaceState>, dests: &[Destination], at_start: bool) {
        let mut all = self.queues.lock().expect("delivery poisoned");
        let running = all.entry(state.workspace.clone()).or_default();
        let wanted: HashMap<&str, &Destination> =
            dests.iter().map(|d| (d.id.as_str(), d)).collect();
        running.retain(|id, q| {
            let keep = wanted
                .get(id.as_str())
                .is_some_and(|d| d.concurrency == q.lanes());
            if !keep {
                q.stop();
            }
            keep
        });
        for d in dests {
            match running.get(&d.id) {
                Some(q) => q.set_config(d.clone()),
                None => {
                    let rt = self.runtime().handle();
                    let q = DestQueue::start(rt, state.clone(), d.clone(), at_start);
                    running.insert(d.id.clone(), q);
                }
            }
        }
    }

    /// Hands freshly decided records to their destinations' queues.
    pub fn dispatch(&self, workspace: &str, records: &[OutboxRecord]) {
        if records.is_empty() {
            return;
        }
        let all = self.queues.lock().expect("delivery poisoned");
        let Some(running) = all.get(workspace) else {
            return;
        };
        for r in records {
            if let Some(q) = running.get(&r.destination) {
                q.offer_new(r);
            }
        }
    }

    /// Sends replayed dead letters again.
    pub fn requeue(&self, workspace: &str, destination: &str, records: Vec<StoredRecord>) {
        if let Some(q) = self.queue(workspace, destination) {
            q.note_replayed();
            for r in records {
                // Beyond what memory holds, the refill reads them once they are pending again.
                q.offer_replayed(r);
            }
        }
    }

    /// Drops every queued or retrying record about these profiles (they were deleted).
    pub fn forget(&self, workspace: &str, profiles: &[i64]) {
        let all = self.queues.lock().expect("delivery poisoned");
        for q in all.get(workspace).into_iter().flat_map(|m| m.values()) {
            q.forget(profiles);
        }
    }

    /// Tells a webhook destination that a person was deleted (`body` names them): a signed
    /// request with the idempotency key `key`, tried up to five times over about fifteen
    /// seconds. Nothing of it is stored: a deletion request that did not finish is carried out
    /// again after a restart, notifications included. Answers the final status or error.
    pub fn notify_deletion(
        &self,
        dest: &Destination,
        key: &str,
        body: &str,
    ) -> Result<u16, String> {
        use tessera_core::activation::retry::{classify, Verdict};
        let endpoint = http::Endpoint::of(dest)?;
        let method = match &dest.transport {
            tessera_core::activation::destination::Transport::Webhook { method, .. } => {
                axum::http::Method::from_bytes(method.as_str().as_bytes())
                    .unwrap_or(axum::http::Method::POST)
            }
            _ => return Err("deletion notices go to webhook destinations only".into()),
        };
        let timeout = std::time::Duration::from_millis(dest.timeout_ms);
        self.runtime().block_on(async {
            let mut conn = http::Connection::default();
            let mut last = Err("not tried".to_string());
            for attempt in 0..5u32 {
                if attempt > 0 {
                    let wait = 500u64 << (attempt - 1);
                    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                }
                let now = crate::state::now_millis();
                let headers = lane::headers(dest, &[key], body.as_bytes(), now);
                let sent = conn
                    .send(
                        &endpoint,
                        &method,
                        &headers,
                        bytes::Bytes::from(body.to_string()),
                        timeout,
                    )
                    .await;
                let status = sent.as_ref().ok().map(|a| a.status);
                let retry = sent.as_ref().ok().and_then(|a| a.retry_after.clone());
                last = sent.map(|a| a.status);
                match classify(status, retry.as_deref(), now) {
                    Verdict::Delivered | Verdict::Permanent => break,
                    Verdict::Retry { .. } => continue,
                }
            }
            last
        })
    }

    /// A destination's delivery figures, if it runs.
    pub fn health(&self, workspace: &str, destination: &str) -> Option<Health> {
        self.queue(workspace, destination).map(|q| q.health())
    }

    /// Every running destination's figures of a workspace, by id.
    pub fn all_health(&self, workspace: &str) -> Vec<(String, Health)> {
        let queues: Vec<Arc<DestQueue>> = {
            let all = self.queues.lock().expect("delivery poisoned");
            all.get(workspace)
                .map(|m| m.values().cloned().collect())
                .unwrap_or_default()
        };
        let mut out: Vec<(String, Health)> =
            queues.iter().map(|q| (q.id.clone(), q.health())).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn queue(&self, workspace: &str, destination: &str) -> Option<Arc<DestQueue>> {
        let all = self.queues.lock().expect("delivery poisoned");
        all.get(workspace)?.get(destination).cloned()
    }

    /// Stops a workspace's queues (the workspace is gone, or its applier stopped).
    pub fn stop_workspace(&self, workspace: &str) {
        if let Some(running) = self
            .queues
            .lock()
            .expect("delivery poisoned")
            .remove(workspace)
        {
            for q in running.values() {
                q.stop();
            }
        }
    }
}
