//! Applying a policy to a Segment message in place: the walk over `properties`, `traits` and
//! `context`, hashing and masking.
//!
//! For each leaf the class comes from the policy's declaration for its path (exact path first,
//! then the path with every array index written `*`), else from detection: strings by
//! [`detect`], integers of 13–19 digits as payment cards only (a number is a card or nothing:
//! phone-like or date-like numbers are far too common). A declared class also covers integer
//! leaves (read as their decimal digits), so a tracking plan can say a numeric field is a phone.
//!
//! The action comes from `fields` (exact, then `*` path), else Keep for identity paths (see the
//! module root), else the class's action. Values deeper than [`MAX_DEPTH`] path segments are
//! left as they are: real events are nowhere near that deep, and the limit bounds the walk.

use super::detect::{card_digits, detect, is_card_number, is_class};
use super::policy::{Declared, PiiPolicy};
use super::{Action, Finding, PiiClass};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Path segments (the section name included: `properties.a.b` is 3) down to which values are
/// scanned.
pub const MAX_DEPTH: usize = 16;

/// Sections of a message that are scanned, in the order findings are reported.
const SECTIONS: [&str; 3] = ["properties", "traits", "context"];

/// Fields identity resolution reads (see the module root): kept unless `fields` names them.
const IDENTITY_PATHS: [&str; 7] = [
    "traits.email",
    "traits.phone",
    "context.traits.email",
    "context.traits.phone",
    "context.device.id",
    "context.device.advertisingId",
    "context.externalIds",
];

fn is_identity_path(path: &str) -> bool {
    IDENTITY_PATHS.contains(&path) || path.starts_with("context.externalIds.")
}

/// Applies the policy to a Segment message in place and returns a finding per classified
/// field (Keep included), in walk order. A message that is not an object is left alone.
pub fn apply(message: &mut Value, policy: &PiiPolicy, salt: &[u8]) -> Vec<Finding> {
    let Some(root) = message.as_object_mut() else {
        return Vec::new();
    };
    let mut walker = Walker {
        policy,
        salt,
        path: String::new(),
        wild: String::new(),
        findings: Vec::new(),
    };
    for section in SECTIONS {
        let Some(v) = root.get_mut(section) else {
            continue;
        };
        walker.path.push_str(section);
        walker.wild.push_str(section);
        let drop = walker.visit(v, 1);
        walker.path.clear();
        walker.wild.clear();
        // Only a section that is itself a classified value (a string or a card number) can be
        // dropped whole. `retain`, not `remove`: it keeps the other keys' order whatever the
        // map's backing.
        if drop {
            root.retain(|k, _| k != section);
        }
    }
    walker.findings
}

struct Walker<'a> {
    policy: &'a PiiPolicy,
    salt: &'a [u8],
    /// The current path, array indexes as numbers.
    path: String,
    /// The same path with every array index as `*`, for policy keys that cover all items.
    wild: String,
    findings: Vec<Finding>,
}

impl Walker<'_> {
    /// Visits the value at `self.path` (`depth` segments long); true when the caller must drop
    /// it.
    fn visit(&mut self, v: &mut Value, depth: usize) -> bool {
        match v {
            Value::Object(m) if depth < MAX_DEPTH => {
                let mut dropped: Vec<String> = Vec::new();
                for (k, child) in m.iter_mut() {
                    let mark = self.push(k, k);
                    if self.visit(child, depth + 1) {
                        dropped.push(k.clone());
                    }
                    self.pop(mark);
                }
                if !dropped.is_empty() {
                    // `retain` keeps the order of the other keys whatever the map's backing.
                    m.retain(|k, _| !dropped.contains(k));
                }
                false
            }
            Value::Array(items) if depth < MAX_DEPTH => {
                for (i, item) in items.iter_mut().enumerate() {
                    let mark = self.push(&i.to_string(), "*");
                    // A null keeps the indexes of the following items (and their paths).
                    if self.visit(item, depth + 1) {
                        *item = Value::Null;
                    }
                    self.pop(mark);
                }
                false
            }
            Value::String(_) | Value::Number(_) => self.leaf(v),
            _ => false,
        }
    }

    fn push(&mut self, segment: &str, wild_segment: &str) -> (usize, usize) {
        let mark = (self.path.len(), self.wild.len());
        self.path.push('.');
        self.path.push_str(segment);
        self.wild.push('.');
        self.wild.push_str(wild_segment);
        mark
    }

    fn pop(&mut self, (p, w): (usize, usize)) {
        self.path.truncate(p);
        self.wild.truncate(w);
    }

    /// The policy entry for this path, exact first, then the `*` form.
    fn lookup<T>(&self, get: impl Fn(&str) -> Option<T>) -> Option<T> {
        get(&self.path).or_else(|| {
            if self.wild != self.path {
                get(&self.wild)
            } else {
                None
            }
        })
    }

    fn leaf(&mut self, v: &mut Value) -> bool {
        // Classified without copying: most leaves are not personal, and this runs on every
        // string of every event.
        let class = match (self.lookup(|p| self.policy.declared(p)), &*v) {
            (Some(Declared::NotPii), _) => return false,
            (Some(Declared::Class(c)), Value::String(_)) => c,
            // Floats are never personal data here: ids and card numbers are integers.
            (Some(Declared::Class(c)), Value::Number(n)) if n.is_u64() || n.is_i64() => c,
            (None, Value::String(s)) => match detect(s) {
                Some(c) => c,
                None => return false,
            },
            (None, Value::Number(n)) => match n.as_u64() {
                Some(u) if u >= 1_000_000_000_000 && is_card_number(&u.to_string()) => {
                    PiiClass::PaymentCard
                }
                _ => return false,
            },
            _ => return false,
        };
        let action = self
            .lookup(|p| self.policy.field_action(p))
            .or_else(|| is_identity_path(&self.path).then_some(Action::Keep))
            .unwrap_or_else(|| self.policy.class_action(class));
        self.findings.push(Finding {
            path: self.path.clone(),
            class,
            action,
        });
        let text = || match &*v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match action {
            Action::Keep => false,
            Action::Hash => {
                *v = Value::String(hash_value(&text(), class, self.salt));
                false
            }
            Action::Mask => {
                *v = Value::String(mask(&text(), class));
                false
            }
            Action::Drop => true,
        }
    }
}

