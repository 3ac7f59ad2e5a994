//! Batch evaluation: an audience over every profile at once, by columns, on several threads.
//! Each condition becomes a set of profile slots: a trait condition scans the trait's column
//! (testing each distinct string once, numbers directly); an event condition scans only its
//! event's partition, counting matching rows per live profile (rows of merged profiles count
//! for their survivor); AND / OR / NOT combine the sets word by word.
//!
//! The tests are the reference evaluator's own (`test_value`), so batch and real-time
//! evaluation cannot disagree on what a condition means; property tests check the rest.

use super::bitset::Bitset;
use super::column::Cell;
use super::column::Column;
use super::events::{EventStore, Partition};
use super::registry::Registry;
use super::segmenter::default_value;
use super::table::Table;
use super::timers::Earliest;
use crate::audience::reference::{resolve, test_value};
use crate::audience::{
    Audience, CmpOp, Condition, EventCond, Expr, Literal, Logic, Occurrence, Predicate, PropExpr,
    Test, Window,
};
use crate::time::{parse_iso8601, Millis};
use hashbrown::HashMap;
use serde_json::{Number, Value};
use std::sync::atomic::Ordering;

/// What batch evaluation reads.
pub struct BatchView<'a> {
    pub events: &'a EventStore,
    pub traits: &'a Table,
    /// Slot → live slot.
    pub live_of: &'a [u32],
    pub live: &'a Bitset,
    pub registry: &'a Registry,
    pub computed: &'a [HashMap<u32, Value>],
    pub members: &'a [Bitset],
    pub now: Millis,
    /// Whether any profile was merged (else every slot is its own live slot).
    pub merged: bool,
}

/// Rows per task below which one thread does the work.
const PARALLEL_MIN: usize = 1 << 16;

/// The live profiles (slots) in the audience.
pub fn evaluate(v: &BatchView<'_>, audience: &Audience, threads: usize) -> Bitset {
    eval_expr(v, &audience.root, threads.max(1), v.live)
}

/// The slots of `within` (live ones) for which `e` holds. Each term of an AND is evaluated
/// only for the slots the terms before it left, and each term of an OR only for those not yet
/// in, so a selective first condition makes the rest cheap.
fn eval_expr(v: &BatchView<'_>, e: &Expr, threads: usize, within: &Bitset) -> Bitset {
    match e {
        Logic::And(terms) => {
            let mut acc = eval_expr(v, &terms[0], threads, within);
            for t in &terms[1..] {
                if acc.is_empty() {
                    break;
                }
                acc = eval_expr(v, t, threads, &acc);
            }
            acc
        }
        Logic::Or(terms) => {
            let mut acc = Bitset::default();
            let mut rest = within.clone();
            for t in terms {
                if rest.is_empty() {
                    break;
                }
                let hit = eval_expr(v, t, threads, &rest);
                rest = hit.complement_in(&rest);
                acc = acc.or(&hit);
            }
            acc
        }
        Logic::Not(inner) => eval_expr(v, inner, threads, within).complement_in(within),
        Logic::Leaf(Condition::Trait(p)) => trait_condition(v, p, threads, within),
        Logic::Leaf(Condition::Event(e)) => event_condition(v, e, threads, within),
        Logic::Leaf(Condition::InAudience(a)) => v
            .registry
            .audience_by_name(&a.name)
            .map(|i| v.members[i].clone().and(within))
            .unwrap_or_default(),
    }
}

/// A predicate compiled against one column: the result for each distinct non-number code,
/// numbers tested as they come.
struct CompiledTest<'a> {
    column: Option<&'a Column>,
    test: &'a Test,
    by_code: Vec<bool>,
    absent: bool,
    now: Millis,
    /// `op literal` for a comparison with a number: numbers are compared without building
    /// JSON values, with `compare_numbers`' rules (exact for two integers, else as floats).
    numeric: Option<(CmpOp, NumLit)>,
}

/// A number literal in the forms comparisons need.
#[derive(Clone, Copy)]
struct NumLit {
    int: Option<i64>,
    uint: Option<u64>,
    float: f64,
}

impl NumLit {
    fn of(n: &Number) -> NumLit {
        NumLit {
            int: n.as_i64(),
            uint: n.as_u64(),
            float: n.as_f64().unwrap_or(0.0),
        }
    }

