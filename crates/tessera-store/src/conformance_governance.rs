//! Conformance checks for governance: each source's tracking-plan mode, and violation counts
//! that add up per key and day. Part of the suite in `conformance.rs` (re-exported there, so a
//! backend runs them like every other check).

use crate::conformance::workspace;
use crate::{Source, Store, ViolationCount};
use tessera_core::privacy::plan::Mode;

pub(crate) fn sources_keep_their_tracking_plan_mode(store: &dyn Store) {
    workspace(store, "w1");
    let src = Source {
        id: "src_1".into(),
        workspace_id: "w1".into(),
        name: "Web".into(),
        write_key: "wk_1".into(),
        enabled: true,
        tracking_plan_mode: Mode::Block,
        created_at: 5,
        updated_at: 5,
    };
    store.create_source(&src).unwrap();
    assert_eq!(store.get_source("w1", "src_1").unwrap(), Some(src.clone()));
    for mode in [Mode::Flag, Mode::Allow, Mode::Block] {
        let changed = Source {
            tracking_plan_mode: mode,
            updated_at: 6,
            ..src.clone()
        };
        assert!(store.update_source(&changed).unwrap());
        assert_eq!(
            store.source_by_write_key("wk_1").unwrap(),
            Some(changed.clone()),
            "the write key's source carries the mode ingest uses"
        );
        assert_eq!(store.list_sources("w1").unwrap(), vec![changed]);
    }
}

fn count(ws: &str, src: &str, event: &str, path: &str, day: i64, n: u64) -> ViolationCount {
    ViolationCount {
        workspace_id: ws.into(),
        source_id: src.into(),
        event: event.into(),
        path: path.into(),
        rule: "type".into(),
        day,
        count: n,
    }
}

pub(crate) fn plan_violations_add_up_per_day_and_key(store: &dyn Store) {
    workspace(store, "w1");
    workspace(store, "w2");
    store.record_violations(&[]).unwrap();
    store
        .record_violations(&[
            count("w1", "s1", "Order", "properties.total", 100, 2),
            count("w1", "s1", "Order", "properties.total", 101, 1),
            count("w1", "s2", "Order", "properties.total", 100, 5),
            count("w1", "s1", "Cart", "properties.sku", 100, 1),
            count("w2", "s9", "Order", "properties.total", 100, 7),
        ])
        .unwrap();
    // The same keys again: counts add up, no second row.
    store
        .record_violations(&[
            count("w1", "s1", "Order", "properties.total", 100, 3),
            count("w1", "s1", "Cart", "properties.sku", 100, 1),
        ])
        .unwrap();
    let all = store.violation_counts("w1", 0, 1_000).unwrap();
    assert_eq!(
        all,
        vec![
            count("w1", "s1", "Cart", "properties.sku", 100, 2),
            count("w1", "s1", "Order", "properties.total", 100, 5),
            count("w1", "s2", "Order", "properties.total", 100, 5),
            count("w1", "s1", "Order", "properties.total", 101, 1),
        ],
        "ordered by event, path, rule, day, source"
    );
    assert_eq!(
        store.violation_counts("w1", 101, 102).unwrap(),
        vec![count("w1", "s1", "Order", "properties.total", 101, 1)],
        "the range includes its first day and excludes its last"
    );
    assert!(store.violation_counts("w1", 102, 200).unwrap().is_empty());
    assert_eq!(
        store.violation_counts("w2", 0, 1_000).unwrap(),
        vec![count("w2", "s9", "Order", "properties.total", 100, 7)],
        "counts are per workspace"
    );
    assert!(store.delete_workspace("w2").unwrap());
    workspace(store, "w2");
    assert!(
        store.violation_counts("w2", 0, 1_000).unwrap().is_empty(),
        "a workspace created again with the same id starts without counts"
    );
}
