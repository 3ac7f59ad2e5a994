//! Table tests of Segment's documented identity-resolution scenarios (flat matching): linking
//! anonymous ids, user_id limits, blocked values, type limits and windows, alias, merges and
//! their caps, normalisation of emails and phones, custom and device identifier types.

use super::table::*;
use super::*;

fn matching_cases() -> Vec<Case> {
    vec![
        case(
            "anonymous page views, then identify links the anonymous id to the user",
            default_rules(),
            seq(vec![
                json!({"type": "page", "anonymousId": "a1", "name": "Home"}),
                json!({"type": "page", "anonymousId": "a1", "name": "Pricing"}),
                json!({"type": "identify", "userId": "u1", "anonymousId": "a1",
                       "traits": {"email": "u1@x.com"}, "messageId": "m3"}),
                json!({"type": "track", "event": "Signed Up", "userId": "u1"}),
            ]),
            vec![
                Returned(vec![Some(1); 4]),
                Live(vec![1]),
                Idents(
                    1,
                    vec![
                        ("anonymous_id", "a1"),
                        ("email", "u1@x.com"),
                        ("user_id", "u1"),
                    ],
                ),
                Trait(1, "email", "\"u1@x.com\""),
            ],
        ),
        case(
            "a new user_id with a known email makes a new profile and the email is dropped",
            default_rules(),
            seq(vec![
                json!({"type": "identify", "userId": "u1", "traits": {"email": "a@x.com"}}),
                json!({"type": "identify", "userId": "u2", "traits": {"email": "a@x.com"}}),
                json!({"type": "track", "event": "E", "userId": "u2"}),
            ]),
            vec![
                Returned(vec![Some(1), Some(2), Some(2)]),
                Idents(1, vec![("email", "a@x.com"), ("user_id", "u1")]),
                Idents(2, vec![("user_id", "u2")]),
                Lookup("email", "a@x.com".into(), Some(1)),
                // The identifier is dropped, the trait is still what the user said.
                Trait(2, "email", "\"a@x.com\""),
            ],
        ),
        case(
            "a shared device: a known anonymous id with a new user_id stays with the first user",
            default_rules(),
            seq(vec![
                json!({"type": "identify", "userId": "u1", "anonymousId": "a1"}),
                json!({"type": "identify", "userId": "u2", "anonymousId": "a1"}),
            ]),
            vec![
                Returned(vec![Some(1), Some(2)]),
                Idents(1, vec![("anonymous_id", "a1"), ("user_id", "u1")]),
                Idents(2, vec![("user_id", "u2")]),
            ],
        ),
        case(
            "a custom blocked pattern keeps test emails from joining profiles",
            json!({"blocked_patterns": ["^[0-]*$", "@example\\.com$"]}),
            seq(vec![
                json!({"type": "identify", "anonymousId": "a1", "traits": {"email": "qa@example.com"}}),
                json!({"type": "identify", "anonymousId": "a2", "traits": {"email": " QA@Example.COM"}}),
                json!({"type": "identify", "anonymousId": "a3", "traits": {"email": "0000"}}),
                json!({"type": "identify", "anonymousId": "a4", "traits": {"email": "0000"}}),
            ]),
            vec![
                Returned(vec![Some(1), Some(2), Some(3), Some(4)]),
                Lookup("email", "qa@example.com".into(), None),
                Lookup("email", "0000".into(), None),
                Idents(1, vec![("anonymous_id", "a1")]),
            ],
        ),
        case(
            "a value blocked by a split never joins anything; unblocked it does",
            json!({"blocked_identifiers": [{"type": "email", "value": "shared@x.com"}]}),
            seq(vec![
                json!({"type": "identify", "anonymousId": "a1",
                       "traits": {"email": "shared@x.com", "phone": "+1 555 010 0001"}}),
                json!({"type": "identify", "anonymousId": "a2", "traits": {"email": "Shared@x.com"}}),
                json!({"type": "identify", "anonymousId": "a3", "traits": {"phone": "+15550100001"}}),
            ]),
            vec![
                Returned(vec![Some(1), Some(2), Some(1)]),
                Lookup("email", "shared@x.com".into(), None),
                Idents(
                    1,
                    vec![
                        ("anonymous_id", "a1"),
                        ("anonymous_id", "a3"),
                        ("phone", "+15550100001"),
                    ],
                ),
            ],
        ),
        case(
            "email limit 2: a third email is dropped from the profile's own events",
            json!({"identifiers": {"email": {"limit": 2}}}),
            seq(vec![
                json!({"type": "identify", "userId": "u1", "anonymousId": "a1", "traits": {"email": "e1@x.com"}}),
                json!({"type": "identify", "userId": "u1", "traits": {"email": "e2@x.com"}}),
                json!({"type": "identify", "userId": "u1", "traits": {"email": "e3@x.com"}}),
                json!({"type": "identify", "anonymousId": "a9", "traits": {"email": "e3@x.com"}}),
                // Carries a1 (of the full profile) and a new email: the lower-priority
                // anonymous id is dropped and the email starts a profile of its own.
                json!({"type": "track", "event": "E", "anonymousId": "a1",
                       "context": {"traits": {"email": "e5@x.com"}}}),
                json!({"type": "identify", "userId": "u1", "traits": {"email": "E1@x.com"}}),
            ]),
            vec![
                Returned(vec![Some(1), Some(1), Some(1), Some(4), Some(5), Some(1)]),
                Live(vec![1, 4, 5]),
                Idents(
                    1,
                    vec![
                        ("anonymous_id", "a1"),
                        ("email", "e1@x.com"),
                        ("email", "e2@x.com"),
                        ("user_id", "u1"),
                    ],
                ),
                Idents(4, vec![("anonymous_id", "a9"), ("email", "e3@x.com")]),
                Idents(5, vec![("email", "e5@x.com")]),
            ],
        ),
        case(
            "limit with a window: identifiers not seen within it do not count",
            json!({"identifiers": {"email": {"limit": 1, "window": "30d"}}}),
            vec![
                (
                    T0,
                    json!({"type": "identify", "userId": "u1", "traits": {"email": "e1@x.com"}}),
                ),
                (
                    T0 + 10 * DAY,
                    json!({"type": "identify", "userId": "u1", "traits": {"email": "e2@x.com"}}),
                ),
                (
                    T0 + 31 * DAY,
                    json!({"type": "identify", "userId": "u1", "traits": {"email": "e2@x.com"}}),
                ),
                // Both are on the profile now; seeing an old one again is not growth.
                (
                    T0 + 32 * DAY,
                    json!({"type": "identify", "userId": "u1", "traits": {"email": "e1@x.com"}}),
                ),
                (
                    T0 + 40 * DAY,
                    json!({"type": "identify", "userId": "u1", "traits": {"email": "e3@x.com"}}),
                ),
                (
                    T0 + 41 * DAY,
                    json!({"type": "identify", "anonymousId": "a6", "traits": {"email": "e3@x.com"}}),
                ),
            ],
            vec![
                Returned(vec![Some(1), Some(1), Some(1), Some(1), Some(1), Some(6)]),
                Idents(
                    1,
                    vec![
                        ("email", "e1@x.com"),
                        ("email", "e2@x.com"),
                        ("user_id", "u1"),
                    ],
                ),
                Lookup("email", "e3@x.com".into(), Some(6)),
            ],
        ),
        case(
            "alias joins an anonymous previousId to the userId",
            default_rules(),
            seq(vec![
                json!({"type": "page", "anonymousId": "a1"}),
                json!({"type": "alias", "previousId": "a1", "userId": "u1"}),
                json!({"type": "track", "event": "E", "userId": "u1"}),
            ]),
            vec![
                Returned(vec![Some(1); 3]),
                Idents(1, vec![("anonymous_id", "a1"), ("user_id", "u1")]),
            ],
        ),
        case(
            "alias joins a previousId that is a known user_id when two user ids are allowed",
            json!({"identifiers": {"user_id": {"limit": 2}}}),
            seq(vec![
                json!({"type": "identify", "userId": "u1", "traits": {"email": "e1@x.com"}}),
                json!({"type": "alias", "previousId": "u1", "userId": "u2"}),
                json!({"type": "identify", "userId": "u3"}),
                json!({"type": "identify", "userId": "u4"}),
                // Both already known, on different profiles: the alias merges them.
                json!({"type": "alias", "previousId": "u4", "userId": "u3"}),
                // Merging two profiles of two user ids each would pass the limit: previousId
                // is dropped.
                json!({"type": "alias", "previousId": "u3", "userId": "u1"}),
            ]),
            vec![
                Returned(vec![Some(1), Some(1), Some(3), Some(4), Some(3), Some(1)]),
                Live(vec![1, 3]),
                Idents(
                    1,
                    vec![("email", "e1@x.com"), ("user_id", "u1"), ("user_id", "u2")],
                ),
                Idents(3, vec![("user_id", "u3"), ("user_id", "u4")]),
                Resolves(4, 3),
                Lookup("anonymous_id", "u1".into(), None),
                Merges(vec![(
                    5,
                    3,
                    vec![4],
                    vec![("user_id", "u3"), ("user_id", "u4")],
                )]),
            ],
        ),
        case(
            "alias of two user ids under the default limit of one: previousId is dropped",
            default_rules(),
            seq(vec![
                json!({"type": "identify", "userId": "u1"}),
                json!({"type": "alias", "previousId": "u1", "userId": "u2"}),
            ]),
            vec![
                Returned(vec![Some(1), Some(2)]),
                Idents(1, vec![("user_id", "u1")]),
                Idents(2, vec![("user_id", "u2")]),
            ],
        ),
        case(
            "an event with identifiers of two profiles merges them into the oldest",
            default_rules(),
            seq(vec![
                json!({"type": "page", "anonymousId": "a1"}),
                json!({"type": "identify", "userId": "u1", "traits": {"plan": "free"}}),
                json!({"type": "identify", "userId": "u1", "anonymousId": "a1"}),
                json!({"type": "page", "anonymousId": "a1"}),
            ]),
            vec![
                Returned(vec![Some(1), Some(2), Some(1), Some(1)]),
                Live(vec![1]),
                Resolves(2, 1),
                Resolves(1, 1),
                Idents(1, vec![("anonymous_id", "a1"), ("user_id", "u1")]),
                Trait(1, "plan", "\"free\""),
                MergeCount(1, 1),
                Merges(vec![(
                    3,
                    1,
                    vec![2],
                    vec![("user_id", "u1"), ("anonymous_id", "a1")],
                )]),
            ],
        ),
        case(
            "one event merges three profiles; the newest trait value wins",
            default_rules(),
            seq(vec![
                json!({"type": "page", "anonymousId": "a1"}),
                json!({"type": "identify", "anonymousId": "a2", "traits": {"email": "e2@x.com", "plan": "free"}}),
                json!({"type": "identify", "userId": "u3", "traits": {"plan": "pro"}}),
                json!({"type": "identify", "userId": "u3", "anonymousId": "a1", "traits": {"email": "e2@x.com"}}),
            ]),
            vec![
                Returned(vec![Some(1), Some(2), Some(3), Some(1)]),
                Live(vec![1]),
                Resolves(2, 1),
                Resolves(3, 1),
                MergeCount(1, 2),
                Trait(1, "plan", "\"pro\""),
                Merges(vec![(
                    4,
                    1,
                    vec![2, 3],
                    vec![
                        ("user_id", "u3"),
                        ("email", "e2@x.com"),
                        ("anonymous_id", "a1"),
                    ],
                )]),
                // Rows keep the key their profile had when committed; absorbed rows move them.
                History("plan", vec![(2, 2, "\"free\""), (3, 3, "\"pro\"")]),
            ],
        ),
        case(
            "max_merges caps how many profiles one profile may absorb",
            json!({"max_merges": 1}),
            seq(vec![
                json!({"type": "page", "anonymousId": "a1"}),
                json!({"type": "identify", "anonymousId": "a2", "traits": {"email": "e2@x.com"}}),
                json!({"type": "identify", "anonymousId": "a3", "traits": {"phone": "+15550000003"}}),
                json!({"type": "identify", "anonymousId": "a1", "traits": {"email": "e2@x.com"}}),
                json!({"type": "identify", "anonymousId": "a1", "traits": {"phone": "+15550000003"}}),
            ]),
            vec![
                Returned(vec![Some(1), Some(2), Some(3), Some(1), Some(3)]),
                Live(vec![1, 3]),
                MergeCount(1, 1),
                Idents(
                    1,
                    vec![
                        ("anonymous_id", "a1"),
                        ("anonymous_id", "a2"),
                        ("email", "e2@x.com"),
                    ],
                ),
                Idents(3, vec![("anonymous_id", "a3"), ("phone", "+15550000003")]),
            ],
        ),
        case(
            "max_identifiers caps growth and the merges that would pass it",
            json!({"max_identifiers": 3}),
            seq(vec![
                json!({"type": "identify", "userId": "u1", "anonymousId": "a1", "traits": {"email": "e1@x.com"}}),
                json!({"type": "track", "event": "E", "userId": "u1", "anonymousId": "a2"}),
                json!({"type": "page", "anonymousId": "a2"}),
                json!({"type": "identify", "anonymousId": "a2", "traits": {"email": "e1@x.com"}}),
            ]),
            vec![
                Returned(vec![Some(1), Some(1), Some(3), Some(1)]),
                Live(vec![1, 3]),
                Idents(
                    1,
                    vec![
                        ("anonymous_id", "a1"),
                        ("email", "e1@x.com"),
                        ("user_id", "u1"),
                    ],
                ),
                Idents(3, vec![("anonymous_id", "a2")]),
                Merges(vec![]),
            ],
        ),
        case(
            "emails are trimmed and lower-cased, for matching and for lookups",
            default_rules(),
            seq(vec![
                json!({"type": "identify", "userId": "u1", "traits": {"email": "  Jane.Doe@Example.COM "}}),
                json!({"type": "page", "anonymousId": "a2", "context": {"traits": {"email": "jane.doe@example.com"}}}),
            ]),
            vec![
                Returned(vec![Some(1), Some(1)]),
                Idents(
                    1,
                    vec![
                        ("anonymous_id", "a2"),
                        ("email", "jane.doe@example.com"),
                        ("user_id", "u1"),
                    ],
                ),
                Lookup("email", "JANE.DOE@example.com ".into(), Some(1)),
                // The trait keeps what was sent.
                History(
                    "email",
                    vec![
                        (1, 1, "\"  Jane.Doe@Example.COM \""),
                        (1, 2, "\"jane.doe@example.com\""),
                    ],
                ),
            ],
        ),
        case(
            "phones become E.164 when they say their country; others keep their digits",
            default_rules(),
            seq(vec![
                json!({"type": "identify", "userId": "u1", "traits": {"phone": "+1 (555) 010-0001"}}),
                json!({"type": "identify", "anonymousId": "a2", "traits": {"phone": "001 555 010 0001"}}),
                json!({"type": "identify", "anonymousId": "a3", "traits": {"phone": "555-010-0001"}}),
                json!({"type": "identify", "anonymousId": "a4", "traits": {"phone": "call me"}}),
                json!({"type": "identify", "anonymousId": "a5", "traits": {"phone": "5550100001"}}),
            ]),
            vec![
                Returned(vec![Some(1), Some(1), Some(3), Some(4), Some(3)]),
                Idents(
                    1,
                    vec![
                        ("anonymous_id", "a2"),
                        ("phone", "+15550100001"),
                        ("user_id", "u1"),
                    ],
                ),
                Idents(
                    3,
                    vec![
                        ("anonymous_id", "a3"),
                        ("anonymous_id", "a5"),
                        ("phone", "5550100001"),
                    ],
                ),
                Idents(4, vec![("anonymous_id", "a4")]),
                Lookup("phone", "+1 555 010 0001".into(), Some(1)),
            ],
        ),
        case(
            "phone_country_code completes national numbers",
            json!({"phone_country_code": "+44"}),
            seq(vec![
                json!({"type": "identify", "userId": "u1", "traits": {"phone": "+44 20 7946 0958"}}),
                json!({"type": "identify", "anonymousId": "a2", "traits": {"phone": "020 7946 0958"}}),
                json!({"type": "identify", "anonymousId": "a3", "traits": {"phone": "44 20 7946 0958"}}),
                json!({"type": "identify", "anonymousId": "a4", "traits": {"phone": "20 7946 0958"}}),
                json!({"type": "identify", "anonymousId": "a5", "traits": {"phone": "+1 555 010 0001"}}),
            ]),
            vec![
                Returned(vec![Some(1), Some(1), Some(1), Some(1), Some(5)]),
                Idents(
                    1,
                    vec![
                        ("anonymous_id", "a2"),
                        ("anonymous_id", "a3"),
                        ("anonymous_id", "a4"),
                        ("phone", "+442079460958"),
                        ("user_id", "u1"),
                    ],
                ),
                Idents(5, vec![("anonymous_id", "a5"), ("phone", "+15550100001")]),
                Lookup("phone", "020 7946 0958".into(), Some(1)),
            ],
        ),
        case(
            "a configured custom type from context.externalIds; unknown types are ignored",
            json!({"identifiers": {"crm_id": {"priority": 2, "limit": 1}}}),
            seq(vec![
                json!({"type": "track", "event": "E", "anonymousId": "a1", "context": {"externalIds": [
                    {"id": "C-1", "type": "crm_id", "collection": "users", "encoding": "none"}]}}),
                json!({"type": "track", "event": "E", "anonymousId": "a2", "context": {"externalIds": [
                    {"id": "C-1", "type": "crm_id", "collection": "users", "encoding": "none"},
                    {"id": "z-9", "type": "shoe_size", "collection": "users", "encoding": "none"},
                    {"id": " A@X.com", "type": "email", "collection": "users", "encoding": "none"}]}}),
                // A second crm id with an anonymous id of the first profile: the anonymous id
                // (lower priority) is dropped, the new crm id starts a profile.
                json!({"type": "track", "event": "E", "anonymousId": "a1", "context": {"externalIds": [
                    {"id": "C-2", "type": "crm_id", "collection": "users", "encoding": "none"}]}}),
                json!({"type": "page", "anonymousId": "a4", "context": {"externalIds": [
                    {"id": "z-9", "type": "shoe_size", "collection": "users", "encoding": "none"}]}}),
            ]),
            vec![
                Returned(vec![Some(1), Some(1), Some(3), Some(4)]),
                Idents(
                    1,
                    vec![
                        ("anonymous_id", "a1"),
                        ("anonymous_id", "a2"),
                        ("crm_id", "C-1"),
                        ("email", "a@x.com"),
                    ],
                ),
                Idents(3, vec![("crm_id", "C-2")]),
                Idents(4, vec![("anonymous_id", "a4")]),
                Lookup("shoe_size", "z-9".into(), None),
            ],
        ),
        case(
            "a configured custom type read from a trait path, numbers included",
            json!({"identifiers": {"account_number": {"trait": "billing.account_number", "limit": 1}}}),
            seq(vec![
                json!({"type": "identify", "userId": "u1", "traits": {"billing": {"account_number": 1234}}}),
                json!({"type": "track", "event": "E", "anonymousId": "a2",
                       "context": {"traits": {"billing": {"account_number": "1234"}}}}),
                json!({"type": "identify", "anonymousId": "a3", "traits": {"billing": {"account_number": {"x": 1}}}}),
            ]),
            vec![
                Returned(vec![Some(1), Some(1), Some(3)]),
                Idents(
                    1,
                    vec![
                        ("account_number", "1234"),
                        ("anonymous_id", "a2"),
                        ("user_id", "u1"),
                    ],
                ),
                Idents(3, vec![("anonymous_id", "a3")]),
            ],
        ),
        case(
            "context.device.id and advertisingId are identifiers",
            default_rules(),
            seq(vec![
                json!({"type": "track", "event": "E", "anonymousId": "a1",
                       "context": {"device": {"id": "dev-1", "advertisingId": "ad-1"}}}),
                json!({"type": "screen", "name": "S", "anonymousId": "a2", "context": {"device": {"id": "dev-1"}}}),
                json!({"type": "track", "event": "E", "userId": "u3", "context": {"device": {"advertisingId": "ad-1"}}}),
                json!({"type": "track", "event": "E", "anonymousId": "a4", "context": {"device": {"id": 77}}}),
            ]),
            vec![
                Returned(vec![Some(1), Some(1), Some(1), Some(4)]),
                Idents(
                    1,
                    vec![
                        ("advertising_id", "ad-1"),
                        ("anonymous_id", "a1"),
                        ("anonymous_id", "a2"),
                        ("device_id", "dev-1"),
                        ("user_id", "u3"),
                    ],
                ),
                Idents(4, vec![("anonymous_id", "a4"), ("device_id", "77")]),
            ],
        ),
        case(
            "a disabled type joins nothing",
            json!({"identifiers": {"device_id": {"enabled": false}}}),
            seq(vec![
                json!({"type": "track", "event": "E", "anonymousId": "a1", "context": {"device": {"id": "dev-1"}}}),
                json!({"type": "track", "event": "E", "anonymousId": "a2", "context": {"device": {"id": "dev-1"}}}),
            ]),
            vec![
                Returned(vec![Some(1), Some(2)]),
                Lookup("device_id", "dev-1".into(), None),
            ],
        ),
        case(
            "numeric ids are their text",
            default_rules(),
            seq(vec![
                json!({"type": "identify", "userId": 42, "anonymousId": "a1"}),
                json!({"type": "track", "event": "E", "userId": "42"}),
                json!({"type": "page", "anonymousId": 7}),
                json!({"type": "page", "anonymousId": "7"}),
            ]),
            vec![
                Returned(vec![Some(1), Some(1), Some(3), Some(3)]),
                Lookup("user_id", "42".into(), Some(1)),
                Idents(3, vec![("anonymous_id", "7")]),
            ],
        ),
    ]
}

