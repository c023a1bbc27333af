//! Random and truncated packets neither crash the server nor stop it answering.

mod support;

use std::time::Duration;

use hickory_server::proto::op::{Message, ResponseCode};
use hickory_server::proto::rr::RecordType;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use support::fixtures::*;
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const WWW: &str = "www.gtm.example.com.";

async fn pod() -> TestPod {
    let c = www_only(1, "192.0.2.1");
    TestPod::serving(&c, &health_down(1, &[])).await
}

async fn still_answers(pod: &TestPod) {
    for t in Transport::BOTH {
        let r = t.exchange(pod.addr, &query(WWW, RecordType::A)).await;
        assert_eq!(data(&r.answers), vec!["192.0.2.1"], "{t:?}");
    }
}

/// Any reply to garbage must itself be a well-formed message (FORMERR or similar), never a
/// crash; many get no reply at all.
fn check_reply(reply: Option<Vec<u8>>) {
    if let Some(bytes) = reply {
        let m = Message::from_vec(&bytes).expect("replies are well-formed");
        assert_ne!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
    }
}

#[tokio::test]
async fn random_udp_packets_are_survived() {
    let pod = pod().await;
    let mut rng = StdRng::seed_from_u64(7);
    for i in 0..500 {
        let len = rng.random_range(0..600);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if i % 2 == 0 && bytes.len() >= 12 {
            // Look like a query header, so parsing gets further.
            bytes[2] = 0;
            bytes[3] = 0;
            bytes[4] = 0;
            bytes[5] = 1;
        }
        check_reply(udp_raw(pod.addr, &bytes, Duration::from_millis(20)).await);
    }
    still_answers(&pod).await;
}

#[tokio::test]
async fn every_truncation_of_a_query_is_survived() {
    let pod = pod().await;
    let full = query_ecs(WWW, RecordType::A, "10.1.0.0", 16)
        .to_vec()
        .unwrap();
    for cut in 0..full.len() {
        check_reply(udp_raw(pod.addr, &full[..cut], Duration::from_millis(20)).await);
        if cut >= 12 {
            // Framed as a whole message over TCP: the server answers FORMERR or closes.
            if let Ok(bytes) = tcp_raw(pod.addr, &full[..cut]).await {
                check_reply(Some(bytes));
            }
        }
    }
    still_answers(&pod).await;
}

#[tokio::test]
async fn broken_tcp_streams_are_survived() {
    let pod = pod().await;
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..50 {
        let mut stream = TcpStream::connect(pod.addr).await.unwrap();
        let len = rng.random_range(0..300);
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let _ = stream.write_all(&bytes).await;
        drop(stream);
    }
    // A length prefix promising more than is ever sent, then a hang-up.
    let mut stream = TcpStream::connect(pod.addr).await.unwrap();
    stream.write_all(&[0xff, 0xff, 1, 2, 3]).await.unwrap();
    drop(stream);
    still_answers(&pod).await;
}
