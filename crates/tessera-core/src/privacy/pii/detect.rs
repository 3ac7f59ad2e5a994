//! The detectors: is a whole string value an e-mail address, a phone number, a payment card,
//! an IBAN, an IP address or a national id?
//!
//! Every detector is deliberately conservative. A value classified by mistake is hashed, masked
//! or dropped for good, while a miss can be fixed by declaring the field's class in the policy,
//! so each one demands the canonical shape of its class plus a checksum where the class has
//! one (Luhn for cards, mod-97 for IBANs), and the phone detector refuses the shapes that
//! numbers, dates, postcodes and versions commonly take.

use super::PiiClass;
use regex_lite::Regex;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::OnceLock;

/// The longest e-mail address (RFC 5321's path limit); every other class is far shorter, so a
/// longer value is free text and is not looked at.
const MAX_LEN: usize = 254;

/// What a value looks like, if personal: the detectors, on strings only. Surrounding
/// whitespace is ignored.
pub fn detect(value: &str) -> Option<PiiClass> {
    let s = value.trim();
    if s.is_empty() || s.len() > MAX_LEN {
        return None;
    }
    // Order matters only where shapes could overlap: a valid SSN is also phone-shaped, so the
    // specific classes (with checksums or fixed formats) are tried before the phone heuristic.
    [
        PiiClass::Email,
        PiiClass::IpAddress,
        PiiClass::PaymentCard,
        PiiClass::Iban,
        PiiClass::NationalId,
        PiiClass::Phone,
    ]
    .into_iter()
    .find(|&c| is_class(s, c))
}

/// Whether the trimmed value `s` has the shape of `class` (one detector, not the whole order).
pub(crate) fn is_class(s: &str, class: PiiClass) -> bool {
    match class {
        PiiClass::Email => is_email(s),
        PiiClass::Phone => is_phone(s),
        PiiClass::PaymentCard => is_card(s),
        PiiClass::Iban => iban_compact(s).is_some(),
        PiiClass::IpAddress => is_ip(s),
        PiiClass::NationalId => is_ssn(s) || is_nino(s),
    }
}

// --- e-mail ---

fn email_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // Dot-atom local part (no leading, trailing or doubled dots), dotted host labels of at most
    // 63 characters without edge hyphens, and an alphabetic top-level domain: so
    // "user@localhost" and "v1@2.3" are not addresses. ASCII only; internationalised addresses
    // are rare enough to be declared instead.
    RE.get_or_init(|| {
        Regex::new(concat!(
            r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*",
            r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$",
        ))
        .expect("the e-mail pattern compiles")
    })
}

fn is_email(s: &str) -> bool {
    // RFC 5321: a local part of at most 64 octets; the pattern allows only one '@'.
    s.len() <= MAX_LEN && s.find('@').is_some_and(|at| at <= 64) && email_re().is_match(s)
}

// --- IP addresses ---

fn is_ip(s: &str) -> bool {
    if s.contains(':') {
        // "::" alone parses but carries no address worth hiding and appears as a separator.
        Ipv6Addr::from_str(s).is_ok() && s.bytes().any(|b| b.is_ascii_hexdigit())
    } else {
        // The standard parser wants exactly four decimal octets ≤ 255 without leading zeros.
        Ipv4Addr::from_str(s).is_ok()
    }
}

// --- payment cards ---

/// Whether `digits` (ASCII digits only) passes the Luhn check. False for an empty string or
/// any other character.
pub fn luhn_ok(digits: &str) -> bool {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 {
                    d2 - 9
                } else {
                    d2
                }
            } else {
                d
            }
        })
        .sum();
    // Not `is_multiple_of`: the workspace still supports Rust 1.85.
    matches!(sum % 10, 0)
}

