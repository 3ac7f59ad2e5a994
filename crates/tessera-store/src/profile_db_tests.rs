//! Tests of a workspace's derived profile state: generations and their files, what a commit
//! writes and what `load` gives back to a restart, absorbed profiles and re-derived rows, and
//! the paged reads of the Profile API.

use super::*;
use std::sync::Arc;
use tessera_core::identity::AbsorbedRow;

struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh temporary directory; `profiles` inside it is left for the code under test to create.
fn dir(tag: &str) -> Dir {
    let p = std::env::temp_dir().join(format!("tessera-profile-db-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    Dir(p)
}

impl Dir {
    fn profiles(&self) -> PathBuf {
        self.0.join("profiles")
    }
    fn generation(&self, workspace: &str, g: u64) -> PathBuf {
        self.profiles().join(file_name(workspace, g))
    }
}

fn exists(path: &Path) -> bool {
    path.exists()
}

/// The path with `-wal` or `-shm` appended.
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

fn batch(position: i64, documents: bool) -> CommitBatch {
    CommitBatch {
        position,
        documents,
        ..CommitBatch::default()
    }
}

fn docs(position: i64, profiles: &[(i64, &str)]) -> CommitBatch {
    CommitBatch {
        profiles: profiles.iter().map(|&(k, d)| (k, d.to_string())).collect(),
        ..batch(position, true)
    }
}

fn hist(profile: i64, position: i64, key: &str, value: &str, ts: i64) -> HistoryRow {
    HistoryRow {
        profile,
        position,
        key: key.into(),
        value: value.into(),
        source: "src_1".into(),
        ts,
    }
}

fn absorbed_row(profile: i64, survivor: i64, live: i64, position: i64) -> AbsorbedRow {
    AbsorbedRow {
        profile,
        survivor,
        live,
        position,
    }
}

fn merge(position: i64, survivor: i64, absorbed: &[i64], ids: &[(&str, &str)]) -> MergeRow {
    MergeRow {
        position,
        ts: position * 100,
        survivor,
        absorbed: absorbed.to_vec(),
        identifiers: ids
            .iter()
            .map(|&(t, v)| (t.to_string(), v.to_string()))
            .collect(),
    }
}

fn owned(pairs: &[(i64, &str)]) -> Vec<(i64, String)> {
    pairs.iter().map(|&(k, d)| (k, d.to_string())).collect()
}

/// Rows of a table, counted on the writer connection.
fn count(db: &ProfileDb, sql: &str) -> i64 {
    let c = db.writer.lock().unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn open_latest_on_an_empty_dir_creates_generation_one_complete_at_zero() {
    let d = dir("empty");
    let db = ProfileDb::open_latest(&d.profiles(), "w").unwrap();
    assert_eq!(db.path(), d.generation("w", 1));
    assert!(exists(db.path()));
    assert!(db.is_complete().unwrap(), "a new state is complete");
    assert_eq!(db.position().unwrap(), 0);
    let stored = db.load().unwrap();
    assert_eq!(stored.position, 0);
    assert!(stored.profiles.is_empty() && stored.absorbed.is_empty());
    assert!(stored.accounts.is_empty());
    assert_eq!(generations(&d.profiles(), "w"), vec![1]);

    db.commit(&docs(4, &[(1, "p1")])).unwrap();
    drop(db);
    let again = ProfileDb::open_latest(&d.profiles(), "w").unwrap();
    assert_eq!(
        again.path(),
        d.generation("w", 1),
        "reopened, not recreated"
    );
    assert_eq!(again.position().unwrap(), 4);
    assert_eq!(again.load().unwrap().profiles, owned(&[(1, "p1")]));
}

#[test]
fn a_new_generation_counts_only_once_complete() {
    let d = dir("generations");
    let dir = d.profiles();
    let g1 = ProfileDb::open_latest(&dir, "w").unwrap();
    g1.commit(&docs(5, &[(1, "old")])).unwrap();

    let g2 = ProfileDb::create_next(&dir, "w").unwrap();
    assert_eq!(g2.path(), d.generation("w", 2));
    assert!(!g2.is_complete().unwrap(), "a rebuild starts incomplete");
    assert_eq!(g2.position().unwrap(), 0);
    g2.commit(&docs(9, &[(1, "new")])).unwrap();
    drop(g2);
    drop(g1);

    // An unfinished rebuild is abandoned: the complete generation opens, the other goes.
    let db = ProfileDb::open_latest(&dir, "w").unwrap();
    assert_eq!(db.path(), d.generation("w", 1));
    assert_eq!(db.position().unwrap(), 5);
    assert_eq!(db.load().unwrap().profiles, owned(&[(1, "old")]));
    assert!(!exists(&d.generation("w", 2)));
    assert_eq!(generations(&dir, "w"), vec![1]);

    let g2 = ProfileDb::create_next(&dir, "w").unwrap();
    assert_eq!(g2.path(), d.generation("w", 2));
    g2.commit(&docs(9, &[(1, "new")])).unwrap();
    g2.mark_complete().unwrap();
    assert!(g2.is_complete().unwrap());
    drop(g2);
    drop(db);

    let db = ProfileDb::open_latest(&dir, "w").unwrap();
    assert_eq!(
        db.path(),
        d.generation("w", 2),
        "the newest complete generation"
    );
    assert_eq!(db.position().unwrap(), 9);
    assert_eq!(db.load().unwrap().profiles, owned(&[(1, "new")]));
    let g1 = d.generation("w", 1);
    for f in [g1.clone(), sidecar(&g1, "-wal"), sidecar(&g1, "-shm")] {
        assert!(!exists(&f), "{} should be gone", f.display());
    }
    assert_eq!(generations(&dir, "w"), vec![2]);
    assert_eq!(
        ProfileDb::create_next(&dir, "w").unwrap().path(),
        d.generation("w", 3),
        "generations keep counting up"
    );
}

#[test]
fn a_file_of_another_format_or_no_database_is_ignored() {
    let d = dir("format");
    let dir = d.profiles();
    let g1 = ProfileDb::open_latest(&dir, "w").unwrap();
    g1.commit(&docs(5, &[(1, "kept")])).unwrap();
    drop(g1);
    let g2 = ProfileDb::create_next(&dir, "w").unwrap();
    g2.commit(&docs(9, &[(1, "other format")])).unwrap();
    g2.mark_complete().unwrap();
    drop(g2);
    let conn = Connection::open(d.generation("w", 2)).unwrap();
    conn.pragma_update(None, "user_version", FORMAT + 1)
        .unwrap();
    drop(conn);
    std::fs::write(d.generation("w", 3), b"not a database at all").unwrap();
    // Another workspace's file is none of this workspace's business.
    drop(ProfileDb::open_latest(&dir, "v").unwrap());

    let db = ProfileDb::open_latest(&dir, "w").unwrap();
    assert_eq!(db.path(), d.generation("w", 1));
    assert_eq!(db.position().unwrap(), 5);
    assert_eq!(db.load().unwrap().profiles, owned(&[(1, "kept")]));
    assert_eq!(
        generations(&dir, "w"),
        vec![1],
        "unreadable generations removed"
    );
    assert!(exists(&d.generation("v", 1)));
    drop(db);

    // With nothing readable left, a fresh state replaces the file.
    let conn = Connection::open(d.generation("w", 1)).unwrap();
    conn.pragma_update(None, "user_version", FORMAT + 1)
        .unwrap();
    drop(conn);
    let db = ProfileDb::open_latest(&dir, "w").unwrap();
    assert_eq!(db.path(), d.generation("w", 1));
    assert!(db.is_complete().unwrap());
    assert_eq!(db.position().unwrap(), 0);
    assert!(db.load().unwrap().profiles.is_empty());
}

#[test]
fn create_replaces_whatever_was_at_the_path() {
    let d = dir("create");
    let path = d.0.join("state.db");
    let db = ProfileDb::create(&path).unwrap();
    db.commit(&docs(7, &[(1, "p")])).unwrap();
    db.mark_complete().unwrap();
    drop(db);
    let db = ProfileDb::create(&path).unwrap();
    assert!(!db.is_complete().unwrap());
    assert_eq!(db.position().unwrap(), 0);
    assert!(db.load().unwrap().profiles.is_empty());
}

#[test]
fn documents_only_count_from_a_batch_that_carries_them() {
    let d = dir("documents");
    let db = ProfileDb::open_latest(&d.profiles(), "w").unwrap();
    db.commit(&CommitBatch {
        accounts: owned(&[(100, "acc v1")]),
        ..docs(10, &[(1, "p1 v1"), (2, "p2 v1")])
    })
    .unwrap();
    let stored = db.load().unwrap();
    assert_eq!(stored.position, 10);
    assert_eq!(stored.profiles, owned(&[(1, "p1 v1"), (2, "p2 v1")]));
    assert_eq!(stored.accounts, owned(&[(100, "acc v1")]));

    db.commit(&CommitBatch {
        assignments: vec![(1, 15), (2, 20)],
        history: vec![hist(1, 15, "plan", r#""pro""#, 1_500)],
        ..batch(20, false)
    })
    .unwrap();
    assert_eq!(db.position().unwrap(), 20, "rows are written up to 20");
    let stored = db.load().unwrap();
    assert_eq!(stored.position, 10, "documents still as of 10");
    assert_eq!(stored.profiles, owned(&[(1, "p1 v1"), (2, "p2 v1")]));
    assert_eq!(stored.accounts, owned(&[(100, "acc v1")]));
    assert_eq!(db.timeline(1, None, 10).unwrap(), vec![15]);

    db.commit(&CommitBatch {
        accounts: owned(&[(100, "acc v2"), (101, "acc2 v1")]),
        ..docs(30, &[(1, "p1 v2")])
    })
    .unwrap();
    assert_eq!(db.position().unwrap(), 30);
    let stored = db.load().unwrap();
    assert_eq!(stored.position, 30);
    assert_eq!(
        stored.profiles,
        owned(&[(1, "p1 v2"), (2, "p2 v1")]),
        "unchanged documents stay"
    );
    assert_eq!(stored.accounts, owned(&[(100, "acc v2"), (101, "acc2 v1")]));
    assert_eq!(db.profile_docs().unwrap(), stored.profiles);
}

#[test]
fn load_gives_the_documents_and_merges_as_of_the_documents_position() {
    let d = dir("load-absorbed");
    let db = ProfileDb::open_latest(&d.profiles(), "w").unwrap();
    db.commit(&docs(10, &[(1, "p1"), (2, "p2"), (3, "p3"), (4, "p4")]))
        .unwrap();
    // 3 joins 2 at 15, then 2 (with 3) joins 1 at 18; the documents follow later.
    db.commit(&CommitBatch {
        absorbed: vec![absorbed_row(3, 2, 2, 15)],
        merges: vec![merge(15, 2, &[3], &[("email", "a@x")])],
        ..batch(16, false)
    })
    .unwrap();
    db.commit(&CommitBatch {
        absorbed: vec![absorbed_row(2, 1, 1, 18)],
        merges: vec![merge(18, 1, &[2], &[("user_id", "u1")])],
        ..batch(20, false)
    })
    .unwrap();
    let stored = db.load().unwrap();
    assert_eq!(stored.position, 10);
    assert_eq!(
        stored.profiles,
        owned(&[(1, "p1"), (2, "p2"), (3, "p3"), (4, "p4")]),
        "profiles merged away after 10 were still live at 10"
    );
    assert!(stored.absorbed.is_empty(), "no merge at or before 10");
    assert_eq!(
        db.absorbed(3).unwrap(),
        Some(AbsorbedInfo {
            survivor: 2,
            live: 1,
            position: 15
        }),
        "a profile absorbed into one later absorbed lives in the last survivor"
    );

    // Documents as of 25, with 4 merged into 1 exactly at 25.
    db.commit(&CommitBatch {
        absorbed: vec![absorbed_row(4, 1, 1, 25)],
        merges: vec![merge(25, 1, &[4], &[("email", "b@x")])],
        ..docs(25, &[(1, "p1 merged")])
    })
    .unwrap();
    let stored = db.load().unwrap();
    assert_eq!(stored.position, 25);
    assert_eq!(stored.profiles, owned(&[(1, "p1 merged")]));
    assert_eq!(
        stored.absorbed,
        vec![(2, 1), (3, 2), (4, 1)],
        "(absorbed, survivor at merge time)"
    );
    assert_eq!(db.profile_docs().unwrap(), owned(&[(1, "p1 merged")]));
}

#[test]
fn load_filters_documents_and_merges_by_its_own_position() {
    // The stored rows may run ahead of what the documents reflect, e.g. documents
    // written for an earlier position after a restart: `load` must not mix the two.
    let d = dir("load-filter");
    let db = ProfileDb::open_latest(&d.profiles(), "w").unwrap();
    db.commit(&docs(10, &[(1, "p1"), (2, "p2"), (3, "p3")]))
        .unwrap();
    {
        let c = db.writer.lock().unwrap();
        c.execute_batch(
            "INSERT INTO absorbed VALUES (2, 1, 1, 10);
             INSERT INTO absorbed VALUES (3, 1, 1, 11);",
        )
        .unwrap();
    }
    let stored = db.load().unwrap();
    assert_eq!(
        stored.profiles,
        owned(&[(1, "p1"), (3, "p3")]),
        "absorbed at 10 excluded, absorbed at 11 kept"
    );
    assert_eq!(stored.absorbed, vec![(2, 1)]);
}

#[test]
fn absorbed_rows_move_and_re_derived_rows_are_written_once() {
    let d = dir("absorb");
    let db = ProfileDb::open_latest(&d.profiles(), "w").unwrap();
    db.commit(&CommitBatch {
        assignments: vec![(1, 1), (2, 2), (2, 3), (1, 4)],
        history: vec![
            hist(1, 1, "name", r#""Ann""#, 100),
            hist(2, 2, "email", r#""a@x""#, 200),
            hist(2, 3, "plan", r#""free""#, 300),
        ],
        ..docs(10, &[(1, "p1"), (2, "p2")])
    })
    .unwrap();
    // Event 11 lands on 2, event 12 merges 2 into 1; rows come resolved to the live profile.
    let merge_batch = CommitBatch {
        absorbed: vec![absorbed_row(2, 1, 1, 12)],
        assignments: vec![(1, 11), (1, 12)],
        history: vec![hist(1, 11, "plan", r#""pro""#, 1_100)],
        merges: vec![merge(12, 1, &[2], &[("email", "a@x"), ("user_id", "u1")])],
        ..batch(20, false)
    };
    db.commit(&merge_batch).unwrap();
    assert_eq!(db.timeline(1, None, 100).unwrap(), vec![12, 11, 4, 3, 2, 1]);
    assert!(db.timeline(2, None, 100).unwrap().is_empty());
    assert!(db.history(2, None, 100).unwrap().is_empty());
    let history = db.history(1, None, 100).unwrap();
    assert_eq!(
        history
            .iter()
            .map(|h| (h.profile, h.position, h.key.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (1, 11, "plan"),
            (1, 3, "plan"),
            (1, 2, "email"),
            (1, 1, "name")
        ]
    );

    // A restart resumes from the documents (position 10) and derives 11..20 again: first
    // event 11 for profile 2, whose rows already moved to 1, then the merge once more.
    db.commit(&CommitBatch {
        assignments: vec![(2, 11)],
        history: vec![hist(2, 11, "plan", r#""pro""#, 1_100)],
        ..batch(11, false)
    })
    .unwrap();
    db.commit(&merge_batch).unwrap();

    assert_eq!(db.timeline(1, None, 100).unwrap(), vec![12, 11, 4, 3, 2, 1]);
    assert!(db.timeline(2, None, 100).unwrap().is_empty());
    assert_eq!(
        count(&db, "SELECT count(*) FROM timeline"),
        6,
        "one row per event"
    );
    assert_eq!(db.history(1, None, 100).unwrap(), history);
    assert_eq!(count(&db, "SELECT count(*) FROM trait_history"), 4);
    assert_eq!(db.merges(1).unwrap(), merge_batch.merges);
    assert_eq!(
        db.absorbed(2).unwrap(),
        Some(AbsorbedInfo {
            survivor: 1,
            live: 1,
            position: 12
        })
    );
    assert_eq!(db.position().unwrap(), 20);
}

#[test]
fn timeline_pages_newest_first() {
    let d = dir("timeline");
    let db = ProfileDb::open_latest(&d.profiles(), "w").unwrap();
    db.commit(&CommitBatch {
        assignments: (1..=7)
            .map(|p| (1, p * 10))
            .chain([(2, 15), (2, 45)])
            .collect(),
        ..batch(70, false)
    })
    .unwrap();
    assert_eq!(db.timeline(1, None, 3).unwrap(), vec![70, 60, 50]);
    assert_eq!(db.timeline(1, Some(50), 3).unwrap(), vec![40, 30, 20]);
    assert_eq!(db.timeline(1, Some(20), 3).unwrap(), vec![10]);
    assert!(db.timeline(1, Some(10), 3).unwrap().is_empty());
    assert_eq!(
        db.timeline(1, Some(45), 10).unwrap(),
        vec![40, 30, 20, 10],
        "a cursor between positions"
    );
    assert_eq!(db.timeline(2, None, 10).unwrap(), vec![45, 15]);
    assert!(db.timeline(3, None, 10).unwrap().is_empty());
}

#[test]
fn history_pages_cover_every_row_when_a_position_has_several_keys() {
    let d = dir("history");
    let db = ProfileDb::open_latest(&d.profiles(), "w").unwrap();
    db.commit(&CommitBatch {
        history: vec![
            hist(1, 1, "m", "1", 10),
            hist(1, 3, "z", "2", 30),
            hist(1, 3, "a", "3", 30),
            hist(1, 5, "c", "4", 50),
            hist(1, 5, "a", "5", 50),
            hist(1, 5, "b", "6", 50),
            hist(2, 5, "a", "other", 50),
        ],
        ..batch(5, false)
    })
    .unwrap();
    let expected = vec![(5, "a"), (5, "b"), (5, "c"), (3, "a"), (3, "z"), (1, "m")];
    let all = db.history(1, None, 100).unwrap();
    assert_eq!(
        all.iter()
            .map(|h| (h.position, h.key.as_str()))
            .collect::<Vec<_>>(),
        expected,
        "newest position first, then by key"
    );
    assert!(all.iter().all(|h| h.profile == 1 && h.source == "src_1"));

    for limit in 1..=4 {
        let mut paged = Vec::new();
        let mut after = None;
        for _ in 0..=all.len() {
            let page = db.history(1, after.clone(), limit).unwrap();
            assert!(page.len() <= limit);
            let Some(last) = page.last() else { break };
            after = Some((last.position, last.key.clone()));
            paged.extend(page);
        }
        assert_eq!(paged, all, "pages of {limit} cover every row once");
    }
    let page = db.history(1, Some((5, "b".into())), 2).unwrap();
    assert_eq!(
        page.iter()
            .map(|h| (h.position, h.key.as_str()))
            .collect::<Vec<_>>(),
        vec![(5, "c"), (3, "a")]
    );
}

#[test]
fn traits_as_of_takes_each_keys_latest_change_at_or_before_the_time() {
    let d = dir("as-of");
    let db = ProfileDb::open_latest(&d.profiles(), "w").unwrap();
    db.commit(&CommitBatch {
        history: vec![
            // Event times out of log order.
            hist(1, 1, "plan", r#""free""#, 100),
            hist(1, 2, "plan", r#""pro""#, 300),
            hist(1, 3, "plan", r#""team""#, 200),
            // Same event time: the later position wins.
            hist(1, 4, "email", r#""a@x""#, 150),
            hist(1, 6, "email", r#""c@x""#, 150),
            hist(1, 5, "email", r#""b@x""#, 150),
            hist(2, 7, "plan", r#""other""#, 100),
        ],
        ..batch(7, false)
    })
    .unwrap();
    let as_of = |ts| {
        db.traits_as_of(1, ts)
            .unwrap()
            .into_iter()
            .map(|h| (h.key, h.value, h.position))
            .collect::<Vec<_>>()
    };
    let row = |k: &str, v: &str, p| (k.to_string(), v.to_string(), p);
    assert!(as_of(99).is_empty());
    assert_eq!(as_of(100), vec![row("plan", r#""free""#, 1)]);
    assert_eq!(
        as_of(150),
        vec![row("email", r#""c@x""#, 6), row("plan", r#""free""#, 1)]
    );
    assert_eq!(
        as_of(250),
        vec![row("email", r#""c@x""#, 6), row("plan", r#""team""#, 3)],
        "by event time, not log position"
    );
    assert_eq!(
        as_of(i64::MAX),
        vec![row("email", r#""c@x""#, 6), row("plan", r#""pro""#, 2)]
    );
    assert!(db.traits_as_of(3, i64::MAX).unwrap().is_empty());
}

#[test]
fn merges_cover_the_profile_and_those_it_absorbed() {
    let d = dir("merges");
    let db = ProfileDb::open_latest(&d.profiles(), "w").unwrap();
    let m5 = merge(5, 3, &[4], &[("email", "a@x")]);
    let m10 = merge(10, 1, &[3, 5], &[("user_id", "u1"), ("email", "b@x")]);
    let m12 = merge(12, 7, &[8], &[]);
    db.commit(&CommitBatch {
        absorbed: vec![absorbed_row(4, 3, 3, 5)],
        merges: vec![m5.clone()],
        ..batch(5, false)
    })
    .unwrap();
    db.commit(&CommitBatch {
        absorbed: vec![
            absorbed_row(3, 1, 1, 10),
            absorbed_row(5, 1, 1, 10),
            absorbed_row(8, 7, 7, 12),
        ],
        merges: vec![m12.clone(), m10.clone()],
        ..batch(12, false)
    })
    .unwrap();
    assert_eq!(
        db.merges(1).unwrap(),
        vec![m5.clone(), m10.clone()],
        "oldest first"
    );
    assert_eq!(db.merges(7).unwrap(), vec![m12.clone()]);
    assert_eq!(db.merges(3).unwrap(), vec![m5.clone()]);
    assert!(db.merges(4).unwrap().is_empty());
    assert!(db.merges(99).unwrap().is_empty());
    assert_eq!(db.merge_at(10, 1).unwrap(), Some(m10));
    assert_eq!(db.merge_at(10, 3).unwrap(), None);
    assert_eq!(db.merge_at(12, 7).unwrap(), Some(m12));
    assert_eq!(db.absorbed(1).unwrap(), None);
    assert_eq!(
        db.absorbed(4).unwrap(),
        Some(AbsorbedInfo {
            survivor: 3,
            live: 1,
            position: 5
        })
    );
}

#[test]
fn a_retired_generation_is_deleted_when_the_last_handle_goes() {
    let d = dir("retire");
    let dir = d.profiles();
    let kept = ProfileDb::open_latest(&dir, "v").unwrap();
    kept.commit(&docs(1, &[(1, "p")])).unwrap();
    let kept_path = kept.path().to_path_buf();
    drop(kept);
    assert!(exists(&kept_path), "only a retired generation is deleted");

    let db = Arc::new(ProfileDb::open_latest(&dir, "w").unwrap());
    db.commit(&CommitBatch {
        assignments: vec![(1, 1)],
        ..docs(1, &[(1, "p")])
    })
    .unwrap();
    // A reader connection is open too, as under the Profile API.
    assert_eq!(db.timeline(1, None, 10).unwrap(), vec![1]);
    let path = db.path().to_path_buf();
    let files = [path.clone(), sidecar(&path, "-wal"), sidecar(&path, "-shm")];
    assert!(exists(&files[0]) && exists(&files[1]));

    let reader = db.clone();
    db.retire();
    drop(db);
    assert!(exists(&files[0]), "still in use");
    assert_eq!(reader.timeline(1, None, 10).unwrap(), vec![1]);
    drop(reader);
    for f in &files {
        assert!(!exists(f), "{} should be gone", f.display());
    }
    assert!(exists(&kept_path));

    // Without a reader, the writer is the last connection to close.
    let db = ProfileDb::create_next(&dir, "w").unwrap();
    db.commit(&docs(2, &[(1, "p")])).unwrap();
    let path = db.path().to_path_buf();
    db.retire();
    drop(db);
    for suffix in ["", "-wal", "-shm"] {
        let f = sidecar(&path, suffix);
        assert!(!exists(&f), "{} should be gone", f.display());
    }
}

#[test]
fn read_state_streams_what_load_returns() {
    let d = dir("read-state");
    let db = ProfileDb::open_latest(&d.profiles(), "w").unwrap();
    db.commit(&CommitBatch {
        accounts: owned(&[(100, "acc")]),
        ..docs(10, &[(1, "p1"), (2, "p2"), (3, "p3")])
    })
    .unwrap();
    db.commit(&CommitBatch {
        absorbed: vec![absorbed_row(2, 1, 1, 12)],
        ..docs(12, &[(1, "p1 merged")])
    })
    .unwrap();
    db.commit(&CommitBatch {
        absorbed: vec![absorbed_row(3, 1, 1, 15)],
        ..batch(15, false)
    })
    .unwrap();
    let mut streamed = StoredState::default();
    let position = db
        .read_state(|row| {
            match row {
                StoredRow::Account(k, doc) => streamed.accounts.push((k, doc.to_string())),
                StoredRow::Profile(k, doc) => streamed.profiles.push((k, doc.to_string())),
                StoredRow::Absorbed(p, s) => streamed.absorbed.push((p, s)),
            }
            Ok(())
        })
        .unwrap();
    let loaded = db.load().unwrap();
    assert_eq!(position, loaded.position);
    assert_eq!(streamed.accounts, loaded.accounts);
    assert_eq!(streamed.profiles, loaded.profiles);
    assert_eq!(streamed.absorbed, loaded.absorbed);
    assert_eq!(loaded.profiles, owned(&[(1, "p1 merged"), (3, "p3")]));
    assert_eq!(loaded.absorbed, vec![(2, 1)]);

    let err = db
        .read_state(|row| match row {
            StoredRow::Profile(3, _) => Err("bad document".into()),
            _ => Ok(()),
        })
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::InvalidState(m) if m.contains('3') && m.contains("bad document")),
        "{err}"
    );
}

#[test]
fn create_next_makes_the_directory_like_open_latest() {
    let d = dir("next-fresh");
    let db = ProfileDb::create_next(&d.profiles(), "w").unwrap();
    assert_eq!(db.path(), d.generation("w", 1));
    assert!(!db.is_complete().unwrap());
}
