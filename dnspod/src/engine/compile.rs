//! Compiling a config into the [`Base`] of a [`Compiled`] answer index: zones, names, records
//! with owner name and TTL, static record sets, and the indexes a health change needs (task
//! ids, which pools have a task, which domains have a pool). Runs off the query path when a
//! config changes; what the verdicts decide is the overlay's (`super::overlay`).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use gtm_crds::config::{
    DEFAULT_MAX_ANSWERS, DomainConfig, HealthVerdicts, PoolConfig, TaskList, ZoneConfig, in_zone,
};
use gtm_crds::pool::PoolType;
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordType};
use rustc_hash::FxHashMap;

use super::{Adjacency, Base, Compiled, DomainPlan, MemberPlan, NameEntry, Rotations, StaticSet};
use crate::dnssec::ZoneKeys;
use crate::shared_pools::ServedConfig;
use crate::sources::BadCidr;
use crate::zone::{Zone, ZoneError, ZoneSettings, absolute_name, zone_names};

/// Why a config could not be compiled. The last good config keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// A zone's apex records could not be built.
    #[error(transparent)]
    Zone(#[from] ZoneError),
    /// A request source is malformed.
    #[error("{owner}: {source}")]
    Source {
        /// The domain or pool id.
        owner: String,
        /// The bad source.
        source: BadCidr,
    },
    /// A name or address is not usable in DNS.
    #[error("{0}")]
    Name(String),
    /// The health payload's numbered verdicts do not fit the config's task list.
    #[error(transparent)]
    Verdicts(#[from] gtm_crds::config::ContractError),
}

impl Compiled {
    /// Compiles `config` (already consistency-checked, see
    /// [`crate::shared_pools::parse`]) with `health`, the zone settings from the flags and the
    /// signing keys of the signed zones;
    /// `RoundRobin` levels continue from their positions in `previous`, the snapshot served
    /// until now. A later health change goes through [`Compiled::with_health`] instead.
    pub fn build(
        config: Arc<ServedConfig>,
        health: &HealthVerdicts<'_>,
        settings: &ZoneSettings,
        keys: &ZoneKeys,
        previous: Option<&Compiled>,
    ) -> Result<Self, CompileError> {
        let mut rotations = Rotations::default();
        let previous = previous.map(|p| &*p.base);
        let positions = previous.map(|p| &p.rotations);
        let pool_rotations: Vec<_> = config
            .pools
            .iter()
            .map(|p| rotations.take(positions, format!("pool:{}", p.id)))
            .collect();
        let domain_rotations: Vec<_> = config
            .domains
            .iter()
            .map(|d| rotations.take(positions, format!("domain:{}", d.id)))
            .collect();
        let base = Arc::new(Base::build(config, settings, keys, rotations, previous)?);
        Self::overlay(base, health, pool_rotations, domain_rotations)
    }
}

impl Base {
    /// Compiles what `config` alone decides (with the signing keys of the signed zones). The
    /// answer records `previous` (the config served until now) has for the same domain and
    /// pool are shared rather than built again, see [`Base::same_records`].
    fn build(
        config: Arc<ServedConfig>,
        settings: &ZoneSettings,
        keys: &ZoneKeys,
        rotations: Rotations,
        previous: Option<&Base>,
    ) -> Result<Self, CompileError> {
        // Zones the operator gave no serial (flag zones, payloads of schema 1.0) answer with
        // the config generation.
        let fallback = (config.generation & u64::from(u32::MAX)) as u32;
        let serial = |zone: &str| config.serials.get(zone).copied().unwrap_or(fallback);
        let zone_list = zone_names(&config.zones, settings);
        let data_of = |zone: &str| config.zone_data.iter().find(|d| d.name == zone);
        let zones = zone_list
            .iter()
            .map(|z| Zone::build(z, settings, serial(z), data_of(z), keys.get(z).cloned()))
            .collect::<Result<Vec<_>, _>>()?;

        let pool_index: HashMap<&str, usize> = config
            .pools
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.as_str(), i))
            .collect();
        // The task list's ids are dropped here, before the records are built (the reload's
        // peak).
        let (tasks, task_list, task_pools) = {
            let list = TaskList::of(&config);
            let numbers: FxHashMap<&str, u32> = (0..)
                .zip(list.ids())
                .map(|(number, id)| (id.as_ref(), number))
                .collect();
            let mut task_pools = Vec::new();
            for (p, pool) in config.pools.iter().enumerate() {
                for id in pool.addresses.iter().flat_map(|a| &a.tasks) {
                    task_pools.push((numbers[id.as_str()], p as u32));
                }
            }
            // The same task list numbers the same ids alike: shared with the config served,
            // rather than 100 000 ids allocated again at every republish.
            let tasks = match previous.filter(|p| p.task_list == list.digest()) {
                Some(previous) => previous.tasks.clone(),
                None => {
                    let mut tasks: Vec<(Box<str>, u32)> = numbers
                        .into_iter()
                        .map(|(id, number)| (id.into(), number))
                        .collect();
                    tasks.sort_unstable();
                    tasks.into()
                }
            };
            (tasks, list.digest().to_owned(), task_pools)
        };

        let mut names: FxHashMap<LowerName, NameEntry> = FxHashMap::default();
        for zone in &zones {
            names.entry(zone.name.clone()).or_default();
        }
        let statics = compile_statics(&config.zone_data, &zone_list, &mut names)?;
        let mut domains = Vec::with_capacity(config.domains.len());
        let mut pool_domains = Vec::new();
        for (di, d) in config.domains.iter().enumerate() {
            let owner = absolute_name(&d.name)
                .ok_or_else(|| CompileError::Name(format!("domain {}: bad name", d.id)))?;
            let lower = LowerName::new(&owner);
            let members = d
                .pools
                .iter()
                .map(|m| {
                    let p = pool_index[m.pool.as_str()];
                    pool_domains.push((p as u32, di as u32));
                    let pool = &config.pools[p];
                    let shared = previous.and_then(|b| b.same_records(&lower, d, pool));
                    let records = match shared {
                        Some(records) => records,
                        None => {
                            // Sized exactly: a collected `Result` grows by doubling, and
                            // records are large.
                            let mut records = Vec::with_capacity(pool.addresses.len());
                            for a in &pool.addresses {
                                records.push(address_record(
                                    &owner,
                                    d.ttl,
                                    pool.pool_type,
                                    &a.value,
                                )?);
                            }
                            Arc::from(records)
                        }
                    };
                    Ok(MemberPlan { pool: p, records })
                })
                .collect::<Result<Vec<_>, CompileError>>()?;
            domains.push(DomainPlan {
                name: d.name.clone(),
                policy: d.policy,
                members,
                max_answers: usize::from(d.max_answers.unwrap_or(DEFAULT_MAX_ANSWERS).max(1)),
            });

            let entry = names.entry(lower).or_default();
            *entry.domains.get_mut(d.record_type) = Some(di);
            add_empty_non_terminals(&mut names, &d.name, &zone_list);
        }
        for (name, entry) in &mut names {
            entry.zone = super::zone_index(&zones, name);
        }
        let task_pools = Adjacency::new(tasks.len(), task_pools);
        let pool_domains = Adjacency::new(config.pools.len(), pool_domains);
        Ok(Self {
            config,
            zones,
            names,
            domains,
            statics,
            rotations,
            tasks,
            task_list,
            task_pools,
            pool_domains,
        })
    }
}

