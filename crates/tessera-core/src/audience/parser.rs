//! A recursive-descent parser from definition text to the syntax tree. Keywords are recognised
//! by context (a trait may be called `count`), and every error names what was expected and
//! what was found, at the line and column of the offending token.

use super::ast::{
    normalize_prop_path, Aggregate, Audience, AudienceRef, ComputedDef, Condition, DateLit,
    EventCond, Literal, Logic, Occurrence, Path, Period, Pos, Predicate, PropExpr, Test, Unit,
    Window,
};
use super::error::LangError;
use super::lexer::{Lexer, Tok, Token};
use crate::time::parse_iso8601;

/// How deeply parentheses and `not` may nest. The evaluators recurse over the tree, so an
/// unbounded depth would let a hostile definition overflow the stack.
pub const MAX_DEPTH: u32 = 64;

const VALUE: &str = "a value (a string, number, true, false or null)";
const DATE_EXAMPLE: &str = "such as \"2024-05-01\" or \"2024-05-01T12:30:00Z\"";

/// Parses an audience definition such as `country = "DE" and lifetime_value > 100`.
pub fn parse_audience(text: &str) -> Result<Audience, LangError> {
    let mut p = Parser::new(text)?;
    let root = p.logic(Parser::condition)?;
    if p.cur.tok != Tok::End {
        return Err(p.unexpected("expected \"and\", \"or\" or the end of the definition"));
    }
    Ok(Audience { root })
}

/// Parses a computed-trait definition such as `sum revenue of "Order Completed" within 90 days`.
pub fn parse_computed(text: &str) -> Result<ComputedDef, LangError> {
    Parser::new(text)?.computed()
}

struct Parser<'a> {
    lex: Lexer<'a>,
    cur: Token,
    /// The source text of the token before `cur`, for "after ..." in messages.
    prev: String,
    depth: u32,
}

