//! Evaluation: a compilation seen through the current health view. Everything status, events,
//! metrics and the health payload need, computed once per change.

use std::collections::BTreeMap;

use gtm_crds::config::{ActiveSelections, PoolConfig};
use gtm_crds::pool::HealthState;

use crate::compile::Compilation;
use crate::health::TaskHealth;
use crate::locations::LatencyView;
use crate::selection::{DomainView, PoolView, active_selections, domain_view, pool_views};

/// A compilation under a health view.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Evaluation {
    /// Availability of every accepted pool, by id.
    pub pools: BTreeMap<String, PoolView>,
    /// The active member of every `Sequential` level.
    pub active: ActiveSelections,
    /// What each published domain answers, by id.
    pub domains: BTreeMap<String, DomainView>,
}

/// Evaluates a compilation; `latency` is what the probe locations measure (latency
/// steering); `previous` holds the last active selections, which non-preemptive levels keep
/// while their member stays available and latency steering while no pool beats the margins.
pub(crate) fn evaluate(
    compilation: &Compilation,
    tasks: &BTreeMap<String, TaskHealth>,
    latency: &LatencyView,
    previous: &ActiveSelections,
) -> Evaluation {
    let task = |id: &str| tasks.get(id).map_or(HealthState::Unknown, |t| t.state);
    let pools = pool_views(compilation.pools.values(), &task);
    let active = active_selections(
        &compilation.config,
        compilation.pools.values(),
        &pools,
        latency,
        previous,
    );
    let by_id: BTreeMap<&str, &PoolConfig> = compilation
        .pools
        .iter()
        .map(|(id, p)| (id.as_str(), p))
        .collect();
    let domains = compilation
        .config
        .domains
        .iter()
        .map(|d| (d.id.clone(), domain_view(d, &by_id, &pools, &active)))
        .collect();
    Evaluation {
        pools,
        active,
        domains,
    }
}
