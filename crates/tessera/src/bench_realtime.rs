//! `tessera bench realtime`: how long after its acknowledgement an event's audience entry is
//! recorded, under a sustained event rate. It starts a server, defines audiences (one that
//! every new sign-up enters, plus windowed ones that every event re-evaluates), sends batches
//! at a fixed rate from several connections, and then matches each sign-up's acknowledgement
//! time with the `recorded_at_us` of its `Audience Entered` record.

use crate::bench::{applier_caught_up, peak_rss_kib, random_u64, Server};
use crate::minihttp::{basic_auth, request, Conn};
use clap::Args;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Args, Debug)]
pub struct RealtimeArgs {
    /// Events per second to sustain.
    #[arg(long, default_value_t = 20_000)]
    pub rate: u64,
    /// Seconds of load.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Events per batch request.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Sign-ups (new users entering an audience) per batch.
    #[arg(long, default_value_t = 5)]
    pub signups: usize,
    /// Data directory of the started server [default: a new temporary directory].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// What one connection did: (user, acknowledged at µs) of its sign-ups, events sent, and
/// batches sent behind schedule.
type Outcome = (Vec<(String, i64)>, u64, u64);

fn wall_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// A batch: `signups` "Signed Up" calls of new users, the rest product views of known users.
fn batch_body(run: u64, conn: usize, seq: u64, args: &RealtimeArgs) -> (String, Vec<String>) {
    let mut body = String::from("{\"batch\":[");
    let mut users = Vec::new();
    for i in 0..args.batch {
        if i > 0 {
            body.push(',');
        }
        let id = format!("{run:x}-{conn}-{seq}-{i}");
        if i < args.signups {
            let user = format!("new-{id}");
            let _ = write!(
                body,
                "{{\"type\":\"track\",\"event\":\"Signed Up\",\"userId\":\"{user}\",\"messageId\":\"m-{id}\",\
                 \"properties\":{{\"plan\":\"free\"}}}}"
            );
            users.push(user);
        } else {
            let user = (random_u64() % 50_000).to_string();
            let _ = write!(
                body,
                "{{\"type\":\"track\",\"event\":\"Product Viewed\",\"userId\":\"u{user}\",\"messageId\":\"m-{id}\",\
                 \"properties\":{{\"category\":\"jeans\",\"price\":39.9}},\"context\":{{\"traits\":{{\"country\":\"DE\"}}}}}}"
            );
        }
    }
    body.push_str("]}");
    (body, users)
}

pub fn run(args: RealtimeArgs) -> Result<(), String> {
    let token = format!("bench-{:x}", random_u64());
    let server = Server::start(args.data_dir.clone(), &token)?;
    let addr = server.addr.clone();
    let admin = format!("Bearer {token}");
    let post = |path: &str, body: &str| -> Result<serde_json::Value, String> {
        let r = request(
            &addr,
            "POST",
            path,
            &[("Authorization", &admin)],
            body.as_bytes(),
        )
        .map_err(|e| e.to_string())?;
        match r.status {
            200 | 201 => Ok(r.json()),
            _ => Err(format!("POST {path}: {} {}", r.status, r.text())),
        }
    };
    let write_key = post("/api/v1/sources", r#"{"name":"bench"}"#)?["write_key"]
        .as_str()
        .ok_or("no write key")?
        .to_string();
    post(
        "/api/v1/computed-traits",
        r#"{"name":"jeans_views_30d","definition":"count \"Product Viewed\" where category = \"jeans\" within 30 days"}"#,
    )?;
    let signed_up = post(
        "/api/v1/audiences",
        r#"{"name":"signed up","definition":"performed \"Signed Up\""}"#,
    )?["id"]
        .as_str()
        .ok_or("no audience id")?
        .to_string();
    post(
        "/api/v1/audiences",
        r#"{"name":"jeans fans DE","definition":"country = \"DE\" and performed \"Product Viewed\" where category = \"jeans\" at least 3 times within 30 days"}"#,
    )?;
    post(
        "/api/v1/audiences",
        r#"{"name":"heavy viewers","definition":"jeans_views_30d >= 10"}"#,
    )?;
    let auth = basic_auth(&write_key);
    let run = random_u64();
    let per_conn = args.rate as f64 / args.connections as f64 / args.batch as f64;
    let interval = Duration::from_secs_f64(1.0 / per_conn.max(0.001));
    println!(
        "bench realtime: {} events/s ({} connections, {}-event batches with {} sign-ups each) for {} s",
        args.rate, args.connections, args.batch, args.signups, args.duration
    );
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let args_ref = &args;
    let results: Vec<Outcome> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..args.connections)
            .map(|conn_no| {
                let (addr, auth) = (addr.clone(), auth.clone());
                s.spawn(move || {
                    let mut acks = Vec::new();
                    let (mut sent, mut late) = (0u64, 0u64);
                    let Ok(mut conn) = Conn::connect(&addr) else {
                        return (acks, sent, late);
                    };
                    let mut next = Instant::now();
                    let mut seq = 0u64;
                    while next < deadline {
                        let now = Instant::now();
                        if now < next {
                            std::thread::sleep(next - now);
                        } else if now > next + interval {
                            late += 1;
                        }
                        next += interval;
                        let (body, users) = batch_body(run, conn_no, seq, args_ref);
                        seq += 1;
                        let headers = [
                            ("Authorization", auth.as_str()),
                            ("Content-Type", "application/json"),
                        ];
                        match conn.send("POST", "/v1/batch", &headers, body.as_bytes()) {
                            Ok(r) if r.status == 200 => {
                                let at = wall_micros();
                                sent += args_ref.batch as u64;
                                acks.extend(users.into_iter().map(|u| (u, at)));
                            }
                            _ => match Conn::connect(&addr) {
                                Ok(c) => conn = c,
                                Err(_) => break,
                            },
                        }
                    }
                    (acks, sent, late)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let sent: u64 = results.iter().map(|r| r.1).sum();
    let late: u64 = results.iter().map(|r| r.2).sum();
    let acks: Vec<(String, i64)> = results.into_iter().flat_map(|r| r.0).collect();
    println!(
        "events acknowledged: {sent} in {elapsed:.1} s ({:.0} events/s; {late} batches sent behind schedule)",
        sent as f64 / elapsed
    );
    let caught = applier_caught_up(&addr).ok_or("the applier did not catch up")?;
    println!("applier caught up:   {caught:.2} s after the load ended");
    // Entries by profile id, with when they were recorded.
    let mut recorded: HashMap<String, i64> = HashMap::new();
    let mut cursor = String::new();
    loop {
        let path = format!("/api/v1/audiences/{signed_up}/events?limit=1000{cursor}");
        let r = request(&addr, "GET", &path, &[("Authorization", &admin)], b"")
            .map_err(|e| e.to_string())?;
        let page = r.json();
        for e in page["events"].as_array().into_iter().flatten() {
            if let (Some(p), Some(t)) = (
                e["properties"]["profile_id"].as_str(),
                e["recorded_at_us"].as_i64(),
            ) {
                recorded.insert(p.to_string(), t);
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let mut conn = Conn::connect(&addr).map_err(|e| e.to_string())?;
    let mut delays_us: Vec<i64> = Vec::with_capacity(acks.len());
    let mut missing = 0;
    for (user, acked_at) in &acks {
        let r = conn
            .send(
                "GET",
                &format!("/v1/profiles/user_id:{user}"),
                &[("Authorization", &admin)],
                b"",
            )
            .map_err(|e| e.to_string())?;
        let id = r.json()["id"].as_str().unwrap_or_default().to_string();
        match recorded.get(&id) {
            // Recorded before the client read its acknowledgement: no delay.
            Some(t) => delays_us.push((t - acked_at).max(0)),
            None => missing += 1,
        }
    }
    delays_us.sort_unstable();
    let pct = |p: f64| -> f64 {
        if delays_us.is_empty() {
            return 0.0;
        }
        let i = ((delays_us.len() as f64 * p).ceil() as usize).clamp(1, delays_us.len()) - 1;
        delays_us[i] as f64 / 1000.0
    };
    println!(
        "acknowledged → Audience Entered recorded ({} sign-ups): p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        delays_us.len(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
    if let Some(kib) = peak_rss_kib(server.pid()) {
        println!("server peak memory:  {:.1} MiB", kib as f64 / 1024.0);
    }
    if missing > 0 {
        return Err(format!(
            "{missing} sign-ups have no Audience Entered record"
        ));
    }
    Ok(())
}
