//! Webhooks over HTTPS: a receiver with a certificate from a private CA is reached when the
//! destination trusts that CA (`config.ca_certificate`), and refused otherwise, with the TLS
//! error in the delivery log; a CA that is not a certificate is refused when saved.
//!
//! The certificates in `tls/` are test fixtures: a CA and a `localhost`/`127.0.0.1` server
//! certificate it signed, valid until 2126.

use super::*;

const CA: &str = include_str!("tls/ca.pem");
const SERVER_CERT: &str = include_str!("tls/server.pem");
const SERVER_KEY: &str = include_str!("tls/server.key");

#[test]
fn https_webhooks_verify_the_receivers_certificate() {
    let (_d, s, key) = fresh("act-tls");
    let rx = Receiver::start_tls(SERVER_CERT, SERVER_KEY);
    assert!(rx.url("/").starts_with("https://"));
    let (trusting, secret) = webhook(
        &s,
        "private CA",
        &rx.url("/secure"),
        json!({"config": {"url": rx.url("/secure"), "ca_certificate": CA}, "retry": fast_retry()}),
    );
    let (strict, _) = webhook(
        &s,
        "public roots only",
        &rx.url("/strict"),
        json!({"retry": fast_retry()}),
    );
    track(
        &s,
        &key,
        "ann",
        "Order Completed",
        "tls-1",
        json!({"total": 5}),
    );
    let got = arrivals(&rx, 1);
    assert_eq!(got[0].path, "/secure");
    assert!(signed_by(&secret, &got[0]));
    assert_eq!(got[0].json()["messageId"], "tls-1");
    // The other destination does not trust the private CA: nothing reaches the receiver, and
    // the log says why.
    let log = wait_deliveries(&s, &strict, None, |d| !d.is_empty());
    let error = log[0]["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("TLS"), "{log:?}");
    assert_eq!(log[0]["outcome"], "retry", "{log:?}");
    assert!(rx.received().iter().all(|r| r.path != "/strict"));
    assert_eq!(deliveries(&s, &trusting, None)[0]["outcome"], "delivered");

    let r = call(
        &s,
        "POST",
        "/api/v1/destinations",
        &json!({"name": "bad CA", "type": "webhook",
                "config": {"url": rx.url("/"), "ca_certificate": "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"}}),
    );
    let e = expect_error(&r, 400, "invalid_destination");
    assert_eq!(e["pointer"], "/config/ca_certificate", "{e}");
}
