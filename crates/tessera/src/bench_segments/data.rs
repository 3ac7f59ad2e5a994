//! The synthetic data of `bench segments`: a seeded generator of profiles and heavy-tailed
//! events, their CSV copy for DuckDB (written on its own thread), and loading into a
//! [`Segmenter`].

use super::*;

// ---------------------------------------------------------------------------------------------
// Deterministic generator.

/// splitmix64: seeded, fast, good enough for synthetic data.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    pub(super) fn unit(&mut self) -> f64 {
        ((self.next() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// Pareto with minimum 1 and tail index `alpha`: heavy-tailed.
    pub(super) fn pareto(&mut self, alpha: f64) -> f64 {
        self.unit().powf(-1.0 / alpha)
    }
}

/// Walker/Vose alias table: O(1) sampling from a discrete distribution.
pub(super) struct Alias {
    /// Threshold of keeping the drawn index, scaled to 2^32.
    pub(super) keep: Vec<u32>,
    pub(super) alias: Vec<u32>,
}

impl Alias {
    pub(super) fn new(weights: &[f64]) -> Alias {
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
    pub(super) fn sample(&self, rng: &mut Rng) -> usize {
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
pub(super) fn zipf(n: usize, s: f64) -> Vec<f64> {
    (0..n).map(|k| 1.0 / ((k + 1) as f64).powf(s)).collect()
}

pub(super) const COUNTRIES: [(&str, f64); 15] = [
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
pub(super) const PLANS: [(&str, f64); 3] = [("free", 70.0), ("pro", 25.0), ("enterprise", 5.0)];
pub(super) const DOMAINS: [(&str, f64); 12] = [
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
pub(super) const COMPANY_DOMAINS: u64 = 2000;
/// Event names by decreasing frequency (Zipf, s = 1.1): "Product Viewed" is about 28%.
pub(super) const EVENT_NAMES: [&str; 30] = [
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
pub(super) const CATEGORIES: [&str; 20] = [
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
pub(super) const PRICED: [&str; 2] = ["Product Added", "Order Completed"];

pub(super) const NONE8: u8 = u8::MAX;

/// One profile, compactly (strings are indices into the tables above).
#[derive(Clone, Copy)]
pub(super) struct Profile {
    pub(super) country: u8,
    pub(super) plan: u8,
    /// Lifetime value in cents; negative when the profile has none.
    pub(super) ltv_cents: i64,
    /// Index into DOMAINS, or DOMAINS.len() + k for `company-<k>.example`.
    pub(super) domain: u16,
}

pub(super) fn cents_value(cents: i64) -> f64 {
    cents as f64 / 100.0
}

pub(super) fn domain_name(d: u16) -> String {
    match DOMAINS.get(d as usize) {
        Some((name, _)) => (*name).to_owned(),
        None => format!("company-{}.example", d as usize - DOMAINS.len()),
    }
}

pub(super) fn gen_profile(
    rng: &mut Rng,
    countries: &Alias,
    plans: &Alias,
    domains: &Alias,
) -> Profile {
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
pub(super) struct Event {
    pub(super) slot: u32,
    pub(super) name: u8,
    pub(super) category: u8,
    /// Price in cents; negative when the event has none.
    pub(super) price_cents: i32,
    pub(super) ts: Millis,
}

pub(super) struct EventGen {
    pub(super) rng: Rng,
    pub(super) profiles: Alias,
    pub(super) names: Alias,
    pub(super) categories: Alias,
    pub(super) priced: [bool; EVENT_NAMES.len()],
    pub(super) total: u64,
    pub(super) done: u64,
    pub(super) span: Millis,
}

impl EventGen {
    pub(super) fn new(seed: u64, profiles: u32, total: u64, days: u32) -> EventGen {
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
    pub(super) fn chunk(&mut self) -> Vec<Event> {
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

pub(super) enum Csv {
    Profiles(Arc<Vec<Profile>>, u32),
    Events(Arc<Vec<Event>>),
}

pub(super) fn csv_writer(dir: &Path, rx: Receiver<Csv>) -> Result<(), String> {
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

pub(super) struct Loaded {
    pub(super) seg: Segmenter,
    pub(super) profile_seconds: f64,
    pub(super) event_seconds: f64,
    /// Of which inside `Segmenter::load_*` calls.
    pub(super) profile_load: Duration,
    pub(super) event_load: Duration,
    pub(super) events_per_profile: Vec<u32>,
}

pub(super) fn generate_and_load(
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
