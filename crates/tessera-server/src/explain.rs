//! `GET /v1/profiles/{type:value}/explain?other={type:value}`: why two identifiers are one
//! person. The answer is the chain of events that joined them: from each identifier back, the
//! event that added it and the identifiers of that event the profile already had (which tied
//! it to the profile), then every merge on the way to the profile they share, each with the
//! identifiers that caused it.

use crate::applier::WorkspaceState;
use crate::error::ApiError;
use crate::state::SharedState;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use tessera_core::identity::{profile_id, EventFacts, IdentifierView, MergeRow};
use tessera_core::time::format_iso8601;
use tessera_store::{ProfileDb, Store};

fn split_ident(s: &str, name: &str) -> Result<(String, String), ApiError> {
    s.split_once(':')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_identifier",
                format!("`{name}` must be an identifier as `type:value`"),
            )
        })
}

/// The profiles an origin profile passed through by merges, with the merge of each hop.
fn lineage(db: &ProfileDb, origin: i64) -> Result<Vec<(i64, Option<MergeRow>)>, ApiError> {
    let mut out = Vec::new();
    let mut current = origin;
    // A profile takes part in at most `max_merges` merges; the bound only guards bad data.
    for _ in 0..10_000 {
        match db.absorbed(current)? {
            Some(a) => {
                let merge = db.merge_at(a.position, a.survivor)?;
                out.push((current, merge));
                current = a.survivor;
            }
            None => {
                out.push((current, None));
                return Ok(out);
            }
        }
    }
    Err(ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "merge records form a cycle",
    ))
}

pub async fn explain(
    st: SharedState,
    state: Arc<WorkspaceState>,
    key: i64,
    ident: &str,
    other: Option<&str>,
) -> Result<Json<Value>, ApiError> {
    let other = other.ok_or_else(|| {
        ApiError::bad_request("missing_field", "`other` names the second identifier")
    })?;
    let (ak, av) = split_ident(ident, "the profile path")?;
    let (bk, bv) = split_ident(other, "other")?;
    let (a, b, other_key) = {
        let engine = state.engine.read().expect("engine poisoned");
        for kind in [&ak, &bk] {
            if !engine.knows_type(kind) {
                return Err(ApiError::bad_request(
                    "unknown_identifier_type",
                    format!("`{kind}` is not an identifier type of this workspace"),
                ));
            }
        }
        let a = engine.identifier(&ak, &av);
        let b = engine.identifier(&bk, &bv);
        let other_key = engine.profile_by_identifier(&bk, &bv);
        (a, b, other_key)
    };
    let a = a.ok_or_else(|| ApiError::not_found(&format!("identifier {ident}")))?;
    let b = b.ok_or_else(|| ApiError::not_found(&format!("identifier {other}")))?;
    let other_key = other_key.ok_or_else(|| ApiError::not_found(&format!("identifier {other}")))?;
    if other_key != key {
        return Ok(Json(json!({
            "joined": false,
            "profiles": [profile_id(key), profile_id(other_key)],
        })));
    }
    let db = state.db();
    let ws = state.workspace.clone();
    let store = st.store.clone();
    let steps = tokio::task::spawn_blocking(move || {
        // From each end, the identifiers that tied the adding events to the profile.
        let mut links = matched_chain(&state, store.as_ref(), key, a.clone())?;
        links.extend(matched_chain(&state, store.as_ref(), key, b.clone())?);
        let mut steps = chain(&db, &a, &b, &links)?;
        with_events(store.as_ref(), &ws, &mut steps)?;
        Ok::<_, ApiError>(steps)
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "task failed"))??;
    Ok(Json(json!({
        "joined": true,
        "profile": profile_id(key),
        "steps": steps,
    })))
}

/// An identifier and the identifiers, already on the profile, that the event adding it
/// carried too (what tied that event to the profile).
type Link = (IdentifierView, Vec<IdentifierView>);

