//! Compile: the pure step from the objects the operator knows to the config contract the DNS
//! pods read, the probe tasks the prober runs, and a verdict per object (which becomes its
//! `Accepted` and `Ready` conditions). Invalid objects are left out; everything valid is
//! published regardless.

mod cname;
mod verdict;
mod zone;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use gtm_crds::config::{
    AddressConfig, DomainConfig, GtmConfig, PoolConfig, PoolMember, SCHEMA_VERSION,
    address_fits_pool_type, canonical_name, in_zone, is_host_name, record_type_accepts,
};
use gtm_crds::manifest::Kind;
use gtm_crds::pool::PoolType;
use gtm_crds::task_id::TaskId;
use gtm_crds::template::{HealthCheckTemplateSpec, Protocol};
use gtm_crds::{
    AddressPool, CheckTask, GtmAccessDomain, HealthCheckTemplate, LbPolicy, RecordType,
};

pub use verdict::{Publication, RejectReason, Rejection, Verdict};

use self::cname::CnameGraph;
use self::zone::compile_zones;
use crate::inventory::{Inventory, ObjectKey, age_order};

/// One health-check task for the prober: a template probed against an address on a port.
#[derive(Clone, Debug, PartialEq)]
pub struct CompiledTask {
    /// The task id shared with the DNS pods ([`TaskId`] as text).
    pub id: String,
    /// The template.
    pub template: ObjectKey,
    /// The template's spec.
    pub spec: HealthCheckTemplateSpec,
    /// The address value (IP or host name).
    pub target: String,
    /// The port probed; `None` for ICMP.
    pub port: Option<u16>,
    /// The pool the address belongs to.
    pub pool: ObjectKey,
}

/// Everything one compile produces.
#[derive(Clone, Debug, PartialEq)]
pub struct Compilation {
    /// The config to publish (generation 0: the publisher numbers it).
    pub config: GtmConfig,
    /// Every accepted pool, published or not, by id (status shows health for all of them).
    pub pools: BTreeMap<String, PoolConfig>,
    /// A verdict per object of the inventory.
    pub verdicts: BTreeMap<ObjectKey, Verdict>,
    /// The probe tasks of every accepted, enabled pool, by task id.
    pub tasks: BTreeMap<String, CompiledTask>,
}

/// Compiles an inventory for the zones the DNS pods serve.
pub fn compile(inventory: &Inventory, zones: &[String]) -> Compilation {
    compile_with_refused(inventory, &BTreeMap::new(), zones)
}

