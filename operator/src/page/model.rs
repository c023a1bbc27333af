//! What the topology page shows, as a pure function of what the operator knows: every access
//! domain with its pools and addresses, what it answers now and why, each task's state per
//! probe location, and the histories. The page's JSON is this model; the HTTP side only
//! serializes it.

use std::collections::{BTreeMap, BTreeSet};

use gtm_crds::domain::{GtmAccessDomainStatus, PoolRef};
use gtm_crds::history::HistoryEntry;
use gtm_crds::manifest::Kind;
use gtm_crds::pool::{AddressMode, AddressStatus, HealthState, PoolAddress, TaskStatus};
use gtm_crds::task_id::TaskId;
use gtm_crds::template::Protocol;
use gtm_crds::{AddressPool, AddressPoolStatus, GtmAccessDomain, LbPolicy, PoolType, RecordType};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde::{Deserialize, Serialize};

use super::{RemoteResults, Snapshot, Source};
use crate::conditions::{ACCEPTED, AVAILABLE, DEGRADED, FAILED_OVER, READY, failed_over, holds};
use crate::inventory::ObjectKey;
use crate::status::ObjectStatus;

/// Most access domains one view lists; a filter narrows a larger set.
pub(crate) const MAX_DOMAINS: usize = 200;

/// The name the page gives the operator's own prober among the probe locations.
pub(crate) const EMBEDDED_LOCATION: &str = "local";

/// What a domain answers now, worst first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) enum DomainState {
    /// No pool is available and it answers nothing (`whenAllUnavailable: NoAnswer`).
    NoAnswer,
    /// No pool is available: it answers the available addresses of the lowest-order pool that
    /// has any, else the lowest-order pool whole.
    FailOpen,
    /// It answers from other than its first-choice pools.
    FailedOver,
    /// It answers from its first choice, but some of those pools' addresses are down.
    Degraded,
    /// It is not answered: not accepted, disabled, or not yet published.
    NotServing,
    /// It answers from its first choice, every address up.
    Healthy,
}

/// Which domains a view lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub(crate) enum StateFilter {
    /// Every domain.
    #[default]
    All,
    /// Every domain that is not `Healthy`.
    Problems,
    /// The domains in one state.
    #[serde(untagged)]
    Only(DomainState),
}

/// The filters of a view, as the page's query string gives them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct Filter {
    /// Only this namespace; all when empty.
    #[serde(default)]
    pub namespace: String,
    /// Only domains in these states.
    #[serde(default)]
    pub state: StateFilter,
    /// Only domains whose name or DNS name contains this text (any case).
    #[serde(default)]
    pub q: String,
}

impl Filter {
    fn admits(&self, domain: &DomainCard) -> bool {
        let state = match self.state {
            StateFilter::All => true,
            StateFilter::Problems => domain.state != DomainState::Healthy,
            StateFilter::Only(s) => domain.state == s,
        };
        let q = self.q.trim().to_ascii_lowercase();
        state
            && (self.namespace.is_empty() || domain.namespace == self.namespace)
            && (q.is_empty()
                || domain.fqdn.to_ascii_lowercase().contains(&q)
                || domain.name.to_ascii_lowercase().contains(&q))
    }
}

/// The whole view.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Topology {
    /// Who computed what is shown.
    pub source: Source,
    /// When.
    pub taken: Time,
    /// Every namespace with an access domain (for the namespace filter).
    pub namespaces: Vec<String>,
    /// How many access domains are in each state, over all of them (unfiltered).
    pub counts: BTreeMap<DomainState, usize>,
    /// How many access domains the filter admits; at most [`MAX_DOMAINS`] are listed.
    pub matching: usize,
    /// The listed access domains, by namespace and name.
    pub domains: Vec<DomainCard>,
}

/// One access domain.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DomainCard {
    /// Namespace.
    pub namespace: String,
    /// Object name.
    pub name: String,
    /// The DNS name answered.
    pub fqdn: String,
    /// The record type answered.
    pub record_type: RecordType,
    /// How it picks pools.
    pub policy: LbPolicy,
    /// Answer TTL in seconds.
    pub ttl: u32,
    /// What it answers now.
    pub state: DomainState,
    /// Why, in the words of its conditions.
    pub why: String,
    /// The pools answering now.
    pub answering: Vec<String>,
    /// Its pools, in the order it lists them.
    pub pools: Vec<PoolCard>,
    /// Its last transitions, newest first.
    pub history: Vec<HistoryEntry>,
}

