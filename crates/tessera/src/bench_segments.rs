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

use crate::bench::proc_status_kib;
use clap::Args;
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
// Deterministic generator.

/// splitmix64: seeded, fast, good enough for synthetic data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// Pareto with minimum 1 and tail index `alpha`: heavy-tailed.
    fn pareto(&mut self, alpha: f64) -> f64 {
        self.unit().powf(-1.0 / alpha)
    }
}

/// Walker/Vose alias table: O(1) sampling from a discrete distribution.
struct Alias {
    /// Threshold of keeping the drawn index, scaled to 2^32.
    keep: Vec<u32>,
    alias: Vec<u32>,
}

impl Alias {
    fn new(weights: &[f64]) -> Alias {
        let n = weights.len();
        let total: f64 = weights.iter().sum();
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
        let mut keep = vec![u32::MAX; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let (mut small, mut large): (Vec<u32>, Vec<u32>) =
            (0..n as u32).partition(|&i| scaled[i as usize] < 1.0);
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            keep[s as usize] = (scaled[s as usize] * 4_294_967_296.0).min(u32::MAX as f64) as u32;
            alias[s as usize] = l;
            scaled[l as usize] -= 1.0 - scaled[s as usize];
            if scaled[l as usize] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        Alias { keep, alias }
    }

    #[inline]
    fn sample(&self, rng: &mut Rng) -> usize {
        let r = rng.next();
        let i = ((u128::from(r >> 32) * self.keep.len() as u128) >> 32) as usize;
        if (r as u32) < self.keep[i] {
            i
        } else {
            self.alias[i] as usize
        }
    }
}

/// Zipf-like weights 1/(k+1)^s.
fn zipf(n: usize, s: f64) -> Vec<f64> {
    (0..n).map(|k| 1.0 / ((k + 1) as f64).powf(s)).collect()
}

const COUNTRIES: [(&str, f64); 15] = [
    ("US", 22.0),
    ("DE", 12.0),
    ("GB", 10.0),
    ("FR", 8.0),
    ("BR", 7.0),
    ("IN", 7.0),
    ("CA", 5.0),
    ("ES", 5.0),
    ("IT", 5.0),
    ("NL", 4.0),
    ("AU", 4.0),
    ("JP", 4.0),
    ("MX", 3.0),
    ("AT", 2.0),
    ("CH", 2.0),
];
const PLANS: [(&str, f64); 3] = [("free", 70.0), ("pro", 25.0), ("enterprise", 5.0)];
const DOMAINS: [(&str, f64); 12] = [
    ("gmail.com", 30.0),
    ("yahoo.com", 8.0),
    ("hotmail.com", 7.0),
    ("outlook.com", 7.0),
    ("icloud.com", 6.0),
    ("gmx.de", 4.0),
    ("web.de", 3.0),
    ("orange.fr", 3.0),
    ("aol.com", 2.0),
    ("protonmail.com", 2.0),
    ("yahoo.co.uk", 2.0),
    ("mail.ru", 1.0),
];
/// Share of profiles with a company e-mail domain (`company-<k>.example`, k < 2000).
const COMPANY_DOMAINS: u64 = 2000;
/// Event names by decreasing frequency (Zipf, s = 1.1): "Product Viewed" is about 28%.
const EVENT_NAMES: [&str; 30] = [
    "Product Viewed",
    "Product List Viewed",
    "Products Searched",
    "Product Clicked",
    "Product Added",
    "Cart Viewed",
    "Signed In",
    "Promotion Viewed",
    "Product Removed",
    "Checkout Started",
    "Email Opened",
    "Checkout Step Viewed",
    "Checkout Step Completed",
    "Payment Info Entered",
    "Order Completed",
    "Promotion Clicked",
    "Email Link Clicked",
    "Product Added to Wishlist",
    "Coupon Entered",
    "Coupon Applied",
    "Product Shared",
    "Product Reviewed",
    "Signed Up",
    "Signed Out",
    "Coupon Denied",
    "Product Removed from Wishlist",
    "Cart Shared",
    "Order Updated",
    "Order Refunded",
    "Order Cancelled",
];
/// Categories by decreasing frequency (Zipf, s = 0.7).
const CATEGORIES: [&str; 20] = [
    "shirts",
    "jeans",
    "shoes",
    "dresses",
    "jackets",
    "sweaters",
    "skirts",
    "shorts",
    "bags",
    "hats",
    "socks",
    "underwear",
    "swimwear",
    "accessories",
    "watches",
    "jewelry",
    "sunglasses",
    "belts",
    "scarves",
    "gloves",
];
/// Events that carry a `price`.
const PRICED: [&str; 2] = ["Product Added", "Order Completed"];

const NONE8: u8 = u8::MAX;

/// One profile, compactly (strings are indices into the tables above).
#[derive(Clone, Copy)]
struct Profile {
    country: u8,
    plan: u8,
    /// Lifetime value in cents; negative when the profile has none.
    ltv_cents: i64,
    /// Index into DOMAINS, or DOMAINS.len() + k for `company-<k>.example`.
    domain: u16,
}

fn cents_value(cents: i64) -> f64 {
    cents as f64 / 100.0
}

fn domain_name(d: u16) -> String {
    match DOMAINS.get(d as usize) {
        Some((name, _)) => (*name).to_owned(),
        None => format!("company-{}.example", d as usize - DOMAINS.len()),
    }
}

fn gen_profile(rng: &mut Rng, countries: &Alias, plans: &Alias, domains: &Alias) -> Profile {
    // 3% have no country and 10% no lifetime value (they never bought), so absent values
    // are part of every question.
    let country = if rng.below(100) < 3 {
        NONE8
    } else {
        countries.sample(rng) as u8
    };
    let plan = plans.sample(rng) as u8;
    let ltv_cents = if rng.below(100) < 10 {
        -1
    } else {
        // Pareto, tail index 1.2: median about 8, 5.6% above 100, a few in the tens of
        // thousands; enterprise customers spend more.
        let scale = [10.0, 25.0, 120.0][plan as usize];
        (scale * (rng.pareto(1.2) - 1.0) * 100.0).round().min(1e9) as i64
    };
    let domain = if rng.below(100) < 25 {
        (DOMAINS.len() as u64 + rng.below(COMPANY_DOMAINS)) as u16
    } else {
        domains.sample(rng) as u16
    };
    Profile {
        country,
        plan,
        ltv_cents,
        domain,
    }
}

/// One event, compactly.
#[derive(Clone, Copy)]
struct Event {
    slot: u32,
    name: u8,
    category: u8,
    /// Price in cents; negative when the event has none.
    price_cents: i32,
    ts: Millis,
}

struct EventGen {
    rng: Rng,
    profiles: Alias,
    names: Alias,
    categories: Alias,
    priced: [bool; EVENT_NAMES.len()],
    total: u64,
    done: u64,
    span: Millis,
}

impl EventGen {
    fn new(seed: u64, profiles: u32, total: u64, days: u32) -> EventGen {
        let mut rng = Rng(seed ^ 0xE7E7_0000_0000_0001);
        // Activity per profile: Pareto weights (tail index 1.1, capped), so most profiles have a
        // handful of events, a fifth none at all, and a few thousands.
        let weights: Vec<f64> = (0..profiles)
            .map(|_| rng.pareto(1.1).min(10_000.0))
            .collect();
        let mut priced = [false; EVENT_NAMES.len()];
        for (i, n) in EVENT_NAMES.iter().enumerate() {
            priced[i] = PRICED.contains(n);
        }
        EventGen {
            profiles: Alias::new(&weights),
            names: Alias::new(&zipf(EVENT_NAMES.len(), 1.1)),
            categories: Alias::new(&zipf(CATEGORIES.len(), 0.7)),
            rng,
            priced,
            total,
            done: 0,
            span: Millis::from(days) * DAY,
        }
    }

