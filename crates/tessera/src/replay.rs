//! `tessera replay`: re-derives every workspace's profiles from the event log into a fresh
//! state file, the same way the applier does live. Without `--out` the result replaces the
//! current state at the next start; with `--out` it is written to that file only (to compare
//! replays, or to inspect with the `sqlite3` shell).

use crate::config::{FileConfig, DEFAULT_DATA_DIR};
use crate::datalock::DataLock;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tessera_core::identity::{CommitBatch, Engine, IdentityRules};
use tessera_core::segment::Segmenter;
use tessera_server::applier::{replay_into, state_dir};
use tessera_server::segments::{batch_threads, change_rows, stored_registry, wall_micros};
use tessera_store::{ProfileDb, SqliteOptions, SqliteStore, Store};

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Directory of the embedded store [default: ./tessera-data].
    #[arg(long, env = "TESSERA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file (its `[identity]` table gives rules to workspaces without their own).
    #[arg(long, env = "TESSERA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Only this workspace [default: every workspace].
    #[arg(long)]
    pub workspace: Option<String>,
    /// Write the rebuilt state to this new file instead of replacing the current state
    /// (needs `--workspace` when there are several workspaces; an existing file is refused).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: ReplayArgs) -> Result<(), String> {
    let file = FileConfig::load(args.config.as_deref()).map_err(|e| e.to_string())?;
    let default_rules = match args.config.as_deref() {
        Some(p) => file.identity_rules(p).map_err(|e| e.to_string())?,
        None => IdentityRules::default(),
    };
    let data_dir = args
        .data_dir
        .clone()
        .or(file.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let _lock = DataLock::acquire(&data_dir)?;
    let store = Arc::new(
        SqliteStore::open(&data_dir, SqliteOptions::default()).map_err(|e| e.to_string())?,
    );
    let mut workspaces: Vec<String> = store
        .list_workspaces()
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|w| w.id)
        .collect();
    if let Some(only) = &args.workspace {
        if !workspaces.contains(only) {
            return Err(format!("no workspace `{only}`"));
        }
        workspaces = vec![only.clone()];
    }
    if args.out.is_some() && workspaces.len() != 1 {
        return Err("--out writes one workspace; name it with --workspace".into());
    }
    if let Some(out) = &args.out {
        // Never overwrite: a mistyped path could name the event log itself.
        if out.exists() {
            return Err(format!(
                "{} exists; --out writes a new file only",
                out.display()
            ));
        }
    }
    for ws in &workspaces {
        let rules = match store.identity_rules(ws).map_err(|e| e.to_string())? {
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| e.to_string())
                .and_then(|v| IdentityRules::from_json(&v).map_err(|e| e.to_string()))
                .map_err(|e| format!("workspace {ws}: stored identity rules: {e}"))?,
            None => default_rules.clone(),
        };
        let started = Instant::now();
        // The live state's audience history and memberships carry over into the new
        // generation; what the replay changes is recorded as `rebuilt` entries and exits.
        let previous = match &args.out {
            Some(_) => None,
            None => {
                Some(ProfileDb::open_latest(&state_dir(&data_dir), ws).map_err(|e| e.to_string())?)
            }
        };
        let db = match &args.out {
            Some(path) => ProfileDb::create(path),
            None => ProfileDb::create_next(&state_dir(&data_dir), ws),
        }
        .map_err(|e| e.to_string())?;
        let mut engine = Engine::new(rules);
        let mut seg = Segmenter::new();
        replay_into(store.as_ref(), ws, &mut engine, &mut seg, &db, None)
            .map_err(|e| e.to_string())?;
        let registry = stored_registry(store.as_ref(), ws).map_err(|e| e.to_string())?;
        seg.init_registry(registry, batch_threads());
        let before = match &previous {
            Some(old) => {
                db.copy_audience_history(old, &[])
                    .map_err(|e| e.to_string())?;
                old.all_memberships().map_err(|e| e.to_string())?
            }
            None => Default::default(),
        };
        seg.record_rebuild(&before);
        let batch = CommitBatch {
            position: engine.position(),
            audience_changes: change_rows(seg.take_changes(), wall_micros()),
            ..CommitBatch::default()
        };
        db.commit(&batch).map_err(|e| e.to_string())?;
        db.mark_complete().map_err(|e| e.to_string())?;
        let stats = engine.stats();
        println!(
            "workspace {ws}: replayed up to log position {} in {:.2} s: {} profiles ({} merged away), {} identifiers, {} accounts -> {}",
            engine.position(),
            started.elapsed().as_secs_f64(),
            stats.live_profiles,
            stats.absorbed_profiles,
            stats.identifiers,
            stats.accounts,
            db.path().display()
        );
    }
    store.shutdown();
    Ok(())
}
