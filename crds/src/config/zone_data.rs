//! A served zone's own data in the config contract: its name servers with glue, SOA fields and
//! static record sets, compiled from its `GtmZone`.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::{ContractError, canonical_name, in_zone, is_host_name};
use crate::zone::{CaaData, Dnssec, MxData, Soa, SrvData, ZoneRecordType};

/// One served zone's own data. Zones without one answer with the DNS pods' flags.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneConfig {
    /// The zone (canonical), one of [`super::GtmConfig::zones`].
    pub name: String,
    /// Object id of the `GtmZone` the data comes from.
    pub id: String,
    /// The NS records at the apex, in order; empty: the DNS pods' flags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<NameserverConfig>,
    /// TTL of the NS records and the glue.
    pub nameserver_ttl: u32,
    /// SOA fields; unset ones take the DNS pods' flags.
    #[serde(default)]
    pub soa: Soa,
    /// Static record sets, at most one per (name, type).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<RecordSetConfig>,
    /// DNSSEC signing; unset: the zone is not signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnssec: Option<Dnssec>,
}

/// A name server of a zone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NameserverConfig {
    /// Its host name (canonical).
    pub name: String,
    /// Its glue addresses (only for a name server inside the zone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<IpAddr>,
}

/// One static record set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordSetConfig {
    /// Owner name (canonical), inside the zone.
    pub name: String,
    /// TTL of every record of the set.
    pub ttl: u32,
    /// The records.
    #[serde(flatten)]
    pub data: RecordData,
}

/// The records of one set, by type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum RecordData {
    /// IPv4 addresses.
    A {
        /// One record each.
        addresses: Vec<Ipv4Addr>,
    },
    /// IPv6 addresses.
    AAAA {
        /// One record each.
        addresses: Vec<Ipv6Addr>,
    },
    /// Texts.
    TXT {
        /// One record each.
        text: Vec<String>,
    },
    /// Mail exchangers.
    MX {
        /// One record each.
        mx: Vec<MxData>,
    },
    /// Service locations.
    SRV {
        /// One record each.
        srv: Vec<SrvData>,
    },
    /// Certification authority authorizations.
    CAA {
        /// One record each.
        caa: Vec<CaaData>,
    },
}

impl RecordData {
    /// The set's type.
    pub fn record_type(&self) -> ZoneRecordType {
        match self {
            Self::A { .. } => ZoneRecordType::A,
            Self::AAAA { .. } => ZoneRecordType::AAAA,
            Self::TXT { .. } => ZoneRecordType::TXT,
            Self::MX { .. } => ZoneRecordType::MX,
            Self::SRV { .. } => ZoneRecordType::SRV,
            Self::CAA { .. } => ZoneRecordType::CAA,
        }
    }

    /// How many records the set holds.
    pub fn len(&self) -> usize {
        match self {
            Self::A { addresses } => addresses.len(),
            Self::AAAA { addresses } => addresses.len(),
            Self::TXT { text } => text.len(),
            Self::MX { mx } => mx.len(),
            Self::SRV { srv } => srv.len(),
            Self::CAA { caa } => caa.len(),
        }
    }

    /// True when the set holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ZoneConfig {
    /// The glue of the zone's name servers as record sets: one A and one AAAA set per name
    /// server inside the zone that has addresses of that family.
    pub fn glue(&self) -> Vec<RecordSetConfig> {
        let mut sets = Vec::new();
        for ns in &self.nameservers {
            let v4: Vec<Ipv4Addr> = ns
                .addresses
                .iter()
                .filter_map(|a| match a {
                    IpAddr::V4(a) => Some(*a),
                    IpAddr::V6(_) => None,
                })
                .collect();
            let v6: Vec<Ipv6Addr> = ns
                .addresses
                .iter()
                .filter_map(|a| match a {
                    IpAddr::V6(a) => Some(*a),
                    IpAddr::V4(_) => None,
                })
                .collect();
            let set = |data| RecordSetConfig {
                name: ns.name.clone(),
                ttl: self.nameserver_ttl,
                data,
            };
            if !v4.is_empty() {
                sets.push(set(RecordData::A { addresses: v4 }));
            }
            if !v6.is_empty() {
                sets.push(set(RecordData::AAAA { addresses: v6 }));
            }
        }
        sets
    }

    /// The rules a reader relies on: names canonical, records inside the zone, one set per
    /// (name, type) glue included, no empty set, TTLs above 0, glue only inside the zone.
    pub(crate) fn check_consistency(&self) -> Result<(), ContractError> {
        let bad = |m: String| {
            Err(ContractError::Inconsistent(format!(
                "zone {}: {m}",
                self.name
            )))
        };
        if self.nameserver_ttl == 0 {
            return bad("nameserver TTL 0".into());
        }
        let mut names = HashSet::new();
        for ns in &self.nameservers {
            if ns.name != canonical_name(&ns.name) || !is_host_name(&ns.name) {
                return bad(format!(
                    "name server {:?} is not a canonical host name",
                    ns.name
                ));
            }
            if !names.insert(ns.name.as_str()) {
                return bad(format!("name server {} is listed twice", ns.name));
            }
            if !ns.addresses.is_empty() && !in_zone(&ns.name, &self.name) {
                return bad(format!(
                    "name server {} is outside the zone but has glue",
                    ns.name
                ));
            }
        }
        let glue = self.glue();
        let mut sets = HashSet::new();
        for set in self.records.iter().chain(&glue) {
            if set.name != canonical_name(&set.name) || !in_zone(&set.name, &self.name) {
                return bad(format!(
                    "record {:?} is not a canonical name in the zone",
                    set.name
                ));
            }
            if set.ttl == 0 || set.data.is_empty() {
                return bad(format!("record set {} has no TTL or no records", set.name));
            }
            if !sets.insert((set.name.as_str(), set.data.record_type())) {
                return bad(format!(
                    "{} {:?} is declared twice (records or glue)",
                    set.name,
                    set.data.record_type()
                ));
            }
        }
        Ok(())
    }
}
