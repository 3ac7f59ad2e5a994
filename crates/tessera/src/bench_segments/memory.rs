//! The memory step of `bench segments` (20 computed traits and 50 audiences), and the memory
//! and CPU figures of this process.

use super::*;

// ---------------------------------------------------------------------------------------------
// The memory step: 20 computed traits and 50 audiences.

pub(super) const COMPUTED: [(&str, &str); 20] = [
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
pub(super) fn memory_audiences() -> Vec<(String, String)> {
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
pub(super) fn change_bytes(changes: &[MembershipChange]) -> usize {
    changes
        .iter()
        .map(|c| {
            std::mem::size_of::<MembershipChange>()
                + c.audience_id.len().next_multiple_of(16)
                + c.audience_name.len().next_multiple_of(16)
        })
        .sum()
}

pub(super) fn memory_step(
    seg: &mut Segmenter,
    threads: usize,
    profiles: u32,
) -> Result<(), String> {
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

pub(super) fn rss_bytes() -> usize {
    proc_status_kib("self", "VmRSS:").map_or(0, |kb| kb as usize * 1024)
}

pub(super) fn peak_rss_bytes() -> usize {
    proc_status_kib("self", "VmHWM:").map_or(0, |kb| kb as usize * 1024)
}

/// Resets the peak resident memory (`VmHWM`) to the current one, so a step's peak can be read.
pub(super) fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// CPU time of the whole machine and of this process (its waited-for children included),
/// to tell how much of the machine other processes took during a timed part.
pub(super) struct CpuShare {
    pub(super) started: Instant,
    pub(super) machine: u64,
    pub(super) own: u64,
}

impl CpuShare {
    pub(super) fn ticks() -> (u64, u64) {
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

    pub(super) fn start() -> CpuShare {
        let (machine, own) = CpuShare::ticks();
        CpuShare {
            started: Instant::now(),
            machine,
            own,
        }
    }

    /// Other processes' share of the machine's CPU since `start`, e.g. "3% of 2 cores".
    pub(super) fn others(&self) -> String {
        let (machine, own) = CpuShare::ticks();
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let other =
            machine.saturating_sub(self.machine) as f64 - own.saturating_sub(self.own) as f64;
        let share = other.max(0.0) / hz / (self.started.elapsed().as_secs_f64() * cores as f64);
        format!("{:.0}% of {cores} cores", 100.0 * share)
    }
}

pub(super) fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

pub(super) fn thousands(n: usize) -> String {
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
