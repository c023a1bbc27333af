//! Wire correctness at the edges: answers cut between records with the OPT record kept, ECS
//! read strictly (RFC 7871 section 6) and scoped in the family asked, no response to responses,
//! zone transfers refused and meta types not answered, every FORMERR counted.

mod support;

use std::net::IpAddr;
use std::time::Duration;

use gtm_crds::common::LbPolicy;
use gtm_crds::config::{DomainConfig, GtmConfig};
use gtm_crds::domain::RecordType as Rt;
use hickory_server::proto::op::{Message, ResponseCode};
use hickory_server::proto::rr::RecordType;
use hickory_server::proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use support::fixtures::*;
use support::*;

const BIG: &str = "big.gtm.example.com.";
const NEAR: &str = "near.gtm.example.com.";
const WWW: &str = "www.gtm.example.com.";

/// `big`: 64 AAAA records; `near`: SourceNearest, 10.0.0.0/8 or the default; `www`: one A.
fn sample() -> GtmConfig {
    let v6 = v6_addresses(64);
    config(
        1,
        vec![
            DomainConfig {
                max_answers: Some(64),
                ..domain("big", Rt::AAAA, LbPolicy::RoundRobin, vec![member("ns/v6")])
            },
            domain("near", Rt::A, LbPolicy::RoundRobin, vec![member("ns/near")]),
            domain("www", Rt::A, LbPolicy::RoundRobin, vec![member("ns/v4")]),
        ],
        vec![
            pool("ns/v6", LbPolicy::RoundRobin, v6),
            pool(
                "ns/near",
                LbPolicy::SourceNearest,
                vec![
                    cidr_sourced("203.0.113.1", &["10.0.0.0/8"], false),
                    cidr_sourced("203.0.113.3", &[], true),
                ],
            ),
            pool("ns/v4", LbPolicy::RoundRobin, vec![addr("192.0.2.1")]),
        ],
    )
}

async fn pod() -> TestPod {
    TestPod::serving(&sample(), &health_down(1, &[])).await
}

/// A query with EDNS advertising `payload` and an ECS option whose data is `ecs` as is.
fn query_raw_ecs(name: &str, qtype: RecordType, payload: u16, ecs: &[u8]) -> Message {
    let mut m = query_edns(name, qtype, payload);
    m.edns
        .as_mut()
        .unwrap()
        .options_mut()
        .insert(EdnsOption::Unknown(
            u16::from(EdnsCode::Subnet),
            ecs.to_vec(),
        ));
    m
}

#[tokio::test]
async fn a_truncated_answer_that_fills_the_payload_keeps_its_opt_and_ecs() {
    let pod = pod().await;
    // Header 12, question 25, AAAA records of 47 bytes (the first, its owner written out) and
    // 28 (the others, their owner a pointer to it), OPT with ECS for 10.1.2.0/24 of 22 bytes:
    // 20 records and the OPT need 638 bytes.
    for (payload, answers) in [(638, 20), (637, 19), (665, 20), (666, 21)] {
        let q = query_raw_ecs(BIG, RecordType::AAAA, payload, &[0, 1, 24, 0, 10, 1, 2]);
        let reply = udp_raw(pod.addr, &q.to_vec().unwrap(), REPLY_TIMEOUT)
            .await
            .expect("a reply");
        assert!(reply.len() <= usize::from(payload), "{payload}");
        let m = Message::from_vec(&reply).unwrap();
        assert_eq!(m.answers.len(), answers, "{payload}");
        assert!(m.metadata.truncation, "{payload}");
        let ecs = response_ecs(&m).unwrap_or_else(|| panic!("{payload}: ECS kept"));
        assert_eq!(ecs.source_prefix(), 24);
        // Whole records only: nothing after the OPT record.
        assert_eq!(reply.len(), 78 + 28 * answers, "{payload}");
    }
}

#[tokio::test]
async fn ipv4_mapped_subnets_are_scoped_in_ipv6_bits() {
    let pod = pod().await;
    let mapped: IpAddr = "::ffff:10.1.2.0".parse().unwrap();
    for t in Transport::BOTH {
        let mut q = query_edns(NEAR, RecordType::A, 1232);
        q.edns
            .as_mut()
            .unwrap()
            .options_mut()
            .insert(EdnsOption::Subnet(ClientSubnet::new(mapped, 120, 0)));
        let r = t.exchange(pod.addr, &q).await;
        assert_eq!(data(&r.answers), vec!["203.0.113.1"], "{t:?}");
        let ecs = response_ecs(&r).expect("ECS echoed");
        // 10.0.0.0/8 decided: 8 bits of the IPv4 address, 104 of the IPv6 one, not ::/8.
        assert_eq!(
            (ecs.addr(), ecs.source_prefix(), ecs.scope_prefix()),
            (mapped, 120, 104),
            "{t:?}"
        );
    }
}

