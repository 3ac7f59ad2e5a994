//! Start-up: rebuilds a workspace's engine from its stored state. Parsing the JSON documents
//! is most of the work, so it runs on every core while this thread reads SQLite and inserts
//! the parsed profiles; no more than a few chunks of documents are in memory at once.

use std::sync::mpsc::{channel, sync_channel};
use std::sync::{Arc, Mutex};
use tessera_core::identity::{Engine, IdentityRules, ParsedProfile, RestoreError, Restorer};
use tessera_store::{ProfileDb, StoreError, StoredRow};

/// Documents handed to a parser thread at a time.
const CHUNK: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum RestoreFailure {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("stored profile state cannot be read: {0}")]
    Restore(#[from] RestoreError),
}

type Parsed = Result<Vec<ParsedProfile>, RestoreError>;

/// The engine the stored state describes, at the position its documents reflect.
pub fn restore_engine(db: &ProfileDb, rules: IdentityRules) -> Result<Engine, RestoreFailure> {
    let mut restorer = Restorer::new(rules);
    // Most people have two or three identifiers; a guess that is off only costs a regrowth.
    let profiles = db.profile_count()?;
    restorer.reserve(profiles, profiles * 2);
    let parsers = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let mut absorbed = Vec::new();
    let (position, failure) = std::thread::scope(|scope| {
        let (raw_tx, raw_rx) = sync_channel::<Vec<(i64, String)>>(parsers * 2);
        let raw_rx = Arc::new(Mutex::new(raw_rx));
        // Unbounded: parsers must never wait on this thread while it waits on them.
        let (parsed_tx, parsed_rx) = channel::<Parsed>();
        for _ in 0..parsers {
            let (rx, tx) = (raw_rx.clone(), parsed_tx.clone());
            scope.spawn(move || loop {
                let next = rx.lock().expect("parser queue poisoned").recv();
                let Ok(chunk) = next else { return };
                let parsed = chunk
                    .iter()
                    .map(|(key, doc)| Restorer::parse_profile(*key, doc))
                    .collect();
                if tx.send(parsed).is_err() {
                    return;
                }
            });
        }
        drop(parsed_tx);
        let mut failure: Option<RestoreError> = None;
        let mut insert = |restorer: &mut Restorer, parsed: Parsed| {
            let result =
                parsed.and_then(|ps| ps.into_iter().try_for_each(|p| restorer.insert_profile(p)));
            if let Err(e) = result {
                failure.get_or_insert(e);
            }
        };
        let mut chunk = Vec::with_capacity(CHUNK);
        let position = db.read_state(|row| {
            match row {
                StoredRow::Account(key, doc) => {
                    restorer.account(key, doc).map_err(|e| e.to_string())?
                }
                StoredRow::Profile(key, doc) => {
                    chunk.push((key, doc.to_string()));
                    if chunk.len() == CHUNK {
                        let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                        raw_tx
                            .send(full)
                            .map_err(|_| "a parser thread stopped".to_string())?;
                    }
                    // Insert what is parsed meanwhile, so parsed chunks do not pile up.
                    while let Ok(parsed) = parsed_rx.try_recv() {
                        insert(&mut restorer, parsed);
                    }
                }
                StoredRow::Absorbed(key, survivor) => absorbed.push((key, survivor)),
            }
            Ok(())
        });
        if !chunk.is_empty() {
            let _ = raw_tx.send(chunk);
        }
        drop(raw_tx);
        for parsed in parsed_rx {
            insert(&mut restorer, parsed);
        }
        (position, failure)
    });
    let position = position?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    for (key, survivor) in absorbed {
        restorer.absorbed(key, survivor);
    }
    Ok(restorer.finish(position)?)
}
