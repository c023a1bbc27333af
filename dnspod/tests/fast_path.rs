//! Queries of the common shapes (plain, EDNS, EDNS with DO, ECS) take the handler's fast path
//! over UDP and TCP, which decodes and encodes them on the wire; everything else takes hickory's
//! full path. Both must give the same response to every query: each test asks the fast path
//! (directly, and over real sockets) and the full path (`server::full_path`) the same query.

mod support;

use std::net::SocketAddr;
use std::str::FromStr;

use gtm_crds::common::LbPolicy;
use gtm_crds::config::GtmConfig;
use gtm_crds::domain::RecordType as Rt;
use gtm_dnspod::server::full_path;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{Message, Query, ResponseCode};
use hickory_server::proto::rr::rdata::opt::EdnsOption;
use hickory_server::proto::rr::{Name, RecordType};
use support::fixtures::*;
use support::*;

/// The parts of a response both paths must agree on (the OPT record included).
fn summary(m: &Message) -> String {
    let h = &m.metadata;
    format!(
        "{:?} aa={} tc={} rd={} ra={} cd={} q={:?} an={:?} ns={:?} ar={:?} edns={:?}",
        h.response_code,
        h.authoritative,
        h.truncation,
        h.recursion_desired,
        h.recursion_available,
        h.checking_disabled,
        m.queries,
        m.answers,
        m.authorities,
        m.additionals,
        m.edns,
    )
}

/// The client address of the direct calls.
fn client() -> SocketAddr {
    "127.0.0.1:53000".parse().unwrap()
}

/// The full path's response to `m` over `protocol`.
async fn full(pod: &TestPod, m: &Message, protocol: Protocol) -> Message {
    let bytes = full_path(&pod.handler, &m.to_vec().unwrap(), client(), protocol)
        .await
        .expect("a response");
    Message::from_vec(&bytes).expect("a decodable response")
}

/// The fast path's response to `m` over `protocol`, `None` when it leaves `m` to the full path.
fn fast_raw(pod: &TestPod, m: &Message, protocol: Protocol) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    pod.handler
        .answer_fast(&m.to_vec().unwrap(), client(), protocol, &mut out)
        .then_some(out)
}

/// The fast path's response to `m` over `protocol`, which it must answer.
fn fast(pod: &TestPod, m: &Message, protocol: Protocol) -> Message {
    let bytes = fast_raw(pod, m, protocol).expect("the fast path answers");
    Message::from_vec(&bytes).expect("a decodable response")
}

/// The shapes of query the fast path takes, as resolvers send them, for `name` and `qtype`.
fn mixes(name: &str, qtype: RecordType) -> Vec<(&'static str, Message)> {
    let with_do = {
        let mut m = query_edns(name, qtype, 1232);
        m.edns.as_mut().unwrap().set_dnssec_ok(true);
        m
    };
    let with_cookie = {
        let mut m = query_edns(name, qtype, 4096);
        let cookie = EdnsOption::Unknown(10, vec![1, 2, 3, 4, 5, 6, 7, 8]);
        m.edns.as_mut().unwrap().options_mut().insert(cookie);
        m
    };
    let ecs_with_do = {
        let mut m = query_ecs(name, qtype, "10.1.2.0", 24);
        m.edns.as_mut().unwrap().set_dnssec_ok(true);
        m
    };
    vec![
        ("plain", query(name, qtype)),
        ("EDNS", query_edns(name, qtype, 1232)),
        ("EDNS 512", query_edns(name, qtype, 512)),
        ("EDNS+DO", with_do),
        ("EDNS+cookie", with_cookie),
        ("ECS /24", query_ecs(name, qtype, "10.1.2.0", 24)),
        ("ECS /24 outside", query_ecs(name, qtype, "192.0.2.0", 24)),
        ("ECS /0", query_ecs(name, qtype, "0.0.0.0", 0)),
        ("ECS v6 /56", query_ecs(name, qtype, "2001:db8:1::", 56)),
        ("ECS mapped", query_ecs(name, qtype, "::ffff:10.1.2.0", 120)),
        ("ECS+DO", ecs_with_do),
    ]
}