/// The card's digits when `s` is written as a card is: all digits, or groups separated by
/// single spaces or single dashes (one kind) in the layouts cards are printed in.
pub(crate) fn card_digits(s: &str) -> Option<String> {
    let sep = if s.contains(' ') { b' ' } else { b'-' };
    if !s.bytes().all(|b| b.is_ascii_digit() || b == sep) {
        return None;
    }
    let groups: Vec<usize> = s.split(sep as char).map(str::len).collect();
    let layout_ok = match groups.as_slice() {
        [_] => true,
        // American Express (4-6-5) and Diners Club (4-6-4).
        [4, 6, 5] | [4, 6, 4] => true,
        // Fours, the last group possibly shorter (13- and 19-digit cards).
        [.., last] => {
            groups.len() >= 3
                && groups[..groups.len() - 1].iter().all(|&g| g == 4)
                && (1..=4).contains(last)
        }
        [] => false,
    };
    layout_ok.then(|| {
        s.bytes()
            .filter(u8::is_ascii_digit)
            .map(char::from)
            .collect()
    })
}

fn is_card(s: &str) -> bool {
    card_digits(s).is_some_and(|d| is_card_number(&d))
}

/// A digit string of 13–19 digits passing Luhn with a known issuer prefix for its length.
pub(crate) fn is_card_number(d: &str) -> bool {
    (13..=19).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && iin_ok(d) && luhn_ok(d)
}

/// Issuer prefixes (inclusive ranges of a prefix of `width` digits) and the lengths the
/// networks issue. Known prefixes cut down false positives among Luhn-valid order numbers and
/// ids: a random digit string passes Luhn one time in ten.
#[rustfmt::skip]
const IINS: &[(u32, u32, usize, &[usize])] = &[
    (4, 4, 1, &[13, 16, 19]),                          // Visa
    (51, 55, 2, &[16]),                                // Mastercard
    (2221, 2720, 4, &[16]),                            // Mastercard 2-series
    (34, 34, 2, &[15]),                                // American Express
    (37, 37, 2, &[15]),                                // American Express
    (6011, 6011, 4, &[16, 17, 18, 19]),                // Discover
    (644, 649, 3, &[16, 17, 18, 19]),                  // Discover
    (65, 65, 2, &[16, 17, 18, 19]),                    // Discover
    (300, 305, 3, &[14, 15, 16, 17, 18, 19]),          // Diners Club
    (36, 36, 2, &[14, 15, 16, 17, 18, 19]),            // Diners Club
    (38, 39, 2, &[16, 17, 18, 19]),                    // Diners Club
    (3528, 3589, 4, &[16, 17, 18, 19]),                // JCB
    (62, 62, 2, &[16, 17, 18, 19]),                    // UnionPay
    (2200, 2204, 4, &[16, 17, 18, 19]),                // Mir
    (5018, 5018, 4, &[13, 14, 15, 16, 17, 18, 19]),    // Maestro
    (5020, 5020, 4, &[13, 14, 15, 16, 17, 18, 19]),    // Maestro
    (5038, 5038, 4, &[13, 14, 15, 16, 17, 18, 19]),    // Maestro
    (5893, 5893, 4, &[13, 14, 15, 16, 17, 18, 19]),    // Maestro
    (6304, 6304, 4, &[13, 14, 15, 16, 17, 18, 19]),    // Maestro
    (6759, 6759, 4, &[13, 14, 15, 16, 17, 18, 19]),    // Maestro UK
    (6761, 6763, 4, &[13, 14, 15, 16, 17, 18, 19]),    // Maestro
];

fn iin_ok(d: &str) -> bool {
    IINS.iter().any(|&(lo, hi, width, lens)| {
        lens.contains(&d.len())
            && d[..width]
                .parse::<u32>()
                .is_ok_and(|p| (lo..=hi).contains(&p))
    })
}

// --- IBAN ---

