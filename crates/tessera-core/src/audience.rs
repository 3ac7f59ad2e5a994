//! The audience and computed-trait language: its syntax tree, a parser with line/column errors,
//! a canonical text form, a JSON form for the API and the dashboard, a type check against the
//! known computed traits and audiences, the list of what a definition depends on, and a
//! reference evaluator that recomputes everything from a profile's raw events.
//!
//! The language is described for users in `docs/audience-language.md`. Everything here is pure:
//! no I/O, and time is passed in as `now_ms`, so faster evaluators can be tested against
//! [`reference`] with plain property tests.

mod ast;
mod check;
mod deps;
mod display;
mod error;
mod json;
mod json_read;
mod lexer;
mod parser;
pub mod reference;
#[cfg(test)]
mod tests;

pub use ast::{
    Aggregate, Audience, AudienceRef, CmpOp, ComputedDef, Condition, DateLit, EventCond, Expr,
    Literal, Logic, Occurrence, Path, Period, Pos, Predicate, PropExpr, Test, Unit, Window,
};
pub use check::{check, check_computed, Catalog, ValueKind};
pub use deps::Dependencies;
pub use error::{LangError, Location};
pub use parser::{parse_audience, parse_computed, MAX_DEPTH};
