//! Several probe locations voting, without a cluster: `gtm-operator local`, `gtm-dnspod` and
//! three `gtm-prober --config-dir` processes (locations `a`, `b`, `c`), real DNS over UDP, real
//! HTTP health checks against a real listener on 127.0.93.1.
//!
//! A location's own network view is real: a location started in a network namespace of its own
//! (`unshare --net`, whose loopback is down) cannot reach the backend at all and judges it down,
//! while the others, on the host's network, reach it. The template selects exactly `a`, `b` and
//! `c` (not the operator's embedded prober) at `failureRatePercent: 50`:
//!
//! 1. `c` isolated, `a` and `b` on the host: 1 of 3 locations fail, no failover;
//! 2. `a` killed: its heartbeat stops, after the stale bound (3 s here) it abstains (the
//!    template's `LocationsReporting` says so), and the answer never moves (1 of 2 is not more
//!    than 50 %);
//! 3. `a` back, isolated: 2 of 3 locations fail, the domain fails over to the standby.
//!
//! Elapsed times are printed (run with `--nocapture`), never asserted.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use e2e::backend::Listener;
use e2e::local::{LocalGtm, NetworkView, ProbeLocation, free_port};
use e2e::wait::{Check, Deadline, wait_for};
use gtm_crds::location::{Report, Verdicts};
use hickory_proto::rr::RecordType;

/// Generous: these waits end as soon as the condition holds.
const DEADLINE: Deadline = Deadline {
    timeout: Duration::from_secs(60),
    interval: Duration::from_millis(50),
};

/// The operator's stale bound in this test (`--location-stale-seconds`); the probers beat
/// every second.
const STALE_SECONDS: u64 = 3;

