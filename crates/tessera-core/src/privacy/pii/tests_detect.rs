//! The detectors one class at a time: real-looking positives, and the negatives that matter
//! most (values that resemble a class but are dates, versions, ids, amounts or free text),
//! since a false positive mangles data.

use super::{detect, iban_checksum_ok, luhn_ok, PiiClass};

fn all(values: &[&str], expected: Option<PiiClass>) {
    for v in values {
        assert_eq!(detect(v), expected, "detect({v:?})");
    }
}

#[test]
fn class_names_round_trip() {
    for c in PiiClass::ALL {
        assert_eq!(PiiClass::parse(c.as_str()), Some(c));
    }
    assert_eq!(PiiClass::parse("Email"), None);
    assert_eq!(PiiClass::parse(""), None);
    assert_eq!(PiiClass::PaymentCard.as_str(), "payment_card");
    assert_eq!(PiiClass::IpAddress.as_str(), "ip_address");
}

#[test]
fn emails() {
    all(
        &[
            "alice@example.com",
            "Alice.Smith+tag@Example.CO.UK",
            "x@a.io",
            "o'brien@mail-server.example.org",
            "  bob@example.com  ",
            "a***@example.com",
        ],
        Some(PiiClass::Email),
    );
    let long_local = format!("{}@example.com", "a".repeat(65));
    let long_total = format!("a@{}.com", "b".repeat(250));
    all(
        &[
            "user@localhost",
            "@example.com",
            "alice@",
            "alice@@example.com",
            ".alice@example.com",
            "alice..b@example.com",
            "alice.@example.com",
            "alice@-example.com",
            "alice@example.c",
            "alice@example.123",
            "v1.2@3.4",
            "alice example.com",
            "mail me at alice@example.com",
            "ålice@exämple.com",
            &long_local,
            &long_total,
        ],
        None,
    );
}

#[test]
fn phones() {
    all(
        &[
            "+14155552671",
            "+4915112345678",
            "+12345678",
            "+1 (415) 555-2671",
            "+44 20 7946 0958",
            "+44 (0) 20 7946 0958",
            "(415) 555-2671",
            "415-555-2671",
            "415.555.2671",
            "555-0100",
            "0151 12345678",
            "030 1234567",
            "01 23 45 67 89",
            "00 49 151 12345678",
            "0049-151-12345678",
            "6123-4567",
            "6123 4567",
        ],
        Some(PiiClass::Phone),
    );
    all(
        &[
            // Plain numbers, E.164 out of range, a zero country code.
            "12345678",
            "0049151123456",
            "+1234567",
            "+1234567890123456",
            "+0123456789",
            // Dates and timestamps.
            "2024-01-05",
            "05.01.2024",
            "2024.01.05",
            "2024-01-05T10:30:00Z",
            "10:30:00",
            // Ranges.
            "2024-2025",
            "1000-2000",
            "10000-25000",
            // Versions, IP-like values, zip codes, SSN shapes, amounts, references.
            "1.2.3",
            "10.0.19041.1288",
            "120.0.6099.129",
            "256.256.256.256",
            "12345",
            "12345-6789",
            "000-12-3456",
            "1 000 000",
            "10 000 000",
            "1.000.000",
            "1234 5678 9012 3",
            "ORD-12345678",
            "$1,234.56",
            "1234.56",
            "-1234567",
            // Separator abuse and stray characters.
            "415--555-2671",
            "415 - 555 - 2671",
            "-415-555-2671",
            "415-555-2671-",
            "(415 555-2671",
            "415) 555-2671",
            "(41 5) 555-2671",
            "1(415)555-2671",
            "+ 1 415 555 2671",
            "415-555-2671 ext 12",
            "N/A",
            "４１５-５５５-２６７１",
        ],
        None,
    );
}

#[test]
fn luhn() {
    assert!(luhn_ok("4111111111111111"));
    assert!(luhn_ok("79927398713"));
    assert!(luhn_ok("0"));
    assert!(!luhn_ok("4111111111111112"));
    assert!(!luhn_ok("79927398710"));
    assert!(!luhn_ok(""));
    assert!(!luhn_ok("4111 1111 1111 1111"));
    assert!(!luhn_ok("abc"));
}

#[test]
fn payment_cards() {
    all(
        &[
            "4111111111111111",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "4222222222222",
            "5555555555554444",
            "5105 1051 0510 5100",
            "2223003122003222",
            "378282246310005",
            "3782 822463 10005",
            "371449635398431",
            "6011111111111117",
            "6011 0009 9013 9424",
            "3530111333300000",
            "36227206271667",
            "3056 930902 5904",
            "6200000000000005",
            " 4111111111111111 ",
        ],
        Some(PiiClass::PaymentCard),
    );
    all(
        &[
            // Luhn fails.
            "4111111111111112",
            // Luhn passes but no known issuer prefix or a wrong length for it.
            "1234567812345670",
            "0000000000000000",
            "9999999999999995",
            "411111111111116",
            "37828224631000",
            // Layouts cards are not printed in, mixed separators, stray characters.
            "4111 1111-1111 1111",
            "41111 11111 11111 1",
            "4111  1111 1111 1111",
            "4111.1111.1111.1111",
            "4111111111111111x",
            // Too short or too long.
            "411111111111",
            "41111111111111111113",
        ],
        None,
    );
}

