//! `/healthz`, `/readyz` and `/metrics` over a real socket.

mod support;

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
        stop.clone(),
    ));

    assert_eq!(get(http_addr, "/healthz").await.0, 200);
    assert_eq!(get(http_addr, "/readyz").await.0, 503);

    let mut loader =
        gtm_dnspod::state::Loader::new(shared.clone(), gtm_dnspod::zone::ZoneSettings::default());
    let c = www_only(4, "192.0.2.1");
    loader
        .offer(gtm_crds::parts::Payload::Config, &c.to_json())
        .unwrap();
    assert_eq!(get(http_addr, "/readyz").await.0, 200);
    let (status, body) = get(http_addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("gtm_dnspod_config_generation 4"), "{body}");
    assert!(body.contains("# EOF"));

    stop.cancel();
    server.await.unwrap().unwrap();
}
