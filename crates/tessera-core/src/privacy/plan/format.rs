//! The `format` keyword: a handful of string shapes checked by hand. Each check is strict about
//! syntax only; nothing here looks a value up anywhere (no DNS, no clock), and a check never
//! needs more than one pass over the string, because it runs on every ingested event.
//!
//! `time::parse_iso8601` is deliberately not reused for `date-time`: it accepts the lenient
//! dialects SDKs send (no zone, a space for `T`), while a plan that asks for RFC 3339 wants
//! exactly RFC 3339.

/// A supported value of `format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Email,
    DateTime,
    Date,
    Uri,
    Uuid,
}

impl Format {
    pub(crate) const ALL: [Format; 5] = [
        Format::Email,
        Format::DateTime,
        Format::Date,
        Format::Uri,
        Format::Uuid,
    ];

    pub(crate) fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == s)
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Format::Email => "email",
            Format::DateTime => "date-time",
            Format::Date => "date",
            Format::Uri => "uri",
            Format::Uuid => "uuid",
        }
    }

    /// What a conforming value looks like, for violation messages (which never quote the
    /// value itself: it may be personal data).
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Format::Email => "an e-mail address",
            Format::DateTime => "an RFC 3339 date-time such as 2024-05-01T12:30:00Z",
            Format::Date => "a date such as 2024-05-01",
            Format::Uri => "a URI with a scheme, such as https://example.com/",
            Format::Uuid => "a UUID such as 123e4567-e89b-12d3-a456-426614174000",
        }
    }

    pub(crate) fn matches(self, s: &str) -> bool {
        match self {
            Format::Email => is_email(s),
            Format::DateTime => is_date_time(s),
            Format::Date => is_date(s.as_bytes()),
            Format::Uri => is_uri(s),
            Format::Uuid => is_uuid(s),
        }
    }
}

/// RFC 5321 mailbox, dot-atom form: `local@domain`. Non-ASCII is allowed in the local part
/// (RFC 6531) because SDKs send what users typed; quoted local parts and address literals are
/// not accepted, as no real tracking data uses them and they are a common injection vector.
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    let atom_char =
        |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii();
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(atom_char));
    local_ok && is_hostname(domain)
}

/// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

/// RFC 3339 `full-date`.
fn is_date(b: &[u8]) -> bool {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    match (num(&b[0..4]), num(&b[5..7]), num(&b[8..10])) {
        (Some(y), Some(m), Some(d)) => (1..=12).contains(&m) && d >= 1 && d <= days_in(y, m),
        _ => false,
    }
}

/// RFC 3339 `date-time`: `full-date "T" full-time`, `T` and `Z` in either case, a mandatory
/// zone, any number of fractional digits. A leap second (`:60`) is only valid where it can
/// occur, at 23:59 UTC.
fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 || !is_date(&b[..10]) || !matches!(b[10], b'T' | b't') {
        return false;
    }
    let t = &b[11..];
    if t[2] != b':' || t[5] != b':' {
        return false;
    }
    let (Some(h), Some(m), Some(sec)) = (num(&t[0..2]), num(&t[3..5]), num(&t[6..8])) else {
        return false;
    };
    if h > 23 || m > 59 || sec > 60 {
        return false;
    }
    let mut rest = &t[8..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        rest = &frac[digits..];
    }
    // Minutes east of UTC.
    let offset: i64 = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), oh1, oh2, b':', om1, om2] => {
            let (Some(oh), Some(om)) = (num(&[*oh1, *oh2]), num(&[*om1, *om2])) else {
                return false;
            };
            if oh > 23 || om > 59 {
                return false;
            }
            let minutes = (oh * 60 + om) as i64;
            if *sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return false,
    };
    if sec == 60 {
        let utc = ((h * 60 + m) as i64 - offset).rem_euclid(24 * 60);
        return utc == 23 * 60 + 59;
    }
    true
}

/// RFC 3986 absolute URI, checked for its shape: `scheme ":" rest`, where the rest holds only
/// characters a URI may hold and every `%` starts a percent-encoded byte.
fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let sb = scheme.as_bytes();
    let scheme_ok = !sb.is_empty()
        && sb[0].is_ascii_alphabetic()
        && sb
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return false;
    }
    let b = rest.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            match b.get(i + 1..i + 3) {
                Some([x, y]) if x.is_ascii_hexdigit() && y.is_ascii_hexdigit() => i += 3,
                _ => return false,
            }
            continue;
        }
        let allowed = c.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&c);
        if !allowed {
            return false;
        }
        i += 1;
    }
    true
}

/// RFC 9562 string form: 8-4-4-4-12 hex digits, either case.
fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A run of ASCII digits as a number; `None` if any byte is not a digit.
fn num(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn days_in(year: u32, month: u32) -> u32 {
    // Signed, so the leap rule reads the same as in `time.rs` on the workspace's MSRV (1.85,
    // before `is_multiple_of`).
    let y = i64::from(year);
    match month {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}
