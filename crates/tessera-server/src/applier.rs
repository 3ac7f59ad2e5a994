//! The appliers: exactly one thread per workspace reads the event log in order, applies each
//! event to the workspace's identity engine and commits the changes together with the log
//! position they reflect. Readers (the Profile API) see the engine through a read lock.
//!
//! Rebuilds (after a split or a rule change, and `tessera replay`) run the same loop into a
//! fresh engine and a fresh state file, then swap them in.

use crate::activation::TICK_SOURCE;
use crate::activation::{apply_and_activate, Decided};
use crate::activation_defs::{stored_activation, ActivationConfig};
use crate::cadence::Cadence;
use crate::delivery::Delivery;
use crate::restore::{restore_engine, RestoreFailure};
use crate::segments::AudienceOutput;
use crate::segments::{batch_threads, restore_segmenter, stored_registry};
use crate::state_writer::write_batches;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tessera_core::identity::{CommitBatch, Engine, IdentityRules};
use tessera_core::segment::{Registry, Segmenter};
use tessera_store::{AppendBatch, ProfileDb, Store, StoreError};

pub use crate::activation::apply_entries;
pub use crate::log_apply::replay_into;

mod commands;
pub use crate::workspace::WorkspaceState;

/// Events read from the log per query.
const READ_CHUNK: usize = 4096;
/// Events applied per hold of the engine's write lock, so readers wait little.
const LOCK_CHUNK: usize = 256;
/// A commit happens after this many events or this much time, whichever comes first. SQLite
/// writes every page a commit touches in full, and profile updates touch pages at random,
/// so fewer, larger commits write far less; reads of profiles come from memory meanwhile.
pub const COMMIT_EVENTS: usize = 1_000_000;
pub const COMMIT_EVERY: Duration = Duration::from_millis(250);
/// Profile documents are rewritten whole, so they are written less often than timelines and
/// history: at least this far apart, and four times as long apart as writing them last took.
/// A restart re-derives what came after them from the log.
pub const DOCS_EVERY: Duration = Duration::from_secs(10);
/// How far behind the wall clock an idle applier moves segmentation's clock.
const IDLE_CLOCK_LAG_MS: i64 = 1000;
/// Documents rendered per turn of the applier loop while a snapshot is in progress: a few
/// milliseconds of work, so events keep flowing.
const DOCS_PER_TURN: usize = 500;

/// The cadence of commits (see [`Cadence`]); the writer thread works while the applier applies,
/// so twice the last commit's time keeps it from falling behind.
pub fn commit_cadence() -> Cadence {
    Cadence::new(COMMIT_EVERY, 2)
}

/// The cadence of writing profile documents.
pub fn docs_cadence() -> Cadence {
    Cadence::new(DOCS_EVERY, 4)
}

/// Wakes appliers when the log grew (called from the log writer's commit observer).
#[derive(Default)]
pub struct LogSignal {
    seq: Mutex<u64>,
    cond: Condvar,
}

impl LogSignal {
    pub fn notify(&self) {
        *self.seq.lock().expect("log signal poisoned") += 1;
        self.cond.notify_all();
    }

    fn wait(&self, seen: u64, timeout: Duration) -> u64 {
        let guard = self.seq.lock().expect("log signal poisoned");
        let (guard, _) = self
            .cond
            .wait_timeout_while(guard, timeout, |s| *s == seen)
            .expect("log signal poisoned");
        *guard
    }

