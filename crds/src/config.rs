//! The config contract: what the operator publishes in ConfigMaps and the DNS pods read.
//!
//! Two payloads travel separately, because they change at different rates:
//!
//! - [`GtmConfig`] (key [`CONFIG_KEY`]): zones, compiled access domains and pools. Changes when
//!   a manifest changes. Can be large.
//! - [`HealthSnapshot`] (key [`HEALTH_KEY`]): per-task health verdicts (by task id, and by task
//!   number against the config's task list) and the active member of every `Sequential` level.
//!   Changes when the world changes.
//!
//! The config also carries each served zone's own data ([`ZoneConfig`], from its `GtmZone`):
//! name servers with glue, SOA fields and static records.
//!
//! Both carry a `schemaVersion` `"MAJOR.MINOR"`. A reader accepts any minor version of the
//! major it knows (minor versions only add optional fields) and refuses other majors with
//! [`ContractError::UnsupportedVersion`], keeping its last good payload.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::common::{Affinity, HealthJudgement, LbPolicy, RequestSources, SequentialMode};
use crate::domain::{Fallback, RecordType};
use crate::latency::LatencySteering;
use crate::pool::{AddressMode, HealthState, PoolType};
use crate::template::HealthCheckTemplateSpec;

mod numbered;
mod verdicts;
mod zone_data;

pub use numbered::{NumberedVerdicts, TaskList};
pub use verdicts::HealthVerdicts;
pub use zone_data::{NameserverConfig, RecordData, RecordSetConfig, ZoneConfig};

/// ConfigMap data key holding a [`GtmConfig`] as JSON.
pub const CONFIG_KEY: &str = "config.json";
/// ConfigMap data key holding a [`HealthSnapshot`] as JSON.
pub const HEALTH_KEY: &str = "health.json";
/// Label on every ConfigMap the operator publishes; its value says which payload it holds
/// (`config` or `health`). DNS pods select on it.
pub const PAYLOAD_LABEL: &str = "gtm.kubegtm.io/payload";

/// Records per answer of a domain that sets no `maxAnswers` (as Route 53 multivalue answers):
/// the DNS pods apply it, so that no answer grows with its pools.
pub const DEFAULT_MAX_ANSWERS: u8 = 8;

/// The schema version this build writes.
///
/// 1.1 added [`GtmConfig::zone_data`], [`GtmConfig::serials`] and [`GtmConfig::templates`]
/// (which `gtm-prober` reads). 1.2 added latency steering: [`DomainConfig::latency`],
/// [`ActiveSelections::latency`] and the verdicts' `latencyMillis`. 1.3 added
/// [`HealthSnapshot::numbered`], the verdicts by task number, beside the verdicts by task id
/// (which stay, so that readers of 1.2 read 1.3 payloads as before).
pub const SCHEMA_VERSION: SchemaVersion = SchemaVersion { major: 1, minor: 3 };

/// A `MAJOR.MINOR` payload schema version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemaVersion {
    /// Incompatible changes bump the major version.
    pub major: u32,
    /// Backward-compatible additions bump the minor version.
    pub minor: u32,
}

impl fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for SchemaVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (major, minor) = s
            .split_once('.')
            .ok_or_else(|| format!("schema version {s:?} is not MAJOR.MINOR"))?;
        let num = |p: &str| {
            p.parse::<u32>()
                .map_err(|_| format!("schema version {s:?} is not MAJOR.MINOR"))
        };
        Ok(Self {
            major: num(major)?,
            minor: num(minor)?,
        })
    }
}

impl Serialize for SchemaVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SchemaVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a payload was refused. The reader keeps serving its last good payload.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// The payload is not JSON of the expected shape.
    #[error("malformed payload: {0}")]
    Malformed(#[from] serde_json::Error),
    /// The payload's major schema version is not the one this build reads.
    #[error("unsupported schema version {found}: this build reads {supported_major}.x")]
    UnsupportedVersion {
        /// What the payload says.
        found: SchemaVersion,
        /// The major version this build reads.
        supported_major: u32,
    },
    /// The payload parses but contradicts itself.
    #[error("inconsistent payload: {0}")]
    Inconsistent(String),
}

