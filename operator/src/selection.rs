//! What the published config answers right now, from the operator's health view: which
//! addresses and pools are available, the active member of every `Sequential` level (the
//! operator decides it so that every DNS pod answers alike), and which pools a domain answers
//! from. Pure: the same function serves status, events, metrics and the health payload.

use std::collections::{BTreeMap, BTreeSet};

use gtm_crds::availability::{
    MemberView, PoolChoice, address_available, pool_available, pool_choice, pool_eligible,
    sequential_pick,
};
use gtm_crds::config::{ActiveSelections, DomainConfig, GtmConfig, PoolConfig};
use gtm_crds::latency::rank;
use gtm_crds::pool::HealthState;

use crate::locations::LatencyView;
use gtm_crds::{LbPolicy, SequentialMode};

/// Availability of one pool's addresses and of the pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PoolView {
    /// Per address, in address order.
    pub addresses: Vec<bool>,
    /// Whether the pool meets its judgement.
    pub available: bool,
}

/// Availability of every pool.
pub(crate) fn pool_views<'a>(
    pools: impl IntoIterator<Item = &'a PoolConfig>,
    task: &impl Fn(&str) -> HealthState,
) -> BTreeMap<String, PoolView> {
    pools
        .into_iter()
        .map(|p| (p.id.clone(), pool_view(p, task)))
        .collect()
}

/// Availability of one pool.
pub(crate) fn pool_view(pool: &PoolConfig, task: &impl Fn(&str) -> HealthState) -> PoolView {
    let addresses: Vec<bool> = pool
        .addresses
        .iter()
        .map(|a| address_available(a, task))
        .collect();
    let available = pool_available(pool, &addresses);
    PoolView {
        addresses,
        available,
    }
}

/// The member a `Sequential` level answers with: the contract's rule
/// ([`sequential_pick`]) over the available members. `None` when no member is available
/// (fail-open applies then); the previous choice is kept in that case so that a
/// non-preemptive level does not jump when members come back.
fn sequential_pick_or_keep<'a>(
    mode: SequentialMode,
    members: impl Iterator<Item = (&'a str, u16, bool)>,
    previous: Option<&'a str>,
) -> Option<String> {
    let available = members
        .filter(|(_, _, ok)| *ok)
        .map(|(id, order, _)| (id, order));
    sequential_pick(mode, available, previous)
        .or(previous)
        .map(str::to_string)
}

/// The active member of every `Sequential` domain of a config and of every `Sequential` pool
/// in `views` (given as `pools`), and the pool ranking of every location of every `Latency`
/// domain by what the locations measure (`latency`).
pub(crate) fn active_selections<'a>(
    config: &GtmConfig,
    pools: impl IntoIterator<Item = &'a PoolConfig> + Clone,
    views: &BTreeMap<String, PoolView>,
    latency: &LatencyView,
    previous: &ActiveSelections,
) -> ActiveSelections {
    let mut active = ActiveSelections::default();
    let by_id: BTreeMap<&str, &PoolConfig> = pools
        .clone()
        .into_iter()
        .map(|p| (p.id.as_str(), p))
        .collect();
    for domain in &config.domains {
        let Some(steering) = &domain.latency else {
            continue;
        };
        let available: Vec<(&str, &PoolConfig, &PoolView)> = domain
            .pools
            .iter()
            .filter_map(|m| {
                let view = views.get(&m.pool).filter(|v| v.available)?;
                Some((m.pool.as_str(), *by_id.get(m.pool.as_str())?, view))
            })
            .collect();
        let mut rankings = BTreeMap::new();
        for location in &steering.locations {
            let seen = latency.get(&location.name);
            let held = previous
                .latency
                .get(&domain.id)
                .and_then(|l| l.get(&location.name));
            let awaited = seen.is_some_and(|s| {
                available
                    .iter()
                    .any(|(_, pool, view)| awaits_verdict(pool, view, &s.unjudged))
            });
            let ranked = if awaited {
                // Ranking now would crown whichever pool it happened to probe first.
                held.into_iter()
                    .flatten()
                    .filter(|p| available.iter().any(|(id, ..)| id == p))
                    .cloned()
                    .collect()
            } else {
                let candidates: Vec<(String, u32)> = available
                    .iter()
                    .filter_map(|(id, pool, view)| {
                        let ms = pool_latency(pool, view, |t| seen?.measured.get(t).copied())?;
                        Some((id.to_string(), ms))
                    })
                    .collect();
                let held = held.and_then(|r| r.first()).map(String::as_str);
                rank(&candidates, held, steering)
            };
            if !ranked.is_empty() {
                rankings.insert(location.name.clone(), ranked);
            }
        }
        if !rankings.is_empty() {
            active.latency.insert(domain.id.clone(), rankings);
        }
    }
    for pool in pools.into_iter().filter(|p| has_active_member(p.policy)) {
        let view = &views[&pool.id];
        let members = pool
            .addresses
            .iter()
            .zip(&view.addresses)
            .map(|(a, ok)| (a.value.as_str(), a.order, *ok));
        let prev = previous.pools.get(&pool.id).map(String::as_str);
        if let Some(pick) = sequential_pick_or_keep(pool.sequential_mode, members, prev) {
            active.pools.insert(pool.id.clone(), pick);
        }
    }
    for domain in config
        .domains
        .iter()
        .filter(|d| has_active_member(d.policy))
    {
        let members = domain.pools.iter().map(|m| {
            let ok = views.get(&m.pool).is_some_and(|v| v.available);
            (m.pool.as_str(), m.order, ok)
        });
        let prev = previous.domains.get(&domain.id).map(String::as_str);
        if let Some(pick) = sequential_pick_or_keep(domain.sequential_mode, members, prev) {
            active.domains.insert(domain.id.clone(), pick);
        }
    }
    active
}

