use gtm_prober::{ProbeContext, ProbeError};
use serde_json::json;

use crate::support::{Reply, TestServer, failure, probe_addr, spec};

async fn server() -> TestServer {
    TestServer::https(|_| Reply::new(200, "ok")).await
}

fn https(check: serde_json::Value) -> gtm_crds::template::HealthCheckTemplateSpec {
    spec(json!({ "protocol": "HTTPS", "timeoutMillis": 3000, "http": check }))
}

#[tokio::test]
async fn a_self_signed_certificate_is_rejected_by_default() {
    let server = server().await;
    let outcome = probe_addr(&https(json!({ "sni": "probe.test" })), server.addr).await;
    let message = failure(&outcome);
    assert!(
        message.starts_with("certificate verify failed: "),
        "{message}"
    );
    assert!(matches!(outcome.result, Err(ProbeError::Certificate(_))));
}

#[tokio::test]
async fn a_self_signed_certificate_is_accepted_when_verification_is_off() {
    let server = server().await;
    let check = https(json!({ "sni": "probe.test", "verifyCertificate": false }));
    assert_eq!(probe_addr(&check, server.addr).await.result, Ok(()));
}

#[tokio::test]
async fn sni_defaults_to_the_host_header_and_then_the_target_name() {
    let server = server().await;
    let context = ProbeContext::new();
    let ip = server.addr.ip().to_string();
    let cases = [
        (
            json!({ "sni": "probe.test", "host": "h.example" }),
            ip.as_str(),
            Some("probe.test"),
        ),
        (json!({ "host": "h.example" }), &ip, Some("h.example")),
        (json!({}), "localhost", Some("localhost")),
        (json!({}), &ip, None),
    ];
    for (i, (mut check, target, sni)) in cases.into_iter().enumerate() {
        check["verifyCertificate"] = json!(false);
        let outcome = context
            .probe(&https(check), target, Some(server.addr.port()))
            .await;
        assert_eq!(outcome.result, Ok(()), "case {i}");
        assert_eq!(server.received()[i].sni.as_deref(), sni, "case {i}");
    }
    let head = &server.received()[0].head;
    assert!(head.contains("\r\nhost: h.example\r\n"), "{head}");
}
