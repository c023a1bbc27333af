//! The health view the operator publishes: every task's verdict as its locations vote it
//! ([`super::vote`]), from the embedded prober (location `local`) and the remote locations
//! ([`LocationBook`]). Pure.
//!
//! - A template's tasks are voted on by the locations it selects (all when it selects none).
//! - The embedded location is fresh while the operator probes; a remote one while its heartbeat
//!   is ([`LocationBook`]).
//! - With no voter (no fresh selected location, or none with a verdict yet), a task keeps its
//!   last verdict; [`Reporting`] says when that is because no selected location is fresh.
//! - A task's verdict keeps the time it was reached (`since`) until it changes; the embedded
//!   prober's health (last probe, latency, last error) stays attached to the task.
//!
//! With no remote location, every task's only voter is the embedded prober, and the view is
//! the embedded prober's own.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use gtm_crds::latency::{first_verdict_within, quantised_millis};
use gtm_crds::pool::HealthState;
use gtm_prober::plan::Location;

use super::book::LocationBook;
use super::vote::Votes;
use crate::compile::CompiledTask;
use crate::health::{Restored, TaskHealth};
use crate::page::{LocationResult, RemoteResults};

/// Which of the locations a template selects report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Reporting {
    /// Selected locations that are fresh, by name.
    pub fresh: Vec<String>,
    /// Selected locations that are stale (they abstain), by name.
    pub stale: Vec<String>,
}

/// The health of every task of a compilation, as voted.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct HealthView {
    /// The verdict of every task, by id.
    pub tasks: BTreeMap<String, TaskHealth>,
    /// How the voters saw each task, by id.
    pub votes: BTreeMap<String, Votes>,
    /// The locations of each template, by template id (`namespace/name`).
    pub reporting: BTreeMap<String, Reporting>,
    /// What each remote location the task's template selects sees of it, by task id (for the
    /// topology page; the embedded prober's view is the task's status).
    pub remote: RemoteResults,
    /// What latency steering ranks pools by: what each fresh location (the embedded one
    /// included) measures.
    pub latency: LatencyView,
}

/// What each fresh location measures, by location.
pub(crate) type LatencyView = BTreeMap<String, LocationLatency>;

/// What one fresh location measures, for latency steering.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LocationLatency {
    /// The latency in milliseconds of each task it judges `Up`, by task id.
    pub measured: BTreeMap<String, u32>,
    /// The tasks its templates give it that it has no verdict of its own on yet (not probed,
    /// or not enough times) and is still awaited on ([`first_verdict_within`]): until it has,
    /// it cannot say which pool is fastest.
    pub unjudged: BTreeSet<String>,
}

impl HealthView {
    /// The view of tasks that were not voted on (tests, and the state before a first pass).
    #[cfg(test)]
    pub(crate) fn of(tasks: BTreeMap<String, TaskHealth>) -> Self {
        Self {
            tasks,
            ..Self::default()
        }
    }
}

/// The embedded prober, as one location.
pub(crate) struct Embedded<'a> {
    /// Its name and labels.
    pub location: &'a Location,
    /// The health of the tasks it runs.
    pub tasks: &'a BTreeMap<String, TaskHealth>,
}

/// The last verdict of every task, which a task with no voter keeps, and since when each
/// location has had a task to judge that it has not judged yet.
#[derive(Clone, Debug, Default)]
pub(crate) struct Quorum {
    last: BTreeMap<String, Restored>,
    awaited: Awaited,
}

/// Since when each location has been awaited on each task, by location, then by task id.
type Awaited = BTreeMap<String, BTreeMap<String, SystemTime>>;

impl Quorum {
    /// Starts from the verdicts recorded before a restart.
    pub(crate) fn new(restored: &BTreeMap<String, Restored>) -> Self {
        Self {
            last: restored.clone(),
            awaited: Awaited::new(),
        }
    }

    /// Whether latency steering still waits for `location`'s first verdict on `task` (see
    /// [`first_verdict_within`]); records in `next` since when it has been awaited.
    fn still_awaited(
        &self,
        location: &str,
        task: &CompiledTask,
        now: SystemTime,
        next: &mut Awaited,
    ) -> bool {
        let since = self
            .awaited
            .get(location)
            .and_then(|t| t.get(&task.id))
            .copied()
            .unwrap_or(now);
        next.entry(location.to_string())
            .or_default()
            .insert(task.id.clone(), since);
        now.duration_since(since).unwrap_or_default() < first_verdict_within(&task.spec)
    }

