//! The page over a real socket: assets with their hardening headers, the model as JSON with
//! filters from the query string, and an event stream that follows the feed live.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::*;
use crate::manifests::test_support::loaded;
use crate::page::{Feed, RemoteResults, Source};

fn snapshot(yaml: &str, second: i64) -> Snapshot {
    Snapshot {
        inventory: loaded(yaml).inventory,
        statuses: BTreeMap::new(),
        remote: RemoteResults::new(),
        source: Source::Local,
        taken: Time(Timestamp::from_second(1_767_225_600 + second).unwrap()),
    }
}

fn domain(name: &str) -> String {
    format!(
        "apiVersion: gtm.kubegtm.io/v1alpha1
kind: GtmAccessDomain
metadata: {{name: {name}}}
spec:
  domain: {name}.gtm.example.com
  recordType: A
  pools: [{{name: p}}]"
    )
}

async fn start(feed: &Feed) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = routes(feed.subscribe());
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn request(addr: SocketAddr, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    s
}

async fn get(addr: SocketAddr, path: &str) -> String {
    let mut out = String::new();
    request(addr, path)
        .await
        .read_to_string(&mut out)
        .await
        .unwrap();
    out
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_hardened_with_relative_urls_only() {
    let feed = Feed::new();
    let addr = start(&feed).await;
    let page = get(addr, "/").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.contains("content-type: text/html; charset=utf-8"),
        "{page}"
    );
    assert!(page.contains("content-security-policy: default-src 'none'; script-src 'self'"));
    assert!(page.contains("x-content-type-options: nosniff"));
    // Relative references only, so that the page works under any proxy path.
    for reference in [
        "href=\"style.css\"",
        "src=\"app.js\"",
        "href=\"topology.json\"",
    ] {
        assert!(page.contains(reference), "{reference}");
    }
    assert!(
        !page.contains("href=\"/") && !page.contains("src=\"/"),
        "{page}"
    );
    let script = get(addr, "/app.js").await;
    assert!(script.contains("text/javascript"));
    assert!(script.contains("new EventSource('events'"));
    assert!(!script.contains("innerHTML"), "text goes in as text nodes");
    assert!(get(addr, "/style.css").await.contains("text/css"));
    assert!(get(addr, "/nope").await.starts_with("HTTP/1.1 404"));
}

#[tokio::test]
async fn the_model_is_served_as_json_filtered_by_the_query_string() {
    let feed = Feed::new();
    let addr = start(&feed).await;
    let pending = get(addr, "/topology.json").await;
    assert!(
        pending.starts_with("HTTP/1.1 503") && pending.ends_with(PENDING),
        "{pending}"
    );

    feed.publish(snapshot(
        &format!("{}\n---\n{}", domain("a"), domain("b")),
        0,
    ));
    let body = |response: String| -> serde_json::Value {
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap()
    };
    let all = body(get(addr, "/topology.json").await);
    assert_eq!(all["matching"], 2);
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["domains"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(&body(get(addr, "/topology.json?q=b.gtm").await)),
        ["b"]
    );
    // Both pools are missing: the domains are not served.
    for state in ["NotServing", "Problems", "All"] {
        let v = body(
            get(
                addr,
                &format!("/topology.json?state={state}&namespace=default"),
            )
            .await,
        );
        assert_eq!(names(&v), ["a", "b"], "{state}");
    }
    let v = body(get(addr, "/topology.json?state=Healthy").await);
    assert!(names(&v).is_empty());
    let bad = get(addr, "/topology.json?state=Sideways").await;
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    assert!(
        bad.contains("state"),
        "the error names the parameter: {bad}"
    );
}

/// Reads server-sent events: (event, data) pairs.
struct Events(BufReader<TcpStream>);

impl Events {
    async fn open(addr: SocketAddr, path: &str) -> Self {
        let mut reader = BufReader::new(request(addr, path).await);
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        Self(reader)
    }

    async fn next(&mut self) -> (String, String) {
        let (mut event, mut data) = (String::new(), String::new());
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(Duration::from_secs(5), self.0.read_line(&mut line))
                .await
                .expect("an event within 5 s")
                .unwrap();
            assert!(read > 0, "the stream ended");
            let line = line.trim_end_matches(['\r', '\n']);
            if let Some(e) = line.strip_prefix("event: ").or(line.strip_prefix("event:")) {
                event = e.to_string();
            } else if let Some(d) = line.strip_prefix("data: ").or(line.strip_prefix("data:")) {
                data.push_str(d);
            } else if line.is_empty() && !event.is_empty() {
                return (event, data);
            }
        }
    }
}

#[tokio::test]
async fn an_event_stream_follows_the_feed_live_and_ends_with_it() {
    let feed = Feed::new();
    let addr = start(&feed).await;
    let mut events = Events::open(addr, "/events?q=b").await;
    assert_eq!(events.next().await, ("pending".into(), PENDING.into()));

    feed.publish(snapshot(&domain("a"), 0));
    let (event, data) = events.next().await;
    assert_eq!(event, "topology");
    let v: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(
        (v["matching"].as_u64(), v["counts"]["NotServing"].as_u64()),
        (Some(0), Some(1))
    );

    // A change the filter hides changes the counts, so it is sent; then b appears.
    feed.publish(snapshot(
        &format!("{}\n---\n{}", domain("a"), domain("b")),
        1,
    ));
    let v: serde_json::Value = serde_json::from_str(&events.next().await.1).unwrap();
    assert_eq!(v["matching"], 1);
    assert_eq!(v["domains"][0]["fqdn"], "b.gtm.example.com");

    // The operator stops: the stream ends, so a server shutting down gracefully is not held.
    drop(feed);
    let mut rest = String::new();
    let ended = tokio::time::timeout(Duration::from_secs(5), events.0.read_to_string(&mut rest))
        .await
        .expect("the stream ends with the feed");
    assert!(ended.is_ok());
}

#[tokio::test]
async fn open_streams_are_capped() {
    let feed = Feed::new();
    let addr = start(&feed).await;
    let mut open = Vec::new();
    for _ in 0..MAX_VIEWERS {
        let mut events = Events::open(addr, "/events").await;
        events.next().await;
        open.push(events);
    }
    let refused = get(addr, "/events").await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("pages are open already"), "{refused}");
    // The JSON stays available meanwhile.
    feed.publish(snapshot(&domain("a"), 0));
    assert!(
        get(addr, "/topology.json")
            .await
            .starts_with("HTTP/1.1 200")
    );
}