    /// The next chunk, in time order (as the log holds events), up to `CHUNK` events.
    fn chunk(&mut self) -> Vec<Event> {
        let n = (self.total - self.done).min(CHUNK as u64);
        let mut out = Vec::with_capacity(n as usize);
        let start = NOW - self.span;
        for _ in 0..n {
            let k = self.done;
            self.done += 1;
            // Spread evenly over (now - span, now], a few seconds of jitter; a few events fall
            // exactly on the 30-day window's edges so both engines' edge rules are exercised.
            let even = start
                + ((u128::from(k + 1) * self.span as u128) / u128::from(self.total)) as Millis;
            let ts = match k % 1_000_003 {
                17 => NOW - 30 * DAY,
                18 => NOW - 30 * DAY + 1,
                19 => NOW,
                _ => (even - self.rng.below(5_000) as Millis).max(start + 1),
            };
            let name = self.names.sample(&mut self.rng) as u8;
            let price_cents = if self.priced[name as usize] {
                (500.0 + 2000.0 * (self.rng.pareto(2.5) - 1.0) * 100.0)
                    .round()
                    .min(1e8) as i32
            } else {
                -1
            };
            out.push(Event {
                slot: self.profiles.sample(&mut self.rng) as u32,
                name,
                category: self.categories.sample(&mut self.rng) as u8,
                price_cents,
                ts,
            });
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// CSV output, on its own thread.

enum Csv {
    Profiles(Arc<Vec<Profile>>, u32),
    Events(Arc<Vec<Event>>),
}

fn csv_writer(dir: &Path, rx: Receiver<Csv>) -> Result<(), String> {
    let open = |name: &str| -> Result<BufWriter<std::fs::File>, String> {
        let f = std::fs::File::create(dir.join(name)).map_err(|e| format!("{name}: {e}"))?;
        Ok(BufWriter::with_capacity(1 << 20, f))
    };
    let mut profiles = open("profiles.csv")?;
    let mut events = open("events.csv")?;
    let err = |e: std::io::Error| e.to_string();
    writeln!(profiles, "slot,country,plan,lifetime_value,email_domain").map_err(err)?;
    writeln!(events, "slot,name,category,ts,price").map_err(err)?;
    let domains: Vec<String> = (0..(DOMAINS.len() + COMPANY_DOMAINS as usize) as u16)
        .map(domain_name)
        .collect();
    for msg in rx {
        match msg {
            Csv::Profiles(chunk, first) => {
                for (i, p) in chunk.iter().enumerate() {
                    let country = COUNTRIES.get(p.country as usize).map_or("", |c| c.0);
                    write!(
                        profiles,
                        "{},{country},{},",
                        first as usize + i,
                        PLANS[p.plan as usize].0
                    )
                    .map_err(err)?;
                    if p.ltv_cents >= 0 {
                        write!(profiles, "{}.{:02}", p.ltv_cents / 100, p.ltv_cents % 100)
                            .map_err(err)?;
                    }
                    writeln!(profiles, ",{}", domains[p.domain as usize]).map_err(err)?;
                }
            }
            Csv::Events(chunk) => {
                for e in chunk.iter() {
                    write!(
                        events,
                        "{},{},{},{},",
                        e.slot, EVENT_NAMES[e.name as usize], CATEGORIES[e.category as usize], e.ts
                    )
                    .map_err(err)?;
                    if e.price_cents >= 0 {
                        write!(events, "{}.{:02}", e.price_cents / 100, e.price_cents % 100)
                            .map_err(err)?;
                    }
                    events.write_all(b"\n").map_err(err)?;
                }
            }
        }
    }
    profiles.flush().map_err(err)?;
    events.flush().map_err(err)
}

// ---------------------------------------------------------------------------------------------
// Loading.

struct Loaded {
    seg: Segmenter,
    profile_seconds: f64,
    event_seconds: f64,
    /// Of which inside `Segmenter::load_*` calls.
    profile_load: Duration,
    event_load: Duration,
    events_per_profile: Vec<u32>,
}

fn generate_and_load(
    args: &SegmentsArgs,
    csv: Option<&std::sync::mpsc::SyncSender<Csv>>,
) -> Result<Loaded, String> {
    let mut seg = Segmenter::new();
    let countries = Alias::new(&COUNTRIES.map(|c| c.1));
    let plans = Alias::new(&PLANS.map(|c| c.1));
    let domains = Alias::new(&DOMAINS.map(|c| c.1));
    let country_values: Vec<Value> = COUNTRIES.iter().map(|c| json!(c.0)).collect();
    let plan_values: Vec<Value> = PLANS.iter().map(|c| json!(c.0)).collect();
    let domain_values: Vec<Value> = (0..(DOMAINS.len() + COMPANY_DOMAINS as usize) as u16)
        .map(|d| json!(domain_name(d)))
        .collect();
    let send = |m: Csv| -> Result<(), String> {
        match csv {
            Some(tx) => tx.send(m).map_err(|_| "the CSV writer stopped".to_string()),
            None => Ok(()),
        }
    };

    // Profiles.
    let started = Instant::now();
    let mut load = Duration::ZERO;
    let mut rng = Rng(args.seed);
    let mut first = 0u32;
    while first < args.profiles {
        let n = (args.profiles - first).min(CHUNK as u32);
        let chunk: Vec<Profile> = (0..n)
            .map(|_| gen_profile(&mut rng, &countries, &plans, &domains))
            .collect();
        let t = Instant::now();
        for (i, p) in chunk.iter().enumerate() {
            let slot = first + i as u32;
            seg.register(slot, i64::from(slot) + 1, slot);
            if p.country != NONE8 {
                seg.load_trait(slot, "country", Some(&country_values[p.country as usize]));
            }
            seg.load_trait(slot, "plan", Some(&plan_values[p.plan as usize]));
            if p.ltv_cents >= 0 {
                seg.load_trait(
                    slot,
                    "lifetime_value",
                    Some(&json!(cents_value(p.ltv_cents))),
                );
            }
            seg.load_trait(
                slot,
                "email_domain",
                Some(&domain_values[p.domain as usize]),
            );
        }
        load += t.elapsed();
        send(Csv::Profiles(Arc::new(chunk), first))?;
        first += n;
    }
    let profile_seconds = started.elapsed().as_secs_f64();
    let profile_load = load;

    // Events: one property object per category, shared; a new one only for priced events.
    let started = Instant::now();
    let mut load = Duration::ZERO;
    let props: Vec<Value> = CATEGORIES
        .iter()
        .map(|c| json!({ "category": c }))
        .collect();
    let mut events_per_profile = vec![0u32; args.profiles as usize];
    let mut gen = EventGen::new(args.seed, args.profiles, args.events, args.days);
    let mut last_report = Instant::now();
    while gen.done < gen.total {
        let chunk = Arc::new(gen.chunk());
        let t = Instant::now();
        for e in chunk.iter() {
            let name = EVENT_NAMES[e.name as usize];
            if e.price_cents >= 0 {
                let p = json!({
                    "category": CATEGORIES[e.category as usize],
                    "price": cents_value(i64::from(e.price_cents)),
                });
                seg.load_event(e.slot, name, e.ts, Some(&p));
            } else {
                seg.load_event(e.slot, name, e.ts, Some(&props[e.category as usize]));
            }
        }
        load += t.elapsed();
        for e in chunk.iter() {
            events_per_profile[e.slot as usize] += 1;
        }
        send(Csv::Events(chunk))?;
        if last_report.elapsed() > Duration::from_secs(10) {
            last_report = Instant::now();
            eprintln!(
                "  … {} of {} events ({:.0} s)",
                gen.done,
                gen.total,
                started.elapsed().as_secs_f64()
            );
        }
    }
    seg.load_clock(NOW);
    Ok(Loaded {
        seg,
        profile_seconds,
        event_seconds: started.elapsed().as_secs_f64(),
        profile_load,
        event_load: load,
        events_per_profile,
    })
}

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
// DuckDB.

struct DuckAnswer {
    sizes: Vec<usize>,
    seconds: f64,
    how: String,
}

/// A virtualenv in the work directory with DuckDB from PyPI (kept between runs).
fn duckdb_python(work: &Path) -> Result<PathBuf, String> {
    let venv = work.join("venv");
    let python = venv.join("bin").join("python");
    let has_duckdb = |p: &Path| {
        Command::new(p)
            .args(["-c", "import duckdb"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if python.exists() && has_duckdb(&python) {
        return Ok(python);
    }
    if !python.exists() {
        eprintln!("creating a virtualenv in {}", venv.display());
        let s = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .map_err(|e| {
                format!("cannot run python3 (needed for DuckDB; or use --no-duckdb): {e}")
            })?;
        if !s.success() {
            return Err(format!("python3 -m venv {} failed", venv.display()));
        }
    }
    eprintln!("installing duckdb from PyPI into {}", venv.display());
    let s = Command::new(venv.join("bin").join("pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "duckdb",
        ])
        .status()
        .map_err(|e| format!("cannot run pip: {e}"))?;
    if !s.success() || !has_duckdb(&python) {
        return Err("pip install duckdb failed (or use --no-duckdb)".into());
    }
    Ok(python)
}

fn ask_duckdb(
    work: &Path,
    python: &Path,
    questions: &[Question],
    threads: usize,
    runs: usize,
) -> Result<(Vec<DuckAnswer>, Value), String> {
    let script = work.join("segments_duckdb.py");
    std::fs::write(&script, DUCKDB_SCRIPT).map_err(|e| e.to_string())?;
    let abs = |name: &str| -> Result<String, String> {
        let p = work.join(name);
        std::fs::canonicalize(&p)
            .map(|p| p.display().to_string())
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    let spec = json!({
        "profiles_csv": abs("profiles.csv")?,
        "events_csv": abs("events.csv")?,
        "threads": threads,
        "runs": runs.max(1),
        "now": NOW,
        "questions": questions.iter().map(|q| json!({
            "name": q.name,
            "audiences": q.audiences.iter().map(Aud::spec).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    let spec_path = work.join("spec.json");
    std::fs::write(&spec_path, spec.to_string()).map_err(|e| e.to_string())?;
    let out = Command::new(python)
        .arg(&script)
        .arg(&spec_path)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!("the DuckDB script failed ({})", out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or("the DuckDB script printed no result")?;
    let v: Value = serde_json::from_str(line).map_err(|e| format!("DuckDB result: {e}"))?;
    let answers = v["questions"]
        .as_array()
        .ok_or("DuckDB result without questions")?
        .iter()
        .map(|q| DuckAnswer {
            sizes: q["sizes"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_u64)
                        .map(|n| n as usize)
                        .collect()
                })
                .unwrap_or_default(),
            seconds: q["seconds"].as_f64().unwrap_or(f64::NAN),
            how: q["how"].as_str().unwrap_or("").to_owned(),
        })
        .collect();
    Ok((answers, v))
}

// ---------------------------------------------------------------------------------------------
// The memory step: 20 computed traits and 50 audiences.

const COMPUTED: [(&str, &str); 20] = [
    ("views_total", r#"count "Product Viewed""#),
    (
        "jeans_views_30d",
        r#"count "Product Viewed" where category = "jeans" within 30 days"#,
    ),
    ("orders_90d", r#"count "Order Completed" within 90 days"#),
    ("revenue_total", r#"sum price of "Order Completed""#),
    (
        "revenue_30d",
        r#"sum price of "Order Completed" within 30 days"#,
    ),
    ("avg_order_value", r#"avg price of "Order Completed""#),
    ("min_order", r#"min price of "Order Completed""#),
    ("max_order", r#"max price of "Order Completed""#),
    (
        "avg_added_price_30d",
        r#"avg price of "Product Added" within 30 days"#,
    ),
    ("max_added_price", r#"max price of "Product Added""#),
    (
        "last_viewed_category",
        r#"last category of "Product Viewed""#,
    ),
    (
        "last_order_category",
        r#"last category of "Order Completed""#,
    ),
    (
        "favourite_category",
        r#"most_frequent category of "Product Viewed""#,
    ),
    (
        "favourite_added_30d",
        r#"most_frequent category of "Product Added" within 30 days"#,
    ),
    (
        "viewed_categories",
        r#"unique_count category of "Product Viewed""#,
    ),
    (
        "viewed_categories_7d",
        r#"unique_count category of "Product Viewed" within 7 days"#,
    ),
    ("carts_7d", r#"count "Cart Viewed" within 7 days"#),
    ("sign_ins_30d", r#"count "Signed In" within 30 days"#),
    (
        "first_viewed_category",
        r#"first category of "Product Viewed""#,
    ),
    (
        "shoe_checkouts",
        r#"count "Checkout Started" where category = "shoes""#,
    ),
];

/// 50 audiences: 15 on traits, 20 on events, 15 on computed traits (two of which also test
/// membership of another audience).
fn memory_audiences() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for c in ["US", "DE", "GB", "FR", "BR", "IN", "CA", "ES"] {
        out.push((format!("in_{c}"), format!("country = \"{c}\"")));
    }
    for (name, def) in [
        ("pro", r#"plan = "pro""#),
        ("us_enterprise", r#"plan = "enterprise" and country = "US""#),
        (
            "paying_200",
            r#"plan in ("pro", "enterprise") and lifetime_value > 200"#,
        ),
        ("ltv_1000", "lifetime_value > 1000"),
        ("ltv_low", "lifetime_value < 5"),
        ("gmail", r#"email_domain = "gmail.com""#),
        ("b2b", r#"email_domain contains "company-""#),
    ] {
        out.push((name.to_owned(), def.to_owned()));
    }
    let events = [
        "Product Viewed",
        "Product Viewed",
        "Product Viewed",
        "Product Added",
        "Order Completed",
        "Cart Viewed",
        "Signed In",
        "Checkout Started",
        "Products Searched",
        "Product List Viewed",
    ];
    let windows = [7, 14, 30, 60, 90];
    for i in 0..18 {
        let country = COUNTRIES[i % 6].0;
        let category = CATEGORIES[(i * 7) % CATEGORIES.len()];
        out.push((
            format!("event_{i}"),
            format!(
                r#"country = "{country}" and performed "{}" where category = "{category}" at least {} times within {} days"#,
                events[i % events.len()],
                1 + i % 4,
                windows[i % windows.len()]
            ),
        ));
    }
    out.push((
        "pro_no_order_30d".into(),
        r#"plan = "pro" and did not perform "Order Completed" within 30 days"#.into(),
    ));
    out.push((
        "searched_not_viewed".into(),
        r#"performed "Products Searched" at least 3 times within 7 days and did not perform "Product Viewed" within 7 days"#.into(),
    ));
    for (name, def) in [
        ("heavy_viewers", "views_total >= 20"),
        ("jeans_fans", "jeans_views_30d >= 3"),
        ("de_buyers_90d", r#"orders_90d >= 1 and country = "DE""#),
        ("big_spenders", "revenue_total > 100"),
        ("recent_spenders", "revenue_30d > 50"),
        ("high_aov", "avg_order_value > 40"),
        ("cheap_orders", "min_order < 10"),
        ("big_order", "max_order > 200"),
        ("loves_jeans", r#"favourite_category = "jeans""#),
        (
            "us_last_shoes",
            r#"last_viewed_category = "shoes" and country = "US""#,
        ),
        ("browsers", "viewed_categories >= 5"),
        ("recent_browsers", "viewed_categories_7d >= 2"),
        ("cart_abandoners", "carts_7d >= 1 and not orders_90d >= 1"),
        (
            "free_big_spenders",
            r#"in audience "big_spenders" and plan = "free""#,
        ),
        (
            "jeans_fans_de",
            r#"in audience "jeans_fans" and country = "DE""#,
        ),
    ] {
        out.push((name.to_owned(), def.to_owned()));
    }
    out
}

/// Rough heap bytes of recorded membership changes (struct, two strings, allocator rounding).
fn change_bytes(changes: &[MembershipChange]) -> usize {
    changes
        .iter()
        .map(|c| {
            std::mem::size_of::<MembershipChange>()
                + c.audience_id.len().next_multiple_of(16)
                + c.audience_name.len().next_multiple_of(16)
        })
        .sum()
}

fn memory_step(seg: &mut Segmenter, threads: usize, profiles: u32) -> Result<(), String> {
    let computed: Vec<ComputedTrait> = COMPUTED
        .iter()
        .map(|(name, text)| ComputedTrait {
            id: format!("ct_{name}"),
            name: (*name).to_owned(),
            version: 1,
            def: parse_computed(text).unwrap_or_else(|e| panic!("{name}: {e}")),
        })
        .collect();
    let audiences: Vec<AudienceDef> = memory_audiences()
        .into_iter()
        .map(|(name, text)| AudienceDef {
            id: format!("aud_{name}"),
            def: parse_audience(&text).unwrap_or_else(|e| panic!("{name}: {e}")),
            name,
            version: 1,
        })
        .collect();
    println!(
        "\nmemory step: {} computed traits and {} audiences (set_registry, {threads} threads)",
        computed.len(),
        audiences.len()
    );
    let (heap0, rss0) = (seg.heap_bytes(), rss_bytes());
    reset_peak_rss();
    // Computed traits alone first, so their backfill is timed apart from the audiences'.
    let registry = Registry::new(computed.clone(), Vec::new()).map_err(|e| e.to_string())?;
    let t = Instant::now();
    seg.set_registry(registry, threads);
    let computed_s = t.elapsed().as_secs_f64();
    let heap1 = seg.heap_bytes();
    println!(
        "  computed traits backfilled:  {computed_s:.1} s ({:.2} s per trait); heap +{:.0} MiB",
        computed_s / computed.len() as f64,
        mib(heap1.saturating_sub(heap0))
    );
    let registry = Registry::new(computed, audiences.clone()).map_err(|e| e.to_string())?;
    let t = Instant::now();
    seg.set_registry(registry, threads);
    let audiences_s = t.elapsed().as_secs_f64();
    let peak = peak_rss_bytes();
    let changes = seg.take_changes();
    let changes_mib = mib(change_bytes(&changes));
    let n_changes = changes.len();
    drop(changes);
    let sizes = seg.sizes();
    let mut sorted = sizes.clone();
    sorted.sort_unstable();
    println!(
        "  audiences backfilled:        {audiences_s:.1} s ({:.2} s per audience); {n_changes} membership changes recorded (≈{changes_mib:.0} MiB until taken)",
        audiences_s / audiences.len() as f64
    );
    println!(
        "  audience sizes:              min {}, median {}, max {} (of {profiles} profiles)",
        sorted.first().copied().unwrap_or(0),
        sorted.get(sorted.len() / 2).copied().unwrap_or(0),
        sorted.last().copied().unwrap_or(0),
    );
    let heap2 = seg.heap_bytes();
    println!(
        "  heap (Segmenter::heap_bytes): {:.0} MiB before, {:.0} MiB after ({:.0} bytes per profile for the definitions)",
        mib(heap0),
        mib(heap2),
        heap2.saturating_sub(heap0) as f64 / f64::from(profiles.max(1))
    );
    println!(
        "  process RSS:                 {:.0} MiB before, {:.0} MiB after, peak during the step {:.0} MiB",
        mib(rss0),
        mib(rss_bytes()),
        mib(peak)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Memory figures of this process.

fn rss_bytes() -> usize {
    proc_status_kib("self", "VmRSS:").map_or(0, |kb| kb as usize * 1024)
}

fn peak_rss_bytes() -> usize {
    proc_status_kib("self", "VmHWM:").map_or(0, |kb| kb as usize * 1024)
}

/// Resets the peak resident memory (`VmHWM`) to the current one, so a step's peak can be read.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// CPU time of the whole machine and of this process (its waited-for children included),
/// to tell how much of the machine other processes took during a timed part.
struct CpuShare {
    started: Instant,
    machine: u64,
    own: u64,
}

impl CpuShare {
    fn ticks() -> (u64, u64) {
        let machine = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| {
                let f: Vec<u64> = s
                    .lines()
                    .next()?
                    .split_whitespace()
                    .skip(1)
                    .filter_map(|x| x.parse().ok())
                    .collect();
                // user nice system idle iowait irq softirq steal: busy is all but idle, iowait.
                Some(f.iter().take(8).sum::<u64>() - f.get(3)? - f.get(4)?)
            })
            .unwrap_or(0);
        let own = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| {
                let after = s.rsplit_once(')')?.1.to_owned();
                let f: Vec<u64> = after
                    .split_whitespace()
                    .skip(11)
                    .take(4)
                    .filter_map(|x| x.parse().ok())
                    .collect();
                Some(f.iter().sum())
            })
            .unwrap_or(0);
        (machine, own)
    }

    fn start() -> CpuShare {
        let (machine, own) = CpuShare::ticks();
        CpuShare {
            started: Instant::now(),
            machine,
            own,
        }
    }

    /// Other processes' share of the machine's CPU since `start`, e.g. "3% of 2 cores".
    fn others(&self) -> String {
        let (machine, own) = CpuShare::ticks();
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let other =
            machine.saturating_sub(self.machine) as f64 - own.saturating_sub(self.own) as f64;
        let share = other.max(0.0) / hz / (self.started.elapsed().as_secs_f64() * cores as f64);
        format!("{:.0}% of {cores} cores", 100.0 * share)
    }
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut groups = Vec::new();
    let mut end = digits.len();
    while end > 3 {
        groups.push(&digits[end - 3..end]);
        end -= 3;
    }
    groups.push(&digits[..end]);
    groups.reverse();
    groups.join(",")
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