/// Lengths of the IBAN registry's countries. A country not listed may be 15–34 characters.
#[rustfmt::skip]
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24), ("AE", 23), ("AL", 28), ("AT", 20), ("AZ", 28), ("BA", 20), ("BE", 16),
    ("BG", 22), ("BH", 22), ("BR", 29), ("BY", 28), ("CH", 21), ("CR", 22), ("CY", 28),
    ("CZ", 24), ("DE", 22), ("DK", 18), ("DO", 28), ("EE", 20), ("EG", 29), ("ES", 24),
    ("FI", 18), ("FO", 18), ("FR", 27), ("GB", 22), ("GE", 22), ("GI", 23), ("GL", 18),
    ("GR", 27), ("GT", 28), ("HR", 21), ("HU", 28), ("IE", 22), ("IL", 23), ("IQ", 23),
    ("IS", 26), ("IT", 27), ("JO", 30), ("KW", 30), ("KZ", 20), ("LB", 28), ("LC", 32),
    ("LI", 21), ("LT", 20), ("LU", 20), ("LV", 21), ("MC", 27), ("MD", 24), ("ME", 22),
    ("MK", 19), ("MR", 27), ("MT", 31), ("MU", 30), ("NL", 18), ("NO", 15), ("PK", 24),
    ("PL", 28), ("PS", 29), ("PT", 25), ("QA", 29), ("RO", 24), ("RS", 22), ("SA", 24),
    ("SC", 31), ("SE", 24), ("SI", 19), ("SK", 24), ("SM", 27), ("ST", 25), ("SV", 28),
    ("TL", 23), ("TN", 24), ("TR", 26), ("UA", 29), ("VA", 22), ("VG", 24), ("XK", 20),
];

/// Whether a compact IBAN (letters and digits only, any case) has the remainder 1 modulo 97
/// once its first four characters are moved to the end and letters read as 10–35 (ISO 13616).
pub fn iban_checksum_ok(iban: &str) -> bool {
    if iban.len() < 5 || !iban.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (head, tail) = iban.split_at(4);
    // Folding digit by digit keeps the remainder small, so no big integers are needed.
    let rem = tail.bytes().chain(head.bytes()).fold(0u32, |rem, b| {
        let b = b.to_ascii_uppercase();
        if b.is_ascii_digit() {
            (rem * 10 + u32::from(b - b'0')) % 97
        } else {
            (rem * 100 + u32::from(b - b'A') + 10) % 97
        }
    });
    rem == 1
}

/// The IBAN, compact and upper-case, when `s` is one: compact or in the printed groups of four
/// separated by single spaces, a known length for its country, check digits 02–98 and mod-97.
pub(crate) fn iban_compact(s: &str) -> Option<String> {
    // Cheap refusal of nearly every value before anything is allocated.
    let b = s.as_bytes();
    let head_ok = b.len() >= 15
        && b[..2].iter().all(u8::is_ascii_alphabetic)
        && b[2..4].iter().all(u8::is_ascii_digit);
    if !head_ok {
        return None;
    }
    if s.contains(' ') {
        let groups: Vec<&str> = s.split(' ').collect();
        let (last, full) = groups.split_last()?;
        if !full.iter().all(|g| g.len() == 4) || !(1..=4).contains(&last.len()) {
            return None;
        }
    }
    let c: String = s
        .chars()
        .filter(|&c| c != ' ')
        .collect::<String>()
        .to_ascii_uppercase();
    let b = c.as_bytes();
    let shape = (15..=34).contains(&b.len())
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..4].iter().all(u8::is_ascii_digit)
        && b[4..].iter().all(u8::is_ascii_alphanumeric);
    if !shape {
        return None;
    }
    let country_len = IBAN_LENGTHS.iter().find(|(cc, _)| cc.as_bytes() == &b[..2]);
    if country_len.is_some_and(|&(_, n)| n != b.len()) {
        return None;
    }
    // 00, 01 and 99 are never issued as check digits.
    let check = u32::from(b[2] - b'0') * 10 + u32::from(b[3] - b'0');
    ((2..=98).contains(&check) && iban_checksum_ok(&c)).then_some(c)
}

