//! Health as an overlay on a compiled config: the verdicts, numbered like the config's tasks,
//! and what they decide per pool (available addresses, fail-open, the level's candidates) and
//! per domain (available pools, fail-open, the level's candidates).
//!
//! [`Compiled::with_health`] applies a new health payload to the snapshot being served without
//! compiling the config again: it compares the verdicts task by task and the active members
//! level by level, recompiles only the pools that have a changed task or active member, and
//! only the domains that have such a pool whose availability changed (or whose own active
//! member or latency ranking changed); everything else (names, records, the other pools and
//! domains) is shared with the snapshot before. At 100 000 addresses one flapping address costs the work of its
//! pool and its domains, not of the config.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use gtm_crds::availability::{
    MemberView, PoolChoice, address_available, address_choice, eligible_addresses, pool_available,
    pool_choice, pool_eligible,
};
use gtm_crds::config::{ActiveSelections, DomainConfig, HealthVerdicts, PoolConfig};
use gtm_crds::pool::{HealthState, PoolType};

use super::compile::CompileError;
use super::level::{LatencyTable, Level, MemberSpec};
use super::{Base, Compiled, DomainChoice, DomainLevel, PoolPlan};

impl Base {
    /// The verdict of every task of the config, from a health payload: its numbered verdicts
    /// when they are numbered by this config's task list, else its verdicts by id (tasks it
    /// does not list are `Unknown`; tasks the config does not have are ignored).
    ///
    /// The operator lists the verdicts by id sorted by task id, as [`Base::tasks`] is: one
    /// pass over both, a comparison or two per task (a hash lookup per task was a third of the
    /// time a verdict took at 100 000 tasks); an id out of that order is looked up.
    fn verdicts(&self, health: &HealthVerdicts<'_>) -> Result<Vec<HealthState>, CompileError> {
        if let Some(numbered) = &health.numbered
            && *numbered.task_list == *self.task_list
        {
            return Ok(numbered.states(self.tasks.len())?);
        }
        let mut verdicts = vec![HealthState::Unknown; self.tasks.len()];
        let mut next = 0;
        for (id, state) in &health.tasks {
            let id = id.as_ref();
            while self.tasks.get(next).is_some_and(|(t, _)| &**t < id) {
                next += 1;
            }
            let task = match self.tasks.get(next) {
                Some((t, task)) if &**t == id => Some(*task),
                _ => self.task(id),
            };
            if let Some(task) = task {
                verdicts[task as usize] = *state;
            }
        }
        Ok(verdicts)
    }

    /// The number of task `id`.
    fn task(&self, id: &str) -> Option<u32> {
        self.tasks
            .binary_search_by(|(t, _)| (**t).cmp(id))
            .ok()
            .map(|i| self.tasks[i].1)
    }

    /// Compiles pool `index` under `verdicts` and `active`.
    fn pool(
        &self,
        index: usize,
        verdicts: &[HealthState],
        active: &ActiveSelections,
        rotation: Arc<AtomicUsize>,
    ) -> Result<(PoolPlan, MemberView), CompileError> {
        let verdict = |id: &str| {
            self.task(id)
                .map_or(HealthState::Unknown, |t| verdicts[t as usize])
        };
        compile_pool(&self.config.pools[index], verdict, active, rotation)
    }

    /// Compiles the pick of domain `index` given how its pools are seen.
    fn domain_level(
        &self,
        index: usize,
        views: &[MemberView],
        active: &ActiveSelections,
        rotation: Arc<AtomicUsize>,
    ) -> Result<DomainLevel, CompileError> {
        let d = &self.config.domains[index];
        let member_views: Vec<MemberView> = self.domains[index]
            .members
            .iter()
            .zip(&d.pools)
            .map(|(member, m)| MemberView {
                order: m.order,
                ..views[member.pool]
            })
            .collect();
        compile_domain_level(d, &member_views, active, rotation)
    }
}

