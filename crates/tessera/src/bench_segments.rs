//! `tessera bench segments`: batch audience evaluation of the segmentation core against DuckDB
//! on the same synthetic data, in the same run.
//!
//! A deterministic generator makes N profiles (country, plan, lifetime value, e-mail domain)
//! and M events over the last D days (30 event names, "Product Viewed" the most frequent; a
//! `category` property of 20 values; a `price` on "Product Added" and "Order Completed";
//! activity per profile heavy-tailed) and streams them, chunk by chunk, into a [`Segmenter`]
//! and into `profiles.csv` / `events.csv` in the work directory. Three questions are timed on
//! the [`Segmenter`] (`preview`, median of `--runs`): a trait-only audience, a trait filter AND
//! an event count in a window, and five such audiences one after another. The same questions
//! are then asked of DuckDB (`benches/segments_duckdb.py`, run in a virtualenv this command
//! creates in the work directory and fills from PyPI) over the same data loaded into its
//! memory; the sizes must be equal, and a table gives both times and their ratio.
//!
//! Last, unless `--no-memory`, 20 computed traits and 50 audiences are defined through
//! [`Segmenter::set_registry`], which backfills values and memberships, and the time and memory
//! that takes are reported.

mod data;
mod duckdb;
mod memory;

use crate::bench::proc_status_kib;
use clap::Args;
use data::*;
use duckdb::*;
use memory::*;
use serde_json::{json, Value};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_core::audience::{parse_audience, parse_computed, Audience};
use tessera_core::segment::{AudienceDef, ComputedTrait, MembershipChange, Registry, Segmenter};
use tessera_core::time::{format_iso8601, Millis};

#[derive(Args, Debug)]
pub struct SegmentsArgs {
    /// Profiles to generate.
    #[arg(long, default_value_t = 10_000_000)]
    pub profiles: u32,
    /// Events to generate, spread over the profiles with heavy-tailed activity.
    #[arg(long, default_value_t = 100_000_000)]
    pub events: u64,
    /// Days the events span, ending at the benchmark's fixed "now".
    #[arg(long, default_value_t = 90)]
    pub days: u32,
    /// Threads for Tessera's batch evaluation and for DuckDB [default: available cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Seed of the generator: the same seed gives the same data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Times each question is asked; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Skip DuckDB (no CSV files, no virtualenv).
    #[arg(long)]
    pub no_duckdb: bool,
    /// Skip defining 20 computed traits and 50 audiences (the memory step).
    #[arg(long)]
    pub no_memory: bool,
    /// Where the CSV files, the script and the virtualenv go.
    #[arg(long, default_value = "target/bench-segments")]
    pub work_dir: PathBuf,
}

/// The DuckDB side, compiled in so the binary needs no source tree.
const DUCKDB_SCRIPT: &str = include_str!("../../../benches/segments_duckdb.py");

/// The benchmark's "now": 2026-11-23T00:00:00Z. Events end here and windows are measured
/// from here, on both sides.
const NOW: Millis = 1_795_392_000_000;
const DAY: Millis = 86_400_000;
/// Events per generated chunk.
const CHUNK: usize = 1 << 20;

// ---------------------------------------------------------------------------------------------
// The questions.

/// One audience in both languages. The event part is the same on both sides by construction;
/// the trait filter is written twice, side by side.
struct Aud {
    /// Trait filter in the audience language.
    traits: &'static str,
    /// The same filter in SQL (only forms whose NULL handling matches Tessera's absent rules:
    /// `=`, `in`, `>`, `<` are false on an absent value in both).
    sql: &'static str,
    /// Event name, category, at least N times, within D days.
    event: Option<(&'static str, &'static str, u32, u32)>,
}

impl Aud {
    fn text(&self) -> String {
        match self.event {
            None => self.traits.to_owned(),
            Some((name, category, n, days)) => format!(
                "{} and performed \"{name}\" where category = \"{category}\" at least {n} times within {days} days",
                self.traits
            ),
        }
    }

    fn spec(&self) -> Value {
        match self.event {
            None => json!({ "trait_sql": self.sql }),
            Some((name, category, n, days)) => json!({
                "trait_sql": self.sql, "event": name, "category": category,
                "at_least": n, "days": days,
            }),
        }
    }
}

struct Question {
    name: &'static str,
    what: &'static str,
    audiences: Vec<Aud>,
}

