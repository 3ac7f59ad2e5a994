//! The type check: finds definitions that parse but cannot mean what their author wanted —
//! a numeric computed trait compared with a string, an order on `true`, a window of 0 days,
//! an audience that does not exist. Profile traits have no declared type, so only computed
//! traits (whose result kind is known from their aggregate) are checked against literals.

use super::ast::{
    Aggregate, Audience, ComputedDef, Condition, EventCond, Literal, Logic, Occurrence, Period,
    Pos, Predicate, Test, Window,
};
use super::display::write_path;
use super::error::{LangError, Location};
use std::collections::{BTreeMap, BTreeSet};

/// What kind of value a computed trait holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    Number,
    String,
    List,
    /// Anything: `first`, `last` and `most_frequent` return whatever the property holds.
    Any,
}

/// What a definition may refer to besides profile traits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    /// Computed traits by name, with the kind of value they hold.
    pub computed: BTreeMap<String, ValueKind>,
    /// Names of existing audiences.
    pub audiences: BTreeSet<String>,
}

impl Catalog {
    pub fn new() -> Catalog {
        Catalog::default()
    }

    pub fn with_computed(mut self, name: &str, kind: ValueKind) -> Catalog {
        self.computed.insert(name.to_owned(), kind);
        self
    }

    pub fn with_audience(mut self, name: &str) -> Catalog {
        self.audiences.insert(name.to_owned());
        self
    }

    /// Whether `path` names a computed trait (or a field inside one): its first segment is a
    /// computed trait's name. Such names shadow profile traits.
    pub fn is_computed(&self, path: &[String]) -> bool {
        path.first()
            .is_some_and(|name| self.computed.contains_key(name))
    }

    /// The kind of the value at `path`, when it is known.
    fn kind_of(&self, path: &[String]) -> ValueKind {
        match path {
            [name] => self.computed.get(name).copied().unwrap_or(ValueKind::Any),
            _ => ValueKind::Any,
        }
    }
}

impl ComputedDef {
    /// The kind of value this computed trait holds, for a [`Catalog`].
    pub fn result_kind(&self) -> ValueKind {
        match self.aggregate {
            Aggregate::Count
            | Aggregate::Sum
            | Aggregate::Avg
            | Aggregate::Min
            | Aggregate::Max
            | Aggregate::UniqueCount => ValueKind::Number,
            Aggregate::Unique => ValueKind::List,
            Aggregate::First | Aggregate::Last | Aggregate::MostFrequent => ValueKind::Any,
        }
    }
}

/// Checks an audience against what exists. Returns every problem found, in reading order.
pub fn check(audience: &Audience, catalog: &Catalog) -> Result<(), Vec<LangError>> {
    let mut c = Checker {
        catalog,
        errors: Vec::new(),
    };
    c.logic(&audience.root, "", &mut |c, cond: &Condition, ptr| {
        c.condition(cond, ptr)
    });
    c.finish()
}

/// Checks a computed-trait definition on its own (it refers to nothing but events).
pub fn check_computed(def: &ComputedDef) -> Result<(), Vec<LangError>> {
    let catalog = Catalog::default();
    let mut c = Checker {
        catalog: &catalog,
        errors: Vec::new(),
    };
    c.event_name(def.pos, "/event", &def.event);
    c.filter_and_window(def.pos, "", def.filter.as_ref(), def.window);
    c.finish()
}

struct Checker<'a> {
    catalog: &'a Catalog,
    errors: Vec<LangError>,
}

