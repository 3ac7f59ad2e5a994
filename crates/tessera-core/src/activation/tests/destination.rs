//! Destinations: defaults, every configuration error with its pointer, URL checks, the
//! canonical form, and a round trip over generated configurations.

use super::*;
use proptest::prelude::*;
use serde_json::json;

fn parse(v: Value) -> Destination {
    Destination::parse("dst_1", "whsec_x", &v).unwrap_or_else(|e| panic!("{v} should parse: {e}"))
}

fn webhook() -> Value {
    json!({"name": "CRM webhook", "type": "webhook", "config": {"url": "https://example.com/hook"}})
}

fn segment() -> Value {
    json!({"name": "Segment", "type": "segment", "config": {"url": "https://api.segment.io/v1/batch", "write_key": "wk"}})
}

/// `base` with `value` set at the dotted path (creating objects on the way).
fn with(mut base: Value, path: &str, value: Value) -> Value {
    let mut cur = &mut base;
    let keys: Vec<&str> = path.split('.').collect();
    for k in &keys[..keys.len() - 1] {
        if cur.get(*k).is_none() {
            cur[*k] = json!({});
        }
        cur = &mut cur[*k];
    }
    cur[keys[keys.len() - 1]] = value;
    base
}

fn without(mut base: Value, path: &str) -> Value {
    let (parent, key) = path.rsplit_once('.').unwrap_or(("", path));
    let obj = if parent.is_empty() {
        &mut base
    } else {
        base.pointer_mut(&format!("/{}", parent.replace('.', "/")))
            .unwrap()
    };
    obj.as_object_mut().unwrap().remove(key);
    base
}

#[test]
fn webhook_defaults() {
    let d = parse(webhook());
    assert_eq!(d.id, "dst_1");
    assert_eq!(d.secret, "whsec_x");
    assert_eq!(d.name, "CRM webhook");
    assert_eq!(d.kind(), "webhook");
    assert_eq!(
        d.transport,
        Transport::Webhook {
            method: Method::Post,
            headers: vec![]
        }
    );
    assert_eq!(d.url.as_str(), "https://example.com/hook");
    assert_eq!(d.timeout_ms, 10_000);
    assert_eq!(d.filters, Filters::default());
    assert_eq!(d.mapping, None);
    assert_eq!(
        d.batching,
        Batching {
            size: 1,
            wait_ms: 0
        }
    );
    assert!(d.consent.is_empty() && d.sync_audiences.is_empty());
    assert!(!d.paused && d.forward_events && !d.ordered);
    assert_eq!(d.concurrency, 4);
    assert_eq!(
        d.retry,
        RetryPolicy {
            window_ms: 86_400_000,
            base_ms: 500,
            max_ms: 60_000
        }
    );
}

#[test]
fn segment_defaults() {
    let d = parse(segment());
    assert_eq!(d.kind(), "segment");
    assert_eq!(
        d.transport,
        Transport::Segment {
            write_key: "wk".into()
        }
    );
    assert_eq!(
        d.batching,
        Batching {
            size: 100,
            wait_ms: 1000
        }
    );
}

#[test]
fn forward_events_defaults_off_for_audience_sync() {
    let d = parse(with(webhook(), "sync_audiences", json!(["aud_1"])));
    assert!(!d.forward_events);
    let d = parse(with(
        with(webhook(), "sync_audiences", json!(["aud_1"])),
        "forward_events",
        json!(true),
    ));
    assert!(d.forward_events);
    let d = parse(with(webhook(), "forward_events", json!(false)));
    assert!(!d.forward_events);
}

