//! `tessera bench`: the benchmark commands. `bench ingest` is a load generator for the Tracking API. It drives `/v1/batch` on
//! loopback over many kept-alive connections with N-event batches, and prints events/s
//! durably acknowledged, request latency percentiles, the server's peak memory and CPU, and
//! the group-commit figures that say where the time goes.
//!
//! Without `--url` it starts `tessera serve` itself on a fresh data directory, so the figures
//! are of a cold, empty store and of the server process alone.

use crate::minihttp::{basic_auth, request, Conn};
use clap::{Args, Subcommand};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_bodies_are_valid_batches_with_unique_ids() {
        let mut t = BatchTemplate::new(7, 3, 5);
        let a: serde_json::Value = serde_json::from_slice(t.next(1)).unwrap();
        let b: serde_json::Value = serde_json::from_slice(t.next(2)).unwrap();
        assert_eq!(a["batch"].as_array().unwrap().len(), 5);
        let ids = |v: &serde_json::Value| -> Vec<String> {
            v["batch"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["messageId"].as_str().unwrap().to_string())
                .collect()
        };
        let (ia, ib) = (ids(&a), ids(&b));
        assert!(ia.iter().all(|id| !ib.contains(id)));
        assert_eq!(ia.iter().collect::<std::collections::HashSet<_>>().len(), 5);
    }
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Ingest throughput and latency of the Tracking API.
    Ingest(IngestArgs),
    /// Identity engine: apply throughput on one core, memory per profile, resume time.
    Identity(crate::bench_identity::IdentityArgs),
    /// Profile API: latency and requests/s of profile reads, and start-up time, at N profiles.
    Profiles(crate::bench_profiles::ProfilesArgs),
    /// Batch audience evaluation against DuckDB on the same synthetic data; memory with
    /// computed traits and audiences.
    Segments(crate::bench_segments::SegmentsArgs),
    /// Real-time audiences: delay from an event's acknowledgement to its Audience Entered
    /// record, at a sustained event rate.
    Realtime(crate::bench_realtime::RealtimeArgs),
    /// Webhook delivery: deliveries/s, and the delay from an event's acknowledgement to its
    /// webhook at a fixed rate, alone and beside a destination that times out.
    Delivery(crate::bench_delivery::DeliveryArgs),
}

#[derive(Args, Debug)]
pub struct IngestArgs {
    /// host:port of a running server; when absent one is started on a temporary data dir.
    #[arg(long)]
    pub url: Option<String>,
    /// Write key to use with --url.
    #[arg(long, requires = "url")]
    pub write_key: Option<String>,
    /// Concurrent connections.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Events per batch request.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Data directory of the started server [default: a new temporary directory].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

pub fn run(cmd: BenchCommand) -> Result<(), String> {
    match cmd {
        BenchCommand::Ingest(args) => ingest(args),
        BenchCommand::Identity(args) => crate::bench_identity::run(args),
        BenchCommand::Profiles(args) => crate::bench_profiles::run(args),
        BenchCommand::Segments(args) => crate::bench_segments::run(args),
        BenchCommand::Realtime(args) => crate::bench_realtime::run(args),
        BenchCommand::Delivery(args) => crate::bench_delivery::run(args),
    }
}

/// A `tessera serve` child process, stopped with SIGTERM when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: String,
    data_dir: PathBuf,
    owns_dir: bool,
}

