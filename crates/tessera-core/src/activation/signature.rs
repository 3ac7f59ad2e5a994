//! Webhook request signatures: `Tessera-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`.
//!
//! The MAC covers `"<t>.<body>"`, so a receiver can check both that the body came from Tessera
//! and that it is recent (a captured request cannot be replayed later). The scheme is the one
//! Stripe popularised, which receivers already know how to verify. HMAC is implemented here
//! over `sha2` (RFC 2104 is a dozen lines) rather than pulling in another crate.

use sha2::{Digest, Sha256};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Tessera-Signature";
/// The header carrying the record's (or batch's) idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

const BLOCK: usize = 64;

/// HMAC-SHA256 (RFC 2104) of the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    for p in parts {
        inner.update(p);
    }
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The signature header value for a body sent at `t_unix_secs`. The key is the secret's
/// text as given (prefix included), which is what receivers copy from the admin API.
pub fn sign(secret: &str, t_unix_secs: i64, body: &[u8]) -> String {
    let t = t_unix_secs.to_string();
    let mac = hmac_sha256(secret.as_bytes(), &[t.as_bytes(), b".", body]);
    format!("t={t},v1={}", hex(&mac))
}

/// Checks a signature header: well formed, within `tolerance_secs` of `now_secs` (either
/// way, for clock skew), and one of its `v1` MACs right. Several `v1` entries are allowed so
/// that a secret can be rotated with both signatures sent for a while.
pub fn verify(secret: &str, header: &str, body: &[u8], now_secs: i64, tolerance_secs: i64) -> bool {
    let mut t: Option<&str> = None;
    let mut macs = Vec::new();
    for item in header.split(',') {
        match item.trim().split_once('=') {
            Some(("t", v)) if t.is_none() => t = Some(v),
            Some(("t", _)) => return false,
            Some(("v1", v)) => macs.push(v),
            // Unknown schemes are skipped so that a newer sender stays verifiable.
            Some(_) => {}
            None => return false,
        }
    }
    let Some(t_text) = t else { return false };
    let Ok(t) = t_text.parse::<i64>() else {
        return false;
    };
    if (now_secs as i128 - t as i128).abs() > tolerance_secs.max(0) as i128 {
        return false;
    }
    // Sign the timestamp's text as received: a reformatted number ("+5") would not match.
    let expected = hmac_sha256(secret.as_bytes(), &[t_text.as_bytes(), b".", body]);
    let mut ok = false;
    for mac in macs {
        if let Some(given) = unhex32(mac) {
            ok |= constant_time_eq(&expected, &given);
        }
    }
    ok
}

/// A new signing secret from 24 random bytes supplied by the caller (the core has no
/// randomness): `whsec_` and 48 lowercase hex digits.
pub fn new_secret(random: [u8; 24]) -> String {
    format!("whsec_{}", hex(&random))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

/// Compares without an early exit, so the time taken does not reveal how many leading bytes
/// of a forged MAC were right.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for i in 0..32 {
        diff |= a[i] ^ b[i];
    }
    // Keep the optimiser from turning the loop back into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
#[path = "tests/signature.rs"]
mod tests;
