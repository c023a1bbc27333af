//! Latency steering without a cluster: `gtm-operator local`, `gtm-dnspod` and two
//! `gtm-prober` locations, `eu` and `us`, real DNS over UDP with `dig +subnet`, real HTTP
//! health checks against real listeners.
//!
//! Each location has its own view of the network without `tc`: the backend of pool `eu`
//! answers the probes of location `us` 150 ms late, and the backend of pool `us` those of
//! location `eu` (the probes name their location in their User-Agent). The domain maps
//! 198.51.100.0/24 to location `eu` and 203.0.113.0/24 to `us`, so:
//!
//! 1. a client in 198.51.100.0/24 gets pool `eu`, one in 203.0.113.0/24 pool `us`, and one
//!    no location stands for the pools' order (`eu`);
//! 2. the answers hold (no flapping) while the probes go on measuring;
//! 3. each backend turns slow (400 ms) for its own location: both locations switch, the
//!    clients swap pools;
//! 4. pool `eu` down: the clients on it get `us`, health gating before latency.
//!
//! Elapsed times are printed (run with `--nocapture`), never asserted.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use e2e::backend::Listener;
use e2e::dig::dig;
use e2e::local::{LocalGtm, NetworkView, ProbeLocation, free_port};
use e2e::wait::{Check, Deadline, wait_for};

const DEADLINE: Deadline = Deadline {
    timeout: Duration::from_secs(60),
    interval: Duration::from_millis(100),
};
const NAME: &str = "app.gtm.example.com";
const EU_CLIENT: &str = "+subnet=198.51.100.0/24";
const US_CLIENT: &str = "+subnet=203.0.113.0/24";
const ELSEWHERE: &str = "+subnet=192.0.2.0/24";

fn manifests(eu: SocketAddr, us: SocketAddr) -> String {
    format!(
        "apiVersion: gtm.kubegtm.io/v1alpha1
kind: HealthCheckTemplate
metadata: {{name: web}}
spec:
  protocol: HTTP
  intervalSeconds: 1
  timeoutMillis: 900
  failureThreshold: 1
  successThreshold: 1
  locations: {{names: [eu, us]}}
  http: {{path: /healthz}}
---
apiVersion: gtm.kubegtm.io/v1alpha1
kind: AddressPool
metadata: {{name: eu}}
spec:
  type: IPv4
  addresses: [{{value: \"{ei}\", healthChecks: [{{template: web, port: {ep}}}]}}]
---
apiVersion: gtm.kubegtm.io/v1alpha1
kind: AddressPool
metadata: {{name: us}}
spec:
  type: IPv4
  addresses: [{{value: \"{ui}\", healthChecks: [{{template: web, port: {up}}}]}}]
---
apiVersion: gtm.kubegtm.io/v1alpha1
kind: GtmAccessDomain
metadata: {{name: app}}
spec:
  domain: {NAME}
  recordType: A
  ttl: 5
  policy: Latency
  latency:
    locations:
      - {{name: eu, sources: {{cidrs: [198.51.100.0/24]}}}}
      - {{name: us, sources: {{cidrs: [203.0.113.0/24]}}}}
  pools: [{{name: eu, order: 1}}, {{name: us, order: 2}}]
",
        ei = eu.ip(),
        ep = eu.port(),
        ui = us.ip(),
        up = us.port(),
    )
}

/// The addresses answered to a client of `subnet`.
async fn answer(gtm: &LocalGtm, subnet: &str) -> Vec<String> {
    let mut data = dig(gtm.dns, NAME, "A", &[subnet])
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
        .answer_data();
    data.sort();
    data
}

async fn wait_answer(gtm: &LocalGtm, subnet: &str, expected: &str) -> Duration {
    let started = Instant::now();
    wait_for(&format!("{subnet} to get {expected}"), DEADLINE, || async {
        let got = answer(gtm, subnet).await;
        anyhow::Ok(if got == [expected] {
            Check::Ready(())
        } else {
            Check::Pending(format!("{got:?}"))
        })
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_gets_the_pool_its_location_measures_fastest_and_it_does_not_flap() {
    let eu_addr = SocketAddr::from(([127, 0, 94, 1], free_port().unwrap()));
    let us_addr = SocketAddr::from(([127, 0, 94, 2], free_port().unwrap()));
    let mut eu = Listener::start(eu_addr).await.unwrap();
    let us = Listener::start(us_addr).await.unwrap();
    eu.backend.slow_for("us", Duration::from_millis(150));
    us.backend.slow_for("eu", Duration::from_millis(150));
    let manifests_dir = tempfile::tempdir().unwrap();
    let output = tempfile::tempdir().unwrap();
    std::fs::write(
        manifests_dir.path().join("app.yaml"),
        manifests(eu_addr, us_addr),
    )
    .unwrap();
    let mut gtm = LocalGtm::start(manifests_dir.path(), output.path()).unwrap();
    let mut eu_probe = ProbeLocation::start("eu", output.path(), NetworkView::Host).unwrap();
    let mut us_probe = ProbeLocation::start("us", output.path(), NetworkView::Host).unwrap();
    let (e, u) = (eu_addr.ip().to_string(), us_addr.ip().to_string());

    // 1. Each client network gets its location's fastest pool; the rest the pools' order.
    let to_us = wait_answer(&gtm, US_CLIENT, &u).await;
    println!("probes started to the us client answered by pool us: {to_us:?}");
    wait_answer(&gtm, EU_CLIENT, &e).await;
    assert_eq!(answer(&gtm, ELSEWHERE).await, [e.as_str()]);

    // 2. No flapping while the probes go on measuring (every second, with jitter).
    let end = Instant::now() + Duration::from_secs(4);
    let mut queries = 0;
    while Instant::now() < end {
        assert_eq!(
            answer(&gtm, EU_CLIENT).await,
            [e.as_str()],
            "after {queries}"
        );
        assert_eq!(
            answer(&gtm, US_CLIENT).await,
            [u.as_str()],
            "after {queries}"
        );
        queries += 2;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 3. Each pool turns slower than the other for its own location: both switch.
    eu.backend.slow_for("eu", Duration::from_millis(400));
    us.backend.slow_for("us", Duration::from_millis(400));
    let switched = wait_answer(&gtm, US_CLIENT, &e).await;
    wait_answer(&gtm, EU_CLIENT, &u).await;
    println!("backends slowed to the clients swapping pools: {switched:?}");

    // 4. Health gates before latency: pool eu down, the clients on it go to us.
    eu.kill().await;
    let failover = wait_answer(&gtm, US_CLIENT, &u).await;
    println!("pool eu down to its clients answered by pool us: {failover:?}");

    gtm.check_running().unwrap();
    eu_probe.check_running().unwrap();
    us_probe.check_running().unwrap();
}
