//! Consent per profile: answers from events (`context.consent.categoryPreferences`) and from
//! the admin API are the profile's consent, with history; a destination requiring a category
//! gets records only with it, and a revocation holds back records already queued (they are
//! logged as skipped, never sent).

use super::*;

fn consent(s: &Server, ident: &str) -> Value {
    ok(s, &format!("/v1/profiles/{}/consent", enc(ident)))
}

#[test]
fn a_revocation_holds_back_queued_records_and_consent_keeps_its_history() {
    let (_d, s, key) = fresh("act-consent");
    let rx = Receiver::start();
    let (id, _) = webhook(
        &s,
        "marketing tool",
        &rx.url("/"),
        json!({"consent": ["marketing"], "paused": true, "retry": fast_retry()}),
    );
    // Consent given with an event: the profile's answer from now on.
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "cora", "traits": {"name": "Cora"},
               "context": {"consent": {"categoryPreferences": {"marketing": true, "analytics": false}}}}),
    );
    // These say nothing of consent: the profile's answer counts.
    track(&s, &key, "cora", "Viewed", "c-1", json!({}));
    track(&s, &key, "cora", "Viewed", "c-2", json!({}));
    // Someone who never answered gets nothing.
    track(&s, &key, "dora", "Viewed", "d-1", json!({}));
    let h = wait_health(&s, &id, |h| h["pending"] == 3);
    assert_eq!(h["skipped_without_consent"], 1, "{h}");
    let c = consent(&s, "user_id:cora");
    assert_eq!(c["consent"]["marketing"]["granted"], true, "{c}");
    assert_eq!(c["consent"]["analytics"]["granted"], false, "{c}");

    // Revoked while the records wait.
    let r = call(
        &s,
        "PUT",
        &format!("/v1/profiles/{}/consent", enc("user_id:cora")),
        &json!({"categoryPreferences": {"marketing": false}}),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    wait_within(
        &s,
        &format!("/v1/profiles/{}/consent", enc("user_id:cora")),
        PATIENCE,
        |c| c["consent"]["marketing"]["granted"] == false,
    );
    let c = consent(&s, "user_id:cora");
    assert_eq!(c["consent"]["marketing"]["source"], "consent_api", "{c}");
    let history: Vec<&Value> = c["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["category"] == "marketing")
        .collect();
    assert_eq!(history.len(), 2, "{c}");

    call(
        &s,
        "POST",
        &format!("/api/v1/destinations/{id}/resume"),
        &json!({}),
    );
    let log = wait_deliveries(&s, &id, None, |d| d.len() == 3);
    assert!(log.iter().all(|d| d["outcome"] == "skipped"), "{log:?}");
    assert!(
        log[0]["error"].as_str().unwrap().contains("consent"),
        "{log:?}"
    );
    let h = wait_health(&s, &id, |h| h["pending"] == 0);
    assert_eq!(h["skipped_revoked"], 3, "{h}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(rx.received().is_empty(), "nothing was sent");

    // Given again: new records flow.
    let r = call(
        &s,
        "PUT",
        &format!("/v1/profiles/{}/consent", enc("user_id:cora")),
        &json!({"categoryPreferences": {"marketing": true}}),
    );
    assert_eq!(r.status, 202);
    wait_within(
        &s,
        &format!("/v1/profiles/{}/consent", enc("user_id:cora")),
        PATIENCE,
        |c| c["consent"]["marketing"]["granted"] == true,
    );
    track(&s, &key, "cora", "Viewed", "c-3", json!({}));
    let got = arrivals(&rx, 1);
    assert_eq!(got[0].json()["messageId"], "c-3");

    for body in [
        json!({}),
        json!({"categoryPreferences": {"marketing": "yes"}}),
    ] {
        let r = call(
            &s,
            "PUT",
            &format!("/v1/profiles/{}/consent", enc("user_id:cora")),
            &body,
        );
        expect_error(&r, 400, "invalid_field");
    }
}
