//! Tessera's HTTP server: the Segment-compatible Tracking API, the admin API, the event
//! debugger, health checks and Prometheus metrics, over any [`tessera_store::Store`].

pub mod activation;
pub mod activation_defs;
pub mod admin_api;
pub mod applier;
pub mod audiences_api;
pub mod auth;
pub mod body;
pub mod bootstrap;
pub mod cadence;
pub mod consent_api;
pub mod debugger;
pub mod deliveries_api;
pub mod delivery;
pub mod destinations_api;
pub mod error;
mod explain;
pub mod extract;
pub mod governance;
pub mod governance_api;
pub mod identity_api;
pub mod ids;
pub mod journeys_api;
mod log_apply;
pub mod metrics;
mod paging;
pub mod privacy_api;
mod privacy_requests;
pub mod profiles_api;
pub mod restore;
pub mod retention;
pub mod segments;
pub mod state;
mod state_writer;
pub mod suppression;
pub mod tracking;
pub mod workspace;

use audiences_api::{audiences, computed_traits};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

pub use metrics::Metrics;
pub use state::{AppState, SharedState};

/// The OpenAPI document of every endpoint, served at `/api/v1/openapi.json`.
const OPENAPI: &str = include_str!("openapi.json");

/// Builds the router with every route of the server.
pub fn router(state: SharedState) -> Router {
    let tracking = Router::new()
        .route("/v1/{endpoint}", post(tracking::post))
        .route("/v1/pixel/{endpoint}", get(tracking::pixel))
        .layer(axum::middleware::from_fn(tracking::cors));
    let admin = Router::new()
        .route(
            "/api/v1/workspaces",
            get(admin_api::list_workspaces).post(admin_api::create_workspace),
        )
        .route(
            "/api/v1/workspaces/{id}",
            get(admin_api::get_workspace).delete(admin_api::delete_workspace),
        )
        .route(
            "/api/v1/sources",
            get(admin_api::list_sources).post(admin_api::create_source),
        )
        .route(
            "/api/v1/sources/{id}",
            get(admin_api::get_source)
                .patch(admin_api::patch_source)
                .delete(admin_api::delete_source),
        )
        .route(
            "/api/v1/sources/{id}/{action}",
            post(admin_api::source_action),
        )
        .route(
            "/api/v1/tokens",
            get(admin_api::list_tokens).post(admin_api::create_token),
        )
        .route(
            "/api/v1/tokens/{id}",
            axum::routing::delete(admin_api::delete_token),
        )
        .route("/api/v1/events", get(debugger::list))
        .route("/api/v1/events/stream", get(debugger::stream))
        .route(
            "/api/v1/identity",
            get(identity_api::get_rules).put(identity_api::put_rules),
        )
        .route("/api/v1/identity/rebuild", post(identity_api::rebuild))
        .route(
            "/api/v1/computed-traits",
            get(computed_traits::list).post(computed_traits::create),
        )
        .route(
            "/api/v1/computed-traits/{id}",
            get(computed_traits::get)
                .put(computed_traits::update)
                .delete(computed_traits::delete),
        )
        .route(
            "/api/v1/computed-traits/{id}/versions",
            get(computed_traits::versions),
        )
        .route(
            "/api/v1/audiences",
            get(audiences::list).post(audiences::create),
        )
        .route("/api/v1/audiences/preview", post(audiences_api::preview))
        .route(
            "/api/v1/audiences/{id}",
            get(audiences::get)
                .put(audiences::update)
                .delete(audiences::delete),
        )
        .route("/api/v1/audiences/{id}/versions", get(audiences::versions))
        .route(
            "/api/v1/audiences/{id}/members",
            get(audiences_api::members),
        )
        .route("/api/v1/audiences/{id}/sizes", get(audiences_api::sizes))
        .route(
            "/api/v1/audiences/{id}/events",
            get(audiences_api::audience_events),
        )
        .route(
            "/api/v1/audience-events",
            get(audiences_api::all_audience_events),
        )
        .route(
            "/api/v1/destinations",
            get(destinations_api::list).post(destinations_api::create),
        )
        .route(
            "/api/v1/destinations/{id}",
            get(destinations_api::get)
                .put(destinations_api::update)
                .delete(destinations_api::delete),
        )
        .route(
            "/api/v1/destinations/{id}/{action}",
            post(destinations_api::action),
        )
        .route(
            "/api/v1/destinations/{id}/deliveries",
            get(deliveries_api::deliveries),
        )
        .route(
            "/api/v1/destinations/{id}/dead-letters",
            get(deliveries_api::dead_letters),
        )
        .route(
            "/api/v1/destinations/{id}/dead-letters/replay",
            post(deliveries_api::replay),
        )
        .route(
            "/api/v1/destinations/{id}/dead-letters/{key}",
            get(deliveries_api::dead_letter),
        )
        .route(
            "/api/v1/journeys",
            get(journeys_api::list).post(journeys_api::create),
        )
        .route(
            "/api/v1/journeys/{id}",
            get(journeys_api::get)
                .put(journeys_api::update)
                .delete(journeys_api::delete),
        )
        .route("/api/v1/journeys/{id}/metrics", get(journeys_api::metrics))
        .route(
            "/api/v1/journeys/{id}/versions",
            get(journeys_api::versions),
        )
        .route(
            "/api/v1/tracking-plan",
            get(governance_api::get_plan)
                .put(governance_api::put_plan)
                .delete(governance_api::delete_plan),
        )
        .route(
            "/api/v1/tracking-plan/versions",
            get(governance_api::plan_versions),
        )
        .route(
            "/api/v1/tracking-plan/violations",
            get(governance_api::violations),
        )
        .route(
            "/api/v1/tracking-plan/violations/recent",
            get(governance_api::recent),
        )
        .route(
            "/api/v1/privacy/pii-policy",
            get(governance_api::get_policy)
                .put(governance_api::put_policy)
                .delete(governance_api::delete_policy),
        )
        .route(
            "/api/v1/privacy/pii-policy/versions",
            get(governance_api::policy_versions),
        )
        .route(
            "/api/v1/privacy/requests",
            get(privacy_api::list).post(privacy_api::create),
        )
        .route("/api/v1/privacy/requests/{id}", get(privacy_api::get))
        .route(
            "/api/v1/privacy/retention",
            get(retention::get).put(retention::put),
        )
        .route("/api/v1/openapi.json", get(openapi));
    let profiles = Router::new()
        .route("/v1/profiles/{ident}", get(profiles_api::get_profile))
        .route(
            "/v1/profiles/{ident}/consent",
            get(consent_api::get).put(consent_api::put),
        )
        .route(
            "/v1/profiles/{ident}/{resource}",
            get(profiles_api::get_resource).post(profiles_api::split),
        )
        .route("/v1/accounts/{ident}", get(profiles_api::get_account));
    Router::new()
        .merge(tracking)
        .merge(admin)
        .merge(profiles)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe_latency,
        ))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then waits for in-flight requests (each of which waits for
/// its commit) and stops the store, so that everything acknowledged is on disk.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: SharedState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone());
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    let store = state.store.clone();
    let appliers = state.appliers.clone();
    tokio::task::spawn_blocking(move || {
        store.shutdown();
        appliers.shutdown();
    })
    .await
    .map_err(std::io::Error::other)?;
    Ok(())
}