// --- national ids ---

/// US Social Security number, `AAA-GG-SSSS` only: no area 000, 666 or 900–999, no group 00,
/// no serial 0000 (numbers the SSA never issues).
fn is_ssn(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 11 || b[3] != b'-' || b[6] != b'-' {
        return false;
    }
    let (area, group, serial) = (&s[..3], &s[4..6], &s[7..]);
    [area, group, serial]
        .iter()
        .all(|p| p.bytes().all(|c| c.is_ascii_digit()))
        && area != "000"
        && area != "666"
        && !area.starts_with('9')
        && group != "00"
        && serial != "0000"
}

/// UK National Insurance number, `AB123456C` or `AB 12 34 56 C`, upper case: first letter not
/// D F I Q U V, second not D F I O Q U V, none of the prefixes HMRC never allocates, suffix
/// A–D.
fn is_nino(s: &str) -> bool {
    let compact: Vec<u8> = match s.len() {
        9 => s.bytes().collect(),
        13 => {
            let b = s.as_bytes();
            if [2, 5, 8, 11].iter().any(|&i| b[i] != b' ') {
                return false;
            }
            s.bytes().filter(|&c| c != b' ').collect()
        }
        _ => return false,
    };
    let Ok(c) = <[u8; 9]>::try_from(compact.as_slice()) else {
        return false;
    };
    const BAD_PREFIXES: [&[u8; 2]; 7] = [b"BG", b"GB", b"NK", b"KN", b"TN", b"NT", b"ZZ"];
    c[0].is_ascii_uppercase()
        && c[1].is_ascii_uppercase()
        && !b"DFIQUV".contains(&c[0])
        && !b"DFIOQUV".contains(&c[1])
        && !BAD_PREFIXES.iter().any(|p| p[..] == c[..2])
        && c[2..8].iter().all(u8::is_ascii_digit)
        && (b'A'..=b'D').contains(&c[8])
}

// --- phone numbers ---

/// A phone number: E.164 (`+`, 8–15 digits, nothing else), or a number written with
/// separators (spaces, dashes, dots, one pair of parentheses), 7–15 digits.
///
/// A leading `00` without separators is not enough (zero-padded ids look just like it), and
/// without a leading `+` the shapes of other things are refused: dates (4-2-2, 2-2-4), ranges
/// ("1000-2000": equal lengths, rising, a dash), US ZIP+4 (5-4 with a dash), SSN-shaped
/// numbers (3-2-4, any separators), dotted quads (IP-like), amounts with thousands separators
/// (1–3 digits, then groups of three, spaces or dots), and 13–15 digits in groups of four
/// (card-like references).
fn is_phone(s: &str) -> bool {
    if s.len() > 32 || Ipv4Addr::from_str(s).is_ok() {
        return false;
    }
    let (plus, rest) = match s.strip_prefix('+') {
        Some(r) => (true, r),
        None => (false, s),
    };
    // A country code never starts with 0, and nothing may come between '+' and it.
    if plus
        && !rest
            .bytes()
            .next()
            .is_some_and(|b| (b'1'..=b'9').contains(&b))
    {
        return false;
    }
    if !rest
        .bytes()
        .all(|b| b.is_ascii_digit() || b" -.()".contains(&b))
    {
        return false;
    }
    let digits = rest.bytes().filter(u8::is_ascii_digit).count();
    if rest.bytes().all(|b| b.is_ascii_digit()) {
        return plus && (8..=15).contains(&digits);
    }
    if !(7..=15).contains(&digits) {
        return false;
    }
    let Some(groups) = phone_groups(rest) else {
        return false;
    };
    // Single digits only as a country code after '+' or a trunk prefix in parentheses
    // ("+44 (0) 20 …"); elsewhere they are how versions and counts look.
    let singles_ok = groups
        .iter()
        .enumerate()
        .all(|(i, g)| g.len >= 2 || g.paren || (plus && i == 0));
    singles_ok && (plus || !looks_like_other_number(&groups, digits))
}

