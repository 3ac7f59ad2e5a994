//! PII classification: which values of a Segment message are personal data, and what a
//! workspace's policy does with them (keep, hash, mask or drop) before the event is written to
//! the log.
//!
//! What is scanned: `properties`, `traits` and `context` (so `context.traits` too), to a depth
//! of [`MAX_DEPTH`] path segments, array items included (an item's path segment is its index).
//! Identity and envelope fields (`userId`, `anonymousId`, `previousId`, `groupId`,
//! `messageId`, `type`, `event`, timestamps) are never scanned: identity resolution,
//! deduplication and routing read them as sent, so rewriting them would break matching.
//!
//! Which action: a path's entry in `fields` (exact, then with array indexes as `*`), else Keep
//! for an identity path (below), else the class's action. `fields` applies to classified
//! values only; to act on a field whatever it holds, declare its class too. Declaring a path
//! `"none"` means it is never classified (and never reported).
//!
//! Identity paths: `traits.email`, `traits.phone`, `context.traits.email`,
//! `context.traits.phone`, everything under `context.externalIds`, `context.device.id` and
//! `context.device.advertisingId` feed identity resolution (e-mail and phone are identifier
//! types). Hashing or masking them would split or wrongly merge profiles, so they are only
//! classified and reported (as [`Action::Keep`]) unless the policy's `fields` names the path
//! (or its `*` form) explicitly. Their protection is encryption at rest, a later step. A custom
//! identifier read from another trait is protected the same way by naming its path in `fields`
//! with `keep`.
//!
//! Detection ([`detect`]) looks at whole values, never at substrings of free text, and prefers
//! precision over recall: a false positive mangles data for good, a miss can be declared in the
//! policy (`declared`), which overrides detection either way.
//!
//! Pure: no I/O, no clock, no randomness; the caller passes the workspace's salt.
//!
//! Files: `detect.rs` (the detectors, Luhn, IBAN mod-97), `policy.rs` ([`PiiPolicy`] and its
//! JSON form), `apply.rs` ([`apply`], hashing and [`mask`]). Tests: `tests_detect.rs`,
//! `tests_policy.rs`, `tests_apply.rs`, and `tests_props.rs` (idempotence, robustness).

mod apply;
mod detect;
mod policy;

pub use apply::{apply, hash_value, mask, MAX_DEPTH};
pub use detect::{detect, iban_checksum_ok, luhn_ok};
pub use policy::{default_action, Declared, PiiPolicy, PolicyError};

/// A kind of personal data the detectors know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PiiClass {
    Email,
    Phone,
    PaymentCard,
    Iban,
    IpAddress,
    NationalId,
}

impl PiiClass {
    /// Every class, in the order of their JSON names in [`PiiPolicy::to_json`].
    pub const ALL: [PiiClass; 6] = [
        PiiClass::Email,
        PiiClass::Phone,
        PiiClass::PaymentCard,
        PiiClass::Iban,
        PiiClass::IpAddress,
        PiiClass::NationalId,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PiiClass::Email => "email",
            PiiClass::Phone => "phone",
            PiiClass::PaymentCard => "payment_card",
            PiiClass::Iban => "iban",
            PiiClass::IpAddress => "ip_address",
            PiiClass::NationalId => "national_id",
        }
    }

    pub fn parse(s: &str) -> Option<PiiClass> {
        PiiClass::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Position in [`PiiClass::ALL`], for per-class tables.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// What a policy does with a classified value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Stored as sent (still reported as a finding).
    Keep,
    /// Replaced by `sha256:` and the hex digest of salt and normalised value, so values can
    /// still be joined and counted without being readable.
    Hash,
    /// Replaced by a class-appropriate hint (see [`mask`]).
    Mask,
    /// Removed from its object; an array item becomes `null` so later indexes keep their
    /// meaning.
    Drop,
}

impl Action {
    pub const ALL: [Action; 4] = [Action::Keep, Action::Hash, Action::Mask, Action::Drop];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Keep => "keep",
            Action::Hash => "hash",
            Action::Mask => "mask",
            Action::Drop => "drop",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// One classified field and what the policy did to it, for metrics and the PII report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Dotted path from the message root, array indexes as segments
    /// (`properties.items.0.email`).
    pub path: String,
    pub class: PiiClass,
    pub action: Action,
}

#[cfg(test)]
mod tests_apply;
#[cfg(test)]
mod tests_detect;
#[cfg(test)]
mod tests_policy;
#[cfg(test)]
mod tests_props;