    fn current(&self) -> u64 {
        *self.seq.lock().expect("log signal poisoned")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplierError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Restore(#[from] RestoreFailure),
    #[error("the applier of workspace {0} is not running")]
    Stopped(String),
}

pub(crate) type Reply = Sender<Result<(), String>>;
/// A batch for the state writer, and who to tell once it is written.
pub(crate) type WriterJob = (Arc<ProfileDb>, CommitBatch, Option<Reply>);

enum Command {
    SetRules(IdentityRules),
    /// Re-derive the state under these rules, leaving out everything of these profiles.
    Rebuild(IdentityRules, Vec<i64>, Reply),
    SetDefinitions(Registry, Reply),
    SetActivation(ActivationConfig, Reply),
}

struct Handle {
    state: Arc<WorkspaceState>,
    commands: Sender<Command>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Every workspace's applier.
pub struct Appliers {
    store: Arc<dyn Store>,
    dir: PathBuf,
    signal: Arc<LogSignal>,
    default_rules: IdentityRules,
    running: Mutex<HashMap<String, Handle>>,
    /// Held while a request reads, changes and stores rules (a PUT or a split), so that two
    /// such requests cannot each overwrite the other's change.
    pub rules_update: tokio::sync::Mutex<()>,
    /// Held while a request reads, changes and stores definitions, for the same reason.
    pub definitions_update: tokio::sync::Mutex<()>,
    /// Every destination's delivery queue.
    pub delivery: Arc<Delivery>,
}

impl Appliers {
    pub fn new(
        store: Arc<dyn Store>,
        dir: PathBuf,
        signal: Arc<LogSignal>,
        default_rules: IdentityRules,
    ) -> Appliers {
        Appliers {
            store,
            dir,
            signal,
            default_rules,
            running: Mutex::new(HashMap::new()),
            rules_update: tokio::sync::Mutex::new(()),
            definitions_update: tokio::sync::Mutex::new(()),
            delivery: Arc::new(Delivery::new()),
        }
    }

    /// The rules a workspace uses: its stored ones, else the configured defaults.
    pub fn rules_for(&self, workspace: &str) -> Result<IdentityRules, ApplierError> {
        Ok(match self.store.identity_rules(workspace)? {
            Some(text) => serde_json::from_str(&text)
                .ok()
                .and_then(|v| IdentityRules::from_json(&v).ok())
                .unwrap_or_else(|| self.default_rules.clone()),
            None => self.default_rules.clone(),
        })
    }

    /// Starts the applier of every workspace that has none yet (loading each one's state).
    pub fn start_all(&self) -> Result<(), ApplierError> {
        for ws in self.store.list_workspaces()? {
            self.start(&ws.id)?;
        }
        Ok(())
    }

    /// A workspace's state, starting its applier (loading its stored state) when it does not
    /// run yet.
    pub fn start(&self, workspace: &str) -> Result<Arc<WorkspaceState>, ApplierError> {
        let mut running = self.running.lock().expect("appliers poisoned");
        if let Some(h) = running.get(workspace) {
            return Ok(h.state.clone());
        }
        // A request may name a workspace that was deleted after it was looked up.
        if self.store.get_workspace(workspace)?.is_none() {
            return Err(ApplierError::Stopped(workspace.to_string()));
        }
        let wanted = self.rules_for(workspace)?;
        let (db, engine, rebuild, fresh) = self.restore(workspace, &wanted)?;
        let registry = stored_registry(self.store.as_ref(), workspace)?;
        let segments = restore_segmenter(self.store.as_ref(), workspace, &db, &engine, registry)?;
        let config = stored_activation(self.store.as_ref(), workspace)?;
        let mut activation = config.restore(&db)?;
        if fresh {
            // State derived anew (none found, unreadable, or of another format): whatever
            // history the log holds was activated before, by the state that was lost (or
            // before activation existed); sending it all again would flood every destination.
            activation.skip_upto = self.store.last_position()?;
        }
        let position = engine.position();
        let state = Arc::new(WorkspaceState {
            workspace: workspace.to_string(),
            committed: AtomicI64::new(position),
            scanned: AtomicI64::new(position),
            commit_took_ms: AtomicI64::new(0),
            docs_took_ms: AtomicI64::new(0),
            writer_queue: AtomicI64::new(0),
            commits: Default::default(),
            engine: RwLock::new(engine),
            segments: RwLock::new(segments),
            db: RwLock::new(Arc::new(db)),
            activation: RwLock::new(activation),
            reports: Mutex::new(Default::default()),
        });
        self.delivery.configure(&state, &config.destinations, true);
        let (tx, rx) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            store: self.store.clone(),
            state: state.clone(),
            signal: self.signal.clone(),
            stop: stop.clone(),
            dir: self.dir.clone(),
            delivery: self.delivery.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("applier-{workspace}"))
            .spawn(move || worker.run(rx))
            .map_err(|e| StoreError::CommitFailed(format!("cannot start applier: {e}")))?;
        if rebuild {
            // Nobody waits for this rebuild; its outcome is logged by the applier.
            let (reply, _) = channel();
            let _ = tx.send(Command::Rebuild(wanted, Vec::new(), reply));
        }
        running.insert(
            workspace.to_string(),
            Handle {
                state: state.clone(),
                commands: tx,
                stop,
                thread: Some(thread),
            },
        );
        Ok(state)
    }

    /// Opens a workspace's state file and rebuilds its engine under the rules the file was
    /// derived under. Says whether a rebuild under `wanted` must follow: the rules changed
    /// after the file's last documents (a crash during a rules change, a split or a rebuild, or
    /// an edited `[identity]` table). State that cannot be read is set aside and re-derived
    /// from the log rather than keeping the server from starting. Also says whether the state
    /// starts anew (no usable state file was found).
    fn restore(
        &self,
        workspace: &str,
        wanted: &IdentityRules,
    ) -> Result<(ProfileDb, Engine, bool, bool), ApplierError> {
        let mut db = ProfileDb::open_latest(&self.dir, workspace)?;
        let mut fresh = db.position()? == 0 && db.rules()?.is_none();
        let recorded = db.rules()?;
        if recorded.is_none() {
            if db.position()? > 0 {
                // Rows derived under rules nobody recorded: start over from the log.
                tracing::warn!(
                    workspace,
                    "profile state has no recorded rules; re-deriving it"
                );
                drop(db);
                ProfileDb::delete_all(&self.dir, workspace);
                db = ProfileDb::open_latest(&self.dir, workspace)?;
                fresh = true;
            }
            db.set_rules(&wanted.to_json().to_string())?;
        }
        let stored: Option<IdentityRules> = db
            .rules()?
            .and_then(|text| serde_json::from_str(&text).ok())
            .and_then(|v| IdentityRules::from_json(&v).ok());
        let rebuild = stored.as_ref().is_some_and(|r| r != wanted);
        let rules = stored.unwrap_or_else(|| wanted.clone());
        match restore_engine(&db, rules) {
            Ok(engine) => Ok((db, engine, rebuild, fresh)),
            Err(e) => {
                tracing::error!(workspace, error = %e, "profile state unreadable; re-deriving it from the log");
                drop(db);
                ProfileDb::delete_all(&self.dir, workspace);
                let db = ProfileDb::open_latest(&self.dir, workspace)?;
                db.set_rules(&wanted.to_json().to_string())?;
                Ok((db, Engine::new(wanted.clone()), false, true))
            }
        }
    }

    /// Uses new rules for events applied from now on.
    pub fn set_rules(&self, workspace: &str, rules: IdentityRules) -> Result<(), ApplierError> {
        self.start(workspace)?;
        let running = self.running.lock().expect("appliers poisoned");
        let h = running
            .get(workspace)
            .ok_or_else(|| ApplierError::Stopped(workspace.to_string()))?;
        h.commands
            .send(Command::SetRules(rules))
            .map_err(|_| ApplierError::Stopped(workspace.to_string()))?;
        // Commands are read when the applier wakes; wake it now.
        self.signal.notify();
        Ok(())
    }

    /// Replaces a workspace's destinations and journeys; the receiver answers once they are in
    /// use (and the backfills of newly synced audiences are decided and committed).
    pub fn set_activation(
        &self,
        workspace: &str,
        config: ActivationConfig,
    ) -> Result<Receiver<Result<(), String>>, ApplierError> {
        self.send(workspace, |reply| Command::SetActivation(config, reply))
    }

    /// Replaces a workspace's computed-trait and audience definitions; the receiver answers
    /// once changed ones are evaluated over every profile and their changes committed.
    pub fn set_definitions(
        &self,
        workspace: &str,
        registry: Registry,
    ) -> Result<Receiver<Result<(), String>>, ApplierError> {
        self.send(workspace, |reply| Command::SetDefinitions(registry, reply))
    }

    fn send(
        &self,
        workspace: &str,
        command: impl FnOnce(Reply) -> Command,
    ) -> Result<Receiver<Result<(), String>>, ApplierError> {
        self.start(workspace)?;
        let running = self.running.lock().expect("appliers poisoned");
        let h = running
            .get(workspace)
            .ok_or_else(|| ApplierError::Stopped(workspace.to_string()))?;
        let (tx, rx) = channel();
        h.commands
            .send(command(tx))
            .map_err(|_| ApplierError::Stopped(workspace.to_string()))?;
        self.signal.notify();
        Ok(rx)
    }

    /// Re-derives a workspace's whole state from the log under `rules`; returns when the new
    /// state is in place.
    pub fn rebuild(
        &self,
        workspace: &str,
        rules: IdentityRules,
    ) -> Result<Receiver<Result<(), String>>, ApplierError> {
        self.send(workspace, |reply| {
            Command::Rebuild(rules, Vec::new(), reply)
        })
    }

    /// Re-derives a workspace's state from the log (whose events of these profiles were
    /// deleted) without anything of these profiles: their audience history, outbox records,
    /// journey state and queued deliveries go too. Answers when the new state is in place.
    pub fn forget(
        &self,
        workspace: &str,
        profiles: Vec<i64>,
    ) -> Result<Receiver<Result<(), String>>, ApplierError> {
        let rules = self.rules_for(workspace)?;
        self.send(workspace, |reply| Command::Rebuild(rules, profiles, reply))
    }

    /// Stops a workspace's applier and deletes its derived state (the workspace is gone).
    pub fn remove(&self, workspace: &str) {
        self.delivery.stop_workspace(workspace);
        let handle = self
            .running
            .lock()
            .expect("appliers poisoned")
            .remove(workspace);
        if let Some(mut h) = handle {
            h.stop.store(true, Ordering::SeqCst);
            self.signal.notify();
            if let Some(t) = h.thread.take() {
                let _ = t.join();
            }
            h.state.db().retire();
        }
        ProfileDb::delete_all(&self.dir, workspace);
    }

    /// Stops every applier after it commits what it applied.
    pub fn shutdown(&self) {
        let handles: Vec<Handle> = self
            .running
            .lock()
            .expect("appliers poisoned")
            .drain()
            .map(|(_, h)| h)
            .collect();
        for h in &handles {
            h.stop.store(true, Ordering::SeqCst);
        }
        self.signal.notify();
        for mut h in handles {
            if let Some(t) = h.thread.take() {
                let _ = t.join();
            }
        }
    }

    /// Each workspace's applier figures (for metrics), by workspace id.
    pub fn figures(&self) -> Vec<ApplierFigures> {
        // Engines are read after the registry's lock is released: a rebuild holding one
        // engine must not hold up every request that looks a workspace up.
        let states: Vec<Arc<WorkspaceState>> = self
            .running
            .lock()
            .expect("appliers poisoned")
            .values()
            .map(|h| h.state.clone())
            .collect();
        let mut out: Vec<ApplierFigures> = states
            .iter()
            .map(|state| {
                let (applied, profiles) = {
                    let e = state.engine.read().expect("engine poisoned");
                    (e.position(), e.live_profiles())
                };
                let seg = state.segments.read().expect("segments poisoned");
                ApplierFigures {
                    workspace: state.workspace.clone(),
                    position: applied.max(state.scanned.load(Ordering::SeqCst)),
                    profiles,
                    segment_events: seg.events().rows(),
                    segment_bytes: seg.heap_bytes(),
                    audience_sizes: seg
                        .registry()
                        .audiences
                        .iter()
                        .map(|a| a.id.clone())
                        .zip(seg.sizes())
                        .collect(),
                    destinations: self.delivery.all_health(&state.workspace),
                }
            })
            .collect();
        out.sort_by(|a, b| a.workspace.cmp(&b.workspace));
        out
    }
}

/// What `/metrics` reports of one workspace's applier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplierFigures {
    pub workspace: String,
    /// The log position up to which every event was applied or skipped.
    pub position: i64,
    pub profiles: usize,
    /// Events held by segmentation, and the estimated bytes of its hot state.
    pub segment_events: usize,
    pub segment_bytes: usize,
    /// (audience id, members).
    pub audience_sizes: Vec<(String, usize)>,
    /// Each running destination's delivery figures, by destination id.
    pub destinations: Vec<(String, crate::delivery::Health)>,
}

struct Worker {
    store: Arc<dyn Store>,
    state: Arc<WorkspaceState>,
    signal: Arc<LogSignal>,
    stop: Arc<AtomicBool>,
    dir: PathBuf,
    delivery: Arc<Delivery>,
}

/// What the applier decided since its last commit, besides the engine's own changes.
#[derive(Default)]
struct Output {
    audience: AudienceOutput,
    decided: Decided,
    /// The last tick appended for journey timers: its instant and when it was appended.
    tick: Option<(i64, Instant)>,
}

impl Worker {
    fn run(self, commands: Receiver<Command>) {
        // At normal priority: webhooks and journeys wait for this thread, and at nice 10 it
        // was starved by busy neighbours (p99 from acknowledgement to webhook 30-110 ms instead
        // of 8-18 ms at 5,000 events/s; ingest at saturation about a tenth lower). Only the
        // state writer runs lower.
        let ws = self.state.workspace.clone();
        let (writer, batches) = sync_channel(1);
        let state = self.state.clone();
        let writer_thread = std::thread::Builder::new()
            .name(format!("state-writer-{ws}"))
            .spawn(move || write_batches(&state, batches));
        let mut pending = 0usize;
        let mut out = Output::default();
        let mut commits = commit_cadence();
        let mut docs = docs_cadence();
        loop {
            while let Ok(cmd) = commands.try_recv() {
                self.command(cmd, &mut pending, &writer, &mut out, &mut docs);
            }
            let seen = self.signal.current();
            // Read on from what was looked at, not only from what was applied, so an idle
            // workspace does not rescan a busy one's events.
            let after = self
                .read_engine()
                .position()
                .max(self.state.scanned.load(Ordering::SeqCst));
            // The head before the read: a short read means every event up to it was seen,
            // including other workspaces' (which this applier skips).
            let head = self.store.last_position().unwrap_or(0);
            let entries = match self.store.read_log(&ws, after, READ_CHUNK) {
                Ok(e) => {
                    if e.len() < READ_CHUNK {
                        self.state.scanned.fetch_max(head, Ordering::SeqCst);
                    }
                    e
                }
                Err(e) => {
                    tracing::error!(workspace = %ws, error = %e, "reading the log failed");
                    if self.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(500));
                    continue;
                }
            };
            if !entries.is_empty() {
                for chunk in entries.chunks(LOCK_CHUNK) {
                    let decided = out.decided.records.len();
                    {
                        let mut engine = self.write_engine();
                        let mut seg = self.write_segments();
                        let mut act = self.state.activation.write().expect("activation poisoned");
                        apply_and_activate(
                            &mut engine,
                            &mut seg,
                            &mut act,
                            chunk,
                            &mut out.audience,
                            &mut out.decided,
                        );
                    }
                    self.hand_over(&mut out, decided);
                }
                pending += entries.len();
            } else {
                // Idle: time still passes for sliding windows. A second behind the wall clock,
                // so that events received just before but not yet in the log are still
                // evaluated at their own receipt time, as a replay of the log would.
                self.activate_segment_changes(&mut out, |seg, audience| {
                    seg.advance(crate::state::now_millis() - IDLE_CLOCK_LAG_MS);
                    audience.take_from(seg);
                });
            }
            self.append_tick_when_due(&mut out);
            pending +=
                out.audience.rows.len() + out.decided.records.len() + self.state.reports_waiting();
            commits.took(self.state.took(&self.state.commit_took_ms));
            docs.took(self.state.took(&self.state.docs_took_ms));
            // Documents are rendered a slice at a time between events (see the engine's
            // snapshots), so writing them never stops the applier for long.
            if docs.due() && self.write_engine().start_docs() {
                docs.started();
            }
            let rendering = self.read_engine().docs_in_progress();
            let docs_ready = rendering && self.write_engine().render_docs(DOCS_PER_TURN);
            // While the writer is still busy with the last batch, changes keep accumulating
            // in the engine and go in the next, larger batch: the applier never waits for it.
            let writer_free = self.state.writer_queue.load(Ordering::SeqCst) == 0;
            if writer_free
                && (docs_ready || (pending > 0 && (pending >= COMMIT_EVENTS || commits.due())))
            {
                self.commit(&mut pending, &writer, false, &mut out);
                commits.started();
            }
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            // Wait only when caught up and no snapshot is half rendered.
            let snapshot_waiting = rendering && !docs_ready;
            if entries.len() < READ_CHUNK && !snapshot_waiting {
                // Idle: wake for new events, when what is pending is due for its commit, or
                // when a journey timer is due.
                let mut due = if pending > 0 {
                    commits.remaining()
                } else {
                    Duration::from_millis(200)
                };
                if let Some(t) = self.timer_in() {
                    due = due.min(t);
                }
                self.signal.wait(seen, due.max(Duration::from_millis(1)));
            }
        }
        // Stopping: what was applied is committed, documents included, before the thread ends.
        self.commit(&mut pending, &writer, true, &mut out);
        drop(writer);
        if let Ok(t) = writer_thread {
            let _ = t.join();
        }
    }