struct Group {
    len: usize,
    /// The group's digits as a number (at most 15 digits, so it fits).
    value: u64,
    paren: bool,
    /// The separator before this group, parentheses aside (`None` for the first group, or when
    /// only a parenthesis separates it from the previous one).
    sep: Option<u8>,
}

/// Splits a phone number (after any '+') into digit groups. Between two groups there may be at
/// most one separator besides parentheses; the parentheses hold one group of 1–5 digits; the
/// value must start with a digit or '(' and end with a digit.
fn phone_groups(s: &str) -> Option<Vec<Group>> {
    let b = s.as_bytes();
    if !b.last().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let mut groups: Vec<Group> = Vec::new();
    let (mut in_paren, mut saw_paren) = (false, false);
    let mut run_sep: Option<u8> = None;
    let mut run_len = 0usize;
    let mut prev: Option<u8> = None;
    for &c in b {
        match c {
            b'0'..=b'9' => {
                let d = u64::from(c - b'0');
                if prev.is_some_and(|p| p.is_ascii_digit()) {
                    let g = groups.last_mut()?;
                    g.len += 1;
                    g.value = g.value * 10 + d;
                } else {
                    if run_len > 1 || (groups.is_empty() && run_len > 0) {
                        return None;
                    }
                    groups.push(Group {
                        len: 1,
                        value: d,
                        paren: in_paren,
                        sep: run_sep,
                    });
                    run_sep = None;
                    run_len = 0;
                }
            }
            b'(' => {
                if saw_paren || prev.is_some_and(|p| p.is_ascii_digit()) {
                    return None;
                }
                (in_paren, saw_paren) = (true, true);
            }
            b')' => {
                if !in_paren || !prev.is_some_and(|p| p.is_ascii_digit()) {
                    return None;
                }
                in_paren = false;
            }
            _ => {
                if in_paren {
                    return None;
                }
                run_sep = Some(c);
                run_len += 1;
            }
        }
        prev = Some(c);
    }
    let paren_ok = groups.iter().filter(|g| g.paren).all(|g| g.len <= 5);
    (!in_paren && paren_ok).then_some(groups)
}

/// Shapes of dates, postcodes, SSNs, amounts and references that separators alone would let
/// through as phone numbers.
fn looks_like_other_number(groups: &[Group], digits: usize) -> bool {
    let lens: Vec<usize> = groups.iter().map(|g| g.len).collect();
    let seps: Vec<Option<u8>> = groups.iter().skip(1).map(|g| g.sep).collect();
    let all_seps = |c: u8| seps.iter().all(|&s| s == Some(c));
    let no_paren = groups.iter().all(|g| !g.paren);
    let date = matches!(lens.as_slice(), [4, 2, 2] | [2, 2, 4]);
    // Ranges such as "2024-2025" or "1000-2000": two equal-length groups, rising.
    let range =
        matches!(groups, [a, b] if a.len == b.len && b.value > a.value && b.sep == Some(b'-'));
    let zip4 = lens == [5, 4] && all_seps(b'-');
    let ssn = lens == [3, 2, 4] && no_paren;
    // Dotted quads that are not valid IPv4 addresses ("01.02.03.04", "300.1.2.3").
    let ip_like = lens.len() == 4 && lens.iter().all(|&l| l <= 3) && all_seps(b'.');
    let thousands = lens.len() >= 2
        && lens[0] <= 3
        && lens[1..].iter().all(|&l| l == 3)
        && no_paren
        && (all_seps(b' ') || all_seps(b'.'));
    let card_like = digits >= 13
        && lens.len() >= 3
        && lens[..lens.len() - 1].iter().all(|&l| l == 4)
        && no_paren;
    date || range || zip4 || ssn || ip_like || thousands || card_like
}
