//! `tessera bench delivery`: webhook delivery to a local receiver. Three figures:
//! 1. throughput: a backlog of events built up while the destination is paused, then resumed;
//!    deliveries (requests) per second until the receiver has them all;
//! 2. delay: events sent at a fixed rate; the time from each event's acknowledgement to its
//!    webhook arriving at the receiver, p50 and p99;
//! 3. isolation: the same, with a second destination beside it whose receiver never answers
//!    in time (every request times out): the first one's delay percentiles.

use crate::bench::{random_u64, Server};
use crate::minihttp::{basic_auth, request, Conn};
use crate::receiver::{Receiver, Reply};
use clap::Args;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct DeliveryArgs {
    /// Events of the backlog delivered in the throughput run.
    #[arg(long, default_value_t = 50_000)]
    pub backlog: usize,
    /// Events per second of the delay runs.
    #[arg(long, default_value_t = 5_000)]
    pub rate: u64,
    /// Seconds of each delay run.
    #[arg(long, default_value_t = 15)]
    pub duration: u64,
    /// Concurrent client connections sending events.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Events per batch request.
    #[arg(long, default_value_t = 25)]
    pub batch: usize,
    /// Parallel requests (lanes) of the measured destination.
    #[arg(long, default_value_t = 4)]
    pub concurrency: u32,
    /// Data directory of the started server [default: a new temporary directory].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

struct Bench {
    addr: String,
    admin: String,
    auth: String,
    run: u64,
}

impl Bench {
    fn call(&self, method: &str, path: &str, body: &str) -> Result<Value, String> {
        let r = request(
            &self.addr,
            method,
            path,
            &[("Authorization", &self.admin)],
            body.as_bytes(),
        )
        .map_err(|e| e.to_string())?;
        match r.status {
            200 | 201 | 204 => Ok(r.json()),
            _ => Err(format!("{method} {path}: {} {}", r.status, r.text())),
        }
    }

    /// Creates a webhook destination; answers its id.
    fn webhook(&self, name: &str, url: &str, extra: &str) -> Result<String, String> {
        let body =
            format!(r#"{{"name":"{name}","type":"webhook","config":{{"url":"{url}"}}{extra}}}"#);
        let v = self.call("POST", "/api/v1/destinations", &body)?;
        Ok(v["id"].as_str().ok_or("no destination id")?.to_string())
    }

    /// Sends `total` events (or for `duration` at `rate`), answering each message id with
    /// the instant its batch was acknowledged.
    fn send(
        &self,
        tag: &str,
        rate: Option<u64>,
        until: Duration,
        total: usize,
        args: &DeliveryArgs,
    ) -> HashMap<String, Instant> {
        let per_conn = rate.map(|r| r as f64 / args.connections as f64 / args.batch as f64);
        let interval = per_conn.map(|p| Duration::from_secs_f64(1.0 / p.max(0.001)));
        let deadline = Instant::now() + until;
        let per_conn_total = total.div_ceil(args.connections);
        let results: Vec<Vec<(String, Instant)>> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..args.connections)
                .map(|c| {
                    s.spawn(move || {
                        let mut acks = Vec::new();
                        let Ok(mut conn) = Conn::connect(&self.addr) else {
                            return acks;
                        };
                        let mut next = Instant::now();
                        let mut seq = 0usize;
                        while Instant::now() < deadline && seq * args.batch < per_conn_total {
                            if let Some(i) = interval {
                                let now = Instant::now();
                                if now < next {
                                    std::thread::sleep(next - now);
                                }
                                next += i;
                            }
                            let mut body = String::from("{\"batch\":[");
                            let mut ids = Vec::with_capacity(args.batch);
                            for i in 0..args.batch {
                                let id = format!("{tag}-{:x}-{c}-{seq}-{i}", self.run);
                                if i > 0 {
                                    body.push(',');
                                }
                                let _ = write!(
                                    body,
                                    "{{\"type\":\"track\",\"event\":\"Order Completed\",\"userId\":\"u{}\",\"messageId\":\"{id}\",\"properties\":{{\"total\":42.5,\"currency\":\"EUR\"}}}}",
                                    random_u64() % 20_000
                                );
                                ids.push(id);
                            }
                            body.push_str("]}");
                            seq += 1;
                            let headers = [
                                ("Authorization", self.auth.as_str()),
                                ("Content-Type", "application/json"),
                            ];
                            match conn.send("POST", "/v1/batch", &headers, body.as_bytes()) {
                                Ok(r) if r.status == 200 => {
                                    let at = Instant::now();
                                    acks.extend(ids.into_iter().map(|id| (id, at)));
                                }
                                _ => match Conn::connect(&self.addr) {
                                    Ok(c) => conn = c,
                                    Err(_) => break,
                                },
                            }
                        }
                        acks
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_default())
                .collect()
        });
        results.into_iter().flatten().collect()
    }
}

/// Waits until the receiver has `n` requests (or nothing new arrived for 30 s).
fn wait_for(rx: &Receiver, n: usize) -> usize {
    let mut last = (0, Instant::now());
    loop {
        let got = rx.wait_for(n, Duration::from_secs(1)).len();
        if got >= n {
            return got;
        }
        if got != last.0 {
            last = (got, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(30) {
            return got;
        }
    }
}

/// Delay percentiles (ms) from acknowledgement to arrival, by message id.
fn delays(rx: &Receiver, acks: &HashMap<String, Instant>) -> (Vec<f64>, usize) {
    let mut out = Vec::with_capacity(acks.len());
    let mut seen = std::collections::HashSet::new();
    for r in rx.received() {
        let v = r.json();
        let Some(id) = v["messageId"].as_str() else {
            continue;
        };
        if let (Some(acked), true) = (acks.get(id), seen.insert(id.to_string())) {
            // Arrived before the client read its acknowledgement: no delay.
            out.push(r.at.saturating_duration_since(*acked).as_secs_f64() * 1000.0);
        }
    }
    out.sort_by(f64::total_cmp);
    let missing = acks.len() - out.len();
    (out, missing)
}

fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1]
}

fn report(what: &str, rx: &Receiver, acks: &HashMap<String, Instant>) -> Result<(), String> {
    wait_for(rx, acks.len());
    let (d, missing) = delays(rx, acks);
    println!(
        "{what}: {} webhooks; acknowledged → arrived p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        d.len(),
        pct(&d, 0.5),
        pct(&d, 0.9),
        pct(&d, 0.99),
        pct(&d, 1.0)
    );
    match missing {
        0 => Ok(()),
        n => Err(format!("{what}: {n} events never arrived")),
    }
}

pub fn run(args: DeliveryArgs) -> Result<(), String> {
    let token = format!("bench-{:x}", random_u64());
    let server = Server::start(args.data_dir.clone(), &token)?;
    let mut b = Bench {
        addr: server.addr.clone(),
        admin: format!("Bearer {token}"),
        auth: String::new(),
        run: random_u64(),
    };
    let key = b.call("POST", "/api/v1/sources", r#"{"name":"bench"}"#)?["write_key"]
        .as_str()
        .ok_or("no write key")?
        .to_string();
    b.auth = basic_auth(&key);
    let lanes = format!(r#","concurrency":{}"#, args.concurrency);

    // 1. Throughput: a paused destination collects a backlog, then is resumed.
    let rx = Receiver::start();
    let id = b.webhook(
        "throughput",
        &rx.url("/t"),
        &format!("{lanes},\"paused\":true"),
    )?;
    println!(
        "bench delivery: backlog of {} events, destination concurrency {}",
        args.backlog, args.concurrency
    );
    let acks = b.send("t", None, Duration::from_secs(600), args.backlog, &args);
    // Wait until every record is decided (the applier caught up) before resuming.
    crate::bench::applier_caught_up(&b.addr).ok_or("the applier did not catch up")?;
    let started = Instant::now();
    b.call("POST", &format!("/api/v1/destinations/{id}/resume"), "")?;
    let got = wait_for(&rx, acks.len());
    let secs = started.elapsed().as_secs_f64();
    println!(
        "throughput: {got} webhooks in {secs:.2} s = {:.0} deliveries/s (one event per request)",
        got as f64 / secs
    );
    b.call("DELETE", &format!("/api/v1/destinations/{id}"), "")?;
    drop(rx);

    // 2. Delay at a fixed rate.
    let rx = Receiver::start();
    let fast = b.webhook("delay", &rx.url("/d"), &lanes)?;
    println!(
        "delay run: {} events/s for {} s ({} connections, {}-event batches)",
        args.rate, args.duration, args.connections, args.batch
    );
    let acks = b.send(
        "d",
        Some(args.rate),
        Duration::from_secs(args.duration),
        usize::MAX,
        &args,
    );
    report("alone", &rx, &acks)?;

    // 3. The same beside a destination that times out on every request.
    let dead = Receiver::start();
    dead.set_default(Reply::ok().after(Duration::from_secs(3600)));
    let body = format!(
        r#"{{"name":"timing out","type":"webhook","config":{{"url":"{}","timeout_ms":1000}}{lanes}}}"#,
        dead.url("/x")
    );
    b.call("POST", "/api/v1/destinations", &body)?;
    let rx2 = Receiver::start();
    b.call("DELETE", &format!("/api/v1/destinations/{fast}"), "")?;
    b.webhook("beside", &rx2.url("/d"), &lanes)?;
    let acks = b.send(
        "i",
        Some(args.rate),
        Duration::from_secs(args.duration),
        usize::MAX,
        &args,
    );
    report("beside a timing-out destination", &rx2, &acks)?;
    println!(
        "timing-out destination: {} requests received (each timed out after 1 s)",
        dead.received().len()
    );
    Ok(())
}
