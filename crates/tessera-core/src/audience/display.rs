//! The canonical text of definitions: lower-case keywords, single spaces, parentheses only
//! where precedence needs them, defaults left out (`at least 1 time`, `ever`). Parsing the
//! printed text gives back an equal tree; property tests check it.

use super::ast::{
    prop_path_needs_prefix, Audience, ComputedDef, Condition, EventCond, Literal, Logic,
    Occurrence, Period, Predicate, Test, Window,
};
use super::lexer::{is_name_char, is_name_start, KEYWORDS};
use std::fmt::{self, Formatter, Write};

impl fmt::Display for Audience {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_logic(f, &self.root, &|f, c: &Condition| write!(f, "{c}"))
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Trait(p) => write_predicate(f, p, false),
            Condition::Event(e) => write_event(f, e),
            Condition::InAudience(a) => {
                f.write_str("in audience ")?;
                write_string(f, &a.name)
            }
        }
    }
}

impl fmt::Display for ComputedDef {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.aggregate.as_str())?;
        f.write_char(' ')?;
        if let Some(path) = &self.property {
            write_prop_path(f, path)?;
            f.write_str(" of ")?;
        }
        write_string(f, &self.event)?;
        write_filter(f, self.filter.as_ref())?;
        write_window(f, self.window)
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Literal::String(s) => write_string(f, s),
            // serde_json prints floats in their shortest form that reads back to the same
            // value (`1e300`, `0.1`, `2.0`), which the lexer accepts.
            Literal::Number(n) => write!(f, "{n}"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Null => f.write_str("null"),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let unit = if self.amount == 1 {
            self.unit.singular()
        } else {
            self.unit.plural()
        };
        write!(f, "{} {unit}", self.amount)
    }
}

type WriteLeaf<'a, L> = &'a dyn Fn(&mut Formatter<'_>, &L) -> fmt::Result;

fn write_logic<L>(f: &mut Formatter<'_>, e: &Logic<L>, leaf: WriteLeaf<'_, L>) -> fmt::Result {
    match e {
        Logic::And(terms) | Logic::Or(terms) => {
            let (sep, is_and) = match e {
                Logic::And(_) => (" and ", true),
                _ => (" or ", false),
            };
            for (i, t) in terms.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                // `and` binds tighter than `or`, so only a group of the same or a looser
                // operator needs parentheses to keep its shape.
                let paren = match t {
                    Logic::Or(_) => true,
                    Logic::And(_) => is_and,
                    _ => false,
                };
                write_grouped(f, t, paren, leaf)?;
            }
            Ok(())
        }
        Logic::Not(inner) => {
            f.write_str("not ")?;
            let paren = matches!(**inner, Logic::And(_) | Logic::Or(_));
            write_grouped(f, inner, paren, leaf)
        }
        Logic::Leaf(l) => leaf(f, l),
    }
}

fn write_grouped<L>(
    f: &mut Formatter<'_>,
    e: &Logic<L>,
    paren: bool,
    leaf: WriteLeaf<'_, L>,
) -> fmt::Result {
    if paren {
        f.write_char('(')?;
        write_logic(f, e, leaf)?;
        f.write_char(')')
    } else {
        write_logic(f, e, leaf)
    }
}

fn write_event(f: &mut Formatter<'_>, e: &EventCond) -> fmt::Result {
    f.write_str(if e.occurrence == Occurrence::Never {
        "did not perform "
    } else {
        "performed "
    })?;
    write_string(f, &e.event)?;
    write_filter(f, e.filter.as_ref())?;
    match e.occurrence {
        Occurrence::Never => {}
        o if o == Occurrence::DEFAULT => {}
        Occurrence::AtLeast(n) => write_times(f, "at least", n)?,
        Occurrence::AtMost(n) => write_times(f, "at most", n)?,
        Occurrence::Exactly(n) => write_times(f, "exactly", n)?,
    }
    write_window(f, e.window)
}

fn write_times(f: &mut Formatter<'_>, how: &str, n: u32) -> fmt::Result {
    let times = if n == 1 { "time" } else { "times" };
    write!(f, " {how} {n} {times}")
}

/// ` where cond` for one condition, ` where (...)` for anything else.
fn write_filter(f: &mut Formatter<'_>, filter: Option<&Logic<Predicate>>) -> fmt::Result {
    let Some(filter) = filter else {
        return Ok(());
    };
    f.write_str(" where ")?;
    let paren = !matches!(filter, Logic::Leaf(_));
    write_grouped(f, filter, paren, &|f, p: &Predicate| {
        write_predicate(f, p, true)
    })
}

