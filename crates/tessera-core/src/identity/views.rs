//! The read side of the engine: finding a profile or account by identifier or key, and plain
//! copies of what they hold for the Profile API (which owns the wire format).

use super::engine::{Engine, TraitValue, NONE};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifierView {
    pub kind: String,
    pub value: String,
    pub first_seen: i64,
    pub last_seen: i64,
    /// Log position of the event that added it.
    pub position: i64,
    /// Key of the profile it first joined.
    pub origin: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraitView {
    pub key: String,
    /// JSON text.
    pub value: String,
    pub source: String,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileView {
    pub key: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub merges: u32,
    /// Sorted by type, then value.
    pub identifiers: Vec<IdentifierView>,
    /// Sorted by key.
    pub traits: Vec<TraitView>,
    /// Account keys, sorted.
    pub accounts: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountView {
    pub key: i64,
    pub group_id: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub traits: Vec<TraitView>,
    /// Live member profile keys, sorted and de-duplicated.
    pub members: Vec<i64>,
}

/// Sizes of the hot state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub live_profiles: usize,
    pub absorbed_profiles: usize,
    pub identifiers: usize,
    pub accounts: usize,
    /// Estimated heap bytes of the hot state (capacities, not just lengths).
    pub approx_bytes: usize,
}

impl Engine {
    /// Whether `kind` is an identifier type: one the rules name, or one stored identifiers
    /// have (from rules since changed).
    pub fn knows_type(&self, kind: &str) -> bool {
        self.rules.types.iter().any(|t| t.name == kind) || self.types.get(kind).is_some()
    }

    /// The live profile holding an identifier; the value is normalised as the rules say.
    pub fn profile_by_identifier(&self, kind: &str, raw: &str) -> Option<i64> {
        let ty = self.types.get(kind)? as u16;
        let value = self
            .rules
            .normalize(kind, raw)
            .unwrap_or_else(|| raw.trim().to_string());
        let i = self.find_ident(ty, &value)?;
        let slot = self.live(self.idents[i as usize].profile);
        Some(self.profiles[slot as usize].key)
    }

    /// The live profile a key resolves to (an absorbed profile's key gives its survivor).
    pub fn resolve_key(&self, key: i64) -> Option<i64> {
        let slot = *self.profile_slots.get(&key)?;
        Some(self.profiles[self.live(slot) as usize].key)
    }

    /// The profile with this key, or the one that absorbed it (a merge may happen between a
    /// caller resolving an identifier and reading the profile).
    pub fn profile(&self, key: i64) -> Option<ProfileView> {
        let slot = self.live(*self.profile_slots.get(&key)?);
        let p = &self.profiles[slot as usize];
        let mut identifiers: Vec<IdentifierView> = p
            .idents
            .iter()
            .map(|&i| {
                let id = &self.idents[i as usize];
                IdentifierView {
                    kind: self.types.name(id.ty as u32).to_string(),
                    value: id.value.to_string(),
                    first_seen: id.added_at,
                    last_seen: id.last_seen,
                    position: id.position,
                    origin: id.origin,
                }
            })
            .collect();
        identifiers.sort_by(|a, b| (&a.kind, &a.value).cmp(&(&b.kind, &b.value)));
        let accounts = self.account_keys(&p.accounts);
        Some(ProfileView {
            key: p.key,
            created_at: p.created_at,
            updated_at: p.updated_at,
            merges: p.merges,
            identifiers,
            traits: self.trait_views(&p.traits),
            accounts,
        })
    }

    /// An identifier's view, wherever it lives.
    pub fn identifier(&self, kind: &str, raw: &str) -> Option<IdentifierView> {
        let ty = self.types.get(kind)? as u16;
        let value = self
            .rules
            .normalize(kind, raw)
            .unwrap_or_else(|| raw.trim().to_string());
        let id = &self.idents[self.find_ident(ty, &value)? as usize];
        Some(IdentifierView {
            kind: kind.to_string(),
            value,
            first_seen: id.added_at,
            last_seen: id.last_seen,
            position: id.position,
            origin: id.origin,
        })
    }

    pub fn account_by_group_id(&self, group_id: &str) -> Option<i64> {
        let slot = *self.account_index.get(group_id.trim())?;
        Some(self.accounts[slot as usize].key)
    }

    pub fn account(&self, key: i64) -> Option<AccountView> {
        let a = &self.accounts[*self.account_slots.get(&key)? as usize];
        let mut members: Vec<i64> = a
            .members
            .iter()
            .map(|&m| self.profiles[self.live(m) as usize].key)
            .collect();
        members.sort_unstable();
        members.dedup();
        Some(AccountView {
            key: a.key,
            group_id: a.group_id.to_string(),
            created_at: a.created_at,
            updated_at: a.updated_at,
            traits: self.trait_views(&a.traits),
            members,
        })
    }

    /// One trait of a profile (or of the one that absorbed it), as JSON text.
    pub fn trait_of(&self, key: i64, name: &str) -> Option<&str> {
        let slot = self.live(*self.profile_slots.get(&key)?);
        let k = self.strings.get(name)?;
        self.profiles[slot as usize]
            .traits
            .iter()
            .find(|t| t.key == k)
            .map(|t| &*t.value)
    }

    fn trait_views(&self, traits: &[TraitValue]) -> Vec<TraitView> {
        let mut out: Vec<TraitView> = traits
            .iter()
            .map(|t| TraitView {
                key: self.strings.name(t.key).to_string(),
                value: t.value.to_string(),
                source: self.strings.name(t.source).to_string(),
                updated_at: t.ts,
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// Keys of every live profile, ascending.
    pub fn live_keys(&self) -> Vec<i64> {
        let mut keys: Vec<i64> = self
            .profiles
            .iter()
            .filter(|p| p.merged_into == NONE)
            .map(|p| p.key)
            .collect();
        keys.sort_unstable();
        keys
    }

    /// The canonical document of a live profile (what the store holds for it).
    pub fn document(&self, key: i64) -> Option<String> {
        let slot = *self.profile_slots.get(&key)?;
        (self.profiles[slot as usize].merged_into == NONE).then(|| self.profile_doc(slot))
    }

    pub fn stats(&self) -> EngineStats {
        use std::mem::size_of;
        let mut bytes = self.idents.capacity() * size_of::<super::engine::Ident>()
            + self.index.capacity() * (size_of::<u32>() + 1)
            + self.profiles.capacity() * size_of::<super::engine::Profile>()
            + self.profile_slots.capacity() * (size_of::<(i64, u32)>() + 1);
        // Allocations are rounded up to size classes of 16 bytes.
        let heap = |len: usize| if len == 0 { 0 } else { len.div_ceil(16) * 16 };
        for id in &self.idents {
            bytes += heap(id.value.len());
        }
        let mut live = 0;
        for p in &self.profiles {
            if p.merged_into == NONE {
                live += 1;
            }
            bytes += p.idents.capacity() * 4 + p.accounts.capacity() * 4;
            bytes += p.traits.capacity() * size_of::<TraitValue>();
            bytes += p.traits.iter().map(|t| heap(t.value.len())).sum::<usize>();
        }
        for a in &self.accounts {
            bytes += size_of::<super::engine::Account>() + heap(a.group_id.len());
            bytes += a.members.capacity() * 4 + a.traits.capacity() * size_of::<TraitValue>();
        }
        bytes += self
            .strings
            .names
            .iter()
            .map(|n| heap(n.len()) + 40)
            .sum::<usize>();
        debug_assert_eq!(live, self.live_count);
        EngineStats {
            live_profiles: live,
            absorbed_profiles: self.profiles.len() - live,
            identifiers: self.idents.len(),
            accounts: self.accounts.len(),
            approx_bytes: bytes,
        }
    }
}
