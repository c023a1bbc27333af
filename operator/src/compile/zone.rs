//! Compiling `GtmZone` objects: each served zone's own data (name servers with glue, SOA
//! fields, static records) into the contract's [`ZoneConfig`], and the (name, type) pairs its
//! records claim, which access domains may not answer too.
//!
//! Rules: one `GtmZone` per zone (the older wins, the newer gets `Conflict`); the zone must be
//! served (`ZoneNotServed`); every record lies in the zone and not in a more specific served
//! zone, is declared once per (name, type) whatever the case of its name, and does not repeat
//! a name server's glue (`InvalidRecord`). The zone's records take precedence over access
//! domains: an access domain of the same name and type, or a CNAME access domain at a name with
//! records, is refused with `Conflict` (see [`StaticClaims::conflict`]), so that editing an
//! access domain can never take away a delegation's glue or an ACME challenge.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use gtm_crds::config::{
    DomainConfig, NameserverConfig, RecordData, RecordSetConfig, ZoneConfig, canonical_name,
    in_zone, static_conflicts,
};
use gtm_crds::manifest::Kind;
use gtm_crds::zone::{ZoneRecord, ZoneRecordType};
use gtm_crds::{GtmZone, RecordType};

use super::verdict::{Publication, RejectReason, Rejection, Verdict};
use crate::inventory::{ObjectKey, age_order};

/// The (name, type) pairs the published zones' records and glue claim, with the `GtmZone`
/// that claims them.
#[derive(Debug, Default)]
pub(super) struct StaticClaims(HashMap<String, Vec<(ZoneRecordType, ObjectKey)>>);

impl StaticClaims {
    fn add(&mut self, zone: &ZoneConfig, key: &ObjectKey) {
        for set in zone.records.iter().chain(&zone.glue()) {
            self.0
                .entry(set.name.clone())
                .or_default()
                .push((set.data.record_type(), key.clone()));
        }
    }

    /// Why `domain` may not be published: a static record of its type, or any static record
    /// at the name of a CNAME access domain.
    pub(super) fn conflict(&self, domain: &DomainConfig) -> Option<Rejection> {
        let (t, owner) = self
            .0
            .get(&domain.name)?
            .iter()
            .find(|(t, _)| static_conflicts(domain.record_type, *t))?;
        let why = if domain.record_type == RecordType::CNAME {
            "a CNAME owns its name alone"
        } else {
            "the zone's records take precedence over access domains"
        };
        Some(Rejection::new(
            RejectReason::Conflict,
            format!(
                "{} {:?}: GtmZone {}/{} declares a {t:?} record at this name ({why}); remove one of the two",
                domain.name, domain.record_type, owner.namespace, owner.name
            ),
        ))
    }
}

/// Compiles every `GtmZone` for the served `zones` (canonical): the published zone data, sorted
/// by zone, and the claims of their records; a verdict per object goes to `verdicts`.
pub(super) fn compile_zones(
    objects: &[std::sync::Arc<GtmZone>],
    zones: &[String],
    verdicts: &mut BTreeMap<ObjectKey, Verdict>,
) -> (Vec<ZoneConfig>, StaticClaims) {
    let mut objects: Vec<&GtmZone> = objects.iter().map(|z| z.as_ref()).collect();
    objects.sort_by(|a, b| age_order(*a, *b));
    let mut published: BTreeMap<String, (ZoneConfig, ObjectKey)> = BTreeMap::new();
    for obj in objects {
        let key = ObjectKey::of(Kind::GtmZone, obj);
        let verdict = match compile_zone(obj, zones) {
            Err(r) => Verdict::rejected(r),
            Ok(config) => match published.get(&config.name) {
                Some((_, older)) => Verdict::rejected(Rejection::new(
                    RejectReason::Conflict,
                    format!(
                        "zone {} is already declared by the older GtmZone {}/{}",
                        config.name, older.namespace, older.name
                    ),
                )),
                None => {
                    published.insert(config.name.clone(), (config, key.clone()));
                    Verdict::accepted(Publication::Published)
                }
            },
        };
        verdicts.insert(key, verdict);
    }
    let mut claims = StaticClaims::default();
    let data = published
        .into_values()
        .map(|(config, key)| {
            claims.add(&config, &key);
            config
        })
        .collect();
    (data, claims)
}