/// Identity of a namespaced object in payloads: `namespace/name`.
pub fn object_id(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// Canonical form of a DNS name in payloads: lower case, no trailing dot.
pub fn canonical_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// True when `name` equals `zone` or lies below it (both canonical).
pub fn in_zone(name: &str, zone: &str) -> bool {
    name == zone
        || (name.len() > zone.len()
            && name.ends_with(zone)
            && name.as_bytes()[name.len() - zone.len() - 1] == b'.')
}

/// The compiled configuration: everything the DNS pods need to answer, except health.
///
/// `P` is how a pool is held: a [`PoolConfig`] (the default), or a reader's own handle on
/// one (a DNS pod shares the pools that a new config leaves unchanged with the config it
/// serves, so that a reload does not hold two copies of them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "P: Deserialize<'de>"))]
pub struct GtmConfig<P = PoolConfig> {
    /// Payload schema version.
    pub schema_version: SchemaVersion,
    /// Increases with every published change; readers report it as a metric.
    pub generation: u64,
    /// Zones the DNS pods are authoritative for (canonical names).
    #[serde(deserialize_with = "shrunk")]
    pub zones: Vec<String>,
    /// Accepted, enabled access domains.
    #[serde(deserialize_with = "shrunk")]
    pub domains: Vec<DomainConfig>,
    /// Every pool some domain references.
    #[serde(deserialize_with = "shrunk")]
    pub pools: Vec<P>,
    /// The own data of the zones that have a `GtmZone` (name servers, SOA, static records).
    /// Empty in payloads of schema 1.0.
    #[serde(
        default,
        deserialize_with = "shrunk",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub zone_data: Vec<ZoneConfig>,
    /// The SOA serial of each served zone, by zone: assigned by the operator when it publishes
    /// (it changes only when the zone's published content does, and never goes backwards).
    /// A zone without one (payloads of schema 1.0) answers with the generation.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub serials: BTreeMap<String, u32>,
    /// The spec of every `HealthCheckTemplate` a task of [`Self::pools`] uses, by object id:
    /// with the task ids, what a remote prober (`gtm-prober`) needs to run the tasks. The DNS
    /// pods do not read it. Empty in payloads of schema 1.0.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub templates: BTreeMap<String, HealthCheckTemplateSpec>,
}

/// One compiled access domain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainConfig {
    /// Object id of the `GtmAccessDomain`.
    pub id: String,
    /// Canonical DNS name.
    pub name: String,
    /// Record type answered.
    pub record_type: RecordType,
    /// TTL of answers.
    pub ttl: u32,
    /// Pool-level policy.
    pub policy: LbPolicy,
    /// Recovery mode when `policy` is `Sequential`.
    #[serde(default)]
    pub sequential_mode: SequentialMode,
    /// How `Sticky` groups clients; the defaults of [`Affinity`] when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Latency steering's locations and margins; set exactly when `policy` is `Latency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencySteering>,
    /// Cap on records per answer; [`DEFAULT_MAX_ANSWERS`] when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_answers: Option<u8>,
    /// What to answer when no pool is available.
    #[serde(default)]
    pub when_all_unavailable: Fallback,
    /// The pools, in the order the user listed them.
    #[serde(deserialize_with = "shrunk")]
    pub pools: Vec<PoolMember>,
}

/// A pool as a member of a domain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolMember {
    /// Object id of the `AddressPool`.
    pub pool: String,
    /// Sequential priority, lowest first.
    pub order: u16,
    /// Weight for the `Weighted` policy.
    pub weight: u8,
    /// Request sources for `SourceNearest`.
    #[serde(default, skip_serializing_if = "RequestSources::is_empty")]
    pub sources: RequestSources,
}

