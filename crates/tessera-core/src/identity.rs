//! Identity resolution and profiles: Segment-style flat matching over typed identifiers, with
//! priorities, limits and blocked values; profiles with last-write-wins traits and their
//! history; accounts from `group` calls; merge records for explain and split.

mod changes;
mod doc;
mod engine;
mod facts;
pub mod rules;
mod snapshot;
#[cfg(test)]
mod tests;
mod trace;
mod views;

pub use changes::{
    AbsorbedRow, AudienceChangeRow, CommitBatch, DrainedChanges, HistoryRow, MergeRow,
};
pub use doc::{ParsedProfile, RestoreError, Restorer};
pub use engine::{Engine, CONSENT_PREFIX};
pub use facts::{EventFacts, FactsError};
pub use rules::{IdentityRules, RulesError, TypeRule};
pub use trace::AppliedProfile;
pub use views::{AccountView, EngineStats, IdentifierView, ProfileView, TraitView};

/// The public id of a person profile, derived from its key.
pub fn profile_id(key: i64) -> String {
    format!("prf_{key}")
}

/// The public id of an account, derived from its key.
pub fn account_id(key: i64) -> String {
    format!("acc_{key}")
}

/// The key of a `prf_…` id.
pub fn parse_profile_id(id: &str) -> Option<i64> {
    id.strip_prefix("prf_")?.parse().ok().filter(|k| *k > 0)
}

/// The key of an `acc_…` id.
pub fn parse_account_id(id: &str) -> Option<i64> {
    id.strip_prefix("acc_")?.parse().ok().filter(|k| *k > 0)
}