#[test]
fn iban_checksums() {
    assert!(iban_checksum_ok("DE89370400440532013000"));
    assert!(iban_checksum_ok("GB82WEST12345698765432"));
    assert!(iban_checksum_ok("gb82west12345698765432"));
    assert!(!iban_checksum_ok("DE89370400440532013001"));
    assert!(!iban_checksum_ok("GB82WEST12345698765433"));
    assert!(!iban_checksum_ok("DE89 3704 0044 0532 0130 00"));
    assert!(!iban_checksum_ok("DE8"));
}

#[test]
fn ibans() {
    all(
        &[
            "DE89370400440532013000",
            "DE89 3704 0044 0532 0130 00",
            "GB82WEST12345698765432",
            "GB82 WEST 1234 5698 7654 32",
            "gb82west12345698765432",
            "FR1420041010050500013M02606",
            "NL91ABNA0417164300",
            "BE68539007547034",
            "CH9300762011623852957",
            "AT611904300234573201",
            "ES9121000418450200051332",
            "IT60X0542811101000000123456",
        ],
        Some(PiiClass::Iban),
    );
    all(
        &[
            // Checksum fails.
            "DE89370400440532013001",
            // Right checksum alphabet but the wrong length for Germany.
            "DE8937040044053201300",
            // Spacing that is not groups of four, lowercase mixed with junk, too short.
            "DE89 37040044 0532 0130 00",
            "DE89-3704-0044-0532-0130-00",
            "DE89",
            "ABCD1234",
            // Shaped like an IBAN (letters, digits) but a product code.
            "AB12CDEF3456GH789",
        ],
        None,
    );
}

#[test]
fn ip_addresses() {
    all(
        &[
            "192.168.1.1",
            "8.8.8.8",
            "255.255.255.255",
            "0.0.0.0",
            "2001:db8:85a3::8a2e:370:7334",
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            "::1",
            "fe80::1",
            "::ffff:192.0.2.1",
        ],
        Some(PiiClass::IpAddress),
    );
    all(
        &[
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "01.02.03.04",
            "192.168.1.1:8080",
            "::",
            "2001:db8::g",
            "1:2:3:4:5:6:7:8:9",
            "std::map",
            "12:30",
        ],
        None,
    );
}

#[test]
fn national_ids_ssn_rules() {
    all(
        &["123-45-6789", "001-01-0001", "665-99-9999", "899-12-3456"],
        Some(PiiClass::NationalId),
    );
    all(
        &[
            // Never issued: area 000, 666 or 9xx, group 00, serial 0000.
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "987-65-4321",
            "123-00-4567",
            "123-45-0000",
            // Only the canonical separators.
            "123456789",
            "123 45 6789",
            "123.45.6789",
        ],
        None,
    );
    // Other groupings are not SSNs (they may well be phone numbers).
    for v in ["123-456-789", "12-345-6789", "1234-56-789"] {
        assert_ne!(detect(v), Some(PiiClass::NationalId), "{v}");
    }
    // A never-issued SSN shape is not taken for a phone number either.
    assert_eq!(detect("900-12-3456"), None);
}

#[test]
fn national_ids_nino() {
    all(
        &["AB123456C", "AB 12 34 56 C", "JG103759A", "CE123456D"],
        Some(PiiClass::NationalId),
    );
    all(
        &[
            "ab123456c",
            "AB123456E",
            "DA123456A",
            "AO123456A",
            "GB123456A",
            "ZZ123456A",
            "TN123456A",
            "AB12345C",
            "AB 123456 C",
            "AB1234567",
        ],
        None,
    );
}

#[test]
fn everyday_values_are_not_personal() {
    all(
        &[
            "",
            "   ",
            "N/A",
            "null",
            "0",
            "12345678",
            "1234567890123",
            "ORD-2024-000123",
            "ord_8f3a9c",
            "550e8400-e29b-41d4-a716-446655440000",
            "12.99",
            "€12,99",
            "1.2.3",
            "v2.10.15",
            "2024-01-05",
            "2024-01-05T10:30:00.000Z",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)",
            "https://example.com/checkout?step=2",
            "Grüße aus München",
            "東京都",
            "🙂🙂🙂",
            "true",
            "SW1A 1AA",
            "75008",
        ],
        None,
    );
    // Free text holding an address is not classified: detection is on whole values.
    assert_eq!(detect("contact alice@example.com for details"), None);
    assert_eq!(detect(&"x".repeat(10_000)), None);
}
