//! The DNS behaviour (authoritative answers, NXDOMAIN vs NODATA with the SOA, REFUSED outside
//! the served zones, EDNS, truncation and TCP fallback, case-insensitive names, minimal ANY)
//! over real sockets on 127.0.0.1, UDP and TCP.

mod support;

use gtm_crds::common::LbPolicy;
use gtm_crds::config::{DomainConfig, GtmConfig};
use gtm_crds::domain::RecordType as Rt;
use hickory_server::proto::op::{OpCode, ResponseCode};
use hickory_server::proto::rr::{DNSClass, RData, RecordType};
use support::fixtures::*;
use support::*;

const WWW: &str = "www.gtm.example.com.";

/// www (A, two addresses), v6 (AAAA), alias (A answered by a Domain pool), cn (CNAME),
/// big (A, 60 addresses, all answered), near (SourceNearest by CIDR with a default).
fn sample() -> GtmConfig {
    config(
        3,
        vec![
            domain("www", Rt::A, LbPolicy::RoundRobin, vec![member("ns/web")]),
            domain(
                "v6",
                Rt::AAAA,
                LbPolicy::RoundRobin,
                vec![member("ns/web6")],
            ),
            domain("alias", Rt::A, LbPolicy::RoundRobin, vec![member("ns/cdn")]),
            domain(
                "cn",
                Rt::CNAME,
                LbPolicy::RoundRobin,
                vec![member("ns/cdn")],
            ),
            DomainConfig {
                max_answers: Some(60),
                ..domain("big", Rt::A, LbPolicy::RoundRobin, vec![member("ns/big")])
            },
            domain("near", Rt::A, LbPolicy::RoundRobin, vec![member("ns/near")]),
        ],
        vec![
            pool(
                "ns/web",
                LbPolicy::RoundRobin,
                vec![addr("192.0.2.1"), addr("192.0.2.2")],
            ),
            pool("ns/web6", LbPolicy::RoundRobin, vec![addr("2001:db8::1")]),
            pool(
                "ns/cdn",
                LbPolicy::Sequential,
                vec![addr("edge.cdn.example.net")],
            ),
            pool(
                "ns/big",
                LbPolicy::RoundRobin,
                (1..=60).map(|i| addr(&format!("198.51.100.{i}"))).collect(),
            ),
            pool(
                "ns/near",
                LbPolicy::SourceNearest,
                vec![
                    cidr_sourced("203.0.113.1", &["10.1.0.0/16"], false),
                    cidr_sourced("203.0.113.2", &["127.0.0.0/8"], false),
                    cidr_sourced("203.0.113.3", &[], true),
                ],
            ),
        ],
    )
}

async fn pod() -> TestPod {
    TestPod::serving(&sample(), &health_down(1, &[])).await
}

#[tokio::test]
async fn answers_are_authoritative_with_the_domain_ttl() {
    let pod = pod().await;
    for t in Transport::BOTH {
        let r = t.exchange(pod.addr, &query(WWW, RecordType::A)).await;
        assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{t:?}");
        assert!(r.metadata.authoritative, "{t:?}");
        assert!(!r.metadata.recursion_available, "{t:?}");
        let mut got = data(&r.answers);
        got.sort();
        assert_eq!(got, vec!["192.0.2.1", "192.0.2.2"], "{t:?}");
        assert!(r.answers.iter().all(|a| a.ttl == 30));
        let r = t
            .exchange(pod.addr, &query("v6.gtm.example.com.", RecordType::AAAA))
            .await;
        assert_eq!(data(&r.answers), vec!["2001:db8::1"], "{t:?}");
    }
}

/// Upper-cases every other letter of the question name of an encoded query (hickory's encoder
/// writes names in lower case).
fn mixed_case(mut bytes: Vec<u8>) -> Vec<u8> {
    let end = 12 + bytes[12..].iter().position(|b| *b == 0).unwrap();
    for (i, b) in bytes[12..end].iter_mut().enumerate() {
        if i % 2 == 0 {
            b.make_ascii_uppercase();
        }
    }
    bytes
}