    /// Hands records decided since index `from` to their queues, and appends the trait
    /// writes journeys decided to the log (waiting for room: they must not be dropped).
    fn hand_over(&self, out: &mut Output, from: usize) {
        self.delivery
            .dispatch(&self.state.workspace, &out.decided.records[from..]);
        let appends = std::mem::take(&mut out.decided.appends);
        if appends.is_empty() {
            return;
        }
        let batch = AppendBatch {
            workspace_id: self.state.workspace.clone(),
            source_id: TICK_SOURCE.to_string(),
            events: appends,
        };
        if let Err(e) = self.store.append_blocking(batch, Box::new(|_| {})) {
            tracing::error!(workspace = %self.state.workspace, error = %e, "appending journey trait writes failed");
        }
    }

    fn read_engine(&self) -> std::sync::RwLockReadGuard<'_, Engine> {
        self.state.engine.read().expect("engine poisoned")
    }

    fn write_engine(&self) -> std::sync::RwLockWriteGuard<'_, Engine> {
        self.state.engine.write().expect("engine poisoned")
    }

    fn write_segments(&self) -> std::sync::RwLockWriteGuard<'_, Segmenter> {
        self.state.segments.write().expect("segments poisoned")
    }

    /// Hands what changed since the last commit to the writer thread, which commits it while
    /// this thread goes on applying.
    fn commit(
        &self,
        pending: &mut usize,
        writer: &SyncSender<WriterJob>,
        with_docs: bool,
        out: &mut Output,
    ) {
        self.commit_then(pending, writer, with_docs, out, None)
    }

    /// [`Worker::commit`], then `reply` once the batch is written.
    fn commit_then(
        &self,
        pending: &mut usize,
        writer: &SyncSender<WriterJob>,
        with_docs: bool,
        out: &mut Output,
        reply: Option<Reply>,
    ) {
        let drained = self.write_engine().drain_changes(with_docs);
        let mut batch = self.read_engine().batch_of(drained);
        out.audience.drain_into(
            &self.state.segments.read().expect("segments poisoned"),
            &mut batch,
        );
        batch.activation.records = std::mem::take(&mut out.decided.records);
        batch.activation.journey_rows = self
            .state
            .activation
            .write()
            .expect("activation poisoned")
            .journeys
            .take_dirty();
        {
            let mut reports = self.state.reports.lock().expect("reports poisoned");
            batch.activation.attempts = std::mem::take(&mut reports.attempts);
            batch.activation.requeued = std::mem::take(&mut reports.requeued);
        }
        *pending = 0;
        if !batch.documents
            && batch.is_empty()
            && batch.position <= self.state.committed.load(Ordering::SeqCst)
        {
            if let Some(r) = reply {
                let _ = r.send(Ok(()));
            }
            return;
        }
        self.state.writer_queue.fetch_add(1, Ordering::SeqCst);
        if writer.send((self.state.db(), batch, reply)).is_err() {
            tracing::error!(workspace = %self.state.workspace, "the state writer stopped");
        }
    }

    /// Derives a fresh engine and state file from the whole log, then swaps them in.
    fn rebuild(&self, rules: IdentityRules, forget: &[i64]) -> Result<(), ApplierError> {
        let ws = &self.state.workspace;
        let started = Instant::now();
        let db = ProfileDb::create_next(&self.dir, ws)?;
        let mut engine = Engine::new(rules);
        // Without definitions the replay only loads events and traits; memberships are
        // evaluated once at the end and compared with the current ones.
        let mut seg = Segmenter::new();
        // Only up to what the live engine applied: what comes after is applied by the normal
        // loop once this state is in place, and activated there (a rebuild activates nothing).
        // This thread is the only one applying, so the live position cannot move meanwhile.
        let upto = self.read_engine().position();
        replay_into(
            self.store.as_ref(),
            ws,
            &mut engine,
            &mut seg,
            &db,
            Some(upto),
        )?;
        let mut live = self.write_engine();
        let mut live_seg = self.write_segments();
        engine.skip_to(upto);
        seg.load_clock(live_seg.now());
        seg.init_registry(live_seg.registry().clone(), batch_threads());
        seg.record_rebuild(&live_seg.member_keys());
        // The last batches for the old file must be in it before its history is copied.
        while self.state.writer_queue.load(Ordering::SeqCst) > 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
        db.copy_audience_history(&self.state.db(), forget)?;
        db.mark_complete()?;
        {
            let mut current = self.state.db.write().expect("state lock poisoned");
            std::mem::replace(&mut *current, Arc::new(db)).retire();
            self.state
                .committed
                .store(engine.position(), Ordering::SeqCst);
        }
        if !forget.is_empty() {
            // Journey state as copied, without the forgotten profiles (the live engine's rows
            // were all committed before the copy).
            let mut act = self.state.activation.write().expect("activation poisoned");
            let defs = act.journeys.definitions().to_vec();
            let mut journeys = tessera_core::activation::journey::Journeys::new();
            journeys.set_definitions(defs);
            journeys
                .restore(self.state.db().journey_state()?)
                .map_err(|e| StoreError::InvalidState(format!("journey state: {e}")))?;
            act.journeys = journeys;
            self.delivery.forget(ws, forget);
        }
        *live = engine;
        *live_seg = seg;
        drop(live_seg);
        drop(live);
        tracing::info!(workspace = %ws, took_ms = started.elapsed().as_millis() as u64, "profile state rebuilt from the log");
        Ok(())
    }
}

/// Where the state files of workspaces live inside a data directory.
pub fn state_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("profiles")
}
