//! Plain UDP queries (no EDNS) take the handler's fast path, which encodes responses itself;
//! TCP takes hickory's full path. Both must give the same response to every query.

mod support;

use std::str::FromStr;

use hickory_server::proto::op::{Message, Query};
use hickory_server::proto::rr::{Name, RecordType};
use support::fixtures::*;
use support::*;

/// The parts of a response both paths must agree on.
fn summary(m: &Message) -> String {
    let h = &m.metadata;
    format!(
        "{:?} aa={} tc={} rd={} ra={} q={:?} an={:?} ns={:?} ar={:?}",
        h.response_code,
        h.authoritative,
        h.truncation,
        h.recursion_desired,
        h.recursion_available,
        m.queries,
        m.answers,
        m.authorities,
        m.additionals,
    )
}

#[tokio::test]
async fn plain_udp_answers_match_the_full_path() {
    let pod = TestPod::serving(&www_only(1, "192.0.2.1"), &health_down(1, &[])).await;
    let cases = [
        ("www.gtm.example.com.", RecordType::A),
        ("WwW.GtM.eXaMpLe.CoM.", RecordType::A),
        ("www.gtm.example.com.", RecordType::AAAA),
        ("www.gtm.example.com.", RecordType::MX),
        ("www.gtm.example.com.", RecordType::CNAME),
        ("www.gtm.example.com.", RecordType::ANY),
        ("nx.gtm.example.com.", RecordType::A),
        ("a.b.NX.gtm.example.com.", RecordType::AAAA),
        ("GTM.example.com.", RecordType::TXT),
        ("gtm.example.com.", RecordType::SOA),
        ("gtm.example.com.", RecordType::NS),
        ("gtm.example.com.", RecordType::A),
        ("example.org.", RecordType::A),
    ];
    for (name, qtype) in cases {
        for recursion_desired in [false, true] {
            let mut q = query(name, qtype);
            q.metadata.recursion_desired = recursion_desired;
            let fast = udp(pod.addr, &q).await;
            let full = tcp(pod.addr, &q).await;
            assert_eq!(
                summary(&fast),
                summary(&full),
                "{name} {qtype:?} rd={recursion_desired}"
            );
        }
    }
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
    assert_eq!(summary(&r), summary(&tcp(pod.addr, &chaos).await));

    let mut two = query("www.gtm.example.com.", RecordType::A);
    two.add_query(Query::query(
        Name::from_str("nx.gtm.example.com.").unwrap(),
        RecordType::A,
    ));
    let r = udp(pod.addr, &two).await;
    assert_eq!(summary(&r), summary(&tcp(pod.addr, &two).await));

    // An EDNS query for the same name takes the full path and gets the same answer.
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
        let full = tcp(pod.addr, &q).await;
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