fn compile_zone(obj: &GtmZone, zones: &[String]) -> Result<ZoneConfig, Rejection> {
    let spec = &obj.spec;
    let zone = canonical_name(&spec.zone);
    if !zones.contains(&zone) {
        return Err(Rejection::new(
            RejectReason::ZoneNotServed,
            format!(
                "zone {zone} is not served by the DNS pods ({}); add it to the chart's zones (--zone)",
                if zones.is_empty() {
                    "none configured".to_string()
                } else {
                    zones.join(", ")
                }
            ),
        ));
    }
    let invalid = |m: String| Rejection::new(RejectReason::InvalidRecord, m);
    let mut nameservers = Vec::with_capacity(spec.nameservers.len());
    for ns in &spec.nameservers {
        let name = canonical_name(&ns.name);
        if nameservers
            .iter()
            .any(|n: &NameserverConfig| n.name == name)
        {
            return Err(invalid(format!("name server {name} is listed twice")));
        }
        let addresses = ns
            .addresses
            .iter()
            .map(|a| {
                a.0.parse::<IpAddr>().map_err(|_| {
                    invalid(format!(
                        "name server {name}: {:?} is not an IP address",
                        a.0
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if addresses.is_empty() == in_zone(&name, &zone) {
            return Err(invalid(format!(
                "name server {name}: glue addresses are required inside the zone and allowed only there"
            )));
        }
        nameservers.push(NameserverConfig { name, addresses });
    }
    let glue_names: HashSet<&str> = nameservers
        .iter()
        .filter(|n| !n.addresses.is_empty())
        .map(|n| n.name.as_str())
        .collect();
    let mut records = Vec::with_capacity(spec.records.len());
    let mut seen = HashSet::new();
    for record in &spec.records {
        let name = canonical_name(&record.name);
        if !in_zone(&name, &zone) {
            return Err(invalid(format!("record {name} lies outside zone {zone}")));
        }
        if let Some(child) = zones
            .iter()
            .find(|z| z.len() > zone.len() && in_zone(z, &zone) && in_zone(&name, z))
        {
            return Err(invalid(format!(
                "record {name} lies in the served zone {child}; declare it in that zone's GtmZone"
            )));
        }
        if !seen.insert((name.clone(), record.record_type)) {
            return Err(invalid(format!(
                "{name} {:?} is declared twice (names compare without case or trailing dot)",
                record.record_type
            )));
        }
        if glue_names.contains(name.as_str())
            && matches!(record.record_type, ZoneRecordType::A | ZoneRecordType::AAAA)
        {
            return Err(invalid(format!(
                "{name} {:?}: the name server's addresses already give it its address records",
                record.record_type
            )));
        }
        records.push(RecordSetConfig {
            name,
            ttl: record.ttl,
            data: record_data(record).map_err(invalid)?,
        });
    }
    Ok(ZoneConfig {
        name: zone,
        id: ObjectKey::of(Kind::GtmZone, obj).id(),
        nameservers,
        nameserver_ttl: spec.nameserver_ttl,
        soa: spec.soa.clone().unwrap_or_default(),
        records,
        dnssec: spec.dnssec.clone(),
    })
}

/// The records of one set in contract form; the data fields that do not belong to its type
/// are empty (the schema's rules say so).
fn record_data(record: &ZoneRecord) -> Result<RecordData, String> {
    fn parse<T: std::str::FromStr>(record: &ZoneRecord) -> Result<Vec<T>, String> {
        record
            .addresses
            .iter()
            .map(|a| {
                a.0.parse().map_err(|_| {
                    format!(
                        "{} {:?}: {:?} is not an address of that type",
                        record.name, record.record_type, a.0
                    )
                })
            })
            .collect()
    }
    let data = match record.record_type {
        ZoneRecordType::A => RecordData::A {
            addresses: parse::<Ipv4Addr>(record)?,
        },
        ZoneRecordType::AAAA => RecordData::AAAA {
            addresses: parse::<Ipv6Addr>(record)?,
        },
        ZoneRecordType::TXT => RecordData::TXT {
            text: record.text.iter().map(|t| t.0.clone()).collect(),
        },
        ZoneRecordType::MX => RecordData::MX {
            mx: record.mx.clone(),
        },
        ZoneRecordType::SRV => RecordData::SRV {
            srv: record.srv.clone(),
        },
        ZoneRecordType::CAA => RecordData::CAA {
            caa: record.caa.clone(),
        },
    };
    if data.is_empty() {
        return Err(format!(
            "{} {:?} has no records",
            record.name, record.record_type
        ));
    }
    Ok(data)
}

#[cfg(test)]
mod tests;
