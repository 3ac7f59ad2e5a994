//! Applying the log without activation: rebuilds (after a split or a rules change) and
//! `tessera replay` re-derive profiles and audiences from the log, while what destinations
//! were sent, and journey state, stay as they were.

use crate::activation::apply_entries;
use tessera_core::identity::Engine;
use tessera_core::segment::Segmenter;
use tessera_store::{ProfileDb, Store, StoreError};

/// Events read from the log per query.
const READ_CHUNK: usize = 4096;
/// A commit of a replay every this many events.
const COMMIT_EVENTS: usize = crate::applier::COMMIT_EVENTS;

/// Applies the log from the engine's position to its head (or up to `upto`), committing into
/// `db` as it goes.
pub fn replay_into(
    store: &dyn Store,
    workspace: &str,
    engine: &mut Engine,
    seg: &mut Segmenter,
    db: &ProfileDb,
    upto: Option<i64>,
) -> Result<(), StoreError> {
    let mut pending = 0;
    loop {
        let mut entries = store.read_log(workspace, engine.position(), READ_CHUNK)?;
        let end = upto.unwrap_or(i64::MAX);
        let more = entries.last().is_some_and(|e| e.position < end);
        entries.retain(|e| e.position <= end);
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
        if !more {
            break;
        }
    }
    db.commit(&engine.take_changes())
}
