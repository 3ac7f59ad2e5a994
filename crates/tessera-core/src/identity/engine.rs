//! The identity engine: the hot state of one workspace (identity index, profiles, traits,
//! accounts) and the rules that change it, one event at a time in log order.
//!
//! Deterministic: the same rules and the same events in the same order give the same state,
//! whatever the batching, restarts or hash seeds in between. Decisions never depend on memory
//! layout; ties are broken by profile key (the log position of the event that created it).

use super::changes::{Changes, HistoryChange, MergeChange};
use super::facts::{EventFacts, RawTraits};
use super::rules::IdentityRules;
use crate::message::MessageType;
use crate::time::Millis;
use hashbrown::{DefaultHashBuilder, HashTable};
use std::borrow::Cow;
// hashbrown's map with foldhash: these maps are hit for every event, and SipHash showed up.
use hashbrown::HashMap;
use std::hash::BuildHasher;

pub(super) const NONE: u32 = u32::MAX;

/// One identifier held by a profile.
pub(super) struct Ident {
    pub value: Box<str>,
    pub ty: u16,
    pub profile: u32,
    pub added_at: Millis,
    pub last_seen: Millis,
    /// Log position of the event that added it.
    pub position: i64,
    /// Key of the profile it first joined.
    pub origin: i64,
}

pub(super) struct TraitValue {
    pub key: u32,
    pub source: u32,
    pub ts: Millis,
    /// Log position of the write, which breaks ties of `ts` (the later event wins).
    pub position: i64,
    /// JSON text.
    pub value: Box<str>,
}

pub(super) struct Profile {
    /// The log position of the event that created it; its id is derived from this.
    pub key: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// Slot of the profile that absorbed this one, or `NONE` while it is live.
    pub merged_into: u32,
    /// How many profiles were merged into this one, transitively.
    pub merges: u32,
    pub idents: Vec<u32>,
    pub traits: Vec<TraitValue>,
    pub accounts: Vec<u32>,
    pub dirty: bool,
}

pub(super) struct Account {
    pub key: i64,
    pub group_id: Box<str>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub traits: Vec<TraitValue>,
    /// Profile slots as they were when they joined; read through `live`.
    pub members: Vec<u32>,
    pub dirty: bool,
}

#[derive(Clone, Copy)]
pub(super) struct TypeLimits {
    /// Position of the type in the rules (priority, then name): lower comes first.
    pub rank: u32,
    pub limit: u32,
    pub window: Option<Millis>,
}

/// Interned strings (trait keys, source ids, type names) so each is stored once.
#[derive(Default)]
pub(super) struct Interner {
    pub names: Vec<Box<str>>,
    ids: HashMap<Box<str>, u32>,
}

impl Interner {
    pub fn id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }
    pub fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }
    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }
}

/// An identifier an event carries, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    ty: u16,
    value: String,
}

pub struct Engine {
    pub(super) rules: IdentityRules,
    pub(super) types: Interner,
    pub(super) limits: Vec<Option<TypeLimits>>,
    pub(super) strings: Interner,
    pub(super) idents: Vec<Ident>,
    pub(super) index: HashTable<u32>,
    pub(super) hasher: DefaultHashBuilder,
    pub(super) profiles: Vec<Profile>,
    pub(super) profile_slots: HashMap<i64, u32>,
    pub(super) accounts: Vec<Account>,
    pub(super) account_slots: HashMap<i64, u32>,
    pub(super) account_index: HashMap<Box<str>, u32>,
    /// The last log position applied.
    pub(super) position: i64,
    pub(super) changes: Changes,
    scratch: Vec<u32>,
    /// How many profiles are live (kept as events apply, for metrics).
    pub(super) live_count: usize,
    /// Documents being written as of an earlier position (see `snapshot.rs`).
    pub(super) snapshot: Option<super::snapshot::DocSnapshot>,
}