type Leaf<'a, L> = fn(&mut Parser<'a>) -> Result<L, LangError>;

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Result<Parser<'a>, LangError> {
        let mut lex = Lexer::new(text);
        let cur = lex.next_token()?;
        Ok(Parser {
            lex,
            cur,
            prev: String::new(),
            depth: 0,
        })
    }

    fn advance(&mut self) -> Result<Token, LangError> {
        let next = self.lex.next_token()?;
        let old = std::mem::replace(&mut self.cur, next);
        self.prev.clone_from(&old.text);
        Ok(old)
    }

    /// An error at the current token: `"{expected}, found {token}"`.
    fn unexpected(&self, expected: &str) -> LangError {
        LangError::syntax(
            self.cur.pos,
            format!("{expected}, found {}", self.cur.describe()),
        )
    }

    fn eat_kw(&mut self, kw: &str) -> Result<bool, LangError> {
        if self.cur.is_kw(kw) {
            self.advance()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), LangError> {
        if self.eat_kw(kw)? {
            Ok(())
        } else {
            Err(self.unexpected(&format!("expected \"{kw}\" after \"{}\"", self.prev)))
        }
    }

    /// A double-quoted string, or an error saying `expected`.
    fn string(&mut self, expected: &str) -> Result<String, LangError> {
        match &self.cur.tok {
            Tok::Str(s) => {
                let s = s.clone();
                self.advance()?;
                Ok(s)
            }
            _ => Err(self.unexpected(expected)),
        }
    }

    fn is_name(&self) -> bool {
        matches!(self.cur.tok, Tok::Name { .. })
    }

    /// The current token as a path; the caller has checked that it is a name.
    fn path(&mut self) -> Result<Path, LangError> {
        match self.advance()?.tok {
            Tok::Name { segments, .. } => Ok(segments),
            _ => unreachable!("path() is only called on a name"),
        }
    }

    fn enter(&mut self, pos: Pos) -> Result<(), LangError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(LangError::syntax(
                pos,
                format!(
                    "the definition is nested too deeply (more than {MAX_DEPTH} levels of \
                     parentheses and \"not\")"
                ),
            ));
        }
        Ok(())
    }

    // ---- AND / OR / NOT, shared by audiences and `where` filters ----

    fn logic<L>(&mut self, leaf: Leaf<'a, L>) -> Result<Logic<L>, LangError> {
        let mut terms = vec![self.and_expr(leaf)?];
        while self.eat_kw("or")? {
            terms.push(self.and_expr(leaf)?);
        }
        Ok(fold(terms, Logic::Or))
    }

    fn and_expr<L>(&mut self, leaf: Leaf<'a, L>) -> Result<Logic<L>, LangError> {
        let mut terms = vec![self.unary(leaf)?];
        while self.eat_kw("and")? {
            terms.push(self.unary(leaf)?);
        }
        Ok(fold(terms, Logic::And))
    }

    fn unary<L>(&mut self, leaf: Leaf<'a, L>) -> Result<Logic<L>, LangError> {
        let pos = self.cur.pos;
        if self.cur.is_kw("not") {
            self.enter(pos)?;
            self.advance()?;
            let inner = self.unary(leaf)?;
            self.depth -= 1;
            return Ok(Logic::Not(Box::new(inner)));
        }
        if self.cur.tok == Tok::LParen {
            self.enter(pos)?;
            self.advance()?;
            let inner = self.logic(leaf)?;
            if self.cur.tok != Tok::RParen {
                return Err(self.unexpected(&format!(
                    "expected \")\" to close the \"(\" at line {}, column {}",
                    pos.line, pos.column
                )));
            }
            self.advance()?;
            self.depth -= 1;
            return Ok(inner);
        }
        Ok(Logic::Leaf(leaf(self)?))
    }

    // ---- audience conditions ----

    fn condition(&mut self) -> Result<Condition, LangError> {
        let pos = self.cur.pos;
        if self.eat_kw("performed")? {
            let event =
                self.string("expected the event name in double quotes after \"performed\"")?;
            return Ok(Condition::Event(self.event_rest(pos, event, false)?));
        }
        if self.eat_kw("did")? {
            self.expect_kw("not")?;
            self.expect_kw("perform")?;
            let event =
                self.string("expected the event name in double quotes after \"perform\"")?;
            return Ok(Condition::Event(self.event_rest(pos, event, true)?));
        }
        if self.eat_kw("in")? {
            self.expect_kw("audience")?;
            let name =
                self.string("expected the audience name in double quotes after \"audience\"")?;
            return Ok(Condition::InAudience(AudienceRef { pos, name }));
        }
        if self.is_name() {
            return Ok(Condition::Trait(self.predicate(false)?));
        }
        Err(self.unexpected(
            "expected a condition (a trait name, \"performed\", \"did not perform\", \
             \"in audience\", \"not\" or \"(\")",
        ))
    }

    /// What follows the event name of `performed` / `did not perform`.
    fn event_rest(
        &mut self,
        pos: Pos,
        event: String,
        negated: bool,
    ) -> Result<EventCond, LangError> {
        let filter = self.filter()?;
        let occurrence = if negated {
            if self.cur.is_kw("at") || self.cur.is_kw("exactly") {
                return Err(LangError::syntax(
                    self.cur.pos,
                    "\"did not perform\" takes no count; write \"performed ... at most N times\" \
                     instead",
                ));
            }
            Occurrence::Never
        } else {
            self.occurrence()?.unwrap_or(Occurrence::DEFAULT)
        };
        let window = self.window()?.unwrap_or(Window::Ever);
        Ok(EventCond {
            pos,
            event,
            filter,
            occurrence,
            window,
        })
    }

    /// `at least N times`, `at most N times`, `exactly N times`, or nothing.
    fn occurrence(&mut self) -> Result<Option<Occurrence>, LangError> {
        let make: fn(u32) -> Occurrence = if self.eat_kw("at")? {
            if self.eat_kw("least")? {
                Occurrence::AtLeast
            } else if self.eat_kw("most")? {
                Occurrence::AtMost
            } else {
                return Err(self.unexpected("expected \"least\" or \"most\" after \"at\""));
            }
        } else if self.eat_kw("exactly")? {
            Occurrence::Exactly
        } else {
            return Ok(None);
        };
        let n = self.whole_number()?;
        if !(self.eat_kw("times")? || self.eat_kw("time")?) {
            return Err(self.unexpected(&format!("expected \"times\" after \"{n}\"")));
        }
        Ok(Some(make(n)))
    }

    /// `within N unit`, `in the last N unit`, `ever`, or nothing.
    fn window(&mut self) -> Result<Option<Window>, LangError> {
        if self.eat_kw("within")? {
            return Ok(Some(Window::Last(self.period()?)));
        }
        if self.eat_kw("in")? {
            self.expect_kw("the")?;
            self.expect_kw("last")?;
            return Ok(Some(Window::Last(self.period()?)));
        }
        if self.eat_kw("ever")? {
            return Ok(Some(Window::Ever));
        }
        Ok(None)
    }

    /// `where prop_cond` or `where ( prop_expr )`, or nothing.
    fn filter(&mut self) -> Result<Option<PropExpr>, LangError> {
        if !self.eat_kw("where")? {
            return Ok(None);
        }
        if self.cur.tok == Tok::LParen {
            return Ok(Some(self.unary(Parser::prop_leaf)?));
        }
        // `not` needs parentheses here, so that `where not a = 1 and b = 2` cannot be misread.
        if self.is_name() && !self.cur.is_kw("not") {
            return Ok(Some(Logic::Leaf(self.predicate(true)?)));
        }
        Err(self.unexpected("expected a property condition or \"(\" after \"where\""))
    }

    fn prop_leaf(&mut self) -> Result<Predicate, LangError> {
        if self.is_name() {
            return self.predicate(true);
        }
        Err(self.unexpected("expected a property condition (a property name, \"not\" or \"(\")"))
    }

    // ---- tests of traits and properties ----

    fn predicate(&mut self, prop: bool) -> Result<Predicate, LangError> {
        let pos = self.cur.pos;
        let shown = self.cur.describe();
        let path = self.path()?;
        let path = if prop {
            normalize_prop_path(path)
        } else {
            path
        };
        let test = self.test(&shown)?;
        Ok(Predicate { pos, path, test })
    }

    fn test(&mut self, name: &str) -> Result<Test, LangError> {
        if let Tok::Op(op) = self.cur.tok {
            self.advance()?;
            let lit = self.literal(&format!("after \"{}\"", op.as_str()))?;
            return Ok(Test::Compare(op, lit));
        }
        if self.eat_kw("in")? {
            return Ok(Test::In(self.list()?));
        }
        if self.eat_kw("not")? {
            if self.eat_kw("in")? {
                return Ok(Test::NotIn(self.list()?));
            }
            if self.eat_kw("exists")? {
                return Ok(Test::NotExists);
            }
            return Err(self.unexpected("expected \"in\" or \"exists\" after \"not\""));
        }
        if self.eat_kw("contains")? {
            return Ok(Test::Contains(self.string(
                "expected a string in double quotes after \"contains\"",
            )?));
        }
        if self.eat_kw("starts_with")? {
            return Ok(Test::StartsWith(self.string(
                "expected a string in double quotes after \"starts_with\"",
            )?));
        }
        if self.eat_kw("exists")? {
            return Ok(Test::Exists);
        }
        if self.eat_kw("within")? {
            return Ok(Test::Within(self.period()?));
        }
        if self.eat_kw("before")? {
            return Ok(Test::Before(self.date("before")?));
        }
        if self.eat_kw("after")? {
            return Ok(Test::After(self.date("after")?));
        }
        Err(self.unexpected(&format!(
            "expected an operator after {name} (=, !=, >, >=, <, <=, in, not in, contains, \
             starts_with, exists, not exists, within, before or after)"
        )))
    }

    fn literal(&mut self, after: &str) -> Result<Literal, LangError> {
        let lit = match &self.cur.tok {
            Tok::Str(s) => Literal::String(s.clone()),
            Tok::Num(n) => Literal::Number(n.clone()),
            _ if self.cur.is_kw("true") => Literal::Bool(true),
            _ if self.cur.is_kw("false") => Literal::Bool(false),
            _ if self.cur.is_kw("null") => Literal::Null,
            _ => return Err(self.unexpected(&format!("expected {VALUE} {after}"))),
        };
        self.advance()?;
        Ok(lit)
    }

    /// `( literal, ... )` after `in` / `not in`.
    fn list(&mut self) -> Result<Vec<Literal>, LangError> {
        if self.cur.tok != Tok::LParen {
            return Err(self.unexpected(&format!(
                "expected \"(\" and a list of values after \"{}\"",
                self.prev
            )));
        }
        self.advance()?;
        let mut items = vec![self.literal("after \"(\"")?];
        loop {
            match self.cur.tok {
                Tok::Comma => {
                    self.advance()?;
                    items.push(self.literal("after \",\"")?);
                }
                Tok::RParen => {
                    self.advance()?;
                    return Ok(items);
                }
                _ => return Err(self.unexpected("expected \",\" or \")\" in the list of values")),
            }
        }
    }

    /// A quoted ISO-8601 date after `before` / `after`.
    fn date(&mut self, kw: &str) -> Result<DateLit, LangError> {
        let Tok::Str(text) = &self.cur.tok else {
            return Err(self.unexpected(&format!(
                "expected a date in double quotes after \"{kw}\", {DATE_EXAMPLE}"
            )));
        };
        let Ok(ms) = parse_iso8601(text) else {
            return Err(LangError::syntax(
                self.cur.pos,
                format!(
                    "{} is not an ISO-8601 date; expected a date {DATE_EXAMPLE}",
                    self.cur.text
                ),
            ));
        };
        let text = text.clone();
        self.advance()?;
        Ok(DateLit { text, ms })
    }

    /// `N unit`, as in `30 days`.
    fn period(&mut self) -> Result<Period, LangError> {
        let amount = self.whole_number()?;
        let unit = match &self.cur.tok {
            Tok::Name {
                segments,
                bare: true,
            } => Unit::parse(&segments[0]),
            _ => None,
        };
        let Some(unit) = unit else {
            return Err(self.unexpected(&format!(
                "expected a unit (minutes, hours, days or weeks) after \"{amount}\""
            )));
        };
        self.advance()?;
        Ok(Period { amount, unit })
    }

    /// A whole number from 0 to `u32::MAX`, after the keyword just read.
    fn whole_number(&mut self) -> Result<u32, LangError> {
        if let Tok::Num(n) = &self.cur.tok {
            if let Some(v) = n.as_u64() {
                let Ok(v) = u32::try_from(v) else {
                    return Err(LangError::syntax(
                        self.cur.pos,
                        format!("{v} is too large; the largest allowed is {}", u32::MAX),
                    ));
                };
                self.advance()?;
                return Ok(v);
            }
        }
        Err(self.unexpected(&format!(
            "expected a whole number (0 or more) after \"{}\"",
            self.prev
        )))
    }

    // ---- computed traits ----

    fn computed(&mut self) -> Result<ComputedDef, LangError> {
        let pos = self.cur.pos;
        let aggregate = match &self.cur.tok {
            Tok::Name {
                segments,
                bare: true,
            } => Aggregate::parse(&segments[0]),
            _ => None,
        };
        let Some(aggregate) = aggregate else {
            return Err(self.unexpected(
                "expected an aggregate (count, sum, avg, min, max, first, last, most_frequent, \
                 unique or unique_count)",
            ));
        };
        self.advance()?;
        self.eat_kw("of")?;
        let property = if self.is_name() {
            let at = self.cur.pos;
            let path = normalize_prop_path(self.path()?);
            self.expect_kw("of")?;
            Some((at, path))
        } else {
            None
        };
        let event_pos = self.cur.pos;
        let event_text = self.cur.text.clone();
        let expected = if property.is_some() {
            "expected the event name in double quotes after \"of\"".to_owned()
        } else {
            format!(
                "expected a property or the event name in double quotes after \"{}\"",
                self.prev
            )
        };
        let event = self.string(&expected)?;
        let agg = aggregate.as_str();
        let property = match (aggregate.needs_property(), property) {
            (false, Some((at, _))) => {
                return Err(LangError::syntax(
                    at,
                    format!(
                        "\"count\" counts events and takes no property; write count {event_text}"
                    ),
                ))
            }
            (true, None) => {
                return Err(LangError::syntax(
                    event_pos,
                    format!(
                        "\"{agg}\" needs an event property, as in {agg} revenue of {event_text}"
                    ),
                ))
            }
            (_, p) => p.map(|(_, path)| path),
        };
        let filter = self.filter()?;
        let window = self.window()?;
        if self.cur.tok != Tok::End {
            let expected = match (&filter, window) {
                (_, Some(_)) => "expected the end of the definition",
                (None, None) => {
                    "expected \"where\", a time window (\"within\", \"in the last\" or \"ever\") \
                     or the end of the definition"
                }
                (Some(_), None) => {
                    "expected a time window (\"within\", \"in the last\" or \"ever\") or the end \
                     of the definition"
                }
            };
            return Err(self.unexpected(expected));
        }
        Ok(ComputedDef {
            pos,
            aggregate,
            property,
            event,
            filter,
            window: window.unwrap_or(Window::Ever),
        })
    }
}

/// One term stays itself; several become an `And` / `Or`.
fn fold<L>(mut terms: Vec<Logic<L>>, make: fn(Vec<Logic<L>>) -> Logic<L>) -> Logic<L> {
    if terms.len() == 1 {
        terms.pop().expect("one term")
    } else {
        make(terms)
    }
}
