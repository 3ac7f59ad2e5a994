//! Feeds applied events to the segmentation evaluator: the one place where the identity
//! engine and the [`Segmenter`] meet, used by the server's applier, rebuilds and tests alike.

use super::segmenter::{Applied, Segmenter};
use crate::identity::{Engine, EventFacts};
use crate::time::Millis;
use serde_json::Value;

/// Applies one event to the engine, then to the segmenter. Returns the key of the profile it
/// was applied to and the keys of the profiles it merged into that one, if it had a profile.
pub fn apply_event(
    engine: &mut Engine,
    seg: &mut Segmenter,
    f: &EventFacts<'_>,
    received_at: Millis,
) -> Option<(i64, Vec<i64>)> {
    let Some(p) = engine.apply_traced(f) else {
        seg.advance(received_at);
        return None;
    };
    let merged = (p.key, p.absorbed.iter().map(|&(_, k)| k).collect());
    let name = f.event_name();
    let props: Option<Value> = match (name, f.properties) {
        (Some(_), Some(raw)) => serde_json::from_str(raw.get()).ok(),
        _ => None,
    };
    seg.apply(Applied {
        position: f.position,
        received_at,
        slot: p.slot,
        key: p.key,
        absorbed: p.absorbed,
        event: name.map(|n| (n, f.timestamp, props.as_ref())),
        traits: p.traits,
    });
    Some(merged)
}

/// Writes a trait set by a journey to the engine, then to the segmenter (which re-evaluates
/// what reads that trait). `value` is JSON.
pub fn set_trait(
    engine: &mut Engine,
    seg: &mut Segmenter,
    key: i64,
    name: &str,
    value: &Value,
    (at, position): (Millis, i64),
    source: &str,
) {
    let text = value.to_string();
    let Some((slot, live_key)) = engine.set_trait(key, name, &text, (at, position), source) else {
        return;
    };
    seg.apply(Applied {
        position,
        received_at: at.max(seg.now()),
        slot,
        key: live_key,
        absorbed: Vec::new(),
        event: None,
        traits: vec![(name.to_string(), Some(value.clone()))],
    });
}

/// Registers every profile of a restored engine and its traits (events are loaded separately).
pub fn load_profiles(engine: &Engine, seg: &mut Segmenter) {
    let slots: Vec<(u32, i64, u32)> = engine.slots().collect();
    for &(slot, key, live) in &slots {
        seg.register(slot, key, live);
    }
    for &(slot, _, live) in &slots {
        if slot == live {
            for (k, v) in engine.slot_traits(slot) {
                seg.load_trait(slot, &k, Some(&v));
            }
        }
    }
}
