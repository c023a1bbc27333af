use super::*;
use crate::domain::Fallback;
use crate::task_id::TaskId;

pub(crate) fn sample() -> GtmConfig {
    GtmConfig {
        schema_version: SCHEMA_VERSION,
        generation: 7,
        zones: vec!["gtm.example.com".into()],
        zone_data: Vec::new(),
        serials: Default::default(),
        domains: vec![DomainConfig {
            id: "prod/app".into(),
            name: "app.gtm.example.com".into(),
            record_type: RecordType::A,
            ttl: 30,
            policy: LbPolicy::Sequential,
            sequential_mode: SequentialMode::NonPreemptive,
            affinity: None,
            latency: None,
            max_answers: Some(2),
            when_all_unavailable: Fallback::FailOpen,
            pools: vec![PoolMember {
                pool: "prod/eu".into(),
                order: 1,
                weight: 3,
                sources: RequestSources {
                    default: true,
                    ..Default::default()
                },
            }],
        }],
        pools: vec![PoolConfig {
            id: "prod/eu".into(),
            pool_type: PoolType::IPv4,
            enabled: true,
            policy: LbPolicy::Weighted,
            sequential_mode: SequentialMode::Preemptive,
            affinity: None,
            health_judgement: HealthJudgement::P50Ok,
            min_available: Some(1),
            addresses: vec![AddressConfig {
                value: "192.0.2.10".into(),
                enabled: true,
                mode: AddressMode::Auto,
                weight: 3,
                order: 1,
                sources: RequestSources::default(),
                health_judgement: HealthJudgement::AnyOk,
                tasks: vec![TaskId::new("prod", "http", "192.0.2.10", Some(80)).to_string()],
            }],
        }],
        templates: BTreeMap::new(),
    }
}

#[test]
fn config_round_trips_through_json() {
    let c = sample();
    let back = GtmConfig::from_json(&c.to_json()).unwrap();
    assert_eq!(back, c);
}

#[test]
fn a_parsed_config_keeps_no_spare_capacity() {
    let c = GtmConfig::from_json(&sample().to_json()).unwrap();
    let spare = |len: usize, capacity: usize| capacity - len;
    assert_eq!(spare(c.domains.len(), c.domains.capacity()), 0);
    assert_eq!(
        spare(c.domains[0].pools.len(), c.domains[0].pools.capacity()),
        0
    );
    assert_eq!(spare(c.pools.len(), c.pools.capacity()), 0);
    let address = &c.pools[0].addresses;
    assert_eq!(spare(address.len(), address.capacity()), 0);
    assert_eq!(
        spare(address[0].tasks.len(), address[0].tasks.capacity()),
        0
    );
}

#[test]
fn health_round_trips_through_json() {
    let mut h = HealthSnapshot::empty();
    h.generation = 3;
    h.tasks
        .insert("prod/http@192.0.2.10#80".into(), HealthState::Down);
    h.active.domains.insert("prod/app".into(), "prod/eu".into());
    h.active.pools.insert("prod/eu".into(), "192.0.2.10".into());
    let json = serde_json::to_vec(&h).unwrap();
    assert_eq!(HealthSnapshot::from_json(&json).unwrap(), h);
    assert_eq!(h.task("prod/http@192.0.2.10#80"), HealthState::Down);
    assert_eq!(h.task("unknown"), HealthState::Unknown);
}

#[test]
fn payload_json_uses_camel_case_and_a_version_string() {
    let v: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
    assert_eq!(v["schemaVersion"], "1.3");
    assert_eq!(v["domains"][0]["recordType"], "A");
    assert_eq!(v["domains"][0]["whenAllUnavailable"], "FailOpen");
    assert_eq!(
        v["pools"][0]["addresses"][0]["tasks"][0],
        "prod/http@192.0.2.10#80"
    );
}

