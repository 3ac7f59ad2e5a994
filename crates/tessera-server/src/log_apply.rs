//! Applying the log without activation: rebuilds (after a split or a rules change) and
//! `tessera replay` re-derive profiles and audiences from the log, while what destinations
//! were sent, and journey state, stay as they were.

use crate::activation::TICK_SOURCE;
use tessera_core::identity::{Engine, EventFacts};
use tessera_core::segment::{apply_event, Segmenter};
use tessera_store::{LogEntry, ProfileDb, Store, StoreError};

/// Events read from the log per query.
const READ_CHUNK: usize = 4096;
/// A commit of a replay every this many events.
const COMMIT_EVENTS: usize = crate::applier::COMMIT_EVENTS;

/// Applies log entries to an engine; an unreadable body is logged and skipped (the log only
/// holds validated messages, so this means a body written by something else).
pub fn apply_entries(engine: &mut Engine, seg: &mut Segmenter, entries: &[LogEntry]) {
    for e in entries {
        if e.source_id == TICK_SOURCE {
            // Timer ticks only matter to journeys, which rebuilds do not re-run.
            engine.skip_to(e.position);
            seg.advance(e.received_at);
            continue;
        }
        match EventFacts::parse(e.position, e.timestamp, &e.source_id, &e.body) {
            Ok(f) => {
                apply_event(engine, seg, &f, e.received_at);
            }
            Err(err) => {
                tracing::warn!(position = e.position, error = %err.reason, "skipping an unreadable event");
                engine.skip_to(e.position);
                seg.advance(e.received_at);
            }
        }
    }
}

/// Applies the log from the engine's position to its head, committing into `db` as it goes.
pub fn replay_into(
    store: &dyn Store,
    workspace: &str,
    engine: &mut Engine,
    seg: &mut Segmenter,
    db: &ProfileDb,
) -> Result<(), StoreError> {
    let mut pending = 0;
    loop {
        let entries = store.read_log(workspace, engine.position(), READ_CHUNK)?;
        if entries.is_empty() {
            break;
        }
        apply_entries(engine, seg, &entries);
        pending += entries.len();
        if pending >= COMMIT_EVENTS {
            let drained = engine.drain_changes(false);
            db.commit(&engine.batch_of(drained))?;
            pending = 0;
        }
    }
    db.commit(&engine.take_changes())
}