#[tokio::test]
async fn client_subnets_breaking_rfc_7871_section_6_get_formerr() {
    let pod = pod().await;
    for t in Transport::BOTH {
        for (ecs, why) in [
            (
                &[0, 1, 24, 0, 10, 1, 2, 3][..],
                "an address byte beyond the prefix",
            ),
            (
                &[0, 1, 24, 0, 10, 1, 2, 0][..],
                "a zero byte beyond the prefix",
            ),
            (&[0, 1, 24, 16, 10, 1, 2][..], "a scope in a query"),
            (&[0, 1, 20, 0, 10, 1, 2][..], "bits beyond the prefix"),
        ] {
            let r = t
                .exchange(pod.addr, &query_raw_ecs(NEAR, RecordType::A, 1232, ecs))
                .await;
            assert_eq!(
                r.metadata.response_code,
                ResponseCode::FormErr,
                "{t:?} {why}"
            );
        }
        // Well formed: echoed byte for byte.
        let r = t
            .exchange(
                pod.addr,
                &query_raw_ecs(NEAR, RecordType::A, 1232, &[0, 1, 23, 0, 10, 1, 2]),
            )
            .await;
        assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{t:?}");
        let ecs = response_ecs(&r).unwrap();
        assert_eq!(
            (ecs.addr().to_string().as_str(), ecs.source_prefix()),
            ("10.1.2.0", 23)
        );
    }
}

#[tokio::test]
async fn messages_with_qr_set_get_no_response_decodable_or_not() {
    let pod = pod().await;
    // A response header with one question, then garbage.
    let garbage = [
        0x12, 0x34, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff,
    ];
    let wait = Duration::from_millis(300);
    assert!(udp_raw(pod.addr, &garbage, wait).await.is_none());
    let mut response = query(WWW, RecordType::A);
    response.metadata.message_type = hickory_server::proto::op::MessageType::Response;
    let bytes = response.to_vec().unwrap();
    assert!(udp_raw(pod.addr, &bytes, wait).await.is_none());
    // The same garbage as a query gets FORMERR, counted.
    let mut as_query = garbage;
    as_query[2] = 0;
    let reply = udp_raw(pod.addr, &as_query, REPLY_TIMEOUT).await.unwrap();
    let m = Message::from_vec(&reply).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    let text = pod.shared.metrics.encode();
    let line = r#"gtm_dnspod_queries_total{qtype="other",rcode="FORMERR",domain="-"} 1"#;
    assert!(text.contains(line), "missing {line} in\n{text}");
}

#[tokio::test]
async fn zone_transfers_are_refused_and_meta_types_not_answered() {
    let pod = pod().await;
    for t in Transport::BOTH {
        for (qtype, rcode) in [
            (RecordType::AXFR, ResponseCode::Refused),
            (RecordType::IXFR, ResponseCode::Refused),
            (RecordType::OPT, ResponseCode::FormErr),
            (RecordType::TSIG, ResponseCode::FormErr),
            (RecordType::Unknown(249), ResponseCode::NotImp),
            (RecordType::Unknown(253), ResponseCode::NotImp),
            (RecordType::Unknown(254), ResponseCode::NotImp),
            (RecordType::Unknown(128), ResponseCode::NotImp),
        ] {
            for name in [WWW, "gtm.example.com."] {
                let r = t.exchange(pod.addr, &query(name, qtype)).await;
                assert_eq!(r.metadata.response_code, rcode, "{t:?} {name} {qtype:?}");
                assert!(r.answers.is_empty(), "{t:?} {name} {qtype:?}");
            }
        }
        let r = t.exchange(pod.addr, &query(WWW, RecordType::ANY)).await;
        assert_eq!(data(&r.answers), vec!["192.0.2.1"], "ANY is answered");
    }
}

#[tokio::test]
async fn the_series_of_a_domain_removed_from_the_config_are_dropped() {
    let mut pod = pod().await;
    let r = udp(pod.addr, &query(WWW, RecordType::A)).await;
    assert_eq!(data(&r.answers), vec!["192.0.2.1"]);
    let series = r#"domain="www.gtm.example.com""#;
    assert!(pod.shared.metrics.encode().contains(series));
    let mut next = sample();
    next.generation = 2;
    next.domains.retain(|d| d.name != "www.gtm.example.com");
    pod.load(&next, &health_down(2, &[]));
    assert!(!pod.shared.metrics.encode().contains(series));
}