/// One compiled address pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolConfig {
    /// Object id of the `AddressPool`.
    pub id: String,
    /// Type of the addresses.
    pub pool_type: PoolType,
    /// Whether the pool may be answered at all.
    pub enabled: bool,
    /// Address-level policy.
    pub policy: LbPolicy,
    /// Recovery mode when `policy` is `Sequential`.
    #[serde(default)]
    pub sequential_mode: SequentialMode,
    /// How `Sticky` groups clients; the defaults of [`Affinity`] when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Judgement over the enabled addresses.
    pub health_judgement: HealthJudgement,
    /// Minimum available addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<u16>,
    /// The addresses, in the order the user listed them.
    #[serde(deserialize_with = "shrunk")]
    pub addresses: Vec<AddressConfig>,
}

/// One compiled address.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressConfig {
    /// The IP address or host name (canonical for host names).
    pub value: String,
    /// Whether the address may be answered at all.
    pub enabled: bool,
    /// Availability mode.
    pub mode: AddressMode,
    /// Weight for the `Weighted` policy.
    pub weight: u8,
    /// Sequential priority, lowest first.
    pub order: u16,
    /// Request sources for `SourceNearest`.
    #[serde(default, skip_serializing_if = "RequestSources::is_empty")]
    pub sources: RequestSources,
    /// Judgement over the tasks.
    pub health_judgement: HealthJudgement,
    /// Ids of the address's health-check tasks (see [`crate::task_id::TaskId`]).
    #[serde(
        default,
        deserialize_with = "shrunk",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tasks: Vec<String>,
}

/// A list parsed without spare capacity. Parsing grows a list by doubling, from 4 items: at
/// 100 000 addresses (10 per pool, one task each) that was 24 MB of the 53 MB a parsed config
/// took. Shrunk as each list is parsed rather than after the whole config, so that the
/// spare capacity of every list is never held at once.
fn shrunk<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    let mut list = Vec::<T>::deserialize(d)?;
    list.shrink_to_fit();
    Ok(list)
}

/// Health verdicts and active selections, published apart from the config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthSnapshot {
    /// Payload schema version.
    pub schema_version: SchemaVersion,
    /// Increases with every published change.
    pub generation: u64,
    /// The same verdicts as [`Self::tasks`], numbered by the task list of the config published
    /// with them ([`TaskList`]): what a DNS pod serving that config reads instead of the ids.
    /// Absent in payloads before schema 1.3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numbered: Option<NumberedVerdicts<'static>>,
    /// Verdict per task id; a task not listed is `Unknown`.
    #[serde(default)]
    pub tasks: BTreeMap<String, HealthState>,
    /// The member each `Sequential` level currently answers with, as the operator decided.
    #[serde(default)]
    pub active: ActiveSelections,
}

/// The active member of every `Sequential` level, so that all DNS pods answer alike.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveSelections {
    /// Domain id to the id of its active pool.
    #[serde(default)]
    pub domains: BTreeMap<String, String>,
    /// Pool id to the value of its active address.
    #[serde(default)]
    pub pools: BTreeMap<String, String>,
    /// Latency steering: per `Latency` domain id, per probe location, the pools ranked (the
    /// pool the location answers first, then the others fastest first; only pools available
    /// and measured from there). A DNS pod answers the first that is available in its view.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub latency: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

impl HealthSnapshot {
    /// An empty snapshot: every task `Unknown`, no active selections.
    pub fn empty() -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            generation: 0,
            numbered: None,
            tasks: BTreeMap::new(),
            active: ActiveSelections::default(),
        }
    }

    /// The verdict of a task.
    pub fn task(&self, id: &str) -> HealthState {
        self.tasks.get(id).copied().unwrap_or_default()
    }

    /// The same snapshot with its verdicts also numbered by `list`, the task list of the
    /// config the DNS pods will serve with it.
    pub fn numbered_by(self, list: &TaskList<'_>) -> Self {
        let numbered = list.number(|id| self.task(id));
        Self {
            numbered: Some(numbered),
            ..self
        }
    }

    /// Parses and version-checks a snapshot.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ContractError> {
        check_version(bytes)?;
        Ok(serde_json::from_slice(bytes)?)
    }
}