fn write_window(f: &mut Formatter<'_>, w: Window) -> fmt::Result {
    match w {
        Window::Ever => Ok(()),
        Window::Last(p) => write!(f, " within {p}"),
    }
}

fn write_predicate(f: &mut Formatter<'_>, p: &Predicate, prop: bool) -> fmt::Result {
    if prop {
        write_prop_path(f, &p.path)?;
    } else {
        write_path(f, &p.path)?;
    }
    f.write_char(' ')?;
    write_test(f, &p.test)
}

fn write_test(f: &mut Formatter<'_>, t: &Test) -> fmt::Result {
    match t {
        Test::Compare(op, lit) => write!(f, "{} {lit}", op.as_str()),
        Test::In(list) => write_list(f, "in", list),
        Test::NotIn(list) => write_list(f, "not in", list),
        Test::Contains(s) => {
            f.write_str("contains ")?;
            write_string(f, s)
        }
        Test::StartsWith(s) => {
            f.write_str("starts_with ")?;
            write_string(f, s)
        }
        Test::Exists => f.write_str("exists"),
        Test::NotExists => f.write_str("not exists"),
        Test::Within(p) => write!(f, "within {p}"),
        Test::Before(d) => {
            f.write_str("before ")?;
            write_string(f, &d.text)
        }
        Test::After(d) => {
            f.write_str("after ")?;
            write_string(f, &d.text)
        }
    }
}

fn write_list(f: &mut Formatter<'_>, kw: &str, list: &[Literal]) -> fmt::Result {
    write!(f, "{kw} (")?;
    for (i, lit) in list.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{lit}")?;
    }
    f.write_char(')')
}

/// A trait path: bare segments where possible, back-quoted otherwise.
pub(super) fn write_path(f: &mut impl Write, path: &[String]) -> fmt::Result {
    for (i, seg) in path.iter().enumerate() {
        if i > 0 {
            f.write_char('.')?;
        }
        write_segment(f, seg)?;
    }
    Ok(())
}

/// An event property path, with `properties.` put back where leaving it out would change the
/// meaning.
pub(super) fn write_prop_path(f: &mut impl Write, path: &[String]) -> fmt::Result {
    if prop_path_needs_prefix(path) {
        f.write_str("properties.")?;
    }
    write_path(f, path)
}

fn write_segment(f: &mut impl Write, seg: &str) -> fmt::Result {
    let mut chars = seg.chars();
    let plain = chars.next().is_some_and(is_name_start)
        && chars.all(is_name_char)
        && !KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(seg));
    if plain {
        return f.write_str(seg);
    }
    write_quoted(f, '`', seg)
}

fn write_string(f: &mut impl Write, s: &str) -> fmt::Result {
    write_quoted(f, '"', s)
}

fn write_quoted(f: &mut impl Write, quote: char, s: &str) -> fmt::Result {
    f.write_char(quote)?;
    for c in s.chars() {
        if c == quote || c == '\\' {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    f.write_char(quote)
}

/// How deeply the canonical text of `e` nests parentheses and `not`, counted as the parser
/// counts them. The JSON reader refuses trees deeper than the parser accepts, so that every
/// accepted JSON definition also has a text form that parses.
pub(super) fn text_depth<L>(e: &Logic<L>, leaf: &dyn Fn(&L) -> u32) -> u32 {
    match e {
        Logic::And(terms) | Logic::Or(terms) => {
            let is_and = matches!(e, Logic::And(_));
            terms
                .iter()
                .map(|t| {
                    // The same rule as `write_logic`.
                    let paren = match t {
                        Logic::Or(_) => true,
                        Logic::And(_) => is_and,
                        _ => false,
                    };
                    u32::from(paren) + text_depth(t, leaf)
                })
                .max()
                .unwrap_or(0)
        }
        Logic::Not(inner) => {
            let paren = matches!(**inner, Logic::And(_) | Logic::Or(_));
            1 + u32::from(paren) + text_depth(inner, leaf)
        }
        Logic::Leaf(l) => leaf(l),
    }
}

/// The depth a `where` filter adds: its parentheses when it is not a single condition.
pub(super) fn filter_depth(filter: Option<&Logic<Predicate>>) -> u32 {
    filter.map_or(0, |f| {
        u32::from(!matches!(f, Logic::Leaf(_))) + text_depth(f, &|_| 0)
    })
}

/// The nesting depth of an audience's canonical text.
pub(super) fn audience_depth(a: &Audience) -> u32 {
    text_depth(&a.root, &|c: &Condition| match c {
        Condition::Event(e) => filter_depth(e.filter.as_ref()),
        _ => 0,
    })
}
