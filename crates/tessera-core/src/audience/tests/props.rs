//! Property tests over random definitions: the canonical text parses back to the same tree,
//! the JSON form reads back to the same tree, and the parser never panics on token soup.
//! Names and strings are drawn from pools rich in the awkward cases (keywords, quotes,
//! backslashes, dots, non-ASCII, `properties`), mixed with random text.

use super::*;
use crate::audience::ast::normalize_prop_path;
use crate::time::parse_iso8601;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::Number;

const CASES: u32 = 200;

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "country",
            "plan",
            "a",
            "properties",
            "count",
            "and",
            "NOT",
            "in",
            "true",
            "x y",
            "a.b",
            "é",
            "`q`",
            r"back\slash",
            "Name_2",
            "_",
            "9lives",
            "#",
        ])
        .prop_map(String::from),
        "[A-Za-z_][A-Za-z0-9_]{0,6}",
        "\\PC{1,6}",
    ]
}

fn path() -> impl Strategy<Value = Path> {
    prop::collection::vec(segment(), 1..4)
}

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "",
            "DE",
            r#"say "hi""#,
            r"a\b",
            "line\nbreak",
            "# no comment",
            "`tick`",
            "ünï",
            "\\",
        ])
        .prop_map(String::from),
        "\\PC{0,10}",
    ]
}

fn number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from),
        any::<u64>().prop_map(Number::from),
        (-1e300..1e300f64).prop_map(|f| Number::from_f64(f).expect("finite")),
        select(vec![0.0, -0.0, 0.1, 1e-7, 1e300, 2.5, 3.0, -1.5e-300])
            .prop_map(|f| Number::from_f64(f).expect("finite")),
    ]
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        string().prop_map(Literal::String),
        number().prop_map(Literal::Number),
        any::<bool>().prop_map(Literal::Bool),
        Just(Literal::Null),
    ]
}

fn period() -> impl Strategy<Value = Period> {
    (
        prop_oneof![0..1000u32, Just(u32::MAX)],
        select(Unit::ALL.to_vec()),
    )
        .prop_map(|(amount, unit)| Period { amount, unit })
}

fn date() -> impl Strategy<Value = DateLit> {
    select(vec![
        "2024-05-01",
        "2024-05-01T12:30:00Z",
        "2023-12-31T23:59:59.999+02:00",
        "1970-01-01 00:00",
    ])
    .prop_map(|text| DateLit {
        text: text.to_owned(),
        ms: parse_iso8601(text).expect("valid date"),
    })
}

fn test_kind() -> impl Strategy<Value = Test> {
    prop_oneof![
        (select(CmpOp::ALL.to_vec()), literal()).prop_map(|(op, lit)| Test::Compare(op, lit)),
        prop::collection::vec(literal(), 1..4).prop_map(Test::In),
        prop::collection::vec(literal(), 1..4).prop_map(Test::NotIn),
        string().prop_map(Test::Contains),
        string().prop_map(Test::StartsWith),
        Just(Test::Exists),
        Just(Test::NotExists),
        period().prop_map(Test::Within),
        date().prop_map(Test::Before),
        date().prop_map(Test::After),
    ]
}

fn predicate(prop: bool) -> impl Strategy<Value = Predicate> {
    (path(), test_kind()).prop_map(move |(path, test)| Predicate {
        pos: Pos::UNKNOWN,
        path: if prop {
            normalize_prop_path(path)
        } else {
            path
        },
        test,
    })
}

/// AND / OR / NOT over `leaf`, with groups of two or three.
fn logic<L: std::fmt::Debug + Clone + 'static>(
    leaf: impl Strategy<Value = L> + 'static,
    depth: u32,
) -> impl Strategy<Value = Logic<L>> {
    leaf.prop_map(Logic::Leaf)
        .prop_recursive(depth, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..4).prop_map(Logic::And),
                prop::collection::vec(inner.clone(), 2..4).prop_map(Logic::Or),
                inner.prop_map(|e| Logic::Not(Box::new(e))),
            ]
        })
}

fn window() -> impl Strategy<Value = Window> {
    prop_oneof![Just(Window::Ever), period().prop_map(Window::Last)]
}

fn occurrence() -> impl Strategy<Value = Occurrence> {
    prop_oneof![
        (0..5u32).prop_map(Occurrence::AtLeast),
        (0..5u32).prop_map(Occurrence::AtMost),
        (0..5u32).prop_map(Occurrence::Exactly),
        Just(Occurrence::Never),
    ]
}

