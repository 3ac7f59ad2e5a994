//! Crash safety: concurrent clients send batches, the server is killed with SIGKILL mid-load,
//! and after a restart on the same data directory every batch that got a 200 is stored exactly
//! once (unacknowledged ones may or may not be there: their SDK would retry them).

use crate::support::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera::minihttp::Conn;

const CLIENTS: usize = 6;
const BATCH: usize = 50;

#[test]
fn kill_9_mid_load_loses_nothing_acknowledged() {
    let dir = TempDir::new("crash");
    let mut s = Server::start(dir.path());
    let key = s.source("load");
    let auth = basic_auth(&key);
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (addr, auth, stop, acked) = (s.addr.clone(), auth.clone(), stop.clone(), acked.clone());
            std::thread::spawn(move || {
                let Ok(mut conn) = Conn::connect(&addr) else { return 0 };
                let mut batches = 0;
                for seq in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let ids: Vec<String> = (0..BATCH).map(|i| format!("c{c}-{seq}-{i}")).collect();
                    let items: Vec<String> = ids
                        .iter()
                        .map(|id| format!(r#"{{"type":"track","userId":"u{c}","event":"Load","messageId":"{id}"}}"#))
                        .collect();
                    let body = format!(r#"{{"batch":[{}]}}"#, items.join(","));
                    match conn.send("POST", "/v1/batch", &[("Authorization", &auth)], body.as_bytes()) {
                        Ok(r) if r.status == 200 => {
                            acked.lock().unwrap().extend(ids);
                            batches += 1;
                        }
                        Ok(r) if r.status == 429 => std::thread::sleep(Duration::from_millis(10)),
                        Ok(r) => panic!("unexpected answer {}: {}", r.status, r.text()),
                        Err(_) => break, // the server died under us
                    }
                }
                batches
            })
        })
        .collect();
    // Let the load build up, then pull the plug.
    std::thread::sleep(Duration::from_millis(1500));
    s.kill9();
    stop.store(true, Ordering::Relaxed);
    let batches: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    let acked = acked.lock().unwrap().clone();
    assert!(
        batches > 10,
        "the load should have been acknowledged many times, got {batches}"
    );
    eprintln!(
        "crash test: {} events in {batches} batches acknowledged before kill -9",
        acked.len()
    );

    let s = Server::start(dir.path());
    let mut stored: HashMap<String, u32> = HashMap::new();
    let mut cursor = String::new();
    loop {
        let page = s
            .admin("GET", &format!("/api/v1/events?limit=1000{cursor}"), "")
            .json();
        for e in page["events"].as_array().unwrap() {
            *stored
                .entry(e["messageId"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| !stored.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(stored.values().all(|&n| n == 1), "an event is stored twice");
    eprintln!(
        "crash test: {} events stored after restart, all {} acknowledged present once",
        stored.len(),
        acked.len()
    );
    // The restarted server takes new events.
    assert_eq!(
        s.track("/v1/track", &key, r#"{"userId":"u","event":"After"}"#)
            .status,
        200
    );
}
