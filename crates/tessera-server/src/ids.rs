//! Random identifiers: ids of sources and tokens, write keys, token secrets, message ids.

/// `n` random bytes from the operating system.
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the operating system's random source failed");
    b
}

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `prefix` followed by `len` random base-62 characters (≈ 5.95 bits each).
pub fn random_id(prefix: &str, len: usize) -> String {
    let mut out = String::with_capacity(prefix.len() + len);
    out.push_str(prefix);
    while out.len() < prefix.len() + len {
        for b in random_bytes::<32>() {
            // Rejection sampling keeps the distribution uniform.
            if b < 248 && out.len() < prefix.len() + len {
                out.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    out
}

/// A generator of message ids for the messages of one request that came without one: one
/// random 128-bit base per request, then consecutive values, formatted like a UUID.
pub struct MessageIds {
    base: u128,
    next: u128,
}

impl Default for MessageIds {
    fn default() -> MessageIds {
        MessageIds::new()
    }
}

impl MessageIds {
    pub fn new() -> MessageIds {
        MessageIds {
            base: u128::from_le_bytes(random_bytes::<16>()),
            next: 0,
        }
    }

    pub fn next_id(&mut self) -> String {
        let v = self.base.wrapping_add(self.next);
        self.next += 1;
        let h = format!("{v:032x}");
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_asked_shape_and_differ() {
        let a = random_id("src_", 20);
        assert_eq!(a.len(), 24);
        assert!(a.starts_with("src_"));
        assert!(a[4..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, random_id("src_", 20));
        let mut m = MessageIds::new();
        let (x, y) = (m.next_id(), m.next_id());
        assert_eq!(x.len(), 36);
        assert_ne!(x, y);
    }
}
