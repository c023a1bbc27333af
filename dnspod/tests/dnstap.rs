//! dnstap over a real unix socket to a real collector: `fstrm_capture` (Debian's fstrm-bin)
//! receives the Frame Streams, `dnstap-ldns` (Debian's dnstap-ldns) decodes what it wrote.
//! Both are installed by `scripts/install-test-tools.sh`; the test fails without them.
//!
//! The pod starts before the collector: its answers do not wait, the frames meanwhile are
//! dropped and counted, and the writer connects once the collector listens. Then the UDP fast
//! path, the full path (EDNS with ECS) and TCP each give an `AUTH_QUERY` and an
//! `AUTH_RESPONSE`.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gtm_dnspod::dnstap::{Dnstap, DnstapSettings};
use gtm_dnspod::handler::GtmHandler;
use gtm_dnspod::state::Shared;
use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::RecordType;
use support::fixtures::*;
use support::*;

/// `fstrm_capture` on `socket`, writing to `output`; killed on drop.
struct Collector(Child);

impl Collector {
    fn start(socket: &Path, output: &Path) -> Self {
        let child = Command::new("fstrm_capture")
            .args(["-t", "protobuf:dnstap.Dnstap", "-u"])
            .arg(socket)
            .arg("-w")
            .arg(output)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("fstrm_capture (Debian package fstrm-bin; scripts/install-test-tools.sh)");
        Self(child)
    }

    /// Stops it as an operator would (SIGTERM: it closes its output cleanly).
    fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_path_sends_auth_query_and_response_to_a_frame_streams_collector() {
    let dir = std::env::temp_dir().join(format!("gtm-dnstap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("dnstap.sock");
    let output = dir.join("dnstap.fstrm");

    let shared = Shared::new();
    let metrics = shared.metrics.dnstap.clone();
    let settings = DnstapSettings {
        socket: socket.clone(),
        identity: "ns1.test".into(),
    };
    let dnstap = Dnstap::start(&settings, metrics.clone()).unwrap();
    let handler = GtmHandler::new(shared.clone(), None)
        .with_udp_limits(no_rrl())
        .with_dnstap(Arc::new(dnstap));
    let mut pod = TestPod::answering(shared.clone(), handler).await;
    pod.load(&www_only(1, "192.0.2.1"), &health_down(1, &[]));
    let addr = pod.addr;

    // No collector yet: answered all the same, the frames dropped and counted.
    let reply = udp(addr, &query("www.gtm.example.com.", RecordType::A)).await;
    assert_eq!(data(&reply.answers), vec!["192.0.2.1"]);
    let disconnected = || {
        metrics
            .dropped
            .get_or_create(&gtm_dnspod::dnstap::DropLabels {
                reason: "disconnected",
            })
            .get()
    };
    wait_until("the frames to be dropped", || disconnected() == 2).await;

    let collector = Collector::start(&socket, &output);
    // The writer retries every second.
    wait_until("the writer to connect", || metrics.connected.get() == 1).await;

    let fast = udp(addr, &query("www.gtm.example.com.", RecordType::A)).await;
    assert_eq!(data(&fast.answers), vec!["192.0.2.1"]);
    let full = udp(
        addr,
        &query_ecs("www.gtm.example.com.", RecordType::A, "198.51.100.0", 24),
    )
    .await;
    assert_eq!(data(&full.answers), vec!["192.0.2.1"]);
    let over_tcp = tcp(addr, &query("nope.gtm.example.com.", RecordType::TXT)).await;
    assert_eq!(over_tcp.metadata.response_code, ResponseCode::NXDomain);
    wait_until("six frames sent", || metrics.sent.get() == 6).await;
    drop(pod);
    collector.stop();

    let decoded = Command::new("dnstap-ldns")
        .arg("-r")
        .arg(&output)
        .arg("-y")
        .output()
        .expect("dnstap-ldns (Debian package dnstap-ldns; scripts/install-test-tools.sh)");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(decoded.status.success(), "{decoded:?}");
    let text = String::from_utf8_lossy(&decoded.stdout);
    let count = |needle: &str| text.matches(needle).count();
    assert_eq!(count("type: AUTH_QUERY"), 3, "{text}");
    assert_eq!(count("type: AUTH_RESPONSE"), 3, "{text}");
    assert_eq!(count("identity: \"ns1.test\""), 6, "{text}");
    assert_eq!(count("socket_protocol: UDP"), 4, "{text}");
    assert_eq!(count("socket_protocol: TCP"), 2, "{text}");
    assert_eq!(count("query_address: \"127.0.0.1\""), 6, "{text}");
    assert!(
        text.contains("www.gtm.example.com.") && text.contains("192.0.2.1"),
        "{text}"
    );
    assert!(text.contains("NXDOMAIN"), "{text}");
    assert_eq!(
        metrics
            .dropped
            .get_or_create(&gtm_dnspod::dnstap::DropLabels { reason: "queue" })
            .get(),
        0
    );
}