#[test]
fn segment_identity_scenarios() {
    for c in matching_cases() {
        run(&c);
    }
}

/// Segment's default blocked values, as strings and as JSON numbers: none ever joins two
/// profiles, and an event carrying only a blocked value belongs to no profile.
#[test]
fn blocked_values_never_join_profiles() {
    let blocked = [
        json!(""),
        json!("   "),
        json!("null"),
        json!(" NULL "),
        json!("undefined"),
        json!("Undefined"),
        json!("anonymous"),
        json!("-1"),
        json!(-1),
        json!(0),
        json!("0000-0000"),
        json!("none"),
        json!("unknown"),
        json!(null),
        json!(true),
        json!({"id": "u1"}),
    ];
    for v in blocked {
        let raw = match &v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        for field in ["userId", "anonymousId"] {
            let other = if field == "userId" {
                "anonymousId"
            } else {
                "userId"
            };
            let ty = if field == "userId" {
                "user_id"
            } else {
                "anonymous_id"
            };
            let c = case(
                &format!("blocked {field} {v}"),
                default_rules(),
                seq(vec![
                    json!({"type": "identify", field: v, other: "x1"}),
                    json!({"type": "identify", field: v, other: "x2"}),
                    json!({"type": "track", "event": "E", field: v}),
                    json!({"type": "identify", field: "ok", "traits": {"email": v}}),
                    json!({"type": "identify", other: "x5", "traits": {"email": v}}),
                ]),
                vec![
                    Returned(vec![Some(1), Some(2), None, Some(4), Some(5)]),
                    Live(vec![1, 2, 4, 5]),
                    Lookup(ty, raw.clone(), None),
                    Lookup("email", raw.clone(), None),
                ],
            );
            run(&c);
        }
    }
}
