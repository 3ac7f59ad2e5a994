//! The saved definitions of a workspace, compiled for evaluation: computed traits and
//! audiences with their versions, audiences in dependency order, and the indexes that say which
//! definitions an event, a trait change or the passage of time can change.

use crate::audience::{
    check, check_computed, Audience, Catalog, ComputedDef, Dependencies, Logic, Predicate, Test,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A saved computed trait.
#[derive(Debug, Clone, PartialEq)]
pub struct ComputedTrait {
    pub id: String,
    pub name: String,
    pub version: u32,
    pub def: ComputedDef,
}

/// A saved audience.
#[derive(Debug, Clone, PartialEq)]
pub struct AudienceDef {
    pub id: String,
    pub name: String,
    pub version: u32,
    pub def: Audience,
}

/// Why a set of definitions cannot be used together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Invalid(String),
    #[error("audience \"{0}\" would depend on itself through \"in audience\"")]
    Cycle(String),
    #[error("a computed trait or audience named \"{0}\" already exists")]
    DuplicateName(String),
}

impl RegistryError {
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::Invalid(_) => "definition_type_error",
            RegistryError::Cycle(_) => "definition_cycle",
            RegistryError::DuplicateName(_) => "name_taken",
        }
    }
}

/// The definitions, checked and indexed.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub computed: Vec<ComputedTrait>,
    /// In dependency order: an audience comes after every audience it tests.
    pub audiences: Vec<AudienceDef>,
    pub(super) audience_deps: Vec<Dependencies>,
    /// Audience indices by name.
    pub(super) audience_index: BTreeMap<String, usize>,
    pub(super) computed_index: BTreeMap<String, usize>,
    /// Computed traits and audiences whose value can change with time alone (see
    /// [`Registry::time_dependent`]).
    pub timed_computed: Vec<usize>,
    pub timed_audiences: Vec<usize>,
    /// Prepared plans: per event name, for everything, and for timers.
    plans: BTreeMap<String, Arc<Plan>>,
    plan_all: Arc<Plan>,
    plan_timed: Arc<Plan>,
    plan_none: Arc<Plan>,
}

/// What to evaluate for one kind of change, prepared once per set of definitions so that the
/// per-event path allocates little.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Computed traits to recompute, by index.
    pub computed: Vec<usize>,
    /// Audiences to evaluate, by index, in dependency order.
    pub audiences: Vec<usize>,
    /// The events to read, each with the property paths read of it.
    pub reads: Vec<(String, BTreeSet<Vec<String>>)>,
    /// Computed traits the audiences read (their values are passed to them).
    pub computed_read: Vec<usize>,
    /// The subsets whose results can change with time alone.
    pub timed_computed: Vec<usize>,
    pub timed_audiences: Vec<usize>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.computed.is_empty() && self.audiences.is_empty()
    }
}

impl Registry {
    /// Checks and orders a set of definitions.
    pub fn new(
        computed: Vec<ComputedTrait>,
        audiences: Vec<AudienceDef>,
    ) -> Result<Registry, RegistryError> {
        let mut names = BTreeSet::new();
        for n in computed
            .iter()
            .map(|c| &c.name)
            .chain(audiences.iter().map(|a| &a.name))
        {
            if !names.insert(n.clone()) {
                return Err(RegistryError::DuplicateName(n.clone()));
            }
        }
        let catalog = catalog_of(&computed, audiences.iter().map(|a| a.name.as_str()));
        for c in &computed {
            check_computed(&c.def).map_err(|e| invalid(&c.name, &e))?;
            reject_relative_filters(c.def.filter.as_ref(), &c.name)?;
        }
        for a in &audiences {
            check(&a.def, &catalog).map_err(|e| invalid(&a.name, &e))?;
            let mut bad = Ok(());
            visit_conditions(&a.def.root, &mut |cond| {
                if let crate::audience::Condition::Event(e) = cond {
                    if bad.is_ok() {
                        bad = reject_relative_filters(e.filter.as_ref(), &a.name);
                    }
                }
            });
            bad?;
        }
        // Order audiences so each comes after those it tests (Kahn's algorithm, ties by name
        // so the order is deterministic).
        let deps: BTreeMap<String, Dependencies> = audiences
            .iter()
            .map(|a| (a.name.clone(), a.def.dependencies(&catalog)))
            .collect();
        let mut by_name: BTreeMap<String, AudienceDef> =
            audiences.into_iter().map(|a| (a.name.clone(), a)).collect();
        let mut ordered = Vec::new();
        let mut done = BTreeSet::new();
        while !by_name.is_empty() {
            let ready: Vec<String> = by_name
                .keys()
                .filter(|n| deps[*n].audiences.iter().all(|d| done.contains(d)))
                .cloned()
                .collect();
            if ready.is_empty() {
                let stuck = by_name.keys().next().cloned().unwrap_or_default();
                return Err(RegistryError::Cycle(stuck));
            }
            for n in ready {
                done.insert(n.clone());
                ordered.push(by_name.remove(&n).expect("listed above"));
            }
        }
        let audience_deps = ordered.iter().map(|a| deps[&a.name].clone()).collect();
        let audience_index = ordered
            .iter()
            .enumerate()
            .map(|(i, a)| (a.name.clone(), i))
            .collect();
        let computed_index = computed
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        let mut r = Registry {
            computed,
            audiences: ordered,
            audience_deps,
            audience_index,
            computed_index,
            ..Registry::default()
        };
        (r.timed_computed, r.timed_audiences) = r.time_dependent();
        let mut names: BTreeSet<String> = r.computed.iter().map(|c| c.def.event.clone()).collect();
        for d in &r.audience_deps {
            names.extend(d.events.iter().cloned());
        }
        r.plans = names
            .into_iter()
            .map(|n| {
                let (c, a) = r.affected(Some(&n), &[]);
                let plan = Arc::new(r.plan(c, a));
                (n, plan)
            })
            .collect();
        r.plan_all = Arc::new(r.plan(
            (0..r.computed.len()).collect(),
            (0..r.audiences.len()).collect(),
        ));
        r.plan_timed = Arc::new(r.plan(r.timed_computed.clone(), r.timed_audiences.clone()));
        Ok(r)
    }