/// One-address pools (so both paths answer alike), a CNAME, and SourceNearest by CIDR (the
/// answer depends on the ECS subnet, so the scope is echoed).
fn sample() -> GtmConfig {
    let mut c = with_zone_data(1);
    let domains = config(
        1,
        vec![
            domain("www", Rt::A, LbPolicy::RoundRobin, vec![member("ns/web")]),
            domain("v6", Rt::AAAA, LbPolicy::RoundRobin, vec![member("ns/v6")]),
            domain(
                "cn",
                Rt::CNAME,
                LbPolicy::RoundRobin,
                vec![member("ns/cdn")],
            ),
            domain("near", Rt::A, LbPolicy::RoundRobin, vec![member("ns/near")]),
        ],
        vec![
            pool("ns/web", LbPolicy::RoundRobin, vec![addr("192.0.2.1")]),
            pool("ns/v6", LbPolicy::RoundRobin, vec![addr("2001:db8::1")]),
            pool(
                "ns/cdn",
                LbPolicy::Sequential,
                vec![addr("edge.cdn.example.net")],
            ),
            pool(
                "ns/near",
                LbPolicy::SourceNearest,
                vec![
                    cidr_sourced("203.0.113.1", &["10.1.0.0/16"], false),
                    cidr_sourced("203.0.113.3", &[], true),
                ],
            ),
        ],
    );
    c.domains = domains.domains;
    c.pools = domains.pools;
    c.check_consistency().expect("consistent");
    c
}

#[tokio::test]
async fn every_mix_is_answered_on_the_fast_path_as_the_full_path_answers_it() {
    let pod = TestPod::serving(&sample(), &health_down(1, &[])).await;
    let names = [
        ("www.gtm.example.com.", RecordType::A),
        ("WwW.GtM.eXaMpLe.CoM.", RecordType::A),
        ("www.gtm.example.com.", RecordType::AAAA),
        ("www.gtm.example.com.", RecordType::MX),
        ("www.gtm.example.com.", RecordType::CNAME),
        ("www.gtm.example.com.", RecordType::ANY),
        ("v6.gtm.example.com.", RecordType::AAAA),
        ("cn.gtm.example.com.", RecordType::A),
        ("near.gtm.example.com.", RecordType::A),
        ("nx.gtm.example.com.", RecordType::A),
        ("a.b.NX.gtm.example.com.", RecordType::AAAA),
        ("gtm.example.com.", RecordType::NS),
        ("gtm.example.com.", RecordType::SOA),
        ("gtm.example.com.", RecordType::MX),
        ("gtm.example.com.", RecordType::ANY),
        ("GTM.example.com.", RecordType::TXT),
        ("gtm.example.com.", RecordType::A),
        ("ns1.gtm.example.com.", RecordType::A),
        ("_sip._udp.gtm.example.com.", RecordType::SRV),
        ("example.org.", RecordType::A),
    ];
    for (name, qtype) in names {
        for (mix, mut q) in mixes(name, qtype) {
            for recursion_desired in [false, true] {
                q.metadata.recursion_desired = recursion_desired;
                q.metadata.checking_disabled = recursion_desired;
                let what = format!("{name} {qtype} {mix} rd={recursion_desired}");
                for protocol in [Protocol::Udp, Protocol::Tcp] {
                    let expected = summary(&full(&pod, &q, protocol).await);
                    assert_eq!(
                        summary(&fast(&pod, &q, protocol)),
                        expected,
                        "{what} {protocol}"
                    );
                }
                let expected = summary(&full(&pod, &q, Protocol::Udp).await);
                assert_eq!(
                    summary(&udp(pod.addr, &q).await),
                    expected,
                    "{what} over UDP"
                );
                let expected = summary(&full(&pod, &q, Protocol::Tcp).await);
                assert_eq!(
                    summary(&tcp(pod.addr, &q).await),
                    expected,
                    "{what} over TCP"
                );
            }
        }
    }
}