/// Compiles an inventory, knowing the objects refused before compile (local mode: manifests
/// that break the schema), so that a domain using a refused pool is told why
/// (`PoolNotAccepted` with the pool's reason) rather than that it does not exist.
pub fn compile_with_refused(
    inventory: &Inventory,
    refused: &BTreeMap<ObjectKey, Rejection>,
    zones: &[String],
) -> Compilation {
    let zones: Vec<String> = zones.iter().map(|z| canonical_name(z)).collect();
    let mut verdicts = BTreeMap::new();

    let templates: HashMap<ObjectKey, &HealthCheckTemplate> = inventory
        .templates
        .iter()
        .map(|t| {
            (
                ObjectKey::of(Kind::HealthCheckTemplate, t.as_ref()),
                t.as_ref(),
            )
        })
        .collect();

    let mut pools: HashMap<ObjectKey, (PoolConfig, Vec<CompiledTask>)> = HashMap::new();
    for pool in &inventory.pools {
        let key = ObjectKey::of(Kind::AddressPool, pool.as_ref());
        match compile_pool(pool, &key, &templates) {
            Ok(compiled) => {
                pools.insert(key.clone(), compiled);
                verdicts.insert(key, Verdict::accepted(Publication::Unreferenced));
            }
            Err(r) => {
                verdicts.insert(key, Verdict::rejected(r));
            }
        }
    }

    let (zone_data, static_claims) = compile_zones(&inventory.gtm_zones, &zones, &mut verdicts);

    let mut domains: Vec<&GtmAccessDomain> = inventory.domains.iter().map(|d| d.as_ref()).collect();
    domains.sort_by(|a, b| age_order(*a, *b));
    let mut claims: HashMap<String, Vec<(RecordType, ObjectKey)>> = HashMap::new();
    let pools_by_id: HashMap<&str, &PoolConfig> =
        pools.values().map(|(p, _)| (p.id.as_str(), p)).collect();
    let mut cnames = CnameGraph::default();
    let mut published_domains = Vec::new();
    for domain in domains {
        let key = ObjectKey::of(Kind::GtmAccessDomain, domain);
        let verdict = match compile_domain(domain, &key, &zones, &pools, &verdicts, refused) {
            Err(r) => Verdict::rejected(r),
            Ok(_) if !domain.spec.enabled => Verdict::accepted(Publication::Disabled),
            Ok(compiled) => {
                let targets = cname_targets(&compiled, &pools_by_id);
                match no_cname_loop(&cnames, &compiled, &targets)
                    .and_then(|()| static_claims.conflict(&compiled).map_or(Ok(()), Err))
                    .and_then(|()| claim(&mut claims, &compiled, &key))
                {
                    Err(r) => Verdict::rejected(r),
                    Ok(()) => {
                        cnames.add(&compiled.name, compiled.record_type, &targets);
                        published_domains.push(compiled);
                        Verdict::accepted(Publication::Published)
                    }
                }
            }
        };
        verdicts.insert(key, verdict);
    }

    // Pools are published when a published domain uses them; tasks run for every accepted
    // enabled pool, so that a pool shows its health before a domain points at it.
    let referenced: HashSet<&str> = published_domains
        .iter()
        .flat_map(|d: &DomainConfig| d.pools.iter().map(|m| m.pool.as_str()))
        .collect();
    let mut published_pools = Vec::new();
    let mut accepted_pools = BTreeMap::new();
    let mut tasks = BTreeMap::new();
    for (key, (config, pool_tasks)) in pools {
        if config.enabled {
            tasks.extend(pool_tasks.into_iter().map(|t| (t.id.clone(), t)));
        }
        if referenced.contains(config.id.as_str()) {
            verdicts.insert(key, Verdict::accepted(Publication::Published));
            published_pools.push(config.clone());
        }
        accepted_pools.insert(config.id.clone(), config);
    }

    // Addresses (pool, target) using each template, in one pass over the tasks.
    let mut users: HashMap<&ObjectKey, HashSet<(&ObjectKey, &str)>> = HashMap::new();
    for t in tasks.values() {
        users
            .entry(&t.template)
            .or_default()
            .insert((&t.pool, t.target.as_str()));
    }
    for template in &inventory.templates {
        let key = ObjectKey::of(Kind::HealthCheckTemplate, template.as_ref());
        let mut verdict = Verdict::accepted(Publication::Published);
        verdict.used_by = users
            .get(&key)
            .map_or(0, |u| u32::try_from(u.len()).unwrap_or(u32::MAX));
        verdicts.insert(key, verdict);
    }

    published_domains.sort_by(|a, b| a.id.cmp(&b.id));
    published_pools.sort_by(|a, b| a.id.cmp(&b.id));
    let templates = published_templates(&published_pools, &tasks);
    Compilation {
        config: GtmConfig {
            schema_version: SCHEMA_VERSION,
            generation: 0,
            zones,
            domains: published_domains,
            pools: published_pools,
            zone_data,
            serials: BTreeMap::new(),
            templates,
        },
        pools: accepted_pools,
        verdicts,
        tasks,
    }
}

/// The spec of every template the tasks of the published pools use, by template id: what a
/// remote prober reads, with the task ids, to run the same tasks. Disabled pools run no tasks.
fn published_templates(
    pools: &[PoolConfig],
    tasks: &BTreeMap<String, CompiledTask>,
) -> BTreeMap<String, HealthCheckTemplateSpec> {
    pools
        .iter()
        .flat_map(|p| &p.addresses)
        .flat_map(|a| &a.tasks)
        .filter_map(|id| tasks.get(id))
        .map(|t| (t.template.id(), t.spec.clone()))
        .collect()
}

