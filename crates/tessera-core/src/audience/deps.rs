//! What a definition depends on. The real-time evaluator uses it to re-evaluate, after an
//! event, only the audiences that event can change, and to know which audiences need timers
//! because their truth can change with the mere passage of time.

use super::ast::{Audience, ComputedDef, Condition, Logic, Predicate, Test, Window};
use super::check::Catalog;
use std::collections::BTreeSet;

/// Everything a definition reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dependencies {
    /// Profile traits, by top-level name (`address.city` depends on `address`).
    pub traits: BTreeSet<String>,
    /// Computed traits, by name (names the [`Catalog`] lists as computed).
    pub computed_traits: BTreeSet<String>,
    /// Event names of `performed` / `did not perform` conditions, or of a computed trait.
    pub events: BTreeSet<String>,
    /// Audiences whose membership is tested.
    pub audiences: BTreeSet<String>,
    /// Whether the result can change with time alone, without any new event: an event window
    /// (`within 30 days`), or a `within` test on a trait or an event property. Absolute dates
    /// (`before`, `after`) do not count: they compare with a fixed instant.
    pub has_time_windows: bool,
}

impl Audience {
    /// What this audience reads. Names that the catalog lists as computed traits are reported
    /// as computed traits (they shadow profile traits of the same name), the others as
    /// profile traits.
    pub fn dependencies(&self, catalog: &Catalog) -> Dependencies {
        let mut d = Dependencies::default();
        visit(&self.root, &mut |c: &Condition| match c {
            Condition::Trait(p) => {
                if let Some(name) = p.path.first().cloned() {
                    if catalog.is_computed(&p.path) {
                        d.computed_traits.insert(name);
                    } else {
                        d.traits.insert(name);
                    }
                }
                d.has_time_windows |= matches!(p.test, Test::Within(_));
            }
            Condition::Event(e) => {
                d.events.insert(e.event.clone());
                d.has_time_windows |= filter_is_relative(e.filter.as_ref(), e.window);
            }
            Condition::InAudience(a) => {
                d.audiences.insert(a.name.clone());
            }
        });
        d
    }
}

impl ComputedDef {
    /// What this computed trait reads: one event name, and whether its value changes with
    /// time alone.
    pub fn dependencies(&self) -> Dependencies {
        Dependencies {
            events: BTreeSet::from([self.event.clone()]),
            has_time_windows: filter_is_relative(self.filter.as_ref(), self.window),
            ..Dependencies::default()
        }
    }
}

fn filter_is_relative(filter: Option<&Logic<Predicate>>, window: Window) -> bool {
    let mut relative = window != Window::Ever;
    if let Some(f) = filter {
        visit(f, &mut |p: &Predicate| {
            relative |= matches!(p.test, Test::Within(_));
        });
    }
    relative
}

fn visit<L>(e: &Logic<L>, f: &mut dyn FnMut(&L)) {
    match e {
        Logic::And(terms) | Logic::Or(terms) => terms.iter().for_each(|t| visit(t, f)),
        Logic::Not(inner) => visit(inner, f),
        Logic::Leaf(l) => f(l),
    }
}
