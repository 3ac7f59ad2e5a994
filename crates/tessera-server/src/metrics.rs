//! Prometheus metrics, kept in atomics and rendered in the text exposition format.
//!
//! Hand-rolled rather than pulled from a metrics crate: the set is small and fixed, and this
//! keeps the hot path to a few relaxed atomic adds.

use crate::applier::ApplierFigures;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;
use tessera_core::privacy::pii::{Action, Finding, PiiClass};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram with fixed buckets.
#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(d.as_micros() as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, le) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// The route families request latency is reported by.
#[derive(Debug, Clone, Copy)]
pub enum RouteClass {
    Tracking,
    Profile,
    Admin,
    Other,
}

/// Every metric the server exports.
#[derive(Default)]
pub struct Metrics {
    pub events_accepted: AtomicU64,
    pub events_duplicate: AtomicU64,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    pub commits: AtomicU64,
    pub commit_latency: Histogram,
    tracking_latency: Histogram,
    profile_latency: Histogram,
    admin_latency: Histogram,
    other_latency: Histogram,
    /// Classified fields by class and action, indexed as `PiiClass::ALL` and `Action::ALL`.
    pii_fields: [[AtomicU64; Action::ALL.len()]; PiiClass::ALL.len()],
    /// Tracking-plan violations found at ingest: of flagged messages, of blocked ones.
    plan_violations: [AtomicU64; 2],
}

impl Metrics {
    /// Counts `n` events rejected for `reason` (an error code).
    pub fn reject(&self, reason: &'static str, n: u64) {
        *self
            .rejected
            .lock()
            .expect("metrics poisoned")
            .entry(reason)
            .or_default() += n;
    }

    /// Counts what a PII policy did to one message's fields.
    pub fn count_pii(&self, findings: &[Finding]) {
        for f in findings {
            let class = PiiClass::ALL.iter().position(|&c| c == f.class);
            let action = Action::ALL.iter().position(|&a| a == f.action);
            if let (Some(c), Some(a)) = (class, action) {
                self.pii_fields[c][a].fetch_add(1, Relaxed);
            }
        }
    }

    /// Counts tracking-plan violations of messages stored (`blocked` false) or blocked.
    pub fn count_violations(&self, blocked: bool, n: u64) {
        self.plan_violations[usize::from(blocked)].fetch_add(n, Relaxed);
    }

