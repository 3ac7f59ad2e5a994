//! Profile and account documents written without stopping the applier. A snapshot takes the
//! profiles changed since the last documents as of one log position, then renders them a few
//! thousand at a time between events; a profile about to change before its turn is rendered
//! first (copy-on-write), so every document in the snapshot shows its profile as it was at
//! that position. A restart loads them and re-derives the rest from the log.

use super::engine::{Engine, NONE};
use hashbrown::HashSet;

pub(super) struct DocSnapshot {
    /// The log position every document of the snapshot reflects.
    pub position: i64,
    /// The identity rules events after `position` are applied under.
    pub rules: String,
    pending: Vec<u32>,
    pending_set: HashSet<u32>,
    pending_accounts: Vec<u32>,
    pending_account_set: HashSet<u32>,
    pub profiles: Vec<(i64, String)>,
    pub accounts: Vec<(i64, String)>,
}

impl DocSnapshot {
    pub fn is_complete(&self) -> bool {
        self.pending_set.is_empty() && self.pending_account_set.is_empty()
    }

    /// What is left to render, for a caller that renders it now instead.
    pub fn take_pending(&mut self) -> (Vec<u32>, Vec<u32>) {
        let p: Vec<u32> = self
            .pending
            .drain(..)
            .filter(|s| self.pending_set.contains(s))
            .collect();
        let a: Vec<u32> = self
            .pending_accounts
            .drain(..)
            .filter(|s| self.pending_account_set.contains(s))
            .collect();
        self.pending_set.clear();
        self.pending_account_set.clear();
        (p, a)
    }
}

impl Engine {
    /// Starts a snapshot of the documents changed so far, as of the current position.
    /// Returns false (and does nothing) while one is in progress.
    pub fn start_docs(&mut self) -> bool {
        if self.snapshot.is_some() {
            return false;
        }
        let profiles = std::mem::take(&mut self.changes.dirty_profiles);
        let accounts = std::mem::take(&mut self.changes.dirty_accounts);
        for &s in &profiles {
            self.profiles[s as usize].dirty = false;
        }
        for &a in &accounts {
            self.accounts[a as usize].dirty = false;
        }
        self.snapshot = Some(DocSnapshot {
            position: self.position,
            rules: self.rules.to_json().to_string(),
            pending_set: profiles.iter().copied().collect(),
            pending: profiles,
            pending_account_set: accounts.iter().copied().collect(),
            pending_accounts: accounts,
            profiles: Vec::new(),
            accounts: Vec::new(),
        });
        true
    }

    /// Whether a snapshot is being rendered.
    pub fn docs_in_progress(&self) -> bool {
        self.snapshot.as_ref().is_some_and(|s| !s.is_complete())
    }

    /// Renders up to `budget` documents of the snapshot; true when it is complete (or there
    /// is none).
    pub fn render_docs(&mut self, budget: usize) -> bool {
        for _ in 0..budget {
            let Some(s) = &mut self.snapshot else {
                return true;
            };
            if let Some(slot) = s.pending.pop() {
                self.preserve(slot);
            } else if let Some(acc) = s.pending_accounts.pop() {
                self.preserve_account(acc);
            } else {
                break;
            }
        }
        self.snapshot.as_ref().is_none_or(DocSnapshot::is_complete)
    }

    /// Renders a profile's document into the snapshot if it is waiting there: called before
    /// anything changes the profile.
    pub(super) fn preserve(&mut self, slot: u32) {
        let waiting = self
            .snapshot
            .as_mut()
            .is_some_and(|s| s.pending_set.remove(&slot));
        if !waiting {
            return;
        }
        let p = &self.profiles[slot as usize];
        let doc = (p.merged_into == NONE).then(|| (p.key, self.profile_doc(slot)));
        if let (Some(doc), Some(s)) = (doc, &mut self.snapshot) {
            s.profiles.push(doc);
        }
    }

    /// [`Engine::preserve`] for an account.
    pub(super) fn preserve_account(&mut self, acc: u32) {
        let waiting = self
            .snapshot
            .as_mut()
            .is_some_and(|s| s.pending_account_set.remove(&acc));
        if !waiting {
            return;
        }
        let doc = (self.accounts[acc as usize].key, self.account_doc(acc));
        if let Some(s) = &mut self.snapshot {
            s.accounts.push(doc);
        }
    }
}