/// Reads only the version, so that an unknown major is refused with a clear error even when
/// the rest of the payload has a shape this build cannot parse.
pub(crate) fn check_version(bytes: &[u8]) -> Result<(), ContractError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Versioned {
        schema_version: SchemaVersion,
    }
    let v: Versioned = serde_json::from_slice(bytes)?;
    if v.schema_version.major != SCHEMA_VERSION.major {
        return Err(ContractError::UnsupportedVersion {
            found: v.schema_version,
            supported_major: SCHEMA_VERSION.major,
        });
    }
    Ok(())
}

impl GtmConfig {
    /// A config serving `zones` with no access domain.
    pub fn empty(zones: Vec<String>) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            generation: 0,
            zones,
            domains: Vec::new(),
            pools: Vec::new(),
            zone_data: Vec::new(),
            serials: BTreeMap::new(),
            templates: BTreeMap::new(),
        }
    }

    /// Parses, version-checks and consistency-checks a config.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ContractError> {
        Self::parse(bytes)
    }

    /// Serializes the config (compact JSON).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a config always serializes")
    }
}

impl<P> GtmConfig<P> {
    /// The same config holding each pool as `f` makes it.
    pub fn map_pools<Q>(self, f: impl FnMut(P) -> Q) -> GtmConfig<Q> {
        GtmConfig {
            schema_version: self.schema_version,
            generation: self.generation,
            zones: self.zones,
            domains: self.domains,
            pools: self.pools.into_iter().map(f).collect(),
            zone_data: self.zone_data,
            serials: self.serials,
            templates: self.templates,
        }
    }
}

impl<P: Borrow<PoolConfig> + serde::de::DeserializeOwned> GtmConfig<P> {
    /// Parses, version-checks and consistency-checks a config, each pool read as a `P`.
    pub fn parse(bytes: &[u8]) -> Result<Self, ContractError> {
        check_version(bytes)?;
        let config: Self = serde_json::from_slice(bytes)?;
        config.check_consistency()?;
        Ok(config)
    }
}