#[tokio::test]
async fn names_are_case_insensitive_and_the_question_case_is_kept() {
    let pod = pod().await;
    let bytes = mixed_case(query(WWW, RecordType::A).to_vec().unwrap());
    let udp_reply = udp_raw(pod.addr, &bytes, REPLY_TIMEOUT).await.unwrap();
    let tcp_reply = tcp_raw(pod.addr, &bytes).await.unwrap();
    for raw in [udp_reply, tcp_reply] {
        assert_eq!(
            raw[12..12 + 21],
            bytes[12..12 + 21],
            "question echoed as sent"
        );
        let r = hickory_server::proto::op::Message::from_vec(&raw).unwrap();
        assert_eq!(r.answers.len(), 2);
        assert!(r.metadata.authoritative);
    }
}

fn assert_negative(r: &hickory_server::proto::op::Message, rcode: ResponseCode) {
    assert_eq!(r.metadata.response_code, rcode);
    assert!(r.metadata.authoritative);
    assert!(r.answers.is_empty());
    assert_eq!(r.authorities.len(), 1);
    let soa = &r.authorities[0];
    assert_eq!(soa.name.to_string(), "gtm.example.com.");
    let RData::SOA(data) = &soa.data else {
        panic!("authority is not a SOA: {soa:?}")
    };
    // Negative TTL: the SOA minimum, also as the SOA's own TTL.
    assert_eq!((soa.ttl, data.minimum), (30, 30));
    assert_eq!(data.serial, 3);
}

#[tokio::test]
async fn nxdomain_and_nodata_carry_the_soa() {
    let pod = pod().await;
    for t in Transport::BOTH {
        let r = t
            .exchange(pod.addr, &query("nope.gtm.example.com.", RecordType::A))
            .await;
        assert_negative(&r, ResponseCode::NXDomain);
        let r = t.exchange(pod.addr, &query(WWW, RecordType::AAAA)).await;
        assert_negative(&r, ResponseCode::NoError);
        let r = t.exchange(pod.addr, &query(WWW, RecordType::MX)).await;
        assert_negative(&r, ResponseCode::NoError);
        let r = t
            .exchange(pod.addr, &query("gtm.example.com.", RecordType::A))
            .await;
        assert_negative(&r, ResponseCode::NoError);
    }
}

#[tokio::test]
async fn names_outside_the_zones_are_refused() {
    let pod = pod().await;
    for t in Transport::BOTH {
        for name in ["example.com.", "www.example.org.", "."] {
            let r = t.exchange(pod.addr, &query(name, RecordType::A)).await;
            assert_eq!(
                r.metadata.response_code,
                ResponseCode::Refused,
                "{name} {t:?}"
            );
            assert!(!r.metadata.authoritative);
            assert!(r.answers.is_empty() && r.authorities.is_empty());
        }
    }
}

#[tokio::test]
async fn soa_and_ns_at_the_apex() {
    let pod = pod().await;
    for t in Transport::BOTH {
        let r = t
            .exchange(pod.addr, &query("gtm.example.com.", RecordType::SOA))
            .await;
        assert!(r.metadata.authoritative);
        assert_eq!(r.answers.len(), 1);
        assert!(
            data(&r.answers)[0].starts_with(
                "ns1.gtm.example.com. hostmaster.gtm.example.com. 3 3600 600 86400 30"
            )
        );
        let r = t
            .exchange(pod.addr, &query("gtm.example.com.", RecordType::NS))
            .await;
        assert_eq!(data(&r.answers), vec!["ns1.gtm.example.com."]);
    }
}

#[tokio::test]
async fn any_gets_a_minimal_answer() {
    let pod = pod().await;
    for t in Transport::BOTH {
        let r = t.exchange(pod.addr, &query(WWW, RecordType::ANY)).await;
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(
            r.answers.iter().all(|a| a.record_type() == RecordType::A),
            "{t:?}"
        );
        let r = t
            .exchange(pod.addr, &query("gtm.example.com.", RecordType::ANY))
            .await;
        assert_eq!(r.answers.len(), 1);
        assert_eq!(r.answers[0].record_type(), RecordType::SOA);
    }
}

#[tokio::test]
async fn domain_pools_answer_one_cname_and_no_addresses() {
    let pod = pod().await;
    for t in Transport::BOTH {
        for (name, qtype) in [
            ("alias.gtm.example.com.", RecordType::A),
            ("alias.gtm.example.com.", RecordType::CNAME),
            ("cn.gtm.example.com.", RecordType::CNAME),
            ("cn.gtm.example.com.", RecordType::A),
            ("cn.gtm.example.com.", RecordType::AAAA),
        ] {
            let r = t.exchange(pod.addr, &query(name, qtype)).await;
            assert_eq!(r.answers.len(), 1, "{name} {qtype} {t:?}");
            assert_eq!(r.answers[0].record_type(), RecordType::CNAME);
            assert_eq!(data(&r.answers), vec!["edge.cdn.example.net."]);
        }
    }
}