#[test]
fn a_full_configuration() {
    let v = json!({
        "name": "Full", "type": "webhook",
        "config": {"url": "http://10.0.0.2:8080/in?x=1", "method": "PATCH",
                   "headers": {"X-Api-Key": "k", "Authorization": "Bearer t"}, "timeout_ms": 100},
        "filters": {"types": ["track", "page"], "events": ["Order Completed"],
                    "where": {"path": "properties.total", "op": "gt", "value": 100}, "audiences": ["aud_1"]},
        "mapping": {"id": "{{ profile.id }}"},
        "batching": {"size": 500, "wait_ms": 60000},
        "consent": ["marketing"], "paused": true, "forward_events": true,
        "sync_audiences": ["aud_2", "aud_1"], "ordered": true, "concurrency": 64,
        "retry": {"window": "5m", "base_ms": 10, "max_ms": 10}
    });
    let d = parse(v);
    let Transport::Webhook { method, headers } = &d.transport else {
        panic!()
    };
    assert_eq!(*method, Method::Patch);
    assert_eq!(headers.len(), 2);
    assert_eq!(d.url.host(), "10.0.0.2");
    assert_eq!(d.url.port(), 8080);
    assert_eq!(d.url.path_and_query(), "/in?x=1");
    assert!(!d.url.is_https());
    assert_eq!(d.retry.window_ms, 300_000);
    assert_eq!(
        d.audiences_used(),
        vec!["aud_1".to_owned(), "aud_2".to_owned()]
    );
    assert_eq!(
        Destination::parse("dst_1", "whsec_x", &d.to_json()).unwrap(),
        d
    );
}

#[test]
fn canonical_form_is_explicit_and_private_fields_stay_out() {
    let j = parse(webhook()).to_json();
    assert_eq!(
        j,
        json!({
            "name": "CRM webhook", "type": "webhook",
            "config": {"url": "https://example.com/hook", "method": "POST", "headers": {}, "timeout_ms": 10000},
            "filters": {}, "batching": {"size": 1, "wait_ms": 0}, "consent": [], "paused": false,
            "forward_events": true, "sync_audiences": [], "ordered": false, "concurrency": 4,
            "deletion_webhook": false,
            "retry": {"window": "1d", "base_ms": 500, "max_ms": 60000}
        })
    );
    assert!(j.get("id").is_none() && j.get("secret").is_none());
}

#[test]
fn retry_windows() {
    for (w, ms) in [
        (json!("10s"), 10_000),
        (json!("5m"), 300_000),
        (json!("1h"), 3_600_000),
        (json!("2d"), 172_800_000),
        (json!(1500), 1500),
        (json!("1500ms"), 1500),
    ] {
        assert_eq!(
            parse(with(webhook(), "retry.window", w)).retry.window_ms,
            ms
        );
    }
}

#[test]
fn urls() {
    let ok = [
        ("http://localhost/", "localhost", 80, "/"),
        ("HTTPS://Example.COM", "Example.COM", 443, "/"),
        ("http://h:1", "h", 1, "/"),
        ("http://h:65535?q", "h", 65535, "/?q"),
        ("https://[::1]:8443/p", "[::1]", 8443, "/p"),
        (
            "http://my_host.internal./x/y",
            "my_host.internal.",
            80,
            "/x/y",
        ),
    ];
    for (s, host, port, path) in ok {
        let u = HttpUrl::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(
            (u.host(), u.port(), u.path_and_query()),
            (host, port, path),
            "{s}"
        );
    }
    for bad in [
        "",
        "example.com",
        "ftp://h/",
        "http://",
        "http:///x",
        "http://h:0/",
        "http://h:65536",
        "http://h:/",
        "http://h:8o",
        "http://user:pw@h/",
        "http://h/#frag",
        "http://h /",
        "http://hé.com/",
        "http://a..b/",
        "http://[::1/",
        "http://[xyz]/",
        "http://[::1]x/",
        "http://-bad!.com/",
    ] {
        assert!(HttpUrl::parse(bad).is_err(), "{bad:?} should be refused");
    }
    assert!(HttpUrl::parse(&format!("http://h/{}", "a".repeat(2100))).is_err());
}