async fn observe_latency(
    State(st): State<SharedState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let class = match req.uri().path() {
        p if p.starts_with("/v1/profiles/") || p.starts_with("/v1/accounts/") => {
            metrics::RouteClass::Profile
        }
        p if p.starts_with("/v1/") => metrics::RouteClass::Tracking,
        p if p.starts_with("/api/") => metrics::RouteClass::Admin,
        _ => metrics::RouteClass::Other,
    };
    let started = Instant::now();
    let resp = next.run(req).await;
    st.metrics.observe_request(class, started.elapsed());
    resp
}

async fn healthz() -> Response {
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}

/// Ready when the store answers a read.
async fn readyz(State(st): State<SharedState>) -> Result<Response, error::ApiError> {
    let position = st.store.last_position()?;
    Ok(
        axum::Json(serde_json::json!({"status": "ready", "log_position": position}))
            .into_response(),
    )
}

async fn metrics_text(State(st): State<SharedState>) -> Result<Response, error::ApiError> {
    let stats = st.store.log_stats()?;
    let mut text = st.metrics.render(stats.last_position, stats.bytes_on_disk);
    Metrics::render_appliers(&mut text, stats.last_position, &st.appliers.figures());
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        text,
    )
        .into_response())
}

async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI,
    )
        .into_response()
}

async fn not_found(uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no endpoint at {}", uri.path()),
    )
}

/// Builds the shared state for `store`.
pub fn app_state(
    store: Arc<dyn tessera_store::Store>,
    metrics: Arc<Metrics>,
    appliers: Arc<applier::Appliers>,
    default_workspace: String,
) -> SharedState {
    Arc::new(AppState::new(store, metrics, appliers, default_workspace))
}
