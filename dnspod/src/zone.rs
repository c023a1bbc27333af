//! The zones this pod is authoritative for: their apex records (SOA and NS) and the name
//! servers' glue, built from the config's zone data (a `GtmZone`) where it has some, else from
//! the flags. Every SOA field and the name servers the zone data leaves out take the flags'.
//! Pure: no I/O.

use std::str::FromStr;
use std::sync::Arc;

use gtm_crds::config::{ZoneConfig, canonical_name};
use hickory_server::proto::ProtoError;
use hickory_server::proto::rr::rdata::{NS, SOA};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use crate::dnssec::ZoneKey;

/// TTL of the NS records at a zone apex without zone data. The NS set only changes with the
/// deployment, so it can be cached far longer than the GTM answers.
pub const NS_TTL: u32 = 3600;

/// SOA and NS settings from the flags (see `docs/configuration.md`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneSettings {
    /// Zones served in addition to those the config lists (canonical or not).
    pub extra_zones: Vec<String>,
    /// NS names at every apex; empty means `ns1.<zone>`.
    pub nameservers: Vec<String>,
    /// SOA responsible mailbox (a DNS name, or `user@domain`); `None` means `hostmaster.<zone>`.
    pub soa_rname: Option<String>,
    /// SOA refresh, seconds.
    pub refresh: i32,
    /// SOA retry, seconds.
    pub retry: i32,
    /// SOA expire, seconds.
    pub expire: i32,
    /// SOA minimum, seconds: the negative-caching TTL (RFC 2308).
    pub minimum: u32,
}

impl Default for ZoneSettings {
    fn default() -> Self {
        Self {
            extra_zones: Vec::new(),
            nameservers: Vec::new(),
            soa_rname: None,
            refresh: 3600,
            retry: 600,
            expire: 86400,
            minimum: 30,
        }
    }
}

/// Why a zone's apex records could not be built.
#[derive(Debug, thiserror::Error)]
#[error("zone {zone}: {reason}")]
pub struct ZoneError {
    /// The zone.
    pub zone: String,
    /// What is wrong.
    pub reason: String,
}

/// One served zone with its apex records ready to answer.
#[derive(Debug)]
pub struct Zone {
    /// The apex, for lookups.
    pub name: LowerName,
    /// The SOA record. Its TTL is the SOA minimum, so that the TTL of the SOA in a negative
    /// answer, `min(TTL, MINIMUM)` (RFC 2308 section 5), is the configured negative TTL.
    pub soa: Record,
    /// The NS records.
    pub ns: Vec<Record>,
    /// The glue of the name servers inside the zone (A and AAAA records): the additional
    /// section of NS answers.
    pub glue: Vec<Record>,
    /// The SOA record in wire form after its owner name (type, class, TTL, length, data; names
    /// uncompressed), for the fast path's negative answers.
    pub soa_wire_after_owner: Vec<u8>,
    /// The signing key of a signed zone (`GtmZone` `dnssec`).
    pub dnssec: Option<Arc<ZoneKey>>,
}

/// Parses a DNS name as absolute (a trailing dot is optional).
pub fn absolute_name(name: &str) -> Option<Name> {
    let mut n = Name::from_str(name.trim_end_matches('.')).ok()?;
    n.set_fqdn(true);
    Some(n)
}

/// The sorted, deduplicated union of the config's zones and the extra zones, canonical.
pub fn zone_names(config_zones: &[String], settings: &ZoneSettings) -> Vec<String> {
    let mut zones: Vec<String> = config_zones
        .iter()
        .chain(&settings.extra_zones)
        .map(|z| canonical_name(z))
        .filter(|z| !z.is_empty())
        .collect();
    zones.sort();
    zones.dedup();
    zones
}

