//! The DNS pod is no amplifier: UDP responses are capped whatever a query advertises, and
//! responses to one source prefix are rate limited (dropped, or slipped as empty truncated
//! answers), while TCP is neither capped below 65 535 bytes nor limited.

mod support;

use std::time::{Duration, Instant};

use gtm_crds::common::LbPolicy;
use gtm_crds::config::{DomainConfig, GtmConfig};
use gtm_crds::domain::RecordType as Rt;
use gtm_dnspod::rrl::RrlConfig;
use gtm_dnspod::udp_limits::UdpLimits;
use hickory_server::proto::op::{Message, ResponseCode};
use hickory_server::proto::rr::RecordType;
use support::fixtures::*;
use support::*;
use tokio::net::UdpSocket;

const BIG: &str = "big.gtm.example.com.";
const WWW: &str = "www.gtm.example.com.";

/// `big` answers 64 AAAA records (1 829 bytes), `www` one A record.
fn big_config() -> GtmConfig {
    let v6 = v6_addresses(64);
    config(
        1,
        vec![
            DomainConfig {
                max_answers: Some(64),
                ..domain("big", Rt::AAAA, LbPolicy::RoundRobin, vec![member("ns/v6")])
            },
            domain("www", Rt::A, LbPolicy::RoundRobin, vec![member("ns/v4")]),
        ],
        vec![
            pool("ns/v6", LbPolicy::RoundRobin, v6),
            pool("ns/v4", LbPolicy::RoundRobin, vec![addr("192.0.2.1")]),
        ],
    )
}

#[tokio::test]
async fn udp_responses_are_capped_whatever_the_query_advertises() {
    let pod = TestPod::serving(&big_config(), &health_down(1, &[])).await;
    for advertised in [1232, 4096, 65_000, 65_535] {
        let q = query_edns(BIG, RecordType::AAAA, advertised);
        let reply = udp_raw(pod.addr, &q.to_vec().unwrap(), REPLY_TIMEOUT)
            .await
            .unwrap_or_else(|| panic!("a reply to EDNS {advertised}"));
        assert!(reply.len() <= 1232, "{advertised}: {} bytes", reply.len());
        let m = Message::from_vec(&reply).unwrap();
        assert!(m.metadata.truncation, "{advertised}");
        assert!(
            !m.answers.is_empty() && m.answers.len() < 64,
            "{advertised}"
        );
        let edns = m.edns.expect("OPT kept");
        assert_eq!(edns.max_payload(), 1232, "the server's own payload size");
    }
    // Without EDNS: 512 bytes, as always.
    let reply = udp_raw(
        pod.addr,
        &query(BIG, RecordType::AAAA).to_vec().unwrap(),
        REPLY_TIMEOUT,
    )
    .await
    .unwrap();
    assert!(reply.len() <= 512);
    // TCP carries the whole answer.
    let r = tcp(pod.addr, &query_edns(BIG, RecordType::AAAA, 1232)).await;
    assert_eq!(r.answers.len(), 64);
    assert!(!r.metadata.truncation);
}

/// A counter's value in the metrics exposition (0 when absent).
fn counter(pod: &TestPod, series: &str) -> u64 {
    let text = pod.shared.metrics.encode();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

const WWW_ANSWERED: &str =
    r#"gtm_dnspod_queries_total{qtype="A",rcode="NOERROR",domain="www.gtm.example.com"}"#;
const SLIPPED: &str = "gtm_dnspod_rrl_slipped_total";
const DROPPED: &str = "gtm_dnspod_rrl_dropped_total";

#[tokio::test]
async fn responses_over_the_rate_of_a_prefix_are_dropped_or_slip_truncated() {
    let limits = UdpLimits {
        rrl: Some(RrlConfig {
            rate: 1,
            burst: 5,
            slip: 2,
            ..RrlConfig::default()
        }),
        ..UdpLimits::default()
    };
    let mut pod = TestPod::limited(None, limits).await;
    pod.load(&big_config(), &health_down(1, &[]));
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let started = Instant::now();
    for id in 0..30 {
        let mut q = query(WWW, RecordType::A);
        q.metadata.id = id;
        let bytes = q.to_vec().unwrap();
        socket.send_to(&bytes, pod.addr).await.unwrap();
    }
    // Every query is either answered or limited.
    let deadline = Instant::now() + REPLY_TIMEOUT;
    let (answered, slipped, dropped) = loop {
        let counts = (
            counter(&pod, WWW_ANSWERED),
            counter(&pod, SLIPPED),
            counter(&pod, DROPPED),
        );
        if counts.0 + counts.1 + counts.2 == 30 || Instant::now() > deadline {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(answered + slipped + dropped, 30);
    // The burst, plus one per second that passed (a slow machine).
    let allowed = 5 + started.elapsed().as_secs();
    assert!((5..=allowed).contains(&answered), "{answered} answered");
    assert_eq!(
        slipped,
        (30 - answered) / 2,
        "every second limited one slips"
    );

    let mut buf = vec![0u8; 65_535];
    let mut truncated = 0;
    for _ in 0..answered + slipped {
        let len = tokio::time::timeout(REPLY_TIMEOUT, socket.recv(&mut buf))
            .await
            .expect("a reply")
            .unwrap();
        let m = Message::from_vec(&buf[..len]).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(m.queries.len(), 1, "the question is echoed");
        if m.answers.is_empty() {
            assert!(m.metadata.truncation, "a slipped answer is truncated");
            truncated += 1;
        } else {
            assert_eq!(data(&m.answers), vec!["192.0.2.1"]);
        }
    }
    assert_eq!(truncated, slipped);

    // Another /24 has its own budget.
    let other = UdpSocket::bind("127.0.1.1:0").await.unwrap();
    let bytes = query(WWW, RecordType::A).to_vec().unwrap();
    other.send_to(&bytes, pod.addr).await.unwrap();
    let len = tokio::time::timeout(REPLY_TIMEOUT, other.recv(&mut buf))
        .await
        .expect("a reply to another prefix")
        .unwrap();
    let m = Message::from_vec(&buf[..len]).unwrap();
    assert_eq!(data(&m.answers), vec!["192.0.2.1"]);
    // TCP is not limited.
    for _ in 0..10 {
        let r = tcp(pod.addr, &query(WWW, RecordType::A)).await;
        assert_eq!(data(&r.answers), vec!["192.0.2.1"]);
    }
}