impl Base {
    /// The answer records of `pool` as a member of `domain` (at `name`) in this compile, when
    /// a compile of them now would build the same: the same pool in the domain of that name
    /// and type, with the same TTL, pool type and addresses in the same order. A reload then
    /// shares them instead of holding a second copy beside the served one (the records are
    /// the largest part of a compiled config: 28 MB at 100 000 addresses).
    fn same_records(
        &self,
        name: &LowerName,
        domain: &DomainConfig,
        pool: &PoolConfig,
    ) -> Option<Arc<[Record]>> {
        let index = self.names.get(name)?.domain(domain.record_type)?;
        if self.config.domains[index].ttl != domain.ttl {
            return None;
        }
        let member = self.domains[index]
            .members
            .iter()
            .find(|m| self.config.pools[m.pool].id == pool.id)?;
        let old = &self.config.pools[member.pool];
        let same_values = old
            .addresses
            .iter()
            .map(|a| &a.value)
            .eq(pool.addresses.iter().map(|a| &a.value));
        (old.pool_type == pool.pool_type && same_values).then(|| member.records.clone())
    }
}

/// Compiles the zones' static record sets and their names' glue into `names`; returns the sets,
/// each with the static addresses of its MX and SRV targets as its additional section.
fn compile_statics(
    data: &[ZoneConfig],
    zones: &[String],
    names: &mut FxHashMap<LowerName, NameEntry>,
) -> Result<Vec<StaticSet>, CompileError> {
    let mut statics = Vec::new();
    for zone in data {
        for set in zone.records.iter().chain(&zone.glue()) {
            let records = crate::static_records::records(set)
                .map_err(|e| CompileError::Name(format!("zone {}: {e}", zone.name)))?;
            let Some(first) = records.first() else {
                continue;
            };
            let entry = names.entry(LowerName::new(&first.name)).or_default();
            entry.statics.push((first.record_type(), statics.len()));
            add_empty_non_terminals(names, &set.name, zones);
            statics.push(StaticSet {
                records,
                additionals: Vec::new(),
            });
        }
    }
    let addresses = |target: &Name| -> Vec<Record> {
        let Some(entry) = names.get(&LowerName::new(target)) else {
            return Vec::new();
        };
        [RecordType::A, RecordType::AAAA]
            .into_iter()
            .filter_map(|t| entry.static_set(t))
            .flat_map(|s| statics[s].records.iter().cloned())
            .collect()
    };
    let additionals: Vec<Vec<Record>> = statics
        .iter()
        .map(|set| {
            let mut targets: Vec<&Name> = set
                .records
                .iter()
                .filter_map(|r| match &r.data {
                    RData::MX(mx) => Some(&mx.exchange),
                    RData::SRV(srv) => Some(&srv.target),
                    _ => None,
                })
                .collect();
            targets.sort();
            targets.dedup();
            targets.into_iter().flat_map(addresses).collect()
        })
        .collect();
    for (set, extra) in statics.iter_mut().zip(additionals) {
        set.additionals = extra;
    }
    Ok(statics)
}