#[test]
fn every_error_points_at_its_value() {
    let long = "x".repeat(201);
    let cases: Vec<(Value, &str)> = vec![
        (json!([]), ""),
        (with(webhook(), "nmae", json!("x")), "/nmae"),
        (without(webhook(), "name"), "/name"),
        (with(webhook(), "name", json!(1)), "/name"),
        (with(webhook(), "name", json!("")), "/name"),
        (with(webhook(), "name", json!("   ")), "/name"),
        (with(webhook(), "name", json!(long)), "/name"),
        (without(webhook(), "type"), "/type"),
        (with(webhook(), "type", json!("email")), "/type"),
        (without(webhook(), "config"), "/config"),
        (with(webhook(), "config", json!("https://x")), "/config"),
        (without(webhook(), "config.url"), "/config/url"),
        (
            with(
                webhook(),
                "config.ca_certificate",
                json!("not a certificate"),
            ),
            "/config/ca_certificate",
        ),
        (with(webhook(), "config.url", json!(5)), "/config/url"),
        (
            with(webhook(), "config.url", json!("ftp://x")),
            "/config/url",
        ),
        (
            with(webhook(), "config.url", json!("http://x:99999")),
            "/config/url",
        ),
        (with(webhook(), "config.uri", json!("x")), "/config/uri"),
        (
            with(webhook(), "config.method", json!("GET")),
            "/config/method",
        ),
        (
            with(webhook(), "config.method", json!("post")),
            "/config/method",
        ),
        (
            with(webhook(), "config.headers", json!([])),
            "/config/headers",
        ),
        (
            with(webhook(), "config.headers", json!({"Host": "x"})),
            "/config/headers/Host",
        ),
        (
            with(webhook(), "config.headers", json!({"content-length": "1"})),
            "/config/headers/content-length",
        ),
        (
            with(
                webhook(),
                "config.headers",
                json!({"Transfer-Encoding": "x"}),
            ),
            "/config/headers/Transfer-Encoding",
        ),
        (
            with(webhook(), "config.headers", json!({"Connection": "x"})),
            "/config/headers/Connection",
        ),
        (
            with(
                webhook(),
                "config.headers",
                json!({"TESSERA-SIGNATURE": "x"}),
            ),
            "/config/headers/TESSERA-SIGNATURE",
        ),
        (
            with(webhook(), "config.headers", json!({"Idempotency-Key": "x"})),
            "/config/headers/Idempotency-Key",
        ),
        (
            with(webhook(), "config.headers", json!({"X-A": "1", "x-a": "2"})),
            "/config/headers/x-a",
        ),
        (
            with(webhook(), "config.headers", json!({"Bad Name": "1"})),
            "/config/headers/Bad Name",
        ),
        (
            with(webhook(), "config.headers", json!({"a/b": "1"})),
            "/config/headers/a~1b",
        ),
        (
            with(webhook(), "config.headers", json!({"X-A": "a\r\nX-B: b"})),
            "/config/headers/X-A",
        ),
        (
            with(webhook(), "config.headers", json!({"X-A": 1})),
            "/config/headers/X-A",
        ),
        (
            with(webhook(), "config.write_key", json!("k")),
            "/config/write_key",
        ),
        (
            with(webhook(), "config.timeout_ms", json!(99)),
            "/config/timeout_ms",
        ),
        (
            with(webhook(), "config.timeout_ms", json!(120_001)),
            "/config/timeout_ms",
        ),
        (
            with(webhook(), "config.timeout_ms", json!(1000.5)),
            "/config/timeout_ms",
        ),
        (without(segment(), "config.write_key"), "/config/write_key"),
        (
            with(segment(), "config.write_key", json!("")),
            "/config/write_key",
        ),
        (
            with(segment(), "config.method", json!("POST")),
            "/config/method",
        ),
        (
            with(segment(), "config.headers", json!({})),
            "/config/headers",
        ),
        (with(webhook(), "filters", json!([])), "/filters"),
        (
            with(webhook(), "filters.event", json!(["x"])),
            "/filters/event",
        ),
        (
            with(webhook(), "filters.types", json!(["trak"])),
            "/filters/types/0",
        ),
        (
            with(webhook(), "filters.types", json!([])),
            "/filters/types",
        ),
        (
            with(webhook(), "filters.events", json!("Order Completed")),
            "/filters/events",
        ),
        (
            with(webhook(), "filters.events", json!(["a", ""])),
            "/filters/events/1",
        ),
        (
            with(webhook(), "filters.audiences", json!([1])),
            "/filters/audiences/0",
        ),
        (
            with(
                webhook(),
                "filters.where",
                json!({"all": [{"path": "a", "op": "gt", "value": []}]}),
            ),
            "/filters/where/all/0/value",
        ),
        (
            with(webhook(), "mapping", json!({"a": ["{{ x"]})),
            "/mapping/a/0",
        ),
        (with(webhook(), "batching", json!(1)), "/batching"),
        (with(webhook(), "batching.size", json!(0)), "/batching/size"),
        (
            with(webhook(), "batching.size", json!(501)),
            "/batching/size",
        ),
        (
            with(webhook(), "batching.wait_ms", json!(60_001)),
            "/batching/wait_ms",
        ),
        (with(webhook(), "batching.wait", json!(1)), "/batching/wait"),
        (with(webhook(), "consent", json!("marketing")), "/consent"),
        (
            with(webhook(), "consent", json!(["ok", null])),
            "/consent/1",
        ),
        (with(webhook(), "paused", json!("yes")), "/paused"),
        (
            with(webhook(), "forward_events", json!(1)),
            "/forward_events",
        ),
        (
            with(webhook(), "sync_audiences", json!([""])),
            "/sync_audiences/0",
        ),
        (with(webhook(), "ordered", json!(null)), "/ordered"),
        (with(webhook(), "concurrency", json!(0)), "/concurrency"),
        (with(webhook(), "concurrency", json!(65)), "/concurrency"),
        (with(webhook(), "concurrency", json!(-1)), "/concurrency"),
        (with(webhook(), "retry", json!("24h")), "/retry"),
        (
            with(webhook(), "retry.window", json!("24 hours")),
            "/retry/window",
        ),
        (with(webhook(), "retry.window", json!("h")), "/retry/window"),
        (with(webhook(), "retry.window", json!(999)), "/retry/window"),
        (
            with(webhook(), "retry.window", json!("31d")),
            "/retry/window",
        ),
        (
            with(webhook(), "retry.window", json!("99999999999999999999d")),
            "/retry/window",
        ),
        (with(webhook(), "retry.base_ms", json!(9)), "/retry/base_ms"),
        (with(webhook(), "retry.max_ms", json!(400)), "/retry/max_ms"),
        (with(webhook(), "retry.max", json!(400)), "/retry/max"),
    ];
    for (v, pointer) in cases {
        let e = Destination::parse("d", "s", &v).expect_err(&format!("{v} should not parse"));
        assert_eq!(e.pointer, pointer, "{v}: {e}");
        assert_eq!(e.to_string(), format!("at {pointer}: {}", e.message));
    }
}

