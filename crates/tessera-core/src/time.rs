//! Timestamps as milliseconds since the Unix epoch, and their ISO-8601 text form.
//!
//! Segment SDKs send ISO-8601 strings in several dialects (`Z` or an offset, 0–9 fractional
//! digits, sometimes a space instead of `T`, sometimes no zone at all from naive server clocks).
//! Parsing is lenient about those dialects and strict about everything else, so a bad date is
//! reported instead of silently becoming "now".

use thiserror::Error;

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("expected an ISO-8601 date-time such as 2024-05-01T12:30:00.000Z")]
pub struct TimeParseError;

/// Parses an ISO-8601 / RFC 3339 date-time. A missing zone means UTC.
pub fn parse_iso8601(s: &str) -> Result<Millis, TimeParseError> {
    let b = s.trim().as_bytes();
    let mut p = Cursor { b, i: 0 };
    let year = p.digits(4)? as i64;
    p.expect(b'-')?;
    let month = p.digits(2)?;
    p.expect(b'-')?;
    let day = p.digits(2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(TimeParseError);
    }
    let mut secs_of_day = 0i64;
    let mut millis = 0i64;
    let mut offset_secs = 0i64;
    if p.i < b.len() {
        match b[p.i] {
            b'T' | b't' | b' ' => p.i += 1,
            _ => return Err(TimeParseError),
        }
        let hour = p.digits(2)?;
        p.expect(b':')?;
        let minute = p.digits(2)?;
        let second = if p.peek() == Some(b':') {
            p.i += 1;
            p.digits(2)?
        } else {
            0
        };
        // 60 is a leap second; it folds into the next minute's first second.
        if hour > 23 || minute > 59 || second > 60 {
            return Err(TimeParseError);
        }
        secs_of_day = (hour * 3600 + minute * 60 + second) as i64;
        if matches!(p.peek(), Some(b'.') | Some(b',')) {
            p.i += 1;
            let start = p.i;
            let mut frac = 0i64;
            while let Some(c) = p.peek().filter(u8::is_ascii_digit) {
                if p.i - start < 3 {
                    frac = frac * 10 + (c - b'0') as i64;
                }
                p.i += 1;
            }
            let n = p.i - start;
            if n == 0 {
                return Err(TimeParseError);
            }
            for _ in n..3 {
                frac *= 10;
            }
            millis = frac;
        }
        match p.peek() {
            None => {}
            Some(b'Z') | Some(b'z') => p.i += 1,
            Some(sign @ (b'+' | b'-')) => {
                p.i += 1;
                let oh = p.digits(2)?;
                if p.peek() == Some(b':') {
                    p.i += 1;
                }
                let om = p.digits(2)?;
                if oh > 23 || om > 59 {
                    return Err(TimeParseError);
                }
                offset_secs = (oh * 3600 + om * 60) as i64;
                if sign == b'-' {
                    offset_secs = -offset_secs;
                }
            }
            Some(_) => return Err(TimeParseError),
        }
    }
    if p.i != b.len() {
        return Err(TimeParseError);
    }
    let days = days_from_civil(year, month, day);
    Ok((days * 86_400 + secs_of_day - offset_secs) * 1000 + millis)
}

/// Formats as `YYYY-MM-DDTHH:MM:SS.sssZ`, the form Segment's own API returns.
pub fn format_iso8601(ms: Millis) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let secs = rem / 1000;
    // Written by hand: this runs several times per ingested event and `format!` showed up in
    // the ingest profile.
    let mut b = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: i64| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y.clamp(0, 9999));
    put(5, 2, m as i64);
    put(8, 2, d as i64);
    put(11, 2, secs / 3600);
    put(14, 2, secs / 60 % 60);
    put(17, 2, secs % 60);
    put(20, 3, rem % 1000);
    String::from_utf8(b.to_vec()).expect("ASCII digits")
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn expect(&mut self, c: u8) -> Result<(), TimeParseError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(TimeParseError)
        }
    }
    fn digits(&mut self, n: usize) -> Result<u32, TimeParseError> {
        let mut v = 0u32;
        for _ in 0..n {
            let c = self
                .peek()
                .filter(u8::is_ascii_digit)
                .ok_or(TimeParseError)?;
            v = v * 10 + (c - b'0') as u32;
            self.i += 1;
        }
        Ok(v)
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's civil-date algorithms: exact for the proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_dialects_sdks_send() {
        let t = 1_714_566_600_000; // 2024-05-01T12:30:00Z
        assert_eq!(parse_iso8601("2024-05-01T12:30:00Z"), Ok(t));
        assert_eq!(parse_iso8601("2024-05-01T12:30:00.000Z"), Ok(t));
        assert_eq!(
            parse_iso8601("2024-05-01T12:30:00.123456+00:00"),
            Ok(t + 123)
        );
        assert_eq!(parse_iso8601("2024-05-01 12:30:00"), Ok(t));
        assert_eq!(parse_iso8601("2024-05-01T14:30:00+02:00"), Ok(t));
        assert_eq!(parse_iso8601("2024-05-01T07:30:00-0500"), Ok(t));
        assert_eq!(parse_iso8601("2024-05-01T12:30Z"), Ok(t));
        assert_eq!(parse_iso8601("2024-05-01"), Ok(t - 45_000_000));
        assert_eq!(parse_iso8601("2024-05-01T12:30:00.5Z"), Ok(t + 500));
    }

    #[test]
    fn rejects_what_is_not_a_date() {
        for bad in [
            "",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:30:00.Z",
            "2024-05-01T12:30:00Zjunk",
            "1714566600000",
        ] {
            assert_eq!(parse_iso8601(bad), Err(TimeParseError), "{bad}");
        }
    }

    #[test]
    fn formats_like_segment() {
        assert_eq!(format_iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_iso8601(1_714_566_600_123),
            "2024-05-01T12:30:00.123Z"
        );
        assert_eq!(format_iso8601(-1), "1969-12-31T23:59:59.999Z");
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(ms in -62_000_000_000_000i64..253_000_000_000_000i64) {
            prop_assert_eq!(parse_iso8601(&format_iso8601(ms)), Ok(ms));
        }
    }
}
