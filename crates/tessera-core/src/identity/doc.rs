//! The stored form of the hot state: one JSON document per profile and per account, written
//! in a canonical order (identifiers by type and value, traits by key) so that the same state
//! always gives the same bytes, and read back into an engine at start-up.
//!
//! A profile: `{"created_at","updated_at","merges","identifiers":[[type, value, first_seen,
//! last_seen, position added, first profile], …],"traits":{key: [value, source, updated_at,
//! position], …},"accounts":[keys]}`. Arrays rather than objects keep documents small: they
//! are rewritten whole whenever a profile changes.

use super::engine::{Account, Engine, Ident, TraitValue};
use super::rules::IdentityRules;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::hash::BuildHasher;

fn push_str(out: &mut String, s: &str) {
    // serde_json's escaping, so documents are valid JSON whatever the value holds.
    out.push_str(&serde_json::to_string(s).expect("a str always serialises"));
}

impl Engine {
    fn traits_doc(&self, out: &mut String, traits: &[TraitValue]) {
        let mut sorted: Vec<&TraitValue> = traits.iter().collect();
        sorted.sort_by(|a, b| self.strings.name(a.key).cmp(self.strings.name(b.key)));
        out.push('{');
        for (i, t) in sorted.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_str(out, self.strings.name(t.key));
            out.push_str(":[");
            out.push_str(&t.value);
            out.push(',');
            push_str(out, self.strings.name(t.source));
            let _ = write!(out, ",{},{}]", t.ts, t.position);
        }
        out.push('}');
    }

    pub(super) fn profile_doc(&self, slot: u32) -> String {
        let p = &self.profiles[slot as usize];
        let mut out = String::with_capacity(256);
        let _ = write!(
            out,
            "{{\"created_at\":{},\"updated_at\":{},\"merges\":{},\"identifiers\":[",
            p.created_at, p.updated_at, p.merges
        );
        let mut ids: Vec<&Ident> = p.idents.iter().map(|&i| &self.idents[i as usize]).collect();
        ids.sort_by(|a, b| {
            (self.types.name(a.ty as u32), &a.value).cmp(&(self.types.name(b.ty as u32), &b.value))
        });
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('[');
            push_str(&mut out, self.types.name(id.ty as u32));
            out.push(',');
            push_str(&mut out, &id.value);
            let _ = write!(
                out,
                ",{},{},{},{}]",
                id.added_at, id.last_seen, id.position, id.origin
            );
        }
        out.push_str("],\"traits\":");
        self.traits_doc(&mut out, &p.traits);
        let accounts = self.account_keys(&p.accounts);
        let _ = write!(out, ",\"accounts\":{accounts:?}}}");
        out
    }

    pub(super) fn account_doc(&self, slot: u32) -> String {
        let a = &self.accounts[slot as usize];
        let mut out = String::with_capacity(256);
        out.push_str("{\"group_id\":");
        push_str(&mut out, &a.group_id);
        let _ = write!(
            out,
            ",\"created_at\":{},\"updated_at\":{},\"traits\":",
            a.created_at, a.updated_at
        );
        self.traits_doc(&mut out, &a.traits);
        let mut members: Vec<i64> = a
            .members
            .iter()
            .map(|&m| self.profiles[m as usize].key)
            .collect();
        members.sort_unstable();
        let _ = write!(out, ",\"members\":{members:?}}}");
        out
    }

    /// Rebuilds an engine from stored documents, in any order (see [`Restorer`]).
    pub fn restore(
        rules: IdentityRules,
        position: i64,
        profiles: impl IntoIterator<Item = (i64, String)>,
        absorbed: impl IntoIterator<Item = (i64, i64)>,
        accounts: impl IntoIterator<Item = (i64, String)>,
    ) -> Result<Engine, RestoreError> {
        let mut r = Restorer::new(rules);
        for (key, doc) in accounts {
            r.account(key, &doc)?;
        }
        for (key, doc) in profiles {
            r.profile(key, &doc)?;
        }
        for (key, survivor) in absorbed {
            r.absorbed(key, survivor);
        }
        r.finish(position)
    }

    fn read_traits(&mut self, traits: BTreeMap<String, TraitDoc>) -> Vec<TraitValue> {
        traits
            .into_iter()
            .map(|(k, TraitDoc(value, source, ts, position))| TraitValue {
                key: self.strings.id(&k),
                source: self.strings.id(&source),
                ts,
                position,
                value: value.get().into(),
            })
            .collect()
    }
}

/// Rebuilds an engine from stored documents one at a time, so a start-up never holds every
/// document in memory at once. Accounts must come before the profiles that name them;
/// merged-away profiles may come at any time. The result decides exactly as the engine that
/// wrote the documents would.
pub struct Restorer {
    e: Engine,
    absorbed: Vec<(i64, i64)>,
    members: Vec<(u32, Vec<i64>)>,
}

impl Restorer {
    pub fn new(rules: IdentityRules) -> Restorer {
        Restorer {
            e: Engine::new(rules),
            absorbed: Vec::new(),
            members: Vec::new(),
        }
    }

