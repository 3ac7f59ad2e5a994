//! `tessera bench identity`: apply throughput of the identity engine on one core, memory of
//! the hot state per profile, the cost of persisting it, and the time to resume from it.
//!
//! The stream is synthetic but shaped like a CDP's traffic: people with one to three devices
//! browse anonymously, sometimes log in (identify with userId, email and traits), after
//! which that device's events carry their userId; logging in on a second device merges its
//! anonymous profile into theirs. Event bodies are full Segment messages as the log stores
//! them, so parsing is measured too. Bodies are generated in chunks outside the timed part.

use crate::bench::proc_status_kib;
use clap::Args;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tessera_core::identity::{Engine, EventFacts, IdentityRules};
use tessera_core::time::format_iso8601;
use tessera_server::applier::{commit_cadence, docs_cadence, COMMIT_EVENTS};
use tessera_server::restore::restore_engine;
use tessera_store::ProfileDb;

#[derive(Args, Debug)]
pub struct IdentityArgs {
    /// Events in the stream.
    #[arg(long, default_value_t = 10_000_000)]
    pub events: u64,
    /// People the events come from.
    #[arg(long, default_value_t = 1_000_000)]
    pub people: u64,
    /// Skip persisting to SQLite (engine only).
    #[arg(long)]
    pub no_persist: bool,
    /// Directory for the state file [default: a new temporary directory, removed after].
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// xorshift64*: fast, seeded, so every run sees the same stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Stream {
    rng: Rng,
    people: u64,
    /// Per person, a bit per device on which they have logged in.
    known: Vec<u8>,
    seq: u64,
    clock: i64,
}

const CONTEXT: &str = r#""library":{"name":"analytics.js","version":"5.2.1"},"userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36","locale":"en-GB","ip":"203.0.113.7""#;

impl Stream {
    fn new(people: u64) -> Stream {
        Stream {
            rng: Rng(0x9E37_79B9_7F4A_7C15),
            people,
            known: vec![0; people as usize],
            seq: 0,
            clock: 1_767_225_600_000,
        }
    }