impl Engine {
    pub fn new(rules: IdentityRules) -> Engine {
        let mut e = Engine {
            rules: IdentityRules::default(),
            types: Interner::default(),
            limits: Vec::new(),
            strings: Interner::default(),
            idents: Vec::new(),
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            profiles: Vec::new(),
            profile_slots: HashMap::default(),
            accounts: Vec::new(),
            account_slots: HashMap::default(),
            account_index: HashMap::default(),
            position: 0,
            changes: Changes::default(),
            scratch: Vec::new(),
            live_count: 0,
            snapshot: None,
        };
        e.set_rules(rules);
        e
    }

    pub fn rules(&self) -> &IdentityRules {
        &self.rules
    }

    /// Replaces the rules for events applied from now on; state already derived is kept.
    pub fn set_rules(&mut self, rules: IdentityRules) {
        for t in &rules.types {
            self.types.id(&t.name);
        }
        self.limits = (0..self.types.names.len())
            .map(|i| {
                let name = self.types.name(i as u32);
                let rank = rules.types.iter().position(|t| t.name == name)? as u32;
                rules.rule(name).map(|r| TypeLimits {
                    rank,
                    limit: r.limit,
                    window: r.window,
                })
            })
            .collect();
        self.rules = rules;
    }

    /// How many profiles are live.
    pub fn live_profiles(&self) -> usize {
        self.live_count
    }

    /// The last log position applied (0 before the first event).
    pub fn position(&self) -> i64 {
        self.position
    }

    /// Marks a position as applied without an event of this workspace (keeps the position
    /// moving over other workspaces' events).
    pub fn skip_to(&mut self, position: i64) {
        self.position = self.position.max(position);
    }

    pub(super) fn hash(&self, ty: u16, value: &str) -> u64 {
        self.hasher.hash_one((ty, value))
    }

    /// The identifier slot of `(ty, value)`.
    pub(super) fn find_ident(&self, ty: u16, value: &str) -> Option<u32> {
        let h = self.hash(ty, value);
        self.index
            .find(h, |&i| {
                let id = &self.idents[i as usize];
                id.ty == ty && &*id.value == value
            })
            .copied()
    }

    pub(super) fn insert_ident(&mut self, ident: Ident) -> u32 {
        let slot = self.idents.len() as u32;
        let h = self.hash(ident.ty, &ident.value);
        self.idents.push(ident);
        let idents = &self.idents;
        let hasher = &self.hasher;
        self.index.insert_unique(h, slot, |&i| {
            let id = &idents[i as usize];
            hasher.hash_one((id.ty, &*id.value))
        });
        slot
    }

    /// The live profile a slot resolves to, following merges.
    pub(super) fn live(&self, mut slot: u32) -> u32 {
        while self.profiles[slot as usize].merged_into != NONE {
            slot = self.profiles[slot as usize].merged_into;
        }
        slot
    }

    /// Applies one event. Returns the key of the profile it now belongs to, if it carried a
    /// usable identifier.
    pub fn apply(&mut self, f: &EventFacts<'_>) -> Option<i64> {
        self.position = self.position.max(f.position);
        let source = self.strings.id(f.source);
        let slot = self.resolve(f);
        if let Some(slot) = slot {
            let is_group = f.kind == Some(MessageType::Group);
            self.apply_profile_traits(slot, &f.context_traits, f, source);
            if !is_group {
                self.apply_profile_traits(slot, &f.traits, f, source);
            }
            if !f.consent.is_empty() {
                // Consent per category is kept as `consent.<category>` traits: last write wins
                // by event time like any trait, and the history is the consent's history.
                let consent: RawTraits<'_> = f
                    .consent
                    .iter()
                    .map(|(k, v)| (Cow::Owned(format!("{CONSENT_PREFIX}{k}")), *v))
                    .collect();
                self.apply_profile_traits(slot, &consent, f, source);
            }
            let p = &mut self.profiles[slot as usize];
            p.updated_at = p.updated_at.max(f.timestamp);
            // Late events (offline phones, imports) can be older than the profile.
            p.created_at = p.created_at.min(f.timestamp);
            self.mark_profile(slot);
            self.changes.assignments.push((f.position, slot));
        }
        if f.kind == Some(MessageType::Group) {
            self.apply_group(f, source, slot);
        }
        slot.map(|s| self.profiles[s as usize].key)
    }

