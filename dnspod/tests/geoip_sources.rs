//! Request sources by location, with a small MaxMind database built by the test: the
//! specificity order CIDR > ASN > subdivision > country > continent > default, over real
//! sockets with ECS.

mod support;

use gtm_crds::common::{Cidr, Continent, CountryCode, LbPolicy, RequestSources, SubdivisionCode};
use gtm_crds::config::{AddressConfig, GtmConfig};
use gtm_crds::domain::RecordType as Rt;
use gtm_dnspod::geoip::{GeoInfo, GeoIp};
use hickory_server::proto::rr::RecordType;
use mmdb_writer::Writer;
use serde::Serialize;
use support::fixtures::*;
use support::*;

#[derive(Serialize)]
struct Code {
    code: &'static str,
}

#[derive(Serialize)]
struct Iso {
    iso_code: &'static str,
}

/// A GeoIP2 City record merged with GeoLite2 ASN data.
#[derive(Serialize)]
struct CityAsn {
    continent: Code,
    country: Iso,
    subdivisions: Vec<Iso>,
    autonomous_system_number: u32,
}

fn record(
    continent: &'static str,
    country: &'static str,
    sub: Option<&'static str>,
    asn: u32,
) -> CityAsn {
    CityAsn {
        continent: Code { code: continent },
        country: Iso { iso_code: country },
        subdivisions: sub.map(|s| Iso { iso_code: s }).into_iter().collect(),
        autonomous_system_number: asn,
    }
}

fn database() -> GeoIp {
    let mut w = Writer::new("GeoIP2-City");
    for (net, rec) in [
        ("81.10.0.0/16", record("EU", "DE", Some("BY"), 64500)),
        ("81.20.0.0/16", record("EU", "DE", Some("BE"), 64501)),
        ("81.30.0.0/16", record("EU", "FR", None, 64502)),
        ("82.0.0.0/16", record("AS", "JP", None, 64503)),
        ("83.0.0.0/16", record("NA", "US", Some("CA"), 64504)),
        ("2001:db8:ca::/48", record("EU", "FR", None, 64505)),
    ] {
        w.insert(net.parse::<ipnet::IpNet>().unwrap(), &rec)
            .unwrap();
    }
    GeoIp::from_bytes(w.to_bytes().unwrap()).unwrap()
}

fn sourced(value: &str, sources: RequestSources) -> AddressConfig {
    AddressConfig {
        sources,
        ..addr(value)
    }
}

fn sample() -> GtmConfig {
    let none = RequestSources::default;
    config(
        1,
        vec![domain(
            "geo",
            Rt::A,
            LbPolicy::RoundRobin,
            vec![member("ns/geo")],
        )],
        vec![pool(
            "ns/geo",
            LbPolicy::SourceNearest,
            vec![
                sourced(
                    "192.0.2.1",
                    RequestSources {
                        asns: vec![64500],
                        ..none()
                    },
                ),
                sourced(
                    "192.0.2.2",
                    RequestSources {
                        subdivisions: vec![SubdivisionCode("DE-BE".into())],
                        ..none()
                    },
                ),
                sourced(
                    "192.0.2.3",
                    RequestSources {
                        countries: vec![CountryCode("DE".into()), CountryCode("FR".into())],
                        ..none()
                    },
                ),
                sourced(
                    "192.0.2.4",
                    RequestSources {
                        continents: vec![Continent::AS],
                        ..none()
                    },
                ),
                sourced(
                    "192.0.2.5",
                    RequestSources {
                        cidrs: vec![Cidr("81.10.5.0/24".into())],
                        ..none()
                    },
                ),
                sourced(
                    "192.0.2.6",
                    RequestSources {
                        default: true,
                        ..none()
                    },
                ),
            ],
        )],
    )
}

#[test]
fn the_database_reader_finds_asn_location_and_network() {
    let db = database();
    assert_eq!(
        db.lookup("81.10.200.7".parse().unwrap()),
        Some(GeoInfo {
            prefix_len: 16,
            asn: Some(64500),
            continent: Some("EU".into()),
            country: Some("DE".into()),
            subdivisions: vec!["DE-BY".into()],
        })
    );
    let gap = db.lookup("100.64.0.1".parse().unwrap()).unwrap();
    assert_eq!((gap.asn, gap.country), (None, None));
}

#[tokio::test]
async fn the_most_specific_source_kind_wins() {
    let pod = TestPod::serving_with(&sample(), &health_down(1, &[]), Some(database())).await;
    let name = "geo.gtm.example.com.";
    for t in Transport::BOTH {
        for (subnet, prefix, want, scope) in [
            ("81.10.5.0", 24, "192.0.2.5", 24), // CIDR beats the ASN of the same network
            ("81.10.9.0", 24, "192.0.2.1", 21), // ASN; 21 bits keep 81.10.5/24 out
            ("81.20.1.0", 24, "192.0.2.2", 16), // subdivision beats country
            ("81.30.1.0", 24, "192.0.2.3", 16), // country
            ("82.0.1.0", 24, "192.0.2.4", 16),  // continent
            ("83.0.1.0", 24, "192.0.2.6", 16),  // nothing matches: default
            ("2001:db8:ca::", 56, "192.0.2.3", 48), // IPv6 client, country
        ] {
            let r = t
                .exchange(pod.addr, &query_ecs(name, RecordType::A, subnet, prefix))
                .await;
            assert_eq!(data(&r.answers), vec![want], "{subnet} {t:?}");
            let ecs = response_ecs(&r).unwrap();
            assert_eq!(ecs.scope_prefix(), scope, "{subnet} {t:?}");
        }
    }
}

#[tokio::test]
async fn without_a_database_location_sources_never_match() {
    let pod = TestPod::serving(&sample(), &health_down(1, &[])).await;
    let r = udp(
        pod.addr,
        &query_ecs("geo.gtm.example.com.", RecordType::A, "81.10.9.0", 24),
    )
    .await;
    assert_eq!(data(&r.answers), vec!["192.0.2.6"]);
}
