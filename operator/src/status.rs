//! The status each object should have, computed from the compile verdicts and the health view.
//! Pure: the caller compares it with the current status and writes only on change.

use std::collections::BTreeMap;

use gtm_crds::availability::address_health;
use gtm_crds::config::PoolConfig;
use gtm_crds::config::ZoneConfig;
use gtm_crds::domain::GtmAccessDomainStatus;
use gtm_crds::manifest::Kind;
use gtm_crds::pool::{AddressStatus, HealthState, TaskStatus};
use gtm_crds::task_id::TaskId;
use gtm_crds::template::HealthCheckTemplateStatus;
use gtm_crds::{
    AddressPool, AddressPoolStatus, GtmAccessDomain, GtmZone, GtmZoneStatus, HealthCheckTemplate,
};
use gtm_prober::ProbeError;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::compile::{Compilation, Publication, Verdict};
use crate::conditions::{
    ACCEPTED, AVAILABLE, CHECKS_RUNNABLE, Cond, DEGRADED, DNSSEC_KEY_READY, FAILED_OVER,
    LOCATIONS_REPORTING, READY, capped, failed_over, settle,
};
use crate::endpoints::PoolEndpoints;
use crate::evaluate::Evaluation;
use crate::health::{TaskHealth, api_time};
use crate::history;
use crate::inventory::{Inventory, ObjectKey};
use crate::locations::{HealthView, Reporting, Votes};
use crate::selection::{DomainView, PoolView};
use crate::zone_keys::{self, KeyState, KeyStates};

/// `Accepted` and `Ready` from a verdict.
fn verdict_conditions(verdict: &Verdict, kind_noun: &str) -> Vec<Cond> {
    let accepted = match &verdict.accepted {
        Ok(()) => Cond::new(
            ACCEPTED,
            true,
            "Accepted",
            format!("the {kind_noun} is valid"),
        ),
        Err(r) => Cond::new(ACCEPTED, false, r.reason.as_str(), r.message.clone()),
    };
    let ready_message = match verdict.publication {
        Publication::Published => format!("the {kind_noun} is published to the DNS pods"),
        Publication::Disabled => format!("the {kind_noun} is disabled (enabled: false)"),
        Publication::Unreferenced => {
            format!("no published GtmAccessDomain uses this {kind_noun}")
        }
        Publication::NotAccepted => format!("the {kind_noun} is not accepted; see Accepted"),
    };
    let ready = Cond::new(
        READY,
        verdict.publication == Publication::Published,
        verdict.publication.reason(),
        ready_message,
    );
    vec![accepted, ready]
}

/// Status of a template whose status was `previous`; `reporting` says which of its locations
/// report, when tasks use it.
pub(crate) fn template_status(
    obj: &HealthCheckTemplate,
    previous: Option<&HealthCheckTemplateStatus>,
    verdict: &Verdict,
    reporting: Option<&Reporting>,
    now: &Time,
) -> HealthCheckTemplateStatus {
    let previous = previous
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let generation = obj.metadata.generation;
    let mut conds = verdict_conditions(verdict, "template");
    conds.extend(reporting.map(locations_reporting));
    HealthCheckTemplateStatus {
        observed_generation: generation,
        conditions: settle(previous, conds, generation, now),
        used_by: Some(verdict.used_by),
        reporting_locations: reporting.map(|r| u32::try_from(r.fresh.len()).unwrap_or(u32::MAX)),
    }
}

/// The `LocationsReporting` condition of a template whose tasks are voted on.
fn locations_reporting(r: &Reporting) -> Cond {
    let names = |n: &[String]| n.join(", ");
    let selected = r.fresh.len() + r.stale.len();
    match (r.fresh.is_empty(), r.stale.is_empty()) {
        (false, true) => Cond::new(
            LOCATIONS_REPORTING,
            true,
            "Reporting",
            format!(
                "{selected} selected probe location(s) report: {}",
                names(&r.fresh)
            ),
        ),
        (false, false) => Cond::new(
            LOCATIONS_REPORTING,
            true,
            "SomeStale",
            format!(
                "{} of {selected} selected probe locations report: {}; stale, abstaining: {}",
                r.fresh.len(),
                names(&r.fresh),
                names(&r.stale)
            ),
        ),
        (true, false) => Cond::new(
            LOCATIONS_REPORTING,
            false,
            "NoFreshLocation",
            format!(
                "no selected probe location reports (stale: {}); the tasks keep their last verdicts",
                names(&r.stale)
            ),
        ),
        (true, true) => Cond::new(
            LOCATIONS_REPORTING,
            false,
            "NoLocationSelected",
            "no probe location that reports matches locations; the tasks keep their last verdicts",
        ),
    }
}

