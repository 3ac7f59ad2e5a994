//! `tessera serve`: opens the embedded store, bootstraps it, and serves HTTP until SIGTERM or
//! Ctrl-C, then drains in-flight requests and flushes the log before exiting.

use crate::config::ServeSettings;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tessera_server::applier::{state_dir, Appliers, LogSignal};
use tessera_server::bootstrap::{bootstrap, AdminToken, DEFAULT_WORKSPACE};
use tessera_server::Metrics;
use tessera_store::{SqliteOptions, SqliteStore, Store};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Store(#[from] tessera_store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Applier(#[from] tessera_server::applier::ApplierError),
    #[error("{0}")]
    Locked(String),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

pub fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

pub fn run(settings: ServeSettings) -> Result<(), ServeError> {
    init_logging(&settings.log_format);
    let _lock =
        crate::datalock::DataLock::acquire(&settings.data_dir).map_err(ServeError::Locked)?;
    let metrics = Arc::new(Metrics::default());
    let observer_metrics = metrics.clone();
    let signal = Arc::new(LogSignal::default());
    let observer_signal = signal.clone();
    let store = SqliteStore::open(
        &settings.data_dir,
        SqliteOptions {
            queue_depth: settings.queue_depth,
            commit_observer: Some(Arc::new(move |took, _events| {
                observer_metrics.commits.fetch_add(1, Relaxed);
                observer_metrics.commit_latency.observe(took);
                observer_signal.notify();
            })),
            dedup_capacity: settings.dedup_capacity,
        },
    )?;
    let admin = bootstrap(&store, settings.admin_token.as_deref())?;
    let store: Arc<dyn Store> = Arc::new(store);
    let started = std::time::Instant::now();
    let appliers = Arc::new(Appliers::new(
        store.clone(),
        state_dir(&settings.data_dir),
        signal,
        settings.identity.clone(),
    ));
    appliers.start_all()?;
    tracing::info!(
        took_ms = started.elapsed().as_millis() as u64,
        "profile state loaded"
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&settings.listen)
            .await
            .map_err(|source| ServeError::Listen {
                addr: settings.listen.clone(),
                source,
            })?;
        let addr = listener.local_addr()?;
        println!(
            "Tessera is listening on http://{addr} (data in {})",
            settings.data_dir.display()
        );
        match admin {
            AdminToken::Generated(secret) => println!(
                "Admin token (shown once; set TESSERA_ADMIN_TOKEN to choose your own): {secret}"
            ),
            AdminToken::FromEnvironment => println!("Admin token: the one in TESSERA_ADMIN_TOKEN"),
            AdminToken::Existing => println!("Admin token: the one printed at first start"),
        }
        tracing::info!(%addr, "tessera serving");
        let state =
            tessera_server::app_state(store, metrics, appliers, DEFAULT_WORKSPACE.to_string());
        // Data-subject requests a stopped process left unfinished are carried out now.
        tessera_server::privacy_api::resume_unfinished(&state);
        // Retention purges: now, then every hour.
        tessera_server::retention::start(state.clone());
        tessera_server::serve(listener, state, shutdown_signal()).await?;
        tracing::info!("tessera stopped; every acknowledged event is on disk");
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("cannot install the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down: draining requests and flushing the event log");
}