    /// The identifiers an event carries, normalised, unblocked, de-duplicated and in priority
    /// order (stable, so ties keep the order in which they were read).
    fn candidates(&self, f: &EventFacts<'_>) -> Vec<Candidate> {
        let mut raw: Vec<(Cow<'static, str>, Cow<'_, str>)> = Vec::with_capacity(6);
        for (name, v) in [("user_id", &f.user_id), ("anonymous_id", &f.anonymous_id)] {
            if let Some(v) = v {
                raw.push((Cow::Borrowed(name), Cow::Borrowed(v.as_ref())));
            }
        }
        for name in ["email", "phone"] {
            if let Some(v) = f.person_trait(name) {
                raw.push((Cow::Borrowed(name), Cow::Owned(v)));
            }
        }
        for (name, v) in [
            ("device_id", &f.device_id),
            ("advertising_id", &f.advertising_id),
        ] {
            if let Some(v) = v {
                raw.push((Cow::Borrowed(name), Cow::Borrowed(v.as_ref())));
            }
        }
        for t in &self.rules.types {
            if let (Some(path), true) = (&t.trait_path, t.enabled) {
                if let Some(v) = f.person_trait(path) {
                    raw.push((Cow::Owned(t.name.clone()), Cow::Owned(v)));
                }
            }
        }
        for (ty, id) in &f.external_ids {
            let ty = ty.trim();
            let name = match ty {
                "userId" => "user_id",
                "anonymousId" => "anonymous_id",
                other => other,
            };
            if let Some(rule) = self.rules.rule(name) {
                raw.push((Cow::Owned(rule.name.clone()), Cow::Borrowed(id.as_ref())));
            }
        }
        let mut out: Vec<Candidate> = Vec::with_capacity(raw.len() + 1);
        for (name, value) in raw {
            self.push_candidate(&mut out, &name, &value);
        }
        if let (Some(prev), Some(MessageType::Alias)) = (&f.previous_id, f.kind) {
            // Segment's previousId is whichever id the user had before: a known user id if
            // one matches, otherwise an anonymous id.
            let user_ty = self.types.get("user_id").map(|t| t as u16);
            let known_user = user_ty.is_some_and(|t| {
                self.rules
                    .normalize("user_id", prev)
                    .is_some_and(|v| self.find_ident(t, &v).is_some())
            });
            let name = if known_user {
                "user_id"
            } else {
                "anonymous_id"
            };
            self.push_candidate(&mut out, name, prev);
        }
        // The rules list types by priority, then name: their index orders candidates.
        out.sort_by_key(|c| self.limits[c.ty as usize].map_or(u32::MAX, |l| l.rank));
        out
    }

    fn push_candidate(&self, out: &mut Vec<Candidate>, name: &str, raw: &str) {
        let Some(ty) = self.types.get(name).map(|t| t as u16) else {
            return;
        };
        // Only enabled types (those with limits) identify anyone.
        if self.limits.get(ty as usize).copied().flatten().is_none() {
            return;
        }
        let Some(value) = self.rules.normalize(name, raw) else {
            return;
        };
        if !out.iter().any(|c| c.ty == ty && c.value == value) {
            out.push(Candidate { ty, value });
        }
    }

    /// The identifiers an event carries as the rules read them now: (type, normalised
    /// value), highest priority first. Explain uses it to tell which identifiers of an event
    /// tied it to a profile.
    pub fn identifiers_in(&self, f: &EventFacts<'_>) -> Vec<(String, String)> {
        self.candidates(f)
            .into_iter()
            .map(|c| (self.types.name(c.ty as u32).to_string(), c.value))
            .collect()
    }