#[test]
fn errors_explain_themselves() {
    let msg = |v: Value| Destination::parse("d", "s", &v).unwrap_err().message;
    assert!(msg(with(webhook(), "filtrs", json!({}))).contains("filters"));
    assert!(msg(with(webhook(), "config.headers", json!({"Host": "x"})))
        .contains("cannot be overridden"));
    assert!(msg(with(webhook(), "config.url", json!("http://u:p@h/"))).contains("credentials"));
    assert!(msg(with(segment(), "config.method", json!("PUT"))).contains("only webhook"));
    assert!(msg(with(webhook(), "retry.max_ms", json!(100))).contains("base_ms"));
}

#[test]
fn audiences_used_lists_each_once() {
    let d = parse(with(
        with(webhook(), "filters.audiences", json!(["a", "b"])),
        "sync_audiences",
        json!(["b", "c"]),
    ));
    assert_eq!(d.audiences_used(), vec!["a", "b", "c"]);
    // `in_audience` in `where` refers to an audience too.
    let w = json!({"any": [{"in_audience": "d"}, {"in_audience": "a"}]});
    let d = parse(with(
        with(webhook(), "filters.where", w),
        "sync_audiences",
        json!(["c"]),
    ));
    assert_eq!(d.audiences_used(), vec!["d", "a", "c"]);
    assert!(parse(webhook()).audiences_used().is_empty());
}

fn ids() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-z0-9_]{1,8}", 0..3)
}