impl Zone {
    /// Builds the apex records of `zone` (canonical) with SOA serial `serial`, from its zone
    /// data when it has some; a zone whose data asks for DNSSEC needs its `key`.
    pub fn build(
        zone: &str,
        settings: &ZoneSettings,
        serial: u32,
        data: Option<&ZoneConfig>,
        key: Option<Arc<ZoneKey>>,
    ) -> Result<Self, ZoneError> {
        let err = |reason: String| ZoneError {
            zone: zone.to_owned(),
            reason,
        };
        let origin = absolute_name(zone).ok_or_else(|| err("not a DNS name".into()))?;
        let in_zone = |label: &str| {
            absolute_name(&format!("{label}.{zone}"))
                .ok_or_else(|| err(format!("{label}.{zone} is not a DNS name")))
        };
        let name = |n: &str| absolute_name(n).ok_or_else(|| err(format!("bad name server {n:?}")));
        let declared: Vec<&str> = data
            .map(|d| d.nameservers.iter().map(|n| n.name.as_str()).collect())
            .unwrap_or_default();
        let nameservers = if !declared.is_empty() {
            declared
                .into_iter()
                .map(name)
                .collect::<Result<Vec<_>, _>>()?
        } else if settings.nameservers.is_empty() {
            vec![in_zone("ns1")?]
        } else {
            settings
                .nameservers
                .iter()
                .map(|n| name(n))
                .collect::<Result<Vec<_>, _>>()?
        };
        let soa_data = data.map(|d| &d.soa);
        let mname = match soa_data.and_then(|s| s.mname.as_deref()) {
            Some(m) => name(m)?,
            None => nameservers[0].clone(),
        };
        let rname = match soa_data
            .and_then(|s| s.rname.as_ref())
            .or(settings.soa_rname.as_ref())
        {
            None => in_zone("hostmaster")?,
            Some(r) => absolute_name(&r.replacen('@', ".", 1))
                .ok_or_else(|| err(format!("bad SOA rname {r:?}")))?,
        };
        let minimum = soa_data.and_then(|s| s.minimum).unwrap_or(settings.minimum);
        let soa = SOA::new(
            mname,
            rname,
            serial,
            soa_data.and_then(|s| s.refresh).unwrap_or(settings.refresh),
            soa_data.and_then(|s| s.retry).unwrap_or(settings.retry),
            soa_data.and_then(|s| s.expire).unwrap_or(settings.expire),
            minimum,
        );
        let ns_ttl = data.map_or(NS_TTL, |d| d.nameserver_ttl);
        let ns = nameservers
            .into_iter()
            .map(|n| Record::from_rdata(origin.clone(), ns_ttl, RData::NS(NS(n))))
            .collect();
        let mut glue = Vec::new();
        for set in data.map(ZoneConfig::glue).unwrap_or_default() {
            glue.extend(crate::static_records::records(&set).map_err(err)?);
        }
        let soa = Record::from_rdata(origin.clone(), minimum, RData::SOA(soa));
        let soa_wire_after_owner =
            wire_after_owner(&soa).map_err(|e| err(format!("SOA record does not encode: {e}")))?;
        let dnssec = match data.and_then(|d| d.dnssec.as_ref()) {
            None => None,
            Some(_) => Some(key.ok_or_else(|| {
                err("DNSSEC is on but this DNS pod has no key for the zone (--dnssec-keys)".into())
            })?),
        };
        Ok(Self {
            name: LowerName::new(&origin),
            soa,
            ns,
            glue,
            soa_wire_after_owner,
            dnssec,
        })
    }
}

/// A record in wire form without its owner name, names inside its data uncompressed.
fn wire_after_owner(record: &Record) -> Result<Vec<u8>, ProtoError> {
    let mut data = Vec::new();
    let mut encoder = BinEncoder::new(&mut data);
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    record.data.emit(&mut encoder)?;
    let mut wire = Vec::with_capacity(10 + data.len());
    wire.extend_from_slice(&u16::from(record.record_type()).to_be_bytes());
    wire.extend_from_slice(&u16::from(record.dns_class).to_be_bytes());
    wire.extend_from_slice(&record.ttl.to_be_bytes());
    let len = u16::try_from(data.len()).map_err(|_| ProtoError::from("record data too long"))?;
    wire.extend_from_slice(&len.to_be_bytes());
    wire.extend_from_slice(&data);
    Ok(wire)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_derive_ns_and_rname_from_the_zone() {
        let z = Zone::build("gtm.example.com", &ZoneSettings::default(), 7, None, None).unwrap();
        let RData::SOA(soa) = &z.soa.data else {
            panic!("not a SOA")
        };
        assert_eq!(soa.mname.to_string(), "ns1.gtm.example.com.");
        assert_eq!(soa.rname.to_string(), "hostmaster.gtm.example.com.");
        assert_eq!((soa.serial, soa.minimum), (7, 30));
        assert_eq!(z.soa.ttl, 30);
        assert_eq!(z.ns.len(), 1);
    }

    #[test]
    fn flags_override_ns_and_rname_and_accept_a_mailbox() {
        let settings = ZoneSettings {
            nameservers: vec!["a.ns.example.net".into(), "b.ns.example.net.".into()],
            soa_rname: Some("ops@example.net".into()),
            ..ZoneSettings::default()
        };
        let z = Zone::build("gtm.example.com", &settings, 1, None, None).unwrap();
        let RData::SOA(soa) = &z.soa.data else {
            panic!("not a SOA")
        };
        assert_eq!(soa.mname.to_string(), "a.ns.example.net.");
        assert_eq!(soa.rname.to_string(), "ops.example.net.");
        assert_eq!(z.ns.len(), 2);
    }

    #[test]
    fn zone_names_merge_config_and_flags_canonically() {
        let settings = ZoneSettings {
            extra_zones: vec!["Other.Example.".into(), "gtm.example.com".into()],
            ..ZoneSettings::default()
        };
        assert_eq!(
            zone_names(&["gtm.example.com".into()], &settings),
            vec!["gtm.example.com".to_string(), "other.example".to_string()]
        );
    }
}