    /// Flat matching: finds the profiles the event's identifiers belong to; creates, extends or
    /// merges; drops the lowest-priority identifier and retries while a limit would break.
    fn resolve(&mut self, f: &EventFacts<'_>) -> Option<u32> {
        let mut cands = self.candidates(f);
        let ts = f.timestamp;
        loop {
            if cands.is_empty() {
                return None;
            }
            let found: Vec<Option<u32>> = cands
                .iter()
                .map(|c| self.find_ident(c.ty, &c.value))
                .collect();
            let mut matched: Vec<u32> = found
                .iter()
                .flatten()
                .map(|&i| self.live(self.idents[i as usize].profile))
                .collect();
            matched.sort_by_key(|&s| self.profiles[s as usize].key);
            matched.dedup();
            if self.violates(&matched, &cands, &found, ts) {
                cands.pop();
                continue;
            }
            if self.snapshot.is_some() {
                // Copy-on-write: documents waiting in a snapshot show the profile before this
                // event (and its accounts, whose documents list members).
                for &s in &matched {
                    self.preserve(s);
                    for a in self.profiles[s as usize].accounts.clone() {
                        self.preserve_account(a);
                    }
                }
            }
            let slot = match matched.len() {
                0 => self.create_profile(f),
                1 => matched[0],
                _ => self.merge(&matched, &cands, &found, f),
            };
            self.attach(slot, &cands, &found, f);
            return Some(slot);
        }
    }

    /// Would joining these profiles and identifiers break a limit or a cap? Only growth
    /// counts: a profile already over a limit (the rules changed) may still be matched.
    fn violates(
        &mut self,
        matched: &[u32],
        cands: &[Candidate],
        found: &[Option<u32>],
        ts: Millis,
    ) -> bool {
        let n = self.limits.len();
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.resize(n * 2, 0); // [after.., before_max..]
        let mut total = 0usize;
        let mut total_before = 0usize;
        let mut merges = 0u32;
        for &slot in matched {
            let p = &self.profiles[slot as usize];
            total += p.idents.len();
            total_before = total_before.max(p.idents.len());
            merges += p.merges;
            let mark = scratch.len();
            scratch.extend(std::iter::repeat_n(0, n));
            for &i in &p.idents {
                let id = &self.idents[i as usize];
                let Some(l) = self.limits.get(id.ty as usize).copied().flatten() else {
                    continue;
                };
                let active = match l.window {
                    None => true,
                    Some(w) => id.last_seen >= ts.saturating_sub(w) || found.contains(&Some(i)),
                };
                if active {
                    scratch[mark + id.ty as usize] += 1;
                }
            }
            for t in 0..n {
                let c = scratch[mark + t];
                scratch[t] += c;
                scratch[n + t] = scratch[n + t].max(c);
            }
            scratch.truncate(mark);
        }
        for (c, f) in cands.iter().zip(found) {
            if f.is_none() {
                scratch[c.ty as usize] += 1;
                total += 1;
            }
        }
        let mut bad = (0..n).any(|t| {
            let limit = self.limits[t].map_or(u32::MAX, |l| l.limit);
            scratch[t] > limit && scratch[t] > scratch[n + t]
        });
        bad |= total > self.rules.max_identifiers as usize && total > total_before;
        if matched.len() > 1 {
            bad |= merges + (matched.len() as u32 - 1) > self.rules.max_merges;
        }
        self.scratch = scratch;
        bad
    }

    fn create_profile(&mut self, f: &EventFacts<'_>) -> u32 {
        self.new_profile(f.position, f.timestamp)
    }

