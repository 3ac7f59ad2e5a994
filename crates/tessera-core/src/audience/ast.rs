//! The syntax tree of audience and computed-trait definitions. The parser, the JSON reader, the
//! canonical printer, the checker and the evaluators all work on these types.
//!
//! Invariants kept by the parser and the JSON reader (and assumed by the printers): `And` and `Or`
//! have at least two operands; paths have at least one segment and no segment is empty; event
//! property paths are stored without a leading `properties.`; `in` lists are not empty; a
//! computed trait has a property exactly when its aggregate is not `count`.
//!
//! These are domain types, not wire types: they do not derive `Serialize`. The JSON form is
//! written and read by hand in `json.rs` and `json_read.rs`.

use crate::time::Millis;
use serde_json::Number;

/// Where a node starts in the definition's text, 1-based. Definitions read from JSON have
/// [`Pos::UNKNOWN`].
///
/// Two positions always compare equal: where a node was written is not part of its meaning, so
/// `a=1` and `a = 1` give equal trees, and a tree equals the tree its printed form parses to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl Pos {
    pub const UNKNOWN: Pos = Pos { line: 0, column: 0 };

    pub fn new(line: u32, column: u32) -> Pos {
        Pos { line, column }
    }

    /// Whether this position points into a text (false for definitions read from JSON).
    pub fn is_known(self) -> bool {
        self.line > 0
    }
}

impl PartialEq for Pos {
    fn eq(&self, _: &Pos) -> bool {
        true
    }
}

impl Eq for Pos {}

/// A trait or property path: `address.city` is `["address", "city"]`.
pub type Path = Vec<String>;

/// An audience definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience {
    pub root: Expr,
}

/// AND / OR / NOT over leaves: conditions in an audience, property conditions in a `where`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Logic<L> {
    And(Vec<Logic<L>>),
    Or(Vec<Logic<L>>),
    Not(Box<Logic<L>>),
    Leaf(L),
}

/// An audience expression.
pub type Expr = Logic<Condition>;

/// The filter of a `where`: conditions on the event's properties.
pub type PropExpr = Logic<Predicate>;

/// One condition of an audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// A test of a trait or computed trait of the profile.
    Trait(Predicate),
    /// How often the profile performed an event.
    Event(EventCond),
    /// Membership of another audience.
    InAudience(AudienceRef),
}

impl Condition {
    /// Where the condition starts in the text.
    pub fn pos(&self) -> Pos {
        match self {
            Condition::Trait(p) => p.pos,
            Condition::Event(e) => e.pos,
            Condition::InAudience(a) => a.pos,
        }
    }
}

/// `in audience "name"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceRef {
    pub pos: Pos,
    pub name: String,
}

/// A test of a value found at `path`: a trait of a profile, or a property of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Predicate {
    pub pos: Pos,
    pub path: Path,
    pub test: Test,
}

/// What a [`Predicate`] checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Test {
    Compare(CmpOp, Literal),
    In(Vec<Literal>),
    NotIn(Vec<Literal>),
    Contains(String),
    StartsWith(String),
    Exists,
    NotExists,
    /// A date/time within the last period, up to now.
    Within(Period),
    Before(DateLit),
    After(DateLit),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    pub const ALL: [CmpOp; 6] = [
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Gt,
        CmpOp::Ge,
        CmpOp::Lt,
        CmpOp::Le,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
        }
    }

    pub fn parse(s: &str) -> Option<CmpOp> {
        CmpOp::ALL.into_iter().find(|op| op.as_str() == s)
    }

    /// `>`, `>=`, `<`, `<=`: these need values that have an order.
    pub fn is_ordering(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }
}

/// A literal value in a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    String(String),
    Number(Number),
    Bool(bool),
    Null,
}

/// A date or date-time literal of `before` / `after`: the text as written (printed back as is)
/// and the instant it denotes (a date alone is midnight UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateLit {
    pub text: String,
    pub ms: Millis,
}

/// `performed "X" [where ...] [count] [window]` or `did not perform "X" [where ...] [window]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCond {
    pub pos: Pos,
    pub event: String,
    pub filter: Option<PropExpr>,
    pub occurrence: Occurrence,
    pub window: Window,
}

/// How many matching events an event condition asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occurrence {
    AtLeast(u32),
    AtMost(u32),
    Exactly(u32),
    /// `did not perform`: no matching event at all.
    Never,
}

impl Occurrence {
    /// What `performed "X"` means without a count.
    pub const DEFAULT: Occurrence = Occurrence::AtLeast(1);