#[tokio::test]
async fn edns_answers_are_compressed_and_echo_do_and_the_ecs_scope() {
    let pod = TestPod::serving(&sample(), &health_down(1, &[])).await;
    let www = "www.gtm.example.com.";
    // Header 12, question 25, the A record behind a pointer 16, the OPT record 11 (as gdnsd).
    let edns = fast_raw(&pod, &query_edns(www, RecordType::A, 1232), Protocol::Udp).unwrap();
    assert_eq!(edns.len(), 64);
    let plain = fast_raw(&pod, &query(www, RecordType::A), Protocol::Udp).unwrap();
    assert_eq!(plain.len(), 53);

    let (_, with_do) = mixes(www, RecordType::A).swap_remove(3);
    let r = fast(&pod, &with_do, Protocol::Udp);
    let opt = r.edns.expect("an OPT record");
    assert!(opt.flags().dnssec_ok, "DO is copied (RFC 3225)");
    assert_eq!(opt.max_payload(), 1232, "the server's payload size");
    let r = fast(&pod, &query_edns(www, RecordType::A, 1232), Protocol::Udp);
    assert!(!r.edns.unwrap().flags().dnssec_ok);

    let near = "near.gtm.example.com.";
    let r = fast(
        &pod,
        &query_ecs(near, RecordType::A, "10.1.2.0", 24),
        Protocol::Udp,
    );
    assert_eq!(data(&r.answers), vec!["203.0.113.1"]);
    let ecs = response_ecs(&r).expect("ECS echoed");
    assert_eq!(
        (
            ecs.addr().to_string(),
            ecs.source_prefix(),
            ecs.scope_prefix()
        ),
        ("10.1.2.0".to_string(), 24, 16)
    );
    let r = fast(
        &pod,
        &query_ecs(near, RecordType::A, "::ffff:10.1.2.0", 120),
        Protocol::Udp,
    );
    assert_eq!(response_ecs(&r).unwrap().scope_prefix(), 112);
}

#[tokio::test]
async fn queries_the_fast_path_does_not_take_get_the_full_paths_answer() {
    let pod = TestPod::serving(&sample(), &health_down(1, &[])).await;
    let www = "www.gtm.example.com.";
    let mut badvers = query_edns(www, RecordType::A, 1232);
    badvers.edns.as_mut().unwrap().set_version(1);
    let mut nsid = query_edns(www, RecordType::A, 1232);
    let option = EdnsOption::Unknown(3, Vec::new());
    nsid.edns.as_mut().unwrap().options_mut().insert(option);
    let mut two_questions = query(www, RecordType::A);
    two_questions.add_query(Query::query(
        Name::from_str("nx.gtm.example.com.").unwrap(),
        RecordType::A,
    ));
    let cases = [
        ("EDNS version 1", badvers, Some(ResponseCode::BADVERS)),
        (
            "ECS bits beyond the prefix",
            query_ecs(www, RecordType::A, "10.1.2.0", 20),
            Some(ResponseCode::FormErr),
        ),
        (
            "an option it does not know",
            nsid,
            Some(ResponseCode::NoError),
        ),
        ("two questions", two_questions, None),
    ];
    for (what, q, rcode) in cases {
        for protocol in [Protocol::Udp, Protocol::Tcp] {
            assert!(fast_raw(&pod, &q, protocol).is_none(), "{what} {protocol}");
            let r = full(&pod, &q, protocol).await;
            if let Some(rcode) = rcode {
                // Compared as numbers: hickory decodes 16 as BADSIG, the same code as BADVERS.
                assert_eq!(
                    u16::from(r.metadata.response_code),
                    u16::from(rcode),
                    "{what}"
                );
            }
        }
        for transport in Transport::BOTH {
            let r = transport.exchange(pod.addr, &q).await;
            assert_eq!(
                summary(&r),
                summary(&full(&pod, &q, Protocol::Udp).await),
                "{what} {transport:?}"
            );
        }
    }
}

