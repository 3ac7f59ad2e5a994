//! Retry rules: classification of every status class, `Retry-After` in both forms with its
//! cap, backoff bounds and growth, the retry window, durations.

use super::*;
use serde_json::json;

const NOW: Millis = 1_445_412_480_000; // Wed, 21 Oct 2015 07:28:00 GMT

#[test]
fn statuses() {
    assert_eq!(classify(None, None, NOW), Verdict::Retry { after_ms: None });
    for s in [200, 201, 202, 204, 299] {
        assert_eq!(classify(Some(s), None, NOW), Verdict::Delivered, "{s}");
    }
    for s in [408, 409, 429, 500, 502, 503, 504, 599] {
        assert_eq!(
            classify(Some(s), None, NOW),
            Verdict::Retry { after_ms: None },
            "{s}"
        );
    }
    for s in [
        300, 301, 302, 304, 307, 308, 400, 401, 403, 404, 405, 410, 413, 422, 499,
    ] {
        assert_eq!(classify(Some(s), None, NOW), Verdict::Permanent, "{s}");
    }
    for s in [100, 101, 0, 600, 999] {
        assert_eq!(
            classify(Some(s), None, NOW),
            Verdict::Retry { after_ms: None },
            "{s}"
        );
    }
}

#[test]
fn retry_after_is_honoured_on_429_and_503_only() {
    assert_eq!(
        classify(Some(429), Some("120"), NOW),
        Verdict::Retry {
            after_ms: Some(120_000)
        }
    );
    assert_eq!(
        classify(Some(503), Some(" 5 "), NOW),
        Verdict::Retry {
            after_ms: Some(5_000)
        }
    );
    for s in [408, 409, 500, 502, 504] {
        assert_eq!(
            classify(Some(s), Some("120"), NOW),
            Verdict::Retry { after_ms: None },
            "{s}"
        );
    }
    assert_eq!(classify(Some(200), Some("120"), NOW), Verdict::Delivered);
    assert_eq!(classify(Some(400), Some("120"), NOW), Verdict::Permanent);
    assert_eq!(
        classify(None, Some("120"), NOW),
        Verdict::Retry { after_ms: None }
    );
}

#[test]
fn retry_after_forms() {
    assert_eq!(parse_retry_after("0", NOW), Some(0));
    assert_eq!(parse_retry_after("3600", NOW), Some(3_600_000));
    // Capped at one hour, including absurd values.
    assert_eq!(parse_retry_after("3601", NOW), Some(MAX_RETRY_AFTER_MS));
    assert_eq!(
        parse_retry_after("99999999999999999999999", NOW),
        Some(MAX_RETRY_AFTER_MS)
    );
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", NOW),
        Some(30_000)
    );
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", NOW),
        Some(0)
    );
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", NOW),
        Some(0)
    ); // past
    assert_eq!(
        parse_retry_after("Thu, 22 Oct 2015 07:28:00 GMT", NOW),
        Some(MAX_RETRY_AFTER_MS)
    );
    for bad in [
        "",
        "-1",
        "1.5",
        "soon",
        "1e3",
        "Wednesday, 21-Oct-15 07:28:00 GMT",
        "Wed Oct 21 07:28:00 2015",
    ] {
        assert_eq!(parse_retry_after(bad, NOW), None, "{bad:?}");
    }
}