/// The record answering `value` of a pool of `pool_type` at `owner`.
fn address_record(
    owner: &Name,
    ttl: u32,
    pool_type: PoolType,
    value: &str,
) -> Result<Record, CompileError> {
    let bad = || CompileError::Name(format!("address {value:?} does not fit its pool type"));
    let rdata = match pool_type {
        PoolType::IPv4 => RData::A(A(value.parse::<Ipv4Addr>().map_err(|_| bad())?)),
        PoolType::IPv6 => RData::AAAA(AAAA(value.parse::<Ipv6Addr>().map_err(|_| bad())?)),
        PoolType::Domain => RData::CNAME(CNAME(absolute_name(value).ok_or_else(bad)?)),
    };
    Ok(Record::from_rdata(owner.clone(), ttl, rdata))
}

/// Registers the names between `name` and the apex of its zone (exclusive) as existing
/// without data, so that they get NODATA rather than NXDOMAIN (RFC 8020).
fn add_empty_non_terminals(
    names: &mut FxHashMap<LowerName, NameEntry>,
    name: &str,
    zones: &[String],
) {
    let Some(zone) = zones
        .iter()
        .filter(|z| in_zone(name, z))
        .max_by_key(|z| z.len())
    else {
        return;
    };
    let mut rest = name;
    while let Some((_, parent)) = rest.split_once('.') {
        if parent.len() <= zone.len() {
            break;
        }
        if let Some(n) = absolute_name(parent) {
            names.entry(LowerName::new(&n)).or_default();
        }
        rest = parent;
    }
}