    /// A new live profile with no identifiers yet.
    pub(super) fn new_profile(&mut self, key: i64, ts: Millis) -> u32 {
        let slot = self.profiles.len() as u32;
        self.profiles.push(Profile {
            key,
            created_at: ts,
            updated_at: ts,
            merged_into: NONE,
            merges: 0,
            idents: Vec::new(),
            traits: Vec::new(),
            accounts: Vec::new(),
            dirty: false,
        });
        self.profile_slots.insert(key, slot);
        self.live_count += 1;
        slot
    }

    /// Keys of accounts (by slot), sorted.
    pub(super) fn account_keys(&self, accounts: &[u32]) -> Vec<i64> {
        let mut keys: Vec<i64> = accounts
            .iter()
            .map(|&a| self.accounts[a as usize].key)
            .collect();
        keys.sort_unstable();
        keys
    }

    /// Merges every matched profile into the oldest one.
    fn merge(
        &mut self,
        matched: &[u32],
        cands: &[Candidate],
        found: &[Option<u32>],
        f: &EventFacts<'_>,
    ) -> u32 {
        let survivor = matched[0];
        for &absorbed in &matched[1..] {
            let a = &mut self.profiles[absorbed as usize];
            a.merged_into = survivor;
            self.live_count -= 1;
            let idents = std::mem::take(&mut a.idents);
            let traits = std::mem::take(&mut a.traits);
            let accounts = std::mem::take(&mut a.accounts);
            let (a_merges, a_created, a_updated) = (a.merges, a.created_at, a.updated_at);
            a.dirty = false;
            for &i in &idents {
                self.idents[i as usize].profile = survivor;
            }
            let s = &mut self.profiles[survivor as usize];
            s.idents.extend(idents);
            s.merges += a_merges + 1;
            s.created_at = s.created_at.min(a_created);
            s.updated_at = s.updated_at.max(a_updated);
            for acc in accounts {
                if !s.accounts.contains(&acc) {
                    s.accounts.push(acc);
                }
            }
            for t in traits {
                match s.traits.iter_mut().find(|x| x.key == t.key) {
                    // The same rule as one profile would have applied: newer event time,
                    // then later log position.
                    Some(x) if (t.ts, t.position) > (x.ts, x.position) => *x = t,
                    Some(_) => {}
                    None => s.traits.push(t),
                }
            }
        }
        let identifiers = cands
            .iter()
            .zip(found)
            .filter(|(_, f)| f.is_some())
            .map(|(c, _)| (c.ty, c.value.clone().into_boxed_str()))
            .collect();
        self.changes.merges.push(MergeChange {
            position: f.position,
            ts: f.timestamp,
            survivor,
            absorbed: matched[1..].to_vec(),
            identifiers,
        });
        survivor
    }

    fn attach(&mut self, slot: u32, cands: &[Candidate], found: &[Option<u32>], f: &EventFacts) {
        let key = self.profiles[slot as usize].key;
        for (c, fi) in cands.iter().zip(found) {
            match fi {
                Some(i) => {
                    let id = &mut self.idents[*i as usize];
                    id.last_seen = id.last_seen.max(f.timestamp);
                }
                None => {
                    let i = self.insert_ident(Ident {
                        value: c.value.as_str().into(),
                        ty: c.ty,
                        profile: slot,
                        added_at: f.timestamp,
                        last_seen: f.timestamp,
                        position: f.position,
                        origin: key,
                    });
                    self.profiles[slot as usize].idents.push(i);
                }
            }
        }
    }

    fn apply_profile_traits(
        &mut self,
        slot: u32,
        traits: &RawTraits<'_>,
        f: &EventFacts<'_>,
        source: u32,
    ) {
        for (k, raw) in traits {
            let key = self.strings.id(k);
            let value = raw.get().trim();
            let p = &mut self.profiles[slot as usize];
            if let Some(changed) =
                write_trait(&mut p.traits, key, value, (f.timestamp, f.position), source)
            {
                if changed {
                    self.changes.history.push(HistoryChange {
                        slot,
                        position: f.position,
                        key,
                        value: value.into(),
                        source,
                        ts: f.timestamp,
                    });
                }
            }
        }
    }

