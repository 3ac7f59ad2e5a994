//! What applying events changed, collected until the applier commits: the rows the store must
//! write together with the log position they reflect.

use super::engine::{Engine, NONE};
use crate::time::Millis;

#[derive(Default)]
pub(super) struct Changes {
    /// (event position, profile slot when applied).
    pub assignments: Vec<(i64, u32)>,
    pub history: Vec<HistoryChange>,
    pub merges: Vec<MergeChange>,
    pub dirty_profiles: Vec<u32>,
    pub dirty_accounts: Vec<u32>,
}

pub(super) struct HistoryChange {
    pub slot: u32,
    pub position: i64,
    pub key: u32,
    pub value: Box<str>,
    pub source: u32,
    pub ts: Millis,
}

pub(super) struct MergeChange {
    pub position: i64,
    pub ts: Millis,
    pub survivor: u32,
    pub absorbed: Vec<u32>,
    pub identifiers: Vec<(u16, Box<str>)>,
}

/// Everything one commit writes. Profile keys are resolved to the profile that is live at the
/// end of the batch, so rows written now never need rewriting for merges in the same batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CommitBatch {
    /// The last log position the batch reflects.
    pub position: i64,
    /// Whether `profiles` and `accounts` hold every document changed up to `docs_position`
    /// (else they are empty and the documents come in a later batch).
    pub documents: bool,
    /// With documents: the log position they reflect, when earlier than `position` (a
    /// snapshot rendered while events kept being applied); 0 means `position`.
    pub docs_position: i64,
    /// With documents: the identity rules (JSON) that events after `position` are applied
    /// under, so a restart re-derives them exactly as they were derived.
    pub rules: Option<String>,
    /// Live profiles that changed: (key, document).
    pub profiles: Vec<(i64, String)>,
    /// Accounts that changed: (key, document).
    pub accounts: Vec<(i64, String)>,
    pub absorbed: Vec<AbsorbedRow>,
    /// (profile key, event position).
    pub assignments: Vec<(i64, i64)>,
    pub history: Vec<HistoryRow>,
    pub merges: Vec<MergeRow>,
    /// Audience entries and exits, in the order they happened (filled by the applier from
    /// the segmenter).
    pub audience_changes: Vec<AudienceChangeRow>,
    /// Size samples (audience id, time, size) of audiences whose size changed.
    pub audience_sizes: Vec<(String, Millis, i64)>,
    /// Audiences deleted since the last commit: their memberships go.
    pub dropped_audiences: Vec<String>,
    /// Outbox records, delivery attempts and journey state (filled by the applier).
    pub activation: crate::activation::ActivationBatch,
}

/// One entry into or exit from an audience, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceChangeRow {
    pub audience: String,
    pub name: String,
    pub version: u32,
    pub profile: i64,
    pub entered: bool,
    /// When it happened (the clock of the applier: event receipt or a window edge).
    pub at: Millis,
    /// `event`, `merge`, `time`, `backfill`, `definition_updated` or `rebuilt`.
    pub reason: String,
    /// The log position of the event behind it, when there was one.
    pub position: Option<i64>,
    /// Wall-clock microseconds when the applier recorded it (for latency figures).
    pub recorded_at_us: i64,
}

impl CommitBatch {
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
            && self.accounts.is_empty()
            && self.absorbed.is_empty()
            && self.assignments.is_empty()
            && self.history.is_empty()
            && self.merges.is_empty()
            && self.audience_changes.is_empty()
            && self.activation.is_empty()
            && self.audience_sizes.is_empty()
            && self.dropped_audiences.is_empty()
    }
}

/// A profile merged into another: its rows move to `live`; `survivor` is kept for explain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbsorbedRow {
    pub profile: i64,
    pub survivor: i64,
    pub live: i64,
    pub position: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub profile: i64,
    pub position: i64,
    pub key: String,
    /// JSON text.
    pub value: String,
    pub source: String,
    pub ts: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeRow {
    pub position: i64,
    pub ts: Millis,
    pub survivor: i64,
    pub absorbed: Vec<i64>,
    /// (type, value) of the event's identifiers that matched existing profiles.
    pub identifiers: Vec<(String, String)>,
}

/// Changes taken out of the engine but not yet turned into rows (see
/// [`Engine::drain_changes`]).
pub struct DrainedChanges {
    changes: Changes,
    position: i64,
    with_docs: bool,
    /// Documents already rendered: a completed snapshot (without `with_docs`), or what an
    /// abandoned one had rendered (with it; later documents of the same profiles win).
    rendered: Option<super::snapshot::DocSnapshot>,
}