    #[inline]
    fn cmp_cell(&self, cell: Cell<'_>) -> Option<std::cmp::Ordering> {
        match cell {
            Cell::Int(i) => match self.int {
                Some(l) => Some(i.cmp(&l)),
                None => match (u64::try_from(i).ok(), self.uint) {
                    (Some(a), Some(b)) => Some(a.cmp(&b)),
                    _ => (i as f64).partial_cmp(&self.float),
                },
            },
            Cell::UInt(u) => match self.uint {
                Some(l) => Some(u.cmp(&l)),
                None => (u as f64).partial_cmp(&self.float),
            },
            Cell::Float(f) => f.partial_cmp(&self.float),
            _ => None,
        }
    }
}

impl<'a> CompiledTest<'a> {
    fn new(column: Option<&'a Column>, test: &'a Test, now: Millis) -> CompiledTest<'a> {
        let absent = test_value(None, test, now);
        let by_code = match column {
            Some(c) => (0..c.code_count() as u32)
                .map(|code| {
                    if Column::is_number_code(code) {
                        false
                    } else {
                        let v = c.cell_of_code(code, 0).to_value();
                        test_value(Some(&v), test, now)
                    }
                })
                .collect(),
            None => Vec::new(),
        };
        let numeric = match test {
            Test::Compare(op, Literal::Number(n)) => Some((*op, NumLit::of(n))),
            _ => None,
        };
        CompiledTest {
            column,
            test,
            by_code,
            absent,
            now,
            numeric,
        }
    }

    #[inline]
    fn passes(&self, row: usize) -> bool {
        let Some(c) = self.column else {
            return self.absent;
        };
        let code = c.code(row);
        if Column::is_number_code(code) {
            if let Some((op, lit)) = &self.numeric {
                let Some(ord) = lit.cmp_cell(c.get(row)) else {
                    return self.absent;
                };
                return match op {
                    CmpOp::Eq => ord.is_eq(),
                    CmpOp::Ne => !ord.is_eq(),
                    CmpOp::Gt => ord.is_gt(),
                    CmpOp::Ge => ord.is_ge(),
                    CmpOp::Lt => ord.is_lt(),
                    CmpOp::Le => ord.is_le(),
                };
            }
            let n = match c.get(row) {
                Cell::Int(i) => Number::from(i),
                Cell::UInt(u) => Number::from(u),
                Cell::Float(f) => match Number::from_f64(f) {
                    Some(n) => n,
                    None => return self.absent,
                },
                _ => return self.absent,
            };
            return test_value(Some(&Value::Number(n)), self.test, self.now);
        }
        self.by_code[code as usize]
    }
}

fn trait_condition(v: &BatchView<'_>, p: &Predicate, threads: usize, within: &Bitset) -> Bitset {
    let (first, rest) = p.path.split_first().expect("paths are never empty");
    if let Some(i) = v.registry.computed_by_name(first) {
        let default = default_value(v.registry.computed[i].def.aggregate);
        let passes = |value: &Value| test_value(resolve(value, rest), &p.test, v.now);
        return if passes(&default) {
            let mut out = within.clone();
            for (&slot, value) in &v.computed[i] {
                if !passes(value) {
                    out.set(slot, false);
                }
            }
            out
        } else {
            let mut out = Bitset::default();
            for (&slot, value) in &v.computed[i] {
                if within.contains(slot) && passes(value) {
                    out.set(slot, true);
                }
            }
            out
        };
    }
    let t = CompiledTest::new(v.traits.column(&p.path), &p.test, v.now);
    let words = within.words().len();
    parallel_words(words, threads, |w| {
        let mut bits = 0u64;
        let mut todo = within.words()[w];
        while todo != 0 {
            let b = todo.trailing_zeros();
            todo &= todo - 1;
            if t.passes(w * 64 + b as usize) {
                bits |= 1 << b;
            }
        }
        bits
    })
}

/// Computes each word of a bitset of `words` words with `f`, on `threads` threads.
fn parallel_words(words: usize, threads: usize, f: impl Fn(usize) -> u64 + Sync) -> Bitset {
    let mut out = vec![0u64; words];
    if threads <= 1 || words * 64 < PARALLEL_MIN {
        for (w, o) in out.iter_mut().enumerate() {
            *o = f(w);
        }
        return Bitset::from_words(out);
    }
    let per = words.div_ceil(threads);
    std::thread::scope(|s| {
        for (i, chunk) in out.chunks_mut(per).enumerate() {
            let f = &f;
            s.spawn(move || {
                for (j, o) in chunk.iter_mut().enumerate() {
                    *o = f(i * per + j);
                }
            });
        }
    });
    Bitset::from_words(out)
}