#[tokio::test]
async fn large_answers_truncate_over_udp_and_come_whole_over_tcp() {
    let pod = pod().await;
    let name = "big.gtm.example.com.";
    let r = udp(pod.addr, &query(name, RecordType::A)).await;
    assert!(r.metadata.truncation, "60 A records do not fit 512 bytes");
    let r = udp(pod.addr, &query_edns(name, RecordType::A, 4096)).await;
    assert!(!r.metadata.truncation, "EDNS raises the limit");
    assert_eq!(r.answers.len(), 60);
    assert!(r.edns.is_some(), "EDNS answered with EDNS");
    let r = tcp(pod.addr, &query(name, RecordType::A)).await;
    assert!(!r.metadata.truncation);
    assert_eq!(r.answers.len(), 60);
}

#[tokio::test]
async fn malformed_and_unsupported_requests_get_formerr_notimp_badvers_refused() {
    let pod = pod().await;
    for t in Transport::BOTH {
        let mut two = query(WWW, RecordType::A);
        two.add_query(hickory_server::proto::op::Query::query(
            "x.gtm.example.com.".parse().unwrap(),
            RecordType::A,
        ));
        let r = t.exchange(pod.addr, &two).await;
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr, "{t:?}");

        let mut none = query(WWW, RecordType::A);
        none.queries.clear();
        let r = t.exchange(pod.addr, &none).await;
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr, "{t:?}");

        let mut notify = query(WWW, RecordType::SOA);
        notify.metadata.op_code = OpCode::Notify;
        let r = t.exchange(pod.addr, &notify).await;
        assert_eq!(r.metadata.response_code, ResponseCode::NotImp, "{t:?}");

        let mut v1 = query_edns(WWW, RecordType::A, 1232);
        v1.edns.as_mut().unwrap().set_version(1);
        let r = t.exchange(pod.addr, &v1).await;
        // BADVERS is 16 (4 bits in the header, the rest in the OPT record); hickory decodes
        // 16 under its other name, BADSIG.
        assert_eq!(u16::from(r.metadata.response_code), 16, "{t:?}");
        assert!(r.edns.is_some());

        // ECS address bits beyond the source prefix (RFC 7871 section 6).
        let bad_ecs = query_ecs(WWW, RecordType::A, "10.1.2.0", 20);
        let r = t.exchange(pod.addr, &bad_ecs).await;
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr, "{t:?}");

        let mut chaos = query("version.bind.", RecordType::TXT);
        let q = chaos.queries[0].clone();
        chaos.queries[0] = {
            let mut q = q;
            q.set_query_class(DNSClass::CH);
            q
        };
        let r = t.exchange(pod.addr, &chaos).await;
        assert_eq!(r.metadata.response_code, ResponseCode::Refused, "{t:?}");
    }
}

#[tokio::test]
async fn client_subnet_selects_sources_and_is_echoed_with_the_scope_used() {
    let pod = pod().await;
    let name = "near.gtm.example.com.";
    for t in Transport::BOTH {
        // ECS inside 10.1/16: 16 bits decided.
        let r = t
            .exchange(pod.addr, &query_ecs(name, RecordType::A, "10.1.2.0", 24))
            .await;
        assert_eq!(data(&r.answers), vec!["203.0.113.1"], "{t:?}");
        let ecs = response_ecs(&r).expect("ECS echoed");
        assert_eq!(
            (
                ecs.addr().to_string().as_str(),
                ecs.source_prefix(),
                ecs.scope_prefix()
            ),
            ("10.1.2.0", 24, 16)
        );
        // Elsewhere: the default member; the scope still says which bits ruled the others out.
        let r = t
            .exchange(pod.addr, &query_ecs(name, RecordType::A, "192.0.2.0", 24))
            .await;
        assert_eq!(data(&r.answers), vec!["203.0.113.3"], "{t:?}");
        assert!(response_ecs(&r).unwrap().scope_prefix() > 0);
        // Source prefix 0: the client asks not to be located; defaults, scope 0.
        let r = t
            .exchange(pod.addr, &query_ecs(name, RecordType::A, "0.0.0.0", 0))
            .await;
        assert_eq!(data(&r.answers), vec!["203.0.113.3"], "{t:?}");
        let ecs = response_ecs(&r).unwrap();
        assert_eq!((ecs.source_prefix(), ecs.scope_prefix()), (0, 0));
        // No ECS: the resolver's address (127.0.0.1) decides, and no ECS comes back.
        let r = t
            .exchange(pod.addr, &query_edns(name, RecordType::A, 1232))
            .await;
        assert_eq!(data(&r.answers), vec!["203.0.113.2"], "{t:?}");
        assert!(response_ecs(&r).is_none());
        // A policy that ignores the client echoes scope 0.
        let r = t
            .exchange(pod.addr, &query_ecs(WWW, RecordType::A, "10.1.2.0", 24))
            .await;
        assert_eq!(response_ecs(&r).unwrap().scope_prefix(), 0);
    }
}