/// Status of a zone; `published` is its data in the compiled config, `serial` the zone's
/// SOA serial as published, `key` its DNSSEC key's state when it is signed.
pub(crate) fn zone_status(
    obj: &GtmZone,
    previous: Option<&GtmZoneStatus>,
    verdict: &Verdict,
    published: Option<&ZoneConfig>,
    serial: Option<u32>,
    key: Option<&KeyState>,
    now: &Time,
) -> GtmZoneStatus {
    let previous = previous
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let generation = obj.metadata.generation;
    let mut conds = verdict_conditions(verdict, "zone");
    if let Some(key) = key {
        if key.refused_by_dns_pods()
            && let Some(ready) = conds.iter_mut().find(|c| c.type_ == READY && c.status)
        {
            *ready = Cond::new(
                READY,
                false,
                "DnssecKeyNotReady",
                "the zone is signed but its key is not usable (see DnssecKeyReady): the DNS pods refuse every config that signs it and keep serving the last good one",
            );
        }
        conds.push(match key {
            KeyState::Ready(s) => Cond::new(
                DNSSEC_KEY_READY,
                true,
                zone_keys::reason::KEY_LOADED,
                format!(
                    "key tag {}, algorithm {}: give the parent zone the DS record in status.dnssec.ds",
                    s.key_tag, s.algorithm
                ),
            ),
            KeyState::Problem { reason, message } => {
                Cond::new(DNSSEC_KEY_READY, false, *reason, message.clone())
            }
        });
    }
    GtmZoneStatus {
        observed_generation: generation,
        conditions: settle(previous, conds, generation, now),
        serial,
        records: published
            .map(|z| u32::try_from(z.records.len() + z.glue().len()).unwrap_or(u32::MAX)),
        dnssec: match key {
            Some(KeyState::Ready(s)) => Some(s.clone()),
            _ => None,
        },
    }
}

/// The health facts a pool status shows.
pub(crate) struct PoolHealth<'a> {
    /// The compiled pool (accepted pools only).
    pub config: &'a PoolConfig,
    /// Availability of its addresses and of the pool.
    pub view: &'a PoolView,
    /// Per task health, by task id.
    pub tasks: &'a BTreeMap<String, TaskHealth>,
    /// Per task votes of the probe locations, by task id.
    pub votes: &'a BTreeMap<String, Votes>,
    /// The active address, for `Sequential` pools.
    pub active: Option<&'a str>,
}

/// Status of a pool whose status was `previous`; its history records the transitions between
/// the two. `endpoints`: how its endpoint sources resolved, if it has some.
pub(crate) fn pool_status(
    obj: &AddressPool,
    previous: Option<&AddressPoolStatus>,
    verdict: &Verdict,
    health: Option<PoolHealth<'_>>,
    endpoints: Option<&PoolEndpoints>,
    now: &Time,
) -> AddressPoolStatus {
    let empty = AddressPoolStatus::default();
    let old = previous.unwrap_or(&empty);
    let generation = obj.metadata.generation;
    let mut conds = verdict_conditions(verdict, "pool");
    conds.extend(endpoints.map(PoolEndpoints::condition));
    let mut status = AddressPoolStatus {
        observed_generation: generation,
        ..Default::default()
    };
    if let Some(h) = health {
        let enabled = h.config.addresses.iter().filter(|a| a.enabled).count();
        let up = h.view.addresses.iter().filter(|a| **a).count();
        let down: Vec<&str> = h
            .config
            .addresses
            .iter()
            .zip(&h.view.addresses)
            .filter(|(a, ok)| a.enabled && !**ok)
            .map(|(a, _)| a.value.as_str())
            .collect();
        let summary = format!(
            "{up} of {enabled} enabled addresses available (judgement {:?}{})",
            h.config.health_judgement,
            h.config
                .min_available
                .map(|m| format!(", minAvailable {m}"))
                .unwrap_or_default()
        );
        conds.push(if !h.config.enabled {
            Cond::new(
                AVAILABLE,
                false,
                "Disabled",
                "the pool is disabled (enabled: false)",
            )
        } else if h.view.available {
            Cond::new(AVAILABLE, true, "JudgementMet", summary)
        } else {
            Cond::new(AVAILABLE, false, "JudgementNotMet", summary)
        });
        conds.push(checks_runnable(h.config, h.tasks));
        conds.push(if down.is_empty() {
            Cond::new(
                DEGRADED,
                false,
                "AllAvailable",
                "every enabled address is available",
            )
        } else {
            Cond::new(
                DEGRADED,
                true,
                "AddressesUnavailable",
                format!("unavailable: {}", down.join(", ")),
            )
        });
        status.available_addresses = Some(u32::try_from(up).unwrap_or(u32::MAX));
        status.total_addresses = Some(u32::try_from(h.config.addresses.len()).unwrap_or(u32::MAX));
        status.active_address = h.active.map(str::to_string);
        status.addresses = h
            .config
            .addresses
            .iter()
            .zip(&h.view.addresses)
            .map(|(a, available)| {
                let task = |id: &str| h.tasks.get(id).map_or(HealthState::Unknown, |t| t.state);
                let previous = old.addresses.iter().find(|p| p.value == a.value);
                let since = match previous {
                    Some(p) if p.available == *available => p.since.clone(),
                    _ => Some(now.clone()),
                };
                AddressStatus {
                    value: a.value.clone(),
                    state: address_health(a, task),
                    available: *available,
                    source: endpoints.and_then(|e| e.origin.get(&a.value).cloned()),
                    since,
                    tasks: a
                        .tasks
                        .iter()
                        .map(|id| task_status(&a.value, id, h.tasks.get(id), h.votes.get(id)))
                        .collect(),
                }
            })
            .collect();
    }
    status.conditions = settle(&old.conditions, conds, generation, now);
    status.history = history::record(&old.history, history::pool_transitions(old, &status, now));
    status
}