fn with_version(version: &str) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
    v["schemaVersion"] = version.into();
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn newer_minor_version_is_accepted_with_unknown_fields() {
    let mut v: serde_json::Value = serde_json::from_slice(&with_version("1.7")).unwrap();
    v["somethingNew"] = serde_json::json!({"x": 1});
    let c = GtmConfig::from_json(&serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(c.schema_version, SchemaVersion { major: 1, minor: 7 });
}

#[test]
fn unknown_major_version_is_refused_clearly() {
    let err = GtmConfig::from_json(&with_version("2.0")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported schema version 2.0: this build reads 1.x"
    );
    // Refused even when the rest has a shape this build cannot read.
    let err = HealthSnapshot::from_json(br#"{"schemaVersion":"3.1","tasks":[1,2]}"#).unwrap_err();
    assert!(
        matches!(err, ContractError::UnsupportedVersion { .. }),
        "{err}"
    );
}

#[test]
fn garbage_and_partial_payloads_are_malformed() {
    for bad in [
        &b""[..],
        b"{",
        b"null",
        br#"{"schemaVersion":"x"}"#,
        br#"{"schemaVersion":"1.0"}"#,
    ] {
        let err = GtmConfig::from_json(bad).unwrap_err();
        assert!(matches!(err, ContractError::Malformed(_)), "{err}");
    }
    let full = sample().to_json();
    let err = GtmConfig::from_json(&full[..full.len() / 2]).unwrap_err();
    assert!(matches!(err, ContractError::Malformed(_)), "{err}");
}

fn inconsistent(mutate: impl FnOnce(&mut GtmConfig)) -> String {
    let mut c = sample();
    mutate(&mut c);
    match GtmConfig::from_json(&c.to_json()) {
        Err(ContractError::Inconsistent(m)) => m,
        other => panic!("expected an inconsistency, got {other:?}"),
    }
}

#[test]
fn inconsistent_payloads_are_refused() {
    assert!(
        inconsistent(|c| c.domains[0].pools[0].pool = "prod/gone".into())
            .contains("unknown pool prod/gone")
    );
    assert!(
        inconsistent(|c| c.domains[0].name = "app.other.org".into()).contains("in no served zone")
    );
    assert!(
        inconsistent(|c| c.domains[0].name = "App.gtm.example.com".into())
            .contains("not canonical")
    );
    assert!(
        inconsistent(|c| c.domains[0].record_type = RecordType::AAAA).contains("cannot use pool")
    );
    assert!(
        inconsistent(|c| c.pools[0].addresses[0].value = "2001:db8::1".into()).contains("holds")
    );
    assert!(inconsistent(|c| c.pools[0].addresses[0].weight = 0).contains("weight 0"));
    assert!(
        inconsistent(|c| {
            let d = c.domains[0].clone();
            c.domains.push(d);
        })
        .contains("published twice")
    );
    assert!(
        inconsistent(|c| {
            let a = c.pools[0].addresses[0].clone();
            c.pools[0].addresses.push(a);
        })
        .contains("twice")
    );
}

#[test]
fn names_and_zones() {
    assert_eq!(
        canonical_name("App.GTM.example.com."),
        "app.gtm.example.com"
    );
    assert!(in_zone("gtm.example.com", "gtm.example.com"));
    assert!(in_zone("a.gtm.example.com", "gtm.example.com"));
    assert!(!in_zone("agtm.example.com", "gtm.example.com"));
    assert!(!in_zone("example.com", "gtm.example.com"));
}

#[test]
fn record_and_pool_types() {
    use PoolType::*;
    assert!(record_type_accepts(RecordType::A, IPv4));
    assert!(record_type_accepts(RecordType::A, Domain));
    assert!(!record_type_accepts(RecordType::A, IPv6));
    assert!(record_type_accepts(RecordType::AAAA, IPv6));
    assert!(record_type_accepts(RecordType::AAAA, Domain));
    assert!(!record_type_accepts(RecordType::AAAA, IPv4));
    assert!(record_type_accepts(RecordType::CNAME, Domain));
    assert!(!record_type_accepts(RecordType::CNAME, IPv4));
    assert!(!record_type_accepts(RecordType::CNAME, IPv6));
}

#[test]
fn address_forms() {
    assert!(address_fits_pool_type("192.0.2.1", PoolType::IPv4));
    assert!(!address_fits_pool_type("192.0.2.256", PoolType::IPv4));
    assert!(!address_fits_pool_type("2001:db8::1", PoolType::IPv4));
    assert!(address_fits_pool_type("2001:db8::1", PoolType::IPv6));
    assert!(address_fits_pool_type(
        "eu.lb.example.net",
        PoolType::Domain
    ));
    assert!(address_fits_pool_type(
        "eu.lb.example.net.",
        PoolType::Domain
    ));
    assert!(!address_fits_pool_type("192.0.2.1", PoolType::Domain));
    assert!(!address_fits_pool_type("-bad.example", PoolType::Domain));
    assert!(!address_fits_pool_type("a..b", PoolType::Domain));
}

fn zone_data() -> ZoneConfig {
    ZoneConfig {
        name: "gtm.example.com".into(),
        id: "prod/zone".into(),
        nameservers: vec![
            NameserverConfig {
                name: "ns1.gtm.example.com".into(),
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
        soa: Default::default(),
        records: vec![RecordSetConfig {
            name: "_acme-challenge.gtm.example.com".into(),
            ttl: 60,
            data: RecordData::TXT {
                text: vec!["token".into()],
            },
        }],
        dnssec: None,
    }
}

#[test]
fn zone_data_round_trips_with_typed_record_sets() {
    let mut c = sample();
    c.zone_data.push(zone_data());
    let json = c.to_json();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["zoneData"][0]["records"][0]["type"], "TXT");
    assert_eq!(v["zoneData"][0]["records"][0]["text"][0], "token");
    assert_eq!(GtmConfig::from_json(&json).unwrap(), c);
    let glue = c.zone_data[0].glue();
    assert_eq!(
        glue.iter()
            .map(|s| s.data.record_type())
            .collect::<Vec<_>>(),
        [
            crate::zone::ZoneRecordType::A,
            crate::zone::ZoneRecordType::AAAA
        ]
    );
}

#[test]
fn zone_data_that_readers_cannot_serve_is_inconsistent() {
    type Edit<'a> = &'a dyn Fn(&mut GtmConfig);
    let check = |edit: Edit<'_>| {
        let mut c = sample();
        c.zone_data.push(zone_data());
        edit(&mut c);
        c.check_consistency()
    };
    assert!(check(&|_| ()).is_ok());
    let broken: [(&str, Edit<'_>); 5] = [
        ("unserved zone", &|c| {
            c.zone_data[0].name = "other.example".into()
        }),
        ("outside the zone", &|c| {
            c.zone_data[0].records[0].name = "www.example.com".into()
        }),
        ("glue outside", &|c| {
            c.zone_data[0].nameservers[1].addresses = vec!["192.0.2.1".parse().unwrap()]
        }),
        ("static A at an A domain", &|c| {
            c.zone_data[0].records[0].name = "app.gtm.example.com".into();
            c.zone_data[0].records[0].data = RecordData::A {
                addresses: vec!["192.0.2.9".parse().unwrap()],
            };
        }),
        ("glue twice", &|c| {
            c.zone_data[0].records[0].name = "ns1.gtm.example.com".into();
            c.zone_data[0].records[0].data = RecordData::AAAA {
                addresses: vec!["2001:db8::9".parse().unwrap()],
            };
        }),
    ];
    for (what, edit) in broken {
        assert!(
            matches!(check(edit), Err(ContractError::Inconsistent(_))),
            "{what}"
        );
    }
}
