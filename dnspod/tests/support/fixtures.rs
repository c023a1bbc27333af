//! Config and health builders shared by the engine unit tests and the integration tests.
#![allow(dead_code)]

use gtm_crds::common::{Cidr, HealthJudgement, LbPolicy, RequestSources, SequentialMode};
use gtm_crds::config::{
    ActiveSelections, AddressConfig, DomainConfig, GtmConfig, HealthSnapshot, NameserverConfig,
    PoolConfig, PoolMember, RecordData, RecordSetConfig, SCHEMA_VERSION, ZoneConfig,
};
use gtm_crds::domain::{Fallback, RecordType};
use gtm_crds::pool::{AddressMode, HealthState, PoolType};
use gtm_crds::zone::{CaaData, MxData, Soa, SrvData};

/// The zone every fixture config serves.
pub(crate) const ZONE: &str = "gtm.example.com";

/// The id of the one health-check task of an address built by [`addr`].
pub(crate) fn task(value: &str) -> String {
    format!("ns/http@{value}#80")
}

/// [`addr`] matched for clients in `cidrs`, or for everyone not matched elsewhere when
/// `default` (SourceNearest).
pub(crate) fn cidr_sourced(value: &str, cidrs: &[&str], default: bool) -> AddressConfig {
    AddressConfig {
        sources: RequestSources {
            cidrs: cidrs.iter().map(|c| Cidr((*c).into())).collect(),
            default,
            ..RequestSources::default()
        },
        ..addr(value)
    }
}

/// `n` IPv6 addresses `2001:db8::1` on, built by [`addr`].
pub(crate) fn v6_addresses(n: u16) -> Vec<AddressConfig> {
    (1..=n).map(|i| addr(&format!("2001:db8::{i:x}"))).collect()
}

/// An enabled `Auto` address with weight 1, order 1 and one task.
pub(crate) fn addr(value: &str) -> AddressConfig {
    AddressConfig {
        value: value.into(),
        enabled: true,
        mode: AddressMode::Auto,
        weight: 1,
        order: 1,
        sources: RequestSources::default(),
        health_judgement: HealthJudgement::AnyOk,
        tasks: vec![task(value)],
    }
}

/// An address with a weight.
pub(crate) fn weighted(value: &str, weight: u8) -> AddressConfig {
    AddressConfig {
        weight,
        ..addr(value)
    }
}

/// An address with an order.
pub(crate) fn ordered(value: &str, order: u16) -> AddressConfig {
    AddressConfig {
        order,
        ..addr(value)
    }
}

/// An enabled pool judged `AnyOk`; its type follows its first address.
pub(crate) fn pool(id: &str, policy: LbPolicy, addresses: Vec<AddressConfig>) -> PoolConfig {
    let first = addresses.first().map(|a| a.value.as_str()).unwrap_or("");
    let pool_type = if first.parse::<std::net::Ipv4Addr>().is_ok() {
        PoolType::IPv4
    } else if first.parse::<std::net::Ipv6Addr>().is_ok() {
        PoolType::IPv6
    } else {
        PoolType::Domain
    };
    PoolConfig {
        id: id.into(),
        pool_type,
        enabled: true,
        policy,
        sequential_mode: SequentialMode::Preemptive,
        affinity: None,
        health_judgement: HealthJudgement::AnyOk,
        min_available: None,
        addresses,
    }
}

/// A pool member with order 1 and weight 1.
pub(crate) fn member(pool: &str) -> PoolMember {
    PoolMember {
        pool: pool.into(),
        order: 1,
        weight: 1,
        sources: RequestSources::default(),
    }
}

/// A domain `<label>.gtm.example.com` with TTL 30, failing open.
pub(crate) fn domain(
    label: &str,
    record_type: RecordType,
    policy: LbPolicy,
    pools: Vec<PoolMember>,
) -> DomainConfig {
    DomainConfig {
        id: format!("ns/{label}-{record_type:?}").to_lowercase(),
        name: format!("{label}.{ZONE}"),
        record_type,
        ttl: 30,
        policy,
        sequential_mode: SequentialMode::Preemptive,
        affinity: None,
        latency: None,
        max_answers: None,
        when_all_unavailable: Fallback::FailOpen,
        pools,
    }
}