/// A task's status entry of `address`; the template, target and port are read back from the
/// task id.
fn task_status(
    address: &str,
    id: &str,
    health: Option<&TaskHealth>,
    votes: Option<&Votes>,
) -> TaskStatus {
    // Ids are built by compile; anything else is shown whole.
    let (template, target, port) = id.parse::<TaskId>().map_or_else(
        |_| (id.to_string(), None, None),
        |t| (t.template, Some(t.target).filter(|t| t != address), t.port),
    );
    let locations_up = votes.map(|v| v.up);
    let locations_down = votes.map(|v| v.down);
    let Some(h) = health else {
        return TaskStatus {
            template,
            port,
            target,
            state: HealthState::Unknown,
            since: None,
            last_probe_time: None,
            latency_millis: None,
            last_error: None,
            locations_up,
            locations_down,
        };
    };
    TaskStatus {
        template,
        port,
        target,
        locations_up,
        locations_down,
        state: h.state,
        since: h.since.and_then(api_time),
        last_probe_time: h.last_probe.and_then(api_time),
        latency_millis: h
            .latency
            .map(|l| u32::try_from(l.as_millis()).unwrap_or(u32::MAX)),
        last_error: h.last_error.as_ref().map(|e| capped(e.to_string())),
    }
}

/// The condition saying whether every check of a pool can run at all: a check that cannot
/// (no ICMP socket, an unusable header) never tells anything about the address.
fn checks_runnable(config: &PoolConfig, tasks: &BTreeMap<String, TaskHealth>) -> Cond {
    let broken: Vec<(&str, &ProbeError)> = config
        .addresses
        .iter()
        .flat_map(|a| a.tasks.iter().map(move |t| (a.value.as_str(), t)))
        .filter_map(|(value, t)| {
            // The last error stays after later successes: only a task that is not Up now
            // can still be unable to run.
            let h = tasks.get(t).filter(|h| h.state != HealthState::Up)?;
            let e = h.last_error.as_ref()?;
            matches!(
                e,
                ProbeError::IcmpUnavailable(_) | ProbeError::InvalidCheck(_)
            )
            .then_some((value, e))
        })
        .collect();
    match broken.first() {
        None => Cond::new(
            CHECKS_RUNNABLE,
            true,
            "Runnable",
            "every health check can run",
        ),
        Some((_, e)) => Cond::new(
            CHECKS_RUNNABLE,
            false,
            e.reason(),
            broken
                .iter()
                .map(|(v, e)| format!("{v}: {e}"))
                .collect::<Vec<_>>()
                .join("; "),
        ),
    }
}

