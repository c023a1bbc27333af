//! The query log over real sockets: the UDP fast path, the full path (EDNS with ECS) and TCP
//! log alike (the policy decision included), one JSON line per query, and nothing is logged
//! beyond the rate.

mod support;

use std::sync::Arc;
use std::time::Duration;

use gtm_dnspod::handler::GtmHandler;
use gtm_dnspod::query_log::{QueryLog, QueryLogSettings};
use gtm_dnspod::state::Shared;
use hickory_server::proto::rr::RecordType;
use support::fixtures::*;
use support::*;

#[tokio::test]
async fn every_path_logs_its_queries_as_json_lines() {
    let dir = tempfile_dir();
    let path = dir.join("queries.jsonl");
    let shared = Shared::new();
    let settings = QueryLogSettings {
        path: path.clone(),
        sample: 1,
        rate: 3,
    };
    let log = QueryLog::start(&settings, shared.metrics.query_log.clone()).unwrap();
    let handler = GtmHandler::new(shared.clone(), None)
        .with_udp_limits(no_rrl())
        .with_query_log(Arc::new(log));
    let mut pod = TestPod::answering(shared.clone(), handler).await;
    pod.load(&www_only(1, "192.0.2.1"), &health_down(1, &[]));
    let addr = pod.addr;

    udp(addr, &query("WWW.gtm.example.com.", RecordType::A)).await;
    udp(
        addr,
        &query_ecs("www.gtm.example.com.", RecordType::A, "198.51.100.0", 24),
    )
    .await;
    tcp(addr, &query("nope.gtm.example.com.", RecordType::A)).await;
    // Over the rate of 3 per second (unless a new second began): dropped and counted.
    udp(addr, &query("www.gtm.example.com.", RecordType::AAAA)).await;

    let mut lines = Vec::new();
    for _ in 0..200 {
        lines = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect();
        if lines.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(pod);
    let _ = std::fs::remove_dir_all(&dir);
    assert!((3..=4).contains(&lines.len()), "{lines:?}");
    let fast = &lines[0];
    assert_eq!(
        fast["name"]
            .as_str()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("www.gtm.example.com.")
    );
    assert_eq!(
        (fast["transport"].as_str(), fast["qtype"].as_str()),
        (Some("udp"), Some("A"))
    );
    assert_eq!(fast["answer"], serde_json::json!(["192.0.2.1"]));
    assert_eq!(fast["domain"], "www.gtm.example.com");
    assert_eq!(fast["resolver"], "127.0.0.1");
    assert!(fast.get("ecs").is_none());
    let full = &lines[1];
    assert_eq!(full["ecs"], "198.51.100.0/24");
    assert_eq!(full["answer"], serde_json::json!(["192.0.2.1"]));
    // Both paths name the policy decision alike.
    for entry in [fast, full] {
        assert_eq!(
            (&entry["policy"], &entry["pool"], &entry["reason"]),
            (
                &serde_json::json!("RoundRobin"),
                &serde_json::json!("ns/p"),
                &serde_json::json!("rotation")
            ),
            "{entry}"
        );
    }
    let over_tcp = &lines[2];
    assert_eq!(
        (over_tcp["transport"].as_str(), over_tcp["rcode"].as_str()),
        (Some("tcp"), Some("Non-Existent Domain"))
    );
    assert!(over_tcp["latencyUs"].as_u64().is_some());
    assert!(
        over_tcp.get("reason").is_none() && over_tcp.get("pool").is_none(),
        "no access domain, no decision: {over_tcp}"
    );
    let text = shared.metrics.encode();
    if lines.len() == 3 {
        assert!(
            text.contains(r#"gtm_dnspod_query_log_dropped_total{reason="rate"} 1"#),
            "{text}"
        );
    }
    assert!(
        text.contains(&format!(
            "gtm_dnspod_query_log_written_total {}",
            lines.len()
        )),
        "{text}"
    );
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gtm-query-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