/// A consistent config of generation `generation` serving [`ZONE`].
pub(crate) fn config(
    generation: u64,
    domains: Vec<DomainConfig>,
    pools: Vec<PoolConfig>,
) -> GtmConfig {
    let c = GtmConfig {
        schema_version: SCHEMA_VERSION,
        generation,
        zones: vec![ZONE.into()],
        zone_data: Vec::new(),
        serials: Default::default(),
        domains,
        pools,
        templates: Default::default(),
    };
    c.check_consistency().expect("fixture config is consistent");
    c
}

/// A snapshot in which the tasks of these address values are `Down` (all others `Up`).
pub(crate) fn health_down(generation: u64, down: &[&str]) -> HealthSnapshot {
    HealthSnapshot {
        generation,
        tasks: down.iter().map(|v| (task(v), HealthState::Down)).collect(),
        ..HealthSnapshot::empty()
    }
}

/// [`health_down`] with active selections.
pub(crate) fn health_active(
    generation: u64,
    down: &[&str],
    active: ActiveSelections,
) -> HealthSnapshot {
    HealthSnapshot {
        active,
        ..health_down(generation, down)
    }
}

/// Generation `generation` answering `www.gtm.example.com` A with the one address `ip`.
pub(crate) fn www_only(generation: u64, ip: &str) -> GtmConfig {
    config(
        generation,
        vec![domain(
            "www",
            RecordType::A,
            LbPolicy::RoundRobin,
            vec![member("ns/p")],
        )],
        vec![pool("ns/p", LbPolicy::RoundRobin, vec![addr(ip)])],
    )
}

/// Zone data for [`ZONE`]: name servers `ns1` (glue 192.0.2.53 and 2001:db8::53) and
/// `ns.example.net`, SOA minimum 60, and static records: TXT at `_acme-challenge` (60 s), TXT,
/// MX (to `mail`, whose A is static) and CAA at the apex, SRV at `_sip._udp`, A at `mail`.
pub(crate) fn zone_data() -> ZoneConfig {
    let set = |label: &str, data| RecordSetConfig {
        name: if label.is_empty() {
            ZONE.to_string()
        } else {
            format!("{label}.{ZONE}")
        },
        ttl: 300,
        data,
    };
    let mut acme = set(
        "_acme-challenge",
        RecordData::TXT {
            text: vec!["token-1".into()],
        },
    );
    acme.ttl = 60;
    ZoneConfig {
        name: ZONE.into(),
        id: "ns/zone".into(),
        nameservers: vec![
            NameserverConfig {
                name: format!("ns1.{ZONE}"),
                addresses: vec![
                    "192.0.2.53".parse().unwrap(),
                    "2001:db8::53".parse().unwrap(),
                ],
            },
            NameserverConfig {
                name: "ns.example.net".into(),
                addresses: vec![],
            },
        ],
        nameserver_ttl: 3600,
        soa: Soa {
            rname: Some("ops@example.com".into()),
            minimum: Some(60),
            ..Soa::default()
        },
        records: vec![
            acme,
            set(
                "",
                RecordData::TXT {
                    text: vec!["v=spf1 -all".into(), "x".repeat(300)],
                },
            ),
            set(
                "",
                RecordData::MX {
                    mx: vec![MxData {
                        preference: 10,
                        exchange: format!("mail.{ZONE}"),
                    }],
                },
            ),
            set(
                "",
                RecordData::CAA {
                    caa: vec![CaaData {
                        flags: 0,
                        tag: "issue".into(),
                        value: "letsencrypt.org".into(),
                    }],
                },
            ),
            set(
                "_sip._udp",
                RecordData::SRV {
                    srv: vec![SrvData {
                        priority: 10,
                        weight: 5,
                        port: 5060,
                        target: format!("mail.{ZONE}"),
                    }],
                },
            ),
            set(
                "mail",
                RecordData::A {
                    addresses: vec!["192.0.2.25".parse().unwrap()],
                },
            ),
        ],
        dnssec: None,
    }
}

/// [`www_only`] with [`zone_data`].
pub(crate) fn with_zone_data(generation: u64) -> GtmConfig {
    let mut c = www_only(generation, "192.0.2.1");
    c.zone_data.push(zone_data());
    c.check_consistency().expect("fixture config is consistent");
    c
}