/// Whether a location has yet to judge one of `pool`'s available addresses: one of the
/// address's tasks is `unjudged` there.
fn awaits_verdict(pool: &PoolConfig, view: &PoolView, unjudged: &BTreeSet<String>) -> bool {
    !unjudged.is_empty()
        && pool
            .addresses
            .iter()
            .zip(&view.addresses)
            .filter(|(_, ok)| **ok)
            .any(|(a, _)| a.tasks.iter().any(|t| unjudged.contains(t)))
}

/// A pool's latency from one location: the mean over its available addresses of each one's
/// fastest task (`task` gives a task's latency there); `None` when no available address is
/// measured.
fn pool_latency(
    pool: &PoolConfig,
    view: &PoolView,
    task: impl Fn(&str) -> Option<u32>,
) -> Option<u32> {
    let per_address: Vec<u64> = pool
        .addresses
        .iter()
        .zip(&view.addresses)
        .filter(|(_, ok)| **ok)
        .filter_map(|(a, _)| a.tasks.iter().filter_map(|t| task(t)).min())
        .map(u64::from)
        .collect();
    let n = u64::try_from(per_address.len()).ok().filter(|n| *n > 0)?;
    u32::try_from(per_address.iter().sum::<u64>() / n).ok()
}

/// Whether a level with `policy` answers one chosen member, its active one, which the operator
/// decides and publishes so that every DNS pod answers the same.
pub(crate) fn has_active_member(policy: LbPolicy) -> bool {
    match policy {
        LbPolicy::Sequential => true,
        LbPolicy::RoundRobin
        | LbPolicy::Weighted
        | LbPolicy::SourceNearest
        | LbPolicy::Sticky
        | LbPolicy::Latency => false,
    }
}

/// The pools a domain answers from now (ids), whether it is failing open, and whether it is
/// failed over: answering from something other than its first choice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DomainView {
    /// Pool ids answering (for `SourceNearest` and `Latency`, the pools some client may get).
    pub answering: Vec<String>,
    /// True when no pool is available and the domain fails open (or answers nothing).
    pub all_unavailable: bool,
    /// True when the answer is not what a fully healthy setup gives.
    pub failed_over: bool,
    /// Failing open to a pool that still has available addresses: only those answer.
    pub keeps_health: bool,
}

/// What a domain answers now.
pub(crate) fn domain_view(
    domain: &DomainConfig,
    pools: &BTreeMap<&str, &PoolConfig>,
    views: &BTreeMap<String, PoolView>,
    active: &ActiveSelections,
) -> DomainView {
    let members: Vec<MemberView> = domain
        .pools
        .iter()
        .map(|m| MemberView {
            order: m.order,
            available: views.get(&m.pool).is_some_and(|v| v.available),
            eligible: pools.get(m.pool.as_str()).is_some_and(|p| pool_eligible(p)),
            healthy: views
                .get(&m.pool)
                .is_some_and(|v| v.addresses.iter().any(|a| *a)),
        })
        .collect();
    let id = |i: usize| domain.pools[i].pool.clone();
    match pool_choice(&members, domain.when_all_unavailable) {
        PoolChoice::Available(idx) => {
            let primary = || {
                (0..members.len())
                    .min_by_key(|&i| (members[i].order, i))
                    .map(id)
            };
            // Exhaustive: a new policy does not compile until it says what it answers.
            let (answering, failed_over) = match domain.policy {
                LbPolicy::Sequential => {
                    let first = idx
                        .iter()
                        .copied()
                        .min_by_key(|&i| (members[i].order, i))
                        .map(id);
                    let answering: Vec<String> = active
                        .domains
                        .get(&domain.id)
                        .filter(|a| idx.iter().any(|&i| domain.pools[i].pool == **a))
                        .cloned()
                        .or(first)
                        .into_iter()
                        .collect();
                    let failed_over = answering.first() != primary().as_ref();
                    (answering, failed_over)
                }
                LbPolicy::RoundRobin
                | LbPolicy::Weighted
                | LbPolicy::SourceNearest
                | LbPolicy::Sticky
                | LbPolicy::Latency => (
                    idx.iter().copied().map(id).collect(),
                    idx.len() < members.len(),
                ),
            };
            DomainView {
                answering,
                all_unavailable: false,
                failed_over,
                keeps_health: false,
            }
        }
        PoolChoice::FailOpen(i) => DomainView {
            answering: vec![id(i)],
            all_unavailable: true,
            failed_over: true,
            keeps_health: members[i].healthy,
        },
        PoolChoice::Nothing => DomainView {
            answering: Vec::new(),
            all_unavailable: true,
            failed_over: true,
            keeps_health: false,
        },
    }
}

#[cfg(test)]
mod tests;