#[tokio::test]
async fn pipelined_tcp_queries_are_all_answered_in_order() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pod = TestPod::serving(&sample(), &health_down(1, &[])).await;
    let mut stream = tokio::net::TcpStream::connect(pod.addr).await.unwrap();
    // 50 queries in one write, EDNS and plain, each its own id; then half of one more.
    let mut burst = Vec::new();
    for id in 0..50u16 {
        let mut q = if id % 2 == 0 {
            query("www.gtm.example.com.", RecordType::A)
        } else {
            query_ecs("near.gtm.example.com.", RecordType::A, "10.1.2.0", 24)
        };
        q.metadata.id = id;
        let bytes = q.to_vec().unwrap();
        burst.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        burst.extend_from_slice(&bytes);
    }
    let mut last = query("v6.gtm.example.com.", RecordType::AAAA);
    last.metadata.id = 50;
    let last = last.to_vec().unwrap();
    burst.extend_from_slice(&(last.len() as u16).to_be_bytes());
    burst.extend_from_slice(&last[..5]);
    stream.write_all(&burst).await.unwrap();
    let read = async |stream: &mut tokio::net::TcpStream| {
        let len = stream.read_u16().await.unwrap();
        let mut buf = vec![0; usize::from(len)];
        stream.read_exact(&mut buf).await.unwrap();
        Message::from_vec(&buf).unwrap()
    };
    // The 50 whole queries are answered while the 51st is still incomplete.
    for id in 0..50u16 {
        let r = tokio::time::timeout(REPLY_TIMEOUT, read(&mut stream))
            .await
            .expect("answered");
        assert_eq!(r.metadata.id, id);
        let expected = if id % 2 == 0 {
            "192.0.2.1"
        } else {
            "203.0.113.1"
        };
        assert_eq!(data(&r.answers), vec![expected]);
    }
    stream.write_all(&last[5..]).await.unwrap();
    let r = tokio::time::timeout(REPLY_TIMEOUT, read(&mut stream))
        .await
        .expect("answered");
    assert_eq!(
        (r.metadata.id, data(&r.answers)),
        (50, vec!["2001:db8::1".to_string()])
    );
}

#[tokio::test]
async fn the_question_is_echoed_as_asked_case_included() {
    let pod = TestPod::serving(&www_only(1, "192.0.2.1"), &health_down(1, &[])).await;
    // Resolvers randomise the case of names (0x20) and check it in the response.
    let mut packet = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["WwW", "GtM", "eXaMpLe", "CoM"] {
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
    }
    packet.extend_from_slice(&[0, 0, 1, 0, 1]);
    let reply = udp_raw(pod.addr, &packet, REPLY_TIMEOUT)
        .await
        .expect("a reply");
    assert_eq!(&reply[..2], &[0x12, 0x34]);
    assert_eq!(&reply[12..packet.len()], &packet[12..]);
    let m = Message::from_vec(&reply).unwrap();
    assert_eq!(data(&m.answers), vec!["192.0.2.1"]);
    assert!(m.metadata.authoritative && m.metadata.recursion_desired);
}