impl Compiled {
    /// Compiles every pool and domain of `base` under `health`, with the given `RoundRobin`
    /// positions (indexed like the config's pools and domains).
    pub(super) fn overlay(
        base: Arc<Base>,
        health: &HealthVerdicts<'_>,
        pool_rotations: Vec<Arc<AtomicUsize>>,
        domain_rotations: Vec<Arc<AtomicUsize>>,
    ) -> Result<Self, CompileError> {
        let verdicts = base.verdicts(health)?;
        let mut pools = Vec::with_capacity(pool_rotations.len());
        let mut views = Vec::with_capacity(pool_rotations.len());
        for (index, rotation) in pool_rotations.into_iter().enumerate() {
            let (plan, view) = base.pool(index, &verdicts, &health.active, rotation)?;
            pools.push(Arc::new(plan));
            views.push(view);
        }
        let domain_levels = domain_rotations
            .into_iter()
            .enumerate()
            .map(|(index, rotation)| {
                base.domain_level(index, &views, &health.active, rotation)
                    .map(Arc::new)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            base,
            health_generation: health.generation,
            verdicts,
            active: health.active.clone(),
            pools,
            views,
            domain_levels,
        })
    }

    /// This snapshot's config under `health`: the pools with a changed verdict or active
    /// member are compiled again, then the domains with such a pool whose availability changed
    /// or with a changed active member; the rest is shared with `self`. Answers exactly as
    /// [`Compiled::build`] of the same config and health would.
    pub fn with_health(&self, health: &HealthVerdicts<'_>) -> Result<Self, CompileError> {
        let base = &self.base;
        let verdicts = base.verdicts(health)?;
        let mut touched_pools: Vec<usize> = verdicts
            .iter()
            .zip(&self.verdicts)
            .enumerate()
            .filter(|(_, (new, old))| new != old)
            .flat_map(|(task, _)| base.task_pools.of(task))
            .map(|&p| p as usize)
            .collect();
        let pool_ids = changed_keys(&self.active.pools, &health.active.pools);
        touched_pools.extend(indices_of(
            &pool_ids,
            base.config.pools.iter().map(|p| &p.id),
        ));
        touched_pools.sort_unstable();
        touched_pools.dedup();

        let mut pools = self.pools.clone();
        let mut views = self.views.clone();
        let mut touched_domains = Vec::new();
        for p in touched_pools {
            let rotation = pools[p].level.rotation();
            let (plan, view) = base.pool(p, &verdicts, &health.active, rotation)?;
            if view != views[p] {
                touched_domains.extend(base.pool_domains.of(p).iter().map(|&d| d as usize));
            }
            pools[p] = Arc::new(plan);
            views[p] = view;
        }
        // The domains whose active members or (latency steering) rankings changed.
        let mut domain_ids = changed_keys(&self.active.domains, &health.active.domains);
        domain_ids.extend(changed_keys(&self.active.latency, &health.active.latency));
        touched_domains.extend(indices_of(
            &domain_ids,
            base.config.domains.iter().map(|d| &d.id),
        ));
        touched_domains.sort_unstable();
        touched_domains.dedup();

        let mut domain_levels = self.domain_levels.clone();
        for d in touched_domains {
            let rotation = domain_levels[d].level.rotation();
            domain_levels[d] = Arc::new(base.domain_level(d, &views, &health.active, rotation)?);
        }
        Ok(Self {
            base: base.clone(),
            health_generation: health.generation,
            verdicts,
            active: health.active.clone(),
            pools,
            views,
            domain_levels,
        })
    }
}

#[cfg(test)]
impl Compiled {
    /// Everything the verdicts decided (not the `RoundRobin` positions), to compare two ways
    /// of applying them.
    pub(super) fn health_fingerprint(&self) -> String {
        use std::fmt::Write as _;
        let mut out = format!("{:?} {:?} {:?}\n", self.verdicts, self.active, self.views);
        for p in &self.pools {
            let _ = writeln!(
                out,
                "pool {} {} {:?} {:?} {}",
                p.alias,
                p.fail_open,
                p.eligible,
                p.alias_fallback,
                p.level.fingerprint()
            );
        }
        for d in &self.domain_levels {
            let _ = writeln!(out, "domain {:?} {}", d.choice, d.level.fingerprint());
        }
        out
    }
}

