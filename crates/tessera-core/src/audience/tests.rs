//! Tests of the audience language. This file holds the shared helpers; the parser's accepted
//! forms are in `parse`, every error message with its position in `errors`, the type check in
//! `check`, the JSON form in `json`, the reference evaluator's semantics in `reference`, and
//! round trips over random definitions in `props`.

use super::*;

mod check;
mod errors;
mod json;
mod parse;
mod props;
mod reference;

/// Parses an audience, failing the test with the error if it does not parse.
fn aud(text: &str) -> Audience {
    parse_audience(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
}

/// Parses a computed trait, failing the test with the error if it does not parse.
fn computed(text: &str) -> ComputedDef {
    parse_computed(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
}

/// The canonical text of an audience.
fn canon(text: &str) -> String {
    aud(text).to_string()
}

/// A trait condition leaf, for building expected trees.
fn trait_leaf(path: &str, test: Test) -> Expr {
    Logic::Leaf(Condition::Trait(Predicate {
        pos: Pos::UNKNOWN,
        path: path.split('.').map(String::from).collect(),
        test,
    }))
}

fn string_lit(s: &str) -> Literal {
    Literal::String(s.to_owned())
}

fn number_lit(n: i64) -> Literal {
    Literal::Number(n.into())
}