fn manifests(primary: SocketAddr, standby: SocketAddr) -> String {
    format!(
        "apiVersion: gtm.kubegtm.io/v1alpha1
kind: HealthCheckTemplate
metadata: {{name: quorum}}
spec:
  protocol: HTTP
  intervalSeconds: 1
  timeoutMillis: 500
  failureThreshold: 1
  successThreshold: 1
  failureRatePercent: 50
  locations: {{names: [a, b, c]}}
  http: {{path: /healthz}}
---
apiVersion: gtm.kubegtm.io/v1alpha1
kind: AddressPool
metadata: {{name: primary}}
spec:
  type: IPv4
  addresses: [{{value: \"{pi}\", healthChecks: [{{template: quorum, port: {pp}}}]}}]
---
apiVersion: gtm.kubegtm.io/v1alpha1
kind: AddressPool
metadata: {{name: standby}}
spec:
  type: IPv4
  addresses: [{{value: \"{si}\", mode: AlwaysOnline}}]
---
apiVersion: gtm.kubegtm.io/v1alpha1
kind: GtmAccessDomain
metadata: {{name: app}}
spec:
  domain: app.gtm.example.com
  recordType: A
  ttl: 5
  policy: Sequential
  pools: [{{name: primary, order: 1}}, {{name: standby, order: 2}}]
",
        pi = primary.ip(),
        pp = primary.port(),
        si = standby.ip(),
    )
}

/// Waits until location `name`'s published verdicts judge `task` as `down` says.
async fn wait_verdict(output: &Path, name: &str, task: &str, down: bool) {
    let path = output
        .join("locations")
        .join(Report::Verdicts.file_name(name));
    wait_for(
        &format!(
            "location {name} to judge {task} {}",
            if down { "down" } else { "up" }
        ),
        DEADLINE,
        || async {
            let text = std::fs::read(&path)?;
            let verdicts = Verdicts::from_json(&text)?;
            let list = if down { &verdicts.down } else { &verdicts.up };
            anyhow::Ok(if list.iter().any(|t| t == task) {
                Check::Ready(())
            } else {
                Check::Pending(format!("up {:?}, down {:?}", verdicts.up, verdicts.down))
            })
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// Queries `name` for `span`, failing at the first answer other than `expected`.
async fn holds_for(gtm: &LocalGtm, name: &str, expected: &str, span: Duration) {
    let end = Instant::now() + span;
    let mut queries = 0;
    while Instant::now() < end {
        let answer = gtm.query(name, RecordType::A).await.unwrap();
        assert_eq!(
            answer.sorted(),
            [expected],
            "after {queries} queries: {answer}"
        );
        queries += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_rate_50_fails_over_with_2_of_3_locations_not_1_and_a_killed_location_abstains() {
    let primary_addr = SocketAddr::from(([127, 0, 93, 1], free_port().unwrap()));
    let standby_addr = SocketAddr::from(([127, 0, 93, 2], free_port().unwrap()));
    let _primary = Listener::start(primary_addr).await.unwrap();
    let manifests_dir = tempfile::tempdir().unwrap();
    let output = tempfile::tempdir().unwrap();
    std::fs::write(
        manifests_dir.path().join("app.yaml"),
        manifests(primary_addr, standby_addr),
    )
    .unwrap();
    let tables = output.path().join("tables.txt");
    let mut gtm = LocalGtm::start_with(
        manifests_dir.path(),
        output.path(),
        &["--location-stale-seconds", &STALE_SECONDS.to_string()],
        Stdio::from(std::fs::File::create(&tables).unwrap()),
    )
    .unwrap();
    let task = format!(
        "default/quorum@{}#{}",
        primary_addr.ip(),
        primary_addr.port()
    );
    let (p, s) = (primary_addr.ip().to_string(), standby_addr.ip().to_string());

    // 1. c cannot reach the backend, a and b can: one of three fails, no failover.
    let a = ProbeLocation::start("a", output.path(), NetworkView::Host).unwrap();
    let mut b = ProbeLocation::start("b", output.path(), NetworkView::Host).unwrap();
    let mut c = ProbeLocation::start("c", output.path(), NetworkView::Isolated).unwrap();
    for (name, down) in [("a", false), ("b", false), ("c", true)] {
        wait_verdict(output.path(), name, &task, down).await;
    }
    gtm.wait_answer("app.gtm.example.com", RecordType::A, &[&p], DEADLINE)
        .await
        .unwrap();
    holds_for(&gtm, "app.gtm.example.com", &p, Duration::from_secs(2)).await;

    // 2. a dies: it votes with its last verdict until the stale bound, then abstains; b (up)
    //    and c (down) are 1 of 2, which is not more than 50 %: the answer never moves.
    a.kill().await.unwrap();
    let killed = Instant::now();
    holds_for(
        &gtm,
        "app.gtm.example.com",
        &p,
        Duration::from_secs(STALE_SECONDS + 2),
    )
    .await;
    wait_for("the template to report a stale", DEADLINE, || async {
        let text = std::fs::read_to_string(&tables)?;
        let last = text
            .rsplit("kube-gtm local mode")
            .next()
            .unwrap_or_default();
        anyhow::Ok(if last.contains("stale, abstaining: a") {
            Check::Ready(())
        } else {
            Check::Pending(
                last.lines()
                    .find(|l| l.contains("quorum"))
                    .unwrap_or("")
                    .to_string(),
            )
        })
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    println!("location killed to reported stale: {:?}", killed.elapsed());

    // 3. a comes back, cut off too: two of three fail, the domain fails over.
    let _a = ProbeLocation::start("a", output.path(), NetworkView::Isolated).unwrap();
    wait_verdict(output.path(), "a", &task, true).await;
    let failover = gtm
        .wait_answer("app.gtm.example.com", RecordType::A, &[&s], DEADLINE)
        .await
        .unwrap();
    println!("second failing location to answer on standby: {failover:?}");

    gtm.check_running().unwrap();
    b.check_running().unwrap();
    c.check_running().unwrap();
}