/// The keys whose values differ between `old` and `new` (present in one only, or changed).
fn changed_keys<'m, V: PartialEq>(
    old: &'m std::collections::BTreeMap<String, V>,
    new: &'m std::collections::BTreeMap<String, V>,
) -> Vec<&'m str> {
    let removed_or_changed = old.iter().filter(|(k, v)| new.get(*k) != Some(v));
    let added = new.iter().filter(|(k, _)| !old.contains_key(*k));
    removed_or_changed
        .chain(added)
        .map(|(k, _)| k.as_str())
        .collect()
}

/// The positions of `ids` among `all`. A linear scan: active members change on failover, a
/// few at a time, and the scan spares every snapshot a map from ids to positions.
fn indices_of<'a>(ids: &[&str], all: impl Iterator<Item = &'a String>) -> Vec<usize> {
    if ids.is_empty() {
        return Vec::new();
    }
    all.enumerate()
        .filter(|(_, id)| ids.contains(&id.as_str()))
        .map(|(i, _)| i)
        .collect()
}

/// Compiles one pool under the task verdicts `verdict`; also returns how the domains see it
/// (its order is the member's).
fn compile_pool(
    pool: &PoolConfig,
    verdict: impl Fn(&str) -> HealthState,
    active: &ActiveSelections,
    rotation: Arc<AtomicUsize>,
) -> Result<(PoolPlan, MemberView), CompileError> {
    let avail: Vec<bool> = pool
        .addresses
        .iter()
        .map(|a| address_available(a, &verdict))
        .collect();
    let available = pool_available(pool, &avail);
    let eligible = eligible_addresses(pool);
    let fail_open = !avail.iter().any(|a| *a);
    let specs: Vec<MemberSpec<'_>> = pool.addresses.iter().map(MemberSpec::from).collect();
    let current = active
        .pools
        .get(&pool.id)
        .and_then(|v| pool.addresses.iter().position(|a| &a.value == v));
    let candidates = address_choice(pool, &avail);
    let level = Level::new(
        pool.policy,
        pool.sequential_mode,
        pool.affinity,
        &specs,
        candidates,
        current,
        rotation,
    )
    .map_err(|source| CompileError::Source {
        owner: pool.id.clone(),
        source,
    })?;
    let alias_fallback = eligible
        .iter()
        .copied()
        .min_by_key(|&i| (pool.addresses[i].order, i));
    let plan = PoolPlan {
        alias: match pool.pool_type {
            PoolType::IPv4 | PoolType::IPv6 => false,
            PoolType::Domain => true,
        },
        level,
        fail_open,
        eligible,
        alias_fallback,
    };
    let view = MemberView {
        order: 0,
        available,
        eligible: pool_eligible(pool),
        healthy: !fail_open,
    };
    Ok((plan, view))
}