#[tokio::test]
async fn plain_udp_queries_the_fast_path_does_not_take_still_get_answers() {
    let pod = TestPod::serving(&www_only(1, "192.0.2.1"), &health_down(1, &[])).await;
    // Class CH, two questions, a response: not plain; answered (or dropped) as before.
    let mut chaos = query("www.gtm.example.com.", RecordType::A);
    chaos.queries[0] = Query::query(
        Name::from_str("www.gtm.example.com.").unwrap(),
        RecordType::A,
    )
    .set_query_class(hickory_server::proto::rr::DNSClass::CH)
    .clone();
    let r = udp(pod.addr, &chaos).await;
    assert_eq!(
        summary(&r),
        summary(&full(&pod, &chaos, Protocol::Udp).await)
    );

    let mut two = query("www.gtm.example.com.", RecordType::A);
    two.add_query(Query::query(
        Name::from_str("nx.gtm.example.com.").unwrap(),
        RecordType::A,
    ));
    let r = udp(pod.addr, &two).await;
    assert_eq!(summary(&r), summary(&full(&pod, &two, Protocol::Udp).await));

    // An EDNS query for the same name gets the same answer, with an OPT record.
    let plain = udp(pod.addr, &query("www.gtm.example.com.", RecordType::A)).await;
    let edns = udp(
        pod.addr,
        &query_edns("www.gtm.example.com.", RecordType::A, 1232),
    )
    .await;
    assert_eq!(plain.answers, edns.answers);
    assert!(edns.edns.is_some() && plain.edns.is_none());
}

#[tokio::test]
async fn static_records_and_glue_match_the_full_path() {
    let pod = TestPod::serving(&with_zone_data(1), &health_down(1, &[])).await;
    for (name, qtype) in [
        ("gtm.example.com.", RecordType::NS),
        ("GTM.example.com.", RecordType::SOA),
        ("gtm.example.com.", RecordType::TXT),
        ("gtm.example.com.", RecordType::MX),
        ("gtm.example.com.", RecordType::CAA),
        ("gtm.example.com.", RecordType::ANY),
        ("Ns1.Gtm.Example.Com.", RecordType::A),
        ("ns1.gtm.example.com.", RecordType::AAAA),
        ("ns1.gtm.example.com.", RecordType::MX),
        ("_acme-challenge.gtm.example.com.", RecordType::TXT),
        ("_sip._udp.gtm.example.com.", RecordType::SRV),
        ("_udp.gtm.example.com.", RecordType::SRV),
        ("nope.gtm.example.com.", RecordType::TXT),
    ] {
        let q = query(name, qtype);
        let fast = udp(pod.addr, &q).await;
        let full = full(&pod, &q, Protocol::Tcp).await;
        assert_eq!(summary(&fast), summary(&full), "{name} {qtype}");
        assert!(fast.metadata.authoritative, "{name} {qtype}");
    }
    let ns = udp(pod.addr, &query("gtm.example.com.", RecordType::NS)).await;
    assert_eq!(
        data(&ns.additionals),
        vec!["192.0.2.53", "2001:db8::53"],
        "glue in the additional section"
    );
    let mx = udp(pod.addr, &query("gtm.example.com.", RecordType::MX)).await;
    assert_eq!(data(&mx.additionals), vec!["192.0.2.25"]);
}

#[tokio::test]
async fn a_static_set_too_large_for_udp_is_truncated_and_whole_over_tcp() {
    let mut config = with_zone_data(1);
    config.zone_data[0].records[0].data = gtm_crds::config::RecordData::TXT {
        text: (0..40)
            .map(|i| format!("{i:02}{}", "t".repeat(98)))
            .collect(),
    };
    let pod = TestPod::serving(&config, &health_down(1, &[])).await;
    let q = query("_acme-challenge.gtm.example.com.", RecordType::TXT);
    let cut = udp(pod.addr, &q).await;
    assert!(cut.metadata.truncation);
    assert!(cut.answers.len() < 40 && cut.to_vec().unwrap().len() <= 512);
    let whole = tcp(pod.addr, &q).await;
    assert!(!whole.metadata.truncation);
    assert_eq!(whole.answers.len(), 40);
    let edns = udp(
        pod.addr,
        &query_edns("_acme-challenge.gtm.example.com.", RecordType::TXT, 4096),
    )
    .await;
    assert!(
        edns.metadata.truncation,
        "40 x 100 bytes exceed the 1232-byte cap"
    );
    assert!(edns.to_vec().unwrap().len() <= 1232);
}