/// The hashed form of a value of `class`: `sha256:` and the lowercase hex SHA-256 of the salt
/// bytes followed by the normalised value.
///
/// Normalised: trimmed; e-mails lower-cased (the same address hashes the same whatever its
/// case); and, when the value has its class's shape, the presentation removed: a card's or a
/// phone number's separators (a phone keeps its leading `+`), an IBAN's spaces and case, a
/// NINO's spaces, an IPv6 address in its canonical text. So "4111 1111 1111 1111" and
/// "4111111111111111" hash the same. Public so a caller can hash a value to look it up.
pub fn hash_value(value: &str, class: PiiClass, salt: &[u8]) -> String {
    let normalized = normalize(value.trim(), class);
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(normalized.as_bytes());
    let digest = hasher.finalize();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn normalize(s: &str, class: PiiClass) -> String {
    match class {
        PiiClass::Email => s.to_lowercase(),
        PiiClass::PaymentCard => card_digits(s).unwrap_or_else(|| s.to_string()),
        PiiClass::Phone if is_class(s, PiiClass::Phone) => s
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect(),
        PiiClass::Iban if s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ') => s
            .chars()
            .filter(|&c| c != ' ')
            .collect::<String>()
            .to_ascii_uppercase(),
        PiiClass::NationalId if is_class(s, PiiClass::NationalId) => {
            s.chars().filter(|&c| c != ' ').collect()
        }
        PiiClass::IpAddress => match Ipv6Addr::from_str(s) {
            Ok(a) => a.to_string(),
            Err(_) => s.to_string(),
        },
        _ => s.to_string(),
    }
}

/// Masks a value of `class` for display (the same masking as [`Action::Mask`]), keeping a
/// hint that lets a person recognise their own data but not read anyone else's:
///
/// - e-mail: first character of the local part, `***`, and the domain (`a***@example.com`);
/// - phone and card: every digit but the last four as `*`, separators kept;
/// - IBAN: country code, `*` for the rest but the last four, spaces removed;
/// - IP address: IPv4's last octet as `0`, IPv6's first three groups and `::`;
/// - national id: every character but the last four as `*`.
///
/// A value that does not have its class's shape (a declared class over odd data) falls back to
/// the national-id rule, or, for phones and cards, loses whatever digits it has but the last
/// four. Masking a masked value changes nothing, so re-applying a policy is harmless.
pub fn mask(value: &str, class: PiiClass) -> String {
    let s = value.trim();
    match class {
        PiiClass::Email => mask_email(s),
        PiiClass::Phone | PiiClass::PaymentCard => mask_digits(s),
        PiiClass::Iban => mask_iban(s),
        PiiClass::IpAddress => mask_ip(s),
        PiiClass::NationalId => mask_tail(s),
    }
}

fn mask_email(s: &str) -> String {
    match s.rsplit_once('@') {
        Some((local, domain)) => {
            // A leading '*' is not kept, so masking "*x@d" and then its mask give the same.
            let first: String = local.chars().take(1).filter(|&c| c != '*').collect();
            format!("{first}***@{domain}")
        }
        None => mask_tail(s),
    }
}

fn mask_digits(s: &str) -> String {
    let total = s.chars().filter(char::is_ascii_digit).count();
    let hide = total.saturating_sub(4);
    let mut seen = 0;
    s.chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen <= hide {
                    return '*';
                }
            }
            c
        })
        .collect()
}

fn mask_iban(s: &str) -> String {
    let chars: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
    if chars.len() <= 6 {
        return "*".repeat(chars.len());
    }
    let n = chars.len();
    chars[..2]
        .iter()
        .copied()
        .chain(std::iter::repeat_n('*', n - 6))
        .chain(chars[n - 4..].iter().copied())
        .collect()
}

fn mask_ip(s: &str) -> String {
    if let Ok(a) = Ipv4Addr::from_str(s) {
        let [a, b, c, _] = a.octets();
        return format!("{a}.{b}.{c}.0");
    }
    if let Ok(a) = Ipv6Addr::from_str(s) {
        let g = a.segments();
        return Ipv6Addr::new(g[0], g[1], g[2], 0, 0, 0, 0, 0).to_string();
    }
    mask_tail(s)
}

/// Every character but the last four as `*`; four or fewer are all hidden, since a tail that
/// long would be the whole value.
fn mask_tail(s: &str) -> String {
    let n = s.chars().count();
    if n <= 4 {
        return "*".repeat(n);
    }
    s.chars()
        .enumerate()
        .map(|(i, c)| if i < n - 4 { '*' } else { c })
        .collect()
}
