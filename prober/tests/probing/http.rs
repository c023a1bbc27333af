use serde_json::json;

use crate::support::{Reply, SilentServer, TestServer, closed_port, failure, probe_addr, spec};

/// 200 with a body on `/ok`, a redirect from `/old` to `/ok`, else the code the path names.
async fn server() -> TestServer {
    TestServer::http(|path| match path {
        "/ok" => Reply::new(200, "status: ok, all good"),
        "/old" => Reply {
            headers: vec![("location", "/ok".into())],
            ..Reply::new(302, "")
        },
        "/big" => Reply::new(200, format!("{}ok", "x".repeat(70 * 1024))),
        code => Reply::new(code.trim_start_matches('/').parse().unwrap_or(404), ""),
    })
    .await
}

fn http(check: serde_json::Value) -> gtm_crds::template::HealthCheckTemplateSpec {
    spec(json!({ "protocol": "HTTP", "timeoutMillis": 3000, "http": check }))
}

#[tokio::test]
async fn status_codes_inside_the_expected_ranges_pass() {
    let server = server().await;
    for (path, codes) in [
        ("/ok", json!(["200-399"])),
        ("/503", json!(["200", "500-503"])),
    ] {
        let check = http(json!({ "path": path, "expectedCodes": codes }));
        let outcome = probe_addr(&check, server.addr).await;
        assert_eq!(outcome.result, Ok(()), "{path}");
    }
}

#[tokio::test]
async fn status_codes_outside_the_expected_ranges_fail() {
    let server = server().await;
    let check = http(json!({ "path": "/503", "expectedCodes": ["200-299", "304"] }));
    let outcome = probe_addr(&check, server.addr).await;
    assert_eq!(failure(&outcome), "HTTP 503 not in 200-299, 304");
    let default_codes = http(json!({ "path": "/404" }));
    let outcome = probe_addr(&default_codes, server.addr).await;
    assert_eq!(failure(&outcome), "HTTP 404 not in 200-399");
}

#[tokio::test]
async fn body_must_contain_the_text() {
    let server = server().await;
    let found = http(json!({ "path": "/ok", "bodyContains": "ok, all" }));
    assert_eq!(probe_addr(&found, server.addr).await.result, Ok(()));
    let missing = http(json!({ "path": "/ok", "bodyContains": "healthy" }));
    let outcome = probe_addr(&missing, server.addr).await;
    assert_eq!(failure(&outcome), "body does not contain \"healthy\"");
}

#[tokio::test]
async fn body_is_read_up_to_64_kib_only() {
    let server = server().await;
    let beyond_the_cap = http(json!({ "path": "/big", "bodyContains": "ok" }));
    let outcome = probe_addr(&beyond_the_cap, server.addr).await;
    assert_eq!(failure(&outcome), "body does not contain \"ok\"");
}

#[tokio::test]
async fn redirects_are_followed_only_when_asked() {
    let server = server().await;
    let follow = http(json!({ "path": "/old", "expectedCodes": ["200"], "followRedirects": true }));
    assert_eq!(probe_addr(&follow, server.addr).await.result, Ok(()));
    let paths: Vec<String> = server
        .received()
        .iter()
        .map(|r| r.path().to_owned())
        .collect();
    assert_eq!(paths, ["/old", "/ok"]);

    let stay = http(json!({ "path": "/old", "expectedCodes": ["200"] }));
    let outcome = probe_addr(&stay, server.addr).await;
    assert_eq!(failure(&outcome), "HTTP 302 not in 200");
    assert_eq!(server.received().len(), 3);
}

#[tokio::test]
async fn host_header_method_and_custom_headers_are_sent() {
    let server = server().await;
    let check = http(json!({
        "method": "POST",
        "path": "/ok?probe=1",
        "host": "app.example.com",
        "headers": [{ "name": "X-Probe", "value": "kube-gtm" }],
    }));
    assert_eq!(probe_addr(&check, server.addr).await.result, Ok(()));
    let head = &server.received()[0].head;
    assert!(head.starts_with("post /ok?probe=1 http/1.1\r\n"), "{head}");
    assert!(head.contains("\r\nhost: app.example.com\r\n"), "{head}");
    assert!(head.contains("\r\nx-probe: kube-gtm\r\n"), "{head}");
}

#[tokio::test]
async fn host_names_are_resolved_and_sent_as_host() {
    let server = server().await;
    let check = http(json!({ "path": "/ok" }));
    let outcome = gtm_prober::ProbeContext::new()
        .probe(&check, "localhost", Some(server.addr.port()))
        .await;
    assert_eq!(outcome.result, Ok(()));
    let head = &server.received()[0].head;
    assert!(
        head.contains(&format!("\r\nhost: localhost:{}\r\n", server.addr.port())),
        "{head}"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let silent = SilentServer::start().await;
    let check = spec(json!({ "protocol": "HTTP", "timeoutMillis": 300 }));
    let outcome = probe_addr(&check, silent.addr).await;
    assert_eq!(failure(&outcome), "timed out after 300 ms");
    assert_eq!(outcome.result.unwrap_err().reason(), "Timeout");
}

#[tokio::test]
async fn a_closed_port_is_refused() {
    let check = spec(json!({ "protocol": "HTTP" }));
    let outcome = probe_addr(&check, closed_port().await).await;
    assert_eq!(failure(&outcome), "connection refused");
}
