use gtm_prober::ProbeError;
use serde_json::json;
use tokio::net::TcpListener;

use crate::support::{closed_port, failure, probe_addr, spec};

#[tokio::test]
async fn tcp_passes_when_the_port_accepts() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let outcome = probe_addr(&spec(json!({ "protocol": "TCP" })), addr).await;
    assert_eq!(outcome.result, Ok(()));
}

#[tokio::test]
async fn tcp_fails_when_the_port_refuses() {
    let outcome = probe_addr(&spec(json!({ "protocol": "TCP" })), closed_port().await).await;
    assert_eq!(failure(&outcome), "connection refused");
    assert_eq!(outcome.result.unwrap_err().reason(), "ConnectFailed");
}

#[tokio::test]
async fn tcp_needs_a_port() {
    let outcome = gtm_prober::ProbeContext::new()
        .probe(&spec(json!({ "protocol": "TCP" })), "127.0.0.1", None)
        .await;
    assert!(matches!(outcome.result, Err(ProbeError::InvalidCheck(_))));
}