    /// Makes room for about this many profiles and identifiers up front: growing the hot
    /// state step by step while it is rebuilt copied it several times over.
    pub fn reserve(&mut self, profiles: usize, identifiers: usize) {
        let e = &mut self.e;
        e.profiles.reserve(profiles);
        e.profile_slots.reserve(profiles);
        e.idents.reserve(identifiers);
        let (idents, hasher) = (&e.idents, &e.hasher);
        e.index.reserve(identifiers, |&i| {
            let id = &idents[i as usize];
            hasher.hash_one((id.ty, &*id.value))
        });
    }

    pub fn account(&mut self, key: i64, doc: &str) -> Result<(), RestoreError> {
        let e = &mut self.e;
        let d: AccountDoc = serde_json::from_str(doc).map_err(|err| RestoreError::Doc {
            key,
            reason: err.to_string(),
        })?;
        let slot = e.accounts.len() as u32;
        let traits = e.read_traits(d.traits);
        e.accounts.push(Account {
            key,
            group_id: d.group_id.as_str().into(),
            created_at: d.created_at,
            updated_at: d.updated_at,
            traits,
            members: Vec::new(),
            dirty: false,
        });
        e.account_slots.insert(key, slot);
        e.account_index.insert(d.group_id.into_boxed_str(), slot);
        self.members.push((slot, d.members));
        Ok(())
    }

    pub fn profile(&mut self, key: i64, doc: &str) -> Result<(), RestoreError> {
        let parsed = Restorer::parse_profile(key, doc)?;
        self.insert_profile(parsed)
    }

    /// The parsing half of [`Restorer::profile`], which needs no engine: start-up parses
    /// documents on other threads while this one reads and inserts.
    pub fn parse_profile(key: i64, doc: &str) -> Result<ParsedProfile, RestoreError> {
        let d: ProfileDoc = serde_json::from_str(doc).map_err(|err| RestoreError::Doc {
            key,
            reason: err.to_string(),
        })?;
        Ok(ParsedProfile { key, doc: d })
    }

    pub fn insert_profile(&mut self, parsed: ParsedProfile) -> Result<(), RestoreError> {
        let ParsedProfile { key, doc: d } = parsed;
        let e = &mut self.e;
        e.new_profile(key, 0);
        let slot = e.profile_slots[&key];
        let traits = e.read_traits(d.traits);
        let mut accounts = Vec::with_capacity(d.accounts.len());
        for a in d.accounts {
            accounts.push(
                *e.account_slots
                    .get(&a)
                    .ok_or(RestoreError::Dangling { key: a })?,
            );
        }
        let mut idents = Vec::with_capacity(d.identifiers.len());
        for IdentDoc(kind, value, first_seen, last_seen, position, origin) in d.identifiers {
            let ty = e.types.id(&kind) as u16;
            idents.push(e.insert_ident(Ident {
                value: value.into_boxed_str(),
                ty,
                profile: slot,
                added_at: first_seen,
                last_seen,
                position,
                origin,
            }));
        }
        let p = &mut e.profiles[slot as usize];
        p.created_at = d.created_at;
        p.updated_at = d.updated_at;
        p.merges = d.merges;
        p.idents = idents;
        p.traits = traits;
        p.accounts = accounts;
        Ok(())
    }

    /// A profile merged into `survivor` (which may itself be merged away).
    pub fn absorbed(&mut self, key: i64, survivor: i64) {
        self.absorbed.push((key, survivor));
    }

    /// The engine, at the log position the documents reflect.
    pub fn finish(self, position: i64) -> Result<Engine, RestoreError> {
        let Restorer {
            mut e,
            absorbed,
            members,
        } = self;
        e.position = position;
        for &(key, _) in &absorbed {
            e.new_profile(key, 0);
        }
        for (key, survivor) in absorbed {
            let s = *e
                .profile_slots
                .get(&survivor)
                .ok_or(RestoreError::Dangling { key: survivor })?;
            let slot = e.profile_slots[&key];
            e.profiles[slot as usize].merged_into = s;
            e.live_count -= 1;
        }
        for (slot, keys) in members {
            for m in keys {
                let p = *e
                    .profile_slots
                    .get(&m)
                    .ok_or(RestoreError::Dangling { key: m })?;
                e.accounts[slot as usize].members.push(p);
            }
        }
        // Type names first seen in documents need limits too.
        let rules = e.rules.clone();
        e.set_rules(rules);
        Ok(e)
    }
}

/// A profile document parsed but not yet in an engine.
pub struct ParsedProfile {
    key: i64,
    doc: ProfileDoc,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("stored document of {key} is unreadable: {reason}")]
    Doc { key: i64, reason: String },
    #[error("stored state refers to profile or account {key}, which is not stored")]
    Dangling { key: i64 },
}

#[derive(Deserialize)]
struct ProfileDoc {
    created_at: i64,
    updated_at: i64,
    merges: u32,
    identifiers: Vec<IdentDoc>,
    traits: BTreeMap<String, TraitDoc>,
    accounts: Vec<i64>,
}

/// `[type, value, first_seen, last_seen, position added, first profile]`.
#[derive(Deserialize)]
struct IdentDoc(String, String, i64, i64, i64, i64);

/// `[value, source, updated_at, position]`.
#[derive(Deserialize)]
struct TraitDoc(Box<RawValue>, String, i64, i64);

#[derive(Deserialize)]
struct AccountDoc {
    group_id: String,
    created_at: i64,
    updated_at: i64,
    traits: BTreeMap<String, TraitDoc>,
    members: Vec<i64>,
}
