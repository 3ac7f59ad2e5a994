//! Tests of activation's tables in the state file: records stored once by key, delivery
//! attempts moving a record's status, replays, journey state rows, copying into a rebuilt
//! generation, and the purge of delivered records.

use super::*;
use tessera_core::activation::{ActivationBatch, DeliveryAttempt, OutboxRecord};

struct Dir(std::path::PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir(tag: &str) -> Dir {
    let p = std::env::temp_dir().join(format!("tessera-outbox-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    Dir(p)
}

fn record(key: &str, position: i64, at: Millis) -> OutboxRecord {
    OutboxRecord {
        destination: "dst_a".into(),
        key: key.into(),
        position,
        profile: Some(7),
        kind: RecordKind::Event,
        payload: format!("{{\"n\":{position}}}"),
        at,
    }
}

fn attempt(key: &str, n: u32, status: Option<u16>, outcome: AttemptOutcome) -> DeliveryAttempt {
    DeliveryAttempt {
        destination: "dst_a".into(),
        key: key.into(),
        attempt: n,
        at: 1_000 + n as i64,
        status,
        outcome,
        latency_ms: 3,
        response: "ok".into(),
        error: status.is_none().then(|| "connection refused".into()),
    }
}

fn commit(db: &ProfileDb, position: i64, a: ActivationBatch) {
    let b = CommitBatch {
        position,
        activation: a,
        ..Default::default()
    };
    db.commit(&b).unwrap();
}

#[test]
fn records_are_stored_once_and_attempts_move_their_status() {
    let d = dir("status");
    let db = ProfileDb::open_latest(&d.0, "ws").unwrap();
    let a = ActivationBatch {
        records: vec![record("k1", 1, 10), record("k2", 2, 20)],
        // The first record's attempt comes in the very commit that stores it.
        attempts: vec![attempt("k1", 1, Some(200), AttemptOutcome::Delivered)],
        ..Default::default()
    };
    commit(&db, 2, a);
    // A restart decides k2 again (same key): stored once, its status kept.
    let again = ActivationBatch {
        records: vec![record("k2", 2, 20)],
        attempts: vec![
            attempt("k2", 1, None, AttemptOutcome::Retry),
            attempt("k2", 2, Some(400), AttemptOutcome::Dead),
        ],
        ..Default::default()
    };
    commit(&db, 2, again);
    assert_eq!(db.pending_records("dst_a", 0, 10).unwrap(), vec![]);
    let dead = db.dead_letters("dst_a", 0, 10).unwrap();
    assert_eq!(dead.len(), 1);
    let k2 = &dead[0];
    assert_eq!(
        (k2.key.as_str(), k2.attempts, k2.last_status),
        ("k2", 2, Some(400))
    );
    assert_eq!(k2.first_attempt_at, Some(1_001));
    assert_eq!(
        db.outbox_counts("dst_a").unwrap(),
        OutboxCounts {
            pending: 0,
            delivered: 1,
            dead: 1,
            skipped: 0
        }
    );
    let log = db.delivery_attempts("dst_a", None, None, 10).unwrap();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].outcome, "dead", "newest first");
    assert_eq!(
        db.delivery_attempts("dst_a", Some("k1"), None, 10)
            .unwrap()
            .len(),
        1
    );
    // A late success of an attempt recorded after delivery never turns it back.
    commit(
        &db,
        3,
        ActivationBatch {
            attempts: vec![attempt("k1", 2, None, AttemptOutcome::Retry)],
            ..Default::default()
        },
    );
    assert_eq!(
        db.outbox_record("dst_a", "k1").unwrap().unwrap().status,
        "delivered"
    );
    // Nor does a late retry of a dead letter (lanes restarted meanwhile) revive it: only a
    // replay does.
    commit(
        &db,
        3,
        ActivationBatch {
            attempts: vec![attempt("k2", 3, Some(503), AttemptOutcome::Retry)],
            ..Default::default()
        },
    );
    assert_eq!(
        db.outbox_record("dst_a", "k2").unwrap().unwrap().status,
        "dead"
    );
}

#[test]
fn replays_make_dead_letters_pending_with_a_new_window() {
    let d = dir("replay");
    let db = ProfileDb::open_latest(&d.0, "ws").unwrap();
    commit(
        &db,
        3,
        ActivationBatch {
            records: vec![record("a", 1, 10), record("b", 2, 20), record("c", 3, 30)],
            attempts: ["a", "b", "c"]
                .iter()
                .map(|k| attempt(k, 1, Some(410), AttemptOutcome::Dead))
                .collect(),
            ..Default::default()
        },
    );
    let f = DeadLetterFilter {
        since: Some(15),
        ..Default::default()
    };
    let chosen = db.dead_letters_matching("dst_a", &f, 100).unwrap();
    assert_eq!(
        chosen.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
        ["b", "c"]
    );
    let by_key = DeadLetterFilter {
        keys: Some(vec!["a".into()]),
        ..Default::default()
    };
    assert_eq!(
        db.dead_letters_matching("dst_a", &by_key, 100)
            .unwrap()
            .len(),
        1
    );
    // Replayed, and in the same commit tried again and delivered: delivered.
    commit(
        &db,
        4,
        ActivationBatch {
            requeued: vec![("dst_a".into(), "b".into()), ("dst_a".into(), "c".into())],
            attempts: vec![attempt("b", 2, Some(200), AttemptOutcome::Delivered)],
            ..Default::default()
        },
    );
    let c = db.outbox_record("dst_a", "c").unwrap().unwrap();
    assert_eq!((c.status.as_str(), c.first_attempt_at), ("pending", None));
    assert_eq!(
        db.outbox_record("dst_a", "b").unwrap().unwrap().status,
        "delivered"
    );
    assert_eq!(db.pending_records("dst_a", 0, 10).unwrap().len(), 1);
}

#[test]
fn journey_state_and_the_outbox_survive_a_rebuild_and_delivered_records_are_purged() {
    let d = dir("rebuild");
    let db = ProfileDb::open_latest(&d.0, "ws").unwrap();
    commit(
        &db,
        2,
        ActivationBatch {
            records: vec![record("old", 1, 10), record("new", 2, 5_000)],
            attempts: vec![attempt("old", 1, Some(200), AttemptOutcome::Delivered)],
            journey_rows: vec![
                ("i/j/1".into(), Some("{\"step\":\"wait\"}".into())),
                ("m/j".into(), Some("{\"entered\":1}".into())),
            ],
            ..Default::default()
        },
    );
    commit(
        &db,
        3,
        ActivationBatch {
            journey_rows: vec![("m/j".into(), None)],
            ..Default::default()
        },
    );
    assert_eq!(
        db.journey_state().unwrap(),
        vec![("i/j/1".to_string(), "{\"step\":\"wait\"}".to_string())]
    );
    let next = ProfileDb::create_next(&d.0, "ws").unwrap();
    next.copy_audience_history(&db, &[]).unwrap();
    assert_eq!(next.journey_state().unwrap(), db.journey_state().unwrap());
    assert_eq!(next.pending_records("dst_a", 0, 10).unwrap().len(), 1);
    commit(
        &next,
        4,
        ActivationBatch {
            records: vec![record("gone", 3, 30)],
            attempts: vec![attempt("gone", 1, Some(400), AttemptOutcome::Dead)],
            ..Default::default()
        },
    );
    assert_eq!(next.purge_delivered(2_000).unwrap(), 1);
    assert_eq!(next.outbox_record("dst_a", "old").unwrap(), None);
    // The dead letter and the attempt that explains it stay.
    let kept = next.delivery_attempts("dst_a", None, None, 10).unwrap();
    assert_eq!(
        kept.iter().map(|a| a.key.as_str()).collect::<Vec<_>>(),
        ["gone"]
    );
    assert!(next.outbox_record("dst_a", "new").unwrap().is_some());
}
