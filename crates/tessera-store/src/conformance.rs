//! The store conformance suite: behaviour every backend must show. Each check takes a fresh
//! `&dyn Store`; `sqlite_*` tests below run them on the embedded backend, and a new backend adds
//! one line per check.

use crate::{
    AppendBatch, AppendOutcome, Definition, EventFilter, Source, Store, StoreError, Token,
    Workspace,
};
use std::sync::mpsc;
use tessera_core::privacy::plan::Mode;
use tessera_core::{MessageType, NormalizedEvent};

pub(crate) use crate::conformance_governance::{
    plan_violations_add_up_per_day_and_key, sources_keep_their_tracking_plan_mode,
};

pub(crate) fn event(
    id: &str,
    kind: MessageType,
    user: Option<&str>,
    received_at: i64,
) -> NormalizedEvent {
    NormalizedEvent {
        message_id: id.into(),
        kind,
        event: (kind == MessageType::Track).then(|| "Clicked".to_string()),
        user_id: user.map(String::from),
        anonymous_id: None,
        timestamp: received_at,
        received_at,
        body: format!(r#"{{"messageId":"{id}","type":"{}"}}"#, kind.as_str()),
    }
}

pub(crate) fn append_wait(
    store: &dyn Store,
    ws: &str,
    src: &str,
    events: Vec<NormalizedEvent>,
) -> Result<AppendOutcome, StoreError> {
    let (tx, rx) = mpsc::channel();
    store.append(
        AppendBatch {
            workspace_id: ws.into(),
            source_id: src.into(),
            events,
        },
        Box::new(move |r| tx.send(r).unwrap()),
    )?;
    rx.recv().unwrap()
}

/// Creates a workspace named `id`.
pub(crate) fn workspace(store: &dyn Store, id: &str) {
    store
        .create_workspace(&Workspace {
            id: id.into(),
            name: id.into(),
            created_at: 1,
        })
        .unwrap();
}

fn setup(store: &dyn Store) {
    workspace(store, "w1");
    workspace(store, "w2");
}

pub(crate) fn appends_are_ordered_and_deduplicated_per_workspace(store: &dyn Store) {
    setup(store);
    let a = append_wait(
        store,
        "w1",
        "s",
        vec![
            event("m1", MessageType::Track, Some("u"), 10),
            event("m2", MessageType::Identify, Some("u"), 11),
            event("m1", MessageType::Track, Some("u"), 12), // same batch, same id
        ],
    )
    .unwrap();
    assert!(a.positions[0].unwrap() < a.positions[1].unwrap());
    assert_eq!(a.positions[2], None);
    let again = append_wait(
        store,
        "w1",
        "s",
        vec![event("m2", MessageType::Identify, Some("u"), 20)],
    )
    .unwrap();
    assert_eq!(again.positions, vec![None], "a retry is not stored twice");
    let other = append_wait(
        store,
        "w2",
        "s",
        vec![event("m1", MessageType::Track, None, 20)],
    )
    .unwrap();
    assert!(
        other.positions[0].unwrap() > a.positions[1].unwrap(),
        "positions only grow"
    );
    assert_eq!(
        store
            .list_events("w1", &EventFilter::default(), 100)
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        store.log_stats().unwrap().last_position,
        other.positions[0].unwrap()
    );
    assert_eq!(store.last_position().unwrap(), other.positions[0].unwrap());
}

pub(crate) fn listing_filters_and_pages_newest_first(store: &dyn Store) {
    setup(store);
    let events: Vec<_> = (0..10)
        .map(|i| {
            event(
                &format!("m{i}"),
                if i % 2 == 0 {
                    MessageType::Track
                } else {
                    MessageType::Page
                },
                Some(if i < 5 { "a" } else { "b" }),
                100 + i,
            )
        })
        .collect();
    append_wait(store, "w1", "src1", events).unwrap();
    let all = store
        .list_events("w1", &EventFilter::default(), 100)
        .unwrap();
    assert_eq!(all.len(), 10);
    assert!(all.windows(2).all(|w| w[0].position > w[1].position));
    let f = |f: EventFilter| store.list_events("w1", &f, 100).unwrap().len();
    assert_eq!(
        f(EventFilter {
            kind: Some("track".into()),
            ..Default::default()
        }),
        5
    );
    assert_eq!(
        f(EventFilter {
            user_id: Some("a".into()),
            kind: Some("page".into()),
            ..Default::default()
        }),
        2
    );
    assert_eq!(
        f(EventFilter {
            message_id: Some("m3".into()),
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        f(EventFilter {
            source_id: Some("other".into()),
            ..Default::default()
        }),
        0
    );
    assert_eq!(
        f(EventFilter {
            since: Some(105),
            until: Some(108),
            ..Default::default()
        }),
        3
    );
    let page = store.list_events("w1", &EventFilter::default(), 4).unwrap();
    let next = store
        .list_events(
            "w1",
            &EventFilter {
                before: Some(page[3].position),
                ..Default::default()
            },
            4,
        )
        .unwrap();
    assert_eq!(next[0].position, page[3].position - 1);
    assert_eq!(
        f(EventFilter {
            after: Some(all[1].position),
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        store
            .list_events("w2", &EventFilter::default(), 100)
            .unwrap()
            .len(),
        0
    );
}

pub(crate) fn registry_round_trips(store: &dyn Store) {
    setup(store);
    let src = Source {
        id: "src_1".into(),
        workspace_id: "w1".into(),
        name: "Web".into(),
        write_key: "wk_1".into(),
        enabled: true,
        tracking_plan_mode: Mode::Allow,
        created_at: 5,
        updated_at: 5,
    };
    store.create_source(&src).unwrap();
    assert!(matches!(
        store.create_source(&Source {
            id: "src_2".into(),
            ..src.clone()
        }),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.source_by_write_key("wk_1").unwrap(),
        Some(src.clone())
    );
    assert_eq!(
        store.get_source("w2", "src_1").unwrap(),
        None,
        "sources are per workspace"
    );
    let changed = Source {
        write_key: "wk_2".into(),
        enabled: false,
        ..src.clone()
    };
    assert!(store.update_source(&changed).unwrap());
    assert_eq!(store.source_by_write_key("wk_1").unwrap(), None);
    assert_eq!(store.list_sources("w1").unwrap(), vec![changed]);
    assert!(store.delete_source("w1", "src_1").unwrap());
    assert!(!store.delete_source("w1", "src_1").unwrap());

    let token = Token {
        id: "t1".into(),
        workspace_id: Some("w1".into()),
        scopes: vec!["read".into()],
        name: "ro".into(),
        created_at: 1,
    };
    store.create_token(&token, "hash1").unwrap();
    assert_eq!(store.token_by_hash("hash1").unwrap(), Some(token));
    assert!(store.delete_token("t1").unwrap());
    assert_eq!(store.token_by_hash("hash1").unwrap(), None);

    assert!(matches!(
        store.create_workspace(&Workspace {
            id: "w1".into(),
            name: "x".into(),
            created_at: 1
        }),
        Err(StoreError::Conflict(_))
    ));
    assert!(store.delete_workspace("w2").unwrap());
    assert_eq!(store.list_workspaces().unwrap().len(), 1);
}

pub(crate) fn shutdown_flushes_and_refuses_new_appends(store: &dyn Store) {
    setup(store);
    let (tx, rx) = mpsc::channel();
    for i in 0..50 {
        let tx = tx.clone();
        store
            .append(
                AppendBatch {
                    workspace_id: "w1".into(),
                    source_id: "s".into(),
                    events: vec![event(&format!("m{i}"), MessageType::Track, Some("u"), 1)],
                },
                Box::new(move |r| tx.send(r.is_ok()).unwrap()),
            )
            .unwrap();
    }
    store.shutdown();
    assert_eq!(
        rx.try_iter().filter(|ok| *ok).count(),
        50,
        "everything queued was committed"
    );
    let late = store.append(
        AppendBatch {
            workspace_id: "w1".into(),
            source_id: "s".into(),
            events: vec![],
        },
        Box::new(|_| {}),
    );
    assert!(matches!(late, Err(StoreError::ShuttingDown)));
}

/// An event whose time differs from its arrival, so a reader returning the wrong one shows.
fn timed(id: &str, ts: i64) -> NormalizedEvent {
    NormalizedEvent {
        timestamp: ts,
        ..event(id, MessageType::Track, Some("u"), ts + 500)
    }
}

/// Appends events one batch each and returns their positions.
fn append_each(store: &dyn Store, ws: &str, src: &str, events: Vec<NormalizedEvent>) -> Vec<i64> {
    events
        .into_iter()
        .map(|e| append_wait(store, ws, src, vec![e]).unwrap().positions[0].unwrap())
        .collect()
}

pub(crate) fn read_log_returns_one_workspace_oldest_first(store: &dyn Store) {
    setup(store);
    // Interleave the workspaces so that positions of w2 sit between those of w1.
    let mut w1 = Vec::new();
    let mut w2 = Vec::new();
    for i in 0..4 {
        let src = if i < 2 { "src_a" } else { "src_b" };
        w1.extend(append_each(
            store,
            "w1",
            src,
            vec![timed(&format!("m{i}"), 1_000 + i)],
        ));
        w2.extend(append_each(
            store,
            "w2",
            "src_c",
            vec![timed(&format!("m{i}"), 2_000 + i)],
        ));
    }

    let all = store.read_log("w1", 0, 100).unwrap();
    assert_eq!(
        all.iter().map(|e| e.position).collect::<Vec<_>>(),
        w1,
        "only w1's events, oldest first"
    );
    for (i, e) in all.iter().enumerate() {
        assert_eq!(
            e.timestamp,
            1_000 + i as i64,
            "event time, not receipt time"
        );
        assert_eq!(e.source_id, if i < 2 { "src_a" } else { "src_b" });
        assert!(
            e.body.contains(&format!(r#""messageId":"m{i}""#)),
            "{}",
            e.body
        );
    }

    let after_first = store.read_log("w1", w1[0], 100).unwrap();
    assert_eq!(
        after_first.iter().map(|e| e.position).collect::<Vec<_>>(),
        w1[1..],
        "strictly after the position"
    );
    // A position of another workspace is a valid cursor too.
    let after_w2 = store.read_log("w1", w2[1], 100).unwrap();
    assert_eq!(
        after_w2.iter().map(|e| e.position).collect::<Vec<_>>(),
        w1[2..]
    );

    let limited = store.read_log("w1", 0, 2).unwrap();
    assert_eq!(
        limited.iter().map(|e| e.position).collect::<Vec<_>>(),
        w1[..2],
        "the limit keeps the oldest"
    );
    let next = store.read_log("w1", limited[1].position, 2).unwrap();
    assert_eq!(
        next.iter().map(|e| e.position).collect::<Vec<_>>(),
        w1[2..],
        "paging on the last position continues where the page ended"
    );

    let other = store.read_log("w2", 0, 100).unwrap();
    assert_eq!(other.iter().map(|e| e.position).collect::<Vec<_>>(), w2);
    assert!(other
        .iter()
        .all(|e| e.source_id == "src_c" && e.timestamp >= 2_000));

    assert!(store.read_log("w1", w1[3], 100).unwrap().is_empty());
    assert!(store.read_log("nope", 0, 100).unwrap().is_empty());
}

pub(crate) fn events_at_returns_positions_in_the_order_given(store: &dyn Store) {
    setup(store);
    let w1 = append_each(
        store,
        "w1",
        "src_a",
        vec![timed("m0", 10), timed("m1", 11), timed("m2", 12)],
    );
    let w2 = append_each(store, "w2", "src_b", vec![timed("x0", 20)]);
    let missing = store.log_stats().unwrap().last_position + 1_000;

    let got = store
        .events_at("w1", &[w1[2], w2[0], w1[0], missing, w1[1], -1])
        .unwrap();
    assert_eq!(
        got.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![w1[2], w1[0], w1[1]],
        "in the order given; other workspaces' and missing positions skipped"
    );
    for e in &got {
        let i = w1.iter().position(|&p| p == e.position).unwrap();
        assert_eq!(e.source_id, "src_a");
        assert!(
            e.body.contains(&format!(r#""messageId":"m{i}""#)),
            "{}",
            e.body
        );
    }

    let theirs = store.events_at("w2", &[w1[0], w2[0]]).unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].position, w2[0]);
    assert_eq!(theirs[0].source_id, "src_b");

    assert!(store.events_at("w1", &[]).unwrap().is_empty());
    assert!(store.events_at("w1", &[missing]).unwrap().is_empty());
}

pub(crate) fn identity_rules_round_trip_per_workspace(store: &dyn Store) {
    setup(store);
    assert_eq!(store.identity_rules("w1").unwrap(), None, "none until set");
    assert_eq!(store.identity_rules("w2").unwrap(), None);

    let first = r#"{"types":[{"name":"user_id","limit":1}]}"#;
    store.set_identity_rules("w1", first, 10).unwrap();
    assert_eq!(store.identity_rules("w1").unwrap().as_deref(), Some(first));
    assert_eq!(
        store.identity_rules("w2").unwrap(),
        None,
        "rules are per workspace"
    );

    let second = r#"{"types":[{"name":"email","limit":3}]}"#;
    store.set_identity_rules("w1", second, 20).unwrap();
    assert_eq!(
        store.identity_rules("w1").unwrap().as_deref(),
        Some(second),
        "setting again overwrites"
    );

    let theirs = r#"{"types":[]}"#;
    store.set_identity_rules("w2", theirs, 30).unwrap();
    assert_eq!(store.identity_rules("w1").unwrap().as_deref(), Some(second));
    assert_eq!(store.identity_rules("w2").unwrap().as_deref(), Some(theirs));

    // Rules belong to their workspace and go with it.
    assert!(store.delete_workspace("w1").unwrap());
    assert_eq!(store.identity_rules("w1").unwrap(), None);
    workspace(store, "w1");
    assert_eq!(
        store.identity_rules("w1").unwrap(),
        None,
        "a workspace re-created under the same id starts without rules"
    );
    assert_eq!(store.identity_rules("w2").unwrap().as_deref(), Some(theirs));
}

fn definition(
    ws: &str,
    id: &str,
    name: &str,
    version: u32,
    text: &str,
    deleted: bool,
) -> Definition {
    Definition {
        workspace_id: ws.into(),
        id: id.into(),
        kind: "audience".into(),
        name: name.into(),
        version,
        definition: text.into(),
        created_at: 10,
        updated_at: 10 * i64::from(version),
        deleted,
    }
}

pub(crate) fn definitions_keep_every_version_per_workspace(store: &dyn Store) {
    setup(store);
    assert!(store.definitions("w1").unwrap().is_empty());
    store
        .save_definition(&definition(
            "w1",
            "aud_1",
            "de",
            1,
            "country = \"DE\"",
            false,
        ))
        .unwrap();
    store
        .save_definition(&definition(
            "w1",
            "aud_2",
            "fr",
            1,
            "country = \"FR\"",
            false,
        ))
        .unwrap();
    store
        .save_definition(&definition(
            "w1",
            "aud_1",
            "de",
            2,
            "country = \"de\"",
            false,
        ))
        .unwrap();
    let raced = store.save_definition(&definition("w1", "aud_1", "de", 2, "x = 1", false));
    assert!(matches!(raced, Err(StoreError::Conflict(_))), "{raced:?}");
    let current = store.definitions("w1").unwrap();
    assert_eq!(current.len(), 2);
    assert_eq!(current[0].name, "de");
    assert_eq!(current[0].version, 2, "the newest version is current");
    assert_eq!(current[0].definition, "country = \"de\"");
    assert!(store.definitions("w2").unwrap().is_empty(), "per workspace");

    store
        .save_definition(&definition(
            "w1",
            "aud_2",
            "fr",
            2,
            "country = \"FR\"",
            true,
        ))
        .unwrap();
    let current = store.definitions("w1").unwrap();
    assert_eq!(current.len(), 1, "a deletion hides the definition");
    let versions = store.definition_versions("w1", "aud_2").unwrap();
    assert_eq!(versions.len(), 2, "and keeps its history");
    assert!(versions[1].deleted);
    assert!(store.definition_versions("w1", "nope").unwrap().is_empty());

    assert!(store.delete_workspace("w1").unwrap());
    workspace(store, "w1");
    assert!(store.definition_versions("w1", "aud_1").unwrap().is_empty());
}

fn privacy_request(ws: &str, id: &str, status: &str, at: i64) -> crate::PrivacyRequest {
    crate::PrivacyRequest {
        id: id.into(),
        workspace_id: ws.into(),
        kind: "delete".into(),
        identifier_hint: "email:a***@example.org".into(),
        identifier: (status != "done").then(|| "email:ann@example.org".into()),
        status: status.into(),
        created_at: at,
        updated_at: at,
        result: (status == "done").then(|| "{\"events_deleted\":2}".into()),
    }
}

pub(crate) fn privacy_requests_suppressions_and_deletions(store: &dyn Store) {
    setup(store);
    store
        .save_privacy_request(&privacy_request("w1", "dsr_1", "pending", 1))
        .unwrap();
    store
        .save_privacy_request(&privacy_request("w1", "dsr_2", "running", 2))
        .unwrap();
    store
        .save_privacy_request(&privacy_request("w1", "dsr_1", "done", 1))
        .unwrap();
    let r = store.privacy_request("w1", "dsr_1").unwrap().unwrap();
    assert_eq!(
        (r.status.as_str(), r.identifier),
        ("done", None),
        "updated in place"
    );
    assert_eq!(
        store.privacy_request("w2", "dsr_1").unwrap(),
        None,
        "per workspace"
    );
    let listed = store.privacy_requests("w1", 10).unwrap();
    assert_eq!(listed[0].id, "dsr_2", "newest first");
    let unfinished = store.unfinished_privacy_requests().unwrap();
    assert_eq!(unfinished.len(), 1);
    assert_eq!(unfinished[0].id, "dsr_2");

    let salt = store.workspace_salt("w1", "s1").unwrap();
    assert_eq!(salt, "s1");
    assert_eq!(
        store.workspace_salt("w1", "other").unwrap(),
        "s1",
        "made once"
    );
    assert_eq!(store.workspace_salt("w2", "s2").unwrap(), "s2");
    store
        .add_suppressions("w1", "dsr_3", &["h1".into(), "h2".into()], 5)
        .unwrap();
    store
        .add_suppressions("w1", "dsr_4", &["h3".into()], 6)
        .unwrap();
    let mut s = store.suppressions("w1").unwrap();
    s.sort();
    assert_eq!(s, ["h1", "h2", "h3"]);
    assert!(store.suppressions("w2").unwrap().is_empty());
    // Lifting one identifier lifts everything its request suppressed.
    assert_eq!(store.remove_suppressions("w1", &["h2".into()]).unwrap(), 2);
    assert_eq!(store.suppressions("w1").unwrap(), ["h3"]);

    let p = append_wait(
        store,
        "w1",
        "s",
        vec![
            event("d1", MessageType::Track, Some("gone"), 10),
            event("d2", MessageType::Track, Some("kept"), 11),
        ],
    )
    .unwrap()
    .positions;
    let other = append_wait(
        store,
        "w2",
        "s",
        vec![event("d3", MessageType::Track, None, 12)],
    )
    .unwrap()
    .positions;
    let gone = p[0].unwrap();
    // Positions of another workspace are not touched.
    let n = store
        .delete_events("w1", &[gone, other[0].unwrap()])
        .unwrap();
    assert_eq!(n, 1);
    let left: Vec<i64> = store
        .read_log("w1", 0, 10)
        .unwrap()
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(left, [p[1].unwrap()]);
    assert_eq!(store.read_log("w2", 0, 10).unwrap().len(), 1);
}