fn questions() -> Vec<Question> {
    let q2 = |traits, sql, event| Aud { traits, sql, event };
    vec![
        Question {
            name: "Q1",
            what: "trait only",
            audiences: vec![q2(
                "country = \"DE\" and lifetime_value > 100",
                "country = 'DE' AND lifetime_value > 100",
                None,
            )],
        },
        Question {
            name: "Q2",
            what: "trait AND performed ≥3× in 30 d",
            audiences: vec![q2(
                "country = \"DE\"",
                "country = 'DE'",
                Some(("Product Viewed", "jeans", 3, 30)),
            )],
        },
        Question {
            name: "Q3",
            what: "5 such audiences",
            audiences: vec![
                q2(
                    "country = \"US\"",
                    "country = 'US'",
                    Some(("Product Viewed", "shoes", 2, 30)),
                ),
                q2(
                    "country = \"GB\"",
                    "country = 'GB'",
                    Some(("Product Viewed", "jeans", 5, 60)),
                ),
                q2(
                    "country = \"FR\" and plan = \"pro\"",
                    "country = 'FR' AND plan = 'pro'",
                    Some(("Product Viewed", "dresses", 3, 7)),
                ),
                q2(
                    "country in (\"DE\", \"AT\", \"CH\")",
                    "country IN ('DE', 'AT', 'CH')",
                    Some(("Product Added", "jeans", 1, 30)),
                ),
                q2(
                    "lifetime_value > 250",
                    "lifetime_value > 250",
                    Some(("Product Viewed", "jackets", 4, 90)),
                ),
            ],
        },
    ]
}

/// Terms timed alone, to show where the time of Q1 and Q2 goes.
const TERMS: [&str; 5] = [
    r#"country = "DE""#,
    "lifetime_value > 100",
    r#"performed "Product Viewed" where category = "jeans" at least 3 times within 30 days"#,
    r#"performed "Product Viewed" within 30 days"#,
    r#"performed "Product Viewed""#,
];

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

struct Answer {
    sizes: Vec<usize>,
    seconds: f64,
}

fn ask_tessera(seg: &Segmenter, q: &Question, threads: usize, runs: usize) -> Answer {
    let parsed: Vec<Audience> = q
        .audiences
        .iter()
        .map(|a| parse_audience(&a.text()).expect("the benchmark's audiences parse"))
        .collect();
    let mut sizes = Vec::new();
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let got: Vec<usize> = parsed
            .iter()
            .map(|a| seg.preview(a, threads).count())
            .collect();
        times.push(t.elapsed().as_secs_f64());
        sizes = got;
    }
    Answer {
        sizes,
        seconds: median(times),
    }
}

// ---------------------------------------------------------------------------------------------