/// A `where` filter compiled against a partition's columns.
enum RowFilter<'a> {
    And(Vec<RowFilter<'a>>),
    Or(Vec<RowFilter<'a>>),
    Not(Box<RowFilter<'a>>),
    Leaf(CompiledTest<'a>),
}

impl<'a> RowFilter<'a> {
    fn compile(e: &'a PropExpr, part: &'a Partition, now: Millis) -> RowFilter<'a> {
        match e {
            Logic::And(t) => {
                RowFilter::And(t.iter().map(|x| Self::compile(x, part, now)).collect())
            }
            Logic::Or(t) => RowFilter::Or(t.iter().map(|x| Self::compile(x, part, now)).collect()),
            Logic::Not(x) => RowFilter::Not(Box::new(Self::compile(x, part, now))),
            Logic::Leaf(p) => {
                RowFilter::Leaf(CompiledTest::new(part.props.column(&p.path), &p.test, now))
            }
        }
    }

    #[inline]
    fn passes(&self, row: usize) -> bool {
        match self {
            RowFilter::And(t) => t.iter().all(|x| x.passes(row)),
            RowFilter::Or(t) => t.iter().any(|x| x.passes(row)),
            RowFilter::Not(x) => !x.passes(row),
            RowFilter::Leaf(t) => t.passes(row),
        }
    }
}

/// Folds every row of `part` inside `window` that passes `filter` into an accumulator per
/// thread (`init` makes one, `f` adds a row); returns the accumulators.
fn fold_matching_rows<A: Send>(
    part: &Partition,
    filter: Option<&PropExpr>,
    window: Window,
    now: Millis,
    threads: usize,
    init: impl Fn() -> A + Sync,
    f: impl Fn(&mut A, usize) + Sync,
) -> Vec<A> {
    let filter = filter.map(|e| RowFilter::compile(e, part, now));
    let (lo, hi) = match window {
        Window::Ever => (None, None),
        Window::Last(p) => (Some(now.saturating_sub(p.millis())), Some(now)),
    };
    let run = |from: usize, to: usize| {
        let mut acc = init();
        for (i, &t) in part.ts[from..to].iter().enumerate() {
            // The window of `Window::contains`: (now - period, now].
            if lo.is_some_and(|lo| t <= lo) || hi.is_some_and(|hi| t > hi) {
                continue;
            }
            let r = from + i;
            if filter.as_ref().is_none_or(|x| x.passes(r)) {
                f(&mut acc, r);
            }
        }
        acc
    };
    let n = part.len();
    if threads <= 1 || n < PARALLEL_MIN {
        return vec![run(0, n)];
    }
    let per = n.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let run = &run;
                s.spawn(move || run((i * per).min(n), ((i + 1) * per).min(n)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a scan thread panicked"))
            .collect()
    })
}

/// Calls `f(row)` for every row of `part` inside `window` that passes `filter`.
fn matching_rows(
    part: &Partition,
    filter: Option<&PropExpr>,
    window: Window,
    now: Millis,
    threads: usize,
    f: impl Fn(usize) + Sync,
) {
    fold_matching_rows(part, filter, window, now, threads, || (), |_, r| f(r));
}

/// Counts of matching rows per live profile, one array per thread. Counters saturate at a
/// cap that is enough to decide "at least / at most / exactly N"; small caps use bytes, so
/// the arrays stay small and need no atomics.
enum Counts {
    Bytes(Vec<Vec<u8>>),
    Words(Vec<Vec<u32>>),
}

impl Counts {
    #[inline]
    fn total(&self, slot: usize) -> u64 {
        match self {
            Counts::Bytes(v) => v.iter().map(|c| u64::from(c[slot])).sum(),
            Counts::Words(v) => v.iter().map(|c| u64::from(c[slot])).sum(),
        }
    }
}

/// Matching rows of `e` per live profile, one array per thread, each counter bumped by `bump`.
fn count_per_profile<T: Copy + Default + Send>(
    v: &BatchView<'_>,
    e: &EventCond,
    part: &Partition,
    threads: usize,
    bump: impl Fn(&mut T) + Sync,
) -> Vec<Vec<T>> {
    let slots = v.live_of.len();
    // Rows keep the slot they were applied to; only merged ones need mapping to the live one.
    let live_of = |s: u32| (if v.merged { v.live_of[s as usize] } else { s }) as usize;
    fold_matching_rows(
        part,
        e.filter.as_ref(),
        e.window,
        v.now,
        threads,
        || vec![T::default(); slots],
        |c, r| bump(&mut c[live_of(part.slot[r])]),
    )
}

fn event_condition(v: &BatchView<'_>, e: &EventCond, threads: usize, within: &Bitset) -> Bitset {
    // The count above which the answer cannot change.
    let cap = match e.occurrence {
        Occurrence::AtLeast(n) | Occurrence::AtMost(n) | Occurrence::Exactly(n) => u64::from(n) + 1,
        Occurrence::Never => 1,
    };
    let counts = match v.events.partition(&e.event) {
        None => Counts::Bytes(Vec::new()),
        Some(part) => match u8::try_from(cap) {
            Ok(cap) => Counts::Bytes(count_per_profile(v, e, part, threads, |n: &mut u8| {
                *n = n.saturating_add(1).min(cap)
            })),
            Err(_) => Counts::Words(count_per_profile(v, e, part, threads, |n: &mut u32| {
                *n = n.saturating_add(1)
            })),
        },
    };
    let words = within.words().len();
    parallel_words(words, threads, |w| {
        let mut todo = within.words()[w];
        let mut bits = 0u64;
        while todo != 0 {
            let b = todo.trailing_zeros();
            todo &= todo - 1;
            if e.occurrence.accepts(counts.total(w * 64 + b as usize)) {
                bits |= 1 << b;
            }
        }
        bits
    })
}

/// The next instant each live profile's time-dependent definitions can change: the window
/// edges of their matching events and the `within` edges of the dates they test.
pub fn next_edges(
    v: &BatchView<'_>,
    computed: &[usize],
    audiences: &[usize],
    threads: usize,
) -> Vec<(u32, Millis)> {
    let next: Vec<std::sync::atomic::AtomicI64> = (0..v.live_of.len())
        .map(|_| std::sync::atomic::AtomicI64::new(i64::MAX))
        .collect();
    let offer = |live: u32, at: Millis, period: Millis| {
        let mut e = Earliest::after(v.now);
        e.offer(at);
        e.offer(at.saturating_add(period));
        if let Some(t) = e.at {
            next[live as usize].fetch_min(t, Ordering::Relaxed);
        }
    };
    let windowed = |event: &str, filter: Option<&PropExpr>, window: Window| {
        let (Window::Last(p), Some(part)) = (window, v.events.partition(event)) else {
            return;
        };
        matching_rows(part, filter, Window::Ever, v.now, threads, |r| {
            offer(v.live_of[part.slot[r] as usize], part.ts[r], p.millis());
        });
    };
    for &c in computed {
        let def = &v.registry.computed[c].def;
        windowed(&def.event, def.filter.as_ref(), def.window);
    }
    for &a in audiences {
        super::registry::visit_conditions(&v.registry.audiences[a].def.root, &mut |c| match c {
            Condition::Event(e) => windowed(&e.event, e.filter.as_ref(), e.window),
            Condition::Trait(p) => {
                let Test::Within(period) = p.test else {
                    return;
                };
                let (first, rest) = p.path.split_first().expect("paths are never empty");
                let date = |value: &Value| {
                    resolve(value, rest)
                        .and_then(Value::as_str)
                        .and_then(|s| parse_iso8601(s).ok())
                };
                if let Some(i) = v.registry.computed_by_name(first) {
                    for (&slot, value) in &v.computed[i] {
                        if let Some(t) = date(value) {
                            offer(slot, t, period.millis());
                        }
                    }
                } else if let Some(col) = v.traits.column(&p.path) {
                    for slot in v.live.iter() {
                        let cell = col.get(slot as usize);
                        if let Cell::Str(s) = cell {
                            if let Ok(t) = parse_iso8601(s) {
                                offer(slot, t, period.millis());
                            }
                        }
                    }
                }
            }
            Condition::InAudience(_) => {}
        });
    }
    next.into_iter()
        .enumerate()
        .filter_map(|(slot, t)| {
            let t = t.into_inner();
            (t != i64::MAX && v.live.contains(slot as u32)).then_some((slot as u32, t))
        })
        .collect()
}
