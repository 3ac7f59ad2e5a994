//! The event debugger: filters, newest-first cursor paging, and the live tail over SSE.

use crate::support::*;
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

#[test]
fn filters_and_cursor_paging() {
    let (_d, s, key) = fresh("debugger");
    let mut batch = Vec::new();
    for i in 0..25 {
        batch.push(json!({"type": "track", "userId": format!("u{}", i % 2), "event": if i % 5 == 0 { "Buy" } else { "View" }, "messageId": format!("m{i}")}));
    }
    batch.push(json!({"type": "identify", "anonymousId": "anon-1", "traits": {"x": 1}}));
    assert_eq!(
        s.track("/v1/batch", &key, &json!({"batch": batch}).to_string())
            .status,
        200
    );

    assert_eq!(s.events("type=identify").len(), 1);
    assert_eq!(s.events("anonymous_id=anon-1").len(), 1);
    assert_eq!(s.events("event=Buy").len(), 5);
    assert_eq!(s.events("user_id=u0&event=Buy").len(), 3);
    assert_eq!(s.events("message_id=m7")[0]["messageId"], "m7");
    assert_eq!(s.events("since=2000-01-01T00:00:00Z").len(), 26);
    assert_eq!(s.events("until=2000-01-01T00:00:00Z").len(), 0);

    // Page through everything 10 at a time: newest first, no gaps, no repeats.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/api/v1/events?limit=10&cursor={c}"),
            None => "/api/v1/events?limit=10".to_string(),
        };
        let page = s.admin("GET", &q, "").json();
        for e in page["events"].as_array().unwrap() {
            seen.push(e["position"].as_i64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 26);
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seen:?}"
    );

    let r = s.admin("GET", "/api/v1/events?since=yesterday", "");
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (400, json!("invalid_value"))
    );
    let r = s.admin("GET", "/api/v1/events?colour=red", "");
    assert_eq!(r.status, 400, "unknown filters are refused, not ignored");
}

#[test]
fn live_tail_streams_new_events() {
    let (_d, s, key) = fresh("tail");
    s.track("/v1/track", &key, r#"{"userId":"u","event":"Before"}"#);
    let mut stream = std::net::TcpStream::connect(&s.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /api/v1/events/stream?event=Live HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.contains("200"), "{line}");
    // Give the stream a moment to take its starting position, then send.
    std::thread::sleep(Duration::from_millis(300));
    s.track("/v1/track", &key, r#"{"userId":"u","event":"Ignored"}"#);
    s.track(
        "/v1/track",
        &key,
        r#"{"userId":"u","event":"Live","properties":{"n":1}}"#,
    );
    let mut data = None;
    for _ in 0..200 {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(d) = line.strip_prefix("data: ") {
            data = Some(serde_json::from_str::<serde_json::Value>(d.trim()).unwrap());
            break;
        }
    }
    let e = data.expect("an SSE data line");
    assert_eq!(e["event"], "Live");
    assert_eq!(e["properties"]["n"], 1);
}
