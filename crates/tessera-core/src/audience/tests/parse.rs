//! The forms the parser accepts, the trees they give, and their canonical text.

use super::*;

#[test]
fn the_contract_example_parses_to_two_comparisons() {
    let a = aud(r#"country = "DE" and lifetime_value > 100"#);
    let expected = Logic::And(vec![
        trait_leaf("country", Test::Compare(CmpOp::Eq, string_lit("DE"))),
        trait_leaf("lifetime_value", Test::Compare(CmpOp::Gt, number_lit(100))),
    ]);
    assert_eq!(a.root, expected);
    assert_eq!(a.to_string(), r#"country = "DE" and lifetime_value > 100"#);
}

#[test]
fn the_issue_example_parses_to_a_trait_and_an_event_condition() {
    let text = r#"country = "DE" and performed "Product Viewed" where category = "jeans" at least 3 times within 30 days"#;
    let a = aud(text);
    let Logic::And(terms) = &a.root else {
        panic!("expected an and: {:?}", a.root)
    };
    let Logic::Leaf(Condition::Event(e)) = &terms[1] else {
        panic!("expected an event condition: {:?}", terms[1])
    };
    assert_eq!(e.event, "Product Viewed");
    assert_eq!(e.occurrence, Occurrence::AtLeast(3));
    assert_eq!(
        e.window,
        Window::Last(Period {
            amount: 30,
            unit: Unit::Days
        })
    );
    assert_eq!(
        e.filter,
        Some(Logic::Leaf(Predicate {
            pos: Pos::UNKNOWN,
            path: vec!["category".into()],
            test: Test::Compare(CmpOp::Eq, string_lit("jeans")),
        }))
    );
    assert_eq!(a.to_string(), text);
}

#[test]
fn positions_are_one_based_lines_and_columns_of_each_condition() {
    let a = aud("country = \"DE\"\n  and performed \"X\"\n  or in audience \"vip\"");
    let Logic::Or(terms) = &a.root else {
        panic!("{:?}", a.root)
    };
    let Logic::And(first) = &terms[0] else {
        panic!("{:?}", terms[0])
    };
    let pos = |e: &Expr| match e {
        Logic::Leaf(c) => (c.pos().line, c.pos().column),
        other => panic!("{other:?}"),
    };
    assert_eq!(pos(&first[0]), (1, 1));
    assert_eq!(pos(&first[1]), (2, 7));
    assert_eq!(pos(&terms[1]), (3, 6));
}

#[test]
fn keywords_ignore_case_and_names_keep_it() {
    assert_eq!(
        canon(r#"Country = "DE" AND Performed "X" WITHIN 1 DAY Or NOT Plan EXISTS"#),
        r#"Country = "DE" and performed "X" within 1 day or not Plan exists"#
    );
}

#[test]
fn defaults_and_synonyms_print_in_one_canonical_form() {
    let cases = [
        (r#"performed "X" at least 1 time ever"#, r#"performed "X""#),
        (
            r#"performed "X" in the last 2 weeks"#,
            r#"performed "X" within 2 weeks"#,
        ),
        (
            r#"performed "X" exactly 1 times within 1 hours"#,
            r#"performed "X" exactly 1 time within 1 hour"#,
        ),
        (
            r#"performed "X" at most 0 time in the last 90 minutes"#,
            r#"performed "X" at most 0 times within 90 minutes"#,
        ),
        (
            r#"performed "X" where properties.category = "jeans""#,
            r#"performed "X" where category = "jeans""#,
        ),
        (
            r#"did not perform "X" where (a = 1) ever"#,
            r#"did not perform "X" where a = 1"#,
        ),
        ("((a = 1))", "a = 1"),
        ("a=1", "a = 1"),
        (
            "a=true and b=FALSE and c=Null",
            "a = true and b = false and c = null",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(canon(text), expected, "{text}");
    }
}

#[test]
fn properties_prefix_and_short_form_give_equal_trees() {
    assert_eq!(
        aud(r#"performed "X" where properties.category = "jeans""#),
        aud(r#"performed "X" where category = "jeans""#)
    );
    // A property that is itself called `properties` keeps its prefix in print.
    assert_eq!(
        canon(r#"performed "X" where properties.properties.a = 1"#),
        r#"performed "X" where properties.properties.a = 1"#
    );
    // On traits the prefix is an ordinary path segment.
    assert_ne!(aud("properties.a = 1"), aud("a = 1"));
}

#[test]
fn and_binds_tighter_than_or_and_parentheses_print_only_where_needed() {
    let a = aud("a = 1 or b = 2 and c = 3");
    assert!(matches!(&a.root, Logic::Or(t) if matches!(t[1], Logic::And(_))));
    let cases = [
        ("a = 1 or b = 2 and c = 3", "a = 1 or b = 2 and c = 3"),
        ("(a = 1 or b = 2) and c = 3", "(a = 1 or b = 2) and c = 3"),
        ("(a = 1 and b = 2) or c = 3", "a = 1 and b = 2 or c = 3"),
        ("(a = 1 and b = 2) and c = 3", "(a = 1 and b = 2) and c = 3"),
        ("a = 1 and b = 2 and c = 3", "a = 1 and b = 2 and c = 3"),
        ("not (a = 1 or b = 2)", "not (a = 1 or b = 2)"),
        ("not not a = 1", "not not a = 1"),
        ("not (not (a = 1))", "not not a = 1"),
    ];
    for (text, expected) in cases {
        assert_eq!(canon(text), expected, "{text}");
    }
    assert!(matches!(aud("a = 1 and b = 2 and c = 3").root, Logic::And(t) if t.len() == 3));
}

#[test]
fn every_trait_test_form_parses_and_prints() {
    let forms = [
        r#"plan = "pro""#,
        r#"plan != "pro""#,
        "ltv > 100",
        "ltv >= -2.5",
        "ltv < 1e+300",
        "ltv <= 0",
        r#"plan in ("pro", "team", 3, true, null)"#,
        r#"plan not in ("free")"#,
        r#"email contains "@gmail.""#,
        r#"email starts_with "ann""#,
        "phone exists",
        "phone not exists",
        "last_seen within 30 days",
        r#"signup before "2024-05-01""#,
        r#"signup after "2024-05-01T12:30:00+02:00""#,
        "address.city exists",
    ];
    for text in forms {
        assert_eq!(canon(text), text);
    }
}

#[test]
fn literals_keep_their_exact_value() {
    let cases: [(&str, Literal); 7] = [
        ("a = -5", number_lit(-5)),
        (
            "a = 1.5",
            Literal::Number(serde_json::Number::from_f64(1.5).unwrap()),
        ),
        (
            "a = 1e3",
            Literal::Number(serde_json::Number::from_f64(1000.0).unwrap()),
        ),
        ("a = 18446744073709551615", Literal::Number(u64::MAX.into())),
        (
            r#"a = "say \"hi\" \\ bye""#,
            string_lit(r#"say "hi" \ bye"#),
        ),
        ("a = \"two\nlines\"", string_lit("two\nlines")),
        ("a = false", Literal::Bool(false)),
    ];
    for (text, lit) in cases {
        assert_eq!(
            aud(text).root,
            trait_leaf("a", Test::Compare(CmpOp::Eq, lit)),
            "{text}"
        );
        assert_eq!(aud(&canon(text)), aud(text), "{text}");
    }
    assert_eq!(
        canon(r#"a = "say \"hi\" \\ bye""#),
        r#"a = "say \"hi\" \\ bye""#
    );
}

#[test]
fn back_quoted_names_hold_any_text_and_keywords_print_quoted() {
    let a = aud(r#"`first name` = "Ann" and address.`postal code` = "10115""#);
    assert_eq!(
        a.root,
        Logic::And(vec![
            trait_leaf("first name", Test::Compare(CmpOp::Eq, string_lit("Ann"))),
            Logic::Leaf(Condition::Trait(Predicate {
                pos: Pos::UNKNOWN,
                path: vec!["address".into(), "postal code".into()],
                test: Test::Compare(CmpOp::Eq, string_lit("10115")),
            })),
        ])
    );
    // Keywords are only keywords where the grammar expects them.
    assert_eq!(canon("count > 3"), "`count` > 3");
    assert_eq!(canon("`a.b` = 1"), "`a.b` = 1");
    assert_eq!(canon(r"`tick\`q` = 1"), r"`tick\`q` = 1");
    assert_eq!(aud("`count` > 3"), aud("count > 3"));
    assert_eq!(aud("`plan` = 1"), aud("plan = 1"));
}

#[test]
fn comments_and_blank_lines_are_ignored() {
    let text = "# Germans who spend\n\ncountry = \"DE\" # the country trait\n  and ltv > 100 # €\n";
    assert_eq!(canon(text), r#"country = "DE" and ltv > 100"#);
    assert_eq!(
        canon(r##"a = "# not a comment""##),
        r##"a = "# not a comment""##
    );
}

#[test]
fn event_conditions_take_filters_counts_and_windows() {
    let forms = [
        r#"performed "Order Completed""#,
        r#"performed "Order Completed" at least 2 times"#,
        r#"performed "Order Completed" at most 3 times within 7 days"#,
        r#"performed "Order Completed" exactly 0 times"#,
        r#"performed "Order Completed" where (total > 50 and currency = "EUR") at least 2 times within 90 days"#,
        r#"performed "Order Completed" where (not coupon exists)"#,
        r#"performed "Signed Up" where plan in ("pro", "team")"#,
        r#"performed "Visit" where ts within 3 hours within 7 days"#,
        r#"did not perform "Order Completed" within 30 days"#,
        r#"did not perform "Order Completed" where (total > 50 or free = true) within 30 days"#,
        r#"in audience "VIP customers""#,
        r#"not in audience "churned""#,
        r#"performed "page" where name = "Pricing" and not performed "Signed Up""#,
    ];
    for text in forms {
        assert_eq!(canon(text), text);
    }
    assert!(matches!(
        aud(r#"not in audience "x""#).root,
        Logic::Not(ref inner) if matches!(**inner, Logic::Leaf(Condition::InAudience(_)))
    ));
    assert!(matches!(
        aud(r#"did not perform "x""#).root,
        Logic::Leaf(Condition::Event(EventCond {
            occurrence: Occurrence::Never,
            ..
        }))
    ));
}

#[test]
fn a_single_condition_filter_ends_before_the_next_and() {
    // `where a = 1 and b = 2` filters on `a` only; `b` is a trait. Parentheses group filters.
    let a = aud(r#"performed "X" where a = 1 and b = 2"#);
    let Logic::And(terms) = &a.root else {
        panic!("{:?}", a.root)
    };
    assert!(matches!(terms[1], Logic::Leaf(Condition::Trait(_))));
}

#[test]
fn computed_traits_parse_every_aggregate() {
    let forms = [
        (
            r#"count "Product Viewed" where category = "jeans" within 30 days"#,
            None,
        ),
        (r#"sum revenue of "Order Completed" within 90 days"#, None),
        (r#"most_frequent category of "Product Viewed""#, None),
        (
            r#"unique_count sku of "Product Viewed" within 7 days"#,
            None,
        ),
        (r#"avg total of "Order Completed""#, None),
        (r#"min total of "Order Completed""#, None),
        (r#"max total of "Order Completed""#, None),
        (r#"first utm.source of "Visit""#, None),
        (r#"last plan of "Upgraded""#, None),
        (
            r#"unique category of "Product Viewed" where (price > 10)"#,
            Some(r#"unique category of "Product Viewed" where price > 10"#),
        ),
        (r#"COUNT of "X""#, Some(r#"count "X""#)),
        (
            r#"sum of properties.revenue of "X" in the last 1 week"#,
            Some(r#"sum revenue of "X" within 1 week"#),
        ),
        (r#"max `count` of "X" ever"#, Some(r#"max `count` of "X""#)),
    ];
    for (text, expected) in forms {
        assert_eq!(
            computed(text).to_string(),
            expected.unwrap_or(text),
            "{text}"
        );
    }
    let c = computed(r#"sum revenue of "Order Completed" within 90 days"#);
    assert_eq!(c.aggregate, Aggregate::Sum);
    assert_eq!(c.property, Some(vec!["revenue".to_owned()]));
    assert_eq!(c.event, "Order Completed");
    assert_eq!((c.pos.line, c.pos.column), (1, 1));
}

#[test]
fn nesting_up_to_the_limit_parses() {
    let depth = MAX_DEPTH as usize;
    let text = format!("{}a = 1{}", "(".repeat(depth), ")".repeat(depth));
    assert_eq!(canon(&text), "a = 1");
    let nots = format!("{}a = 1", "not ".repeat(depth));
    assert_eq!(canon(&nots), nots);
}

#[test]
fn dependencies_list_traits_computed_traits_events_and_audiences() {
    let catalog = Catalog::new().with_computed("views_30d", ValueKind::Number);
    let a = aud(
        r#"address.city = "Berlin" and views_30d > 3 and (performed "Product Viewed" or did not perform "Order Completed") and not in audience "churned""#,
    );
    let d = a.dependencies(&catalog);
    assert_eq!(d.traits, ["address".to_owned()].into());
    assert_eq!(d.computed_traits, ["views_30d".to_owned()].into());
    assert_eq!(
        d.events,
        ["Order Completed".to_owned(), "Product Viewed".to_owned()].into()
    );
    assert_eq!(d.audiences, ["churned".to_owned()].into());
    assert!(!d.has_time_windows);

    let relative = [
        r#"performed "X" within 1 day"#,
        "seen within 3 days",
        r#"performed "X" where at within 1 hour"#,
    ];
    for text in relative {
        assert!(aud(text).dependencies(&catalog).has_time_windows, "{text}");
    }
    assert!(
        !aud(r#"seen after "2024-01-01""#)
            .dependencies(&catalog)
            .has_time_windows
    );

    let c = computed(r#"count "X" within 7 days"#).dependencies();
    assert_eq!(c.events, ["X".to_owned()].into());
    assert!(c.has_time_windows);
    assert!(!computed(r#"count "X""#).dependencies().has_time_windows);
}