    /// Votes every task of `tasks` at `now`.
    pub(crate) fn vote(
        &mut self,
        tasks: &BTreeMap<String, CompiledTask>,
        embedded: &Embedded<'_>,
        book: &LocationBook,
        now: SystemTime,
    ) -> HealthView {
        let mut view = HealthView::default();
        let mut last = BTreeMap::new();
        let mut awaited = Awaited::new();
        for (id, task) in tasks {
            let template = task.template.id();
            let reporting = view
                .reporting
                .entry(template)
                .or_insert_with(|| reporting(task, embedded, book, now));
            let local = embedded.tasks.get(id);
            let seen: Vec<LocationResult> = reporting
                .fresh
                .iter()
                .map(|name| (name, true))
                .chain(reporting.stale.iter().map(|name| (name, false)))
                .filter(|(name, _)| **name != embedded.location.name)
                .map(|(name, fresh)| LocationResult {
                    location: name.clone(),
                    fresh,
                    state: book.verdict(name, id).unwrap_or_default(),
                    latency_millis: book.latency(name, id),
                    last_error: None,
                })
                .collect();
            if !seen.is_empty() {
                view.remote.insert(id.clone(), seen);
            }
            let mut votes = Votes::default();
            for name in &reporting.fresh {
                // The embedded prober's verdict counts as its own once it has probed (after a
                // restart its tasks start from the verdicts recorded before).
                let (state, latency, probed) = if name == &embedded.location.name {
                    let up = local.filter(|h| h.state == HealthState::Up);
                    (
                        local.map(|h| h.state),
                        up.and_then(|h| h.latency).map(quantised_millis),
                        local.is_some_and(|h| h.last_probe.is_some()),
                    )
                } else {
                    (book.verdict(name, id), book.latency(name, id), true)
                };
                let state = state.unwrap_or_default();
                votes.add(state);
                if state == HealthState::Unknown || !probed {
                    if self.still_awaited(name, task, now, &mut awaited) {
                        let seen = view.latency.entry(name.clone()).or_default();
                        seen.unjudged.insert(id.clone());
                    }
                } else if let Some(ms) = latency {
                    let seen = view.latency.entry(name.clone()).or_default();
                    seen.measured.insert(id.clone(), ms);
                }
            }
            let (previous, previous_since) = self
                .last
                .get(id)
                .copied()
                .unwrap_or((HealthState::Unknown, None));
            let state = votes
                .decide(task.spec.failure_rate_percent)
                .unwrap_or(previous);
            let since = if state == previous {
                previous_since
            } else {
                match local {
                    Some(h) if h.state == state => h.since,
                    _ => Some(now),
                }
            };
            let mut health = local
                .cloned()
                .unwrap_or_else(|| TaskHealth::new(state, since));
            health.state = state;
            health.since = since;
            last.insert(id.clone(), (state, since));
            view.tasks.insert(id.clone(), health);
            view.votes.insert(id.clone(), votes);
        }
        self.last = last;
        self.awaited = awaited;
        view
    }
}