/// How a pool stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) enum PoolState {
    /// It meets its judgement and every enabled address is available.
    Available,
    /// It meets its judgement, some enabled addresses are not available.
    Degraded,
    /// It does not meet its judgement.
    Unavailable,
    /// Switched off (`enabled: false`).
    Disabled,
    /// Not accepted (see its conditions), or no health known yet.
    Unknown,
    /// The domain names a pool that does not exist.
    Missing,
}

/// One pool of a domain.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PoolCard {
    /// Name.
    pub name: String,
    /// Its order in the domain (`Sequential`, fail-open).
    pub order: u16,
    /// Its weight in the domain (`Weighted`).
    pub weight: u8,
    /// Its type, where it exists.
    pub pool_type: Option<PoolType>,
    /// How it picks addresses, where it exists.
    pub policy: Option<LbPolicy>,
    /// How it stands.
    pub state: PoolState,
    /// Why, in the words of its conditions.
    pub why: String,
    /// Whether the domain answers from it now.
    pub answering: bool,
    /// Answering with no available address: every eligible address answers (fail-open).
    pub fail_open: bool,
    /// The address a `Sequential` pool answers with.
    pub active_address: Option<String>,
    /// Enabled addresses available now.
    pub available_addresses: Option<u32>,
    /// Enabled addresses.
    pub total_addresses: Option<u32>,
    /// Its addresses, in the order it lists them.
    pub addresses: Vec<AddressCard>,
    /// Its last transitions, newest first.
    pub history: Vec<HistoryEntry>,
}

/// One address of a pool.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AddressCard {
    /// The address.
    pub value: String,
    /// Whether it is enabled.
    pub enabled: bool,
    /// Whether checks decide.
    pub mode: AddressMode,
    /// Weight in its pool.
    pub weight: u8,
    /// Order in its pool.
    pub order: u16,
    /// Health verdict over its checks.
    pub state: HealthState,
    /// Whether DNS answers may include it.
    pub available: bool,
    /// When its availability last changed.
    pub since: Option<Time>,
    /// Whether the answer includes it now (for `Weighted`, `RoundRobin` and `SourceNearest`
    /// pools: whether it is among those drawn from).
    pub answered: bool,
    /// Free text from the spec.
    pub remark: Option<String>,
    /// Its health-check tasks.
    pub tasks: Vec<TaskCard>,
}

/// One health-check task of an address.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TaskCard {
    /// The template.
    pub template: String,
    /// Its protocol, where the template exists.
    pub protocol: Option<Protocol>,
    /// The port probed.
    pub port: Option<u16>,
    /// The verdict (the vote of the locations).
    pub state: HealthState,
    /// When the verdict last changed.
    pub since: Option<Time>,
    /// Duration of the last successful probe, in milliseconds.
    pub latency_millis: Option<u32>,
    /// Why the last failed probe failed.
    pub last_error: Option<String>,
    /// When the last probe finished.
    pub last_probe_time: Option<Time>,
    /// What each probe location sees, the operator's own first.
    pub locations: Vec<LocationResult>,
}

/// What one probe location sees of a task.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LocationResult {
    /// The location.
    pub location: String,
    /// Whether it reports in time (a stale location abstains from the vote).
    pub fresh: bool,
    /// Its verdict.
    pub state: HealthState,
    /// Its last successful probe's duration, where it reports one.
    pub latency_millis: Option<u32>,
    /// Its last error, where it reports one.
    pub last_error: Option<String>,
}