    /// The next event as (timestamp, stored body).
    fn next(&mut self) -> (i64, String) {
        self.seq += 1;
        self.clock += 1 + self.rng.below(20) as i64;
        // A few events arrive late, as SDK retries and offline phones do.
        let ts = if self.rng.below(100) == 0 {
            self.clock - 3_600_000
        } else {
            self.clock
        };
        let p = self.rng.below(self.people);
        let devices = 1 + p % 3;
        let d = self.rng.below(devices);
        let known = self.known[p as usize] & (1 << d) != 0;
        let roll = self.rng.below(100);
        let when = format_iso8601(ts);
        let mid = self.seq;
        let device = if d == 2 {
            format!(r#","device":{{"id":"dev-{p}-{d}","type":"ios"}}"#)
        } else {
            String::new()
        };
        if roll < 6 {
            self.known[p as usize] |= 1 << d;
            let plan = ["free", "pro", "team"][self.rng.below(3) as usize];
            return (
                ts,
                format!(
                    r#"{{"type":"identify","userId":"user-{p}","anonymousId":"anon-{p}-{d}","traits":{{"email":"user{p}@example.com","name":"Person {p}","plan":"{plan}","logins":{mid}}},"context":{{{CONTEXT}{device}}},"messageId":"m-{mid}","timestamp":"{when}","receivedAt":"{when}"}}"#
                ),
            );
        }
        let user = if known {
            format!(r#""userId":"user-{p}","#)
        } else {
            String::new()
        };
        let body = if roll < 60 {
            format!(
                r#"{{"type":"page","name":"Pricing",{user}"anonymousId":"anon-{p}-{d}","properties":{{"path":"/pricing","url":"https://example.com/pricing","title":"Pricing"}},"context":{{{CONTEXT}{device}}},"messageId":"m-{mid}","timestamp":"{when}","receivedAt":"{when}"}}"#
            )
        } else {
            format!(
                r#"{{"type":"track","event":"Product Viewed",{user}"anonymousId":"anon-{p}-{d}","properties":{{"sku":"sku-{}","price":19.99}},"context":{{{CONTEXT}{device}}},"messageId":"m-{mid}","timestamp":"{when}","receivedAt":"{when}"}}"#,
                roll
            )
        };
        (ts, body)
    }
}

/// Resident memory of this process, in bytes.
fn rss_bytes() -> u64 {
    proc_status_kib("self", "VmRSS:").map_or(0, |kb| kb * 1024)
}

pub fn run(args: IdentityArgs) -> Result<(), String> {
    const CHUNK: u64 = 100_000;
    let owns_dir = args.dir.is_none();
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("tessera-bench-identity-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let db = if args.no_persist {
        None
    } else {
        Some(ProfileDb::create(&dir.join("bench.db")).map_err(|e| e.to_string())?)
    };
    println!(
        "bench identity: {} events from {} people{}",
        args.events,
        args.people,
        if db.is_some() {
            ", persisted to SQLite"
        } else {
            ""
        }
    );
    let rss_start = rss_bytes();
    let mut stream = Stream::new(args.people);
    let mut engine = Engine::new(IdentityRules::default());
    let mut apply_time = Duration::ZERO;
    let mut persist_time = Duration::ZERO;
    let mut take_time = Duration::ZERO;
    let mut position = 0i64;
    let mut since_commit = 0u64;
    let mut commits = commit_cadence();
    let mut docs = docs_cadence();
    let mut doc_writes = 1;
    let mut commit_count = 1;
    let mut attached = 0u64;
    let mut done = 0u64;
    while done < args.events {
        let n = CHUNK.min(args.events - done);
        let chunk: Vec<(i64, String)> = (0..n).map(|_| stream.next()).collect();
        let t = Instant::now();
        for (ts, body) in &chunk {
            position += 1;
            let facts =
                EventFacts::parse(position, *ts, "src_bench", body).map_err(|e| e.to_string())?;
            attached += engine.apply(&facts).is_some() as u64;
            since_commit += 1;
            // Commit as the applier does: by time, or by count when that comes first.
            if since_commit as usize >= COMMIT_EVENTS || commits.due() {
                since_commit = 0;
                let t2 = Instant::now();
                let with_docs = docs.due();
                let drained = engine.drain_changes(with_docs);
                let batch = engine.batch_of(drained);
                take_time += t2.elapsed();
                if let Some(db) = &db {
                    db.commit(&batch).map_err(|e| e.to_string())?;
                }
                persist_time += t2.elapsed();
                if with_docs {
                    docs.started();
                    docs.took(t2.elapsed());
                    doc_writes += 1;
                } else {
                    commits.took(t2.elapsed());
                }
                commits.started();
                commit_count += 1;
            }
        }
        apply_time += t.elapsed();
        done += n;
    }
    let t2 = Instant::now();
    let batch = engine.take_changes();
    if let Some(db) = &db {
        db.commit(&batch).map_err(|e| e.to_string())?;
    }
    persist_time += t2.elapsed();
    apply_time += t2.elapsed();
    let engine_only = apply_time - persist_time;
    let stats = engine.stats();
    println!(
        "apply (parse + resolve + traits), one core: {:.0} events/s ({:.2} s)",
        done as f64 / engine_only.as_secs_f64(),
        engine_only.as_secs_f64()
    );
    if db.is_some() {
        println!(
            "apply + persist (changes + SQLite commits), one core: {:.0} events/s ({:.2} s, of which persisting {:.2} s: building rows {:.2} s, SQLite {:.2} s; {} commits, profile documents written in {})",
            done as f64 / apply_time.as_secs_f64(),
            apply_time.as_secs_f64(),
            persist_time.as_secs_f64(),
            take_time.as_secs_f64(),
            (persist_time - take_time).as_secs_f64(),
            commit_count,
            doc_writes
        );
    }
    println!(
        "profiles: {} live, {} merged away; {} identifiers; {} of {} events attached",
        stats.live_profiles, stats.absorbed_profiles, stats.identifiers, attached, done
    );
    let live = stats.live_profiles.max(1) as f64;
    let rss_growth = rss_bytes().saturating_sub(rss_start);
    println!(
        "hot state: {:.0} bytes per live profile (engine estimate {:.1} MiB); process memory grew {:.0} bytes per live profile",
        stats.approx_bytes as f64 / live,
        stats.approx_bytes as f64 / (1024.0 * 1024.0),
        rss_growth as f64 / live
    );
    if let Some(db) = db {
        drop(engine);
        // The server's start-up path.
        let t = Instant::now();
        let restored = restore_engine(&db, IdentityRules::default()).map_err(|e| e.to_string())?;
        println!(
            "resume with {} profiles: {:.2} s (read from SQLite and rebuild the hot state)",
            restored.stats().live_profiles,
            t.elapsed().as_secs_f64()
        );
        let size = std::fs::metadata(db.path()).map(|m| m.len()).unwrap_or(0);
        println!("state file: {:.1} MiB", size as f64 / (1024.0 * 1024.0));
    }
    if owns_dir {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