fn filter() -> impl Strategy<Value = Option<PropExpr>> {
    prop::option::of(logic(predicate(true), 2))
}

fn condition() -> impl Strategy<Value = Condition> {
    prop_oneof![
        predicate(false).prop_map(Condition::Trait),
        (string(), filter(), occurrence(), window()).prop_map(
            |(event, filter, occurrence, window)| Condition::Event(EventCond {
                pos: Pos::UNKNOWN,
                event,
                filter,
                occurrence,
                window,
            })
        ),
        string().prop_map(|name| Condition::InAudience(AudienceRef {
            pos: Pos::UNKNOWN,
            name
        })),
    ]
}

fn audience() -> impl Strategy<Value = Audience> {
    logic(condition(), 3).prop_map(|root| Audience { root })
}

fn computed_def() -> impl Strategy<Value = ComputedDef> {
    (
        select(Aggregate::ALL.to_vec()),
        path(),
        string(),
        filter(),
        window(),
    )
        .prop_map(|(aggregate, property, event, filter, window)| ComputedDef {
            pos: Pos::UNKNOWN,
            aggregate,
            property: aggregate
                .needs_property()
                .then(|| normalize_prop_path(property)),
            event,
            filter,
            window,
        })
}

/// Fragments of the language, for random text that is often almost valid.
fn soup() -> impl Strategy<Value = String> {
    let token = select(vec![
        "a",
        "b.c",
        "`x y`",
        "=",
        "!=",
        ">",
        ">=",
        "<",
        "<=",
        "and",
        "or",
        "not",
        "(",
        ")",
        ",",
        "in",
        "exists",
        "contains",
        "\"s\"",
        "1",
        "-2.5",
        "1e3",
        "true",
        "null",
        "performed",
        "did",
        "perform",
        "where",
        "at",
        "least",
        "most",
        "exactly",
        "3",
        "times",
        "within",
        "in the last",
        "days",
        "ever",
        "audience",
        "before",
        "\"2024-05-01\"",
        "#",
        "\n",
        "\"",
        "`",
        "@",
        "é",
    ]);
    prop::collection::vec(token, 0..16).prop_map(|t| t.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn printed_audiences_parse_back_to_the_same_tree(a in audience()) {
        let text = a.to_string();
        let back = parse_audience(&text)
            .map_err(|e| TestCaseError::fail(format!("{text}\n{e}")))?;
        prop_assert_eq!(&back, &a, "{}", text);
        prop_assert_eq!(back.to_string(), text);
    }

    #[test]
    fn printed_computed_traits_parse_back_to_the_same_tree(c in computed_def()) {
        let text = c.to_string();
        let back = parse_computed(&text)
            .map_err(|e| TestCaseError::fail(format!("{text}\n{e}")))?;
        prop_assert_eq!(back, c, "{}", text);
    }

    #[test]
    fn json_forms_read_back_to_the_same_tree(a in audience(), c in computed_def()) {
        let json = a.to_json();
        let back = Audience::from_json(&json)
            .map_err(|e| TestCaseError::fail(format!("{json}\n{e}")))?;
        prop_assert_eq!(back, a);
        let json = c.to_json();
        let back = ComputedDef::from_json(&json)
            .map_err(|e| TestCaseError::fail(format!("{json}\n{e}")))?;
        prop_assert_eq!(back, c);
    }

    #[test]
    fn text_and_json_agree(a in audience()) {
        let from_text = parse_audience(&a.to_string()).expect("printed text parses");
        prop_assert_eq!(from_text.to_json(), a.to_json());
    }

    #[test]
    fn the_parser_never_panics_and_what_it_accepts_round_trips(text in soup()) {
        if let Ok(a) = parse_audience(&text) {
            prop_assert_eq!(parse_audience(&a.to_string()), Ok(a));
        }
        if let Ok(c) = parse_computed(&text) {
            prop_assert_eq!(parse_computed(&c.to_string()), Ok(c));
        }
    }

    #[test]
    fn the_checker_and_dependencies_accept_any_tree(a in audience()) {
        let catalog = Catalog::new()
            .with_computed("a", ValueKind::Number)
            .with_computed("plan", ValueKind::List)
            .with_audience("DE");
        let _ = check(&a, &catalog);
        let d = a.dependencies(&catalog);
        prop_assert!(d.traits.is_disjoint(&d.computed_traits));
    }
}