/// Walks back from `start`: the event that added an identifier also carried identifiers the
/// profile already had; the highest-priority one is followed in turn, back to the event that
/// created the profile (which carried none).
fn matched_chain(
    state: &WorkspaceState,
    store: &dyn Store,
    key: i64,
    start: IdentifierView,
) -> Result<Vec<Link>, ApiError> {
    let mut out: Vec<Link> = Vec::new();
    let mut seen = HashSet::new();
    let mut next = Some(start);
    while let Some(x) = next.take() {
        // Positions only decrease along the chain; the bound only guards bad data.
        if !seen.insert((x.kind.clone(), x.value.clone())) || out.len() >= 1_000 {
            break;
        }
        let event = store
            .events_at(&state.workspace, &[x.position])?
            .into_iter()
            .next();
        let mut matched = Vec::new();
        if let Some(e) = event {
            if let Ok(facts) = EventFacts::parse(e.position, 0, &e.source_id, &e.body) {
                let engine = state.engine.read().expect("engine poisoned");
                for (t, v) in engine.identifiers_in(&facts) {
                    let Some(iv) = engine.identifier(&t, &v) else {
                        continue;
                    };
                    if iv.position < x.position && engine.profile_by_identifier(&t, &v) == Some(key)
                    {
                        matched.push(iv);
                    }
                }
            }
        }
        next = matched.first().cloned();
        out.push((x, matched));
    }
    Ok(out)
}

fn chain(
    db: &ProfileDb,
    a: &IdentifierView,
    b: &IdentifierView,
    links: &[Link],
) -> Result<Vec<Value>, ApiError> {
    let la = lineage(db, a.origin)?;
    let lb = lineage(db, b.origin)?;
    let in_a: HashSet<i64> = la.iter().map(|(p, _)| *p).collect();
    let common = lb
        .iter()
        .map(|(p, _)| *p)
        .find(|p| in_a.contains(p))
        .ok_or_else(|| {
            // The engine joined them but the merge records are not written yet.
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "catching_up",
                "the merge that joined these identifiers is still being written; retry shortly",
            )
        })?;
    // Steps keyed by (position, order) so the chain reads in log order.
    let mut steps: BTreeMap<(i64, u8, String), Value> = BTreeMap::new();
    for (id, matched) in links {
        steps.insert(
            (id.position, 0, format!("{}:{}", id.kind, id.value)),
            json!({
                "step": "identifier_added",
                "identifier": {"type": id.kind, "value": id.value},
                "profile": profile_id(id.origin),
                // Identifiers the adding event carried that the profile already had.
                "matched_by": matched.iter()
                    .map(|m| json!({"type": m.kind, "value": m.value})).collect::<Vec<_>>(),
                "position": id.position,
                "timestamp": format_iso8601(id.first_seen),
            }),
        );
    }
    for lin in [&la, &lb] {
        for (profile, merge) in lin {
            if *profile == common {
                break;
            }
            if let Some(m) = merge {
                steps.insert(
                    (m.position, 1, profile_id(m.survivor)),
                    json!({
                        "step": "merged",
                        "survivor": profile_id(m.survivor),
                        "absorbed": m.absorbed.iter().map(|&x| profile_id(x)).collect::<Vec<_>>(),
                        "identifiers": m.identifiers.iter()
                            .map(|(t, v)| json!({"type": t, "value": v})).collect::<Vec<_>>(),
                        "position": m.position,
                        "timestamp": format_iso8601(m.ts),
                    }),
                );
            }
        }
    }
    Ok(steps.into_values().collect())
}

/// Adds the type and messageId of the event behind each step.
fn with_events(store: &dyn Store, ws: &str, steps: &mut [Value]) -> Result<(), ApiError> {
    let positions: Vec<i64> = steps
        .iter()
        .filter_map(|s| s["position"].as_i64())
        .collect();
    let events = store.events_at(ws, &positions)?;
    for step in steps.iter_mut() {
        let pos = step["position"].as_i64();
        if let Some(e) = events.iter().find(|e| Some(e.position) == pos) {
            let body: Value = serde_json::from_str(&e.body).unwrap_or(Value::Null);
            step["event"] = json!({"type": body["type"], "messageId": body["messageId"]});
        }
    }
    Ok(())
}