    pub fn rejected_by_reason(&self) -> BTreeMap<&'static str, u64> {
        self.rejected.lock().expect("metrics poisoned").clone()
    }

    pub fn observe_request(&self, class: RouteClass, d: Duration) {
        match class {
            RouteClass::Tracking => &self.tracking_latency,
            RouteClass::Profile => &self.profile_latency,
            RouteClass::Admin => &self.admin_latency,
            RouteClass::Other => &self.other_latency,
        }
        .observe(d)
    }

    /// The exposition text; `log_position` and `log_bytes` are read from the store by the caller.
    pub fn render(&self, log_position: i64, log_bytes: u64) -> String {
        let mut o = String::with_capacity(4096);
        o.push_str("# HELP tessera_events_accepted_total Events appended to the log.\n# TYPE tessera_events_accepted_total counter\n");
        let _ = writeln!(
            o,
            "tessera_events_accepted_total {}",
            self.events_accepted.load(Relaxed)
        );
        o.push_str("# HELP tessera_events_duplicate_total Events dropped because their messageId was already in the log.\n# TYPE tessera_events_duplicate_total counter\n");
        let _ = writeln!(
            o,
            "tessera_events_duplicate_total {}",
            self.events_duplicate.load(Relaxed)
        );
        o.push_str("# HELP tessera_events_rejected_total Events refused, by reason.\n# TYPE tessera_events_rejected_total counter\n");
        for (reason, n) in self.rejected_by_reason() {
            let _ = writeln!(
                o,
                "tessera_events_rejected_total{{reason=\"{reason}\"}} {n}"
            );
        }
        o.push_str("# HELP tessera_pii_fields_total Fields classified as personal data at ingest, by class and the action taken.\n# TYPE tessera_pii_fields_total counter\n");
        for (class, row) in PiiClass::ALL.iter().zip(&self.pii_fields) {
            for (action, n) in Action::ALL.iter().zip(row) {
                let _ = writeln!(
                    o,
                    "tessera_pii_fields_total{{class=\"{}\",action=\"{}\"}} {}",
                    class.as_str(),
                    action.as_str(),
                    n.load(Relaxed)
                );
            }
        }
        o.push_str("# HELP tessera_tracking_plan_violations_total Tracking-plan violations found at ingest, by the source's mode.\n# TYPE tessera_tracking_plan_violations_total counter\n");
        for (mode, n) in ["flag", "block"].iter().zip(&self.plan_violations) {
            let _ = writeln!(
                o,
                "tessera_tracking_plan_violations_total{{mode=\"{mode}\"}} {}",
                n.load(Relaxed)
            );
        }
        o.push_str("# HELP tessera_http_request_duration_seconds Request latency by route family.\n# TYPE tessera_http_request_duration_seconds histogram\n");
        for (route, h) in [
            ("tracking", &self.tracking_latency),
            ("profile", &self.profile_latency),
            ("admin", &self.admin_latency),
            ("other", &self.other_latency),
        ] {
            h.render(
                &mut o,
                "tessera_http_request_duration_seconds",
                &format!("route=\"{route}\""),
            );
        }
        o.push_str("# HELP tessera_log_commit_duration_seconds Time of one group commit, fsync included.\n# TYPE tessera_log_commit_duration_seconds histogram\n");
        self.commit_latency
            .render(&mut o, "tessera_log_commit_duration_seconds", "");
        o.push_str("# HELP tessera_log_commits_total Group commits of the event log.\n# TYPE tessera_log_commits_total counter\n");
        let _ = writeln!(
            o,
            "tessera_log_commits_total {}",
            self.commits.load(Relaxed)
        );
        o.push_str("# HELP tessera_log_position Highest position in the event log.\n# TYPE tessera_log_position gauge\n");
        let _ = writeln!(o, "tessera_log_position {log_position}");
        o.push_str("# HELP tessera_log_bytes Bytes of the event log's files on disk.\n# TYPE tessera_log_bytes gauge\n");
        let _ = writeln!(o, "tessera_log_bytes {log_bytes}");
        o
    }

    /// Applier gauges: the log position each workspace's profiles reflect and how far that is
    /// behind the log.
    pub fn render_appliers(o: &mut String, log_position: i64, figures: &[ApplierFigures]) {
        let lag = |f: &ApplierFigures| (log_position - f.position).max(0) as u64;
        let gauges: [Gauge<'_>; 5] = [
            (
                "tessera_applier_position",
                "Log position a workspace's profiles reflect.",
                &|f| f.position.max(0) as u64,
            ),
            (
                "tessera_applier_lag_events",
                "Log positions not yet applied to profiles.",
                &lag,
            ),
            (
                "tessera_profiles",
                "Live profiles (merged-away ones not counted).",
                &|f| f.profiles as u64,
            ),
            (
                "tessera_segment_events",
                "Events held by segmentation (named events of profiles).",
                &|f| f.segment_events as u64,
            ),
            (
                "tessera_segment_memory_bytes",
                "Estimated memory of segmentation's hot state.",
                &|f| f.segment_bytes as u64,
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge");
            for f in figures {
                let _ = writeln!(o, "{name}{{workspace=\"{}\"}} {}", f.workspace, value(f));
            }
        }
        o.push_str("# HELP tessera_audience_members Members of each audience.\n# TYPE tessera_audience_members gauge\n");
        for f in figures {
            for (audience, n) in &f.audience_sizes {
                let _ = writeln!(
                    o,
                    "tessera_audience_members{{workspace=\"{}\",audience=\"{audience}\"}} {n}",
                    f.workspace
                );
            }
        }
        let per_destination: [(&str, &str, &str, DestValue); 4] = [
            (
                "tessera_deliveries_total",
                "counter",
                "Records delivered since start.",
                |h| h.delivered,
            ),
            (
                "tessera_delivery_failures_total",
                "counter",
                "Failed delivery requests since start.",
                |h| h.failed_attempts,
            ),
            (
                "tessera_dead_letters_total",
                "counter",
                "Records moved to the dead-letter queue since start.",
                |h| h.dead,
            ),
            (
                "tessera_delivery_queued",
                "gauge",
                "Records a destination holds (queued, retrying, in flight).",
                |h| h.queued as u64,
            ),
        ];
        for (name, kind, help, value) in per_destination {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for f in figures {
                for (dest, h) in &f.destinations {
                    let _ = writeln!(
                        o,
                        "{name}{{workspace=\"{}\",destination=\"{dest}\"}} {}",
                        f.workspace,
                        value(h)
                    );
                }
            }
        }
    }
}

/// A per-destination figure of its delivery health.
type DestValue = fn(&crate::delivery::Health) -> u64;

/// A per-workspace gauge: name, help text, and its value of a workspace's figures.
type Gauge<'a> = (&'a str, &'a str, &'a dyn Fn(&ApplierFigures) -> u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.commit_latency.observe(Duration::from_micros(300));
        m.commit_latency.observe(Duration::from_millis(30));
        m.reject("invalid_json", 2);
        let text = m.render(7, 100);
        assert!(text.contains("tessera_log_commit_duration_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains("tessera_log_commit_duration_seconds_bucket{le=\"0.05\"} 2"));
        assert!(text.contains("tessera_log_commit_duration_seconds_count 2"));
        assert!(text.contains("tessera_events_rejected_total{reason=\"invalid_json\"} 2"));
        assert!(text.contains("tessera_log_position 7"));
    }

    #[test]
    fn pii_fields_are_counted_by_class_and_action() {
        let m = Metrics::default();
        let f = |class, action| Finding {
            path: "properties.x".into(),
            class,
            action,
        };
        m.count_pii(&[
            f(PiiClass::PaymentCard, Action::Drop),
            f(PiiClass::PaymentCard, Action::Drop),
            f(PiiClass::Email, Action::Hash),
        ]);
        m.count_violations(true, 3);
        let text = m.render(0, 0);
        assert!(text.contains("tessera_pii_fields_total{class=\"payment_card\",action=\"drop\"} 2"));
        assert!(text.contains("tessera_pii_fields_total{class=\"email\",action=\"hash\"} 1"));
        assert!(text.contains("tessera_pii_fields_total{class=\"email\",action=\"keep\"} 0"));
        assert!(text.contains("tessera_tracking_plan_violations_total{mode=\"block\"} 3"));
    }
}