fn compile_pool(
    pool: &AddressPool,
    key: &ObjectKey,
    templates: &HashMap<ObjectKey, &HealthCheckTemplate>,
) -> Result<(PoolConfig, Vec<CompiledTask>), Rejection> {
    let spec = &pool.spec;
    let mut tasks = Vec::new();
    let mut addresses = Vec::with_capacity(spec.addresses.len());
    let mut seen = HashSet::new();
    for address in &spec.addresses {
        let value = canonical_address(&address.value, spec.pool_type);
        if !address_fits_pool_type(&value, spec.pool_type) {
            return Err(Rejection::new(
                RejectReason::InvalidAddress,
                format!(
                    "address {:?} is not a valid {:?} address",
                    address.value, spec.pool_type
                ),
            ));
        }
        if let Some(why) = not_unicast(&value, spec.pool_type) {
            return Err(Rejection::new(
                RejectReason::InvalidAddress,
                format!("address {value} is {why}, which no client can connect to"),
            ));
        }
        if !seen.insert(value.clone()) {
            return Err(Rejection::new(
                RejectReason::InvalidAddress,
                format!(
                    "address {value} is listed twice (host names compare without case or trailing dot, IP addresses by value)"
                ),
            ));
        }
        let checks = address
            .health_checks
            .as_ref()
            .unwrap_or(&spec.health_checks);
        let mut ids = Vec::with_capacity(checks.len());
        for check in checks {
            let target = probe_target(&value, check, address.probe_target.as_deref())?;
            let template_key = key.sibling(Kind::HealthCheckTemplate, check.template.as_str());
            let Some(template) = templates.get(&template_key) else {
                return Err(Rejection::new(
                    RejectReason::TemplateNotFound,
                    format!(
                        "address {value} uses HealthCheckTemplate {:?}, which does not exist in namespace {:?}",
                        check.template, key.namespace
                    ),
                ));
            };
            let protocol = template.spec.protocol;
            let port = match protocol {
                Protocol::ICMP => None,
                _ => match check.port.or(protocol.default_port()) {
                    Some(p) => Some(p),
                    None => {
                        return Err(Rejection::new(
                            RejectReason::PortRequired,
                            format!(
                                "address {value}: health check {:?} is {protocol:?} and needs a port",
                                check.template
                            ),
                        ));
                    }
                },
            };
            let id =
                TaskId::new(&template_key.namespace, &template_key.name, &target, port).to_string();
            ids.push(id.clone());
            tasks.push(CompiledTask {
                id,
                template: template_key,
                spec: template.spec.clone(),
                target,
                port,
                pool: key.clone(),
            });
        }
        addresses.push(AddressConfig {
            value,
            enabled: address.enabled,
            mode: address.mode,
            weight: address.weight,
            order: address.order,
            sources: address.request_sources.clone().unwrap_or_default(),
            health_judgement: address.health_judgement,
            tasks: ids,
        });
    }
    Ok((
        PoolConfig {
            id: key.id(),
            pool_type: spec.pool_type,
            enabled: spec.enabled,
            policy: spec.policy,
            sequential_mode: spec.sequential_mode.unwrap_or_default(),
            affinity: spec.affinity,
            health_judgement: spec.health_judgement,
            min_available: spec.min_available,
            addresses,
        },
        tasks,
    ))
}

/// What a check of `address` probes: the check's `target`, else the address's `probeTarget`,
/// else the address itself; an override in its canonical form (an IP address as text, a host
/// name lower case without the trailing dot), refused unless it is an IP address or a host name.
fn probe_target(
    address: &str,
    check: &CheckTask,
    probe_target: Option<&str>,
) -> Result<String, Rejection> {
    let Some(target) = check.target.as_deref().or(probe_target) else {
        return Ok(address.to_string());
    };
    if let Ok(ip) = target.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    if is_host_name(target) {
        return Ok(canonical_name(target));
    }
    Err(Rejection::new(
        RejectReason::InvalidProbeTarget,
        format!(
            "address {address}: probe target {target:?} is neither an IP address nor a host name"
        ),
    ))
}