/// The locations a task's template selects, fresh or stale: the embedded one (always fresh)
/// and the remote ones.
fn reporting(
    task: &CompiledTask,
    embedded: &Embedded<'_>,
    book: &LocationBook,
    now: SystemTime,
) -> Reporting {
    let mut out = Reporting::default();
    if embedded.location.selected_by(&task.spec) {
        out.fresh.push(embedded.location.name.clone());
    }
    for (name, location) in book.iter() {
        let selected = task
            .spec
            .locations
            .as_ref()
            .is_none_or(|s| s.selects(name, &location.labels));
        if !selected {
            continue;
        }
        if book.is_fresh(name, now) {
            out.fresh.push(name.to_string());
        } else {
            out.stale.push(name.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use HealthState::{Down, Unknown, Up};
    use gtm_crds::config::SCHEMA_VERSION;
    use gtm_crds::location::{EMBEDDED_LOCATION, Heartbeat, Verdicts};
    use gtm_crds::manifest::Kind;
    use gtm_crds::template::{HealthCheckTemplateSpec, LocationName, LocationSelector};

    use super::*;
    use crate::inventory::ObjectKey;

    const TASK: &str = "ns/tcp@192.0.2.1#80";
    const BOUND: Duration = Duration::from_secs(30);

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
    }

    fn tasks(rate: u8, locations: Option<LocationSelector>) -> BTreeMap<String, CompiledTask> {
        let mut spec: HealthCheckTemplateSpec =
            serde_json::from_value(serde_json::json!({"protocol": "TCP"})).unwrap();
        spec.failure_rate_percent = rate;
        spec.locations = locations;
        BTreeMap::from([(
            TASK.to_string(),
            CompiledTask {
                id: TASK.into(),
                template: ObjectKey::new(Kind::HealthCheckTemplate, "ns", "tcp"),
                spec,
                target: "192.0.2.1".into(),
                port: Some(80),
                pool: ObjectKey::new(Kind::AddressPool, "ns", "p"),
            },
        )])
    }

    fn local() -> Location {
        Location {
            name: EMBEDDED_LOCATION.into(),
            labels: BTreeMap::new(),
        }
    }

    /// A book where each of `remote` (name, verdict) heartbeats at 0.
    fn book(remote: &[(&str, HealthState)]) -> LocationBook {
        let mut book = LocationBook::new(BOUND);
        for (name, state) in remote {
            book.heartbeat(
                &Heartbeat {
                    schema_version: SCHEMA_VERSION,
                    location: name.to_string(),
                    labels: BTreeMap::new(),
                    observed_time: at(0).try_into().unwrap(),
                    interval_seconds: 10,
                },
                at(0),
            );
            book.verdicts(&Verdicts::new(name, 1, [(TASK, *state)]));
        }
        book
    }

    fn health(state: HealthState) -> BTreeMap<String, TaskHealth> {
        BTreeMap::from([(TASK.to_string(), TaskHealth::new(state, Some(at(0))))])
    }

    /// The verdict and votes of [`TASK`].
    fn vote(
        quorum: &mut Quorum,
        rate: u8,
        local_state: HealthState,
        book: &LocationBook,
        now: SystemTime,
    ) -> (HealthState, Votes) {
        let location = local();
        let embedded = Embedded {
            location: &location,
            tasks: &health(local_state),
        };
        let view = quorum.vote(&tasks(rate, None), &embedded, book, now);
        (view.tasks[TASK].state, view.votes[TASK])
    }

    #[test]
    fn one_failing_location_of_three_does_not_fail_a_task_over_at_50_percent_two_do() {
        let mut q = Quorum::default();
        let b = book(&[("eu", Up), ("us", Down)]);
        assert_eq!(vote(&mut q, 50, Up, &b, at(1)).0, Up);
        let b = book(&[("eu", Down), ("us", Down)]);
        assert_eq!(
            vote(&mut q, 50, Up, &b, at(1)),
            (Down, Votes { up: 1, down: 2 })
        );
    }

    #[test]
    fn a_stale_location_abstains_and_never_fails_a_task() {
        let mut q = Quorum::default();
        let b = book(&[("eu", Down), ("us", Down)]);
        // Fresh: two of three see it down.
        assert_eq!(vote(&mut q, 50, Up, &b, at(10)).0, Down);
        // Both remote locations stale: only the embedded prober votes.
        assert_eq!(
            vote(&mut q, 50, Up, &b, at(31)),
            (Up, Votes { up: 1, down: 0 })
        );
    }

    #[test]
    fn with_no_fresh_location_the_last_verdict_holds_and_reporting_says_so() {
        let only_eu = Some(LocationSelector {
            names: vec![LocationName("eu".into())],
            match_labels: BTreeMap::new(),
        });
        let location = local();
        let none = BTreeMap::new();
        let embedded = Embedded {
            location: &location,
            tasks: &none,
        };
        let b = book(&[("eu", Down)]);
        let mut q = Quorum::default();
        let view = q.vote(&tasks(50, only_eu.clone()), &embedded, &b, at(1));
        assert_eq!(view.tasks[TASK].state, Down);
        assert_eq!(
            view.remote[TASK],
            [LocationResult {
                location: "eu".into(),
                fresh: true,
                state: Down,
                latency_millis: None,
                last_error: None,
            }]
        );
        assert_eq!(view.tasks[TASK].since, Some(at(1)));
        assert_eq!(view.reporting["ns/tcp"].fresh, ["eu"]);
        let view = q.vote(&tasks(50, only_eu), &embedded, &b, at(100));
        assert_eq!(view.tasks[TASK].state, Down, "held");
        assert_eq!(view.tasks[TASK].since, Some(at(1)));
        assert_eq!(view.votes[TASK], Votes::default());
        assert_eq!(
            view.reporting["ns/tcp"],
            Reporting {
                fresh: vec![],
                stale: vec!["eu".into()]
            }
        );
    }

    #[test]
    fn the_embedded_prober_alone_is_the_view_as_before() {
        let mut q = Quorum::new(&BTreeMap::from([(TASK.to_string(), (Down, Some(at(0))))]));
        let b = book(&[]);
        let location = local();
        let mut local_health = health(Up);
        local_health.get_mut(TASK).unwrap().since = Some(at(7));
        local_health.get_mut(TASK).unwrap().latency = Some(Duration::from_millis(3));
        let embedded = Embedded {
            location: &location,
            tasks: &local_health,
        };
        let view = q.vote(&tasks(50, None), &embedded, &b, at(8));
        assert_eq!(
            view.tasks[TASK], local_health[TASK],
            "state, since and probe facts"
        );
        // A new task (Unknown at the embedded prober) stays Unknown.
        let embedded = Embedded {
            location: &location,
            tasks: &health(Unknown),
        };
        let mut fresh = Quorum::default();
        assert_eq!(
            fresh.vote(&tasks(50, None), &embedded, &b, at(8)).tasks[TASK].state,
            Unknown
        );
    }

    #[test]
    fn latency_steering_sees_what_each_location_measured_and_what_it_has_yet_to_judge() {
        let location = local();
        let mut local_health = health(Up);
        let probed = local_health.get_mut(TASK).unwrap();
        probed.latency = Some(Duration::from_millis(3));
        probed.last_probe = Some(at(0));
        let embedded = Embedded {
            location: &location,
            tasks: &local_health,
        };
        let b = book(&[("eu", Unknown), ("us", Down)]);
        let view = Quorum::default().vote(&tasks(50, None), &embedded, &b, at(1));
        assert_eq!(view.latency[EMBEDDED_LOCATION].measured[TASK], 3);
        assert!(view.latency[EMBEDDED_LOCATION].unjudged.is_empty());
        assert_eq!(
            view.latency["eu"],
            LocationLatency {
                measured: BTreeMap::new(),
                unjudged: BTreeSet::from([TASK.to_string()]),
            },
            "no verdict yet"
        );
        assert!(
            !view.latency.contains_key("us"),
            "judged down: nothing to rank by"
        );
    }

    #[test]
    fn a_verdict_restored_or_never_reached_is_awaited_for_a_bounded_time() {
        let location = local();
        // After a restart the embedded prober starts from the recorded verdict, unprobed.
        let restored = health(Up);
        let embedded = Embedded {
            location: &location,
            tasks: &restored,
        };
        let b = book(&[("eu", Unknown)]);
        let mut tasks = tasks(50, None);
        // Short enough that every vote below falls within the locations' freshness.
        tasks.get_mut(TASK).unwrap().spec.interval_seconds = 1;
        let bound = first_verdict_within(&tasks[TASK].spec);
        assert!(bound * 3 < BOUND);
        let mut q = Quorum::default();
        let awaited = |view: &HealthView, location: &str| {
            view.latency
                .get(location)
                .is_some_and(|l| l.unjudged.contains(TASK))
        };
        let view = q.vote(&tasks, &embedded, &b, at(1));
        assert!(awaited(&view, EMBEDDED_LOCATION) && awaited(&view, "eu"));
        let almost = at(1) + bound - Duration::from_millis(1);
        let view = q.vote(&tasks, &embedded, &b, almost);
        assert!(awaited(&view, EMBEDDED_LOCATION) && awaited(&view, "eu"));
        // Past the bound (a target that never meets a threshold), ranking goes on without it.
        let view = q.vote(&tasks, &embedded, &b, at(1) + bound);
        assert!(!awaited(&view, EMBEDDED_LOCATION) && !awaited(&view, "eu"));
        // A verdict clears the wait; losing it later starts a new one.
        let b = book(&[("eu", Up)]);
        let view = q.vote(&tasks, &embedded, &b, at(1) + bound * 2);
        assert!(!awaited(&view, "eu"));
        let b = book(&[("eu", Unknown)]);
        let view = q.vote(&tasks, &embedded, &b, at(1) + bound * 3);
        assert!(awaited(&view, "eu"));
    }
}
