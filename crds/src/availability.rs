//! The availability rules, in one place so that the operator (status, events,
//! active selections) and the DNS pods (answers) compute the same thing.
//!
//! | level   | available when |
//! |---------|----------------|
//! | task    | its verdict is not `Down` (`Unknown` counts as healthy: a new or restarted checker never blackholes) |
//! | address | enabled, and `AlwaysOnline`, or `Auto` with no tasks or with its tasks meeting its judgement; never `AlwaysOffline` |
//! | pool    | enabled, and its available addresses meet its judgement over its enabled addresses and its `minAvailable` |
//!
//! Fail-open keeps what is still known to work: when no pool of a domain is available, the
//! lowest-order pool that still has available addresses (below its judgement or its
//! `minAvailable`) answers them by its own policy; only when no pool has any, the lowest-order
//! pool that has eligible addresses answers with all of them. "Eligible"
//! means what an operator has not switched off: enabled and not `AlwaysOffline` (a disabled
//! pool is never answered).
//!
//! `Sequential` levels answer with one member ([`sequential_pick`]): the operator decides it
//! and publishes it as the level's current member, and every DNS pod applies the same rule
//! to the published member, so that all pods answer alike.

use crate::common::{HealthJudgement, SequentialMode};
use crate::config::{AddressConfig, PoolConfig};
use crate::domain::Fallback;
use crate::pool::{AddressMode, HealthState};

/// Whether `ok` healthy members out of `total` meet a judgement. No members never do.
pub fn judgement_met(judgement: HealthJudgement, ok: usize, total: usize) -> bool {
    if total == 0 {
        return false;
    }
    let percent = |p: usize| ok * 100 >= p * total;
    match judgement {
        HealthJudgement::AnyOk => ok >= 1,
        HealthJudgement::P30Ok => percent(30),
        HealthJudgement::P50Ok => percent(50),
        HealthJudgement::P70Ok => percent(70),
        HealthJudgement::AllOk => ok == total,
    }
}

/// Whether a task verdict counts as passing.
pub fn task_passes(state: HealthState) -> bool {
    state != HealthState::Down
}

/// An address's own health over its tasks, before mode and enabled are applied: `Up` when the
/// passing tasks meet its judgement (or it has no tasks), `Down` otherwise, `Unknown` while no
/// task has a verdict.
pub fn address_health(addr: &AddressConfig, task: impl Fn(&str) -> HealthState) -> HealthState {
    if addr.tasks.is_empty() {
        return HealthState::Up;
    }
    let states: Vec<HealthState> = addr.tasks.iter().map(|t| task(t)).collect();
    if states.iter().all(|s| *s == HealthState::Unknown) {
        return HealthState::Unknown;
    }
    let ok = states.iter().filter(|s| task_passes(**s)).count();
    if judgement_met(addr.health_judgement, ok, states.len()) {
        HealthState::Up
    } else {
        HealthState::Down
    }
}

/// Whether an address may be answered (not counting fail-open).
pub fn address_available(addr: &AddressConfig, task: impl Fn(&str) -> HealthState) -> bool {
    if !addr.enabled {
        return false;
    }
    match addr.mode {
        AddressMode::AlwaysOffline => false,
        AddressMode::AlwaysOnline => true,
        AddressMode::Auto => task_passes(address_health(addr, task)),
    }
}

/// Whether an address may be answered when its pool fails open.
pub fn address_eligible(addr: &AddressConfig) -> bool {
    addr.enabled && addr.mode != AddressMode::AlwaysOffline
}

/// Whether a pool may be answered, given which of its addresses are available (in address
/// order).
pub fn pool_available(pool: &PoolConfig, address_available: &[bool]) -> bool {
    if !pool.enabled {
        return false;
    }
    let total = pool.addresses.iter().filter(|a| a.enabled).count();
    let ok = address_available.iter().filter(|a| **a).count();
    judgement_met(pool.health_judgement, ok, total)
        && pool.min_available.is_none_or(|m| ok >= usize::from(m))
}

/// Whether a pool has anything to answer when failing open.
pub fn pool_eligible(pool: &PoolConfig) -> bool {
    pool.enabled && pool.addresses.iter().any(address_eligible)
}

/// The pools of a domain that may answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PoolChoice {
    /// These members (indices into the domain's pool list) are available.
    Available(Vec<usize>),
    /// None is available; this member answers: by its policy among its available addresses,
    /// or with all its eligible ones when none is ([`address_choice`]).
    FailOpen(usize),
    /// Nothing to answer: no eligible pool, or the domain says `NoAnswer`.
    Nothing,
}

/// A domain member as the pool-level rules see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberView {
    /// The member's order.
    pub order: u16,
    /// Whether the pool is available.
    pub available: bool,
    /// Whether the pool is eligible for fail-open.
    pub eligible: bool,
    /// Whether some of the pool's addresses are available, even if the pool misses its
    /// judgement.
    pub healthy: bool,
}

/// Which pools of a domain may answer, before the domain's policy picks among them.
pub fn pool_choice(members: &[MemberView], fallback: Fallback) -> PoolChoice {
    let available: Vec<usize> = (0..members.len())
        .filter(|&i| members[i].available)
        .collect();
    if !available.is_empty() {
        return PoolChoice::Available(available);
    }
    if fallback == Fallback::NoAnswer {
        return PoolChoice::Nothing;
    }
    // A pool with available addresses first, then the lowest order; ties go to the earlier
    // member.
    (0..members.len())
        .filter(|&i| members[i].eligible)
        .min_by_key(|&i| (!members[i].healthy, members[i].order, i))
        .map_or(PoolChoice::Nothing, PoolChoice::FailOpen)
}

/// The addresses of a chosen pool that may answer, before the pool's policy picks among them:
/// the available ones, or, when none is, every eligible one (fail-open).
pub fn address_choice(pool: &PoolConfig, address_available: &[bool]) -> Vec<usize> {
    let available: Vec<usize> = (0..address_available.len())
        .filter(|&i| address_available[i])
        .collect();
    if available.is_empty() {
        eligible_addresses(pool)
    } else {
        available
    }
}

/// The member a `Sequential` level answers with, out of `candidates`: the members that may
/// answer, as (id, order) in member order. `NonPreemptive`: the `current` member while it is a
/// candidate (a recovered member of lower order does not take over). Otherwise, and always
/// when `Preemptive`: the lowest order, the earlier member on ties. `None` without candidates.
pub fn sequential_pick<K: PartialEq>(
    mode: SequentialMode,
    candidates: impl IntoIterator<Item = (K, u16)>,
    current: Option<K>,
) -> Option<K> {
    let stay_on = match mode {
        SequentialMode::NonPreemptive => current,
        SequentialMode::Preemptive => None,
    };
    let mut lowest: Option<(K, u16)> = None;
    for (id, order) in candidates {
        if stay_on.as_ref() == Some(&id) {
            return Some(id);
        }
        if lowest.as_ref().is_none_or(|(_, o)| order < *o) {
            lowest = Some((id, order));
        }
    }
    lowest.map(|(id, _)| id)
}

/// Every address of a pool that fail-open may answer.
pub fn eligible_addresses(pool: &PoolConfig) -> Vec<usize> {
    (0..pool.addresses.len())
        .filter(|&i| address_eligible(&pool.addresses[i]))
        .collect()
}

#[cfg(test)]
mod tests;