#[test]
fn http_dates() {
    assert_eq!(parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT"), Some(NOW));
    assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
    assert_eq!(
        parse_http_date("Thu, 29 Feb 2024 23:59:59 GMT"),
        Some(1_709_251_199_000)
    );
    for bad in [
        "Wed, 21 Oct 2015 07:28:00 UTC",
        "Wed, 21 Oct 2015 07:28:00 GMT ",
        "Wed 21 Oct 2015 07:28:00 GMT ",
        "Xyz, 21 Oct 2015 07:28:00 GMT",
        "Wed, 21 Okt 2015 07:28:00 GMT",
        "Wed, 32 Oct 2015 07:28:00 GMT",
        "Thu, 29 Feb 2023 07:28:00 GMT",
        "Wed, 21 Oct 2015 24:28:00 GMT",
        "Wed, 2a Oct 2015 07:28:00 GMT",
        "Wed, 21 Oct 2015 07-28-00 GMT",
        "Wed, 21 Oct 2015 07:28:0é GMT",
    ] {
        assert_eq!(parse_http_date(bad), None, "{bad:?}");
    }
}

#[test]
fn backoff_is_bounded_and_grows() {
    let p = RetryPolicy {
        window_ms: 86_400_000,
        base_ms: 500,
        max_ms: 60_000,
    };
    // Upper bounds: 500, 1000, 2000, ... capped at 60 s.
    let caps = [
        500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000,
    ];
    for (i, cap) in caps.iter().enumerate() {
        let attempt = i as u32 + 1;
        assert_eq!(p.backoff_ms(attempt, 0.0), MIN_BACKOFF_MS);
        let top = p.backoff_ms(attempt, 0.999_999_9);
        assert!(
            top <= *cap && top >= cap * 99 / 100,
            "attempt {attempt}: {top}"
        );
        for u in [0.1, 0.25, 0.5, 0.75] {
            let b = p.backoff_ms(attempt, u);
            assert!(
                (MIN_BACKOFF_MS..=*cap).contains(&b),
                "attempt {attempt} unit {u}: {b}"
            );
        }
    }
    assert_eq!(p.backoff_ms(2, 0.5), 500);
    assert_eq!(p.backoff_ms(u32::MAX, 0.5), 30_000);
    assert_eq!(p.backoff_ms(0, 0.5), 250); // attempt 0 is treated as the first
                                           // Out-of-range units are clamped, never exceeding the ceiling.
    assert_eq!(p.backoff_ms(1, 7.0), 500);
    assert_eq!(p.backoff_ms(1, -1.0), MIN_BACKOFF_MS);
    assert_eq!(p.backoff_ms(1, f64::NAN), MIN_BACKOFF_MS);
    let tiny = RetryPolicy {
        window_ms: 1000,
        base_ms: 10,
        max_ms: 20,
    };
    assert_eq!(tiny.backoff_ms(3, 0.9), MIN_BACKOFF_MS);
    let huge = RetryPolicy {
        window_ms: 1000,
        base_ms: u64::MAX / 2,
        max_ms: u64::MAX,
    };
    assert!(huge.backoff_ms(10, 0.5) > 0);
}

#[test]
fn the_window_bounds_retries() {
    let p = RetryPolicy {
        window_ms: 60_000,
        base_ms: 500,
        max_ms: 60_000,
    };
    assert!(p.within_window(1_000, 1_000, 0));
    assert!(p.within_window(1_000, 31_000, 30_000));
    assert!(!p.within_window(1_000, 31_000, 30_001));
    assert!(!p.within_window(1_000, 70_000, 0));
    assert!(p.within_window(i64::MIN, i64::MIN, 60_000));
    assert!(!p.within_window(i64::MIN, i64::MAX, u64::MAX));
    assert_eq!(
        RetryPolicy::default(),
        RetryPolicy {
            window_ms: 86_400_000,
            base_ms: 500,
            max_ms: 60_000
        }
    );
}

#[test]
fn durations() {
    for (v, ms) in [
        (json!(0), 0),
        (json!(1500), 1500),
        (json!("250ms"), 250),
        (json!("10s"), 10_000),
        (json!("5m"), 300_000),
        (json!("24h"), 86_400_000),
        (json!("2d"), 172_800_000),
    ] {
        assert_eq!(parse_duration_ms(&v), Ok(ms), "{v}");
    }
    for bad in [
        json!(-1),
        json!(1.5),
        json!("1.5h"),
        json!("h"),
        json!(""),
        json!("10 s"),
        json!("10S"),
        json!("1w"),
        json!(null),
        json!("99999999999999999999s"),
    ] {
        assert!(parse_duration_ms(&bad).is_err(), "{bad}");
    }
    for (ms, text) in [
        (86_400_000, json!("1d")),
        (90_000, json!("90s")),
        (7_200_000, json!("2h")),
        (300_000, json!("5m")),
        (1_500, json!(1500)),
        (0, json!(0)),
    ] {
        assert_eq!(format_duration_ms(ms), text, "{ms}");
        assert_eq!(parse_duration_ms(&text), Ok(ms));
    }
}
