//! `/healthz`, `/readyz` and `/metrics` over a real socket.

mod support;

use std::time::{Duration, Instant};

use gtm_dnspod::readiness::StalePolicy;
use gtm_dnspod::state::Shared;
use support::fixtures::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// GET `path`; returns the status code and the body.
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1.to_string();
    (status, body)
}

#[tokio::test]
async fn readiness_follows_the_first_config_and_metrics_are_exported() {
    let shared = Shared::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let server = tokio::spawn(gtm_dnspod::http::serve(
        listener,
        shared.clone(),
        StalePolicy::default(),
        stop.clone(),
    ));

    assert_eq!(get(http_addr, "/healthz").await.0, 200);
    assert_eq!(get(http_addr, "/readyz").await.0, 503);

    let mut loader =
        gtm_dnspod::state::Loader::new(shared.clone(), gtm_dnspod::zone::ZoneSettings::default());
    let c = www_only(4, "192.0.2.1");
    loader
        .offer(gtm_crds::parts::Payload::Config, c.to_json())
        .unwrap();
    assert_eq!(get(http_addr, "/readyz").await.0, 200);
    let (status, body) = get(http_addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("gtm_dnspod_config_generation 4"), "{body}");
    assert!(body.contains("# EOF"));

    stop.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_stale_source_fails_readiness_only_under_a_limit() {
    let shared = Shared::new();
    let mut loader =
        gtm_dnspod::state::Loader::new(shared.clone(), gtm_dnspod::zone::ZoneSettings::default());
    loader
        .offer(
            gtm_crds::parts::Payload::Config,
            www_only(1, "192.0.2.1").to_json(),
        )
        .unwrap();
    let stop = CancellationToken::new();
    let mut servers = Vec::new();
    let mut addrs = Vec::new();
    for unready_after in [None, Some(Duration::from_secs(60))] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(listener.local_addr().unwrap());
        servers.push(tokio::spawn(gtm_dnspod::http::serve(
            listener,
            shared.clone(),
            StalePolicy { unready_after },
            stop.clone(),
        )));
    }
    let [stays, limited] = [addrs[0], addrs[1]];
    shared.set_source_stale_since(Some(Instant::now() - Duration::from_secs(30)));
    assert_eq!(get(stays, "/readyz").await.0, 200);
    assert_eq!(
        get(limited, "/readyz").await.0,
        200,
        "30 s is within the limit"
    );
    shared.set_source_stale_since(Some(Instant::now() - Duration::from_secs(61)));
    assert_eq!(get(stays, "/readyz").await.0, 200);
    let (code, body) = get(limited, "/readyz").await;
    assert_eq!(code, 503);
    assert!(
        body.contains("config source unreachable for 61 s"),
        "{body}"
    );
    assert!(
        get(limited, "/metrics")
            .await
            .1
            .contains("gtm_dnspod_config_source_stale 1")
    );
    shared.set_source_stale_since(None);
    assert_eq!(get(limited, "/readyz").await.0, 200);
    assert!(
        get(limited, "/metrics")
            .await
            .1
            .contains("gtm_dnspod_config_source_stale 0")
    );
    stop.cancel();
    for s in servers {
        s.await.unwrap().unwrap();
    }
}