/// Status of a domain whose status was `previous`; its history records the transition between
/// the two.
pub(crate) fn domain_status(
    obj: &GtmAccessDomain,
    previous: Option<&GtmAccessDomainStatus>,
    verdict: &Verdict,
    view: Option<&DomainView>,
    now: &Time,
) -> GtmAccessDomainStatus {
    let empty = GtmAccessDomainStatus::default();
    let old = previous.unwrap_or(&empty);
    let generation = obj.metadata.generation;
    let mut conds = verdict_conditions(verdict, "access domain");
    let mut status = GtmAccessDomainStatus {
        observed_generation: generation,
        last_failover_time: old.last_failover_time.clone(),
        ..Default::default()
    };
    if let Some(v) = view {
        let names: Vec<String> = v
            .answering
            .iter()
            .map(|id| {
                ObjectKey::from_id(Kind::AddressPool, id).map_or_else(|| id.clone(), |k| k.name)
            })
            .collect();
        conds.push(if v.all_unavailable {
            Cond::new(
                FAILED_OVER,
                true,
                if names.is_empty() {
                    failed_over::NO_POOL_AVAILABLE
                } else {
                    failed_over::FAIL_OPEN
                },
                if names.is_empty() {
                    "no pool is available and whenAllUnavailable is NoAnswer".to_string()
                } else if v.keeps_health {
                    format!(
                        "no pool is available; failing open to {}, which answers its available addresses (too few for its judgement) by its policy",
                        names.join(", ")
                    )
                } else {
                    format!(
                        "no pool is available; failing open to {}, all its addresses (none is available)",
                        names.join(", ")
                    )
                },
            )
        } else if v.failed_over {
            Cond::new(
                FAILED_OVER,
                true,
                failed_over::POOL_UNAVAILABLE,
                format!("answering from {}", names.join(", ")),
            )
        } else {
            Cond::new(
                FAILED_OVER,
                false,
                failed_over::PRIMARY,
                format!("answering from {}", names.join(", ")),
            )
        });
        if !old.active_pools.is_empty() && old.active_pools != names {
            status.last_failover_time = Some(now.clone());
        }
        status.active_pools = names;
    }
    status.conditions = settle(&old.conditions, conds, generation, now);
    status.history = history::record(&old.history, history::domain_transitions(old, &status, now));
    status
}

/// The status of any of the kinds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ObjectStatus {
    /// Of a `GtmAccessDomain`.
    Domain(GtmAccessDomainStatus),
    /// Of an `AddressPool`.
    Pool(AddressPoolStatus),
    /// Of a `HealthCheckTemplate`.
    Template(HealthCheckTemplateStatus),
    /// Of a `GtmZone`.
    Zone(GtmZoneStatus),
}

impl ObjectStatus {
    /// The status as JSON, for a status patch.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Domain(s) => serde_json::to_value(s),
            Self::Pool(s) => serde_json::to_value(s),
            Self::Template(s) => serde_json::to_value(s),
            Self::Zone(s) => serde_json::to_value(s),
        }
        .expect("statuses serialize")
    }

    /// The same status without last probe times and latencies, which change with every
    /// probe.
    pub(crate) fn without_probe_times(&self) -> Self {
        let mut s = self.clone();
        if let Self::Pool(p) = &mut s {
            for task in p.addresses.iter_mut().flat_map(|a| a.tasks.iter_mut()) {
                task.last_probe_time = None;
                task.latency_millis = None;
            }
        }
        s
    }

    /// The conditions.
    pub(crate) fn conditions(&self) -> &[Condition] {
        match self {
            Self::Domain(s) => &s.conditions,
            Self::Pool(s) => &s.conditions,
            Self::Template(s) => &s.conditions,
            Self::Zone(s) => &s.conditions,
        }
    }
}

/// What zone statuses show besides the compilation, by zone (canonical).
pub(crate) struct ZoneFacts<'a> {
    /// The SOA serials as published.
    pub serials: &'a BTreeMap<String, u32>,
    /// The states of the signed zones' keys.
    pub keys: &'a KeyStates,
}

