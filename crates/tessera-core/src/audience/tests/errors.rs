//! Every parse error: its exact message, line and column.

use super::*;

const VALUE: &str = "a value (a string, number, true, false or null)";
const CONDITION: &str = "expected a condition (a trait name, \"performed\", \"did not perform\", \
                         \"in audience\", \"not\" or \"(\")";
const OPERATORS: &str = "(=, !=, >, >=, <, <=, in, not in, contains, starts_with, exists, not \
                         exists, within, before or after)";

fn audience_error(text: &str) -> String {
    match parse_audience(text) {
        Ok(a) => panic!("{text:?} should not parse, but gave {a}"),
        Err(e) => {
            assert!(matches!(e, LangError::Syntax { .. }), "{e:?}");
            assert_eq!(e.code(), "invalid_definition");
            e.to_string()
        }
    }
}

fn computed_error(text: &str) -> String {
    match parse_computed(text) {
        Ok(c) => panic!("{text:?} should not parse, but gave {c}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn audience_errors_name_the_position_what_was_expected_and_what_was_found() {
    let cases: Vec<(&str, String)> = vec![
        (
            "country = and x = 1",
            format!("line 1, column 11: expected {VALUE} after \"=\", found \"and\""),
        ),
        (
            "",
            format!("line 1, column 1: {CONDITION}, found the end of the definition"),
        ),
        (
            "a = 1 and",
            format!("line 1, column 10: {CONDITION}, found the end of the definition"),
        ),
        (
            ") or a = 1",
            format!("line 1, column 1: {CONDITION}, found \")\""),
        ),
        (
            "country \"DE\"",
            format!(
                "line 1, column 9: expected an operator after \"country\" {OPERATORS}, found \
                 the string \"DE\""
            ),
        ),
        (
            "(a = 1 or b = 2",
            "line 1, column 16: expected \")\" to close the \"(\" at line 1, column 1, found \
             the end of the definition"
                .into(),
        ),
        (
            "a = 1 b = 2",
            "line 1, column 7: expected \"and\", \"or\" or the end of the definition, found \"b\""
                .into(),
        ),
        (
            "a = \"DE",
            "line 1, column 5: unterminated string: expected a closing \"".into(),
        ),
        (
            r#"a = "x\ny""#,
            r#"line 1, column 7: unknown escape "\n" in a string; only \" and \\ are allowed"#
                .into(),
        ),
        (
            "country = \"DE\"\nand performed \"X\" at least -1 times",
            "line 2, column 28: expected a whole number (0 or more) after \"least\", found the \
             number -1"
                .into(),
        ),
        (
            "performed Product",
            "line 1, column 11: expected the event name in double quotes after \"performed\", \
             found \"Product\""
                .into(),
        ),
        (
            "did perform \"X\"",
            "line 1, column 5: expected \"not\" after \"did\", found \"perform\"".into(),
        ),
        (
            "did not \"X\"",
            "line 1, column 9: expected \"perform\" after \"not\", found the string \"X\"".into(),
        ),
        (
            "did not perform \"X\" at least 2 times",
            "line 1, column 21: \"did not perform\" takes no count; write \"performed ... at \
             most N times\" instead"
                .into(),
        ),
        (
            "performed \"X\" within 30 parsecs",
            "line 1, column 25: expected a unit (minutes, hours, days or weeks) after \"30\", \
             found \"parsecs\""
                .into(),
        ),
        (
            "performed \"X\" at 3 times",
            "line 1, column 18: expected \"least\" or \"most\" after \"at\", found the number 3"
                .into(),
        ),
        (
            "performed \"X\" at least 3",
            "line 1, column 25: expected \"times\" after \"3\", found the end of the definition"
                .into(),
        ),
        (
            "performed \"X\" exactly times",
            "line 1, column 23: expected a whole number (0 or more) after \"exactly\", found \
             \"times\""
                .into(),
        ),
        (
            "performed \"X\" in last 3 days",
            "line 1, column 18: expected \"the\" after \"in\", found \"last\"".into(),
        ),
        (
            "performed \"X\" at least 5000000000 times",
            "line 1, column 24: 5000000000 is too large; the largest allowed is 4294967295".into(),
        ),
        (
            "performed \"X\" where not a = 1",
            "line 1, column 21: expected a property condition or \"(\" after \"where\", found \
             \"not\""
                .into(),
        ),
        (
            "performed \"X\" where (a = 1 or 5)",
            "line 1, column 31: expected a property condition (a property name, \"not\" or \
             \"(\"), found the number 5"
                .into(),
        ),
        (
            "in \"vip\"",
            "line 1, column 4: expected \"audience\" after \"in\", found the string \"vip\"".into(),
        ),
        (
            "in audience vip",
            "line 1, column 13: expected the audience name in double quotes after \"audience\", \
             found \"vip\""
                .into(),
        ),
        (
            "plan in \"pro\"",
            "line 1, column 9: expected \"(\" and a list of values after \"in\", found the string \
             \"pro\""
                .into(),
        ),
        (
            "plan in (\"a\" \"b\")",
            "line 1, column 14: expected \",\" or \")\" in the list of values, found the string \
             \"b\""
                .into(),
        ),
        (
            "plan in ()",
            format!("line 1, column 10: expected {VALUE} after \"(\", found \")\""),
        ),
        (
            "plan in (\"a\",)",
            format!("line 1, column 14: expected {VALUE} after \",\", found \")\""),
        ),
        (
            "plan not equal \"x\"",
            "line 1, column 10: expected \"in\" or \"exists\" after \"not\", found \"equal\""
                .into(),
        ),
        (
            "email contains 5",
            "line 1, column 16: expected a string in double quotes after \"contains\", found \
             the number 5"
                .into(),
        ),
        (
            "email starts_with x",
            "line 1, column 19: expected a string in double quotes after \"starts_with\", found \
             \"x\""
                .into(),
        ),
        (
            "signup before \"yesterday\"",
            "line 1, column 15: \"yesterday\" is not an ISO-8601 date; expected a date such as \
             \"2024-05-01\" or \"2024-05-01T12:30:00Z\""
                .into(),
        ),
        (
            "signup after 2024",
            "line 1, column 14: expected a date in double quotes after \"after\", such as \
             \"2024-05-01\" or \"2024-05-01T12:30:00Z\", found the number 2024"
                .into(),
        ),
        (
            "signup within 1.5 days",
            "line 1, column 15: expected a whole number (0 or more) after \"within\", found the \
             number 1.5"
                .into(),
        ),
        (
            "a @ 1",
            "line 1, column 3: unexpected character \"@\"".into(),
        ),
        (
            "prénom = \"x\"",
            "line 1, column 3: unexpected character \"é\"; names with other characters go in \
             back-quotes, as in `prénom`"
                .into(),
        ),
        (
            "a ! 1",
            "line 1, column 3: unexpected character \"!\"; the not-equal operator is \"!=\"".into(),
        ),
        (
            "a = 1.",
            "line 1, column 7: expected a digit after \".\"".into(),
        ),
        (
            "a = 1e",
            "line 1, column 7: expected the digits of the exponent".into(),
        ),
        (
            "a = 3days",
            "line 1, column 6: unexpected \"d\" right after the number 3".into(),
        ),
        (
            "a = 99999999999999999999",
            "line 1, column 5: the number 99999999999999999999 is too large".into(),
        ),
        (
            "`` = 1",
            "line 1, column 1: a name in back-quotes cannot be empty".into(),
        ),
        (
            "`abc = 1",
            "line 1, column 1: unterminated name: expected a closing `".into(),
        ),
        (
            "a. = 1",
            "line 1, column 2: unexpected character \".\"".into(),
        ),
        (
            "\n\n  foo",
            format!(
                "line 3, column 6: expected an operator after \"foo\" {OPERATORS}, found the end \
                 of the definition"
            ),
        ),
        (
            "\tcountry = =",
            format!("line 1, column 12: expected {VALUE} after \"=\", found \"=\""),
        ),
        (
            "a = \"long\" and\n# a comment\n  b = \"ü\" and c",
            format!(
                "line 3, column 16: expected an operator after \"c\" {OPERATORS}, found the end of \
                 the definition"
            ),
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(audience_error(text), expected, "{text:?}");
    }
}

#[test]
fn nesting_deeper_than_the_limit_is_an_error_not_a_stack_overflow() {
    let depth = MAX_DEPTH as usize + 1;
    let text = format!("{}a = 1{}", "(".repeat(depth), ")".repeat(depth));
    assert_eq!(
        audience_error(&text),
        format!(
            "line 1, column {depth}: the definition is nested too deeply (more than 64 levels of \
             parentheses and \"not\")"
        )
    );
    let nots = format!("{}a = 1", "not ".repeat(100_000));
    assert!(audience_error(&nots).contains("nested too deeply"));
    let parens = "(".repeat(100_000);
    assert!(audience_error(&parens).contains("nested too deeply"));
}

#[test]
fn long_tokens_are_shortened_in_messages() {
    let long = "x".repeat(100);
    let e = audience_error(&format!("a = 1 {long}"));
    assert!(
        e.ends_with(&format!("found \"{}…\"", "x".repeat(40))),
        "{e}"
    );
}

#[test]
fn computed_trait_errors() {
    let cases = [
        (
            "count revenue of \"Order Completed\"",
            "line 1, column 7: \"count\" counts events and takes no property; write count \
             \"Order Completed\"",
        ),
        (
            "sum \"Order Completed\"",
            "line 1, column 5: \"sum\" needs an event property, as in sum revenue of \"Order \
             Completed\"",
        ),
        (
            "total revenue of \"X\"",
            "line 1, column 1: expected an aggregate (count, sum, avg, min, max, first, last, \
             most_frequent, unique or unique_count), found \"total\"",
        ),
        (
            "sum revenue \"X\"",
            "line 1, column 13: expected \"of\" after \"revenue\", found the string \"X\"",
        ),
        (
            "sum revenue of X",
            "line 1, column 16: expected the event name in double quotes after \"of\", found \"X\"",
        ),
        (
            "sum 5",
            "line 1, column 5: expected a property or the event name in double quotes after \
             \"sum\", found the number 5",
        ),
        (
            "count \"X\" at least 3 times",
            "line 1, column 11: expected \"where\", a time window (\"within\", \"in the last\" or \
             \"ever\") or the end of the definition, found \"at\"",
        ),
        (
            "count \"X\" where a = 1 b = 2",
            "line 1, column 23: expected a time window (\"within\", \"in the last\" or \"ever\") \
             or the end of the definition, found \"b\"",
        ),
        (
            "count \"X\" within 7 days where a = 1",
            "line 1, column 25: expected the end of the definition, found \"where\"",
        ),
        (
            "",
            "line 1, column 1: expected an aggregate (count, sum, avg, min, max, first, last, \
             most_frequent, unique or unique_count), found the end of the definition",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(computed_error(text), expected, "{text:?}");
    }
}

#[test]
fn errors_expose_their_location_and_message_separately() {
    let e = parse_audience("a =").unwrap_err();
    assert_eq!(e.location(), &Location::Text { line: 1, column: 4 });
    assert_eq!(
        e.message(),
        format!("expected {VALUE} after \"=\", found the end of the definition")
    );
}