/// Compiles a domain's pick among its pools, seen as `views` (in member order).
fn compile_domain_level(
    d: &DomainConfig,
    views: &[MemberView],
    active: &ActiveSelections,
    rotation: Arc<AtomicUsize>,
) -> Result<DomainLevel, CompileError> {
    let specs: Vec<MemberSpec<'_>> = d.pools.iter().map(MemberSpec::from).collect();
    let (choice, candidates) = match pool_choice(views, d.when_all_unavailable) {
        PoolChoice::Available(c) => (DomainChoice::Available, c),
        PoolChoice::FailOpen(m) => (DomainChoice::FailOpen(m), Vec::new()),
        PoolChoice::Nothing => (DomainChoice::Nothing, Vec::new()),
    };
    let current = active
        .domains
        .get(&d.id)
        .and_then(|p| d.pools.iter().position(|m| &m.pool == p));
    let level = Level::new(
        d.policy,
        d.sequential_mode,
        d.affinity,
        &specs,
        candidates,
        current,
        rotation,
    )
    .map_err(|source| CompileError::Source {
        owner: d.id.clone(),
        source,
    })?;
    let level = match &d.latency {
        Some(steering) => {
            let ranked = active.latency.get(&d.id);
            let table = LatencyTable::new(steering.locations.iter().map(|l| {
                let ranking = ranked
                    .and_then(|r| r.get(&l.name))
                    .into_iter()
                    .flatten()
                    .filter_map(|p| d.pools.iter().position(|m| &m.pool == p))
                    .collect();
                (&l.sources, ranking)
            }))
            .map_err(|source| CompileError::Source {
                owner: d.id.clone(),
                source,
            })?;
            level.with_latency(table)
        }
        None => level,
    };
    Ok(DomainLevel { choice, level })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use gtm_crds::common::{HealthJudgement, LbPolicy, SequentialMode};
    use gtm_crds::config::{GtmConfig, HealthSnapshot, PoolMember, TaskList};
    use gtm_crds::domain::RecordType;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    use super::super::tests::fixtures::*;
    use super::*;
    use crate::shared_pools::served;
    use crate::zone::ZoneSettings;

    /// Pools of every policy sharing addresses (and so tasks), judged at 50 %, in domains of
    /// every policy, some pools in two domains.
    fn shared_config() -> GtmConfig {
        let ips: Vec<String> = (1..=6).map(|i| format!("192.0.2.{i}")).collect();
        let policies = [
            LbPolicy::RoundRobin,
            LbPolicy::Sequential,
            LbPolicy::Weighted,
            LbPolicy::Sticky,
        ];
        let pools: Vec<PoolConfig> = policies
            .iter()
            .enumerate()
            .map(|(i, policy)| PoolConfig {
                health_judgement: HealthJudgement::P50Ok,
                sequential_mode: SequentialMode::NonPreemptive,
                ..pool(
                    &format!("ns/p{i}"),
                    *policy,
                    ips[i..i + 3]
                        .iter()
                        .enumerate()
                        .map(|(o, ip)| ordered(ip, o as u16 + 1))
                        .collect(),
                )
            })
            .collect();
        let domains = policies
            .iter()
            .enumerate()
            .map(|(i, policy)| {
                let members = [i, (i + 1) % 4]
                    .iter()
                    .enumerate()
                    .map(|(o, p)| PoolMember {
                        order: o as u16 + 1,
                        ..member(&format!("ns/p{p}"))
                    })
                    .collect();
                let mut d = domain(&format!("d{i}"), RecordType::A, *policy, members);
                d.sequential_mode = SequentialMode::NonPreemptive;
                d
            })
            .collect();
        config(1, domains, pools)
    }

    /// A random health: each address's task Up, Down, or absent (Unknown); each Sequential
    /// level's active member one of its members, or none.
    fn random_health(rng: &mut StdRng, generation: u64) -> HealthSnapshot {
        let mut tasks = BTreeMap::new();
        for i in 1..=6 {
            match rng.random_range(0..3) {
                0 => {}
                1 => {
                    tasks.insert(task(&format!("192.0.2.{i}")), HealthState::Up);
                }
                _ => {
                    tasks.insert(task(&format!("192.0.2.{i}")), HealthState::Down);
                }
            }
        }
        let mut active = ActiveSelections::default();
        if rng.random_bool(0.7) {
            let ip = format!("192.0.2.{}", rng.random_range(2..=4));
            active.pools.insert("ns/p1".into(), ip);
        }
        if rng.random_bool(0.7) {
            let p = ["ns/p1", "ns/p2"][rng.random_range(0..2)];
            active.domains.insert("ns/d1-a".into(), p.into());
        }
        HealthSnapshot {
            generation,
            tasks,
            active,
            ..HealthSnapshot::empty()
        }
    }

    #[test]
    fn a_chain_of_health_changes_decides_what_a_full_compile_decides() {
        let config = Arc::new(served(shared_config()));
        let settings = ZoneSettings::default();
        let mut rng = StdRng::seed_from_u64(14);
        let unknown = HealthSnapshot::empty();
        let mut served = Compiled::build(
            config.clone(),
            &HealthVerdicts::of(&unknown),
            &settings,
            &Default::default(),
            None,
        )
        .unwrap();
        let list = TaskList::of(&config);
        for generation in 1..=300 {
            let health = random_health(&mut rng, generation);
            let verdicts = HealthVerdicts::of(&health);
            // Every other change by number alone: it decides what the ids decide.
            let numbered = HealthSnapshot {
                tasks: Default::default(),
                ..health.clone().numbered_by(&list)
            };
            let applied = if generation % 2 == 0 {
                HealthVerdicts::of(&numbered)
            } else {
                verdicts.clone()
            };
            let next = served.with_health(&applied).unwrap();
            let full = Compiled::build(
                config.clone(),
                &verdicts,
                &settings,
                &Default::default(),
                None,
            )
            .unwrap();
            assert_eq!(
                next.health_fingerprint(),
                full.health_fingerprint(),
                "generation {generation}: {health:?}"
            );
            assert!(
                Arc::ptr_eq(&next.base, &served.base),
                "the config is shared"
            );
            served = next;
        }
    }

    #[test]
    fn one_changed_verdict_recompiles_its_pools_and_their_domains_only() {
        let config = Arc::new(served(shared_config()));
        let settings = ZoneSettings::default();
        let all_up = health_down(1, &[]);
        let served = Compiled::build(
            config,
            &HealthVerdicts::of(&all_up),
            &settings,
            &Default::default(),
            None,
        )
        .unwrap();
        // 192.0.2.1 is only in p0 (of d0, and of d3 as its second member); down, p0 keeps 2 of
        // 3 (50 % met): p0 is recompiled, its domains are not.
        let one_down = health_down(2, &["192.0.2.1"]);
        let next = served.with_health(&HealthVerdicts::of(&one_down)).unwrap();
        let same = |a: &[Arc<PoolPlan>], b: &[Arc<PoolPlan>]| -> Vec<bool> {
            a.iter().zip(b).map(|(x, y)| Arc::ptr_eq(x, y)).collect()
        };
        assert_eq!(same(&served.pools, &next.pools), [false, true, true, true]);
        let same_domains: Vec<bool> = served
            .domain_levels
            .iter()
            .zip(&next.domain_levels)
            .map(|(x, y)| Arc::ptr_eq(x, y))
            .collect();
        assert_eq!(same_domains, [true, true, true, true]);
        // 192.0.2.2 too: p0 misses its judgement, so d0 and d3 (which have p0) are recompiled.
        let two_down = health_down(3, &["192.0.2.1", "192.0.2.2"]);
        let after = next.with_health(&HealthVerdicts::of(&two_down)).unwrap();
        let same_domains: Vec<bool> = next
            .domain_levels
            .iter()
            .zip(&after.domain_levels)
            .map(|(x, y)| Arc::ptr_eq(x, y))
            .collect();
        assert_eq!(same_domains, [false, true, true, false]);
        assert_eq!(after.health_generation, 3);
    }

    #[test]
    fn verdicts_out_of_order_or_of_unknown_tasks_are_read_alike() {
        let config = Arc::new(served(shared_config()));
        let settings = ZoneSettings::default();
        let mut rng = StdRng::seed_from_u64(3);
        for generation in 1..=20 {
            let health = random_health(&mut rng, generation);
            let sorted = HealthVerdicts::of(&health);
            let mut shuffled = sorted.clone();
            shuffled.tasks.reverse();
            shuffled.tasks.insert(
                shuffled.tasks.len() / 2,
                ("ns/http@198.51.100.1#80".into(), HealthState::Down),
            );
            let build = |h: &HealthVerdicts<'_>| {
                Compiled::build(config.clone(), h, &settings, &Default::default(), None).unwrap()
            };
            assert_eq!(
                build(&sorted).health_fingerprint(),
                build(&shuffled).health_fingerprint()
            );
        }
    }
}