    /// A plan for these definitions.
    pub fn plan(&self, computed: Vec<usize>, audiences: Vec<usize>) -> Plan {
        let reads = self
            .event_reads(&computed, &audiences)
            .into_iter()
            .collect();
        let mut computed_read: Vec<usize> = audiences
            .iter()
            .flat_map(|&a| self.audience_deps[a].computed_traits.iter())
            .filter_map(|name| self.computed_by_name(name))
            .collect();
        computed_read.sort_unstable();
        computed_read.dedup();
        Plan {
            timed_computed: computed
                .iter()
                .copied()
                .filter(|c| self.timed_computed.contains(c))
                .collect(),
            timed_audiences: audiences
                .iter()
                .copied()
                .filter(|a| self.timed_audiences.contains(a))
                .collect(),
            computed,
            audiences,
            reads,
            computed_read,
        }
    }

    /// The plan for an event named `event` (or none) that changed `traits`.
    pub fn plan_for(&self, event: Option<&str>, traits: &[String]) -> Arc<Plan> {
        if !traits.is_empty() {
            let (c, a) = self.affected(event, traits);
            return Arc::new(self.plan(c, a));
        }
        match event.and_then(|e| self.plans.get(e)) {
            Some(p) => p.clone(),
            None => self.plan_none.clone(),
        }
    }

    /// The plan that evaluates everything (new and merged profiles).
    pub fn plan_all(&self) -> Arc<Plan> {
        self.plan_all.clone()
    }

    /// The plan of a timer: everything whose result can change with time alone.
    pub fn plan_timed(&self) -> Arc<Plan> {
        self.plan_timed.clone()
    }

    /// The catalogue a new or unsaved definition is checked against.
    pub fn catalog(&self) -> Catalog {
        catalog_of(
            &self.computed,
            self.audiences.iter().map(|a| a.name.as_str()),
        )
    }

    pub fn audience_by_name(&self, name: &str) -> Option<usize> {
        self.audience_index.get(name).copied()
    }

    pub fn computed_by_name(&self, name: &str) -> Option<usize> {
        self.computed_index.get(name).copied()
    }

    pub fn deps(&self, audience: usize) -> &Dependencies {
        &self.audience_deps[audience]
    }

    /// What definitions an event named `event` that changed `traits` can change: computed
    /// traits by index, and audiences by index in dependency order.
    pub fn affected(&self, event: Option<&str>, traits: &[String]) -> (Vec<usize>, Vec<usize>) {
        let computed: Vec<usize> = self
            .computed
            .iter()
            .enumerate()
            .filter(|(_, c)| event == Some(c.def.event.as_str()))
            .map(|(i, _)| i)
            .collect();
        let changed_computed: BTreeSet<&str> = computed
            .iter()
            .map(|&i| self.computed[i].name.as_str())
            .collect();
        let mut changed_audiences: BTreeSet<&str> = BTreeSet::new();
        let mut audiences = Vec::new();
        for (i, a) in self.audiences.iter().enumerate() {
            let d = &self.audience_deps[i];
            let hit = event.is_some_and(|e| d.events.contains(e))
                || traits.iter().any(|t| d.traits.contains(t))
                || d.computed_traits
                    .iter()
                    .any(|c| changed_computed.contains(c.as_str()))
                || d.audiences
                    .iter()
                    .any(|x| changed_audiences.contains(x.as_str()));
            if hit {
                changed_audiences.insert(a.name.as_str());
                audiences.push(i);
            }
        }
        (computed, audiences)
    }

