//! Routing: which destinations receive an applied event or an audience change, and the exact
//! message each receives, as [`OutboxRecord`]s. Pure and deterministic: the records and their
//! idempotency keys follow from the log alone, so re-deriving them after a crash gives the
//! same keys and the outbox stores them once.
//!
//! Also the request bodies of batches, which the delivery workers assemble from stored
//! payloads without re-parsing them.

use super::destination::Destination;
use super::signature::hex;
use super::template::Template;
use super::{AudienceView, EventView, OutboxRecord, ProfileLookup, RecordKind};
use crate::identity::CONSENT_PREFIX;
use crate::time::{format_iso8601, Millis};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The compiled destinations of one workspace.
#[derive(Debug, Clone, Default)]
pub struct Router {
    dests: Vec<Destination>,
    /// Destinations that forward events, in configuration order.
    forwarding: Vec<usize>,
    /// Audience id → destinations syncing it.
    syncing: HashMap<String, Vec<usize>>,
}

/// Why a record was not produced, as pushed to `skipped`.
pub const SKIP_CONSENT: &str = "consent";
pub const SKIP_UNKNOWN_DESTINATION: &str = "unknown_destination";
pub const SKIP_TEMPLATE: &str = "template";

impl Router {
    pub fn new(dests: Vec<Destination>) -> Router {
        let forwarding = (0..dests.len())
            .filter(|&i| dests[i].forward_events)
            .collect();
        let mut syncing: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, d) in dests.iter().enumerate() {
            for a in &d.sync_audiences {
                let list = syncing.entry(a.clone()).or_default();
                // A subscription listed twice still yields one record per change.
                if !list.contains(&i) {
                    list.push(i);
                }
            }
        }
        Router {
            dests,
            forwarding,
            syncing,
        }
    }

    pub fn destinations(&self) -> &[Destination] {
        &self.dests
    }

    pub fn destination(&self, id: &str) -> Option<&Destination> {
        self.dests.iter().find(|d| d.id == id)
    }

    /// No destinations at all: nothing can be routed.
    pub fn is_empty(&self) -> bool {
        self.dests.is_empty()
    }

    /// Whether any destination forwards events: when none does, [`Router::route_event`]
    /// produces nothing and the applier need not parse event bodies for it.
    pub fn forwards_events(&self) -> bool {
        !self.forwarding.is_empty()
    }

    /// Records for an applied event: one for each destination with `forward_events` (paused or
    /// not: pausing holds delivery, it does not drop) whose filters match. A destination whose
    /// consent categories are not all granted by the message gets nothing, and is pushed to
    /// `skipped` with `"consent"`.
    pub fn route_event(
        &self,
        ev: &EventView<'_>,
        view: &dyn ProfileLookup,
        out: &mut Vec<OutboxRecord>,
        skipped: &mut Vec<(String, &'static str)>,
    ) {
        // Built at most once per event, whatever the number of destinations.
        let mut plain: Option<String> = None;
        let mut mapping_ctx: Option<Value> = None;
        for &i in &self.forwarding {
            let d = &self.dests[i];
            if !filters_match(d, ev, view) {
                continue;
            }
            if !consent_granted(&d.consent, Some(ev.message), ev.profile, view) {
                skipped.push((d.id.clone(), SKIP_CONSENT));
                continue;
            }
            let payload = match &d.mapping {
                Some(t) => {
                    let ctx = mapping_ctx.get_or_insert_with(|| mapping_context(ev, view));
                    t.render(ctx).to_string()
                }
                None => plain
                    .get_or_insert_with(|| forwarded_message(ev.message, ev.profile))
                    .clone(),
            };
            out.push(OutboxRecord {
                destination: d.id.clone(),
                key: event_key(&d.id, ev.position),
                position: ev.position,
                profile: ev.profile,
                kind: RecordKind::Event,
                payload,
                at: ev.received_at,
            });
        }
    }

    /// Records for an audience entry or exit: one for each destination syncing the audience.
    pub fn route_audience(
        &self,
        change: &AudienceView<'_>,
        view: &dyn ProfileLookup,
        out: &mut Vec<OutboxRecord>,
        skipped: &mut Vec<(String, &'static str)>,
    ) {
        let Some(targets) = self.syncing.get(change.audience) else {
            return;
        };
        let user_id = view.user_id(change.profile);
        for &i in targets {
            let d = &self.dests[i];
            if !consent_granted(&d.consent, None, Some(change.profile), view) {
                skipped.push((d.id.clone(), SKIP_CONSENT));
                continue;
            }
            let key = audience_key(
                &d.id,
                change.audience,
                change.profile,
                change.entered,
                change.at,
            );
            let payload = audience_message(
                change.entered,
                change.audience,
                change.name,
                change.profile,
                user_id.as_deref(),
                change.reason,
                change.at,
                &key,
            );
            out.push(OutboxRecord {
                destination: d.id.clone(),
                key,
                position: change.position,
                profile: Some(change.profile),
                kind: if change.entered {
                    RecordKind::AudienceEntered
                } else {
                    RecordKind::AudienceExited
                },
                payload,
                at: change.at,
            });
        }
    }

    /// The backfill of a newly subscribed audience: one `Audience Entered` record (reason
    /// `backfill`) per current member, listed by the caller. `position` is the subscription's
    /// (the log position it was made at), so a later re-subscription backfills again under
    /// new keys while a re-run of the same one produces the same keys. Nothing for an unknown
    /// destination.
    #[allow(clippy::too_many_arguments)]
    pub fn backfill(
        &self,
        dest: &str,
        audience: &str,
        audience_name: &str,
        members: &[i64],
        at: Millis,
        position: i64,
        view: &dyn ProfileLookup,
        out: &mut Vec<OutboxRecord>,
    ) {
        let Some(d) = self.destination(dest) else {
            return;
        };
        for &profile in members {
            let key = format!("{}:b:{audience}:{profile}:{position}", d.id);
            let user_id = view.user_id(profile);
            let payload = audience_message(
                true,
                audience,
                audience_name,
                profile,
                user_id.as_deref(),
                "backfill",
                at,
                &key,
            );
            out.push(OutboxRecord {
                destination: d.id.clone(),
                key,
                position,
                profile: Some(profile),
                kind: RecordKind::AudienceEntered,
                payload,
                at,
            });
        }
    }

    /// A journey send step's record: `template` rendered over `context` when given, else the
    /// context as-is. When the context carries the triggering message (`context.trigger`), the
    /// destination's consent categories must be granted by it, as for forwarded events.
    /// Returns `None`, pushing the reason to `skipped`, when the destination is unknown
    /// (`"unknown_destination"`), consent is missing (`"consent"`) or the template does not
    /// compile (`"template"`; journeys check it when saved, so this is a stale definition).
    #[allow(clippy::too_many_arguments)]
    pub fn journey_record(
        &self,
        destination: &str,
        key: &str,
        profile: i64,
        template: Option<&Value>,
        context: &Value,
        at: Millis,
        position: i64,
        skipped: &mut Vec<(String, &'static str)>,
    ) -> Option<OutboxRecord> {
        let Some(d) = self.destination(destination) else {
            skipped.push((destination.to_owned(), SKIP_UNKNOWN_DESTINATION));
            return None;
        };
        if !journey_consent(&d.consent, context) {
            skipped.push((d.id.clone(), SKIP_CONSENT));
            return None;
        }
        let payload = match template {
            None => context.to_string(),
            Some(t) => match Template::parse(t) {
                Ok(t) => t.render(context).to_string(),
                Err(_) => {
                    skipped.push((d.id.clone(), SKIP_TEMPLATE));
                    return None;
                }
            },
        };
        Some(OutboxRecord {
            destination: d.id.clone(),
            key: key.to_owned(),
            position,
            profile: Some(profile),
            kind: RecordKind::Journey,
            payload,
            at,
        })
    }
}

/// `prf_<key>`, the public id of a profile.
pub fn profile_id(profile: i64) -> String {
    format!("prf_{profile}")
}

/// The idempotency key of a forwarded event.
pub fn event_key(dest: &str, position: i64) -> String {
    format!("{dest}:e:{position}")
}

/// The idempotency key of a live audience entry or exit. The instant distinguishes a
/// profile's successive entries into the same audience.
pub fn audience_key(dest: &str, audience: &str, profile: i64, entered: bool, at: Millis) -> String {
    let dir = if entered { "in" } else { "out" };
    format!("{dest}:a:{audience}:{profile}:{dir}:{at}")
}

fn filters_match(d: &Destination, ev: &EventView<'_>, view: &dyn ProfileLookup) -> bool {
    let f = &d.filters;
    if !f.types.is_empty() && !f.types.iter().any(|t| t == ev.kind) {
        return false;
    }
    if !f.events.is_empty() && !ev.name.is_some_and(|n| f.events.iter().any(|e| e == n)) {
        return false;
    }
    // `in_audience` in the condition asks about the event's profile; without one, the event
    // is in no audience.
    let in_audience = |a: &str| ev.profile.is_some_and(|p| view.in_audience(p, a));
    if f.condition
        .as_ref()
        .is_some_and(|c| !c.matches_with(ev.message, &in_audience))
    {
        return false;
    }
    if !f.audiences.is_empty() {
        let Some(p) = ev.profile else { return false };
        if !f.audiences.iter().any(|a| view.in_audience(p, a)) {
            return false;
        }
    }
    true
}

/// Every required category must be granted: explicitly `true` in the message's
/// `context.consent.categoryPreferences`, or, where the message says nothing of it, in the
/// profile's consent (as of its last word on it). No answer is not consent, and a message's
/// `false` wins over an older `true`.
pub fn consent_granted(
    required: &[String],
    message: Option<&Value>,
    profile: Option<i64>,
    view: &dyn ProfileLookup,
) -> bool {
    if required.is_empty() {
        return true;
    }
    let prefs = message.and_then(|m| m.pointer("/context/consent/categoryPreferences"));
    required.iter().all(|c| match prefs.and_then(|p| p.get(c)) {
        Some(v) => v == &Value::Bool(true),
        None => profile.is_some_and(|p| view.consent(p, c) == Some(true)),
    })
}

/// Consent for a journey's message: as the triggering message says, else as the profile's
/// consent traits in the context say.
fn journey_consent(required: &[String], context: &Value) -> bool {
    let trigger = context.get("trigger").filter(|t| t.is_object());
    let traits = context.pointer("/profile/traits");
    let prefs = trigger.and_then(|t| t.pointer("/context/consent/categoryPreferences"));
    required.iter().all(|c| match prefs.and_then(|p| p.get(c)) {
        Some(v) => v == &Value::Bool(true),
        None => traits
            .and_then(|t| t.get(format!("{CONSENT_PREFIX}{c}")))
            .is_some_and(|v| v == &Value::Bool(true)),
    })
}

/// The stored message with `context.tessera.profileId`. A client-sent `context.tessera` is
/// dropped: that key is Tessera's, and receivers must be able to trust it.
fn forwarded_message(message: &Value, profile: Option<i64>) -> String {
    let mut msg = message.clone();
    if let Value::Object(m) = &mut msg {
        let ctx = m
            .entry("context")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(c) = ctx {
            match profile {
                Some(p) => {
                    c.insert("tessera".into(), json!({"profileId": profile_id(p)}));
                }
                None => {
                    c.remove("tessera");
                }
            }
        }
    }
    msg.to_string()
}

/// What a mapping renders over: the message's fields plus `profile` (`null` when the event
/// has no profile).
fn mapping_context(ev: &EventView<'_>, view: &dyn ProfileLookup) -> Value {
    let mut m = ev.message.as_object().cloned().unwrap_or_default();
    let profile = match ev.profile {
        Some(p) => json!({
            "id": profile_id(p),
            "userId": view.user_id(p),
            "traits": view.traits(p),
        }),
        None => Value::Null,
    };
    m.insert("profile".into(), profile);
    Value::Object(m)
}

/// An audience change as a Segment track message, so that Segment-compatible receivers can
/// take it as they take any event.
#[allow(clippy::too_many_arguments)]
fn audience_message(
    entered: bool,
    audience: &str,
    audience_name: &str,
    profile: i64,
    user_id: Option<&str>,
    reason: &str,
    at: Millis,
    key: &str,
) -> String {
    let mut m = Map::new();
    m.insert("type".into(), json!("track"));
    let event = if entered {
        "Audience Entered"
    } else {
        "Audience Exited"
    };
    m.insert("event".into(), json!(event));
    match user_id {
        Some(u) => m.insert("userId".into(), json!(u)),
        // Segment needs one of the two ids; the profile id is stable and ours to give.
        None => m.insert("anonymousId".into(), json!(profile_id(profile))),
    };
    m.insert(
        "properties".into(),
        json!({
            "audience_id": audience,
            "audience_name": audience_name,
            "profile_id": profile_id(profile),
            "reason": reason,
        }),
    );
    m.insert("timestamp".into(), json!(format_iso8601(at)));
    m.insert("messageId".into(), json!(key));
    Value::Object(m).to_string()
}

/// A webhook request body: a single payload as itself, several as `{"batch":[...]}`.
pub fn webhook_body(payloads: &[&str]) -> String {
    match payloads {
        [one] => (*one).to_owned(),
        _ => {
            let mut s = String::from("{\"batch\":");
            push_array(&mut s, payloads);
            s.push('}');
            s
        }
    }
}

/// A Segment batch request body: `{"batch":[...],"sentAt":"<ISO>"}`.
pub fn segment_batch_body(payloads: &[&str], sent_at: Millis) -> String {
    let mut s = String::from("{\"batch\":");
    push_array(&mut s, payloads);
    s.push_str(",\"sentAt\":\"");
    s.push_str(&format_iso8601(sent_at));
    s.push_str("\"}");
    s
}

/// The idempotency key of a request: a single record's key, or for a batch a digest of its
/// keys (in order), so that re-sending the same batch repeats the same key.
pub fn batch_idempotency_key(keys: &[&str]) -> String {
    match keys {
        [one] => (*one).to_owned(),
        _ => {
            let mut h = Sha256::new();
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    h.update(b"\n");
                }
                h.update(k.as_bytes());
            }
            let digest = h.finalize();
            format!("batch-{}", hex(&digest[..16]))
        }
    }
}

/// Payloads are stored JSON text, so a batch is assembled by concatenation, not re-parsing.
fn push_array(s: &mut String, payloads: &[&str]) {
    s.reserve(payloads.iter().map(|p| p.len() + 1).sum::<usize>() + 2);
    s.push('[');
    for (i, p) in payloads.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(p);
    }
    s.push(']');
}

#[cfg(test)]
#[path = "tests/router.rs"]
mod tests;
