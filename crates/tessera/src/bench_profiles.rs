//! `tessera bench profiles`: the Profile API under load at N profiles. It starts a server on a
//! fresh data directory, loads N people through the Tracking API (one identify each), waits
//! for the applier, restarts the server to time start-up with N profiles, then reads random
//! profiles by `user_id:…` over many kept-alive connections and prints requests/s and
//! latency percentiles.

use crate::bench::{metric, peak_rss_kib, random_u64, Server};
use crate::minihttp::{basic_auth, request, Conn};
use clap::Args;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct ProfilesArgs {
    /// Profiles to load before the load test.
    #[arg(long, default_value_t = 1_000_000)]
    pub profiles: u64,
    /// Concurrent connections reading profiles.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Data directory to use and keep [default: a new temporary directory, removed after].
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
}

fn load_people(addr: &str, write_key: &str, people: u64) -> Result<(), String> {
    const BATCH: u64 = 500;
    const CONNS: u64 = 8;
    let auth = basic_auth(write_key);
    let workers: Vec<_> = (0..CONNS)
        .map(|w| {
            let (addr, auth) = (addr.to_string(), auth.clone());
            std::thread::spawn(move || -> Result<(), String> {
                let mut conn = Conn::connect(&addr).map_err(|e| e.to_string())?;
                let mut start = w * BATCH;
                while start < people {
                    let end = (start + BATCH).min(people);
                    let mut body = String::from("{\"batch\":[");
                    for i in start..end {
                        if i > start {
                            body.push(',');
                        }
                        body.push_str(&format!(
                            r#"{{"type":"identify","userId":"user-{i}","anonymousId":"anon-{i}","messageId":"load-{i}","traits":{{"email":"user{i}@example.com","name":"Person {i}","plan":"pro","company":"Example Ltd"}}}}"#
                        ));
                    }
                    body.push_str("]}");
                    let headers = [
                        ("Authorization", auth.as_str()),
                        ("Content-Type", "application/json"),
                    ];
                    match conn.send("POST", "/v1/batch", &headers, body.as_bytes()) {
                        Ok(r) if r.status == 200 => start += CONNS * BATCH,
                        Ok(r) if r.status == 429 => std::thread::sleep(Duration::from_millis(20)),
                        Ok(r) => return Err(format!("loading failed: {} {}", r.status, r.text())),
                        Err(_) => conn = Conn::connect(&addr).map_err(|e| e.to_string())?,
                    }
                }
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| "a loader thread panicked")??;
    }
    Ok(())
}

/// Waits until the applier has caught up with the log.
fn wait_applied(addr: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(1800);
    while Instant::now() < deadline {
        if let Ok(m) = request(addr, "GET", "/metrics", &[], b"") {
            let text = m.text();
            let lag = metric(&text, "tessera_applier_lag_events{workspace=\"default\"}");
            let pos = metric(&text, "tessera_applier_position{workspace=\"default\"}");
            if pos > 0.0 && lag == 0.0 {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err("the applier did not catch up within 30 minutes".into())
}

pub fn run(args: ProfilesArgs) -> Result<(), String> {
    let token = format!("bench-{:x}", random_u64());
    let dir = args.data_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("tessera-bench-profiles-{:x}", random_u64()))
    });
    let result = run_in(&args, &token, &dir);
    if args.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn run_in(args: &ProfilesArgs, token: &str, dir: &std::path::Path) -> Result<(), String> {
    let bearer = format!("Bearer {token}");
    let server = Server::start(Some(dir.to_path_buf()), token)?;
    let r = request(
        &server.addr,
        "POST",
        "/api/v1/sources",
        &[("Authorization", &bearer)],
        br#"{"name":"bench"}"#,
    )
    .map_err(|e| e.to_string())?;
    let write_key = r.json()["write_key"]
        .as_str()
        .ok_or(format!("cannot create a source: {}", r.text()))?
        .to_string();
    println!("bench profiles: loading {} people", args.profiles);
    let t = Instant::now();
    load_people(&server.addr, &write_key, args.profiles)?;
    let ingested = t.elapsed();
    wait_applied(&server.addr)?;
    println!(
        "loaded: ingested in {:.1} s, profiles applied after {:.1} s",
        ingested.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
    drop(server);
    let t = Instant::now();
    let server = Server::start(Some(dir.to_path_buf()), token)?;
    println!(
        "start-up with {} profiles: {:.2} s until healthy",
        args.profiles,
        t.elapsed().as_secs_f64()
    );
    let addr = server.addr.clone();
    let check = request(
        &addr,
        "GET",
        &format!("/v1/profiles/user_id:user-{}", args.profiles - 1),
        &[("Authorization", &bearer)],
        b"",
    )
    .map_err(|e| e.to_string())?;
    if check.status != 200 {
        return Err(format!("profile not found after restart: {}", check.text()));
    }
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let workers: Vec<_> = (0..args.connections)
        .map(|c| {
            let (addr, bearer) = (addr.clone(), bearer.clone());
            let (ok, failed) = (ok.clone(), failed.clone());
            let people = args.profiles;
            std::thread::spawn(move || {
                let mut lat: Vec<u32> = Vec::new();
                let Ok(mut conn) = Conn::connect(&addr) else {
                    return lat;
                };
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (c as u64 + 1);
                while Instant::now() < deadline {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let path = format!("/v1/profiles/user_id:user-{}", x % people);
                    let t = Instant::now();
                    match conn.send("GET", &path, &[("Authorization", bearer.as_str())], b"") {
                        Ok(r) if r.status == 200 => {
                            lat.push(t.elapsed().as_micros() as u32);
                            ok.fetch_add(1, Relaxed);
                        }
                        _ => {
                            failed.fetch_add(1, Relaxed);
                            match Conn::connect(&addr) {
                                Ok(c) => conn = c,
                                Err(_) => break,
                            }
                        }
                    }
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<u32> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap_or_default())
        .collect();
    let elapsed = started.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[i] as f64 / 1000.0
    };
    println!(
        "profile reads: {:.0} requests/s over {} connections for {:.1} s",
        ok.load(Relaxed) as f64 / elapsed,
        args.connections,
        elapsed
    );
    println!(
        "latency: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms; failed: {}",
        pct(0.5),
        pct(0.99),
        pct(0.999),
        pct(1.0),
        failed.load(Relaxed)
    );
    if let Some(kib) = peak_rss_kib(server.pid()) {
        println!("server peak memory: {:.1} MiB", kib as f64 / 1024.0);
    }
    if ok.load(Relaxed) == 0 {
        return Err("no profile read succeeded".into());
    }
    Ok(())
}
