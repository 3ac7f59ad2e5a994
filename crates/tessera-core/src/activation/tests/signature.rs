//! Signatures: HMAC-SHA256 against RFC 4231's test vectors, the header format, and
//! verification rejecting tampered bodies, wrong secrets and stale timestamps.

use super::*;

fn mac(key: &[u8], data: &[u8]) -> String {
    hex(&hmac_sha256(key, &[data]))
}

#[test]
fn rfc_4231_vectors() {
    // Test case 5 is omitted: it checks a truncated output, which HMAC itself does not define.
    let cases: [(Vec<u8>, Vec<u8>, &str); 6] = [
        (vec![0x0b; 20], b"Hi There".to_vec(), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        (b"Jefe".to_vec(), b"what do ya want for nothing?".to_vec(), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        (vec![0xaa; 20], vec![0xdd; 50], "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        ((1..=25).collect(), vec![0xcd; 50], "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
        (vec![0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        (
            vec![0xaa; 131],
            b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".to_vec(),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
        ),
    ];
    for (i, (key, data, want)) in cases.iter().enumerate() {
        assert_eq!(
            mac(key, data),
            *want,
            "test case {}",
            if i < 4 { i + 1 } else { i + 2 }
        );
    }
}

#[test]
fn parts_are_concatenated_and_block_sized_keys_are_used_as_is() {
    assert_eq!(
        hmac_sha256(b"k", &[b"ab", b"", b"c"]),
        hmac_sha256(b"k", &[b"abc"])
    );
    // A 64-byte key is not hashed; a 65-byte one is.
    let k64 = [7u8; 64];
    let k65 = [7u8; 65];
    assert_ne!(mac(&k64, b"x"), mac(&k65, b"x"));
    assert_eq!(mac(&k65, b"x"), mac(&Sha256::digest(k65), b"x"));
}

#[test]
fn sign_formats_the_header() {
    // Cross-checked with Python's hmac module.
    assert_eq!(
        sign("whsec_test", 1_700_000_000, br#"{"a":1}"#),
        "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
    );
    assert!(sign("s", -5, b"").starts_with("t=-5,v1="));
}

#[test]
fn verify_accepts_what_sign_produced() {
    let body = br#"{"type":"track"}"#;
    let h = sign("whsec_a", 1_000, body);
    assert!(verify("whsec_a", &h, body, 1_000, 300));
    assert!(verify("whsec_a", &h, body, 1_300, 300));
    assert!(verify("whsec_a", &h, body, 700, 300)); // sender's clock ahead
                                                    // Spaces after commas, unknown schemes and a second (rotated) signature are tolerated.
    let v1 = h.split_once(",v1=").unwrap().1;
    assert!(verify(
        "whsec_a",
        &format!("t=1000, v0=abc, v1={}, v1={v1}", "0".repeat(64)),
        body,
        1_000,
        300
    ));
    assert!(verify(
        "whsec_a",
        &format!("t=1000,v1={}", v1.to_uppercase()),
        body,
        1_000,
        300
    ));
}

#[test]
fn verify_rejects_tampering_and_stale_or_malformed_headers() {
    let body = br#"{"total":100}"#;
    let h = sign("whsec_a", 1_000, body);
    let v1 = h.split_once(",v1=").unwrap().1.to_owned();
    assert!(!verify("whsec_a", &h, br#"{"total":1000}"#, 1_000, 300));
    assert!(!verify("whsec_b", &h, body, 1_000, 300));
    assert!(!verify("whsec_a", &h, body, 1_301, 300));
    assert!(!verify("whsec_a", &h, body, 699, 300));
    assert!(!verify("whsec_a", &h, body, i64::MAX, i64::MAX - 10_000));
    // The timestamp is signed: moving it forward breaks the MAC.
    assert!(!verify(
        "whsec_a",
        &format!("t=1001,v1={v1}"),
        body,
        1_000,
        300
    ));
    let mut flipped = v1.clone().into_bytes();
    flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).unwrap();
    for bad in [
        String::new(),
        format!("v1={v1}"),
        "t=1000".to_owned(),
        format!("t=abc,v1={v1}"),
        format!("t=1000,t=1000,v1={v1}"),
        format!("t=1000,v1={}", &v1[..63]),
        format!("t=1000,v1={v1}0"),
        format!("t=1000,v1={}", "z".repeat(64)),
        format!("t=1000,v1={flipped}"),
        format!("t=1000;v1={v1}"),
        format!("t=1000,{v1}"),
    ] {
        assert!(!verify("whsec_a", &bad, body, 1_000, 300), "{bad:?}");
    }
}

#[test]
fn secrets() {
    let s = new_secret([0xab; 24]);
    assert_eq!(s, format!("whsec_{}", "ab".repeat(24)));
    assert_ne!(new_secret([0; 24]), new_secret([1; 24]));
    assert_eq!(hex(&[0x00, 0x0f, 0xf0, 0xff]), "000ff0ff");
    assert_eq!(SIGNATURE_HEADER, "Tessera-Signature");
}