fn condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// The view of `snapshot` through `filter`.
pub(crate) fn topology(snapshot: &Snapshot, filter: &Filter) -> Topology {
    let pools: BTreeMap<ObjectKey, (&AddressPool, Option<&AddressPoolStatus>)> = snapshot
        .inventory
        .pools
        .iter()
        .map(|p| {
            let key = ObjectKey::of(Kind::AddressPool, p.as_ref());
            let status = match snapshot.statuses.get(&key) {
                Some(ObjectStatus::Pool(s)) => Some(s),
                _ => p.status.as_ref(),
            };
            (key, (p.as_ref(), status))
        })
        .collect();
    let protocols: BTreeMap<ObjectKey, Protocol> = snapshot
        .inventory
        .templates
        .iter()
        .map(|t| {
            (
                ObjectKey::of(Kind::HealthCheckTemplate, t.as_ref()),
                t.spec.protocol,
            )
        })
        .collect();
    let context = Context {
        pools: &pools,
        protocols: &protocols,
        remote: &snapshot.remote,
    };
    let mut all: Vec<DomainCard> = snapshot
        .inventory
        .domains
        .iter()
        .map(|d| {
            let key = ObjectKey::of(Kind::GtmAccessDomain, d.as_ref());
            let status = match snapshot.statuses.get(&key) {
                Some(ObjectStatus::Domain(s)) => Some(s),
                _ => d.status.as_ref(),
            };
            context.domain(&key, d, status)
        })
        .collect();
    all.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let mut counts = BTreeMap::new();
    for d in &all {
        *counts.entry(d.state).or_insert(0) += 1;
    }
    let namespaces: BTreeSet<String> = all.iter().map(|d| d.namespace.clone()).collect();
    let admitted: Vec<DomainCard> = all.into_iter().filter(|d| filter.admits(d)).collect();
    Topology {
        source: snapshot.source,
        taken: snapshot.taken.clone(),
        namespaces: namespaces.into_iter().collect(),
        counts,
        matching: admitted.len(),
        domains: admitted.into_iter().take(MAX_DOMAINS).collect(),
    }
}

/// What building a domain's card looks up.
struct Context<'a> {
    pools: &'a BTreeMap<ObjectKey, (&'a AddressPool, Option<&'a AddressPoolStatus>)>,
    protocols: &'a BTreeMap<ObjectKey, Protocol>,
    remote: &'a RemoteResults,
}