#[tokio::test]
async fn before_the_first_config_queries_get_servfail() {
    let mut pod = TestPod::empty(None).await;
    for t in Transport::BOTH {
        let r = t.exchange(pod.addr, &query(WWW, RecordType::A)).await;
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail, "{t:?}");
    }
    assert!(!pod.shared.is_ready());
    pod.load(&sample(), &health_down(1, &[]));
    assert!(pod.shared.is_ready());
    let r = udp(pod.addr, &query(WWW, RecordType::A)).await;
    assert_eq!(r.answers.len(), 2);
}

#[tokio::test]
async fn queries_are_counted_by_type_rcode_and_access_domain() {
    let pod = pod().await;
    udp(pod.addr, &query(WWW, RecordType::A)).await;
    udp(pod.addr, &query("nope.gtm.example.com.", RecordType::TXT)).await;
    udp(pod.addr, &query("example.org.", RecordType::A)).await;
    let text = pod.shared.metrics.encode();
    for line in [
        r#"gtm_dnspod_queries_total{qtype="A",rcode="NOERROR",domain="www.gtm.example.com"} 1"#,
        r#"gtm_dnspod_queries_total{qtype="other",rcode="NXDOMAIN",domain="-"} 1"#,
        r#"gtm_dnspod_queries_total{qtype="A",rcode="REFUSED",domain="-"} 1"#,
        "gtm_dnspod_answer_duration_seconds_count 3",
        "gtm_dnspod_config_generation 3",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}

/// Polls until the UDP port of `addr` can be bound again: every UDP thread has left its blocked
/// read and closed the socket. Fails after [`REPLY_TIMEOUT`].
async fn until_udp_port_free(addr: std::net::SocketAddr) {
    let deadline = std::time::Instant::now() + REPLY_TIMEOUT;
    while let Err(error) = std::net::UdpSocket::bind(addr) {
        assert!(
            std::time::Instant::now() < deadline,
            "UDP {addr} still bound after shutdown: {error}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// The UDP threads sleep in their reads with no timer; shutdown wakes them, and they let the
/// socket go.
#[tokio::test]
async fn shutdown_wakes_the_udp_threads_and_frees_the_port() {
    let pod = pod().await;
    let addr = pod.addr;
    let r = udp(addr, &query(WWW, RecordType::A)).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    drop(pod);
    until_udp_port_free(addr).await;
}

/// A server whose runtime goes away without a shutdown stops answering UDP too, rather than
/// keeping threads that nothing can stop.
#[tokio::test]
async fn dropping_the_runtime_stops_the_udp_threads() {
    let (addr, runtime) = std::thread::spawn(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let shared = gtm_dnspod::state::Shared::new();
        let handler = gtm_dnspod::handler::GtmHandler::new(shared, None);
        let dns = runtime
            .block_on(gtm_dnspod::server::DnsServer::bind(
                &["127.0.0.1:0".parse().unwrap()],
                handler,
            ))
            .expect("bind");
        (dns.addrs[0], (runtime, dns))
    })
    .join()
    .unwrap();
    assert!(
        std::net::UdpSocket::bind(addr).is_err(),
        "served while the runtime lives"
    );
    std::thread::spawn(move || drop(runtime)).join().unwrap();
    until_udp_port_free(addr).await;
}
