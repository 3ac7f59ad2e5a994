//! The `format` keyword: values each format accepts and refuses.

use super::*;

#[track_caller]
fn formats(format: &str, good: &[&str], wrong: &[&str]) {
    let schema = json!({"format": format});
    for s in good {
        ok(schema.clone(), json!(s));
    }
    for s in wrong {
        bad(schema.clone(), json!(s), "format");
    }
}

#[test]
fn email() {
    formats(
        "email",
        &[
            "jane@example.com",
            "first.last+tag@sub.example.co.uk",
            "o'brien@example.ie",
            "user@localhost",
            "jürgen@example.de",
        ],
        &[
            "",
            "jane",
            "@example.com",
            "jane@",
            "jane@@example.com",
            "jane doe@example.com",
            "jane@exa mple.com",
            ".jane@example.com",
            "jane..doe@example.com",
            "jane@-example.com",
            "jane@example..com",
        ],
    );
    let m = bad(json!({"format": "email"}), json!("nope"), "format");
    assert_eq!(m, "expected an e-mail address");
}

#[test]
fn date_time() {
    formats(
        "date-time",
        &[
            "2024-05-01T12:30:00Z",
            "2024-05-01t12:30:00z",
            "2024-05-01T12:30:00.123456789+02:00",
            "2024-02-29T00:00:00-11:30",
            "2016-12-31T23:59:60Z",
            "2016-12-31T18:59:60-05:00",
        ],
        &[
            "2024-05-01",
            "2024-05-01T12:30:00",
            "2024-05-01 12:30:00Z",
            "2024-05-01T12:30Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:60:00Z",
            "2024-05-01T12:30:00.Z",
            "2024-05-01T12:30:00+0200",
            "2024-05-01T12:30:00+24:00",
            "2023-02-29T00:00:00Z",
            "2024-05-01T12:30:60Z",
            "2024-05-01T12:30:00Zjunk",
            "２０２４-05-01T12:30:00Z",
        ],
    );
}

#[test]
fn date() {
    formats(
        "date",
        &["2024-05-01", "2000-02-29", "1999-12-31"],
        &[
            "2024-5-01",
            "2024-05-01T00:00:00Z",
            "2024-13-01",
            "2024-00-10",
            "2024-04-31",
            "1900-02-29",
            "2024/05/01",
            "",
        ],
    );
}

#[test]
fn uri() {
    formats(
        "uri",
        &[
            "https://example.com/a?b=c#d",
            "mailto:jane@example.com",
            "urn:isbn:0451450523",
            "app+ios://open/item%20one",
        ],
        &[
            "example.com/path",
            "/relative/path",
            "1http://example.com",
            "https://exa mple.com",
            "https://example.com/%zz",
            "https://example.com/%4",
            "https://example.com/\u{e9}",
            ":no-scheme",
        ],
    );
}

#[test]
fn uuid() {
    formats(
        "uuid",
        &[
            "123e4567-e89b-12d3-a456-426614174000",
            "123E4567-E89B-12D3-A456-426614174000",
        ],
        &[
            "123e4567e89b12d3a456426614174000",
            "123e4567-e89b-12d3-a456-42661417400",
            "123e4567-e89b-12d3-a456-42661417400g",
            "{123e4567-e89b-12d3-a456-426614174000}",
        ],
    );
}

#[test]
fn formats_apply_to_strings_only() {
    ok(json!({"format": "uuid"}), json!(12));
    bad(
        json!({"type": "string", "format": "uuid"}),
        json!(12),
        "type",
    );
}