/// Why an address of an IP pool cannot be an endpoint: unspecified (`0.0.0.0`, `::`), the
/// broadcast address or multicast. The CRD rule checks the same.
pub(crate) fn not_unicast(value: &str, pool_type: PoolType) -> Option<&'static str> {
    if pool_type == PoolType::Domain {
        return None;
    }
    let ip: IpAddr = value.parse().ok()?;
    if ip.is_unspecified() {
        Some("the unspecified address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if ip == IpAddr::from([255, 255, 255, 255]) {
        Some("the broadcast address")
    } else {
        None
    }
}

/// The form an address takes in payloads: host names canonical, IP addresses in their standard
/// text form (so `2001:DB8::1` and `2001:db8::1` are one address).
pub(crate) fn canonical_address(value: &str, pool_type: PoolType) -> String {
    match pool_type {
        PoolType::Domain => canonical_name(value),
        PoolType::IPv4 | PoolType::IPv6 => value
            .parse::<IpAddr>()
            .map_or_else(|_| value.to_string(), |ip| ip.to_string()),
    }
}

fn compile_domain(
    domain: &GtmAccessDomain,
    key: &ObjectKey,
    zones: &[String],
    pools: &HashMap<ObjectKey, (PoolConfig, Vec<CompiledTask>)>,
    verdicts: &BTreeMap<ObjectKey, Verdict>,
    refused: &BTreeMap<ObjectKey, Rejection>,
) -> Result<DomainConfig, Rejection> {
    let spec = &domain.spec;
    let name = canonical_name(&spec.domain);
    // The most specific zone is the one that answers the name (nested zones).
    let Some(zone) = zones
        .iter()
        .filter(|z| in_zone(&name, z))
        .max_by_key(|z| z.len())
    else {
        return Err(Rejection::new(
            RejectReason::ZoneNotServed,
            format!(
                "{name} is not inside a served zone ({})",
                if zones.is_empty() {
                    "none configured".to_string()
                } else {
                    zones.join(", ")
                }
            ),
        ));
    };
    let mut members = Vec::with_capacity(spec.pools.len());
    let mut types = Vec::with_capacity(spec.pools.len());
    for r in &spec.pools {
        let pool_key = key.sibling(Kind::AddressPool, r.name.as_str());
        let Some((pool, _)) = pools.get(&pool_key) else {
            let pool_rejection = verdicts
                .get(&pool_key)
                .and_then(|v| v.accepted.as_ref().err())
                .or_else(|| refused.get(&pool_key));
            return Err(match pool_rejection {
                Some(why) => Rejection::new(
                    RejectReason::PoolNotAccepted,
                    format!(
                        "AddressPool {:?} is not accepted ({}: {})",
                        r.name, why.reason, why.message
                    ),
                ),
                None => Rejection::new(
                    RejectReason::PoolNotFound,
                    format!(
                        "AddressPool {:?} does not exist in namespace {:?}",
                        r.name, key.namespace
                    ),
                ),
            });
        };
        if !record_type_accepts(spec.record_type, pool.pool_type) {
            return Err(Rejection::new(
                RejectReason::PoolTypeMismatch,
                format!(
                    "AddressPool {:?} holds {:?} addresses, which cannot answer {:?} (A takes IPv4 or Domain pools, AAAA takes IPv6 or Domain, CNAME takes Domain)",
                    r.name, pool.pool_type, spec.record_type
                ),
            ));
        }
        if name == *zone && pool.pool_type == PoolType::Domain {
            return Err(Rejection::new(
                RejectReason::CnameAtApex,
                format!(
                    "{name} is the apex of its zone, where a CNAME cannot live next to SOA and NS; AddressPool {:?} is a Domain pool",
                    r.name
                ),
            ));
        }
        types.push(pool.pool_type);
        members.push(PoolMember {
            pool: pool.id.clone(),
            order: r.order,
            weight: r.weight,
            sources: r.request_sources.clone().unwrap_or_default(),
        });
    }
    let has_domain_pool = types.contains(&PoolType::Domain);
    if answers_every_pool_at_once(spec.policy)
        && has_domain_pool
        && types.iter().any(|t| *t != PoolType::Domain)
    {
        return Err(Rejection::new(
            RejectReason::MixedPoolTypes,
            "policy RoundRobin answers all available pools at once, so it cannot mix IP and Domain pools; use Sequential, Weighted or SourceNearest, or split the pools",
        ));
    }
    Ok(DomainConfig {
        id: key.id(),
        name,
        record_type: spec.record_type,
        ttl: spec.ttl,
        policy: spec.policy,
        sequential_mode: spec.sequential_mode.unwrap_or_default(),
        affinity: spec.affinity,
        latency: spec.latency.clone(),
        max_answers: spec.max_answers,
        when_all_unavailable: spec.when_all_unavailable,
        pools: members,
    })
}