    /// Definitions whose value can change with time alone, and the audiences that depend on
    /// them (directly or through computed traits and other audiences).
    pub fn time_dependent(&self) -> (Vec<usize>, Vec<usize>) {
        let computed: Vec<usize> = (0..self.computed.len())
            .filter(|&i| self.computed[i].def.dependencies().has_time_windows)
            .collect();
        let timed: BTreeSet<&str> = computed
            .iter()
            .map(|&i| self.computed[i].name.as_str())
            .collect();
        let mut timed_audiences: BTreeSet<&str> = BTreeSet::new();
        let mut audiences = Vec::new();
        for (i, a) in self.audiences.iter().enumerate() {
            let d = &self.audience_deps[i];
            if d.has_time_windows
                || d.computed_traits.iter().any(|c| timed.contains(c.as_str()))
                || d.audiences
                    .iter()
                    .any(|x| timed_audiences.contains(x.as_str()))
            {
                timed_audiences.insert(a.name.as_str());
                audiences.push(i);
            }
        }
        (computed, audiences)
    }

    /// The event names the definitions read, each with the property paths read of it (the
    /// aggregated property and every `where` path). Audiences read computed traits' cached
    /// values, so their events are not included.
    pub fn event_reads(
        &self,
        computed: &[usize],
        audiences: &[usize],
    ) -> BTreeMap<String, BTreeSet<Vec<String>>> {
        let mut out: BTreeMap<String, BTreeSet<Vec<String>>> = BTreeMap::new();
        let mut add =
            |event: &str, filter: Option<&Logic<Predicate>>, property: Option<&Vec<String>>| {
                let paths = out.entry(event.to_string()).or_default();
                if let Some(p) = property {
                    paths.insert(p.clone());
                }
                if let Some(f) = filter {
                    visit_leaves(f, &mut |p: &Predicate| {
                        paths.insert(p.path.clone());
                    });
                }
            };
        for &c in computed {
            let d = &self.computed[c].def;
            add(&d.event, d.filter.as_ref(), d.property.as_ref());
        }
        for &a in audiences {
            visit_conditions(&self.audiences[a].def.root, &mut |c| {
                if let crate::audience::Condition::Event(e) = c {
                    add(&e.event, e.filter.as_ref(), None);
                }
            });
        }
        out
    }
}

fn invalid(name: &str, errors: &[crate::audience::LangError]) -> RegistryError {
    let all: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    RegistryError::Invalid(format!("\"{name}\": {}", all.join("; ")))
}

fn catalog_of<'a>(computed: &[ComputedTrait], audiences: impl Iterator<Item = &'a str>) -> Catalog {
    let mut catalog = Catalog::new();
    for c in computed {
        catalog = catalog.with_computed(&c.name, c.def.result_kind());
    }
    for a in audiences {
        catalog = catalog.with_audience(a);
    }
    catalog
}

/// `within` inside a `where` filter would make whether an event matches depend on the time
/// of evaluation; saved definitions express recency with the event window instead
/// (`within 30 days` after the filter), which timers keep exact.
fn reject_relative_filters(
    filter: Option<&Logic<Predicate>>,
    name: &str,
) -> Result<(), RegistryError> {
    let mut relative = false;
    if let Some(f) = filter {
        visit_leaves(f, &mut |p: &Predicate| {
            relative |= matches!(p.test, Test::Within(_))
        });
    }
    match relative {
        true => Err(RegistryError::Invalid(format!(
            "\"{name}\": `within` cannot be used inside `where`; put the window after the \
             filter, as in `performed \"X\" where p = 1 within 30 days`"
        ))),
        false => Ok(()),
    }
}

pub(super) fn visit_leaves<L>(e: &Logic<L>, f: &mut dyn FnMut(&L)) {
    match e {
        Logic::And(t) | Logic::Or(t) => t.iter().for_each(|x| visit_leaves(x, f)),
        Logic::Not(x) => visit_leaves(x, f),
        Logic::Leaf(l) => f(l),
    }
}

pub(super) fn visit_conditions(
    e: &Logic<crate::audience::Condition>,
    f: &mut dyn FnMut(&crate::audience::Condition),
) {
    visit_leaves(e, f)
}