pub fn run(args: SegmentsArgs) -> Result<(), String> {
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    println!(
        "bench segments: {} profiles, {} events over {} days, {threads} threads, seed {}, median of {} runs; now = {}",
        thousands(args.profiles as usize),
        thousands(args.events as usize),
        args.days,
        args.seed,
        args.runs.max(1),
        format_iso8601(NOW)
    );
    let with_duckdb = !args.no_duckdb;
    let python = if with_duckdb {
        std::fs::create_dir_all(&args.work_dir)
            .map_err(|e| format!("{}: {e}", args.work_dir.display()))?;
        // Before generating, so a missing Python fails fast.
        Some(duckdb_python(&args.work_dir)?)
    } else {
        None
    };

    // Generate and load, writing the CSV files on a second thread.
    let rss_start = rss_bytes();
    let (tx, writer) = if with_duckdb {
        let (tx, rx) = sync_channel::<Csv>(2);
        let dir = args.work_dir.clone();
        (
            Some(tx),
            Some(std::thread::spawn(move || csv_writer(&dir, rx))),
        )
    } else {
        (None, None)
    };
    let loaded = generate_and_load(&args, tx.as_ref());
    drop(tx);
    if let Some(w) = writer {
        w.join().map_err(|_| "the CSV writer panicked")??;
    }
    let loaded = loaded?;
    let seg = loaded.seg;
    let heap = seg.heap_bytes();
    let rss = rss_bytes();
    println!(
        "profiles: generated and loaded in {:.1} s (Segmenter::register + load_trait {:.1} s)",
        loaded.profile_seconds,
        loaded.profile_load.as_secs_f64()
    );
    println!(
        "events:   generated and loaded in {:.1} s, {:.0} events/s (Segmenter::load_event {:.1} s, {:.0} events/s){}",
        loaded.event_seconds,
        args.events as f64 / loaded.event_seconds,
        loaded.event_load.as_secs_f64(),
        args.events as f64 / loaded.event_load.as_secs_f64().max(1e-9),
        if with_duckdb { "; CSV written meanwhile" } else { "" }
    );
    let mut per = loaded.events_per_profile;
    let without = per.iter().filter(|&&n| n == 0).count();
    per.sort_unstable();
    let pct = |p: f64| per[((per.len() as f64 * p) as usize).min(per.len() - 1)];
    let viewed = seg
        .events()
        .partition("Product Viewed")
        .map_or(0, |p| p.len());
    println!(
        "data:     events per profile median {}, p99 {}, max {}; {:.1}% of profiles without events; \"Product Viewed\" {:.1}% of events",
        pct(0.5),
        pct(0.99),
        per.last().copied().unwrap_or(0),
        100.0 * without as f64 / per.len().max(1) as f64,
        100.0 * viewed as f64 / args.events.max(1) as f64
    );
    drop(per);
    println!(
        "memory:   Segmenter::heap_bytes {:.0} MiB ({:.0} bytes per profile, {:.1} per event); process RSS {:.0} MiB (+{:.0} MiB while loading)",
        mib(heap),
        heap as f64 / f64::from(args.profiles.max(1)),
        heap as f64 / args.events.max(1) as f64,
        mib(rss),
        mib(rss.saturating_sub(rss_start))
    );

    // Tessera. The machine may be shared: say how much CPU other processes took meanwhile.
    let qs = questions();
    let cpu = CpuShare::start();
    let mut tessera = Vec::new();
    for q in &qs {
        let a = ask_tessera(&seg, q, threads, args.runs);
        println!(
            "tessera {}: {:.4} s, sizes {:?}",
            q.name, a.seconds, a.sizes
        );
        tessera.push(a);
    }
    println!("  (other processes used {} meanwhile)", cpu.others());

    // DuckDB.
    let duck = match &python {
        Some(python) => {
            let cpu = CpuShare::start();
            let (answers, raw) = ask_duckdb(&args.work_dir, python, &qs, threads, args.runs)?;
            let others = cpu.others();
            println!(
                "duckdb {}: loaded {} profiles in {:.1} s and {} events in {:.1} s (not timed below); RSS after load {:.0} MiB, peak {:.0} MiB",
                raw["duckdb_version"].as_str().unwrap_or("?"),
                thousands(raw["profiles"].as_u64().unwrap_or(0) as usize),
                raw["load_profiles_seconds"].as_f64().unwrap_or(f64::NAN),
                thousands(raw["events"].as_u64().unwrap_or(0) as usize),
                raw["load_events_seconds"].as_f64().unwrap_or(f64::NAN),
                mib(raw["rss_after_load_bytes"].as_u64().unwrap_or(0) as usize),
                mib(raw["peak_rss_bytes"].as_u64().unwrap_or(0) as usize),
            );
            println!("  (other processes used {others} while DuckDB loaded and answered)");
            for q in &qs {
                let raw_q = raw["questions"]
                    .as_array()
                    .and_then(|a| a.iter().find(|x| x["name"] == q.name));
                if let Some(c) = raw_q.and_then(|x| x["combined_seconds"].as_f64()) {
                    let separate = raw_q
                        .and_then(|x| x["separate_seconds"].as_f64())
                        .unwrap_or(f64::NAN);
                    println!(
                        "duckdb {}: one query per audience {separate:.4} s, all in one query {c:.4} s (the faster is compared)",
                        q.name
                    );
                }
            }
            if answers.len() != qs.len() {
                return Err(format!(
                    "DuckDB answered {} of {} questions",
                    answers.len(),
                    qs.len()
                ));
            }
            Some(answers)
        }
        None => None,
    };

    // The table.
    println!();
    println!(
        "{:<4} {:<34} {:>11} {:>11} {:>15}  sizes",
        "", "question", "Tessera s", "DuckDB s", "DuckDB/Tessera"
    );
    let mut mismatch = Vec::new();
    for (i, q) in qs.iter().enumerate() {
        let t = &tessera[i];
        let (d_s, ratio) = match duck.as_ref().and_then(|d| d.get(i)) {
            Some(d) => {
                if d.sizes != t.sizes {
                    mismatch.push(format!(
                        "{}: Tessera {:?}, DuckDB {:?}",
                        q.name, t.sizes, d.sizes
                    ));
                }
                (
                    format!("{:.4}", d.seconds),
                    format!("{:.1}×", d.seconds / t.seconds.max(1e-9)),
                )
            }
            None => ("-".into(), "-".into()),
        };
        let sizes: Vec<String> = t.sizes.iter().map(|&n| thousands(n)).collect();
        println!(
            "{:<4} {:<34} {:>11.4} {:>11} {:>15}  {}",
            q.name,
            q.what,
            t.seconds,
            d_s,
            ratio,
            sizes.join(", ")
        );
    }
    if let Some(d) = &duck {
        for (q, a) in qs.iter().zip(d) {
            if a.how != "one query per audience" && !a.how.is_empty() {
                println!("({}: DuckDB's time is {})", q.name, a.how);
            }
        }
        let verdicts: Vec<String> = qs
            .iter()
            .zip(d)
            .zip(&tessera)
            .map(|((q, d), t)| {
                let ratio = d.seconds / t.seconds.max(1e-9);
                let verdict = if ratio >= 2.0 { "met" } else { "not met" };
                format!("{} {verdict} ({ratio:.1}×)", q.name)
            })
            .collect();
        println!(
            "target, Tessera at least 2× faster than DuckDB: {}",
            verdicts.join(", ")
        );
    }
    for q in &qs {
        for a in &q.audiences {
            println!("  {}: {}", q.name, a.text());
        }
    }
    if !mismatch.is_empty() {
        return Err(format!(
            "Tessera and DuckDB disagree on audience sizes (CSV files kept in {}):\n  {}",
            args.work_dir.display(),
            mismatch.join("\n  ")
        ));
    }
    if duck.is_some() {
        println!("sizes: Tessera and DuckDB agree on every audience");
        for f in ["profiles.csv", "events.csv"] {
            let _ = std::fs::remove_file(args.work_dir.join(f));
        }
    }

    // Where Tessera's time goes: the terms of Q1 and Q2 alone, and event conditions that
    // match more rows.
    println!(
        "\nTessera, terms alone (median of {} runs):",
        args.runs.max(1)
    );
    for text in TERMS {
        let q = Question {
            name: "",
            what: "",
            audiences: vec![Aud {
                traits: text,
                sql: "",
                event: None,
            }],
        };
        let a = ask_tessera(&seg, &q, threads, args.runs);
        println!(
            "  {:>8.4} s  {:>12}  {text}",
            a.seconds,
            thousands(a.sizes[0])
        );
    }

    if !args.no_memory {
        let mut seg = seg;
        memory_step(&mut seg, threads, args.profiles)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_samples_follow_the_weights() {
        let alias = Alias::new(&[1.0, 2.0, 3.0, 4.0]);
        let mut rng = Rng(1);
        let mut seen = [0u32; 4];
        for _ in 0..400_000 {
            seen[alias.sample(&mut rng)] += 1;
        }
        for (i, &n) in seen.iter().enumerate() {
            let expected = 40_000.0 * (i + 1) as f64;
            assert!(
                (f64::from(n) - expected).abs() < expected * 0.02,
                "{seen:?}"
            );
        }
    }

    #[test]
    fn events_are_the_total_inside_the_span_and_the_same_for_a_seed() {
        let all = |seed| {
            let mut g = EventGen::new(seed, 1000, 5000, 90);
            let mut out = Vec::new();
            while g.done < g.total {
                out.extend(g.chunk());
            }
            out
        };
        let events = all(7);
        assert_eq!(events.len(), 5000);
        for e in &events {
            assert!(e.ts > NOW - 90 * DAY && e.ts <= NOW);
            assert!(e.slot < 1000);
            let priced = PRICED.contains(&EVENT_NAMES[e.name as usize]);
            assert_eq!(e.price_cents >= 0, priced);
        }
        let again = all(7);
        assert!(
            events
                .iter()
                .zip(&again)
                .all(|(a, b)| (a.slot, a.name, a.category, a.ts)
                    == (b.slot, b.name, b.category, b.ts))
        );
    }

    #[test]
    fn every_definition_parses_and_registers() {
        for q in questions() {
            for a in &q.audiences {
                parse_audience(&a.text()).unwrap();
            }
        }
        for t in TERMS {
            parse_audience(t).unwrap();
        }
        let computed: Vec<ComputedTrait> = COMPUTED
            .iter()
            .map(|(name, text)| ComputedTrait {
                id: format!("ct_{name}"),
                name: (*name).to_owned(),
                version: 1,
                def: parse_computed(text).unwrap(),
            })
            .collect();
        let audiences: Vec<AudienceDef> = memory_audiences()
            .into_iter()
            .map(|(name, text)| AudienceDef {
                id: format!("aud_{name}"),
                def: parse_audience(&text).unwrap(),
                name,
                version: 1,
            })
            .collect();
        assert_eq!((computed.len(), audiences.len()), (20, 50));
        Registry::new(computed, audiences).unwrap();
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(10_000_000), "10,000,000");
    }
}