impl Context<'_> {
    fn domain(
        &self,
        key: &ObjectKey,
        obj: &GtmAccessDomain,
        status: Option<&GtmAccessDomainStatus>,
    ) -> DomainCard {
        let empty = GtmAccessDomainStatus::default();
        let status = status.unwrap_or(&empty);
        let pools: Vec<PoolCard> = obj
            .spec
            .pools
            .iter()
            .map(|r| self.pool(key, r, status.active_pools.contains(&r.name)))
            .collect();
        let (state, why) = domain_state(status, &pools);
        DomainCard {
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            fqdn: obj.spec.domain.clone(),
            record_type: obj.spec.record_type,
            policy: obj.spec.policy,
            ttl: obj.spec.ttl,
            state,
            why,
            answering: status.active_pools.clone(),
            pools,
            history: status.history.clone(),
        }
    }

    fn pool(&self, domain: &ObjectKey, member: &PoolRef, answering: bool) -> PoolCard {
        let key = domain.sibling(Kind::AddressPool, &member.name);
        let Some((obj, status)) = self.pools.get(&key) else {
            return PoolCard {
                name: member.name.clone(),
                order: member.order,
                weight: member.weight,
                pool_type: None,
                policy: None,
                state: PoolState::Missing,
                why: format!("no AddressPool {} in namespace {}", key.name, key.namespace),
                answering: false,
                fail_open: false,
                active_address: None,
                available_addresses: None,
                total_addresses: None,
                addresses: Vec::new(),
                history: Vec::new(),
            };
        };
        let empty = AddressPoolStatus::default();
        let status = status.unwrap_or(&empty);
        let (state, why) = pool_state(obj, status);
        let none_available = status.addresses.iter().all(|a| !a.available);
        let fail_open = answering && none_available && !status.addresses.is_empty();
        let addresses = obj
            .spec
            .addresses
            .iter()
            .map(|spec| {
                let observed = status.addresses.iter().find(|a| a.value == spec.value);
                let answered = answering
                    && observed.is_some_and(|o| {
                        if fail_open {
                            spec.enabled && spec.mode != AddressMode::AlwaysOffline
                        } else if obj.spec.policy == LbPolicy::Sequential {
                            status.active_address.as_deref() == Some(spec.value.as_str())
                        } else {
                            o.available
                        }
                    });
                self.address(&key.namespace, spec, observed, answered)
            })
            .collect();
        PoolCard {
            name: member.name.clone(),
            order: member.order,
            weight: member.weight,
            pool_type: Some(obj.spec.pool_type),
            policy: Some(obj.spec.policy),
            state,
            why,
            answering,
            fail_open,
            active_address: status.active_address.clone(),
            available_addresses: status.available_addresses,
            total_addresses: status.total_addresses,
            addresses,
            history: status.history.clone(),
        }
    }

    fn address(
        &self,
        namespace: &str,
        spec: &PoolAddress,
        observed: Option<&AddressStatus>,
        answered: bool,
    ) -> AddressCard {
        AddressCard {
            value: spec.value.clone(),
            enabled: spec.enabled,
            mode: spec.mode,
            weight: spec.weight,
            order: spec.order,
            state: observed.map_or(HealthState::Unknown, |o| o.state),
            available: observed.is_some_and(|o| o.available),
            since: observed.and_then(|o| o.since.clone()),
            answered,
            remark: spec.remark.clone(),
            tasks: observed
                .map(|o| {
                    o.tasks
                        .iter()
                        .map(|t| self.task(namespace, &spec.value, t))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    fn task(&self, namespace: &str, address: &str, task: &TaskStatus) -> TaskCard {
        let id = TaskId::new(namespace, &task.template, address, task.port).to_string();
        let embedded = LocationResult {
            location: EMBEDDED_LOCATION.to_string(),
            fresh: true,
            state: task.state,
            latency_millis: task.latency_millis,
            last_error: task.last_error.clone(),
        };
        let locations = std::iter::once(embedded)
            .chain(self.remote.get(&id).into_iter().flatten().cloned())
            .collect();
        TaskCard {
            template: task.template.clone(),
            protocol: self
                .protocols
                .get(&ObjectKey::new(
                    Kind::HealthCheckTemplate,
                    namespace,
                    &task.template,
                ))
                .copied(),
            port: task.port,
            state: task.state,
            since: task.since.clone(),
            latency_millis: task.latency_millis,
            last_error: task.last_error.clone(),
            last_probe_time: task.last_probe_time.clone(),
            locations,
        }
    }
}

/// A domain's state and why, from its conditions and its pools.
fn domain_state(status: &GtmAccessDomainStatus, pools: &[PoolCard]) -> (DomainState, String) {
    let conditions = &status.conditions;
    let not = |type_| condition(conditions, type_).filter(|c| !holds(c));
    if let Some(c) = not(ACCEPTED).or_else(|| not(READY)) {
        return (DomainState::NotServing, c.message.clone());
    }
    let Some(c) = condition(conditions, FAILED_OVER) else {
        return (
            DomainState::NotServing,
            "not evaluated yet: no status".to_string(),
        );
    };
    let state = match c.reason.as_str() {
        failed_over::NO_POOL_AVAILABLE => DomainState::NoAnswer,
        failed_over::FAIL_OPEN => DomainState::FailOpen,
        failed_over::PRIMARY
            if pools
                .iter()
                .any(|p| p.answering && p.state != PoolState::Available) =>
        {
            DomainState::Degraded
        }
        failed_over::PRIMARY => DomainState::Healthy,
        _ => DomainState::FailedOver,
    };
    (state, c.message.clone())
}

/// A pool's state and why, from its spec and conditions.
fn pool_state(obj: &AddressPool, status: &AddressPoolStatus) -> (PoolState, String) {
    let conditions = &status.conditions;
    if let Some(c) = condition(conditions, ACCEPTED).filter(|c| !holds(c)) {
        return (PoolState::Unknown, c.message.clone());
    }
    if !obj.spec.enabled {
        return (
            PoolState::Disabled,
            "the pool is disabled (enabled: false)".into(),
        );
    }
    let Some(available) = condition(conditions, AVAILABLE) else {
        return (PoolState::Unknown, "no health known yet".into());
    };
    let degraded = condition(conditions, DEGRADED).filter(|c| holds(c));
    match (holds(available), degraded) {
        (false, _) => (PoolState::Unavailable, available.message.clone()),
        (true, Some(d)) => (
            PoolState::Degraded,
            format!("{}; {}", available.message, d.message),
        ),
        (true, None) => (PoolState::Available, available.message.clone()),
    }
}

#[cfg(test)]
mod tests;