/// The names a domain may answer with a CNAME: the addresses of its Domain pools.
fn cname_targets<'a>(
    domain: &DomainConfig,
    pools_by_id: &HashMap<&str, &'a PoolConfig>,
) -> Vec<&'a str> {
    domain
        .pools
        .iter()
        .filter_map(|m| pools_by_id.get(m.pool.as_str()))
        .filter(|p| p.pool_type == PoolType::Domain)
        .flat_map(|p| p.addresses.iter().map(|a| a.value.as_str()))
        .collect()
}

/// Refuses a domain whose CNAMEs would lead back to its own name, directly or through the
/// access domains accepted before it.
fn no_cname_loop(
    cnames: &CnameGraph,
    domain: &DomainConfig,
    targets: &[&str],
) -> Result<(), Rejection> {
    match cnames.loop_through(&domain.name, domain.record_type, targets) {
        None => Ok(()),
        Some(chain) => Err(Rejection::new(
            RejectReason::CnameLoop,
            format!(
                "CNAME loop: {}; resolvers would chase it until they fail. Point the Domain pool addresses elsewhere",
                chain.join(" -> ")
            ),
        )),
    }
}

/// Records that a domain answers its (name, type); refuses it when an older published domain
/// claims the same pair, or when either side is a CNAME at the same name (RFC 1034: a CNAME
/// owns its name alone).
fn claim(
    claims: &mut HashMap<String, Vec<(RecordType, ObjectKey)>>,
    domain: &DomainConfig,
    key: &ObjectKey,
) -> Result<(), Rejection> {
    let existing = claims.entry(domain.name.clone()).or_default();
    if let Some((t, owner)) = existing.iter().find(|(t, _)| {
        *t == domain.record_type
            || *t == RecordType::CNAME
            || domain.record_type == RecordType::CNAME
    }) {
        return Err(Rejection::new(
            RejectReason::Conflict,
            format!(
                "{} {:?} is already answered by the older GtmAccessDomain {}/{} ({t:?})",
                domain.name, domain.record_type, owner.namespace, owner.name
            ),
        ));
    }
    existing.push((domain.record_type, key.clone()));
    Ok(())
}

/// Whether a domain with `policy` answers every available pool in one answer (so its pools
/// must be of one kind: IP records and a CNAME cannot form one answer).
fn answers_every_pool_at_once(policy: LbPolicy) -> bool {
    // Exhaustive: a new policy does not compile until it says how it answers.
    match policy {
        LbPolicy::RoundRobin => true,
        LbPolicy::Sequential
        | LbPolicy::Weighted
        | LbPolicy::SourceNearest
        | LbPolicy::Sticky
        | LbPolicy::Latency => false,
    }
}

#[cfg(test)]
mod tests;