    /// Whether `count` matching events satisfy this.
    pub fn accepts(self, count: u64) -> bool {
        match self {
            Occurrence::AtLeast(n) => count >= u64::from(n),
            Occurrence::AtMost(n) => count <= u64::from(n),
            Occurrence::Exactly(n) => count == u64::from(n),
            Occurrence::Never => count == 0,
        }
    }
}

/// Which events count: all of them, or those of the last period up to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Ever,
    Last(Period),
}

impl Window {
    /// Whether an event at `ts` is inside the window at `now`. A window of the last N units
    /// is `(now - N units, now]`: an event exactly N units old has just left it, and an event
    /// from the future has not entered it yet. `Ever` takes every event, whatever its time,
    /// so conditions without a window never change with the passage of time.
    pub fn contains(self, ts: Millis, now: Millis) -> bool {
        match self {
            Window::Ever => true,
            Window::Last(p) => p.contains(ts, now),
        }
    }
}

/// An amount of time units, as in `30 days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub amount: u32,
    pub unit: Unit,
}

impl Period {
    /// The length in milliseconds. Cannot overflow: `u32::MAX` weeks is about 2.6e18 ms.
    pub fn millis(self) -> i64 {
        i64::from(self.amount) * self.unit.millis()
    }

    /// Whether `ts` is in `(now - self, now]`.
    pub fn contains(self, ts: Millis, now: Millis) -> bool {
        ts <= now && ts > now.saturating_sub(self.millis())
    }
}

/// A unit of time in windows and `within`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    Minutes,
    Hours,
    Days,
    Weeks,
}

impl Unit {
    pub const ALL: [Unit; 4] = [Unit::Minutes, Unit::Hours, Unit::Days, Unit::Weeks];

    pub fn millis(self) -> i64 {
        match self {
            Unit::Minutes => 60_000,
            Unit::Hours => 3_600_000,
            Unit::Days => 86_400_000,
            Unit::Weeks => 604_800_000,
        }
    }

    /// The plural name, used in the JSON form and in text when the amount is not 1.
    pub fn plural(self) -> &'static str {
        match self {
            Unit::Minutes => "minutes",
            Unit::Hours => "hours",
            Unit::Days => "days",
            Unit::Weeks => "weeks",
        }
    }

    pub fn singular(self) -> &'static str {
        let p = self.plural();
        &p[..p.len() - 1]
    }

    /// Reads a unit name, singular or plural, in any case.
    pub fn parse(s: &str) -> Option<Unit> {
        let s = s.to_ascii_lowercase();
        Unit::ALL
            .into_iter()
            .find(|u| s == u.plural() || s == u.singular())
    }
}

/// A computed trait: one aggregate over a profile's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputedDef {
    pub pos: Pos,
    pub aggregate: Aggregate,
    /// The event property aggregated; `None` exactly for `count`.
    pub property: Option<Path>,
    pub event: String,
    pub filter: Option<PropExpr>,
    pub window: Window,
}

/// The aggregate of a computed trait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aggregate {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    First,
    Last,
    MostFrequent,
    Unique,
    UniqueCount,
}

impl Aggregate {
    pub const ALL: [Aggregate; 10] = [
        Aggregate::Count,
        Aggregate::Sum,
        Aggregate::Avg,
        Aggregate::Min,
        Aggregate::Max,
        Aggregate::First,
        Aggregate::Last,
        Aggregate::MostFrequent,
        Aggregate::Unique,
        Aggregate::UniqueCount,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Aggregate::Count => "count",
            Aggregate::Sum => "sum",
            Aggregate::Avg => "avg",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
            Aggregate::First => "first",
            Aggregate::Last => "last",
            Aggregate::MostFrequent => "most_frequent",
            Aggregate::Unique => "unique",
            Aggregate::UniqueCount => "unique_count",
        }
    }

    /// Reads an aggregate name in any case.
    pub fn parse(s: &str) -> Option<Aggregate> {
        Aggregate::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
    }

    /// Whether the aggregate reads an event property (all but `count`).
    pub fn needs_property(self) -> bool {
        self != Aggregate::Count
    }
}

/// `properties.category` and `category` name the same event property; trees keep the short
/// form so that both spellings give equal trees.
pub(super) fn normalize_prop_path(mut path: Path) -> Path {
    if path.len() > 1 && path[0] == "properties" {
        path.remove(0);
    }
    path
}

/// Whether a normalized property path must be written with its `properties.` prefix to read
/// back the same: a property that is itself called `properties` and has sub-fields.
pub(super) fn prop_path_needs_prefix(path: &[String]) -> bool {
    path.len() > 1 && path[0] == "properties"
}