fn config() -> impl Strategy<Value = Value> {
    let url = prop::sample::select(vec![
        "https://a.example/x",
        "http://10.1.2.3:9000",
        "http://[::1]:1/?q=1",
    ]);
    let transport = prop_oneof![
        (
            prop::sample::select(vec!["POST", "PUT", "PATCH"]),
            // Lowercase after `X-`: names differing only in case are refused, by design.
            prop::collection::btree_map("X-[a-z]{1,6}", "[ -~]{0,10}", 0..3)
        )
            .prop_map(|(m, h)| json!({"method": m, "headers": h})
                .as_object()
                .unwrap()
                .clone()),
        "[A-Za-z0-9]{1,20}".prop_map(|k| json!({"write_key": k}).as_object().unwrap().clone()),
    ];
    let filters = (
        prop::option::of(prop::sample::subsequence(EVENT_TYPES.to_vec(), 1..3)),
        prop::option::of(prop::collection::vec("[A-Z][a-z ]{0,10}", 1..3)),
        prop::option::of(prop::sample::select(vec![
            json!({"path": "properties.total", "op": "gte", "value": 10.5}),
            json!({"any": [{"path": "a.0", "op": "exists"}, {"not": {"path": "b", "op": "in", "value": [1, "x"]}}]}),
        ])),
        prop::option::of(prop::collection::vec("aud_[0-9]{1,3}", 1..3)),
    );
    let mapping = prop::option::of(prop::sample::select(vec![
        json!({"email": "{{ profile.traits.email }}", "text": "Hi {{ profile.userId }}", "n": 1}),
        json!("{{ properties }}"),
    ]));
    let tail = (
        prop::option::of((1u32..=500, 0u64..=60_000)),
        ids(),
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
        ids(),
        (
            prop::option::of(any::<bool>()),
            prop::option::of(1u32..=64),
            100u64..=120_000,
        ),
        prop::option::of((
            prop::sample::select(vec![json!("90s"), json!("5m"), json!(123_456), json!("2d")]),
            10u64..=1000,
            1000u64..=100_000,
        )),
    );
    ("[A-Za-z][A-Za-z0-9 ]{0,20}", url, transport, filters, mapping, tail).prop_map(
        |(name, url, transport, (types, events, cond, auds), mapping, tail)| {
            let (batching, consent, paused, forward, sync, (ordered, conc, timeout), retry) = tail;
            let segment = transport.contains_key("write_key");
            let mut config = transport;
            config.insert("url".into(), json!(url));
            config.insert("timeout_ms".into(), json!(timeout));
            let mut f = Map::new();
            for (k, v) in [("types", types.map(|t| json!(t))), ("events", events.map(|e| json!(e))), ("where", cond), ("audiences", auds.map(|a| json!(a)))] {
                if let Some(v) = v {
                    f.insert(k.into(), v);
                }
            }
            let mut d = json!({"name": name, "type": if segment { "segment" } else { "webhook" }, "config": config, "filters": f, "consent": consent, "sync_audiences": sync});
            let optional = [
                ("mapping", mapping),
                ("batching", batching.map(|(s, w)| json!({"size": s, "wait_ms": w}))),
                ("paused", paused.map(Value::from)),
                ("forward_events", forward.map(Value::from)),
                ("ordered", ordered.map(Value::from)),
                ("concurrency", conc.map(Value::from)),
                ("retry", retry.map(|(w, b, m)| json!({"window": w, "base_ms": b, "max_ms": m}))),
            ];
            for (k, v) in optional {
                if let Some(v) = v {
                    d[k] = v;
                }
            }
            d
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
    #[test]
    fn to_json_round_trips(v in config()) {
        let d = Destination::parse("dst_9", "whsec_y", &v).map_err(|e| TestCaseError::fail(format!("{v}: {e}")))?;
        let j = d.to_json();
        let again = Destination::parse("dst_9", "whsec_y", &j).map_err(|e| TestCaseError::fail(format!("{j}: {e}")))?;
        prop_assert_eq!(&again, &d);
        prop_assert_eq!(again.to_json(), j);
    }
}