impl<P: Borrow<PoolConfig>> GtmConfig<P> {
    /// The rules a reader relies on: names canonical and inside a served zone, one domain per
    /// (name, type), every referenced pool present, pool types fit the record type, weights
    /// and TTLs in range, no duplicate addresses; zone data only for served zones, once each,
    /// consistent in itself ([`ZoneConfig`]), and no static record where an access domain
    /// answers the same type or a CNAME.
    pub fn check_consistency(&self) -> Result<(), ContractError> {
        let bad = |m: String| Err(ContractError::Inconsistent(m));
        for zone in &self.zones {
            if *zone != canonical_name(zone) || zone.is_empty() {
                return bad(format!("zone {zone:?} is not a canonical DNS name"));
            }
        }
        if let Some(zone) = self.serials.keys().find(|z| !self.zones.contains(z)) {
            return bad(format!("serial for {zone:?}, which is not served"));
        }
        let mut with_data = HashSet::new();
        let mut statics: HashMap<&str, Vec<crate::zone::ZoneRecordType>> = HashMap::new();
        let glue: Vec<Vec<RecordSetConfig>> = self.zone_data.iter().map(ZoneConfig::glue).collect();
        for (data, glue) in self.zone_data.iter().zip(&glue) {
            if !self.zones.contains(&data.name) || !with_data.insert(data.name.as_str()) {
                return bad(format!(
                    "zone data for {:?}, which is not served or has data twice",
                    data.name
                ));
            }
            data.check_consistency()?;
            for set in data.records.iter().chain(glue) {
                statics
                    .entry(set.name.as_str())
                    .or_default()
                    .push(set.data.record_type());
            }
        }
        let pools: HashMap<&str, &PoolConfig> = self
            .pools
            .iter()
            .map(|p| (p.borrow().id.as_str(), p.borrow()))
            .collect();
        if pools.len() != self.pools.len() {
            return bad("two pools share an id".into());
        }
        for pool in self.pools.iter().map(Borrow::borrow) {
            if pool.policy == LbPolicy::Latency {
                return bad(format!(
                    "pool {} has policy Latency, a domain policy",
                    pool.id
                ));
            }
            let mut seen = HashSet::new();
            for a in &pool.addresses {
                if !seen.insert(a.value.as_str()) {
                    return bad(format!("pool {} lists {} twice", pool.id, a.value));
                }
                if !(1..=100).contains(&a.weight) {
                    return bad(format!(
                        "pool {} address {} has weight {}",
                        pool.id, a.value, a.weight
                    ));
                }
                if !address_fits_pool_type(&a.value, pool.pool_type) {
                    return bad(format!(
                        "pool {} of type {:?} holds {:?}",
                        pool.id, pool.pool_type, a.value
                    ));
                }
            }
        }
        let mut names = HashSet::new();
        for d in &self.domains {
            if d.name != canonical_name(&d.name) {
                return bad(format!(
                    "domain {} name {:?} is not canonical",
                    d.id, d.name
                ));
            }
            if !self.zones.iter().any(|z| in_zone(&d.name, z)) {
                return bad(format!(
                    "domain {} name {} is in no served zone",
                    d.id, d.name
                ));
            }
            if !names.insert((d.name.as_str(), d.record_type)) {
                return bad(format!("{} {:?} is published twice", d.name, d.record_type));
            }
            if let Some(types) = statics.get(d.name.as_str())
                && types.iter().any(|t| static_conflicts(d.record_type, *t))
            {
                return bad(format!(
                    "{} {:?} is also a static record of its zone",
                    d.name, d.record_type
                ));
            }
            if d.latency.is_some() != (d.policy == LbPolicy::Latency) {
                return bad(format!(
                    "domain {}: latency is set exactly with policy Latency",
                    d.id
                ));
            }
            if d.ttl == 0 || d.pools.is_empty() {
                return bad(format!("domain {} has no TTL or no pools", d.id));
            }
            for m in &d.pools {
                let Some(pool) = pools.get(m.pool.as_str()) else {
                    return bad(format!(
                        "domain {} references unknown pool {}",
                        d.id, m.pool
                    ));
                };
                if !record_type_accepts(d.record_type, pool.pool_type) {
                    return bad(format!(
                        "domain {} ({:?}) cannot use pool {} of type {:?}",
                        d.id, d.record_type, pool.id, pool.pool_type
                    ));
                }
                if !(1..=100).contains(&m.weight) {
                    return bad(format!(
                        "domain {} pool {} has weight {}",
                        d.id, m.pool, m.weight
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Whether an access domain of type `domain` and a static record set of type `record` cannot
/// share a name: same type, or a CNAME, which owns its name alone (RFC 1034).
pub fn static_conflicts(domain: RecordType, record: crate::zone::ZoneRecordType) -> bool {
    use crate::zone::ZoneRecordType as Z;
    match domain {
        RecordType::A => record == Z::A,
        RecordType::AAAA => record == Z::AAAA,
        RecordType::CNAME => true,
    }
}

/// Which pool types may serve which record type: A takes IPv4 or Domain pools,
/// AAAA takes IPv6 or Domain pools, CNAME takes Domain pools only.
pub fn record_type_accepts(record: RecordType, pool: PoolType) -> bool {
    let ip = match record {
        RecordType::A => PoolType::IPv4,
        RecordType::AAAA => PoolType::IPv6,
        RecordType::CNAME => return pool == PoolType::Domain,
    };
    pool == ip || pool == PoolType::Domain
}

/// Whether an address value has the form its pool type requires.
pub fn address_fits_pool_type(value: &str, pool_type: PoolType) -> bool {
    match pool_type {
        PoolType::IPv4 => value.parse::<std::net::Ipv4Addr>().is_ok(),
        PoolType::IPv6 => value.parse::<std::net::Ipv6Addr>().is_ok(),
        PoolType::Domain => value.parse::<std::net::IpAddr>().is_err() && is_host_name(value),
    }
}

/// Host-name check without a regex engine: dot-separated labels of 1 to 63 letters, digits,
/// hyphens (not at either end) or underscores, 253 characters at most, trailing dot allowed.
pub fn is_host_name(value: &str) -> bool {
    let name = value.strip_suffix('.').unwrap_or(value);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests;
