//! The store conformance suite: behaviour every backend must show. Each check takes a fresh
//! `&dyn Store`; `sqlite_*` tests below run them on the embedded backend, and a new backend adds
//! one line per check.

use crate::{AppendBatch, AppendOutcome, EventFilter, Source, Store, StoreError, Token, Workspace};
use std::sync::mpsc;
use tessera_core::{MessageType, NormalizedEvent};

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