impl Server {
    pub(crate) fn start(data_dir: Option<PathBuf>, token: &str) -> Result<Server, String> {
        let (data_dir, owns_dir) = match data_dir {
            Some(d) => (d, false),
            None => (
                std::env::temp_dir().join(format!(
                    "tessera-bench-{}-{}",
                    std::process::id(),
                    random_u64()
                )),
                true,
            ),
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let child = Command::new(exe)
            .args(["serve", "--listen", &addr, "--data-dir"])
            .arg(&data_dir)
            .env("TESSERA_ADMIN_TOKEN", token)
            .env("TESSERA_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the server: {e}"))?;
        let server = Server {
            child,
            addr,
            data_dir,
            owns_dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if request(&server.addr, "GET", "/healthz", &[], b"").is_ok_and(|r| r.status == 200) {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("the server did not become healthy within 30 s".into())
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

pub(crate) fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("no random source");
    u64::from_le_bytes(b)
}

/// Reads `VmHWM` (peak resident memory) of a process, in KiB.
pub(crate) fn peak_rss_kib(pid: u32) -> Option<u64> {
    proc_status_kib(&pid.to_string(), "VmHWM:")
}

/// A kB figure of `/proc/{pid}/status` (`pid` may be `self`), such as `VmRSS:`.
pub(crate) fn proc_status_kib(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU seconds (user + system) a process has used.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz)
}

/// Seconds until every applier has caught up with the log (`None` after five minutes).
pub(crate) fn applier_caught_up(addr: &str) -> Option<f64> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(300) {
        let text = request(addr, "GET", "/metrics", &[], b"").ok()?.text();
        let lagging = text
            .lines()
            .filter(|l| l.starts_with("tessera_applier_lag_events{"))
            .any(|l| l.rsplit(' ').next() != Some("0"));
        if !lagging {
            return Some(started.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

pub(crate) fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Width of the per-request sequence number inside message ids.
const SEQ_WIDTH: usize = 12;

/// One connection's batch body, built once: realistic track calls of about 400 bytes each,
/// whose message ids carry a fixed-width sequence number that [`BatchTemplate::next`] rewrites
/// in place. The generator shares the machine's cores with the server, so it must be cheap.
struct BatchTemplate {
    body: Vec<u8>,
    seq_offsets: Vec<usize>,
}

impl BatchTemplate {
    fn new(run: u64, conn: usize, n: usize) -> BatchTemplate {
        let mut body = String::from("{\"batch\":[");
        let mut seq_offsets = Vec::with_capacity(n);
        for i in 0..n {
            if i > 0 {
                body.push(',');
            }
            let user = (conn * n + i) % 100_000;
            let _ = write!(
                body,
                "{{\"type\":\"track\",\"event\":\"Product Viewed\",\"userId\":\"user-{user}\",\
                 \"anonymousId\":\"anon-{conn}-{user}\",\"messageId\":\"bench-{run:x}-{conn}-{i}-"
            );
            seq_offsets.push(body.len());
            body.push_str(&"0".repeat(SEQ_WIDTH));
            let _ = write!(
                body,
                "\",\"timestamp\":\"2026-11-23T10:00:00.000Z\",\"properties\":{{\"product_id\":\"p-{i}\",\
                 \"price\":19.99,\"currency\":\"EUR\",\"category\":\"shoes\"}},\"context\":{{\"ip\":\
                 \"203.0.113.7\",\"userAgent\":\"Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0\",\
                 \"library\":{{\"name\":\"tessera-bench\",\"version\":\"1\"}}}}}}"
            );
        }
        body.push_str("],\"sentAt\":\"2026-11-23T10:00:00.100Z\"}");
        BatchTemplate {
            body: body.into_bytes(),
            seq_offsets,
        }
    }

    /// The body for request `seq`: every message id made unique by it.
    fn next(&mut self, seq: u64) -> &[u8] {
        let digits = format!("{seq:0width$}", width = SEQ_WIDTH);
        for &at in &self.seq_offsets {
            self.body[at..at + SEQ_WIDTH].copy_from_slice(digits.as_bytes());
        }
        &self.body
    }
}

fn ingest(args: IngestArgs) -> Result<(), String> {
    let token = format!("bench-{:x}", random_u64());
    let server = match &args.url {
        Some(_) => None,
        None => Some(Server::start(args.data_dir.clone(), &token)?),
    };
    let addr = args
        .url
        .clone()
        .map(|u| {
            u.trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string()
        })
        .or_else(|| server.as_ref().map(|s| s.addr.clone()))
        .expect("either --url or a started server");
    let write_key = match (&args.write_key, &server) {
        (Some(k), _) => k.clone(),
        (None, Some(_)) => {
            let auth = format!("Bearer {token}");
            let r = request(
                &addr,
                "POST",
                "/api/v1/sources",
                &[("Authorization", &auth)],
                br#"{"name":"bench"}"#,
            )
            .map_err(|e| e.to_string())?;
            r.json()["write_key"]
                .as_str()
                .ok_or(format!("cannot create a source: {}", r.text()))?
                .to_string()
        }
        (None, None) => return Err("--url needs --write-key".into()),
    };
    let auth = basic_auth(&write_key);
    let run = random_u64();
    let cpu_before = server.as_ref().and_then(|s| cpu_seconds(s.pid()));
    let acked = Arc::new(AtomicU64::new(0));
    let throttled = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    println!(
        "bench ingest: {} connections, {}-event batches, {} s against {addr}",
        args.connections, args.batch, args.duration
    );
    let workers: Vec<_> = (0..args.connections)
        .map(|conn_no| {
            let (addr, auth) = (addr.clone(), auth.clone());
            let (acked, throttled, failed) = (acked.clone(), throttled.clone(), failed.clone());
            let batch = args.batch;
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let Ok(mut conn) = Conn::connect(&addr) else {
                    failed.fetch_add(1, Relaxed);
                    return latencies;
                };
                let mut template = BatchTemplate::new(run, conn_no, batch);
                let mut seq = 0u64;
                while Instant::now() < deadline {
                    let body = template.next(seq);
                    let t = Instant::now();
                    let headers = [
                        ("Authorization", auth.as_str()),
                        ("Content-Type", "application/json"),
                    ];
                    match conn.send("POST", "/v1/batch", &headers, body) {
                        Ok(r) if r.status == 200 => {
                            latencies.push(t.elapsed().as_micros() as u32);
                            acked.fetch_add(batch as u64, Relaxed);
                            seq += 1;
                        }
                        Ok(r) if r.status == 429 => {
                            throttled.fetch_add(1, Relaxed);
                            std::thread::sleep(Duration::from_millis(20));
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
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<u32> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap_or_default())
        .collect();
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i] as f64 / 1000.0
    };
    let events = acked.load(Relaxed);
    println!("events acknowledged: {events} in {elapsed:.1} s");
    println!(
        "throughput:          {:.0} events/s ({:.0} requests/s)",
        events as f64 / elapsed,
        latencies.len() as f64 / elapsed
    );
    println!(
        "latency per batch:   p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "throttled (429):     {}   failed: {}",
        throttled.load(Relaxed),
        failed.load(Relaxed)
    );
    if let Ok(m) = request(&addr, "GET", "/metrics", &[], b"") {
        let text = m.text();
        let commits = metric(&text, "tessera_log_commits_total");
        let commit_sum = metric(&text, "tessera_log_commit_duration_seconds_sum");
        if commits > 0.0 {
            println!(
                "group commits:       {commits:.0} ({:.0} events each, {:.2} ms each incl. fsync; the log writer was busy {:.0}% of the time)",
                events as f64 / commits,
                commit_sum / commits * 1000.0,
                commit_sum / elapsed * 100.0
            );
        }
    }
    if let Some(caught_up) = applier_caught_up(&addr) {
        println!(
            "profiles:            applied {:.1} s after the load ended ({:.0} events/s applied over the run)",
            caught_up,
            events as f64 / (elapsed + caught_up)
        );
    }
    if let Some(s) = &server {
        if let (Some(before), Some(after)) = (cpu_before, cpu_seconds(s.pid())) {
            println!(
                "server CPU:          {:.2} cores busy on average",
                (after - before) / elapsed
            );
        }
        if let Some(kib) = peak_rss_kib(s.pid()) {
            println!("server peak memory:  {:.1} MiB", kib as f64 / 1024.0);
        }
    }
    if events == 0 {
        return Err("no event was acknowledged".into());
    }
    Ok(())
}