type CheckLeaf<'f, L> = &'f mut dyn FnMut(&mut Checker<'_>, &L, &str);

impl Checker<'_> {
    fn finish(self) -> Result<(), Vec<LangError>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }

    /// Reports at the node's line and column, or at its place in the JSON form when the
    /// definition was read from JSON. `ptr` follows the shapes `json.rs` writes.
    fn error(&mut self, pos: Pos, ptr: &str, message: String) {
        let at = if pos.is_known() {
            Location::at(pos)
        } else {
            Location::Json(ptr.to_owned())
        };
        self.errors.push(LangError::Type { at, message });
    }

    fn logic<L>(&mut self, e: &Logic<L>, ptr: &str, leaf: CheckLeaf<'_, L>) {
        match e {
            Logic::And(terms) | Logic::Or(terms) => {
                let key = if matches!(e, Logic::And(_)) {
                    "and"
                } else {
                    "or"
                };
                for (i, t) in terms.iter().enumerate() {
                    self.logic(t, &format!("{ptr}/{key}/{i}"), leaf);
                }
            }
            Logic::Not(inner) => self.logic(inner, &format!("{ptr}/not"), leaf),
            Logic::Leaf(l) => leaf(self, l, ptr),
        }
    }

    fn condition(&mut self, cond: &Condition, ptr: &str) {
        match cond {
            Condition::Trait(p) => {
                let kind = self.catalog.kind_of(&p.path);
                self.predicate(p, ptr, kind);
            }
            Condition::Event(e) => self.event(e, ptr),
            Condition::InAudience(a) => {
                if !self.catalog.audiences.contains(&a.name) {
                    self.error(
                        a.pos,
                        &format!("{ptr}/in_audience"),
                        format!("unknown audience \"{}\"", a.name),
                    );
                }
            }
        }
    }

    fn event(&mut self, e: &EventCond, ptr: &str) {
        let key = if e.occurrence == Occurrence::Never {
            "did_not_perform"
        } else {
            "performed"
        };
        self.event_name(e.pos, &format!("{ptr}/{key}"), &e.event);
        self.filter_and_window(e.pos, ptr, e.filter.as_ref(), e.window);
    }

    fn event_name(&mut self, pos: Pos, ptr: &str, name: &str) {
        if name.is_empty() {
            self.error(pos, ptr, "the event name is empty".to_owned());
        }
    }

    fn filter_and_window(
        &mut self,
        pos: Pos,
        ptr: &str,
        filter: Option<&Logic<Predicate>>,
        window: Window,
    ) {
        if let Some(f) = filter {
            self.logic(f, &format!("{ptr}/where"), &mut |c, p: &Predicate, ptr| {
                c.predicate(p, ptr, ValueKind::Any)
            });
        }
        if let Window::Last(p) = window {
            self.period(pos, &format!("{ptr}/window"), p);
        }
    }

    fn period(&mut self, pos: Pos, ptr: &str, p: Period) {
        if p.amount == 0 {
            self.error(
                pos,
                ptr,
                format!(
                    "\"within 0 {}\" is an empty period; the amount must be at least 1",
                    p.unit.plural()
                ),
            );
        }
    }

    fn predicate(&mut self, p: &Predicate, ptr: &str, kind: ValueKind) {
        let mut name = String::new();
        // Writing to a String cannot fail.
        let _ = write_path(&mut name, &p.path);
        let value_ptr = format!("{ptr}/value");
        match &p.test {
            Test::Compare(op, lit) => {
                if op.is_ordering() && matches!(lit, Literal::Bool(_) | Literal::Null) {
                    self.error(
                        p.pos,
                        &value_ptr,
                        format!(
                            "\"{}\" orders numbers or strings; {lit} has no order",
                            op.as_str()
                        ),
                    );
                } else {
                    self.literal_kind(p.pos, &value_ptr, &name, kind, lit);
                }
            }
            Test::In(list) | Test::NotIn(list) => {
                for (i, lit) in list.iter().enumerate() {
                    self.literal_kind(p.pos, &format!("{ptr}/values/{i}"), &name, kind, lit);
                }
            }
            Test::Contains(_) | Test::StartsWith(_) => {
                if kind == ValueKind::Number {
                    self.error(
                        p.pos,
                        &format!("{ptr}/op"),
                        format!(
                            "\"{name}\" is a number; contains and starts_with test strings and \
                             lists"
                        ),
                    );
                }
            }
            Test::Exists | Test::NotExists => {}
            Test::Within(_) | Test::Before(_) | Test::After(_) => {
                if let Test::Within(period) = &p.test {
                    self.period(p.pos, &value_ptr, *period);
                }
                if matches!(kind, ValueKind::Number | ValueKind::List) {
                    self.error(
                        p.pos,
                        &format!("{ptr}/op"),
                        format!(
                            "\"{name}\" is a {}; within, before and after test ISO-8601 dates",
                            kind_name(kind)
                        ),
                    );
                }
            }
        }
    }

    /// A literal compared with a computed trait of a known kind must be of that kind (or null,
    /// which tests for absence).
    fn literal_kind(&mut self, pos: Pos, ptr: &str, name: &str, kind: ValueKind, lit: &Literal) {
        let fits = matches!(
            (kind, lit),
            (ValueKind::Any, _)
                | (_, Literal::Null)
                | (ValueKind::Number, Literal::Number(_))
                | (ValueKind::String, Literal::String(_))
        );
        if fits {
            return;
        }
        let message = if kind == ValueKind::List {
            format!("\"{name}\" is a list; test its elements with contains")
        } else {
            let what = match lit {
                Literal::String(_) => "the string",
                Literal::Number(_) => "the number",
                _ => "the value",
            };
            format!(
                "\"{name}\" is a {} (a computed trait) but is compared with {what} {lit}",
                kind_name(kind)
            )
        };
        self.error(pos, ptr, message);
    }
}

fn kind_name(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Number => "number",
        ValueKind::String => "string",
        ValueKind::List => "list",
        ValueKind::Any => "value",
    }
}
