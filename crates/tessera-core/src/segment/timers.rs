//! When a profile's result can next change with time alone. Sliding windows and `within`
//! tests change truth only when some instant crosses one of their edges: an event enters a
//! window at its time and leaves it one window later; a date enters `within` at that date and
//! leaves one period later. The earliest such instant after `now` is when the real-time
//! evaluator must look at the profile again; until then its results cannot change.

use crate::audience::reference::{matching_events, resolve, ProfileData};
use crate::audience::{Audience, ComputedDef, Condition, Logic, Period, Test, Window};
use crate::time::{parse_iso8601, Millis};
use serde_json::Value;
use std::collections::BTreeMap;

/// Keeps the earliest instant after `now`.
#[derive(Debug, Clone, Copy)]
pub struct Earliest {
    now: Millis,
    pub at: Option<Millis>,
}

impl Earliest {
    pub fn after(now: Millis) -> Earliest {
        Earliest { now, at: None }
    }

    pub fn offer(&mut self, t: Millis) {
        if t > self.now && self.at.is_none_or(|a| t < a) {
            self.at = Some(t);
        }
    }

    /// The edges of `(t - period, t]` windows for something that happened at `at`.
    fn offer_window(&mut self, at: Millis, period: Period) {
        self.offer(at);
        self.offer(at.saturating_add(period.millis()));
    }
}

/// Adds the edges of a computed trait's window.
pub fn computed_edges(def: &ComputedDef, profile: &ProfileData, out: &mut Earliest) {
    if let Window::Last(p) = def.window {
        for e in matching_events(
            profile,
            &def.event,
            def.filter.as_ref(),
            Window::Ever,
            out.now,
        ) {
            out.offer_window(e.timestamp_ms, p);
        }
    }
}

/// Adds the edges of an audience's windows and `within` tests; `computed` holds the values of
/// computed traits, which `within` may test.
pub fn audience_edges(
    audience: &Audience,
    profile: &ProfileData,
    computed: &BTreeMap<String, Value>,
    out: &mut Earliest,
) {
    visit(&audience.root, &mut |c| match c {
        Condition::Event(e) => {
            if let Window::Last(p) = e.window {
                for ev in
                    matching_events(profile, &e.event, e.filter.as_ref(), Window::Ever, out.now)
                {
                    out.offer_window(ev.timestamp_ms, p);
                }
            }
        }
        Condition::Trait(pred) => {
            if let Test::Within(p) = pred.test {
                let value = pred.path.split_first().and_then(|(first, rest)| {
                    let root = computed.get(first).or_else(|| profile.traits.get(first))?;
                    resolve(root, rest)
                });
                if let Some(t) = value
                    .and_then(Value::as_str)
                    .and_then(|s| parse_iso8601(s).ok())
                {
                    out.offer_window(t, p);
                }
            }
        }
        Condition::InAudience(_) => {}
    });
}

fn visit(e: &Logic<Condition>, f: &mut dyn FnMut(&Condition)) {
    super::registry::visit_conditions(e, f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audience::reference::EventRecord;
    use crate::audience::{parse_audience, parse_computed};
    use serde_json::json;

    const DAY: i64 = 86_400_000;

    fn profile(times: &[i64]) -> ProfileData {
        ProfileData {
            traits: [("signup".to_string(), json!("1970-01-05T00:00:00Z"))].into(),
            events: times
                .iter()
                .map(|&t| EventRecord {
                    name: "Viewed".into(),
                    timestamp_ms: t,
                    properties: json!({}),
                })
                .collect(),
        }
    }

    #[test]
    fn the_next_edge_is_an_event_leaving_or_entering_a_window() {
        let a = parse_audience(r#"performed "Viewed" at least 2 times within 3 days"#).unwrap();
        let p = profile(&[DAY, 2 * DAY, 10 * DAY]);
        let mut e = Earliest::after(3 * DAY);
        audience_edges(&a, &p, &BTreeMap::new(), &mut e);
        // The first event leaves at day 4; the future one enters at day 10.
        assert_eq!(e.at, Some(4 * DAY));
        let mut e = Earliest::after(4 * DAY);
        audience_edges(&a, &p, &BTreeMap::new(), &mut e);
        assert_eq!(e.at, Some(5 * DAY));
    }

    #[test]
    fn within_on_a_trait_and_ever_windows() {
        let a = parse_audience(r#"signup within 2 days or performed "Viewed""#).unwrap();
        let p = profile(&[DAY]);
        let mut e = Earliest::after(0);
        audience_edges(&a, &p, &BTreeMap::new(), &mut e);
        assert_eq!(e.at, Some(4 * DAY));
        let mut e = Earliest::after(5 * DAY);
        audience_edges(&a, &p, &BTreeMap::new(), &mut e);
        assert_eq!(e.at, Some(6 * DAY));
        let c = parse_computed(r#"count "Viewed""#).unwrap();
        let mut e = Earliest::after(0);
        computed_edges(&c, &p, &mut e);
        assert_eq!(e.at, None);
    }
}