impl Engine {
    /// Takes what changed since the last call, ready for the store.
    pub fn take_changes(&mut self) -> CommitBatch {
        let drained = self.drain_changes(true);
        self.batch_of(drained)
    }

    /// The cheap half of [`Engine::take_changes`], for under a write lock: it only moves the
    /// change lists out. [`Engine::batch_of`] then builds the rows under a read lock, so
    /// readers are not held up while documents are written.
    ///
    /// Without `with_docs`, changed profiles and accounts stay marked and their documents are
    /// left for a later batch: documents are rewritten whole, so writing them less often than
    /// timelines and history saves most of the writing.
    pub fn drain_changes(&mut self, with_docs: bool) -> DrainedChanges {
        let mut rendered = None;
        if with_docs {
            // Documents as of now replace a snapshot in progress: what it has not rendered
            // yet has not changed since, so it joins the documents rendered now.
            if let Some(mut snap) = self.snapshot.take() {
                let (profiles, accounts) = snap.take_pending();
                self.changes.dirty_profiles.extend(profiles);
                self.changes.dirty_accounts.extend(accounts);
                rendered = Some(snap);
            }
        } else if self.snapshot.as_ref().is_some_and(|s| s.is_complete()) {
            rendered = self.snapshot.take();
        }
        let mut changes = std::mem::take(&mut self.changes);
        if !with_docs {
            self.changes.dirty_profiles = std::mem::take(&mut changes.dirty_profiles);
            self.changes.dirty_accounts = std::mem::take(&mut changes.dirty_accounts);
        }
        for &slot in &changes.dirty_profiles {
            self.profiles[slot as usize].dirty = false;
        }
        for &acc in &changes.dirty_accounts {
            self.accounts[acc as usize].dirty = false;
        }
        DrainedChanges {
            changes,
            position: self.position,
            with_docs,
            rendered,
        }
    }

    /// Builds the rows of drained changes from the engine's current state, which must be the
    /// state they were drained from (nothing applied in between).
    pub fn batch_of(&self, drained: DrainedChanges) -> CommitBatch {
        let DrainedChanges {
            changes: ch,
            position,
            with_docs,
            rendered,
        } = drained;
        let key_of = |e: &Engine, slot: u32| e.profiles[e.live(slot) as usize].key;
        let mut batch = CommitBatch {
            position,
            documents: with_docs,
            rules: with_docs.then(|| self.rules.to_json().to_string()),
            ..CommitBatch::default()
        };
        if let Some(snap) = rendered {
            if !with_docs {
                batch.documents = true;
                batch.docs_position = snap.position;
                batch.rules = Some(snap.rules);
            }
            batch.profiles = snap.profiles;
            batch.accounts = snap.accounts;
        }
        for m in &ch.merges {
            for &a in &m.absorbed {
                batch.absorbed.push(AbsorbedRow {
                    profile: self.profiles[a as usize].key,
                    survivor: self.profiles[m.survivor as usize].key,
                    live: key_of(self, m.survivor),
                    position: m.position,
                });
            }
            batch.merges.push(MergeRow {
                position: m.position,
                ts: m.ts,
                survivor: self.profiles[m.survivor as usize].key,
                absorbed: m
                    .absorbed
                    .iter()
                    .map(|&a| self.profiles[a as usize].key)
                    .collect(),
                identifiers: m
                    .identifiers
                    .iter()
                    .map(|(t, v)| (self.types.name(*t as u32).to_string(), v.to_string()))
                    .collect(),
            });
        }
        batch.assignments = ch
            .assignments
            .iter()
            .map(|&(pos, slot)| (key_of(self, slot), pos))
            .collect();
        batch.history = ch
            .history
            .into_iter()
            .map(|h| HistoryRow {
                profile: key_of(self, h.slot),
                position: h.position,
                key: self.strings.name(h.key).to_string(),
                value: h.value.into(),
                source: self.strings.name(h.source).to_string(),
                ts: h.ts,
            })
            .collect();
        for slot in ch.dirty_profiles {
            let p = &self.profiles[slot as usize];
            if p.merged_into == NONE {
                batch.profiles.push((p.key, self.profile_doc(slot)));
            }
        }
        for acc in ch.dirty_accounts {
            batch
                .accounts
                .push((self.accounts[acc as usize].key, self.account_doc(acc)));
        }
        batch
    }
}
