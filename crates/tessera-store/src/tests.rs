//! Runs the conformance suite on the SQLite backend, plus SQLite-specific checks: persistence
//! across reopen, schema versioning, and overload when the writer cannot keep up.

use crate::conformance::{self, append_wait, event, workspace};
use crate::{SqliteOptions, SqliteStore, Store, StoreError};
use std::path::PathBuf;
use tessera_core::MessageType;

struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir(tag: &str) -> Dir {
    let p = std::env::temp_dir().join(format!("tessera-store-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    Dir(p)
}

fn open(d: &Dir) -> SqliteStore {
    SqliteStore::open(&d.0, SqliteOptions::default()).unwrap()
}

macro_rules! sqlite_conformance {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let d = dir(stringify!($name));
            conformance::$name(&open(&d));
        }
    )*};
}

sqlite_conformance!(
    appends_are_ordered_and_deduplicated_per_workspace,
    listing_filters_and_pages_newest_first,
    registry_round_trips,
    shutdown_flushes_and_refuses_new_appends,
    read_log_returns_one_workspace_oldest_first,
    events_at_returns_positions_in_the_order_given,
    identity_rules_round_trip_per_workspace,
    definitions_keep_every_version_per_workspace,
    privacy_requests_suppressions_and_deletions,
    sources_keep_their_tracking_plan_mode,
    plan_violations_add_up_per_day_and_key,
);

#[test]
fn the_log_survives_reopening() {
    let d = dir("reopen");
    let store = open(&d);
    workspace(&store, "w");
    append_wait(
        &store,
        "w",
        "s",
        vec![event("m1", MessageType::Track, Some("u"), 1)],
    )
    .unwrap();
    drop(store);
    let store = open(&d);
    assert_eq!(
        store
            .list_events("w", &Default::default(), 10)
            .unwrap()
            .len(),
        1
    );
    let again = append_wait(
        &store,
        "w",
        "s",
        vec![event("m1", MessageType::Track, Some("u"), 2)],
    )
    .unwrap();
    assert_eq!(again.positions, vec![None], "dedup spans restarts");
}

#[test]
fn migration_6_gives_existing_sources_the_allow_mode() {
    let d = dir("migrate6");
    let store = open(&d);
    workspace(&store, "w");
    let src = crate::Source {
        id: "src_old".into(),
        workspace_id: "w".into(),
        name: "Old".into(),
        write_key: "wk_old".into(),
        enabled: true,
        tracking_plan_mode: tessera_core::privacy::plan::Mode::Block,
        created_at: 1,
        updated_at: 1,
    };
    store.create_source(&src).unwrap();
    drop(store);
    // Back to what schema 5 looked like, with the source in it.
    let conn = rusqlite::Connection::open(d.0.join("tessera.db")).unwrap();
    conn.execute_batch(
        "ALTER TABLE sources DROP COLUMN tracking_plan_mode; DROP TABLE plan_violations;
         PRAGMA user_version = 5;",
    )
    .unwrap();
    drop(conn);
    let store = open(&d);
    assert_eq!(
        store.get_source("w", "src_old").unwrap(),
        Some(crate::Source {
            tracking_plan_mode: tessera_core::privacy::plan::Mode::Allow,
            ..src
        })
    );
    assert!(store.violation_counts("w", 0, 100_000).unwrap().is_empty());
}

#[test]
fn a_newer_schema_is_refused() {
    let d = dir("schema");
    drop(open(&d));
    let conn = rusqlite::Connection::open(d.0.join("tessera.db")).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = SqliteStore::open(&d.0, SqliteOptions::default())
        .err()
        .unwrap();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
}

#[test]
fn a_full_queue_answers_overloaded_and_loses_nothing() {
    let d = dir("overload");
    let store = SqliteStore::open(
        &d.0,
        SqliteOptions {
            queue_depth: 1,
            commit_observer: None,
            dedup_capacity: 0,
        },
    )
    .unwrap();
    workspace(&store, "w");
    // Another connection holds the write lock, so the writer's next commit has to wait.
    let blocker = rusqlite::Connection::open(d.0.join("tessera.db")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut queued = 0;
    let mut overloaded = false;
    for i in 0..10 {
        let tx = tx.clone();
        let batch = crate::AppendBatch {
            workspace_id: "w".into(),
            source_id: "s".into(),
            events: vec![event(&format!("m{i}"), MessageType::Track, Some("u"), 1)],
        };
        match store.append(batch, Box::new(move |r| tx.send(r.is_ok()).unwrap())) {
            Ok(()) => queued += 1,
            Err(StoreError::Overloaded) => {
                overloaded = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(overloaded, "a writer that cannot commit must push back");
    blocker.execute_batch("COMMIT").unwrap();
    let committed = (0..queued).filter(|_| rx.recv().unwrap()).count();
    assert_eq!(
        committed, queued,
        "every queued append is committed once the lock is free"
    );
}