    fn apply_group(&mut self, f: &EventFacts<'_>, source: u32, person: Option<u32>) {
        let Some(gid) = f
            .group_id
            .as_deref()
            .and_then(|g| self.rules.normalize("group_id", g))
        else {
            return;
        };
        let acc = match self.account_index.get(gid.as_str()) {
            Some(&a) => a,
            None => {
                let a = self.accounts.len() as u32;
                self.accounts.push(Account {
                    key: f.position,
                    group_id: gid.as_str().into(),
                    created_at: f.timestamp,
                    updated_at: f.timestamp,
                    traits: Vec::new(),
                    members: Vec::new(),
                    dirty: false,
                });
                self.account_slots.insert(f.position, a);
                self.account_index.insert(gid.into_boxed_str(), a);
                a
            }
        };
        self.preserve_account(acc);
        let account = &mut self.accounts[acc as usize];
        for (k, raw) in &f.traits {
            let key = self.strings.id(k);
            write_trait(
                &mut account.traits,
                key,
                raw.get().trim(),
                (f.timestamp, f.position),
                source,
            );
        }
        account.updated_at = account.updated_at.max(f.timestamp);
        account.created_at = account.created_at.min(f.timestamp);
        if let Some(slot) = person {
            let p = &mut self.profiles[slot as usize];
            if !p.accounts.contains(&acc) {
                p.accounts.push(acc);
                account.members.push(slot);
            }
        }
        if !account.dirty {
            account.dirty = true;
            self.changes.dirty_accounts.push(acc);
        }
    }

    /// Writes one trait of a live profile from outside an event (a journey's `set_trait`
    /// step), as a write at log position `position` and time `ts` from `source`, by the same
    /// last-write-wins rule as events. Returns the live profile's slot and key, or `None` when
    /// the profile is unknown. `value` is JSON text.
    pub fn set_trait(
        &mut self,
        key: i64,
        name: &str,
        value: &str,
        (ts, position): (Millis, i64),
        source: &str,
    ) -> Option<(u32, i64)> {
        let slot = self.live(*self.profile_slots.get(&key)?);
        self.preserve(slot);
        let source = self.strings.id(source);
        let k = self.strings.id(name);
        let p = &mut self.profiles[slot as usize];
        if write_trait(&mut p.traits, k, value, (ts, position), source) == Some(true) {
            self.changes.history.push(HistoryChange {
                slot,
                position,
                key: k,
                value: value.into(),
                source,
                ts,
            });
        }
        self.mark_profile(slot);
        Some((slot, self.profiles[slot as usize].key))
    }

    fn mark_profile(&mut self, slot: u32) {
        let p = &mut self.profiles[slot as usize];
        if !p.dirty {
            p.dirty = true;
            self.changes.dirty_profiles.push(slot);
        }
    }
}

/// The prefix of the traits that hold a profile's consent per category.
pub const CONSENT_PREFIX: &str = "consent.";

/// Last write wins by event time (a tie goes to the later event in the log). Returns
/// `Some(true)` when the write belongs in the trait's history (it changed the value, or it is
/// older than the current one), `Some(false)` when it only refreshed the time.
fn write_trait(
    traits: &mut Vec<TraitValue>,
    key: u32,
    value: &str,
    (ts, position): (Millis, i64),
    source: u32,
) -> Option<bool> {
    match traits.iter_mut().find(|t| t.key == key) {
        Some(t) => {
            let differs = &*t.value != value;
            if ts >= t.ts {
                if differs {
                    t.value = value.into();
                }
                t.ts = ts;
                t.source = source;
                t.position = position;
                Some(differs)
            } else {
                // An older write arriving late: not current, but true as of its time (even
                // when it equals the current value, which may have been set later).
                Some(true)
            }
        }
        None => {
            traits.push(TraitValue {
                key,
                source,
                ts,
                position,
                value: value.into(),
            });
            Some(true)
        }
    }
}