/// The status every object of an inventory should have, each computed from its previous one:
/// `newer`'s for the object (by key and uid) where it has one, else the object's own. `newer`
/// holds what this process wrote or computed last, which the objects may not show yet (a
/// leader's watch cache lags its writes; local mode reads objects without status from files).
pub(crate) fn compute_all<'a>(
    inventory: &Inventory,
    newer: impl Fn(&ObjectKey, Option<&str>) -> Option<&'a ObjectStatus>,
    compilation: &Compilation,
    zones: &ZoneFacts<'_>,
    evaluation: &Evaluation,
    view: &HealthView,
    now: &Time,
) -> BTreeMap<ObjectKey, ObjectStatus> {
    let mut out = BTreeMap::new();
    let verdict = |key: &ObjectKey| {
        compilation
            .verdicts
            .get(key)
            .cloned()
            .expect("compile gives every object a verdict")
    };
    for t in &inventory.templates {
        let key = ObjectKey::of(Kind::HealthCheckTemplate, t.as_ref());
        let previous = match newer(&key, t.metadata.uid.as_deref()) {
            Some(ObjectStatus::Template(s)) => Some(s),
            _ => t.status.as_ref(),
        };
        let s = template_status(
            t,
            previous,
            &verdict(&key),
            view.reporting.get(&key.id()),
            now,
        );
        out.insert(key, ObjectStatus::Template(s));
    }
    for p in &inventory.pools {
        let key = ObjectKey::of(Kind::AddressPool, p.as_ref());
        let id = key.id();
        let health = compilation.pools.get(&id).map(|config| PoolHealth {
            config,
            view: &evaluation.pools[&id],
            tasks: &view.tasks,
            votes: &view.votes,
            active: evaluation.active.pools.get(&id).map(String::as_str),
        });
        let previous = match newer(&key, p.metadata.uid.as_deref()) {
            Some(ObjectStatus::Pool(s)) => Some(s),
            _ => p.status.as_ref(),
        };
        let s = pool_status(
            p,
            previous,
            &verdict(&key),
            health,
            inventory.endpoints.get(&key),
            now,
        );
        out.insert(key, ObjectStatus::Pool(s));
    }
    for d in &inventory.domains {
        let key = ObjectKey::of(Kind::GtmAccessDomain, d.as_ref());
        let view = evaluation.domains.get(&key.id());
        let previous = match newer(&key, d.metadata.uid.as_deref()) {
            Some(ObjectStatus::Domain(s)) => Some(s),
            _ => d.status.as_ref(),
        };
        let s = domain_status(d, previous, &verdict(&key), view, now);
        out.insert(key, ObjectStatus::Domain(s));
    }
    for z in &inventory.gtm_zones {
        let key = ObjectKey::of(Kind::GtmZone, z.as_ref());
        let id = key.id();
        let published = compilation.config.zone_data.iter().find(|d| d.id == id);
        let previous = match newer(&key, z.metadata.uid.as_deref()) {
            Some(ObjectStatus::Zone(s)) => Some(s),
            _ => z.status.as_ref(),
        };
        let serial = published.and_then(|d| zones.serials.get(&d.name).copied());
        let key_state = published.and_then(|d| zones.keys.get(&d.name));
        let s = zone_status(
            z,
            previous,
            &verdict(&key),
            published,
            serial,
            key_state,
            now,
        );
        out.insert(key, ObjectStatus::Zone(s));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gtm_crds::HealthJudgement;
    use gtm_crds::config::AddressConfig;
    use gtm_crds::pool::{AddressMode, PoolType};

    #[test]
    fn checks_that_cannot_run_say_so_until_they_run_again() {
        let pool = PoolConfig {
            id: "ns/p".into(),
            pool_type: PoolType::IPv4,
            enabled: true,
            policy: Default::default(),
            sequential_mode: Default::default(),
            affinity: None,
            health_judgement: HealthJudgement::AnyOk,
            min_available: None,
            addresses: vec![AddressConfig {
                value: "127.0.0.1".into(),
                enabled: true,
                mode: AddressMode::Auto,
                weight: 1,
                order: 1,
                sources: Default::default(),
                health_judgement: HealthJudgement::AnyOk,
                tasks: vec!["ns/ping@127.0.0.1".into()],
            }],
        };
        let mut h = TaskHealth::new(HealthState::Down, None);
        h.last_error = Some(ProbeError::IcmpUnavailable("no socket".into()));
        let tasks = BTreeMap::from([("ns/ping@127.0.0.1".to_string(), h.clone())]);
        let c = checks_runnable(&pool, &tasks);
        assert!(!c.status);
        assert_eq!(c.reason, "IcmpUnavailable");
        assert!(
            c.message.contains("127.0.0.1: ICMP unavailable: no socket"),
            "{}",
            c.message
        );

        h.state = HealthState::Up;
        let tasks = BTreeMap::from([("ns/ping@127.0.0.1".to_string(), h)]);
        assert!(checks_runnable(&pool, &tasks).status);
    }
}
