//! Table tests of what profiles hold: last-write-wins traits and their history rows,
//! `context.traits`, accounts from `group` calls and their members across merges, and the
//! times of merged profiles.

use super::table::*;
use super::*;

fn profile_cases() -> Vec<Case> {
    vec![
        case(
            "a merge spans both profiles' times, whatever order the events came in",
            default_rules(),
            vec![
                (at(0), json!({"type": "identify", "userId": "u1"})),
                (
                    at(214),
                    json!({"type": "identify", "anonymousId": "a1", "traits": {"plan": "pro"}}),
                ),
                // Older than what the absorbed profile holds.
                (
                    at(5),
                    json!({"type": "identify", "userId": "u1", "anonymousId": "a1"}),
                ),
                (at(100), json!({"type": "page", "anonymousId": "a4"})),
                (at(50), json!({"type": "identify", "userId": "u5"})),
                (
                    at(60),
                    json!({"type": "identify", "userId": "u5", "anonymousId": "a4"}),
                ),
            ],
            vec![
                Returned(vec![Some(1), Some(2), Some(1), Some(4), Some(5), Some(4)]),
                Live(vec![1, 4]),
                Times(1, at(0), at(214)),
                Times(4, at(50), at(100)),
            ],
        ),
        case(
            "identify traits: last write wins by event time, late older values go to history",
            default_rules(),
            vec![
                (
                    at(10),
                    json!({"type": "identify", "userId": "u1", "traits": {"plan": "free", "name": "Jo"}}),
                ),
                (
                    at(20),
                    json!({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}}),
                ),
                // Older than the last, arriving later.
                (
                    at(15),
                    json!({"type": "identify", "userId": "u1", "traits": {"plan": "trial", "name": "Joanna"}}),
                ),
                // Older and equal to what is there: a row all the same, since as of its time
                // the value was this (the current one may have been set later).
                (
                    at(5),
                    json!({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}}),
                ),
                // Newer and equal: refreshes the time, no row.
                (
                    at(30),
                    json!({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}}),
                ),
            ],
            vec![
                Returned(vec![Some(1); 5]),
                Trait(1, "plan", "\"pro\""),
                Trait(1, "name", "\"Joanna\""),
                History(
                    "plan",
                    vec![
                        (1, 1, "\"free\""),
                        (1, 2, "\"pro\""),
                        (1, 3, "\"trial\""),
                        (1, 4, "\"pro\""),
                    ],
                ),
                History("name", vec![(1, 1, "\"Jo\""), (1, 3, "\"Joanna\"")]),
            ],
        ),
        case(
            "context.traits on a track call update the profile; properties do not",
            default_rules(),
            seq(vec![
                json!({"type": "identify", "userId": "u1", "traits": {"plan": "free"}}),
                json!({"type": "track", "event": "Upgraded", "userId": "u1", "properties": {"tier": 2},
                       "context": {"traits": {"plan": "pro", "company": {"name": "Acme"}}}}),
            ]),
            vec![
                Trait(1, "plan", "\"pro\""),
                Trait(1, "company", "{\"name\":\"Acme\"}"),
                NoTrait(1, "tier"),
                History("plan", vec![(1, 1, "\"free\""), (1, 2, "\"pro\"")]),
            ],
        ),
        case(
            "group creates an account with its traits and links the member",
            default_rules(),
            seq(vec![
                json!({"type": "identify", "userId": "u1", "traits": {"name": "Jo"}}),
                json!({"type": "group", "groupId": "g1", "userId": "u1",
                       "traits": {"name": "Acme", "plan": "enterprise"}}),
                json!({"type": "group", "groupId": " g1 ", "anonymousId": "a9", "traits": {"employees": 100}}),
                json!({"type": "group", "groupId": "g2"}),
                json!({"type": "group", "groupId": "g1", "userId": "u1"}),
            ]),
            vec![
                Returned(vec![Some(1), Some(1), Some(3), None, Some(1)]),
                Account(
                    "g1",
                    2,
                    vec![
                        ("employees", "100"),
                        ("name", "\"Acme\""),
                        ("plan", "\"enterprise\""),
                    ],
                    vec![1, 3],
                ),
                Account("g2", 4, vec![], vec![]),
                Accounts(1, vec![2]),
                Accounts(3, vec![2]),
                // Group traits describe the account, not the person.
                Trait(1, "name", "\"Jo\""),
                NoTrait(3, "employees"),
            ],
        ),
        case(
            "accounts follow their members into merges",
            default_rules(),
            seq(vec![
                json!({"type": "group", "groupId": "g1", "anonymousId": "a1"}),
                json!({"type": "identify", "userId": "u1"}),
                json!({"type": "group", "groupId": "g2", "userId": "u1"}),
                json!({"type": "identify", "userId": "u1", "anonymousId": "a1"}),
            ]),
            vec![
                Returned(vec![Some(1), Some(2), Some(2), Some(1)]),
                Accounts(1, vec![1, 3]),
                Account("g1", 1, vec![], vec![1]),
                Account("g2", 3, vec![], vec![1]),
            ],
        ),
    ]
}

#[test]
fn profile_scenarios() {
    for c in profile_cases() {
        run(&c);
    }
}
