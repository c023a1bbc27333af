use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, SystemTime};

use gtm_crds::pool::HealthState::{Down, Up};
use gtm_prober::{ProbeTask, Prober, ProberConfig, TaskHealth, UpdateSummary};
use serde_json::json;
use tokio::net::TcpListener;

use crate::support::{PATIENCE, Reply, SilentServer, TestServer, reports_until, spec};

fn task(check: serde_json::Value, addr: SocketAddr) -> ProbeTask {
    ProbeTask::new(spec(check), addr.ip().to_string(), Some(addr.port()))
}

fn tcp(interval: u32, addr: SocketAddr) -> ProbeTask {
    let check = json!({ "protocol": "TCP", "intervalSeconds": interval, "timeoutMillis": 500 });
    task(check, addr)
}

/// An HTTP task on `path`, deciding on every probe unless `thresholds` say otherwise.
fn http(path: &str, thresholds: (u8, u8), addr: SocketAddr) -> ProbeTask {
    let check = json!({
        "protocol": "HTTP", "intervalSeconds": 1, "timeoutMillis": 900,
        "failureThreshold": thresholds.0, "successThreshold": thresholds.1,
        "http": { "path": path },
    });
    task(check, addr)
}

fn id(name: &str) -> String {
    name.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_task_probes_on_its_own_interval() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (mut prober, mut reports) = Prober::new(ProberConfig::default());
    // Sub-second: `intervalMillis` takes the place of `intervalSeconds`.
    let fast = json!({
        "protocol": "TCP", "intervalSeconds": 5, "intervalMillis": 200, "timeoutMillis": 150
    });
    let summary = prober.update([
        (id("every-1s"), tcp(1, addr)),
        (id("every-2s"), tcp(2, addr)),
        (id("every-200ms"), task(fast, addr)),
    ]);
    assert_eq!(summary.added, 3);

    let mut probes: HashMap<String, Vec<SystemTime>> = HashMap::new();
    reports_until(&mut reports, |report| {
        assert_eq!(report.outcome.result, Ok(()));
        let times = probes.entry(report.task_id.to_string()).or_default();
        times.push(report.health.last_probe.unwrap());
        probes.len() == 3 && probes.values().all(|times| times.len() >= 3)
    })
    .await;
    // Probes never come more often than the interval, less its probe-time wobble.
    for (task, least) in [("every-1s", 500), ("every-2s", 1500), ("every-200ms", 100)] {
        for pair in probes[task].windows(2) {
            let gap = pair[1].duration_since(pair[0]).unwrap();
            assert!(gap >= Duration::from_millis(least), "{task}: {gap:?}");
        }
    }
    // The sub-second task probed at least 5 times while the 2 s one probed 3 times.
    assert!(probes["every-200ms"].len() >= 5, "{probes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_transition_is_reported_once() {
    let status = Arc::new(AtomicU16::new(200));
    let served = status.clone();
    let server = TestServer::http(move |_| Reply::new(served.load(Ordering::SeqCst), "")).await;
    let (mut prober, mut reports) = Prober::new(ProberConfig::default());
    let since = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
    let web = http("/", (2, 2), server.addr).restored(Up, Some(since));
    prober.update([(id("web"), web)]);

    let mut all = reports_until(&mut reports, |r| r.outcome.is_success()).await;
    assert_eq!(
        prober.health("web").unwrap().since,
        Some(since),
        "restored, no flap"
    );

    status.store(503, Ordering::SeqCst);
    all.extend(reports_until(&mut reports, |r| r.transition.is_some()).await);
    let failures_after_it = reports_until(&mut reports, |r| !r.outcome.is_success()).await;
    all.extend(failures_after_it);
    status.store(200, Ordering::SeqCst);
    all.extend(reports_until(&mut reports, |r| r.transition.is_some()).await);

    let transitions: Vec<_> = all
        .iter()
        .filter_map(|r| r.transition.map(|t| (t.from, t.to)))
        .collect();
    assert_eq!(transitions, [(Up, Down), (Down, Up)]);
    let down = all.iter().position(|r| r.transition.is_some()).unwrap();
    assert!(
        all[down - 1].outcome.result.is_err(),
        "two failures took it down"
    );
    let health = prober.health("web").unwrap();
    assert_eq!(health.state, Up);
    assert_eq!(health.since, all.last().unwrap().health.since);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_restarts_only_changed_tasks_and_keeps_states() {
    let server =
        TestServer::http(|path| Reply::new(if path == "/down" { 503 } else { 200 }, "")).await;
    let addr = server.addr;
    let (mut prober, mut reports) = Prober::new(ProberConfig::default());
    prober.update([
        (id("a"), http("/a", (1, 1), addr)),
        (id("b"), http("/b", (1, 1), addr)),
    ]);
    let mut up = Vec::new();
    reports_until(&mut reports, |r| {
        if r.transition.is_some_and(|t| t.to == Up) {
            up.push(r.task_id.to_string());
        }
        up.len() == 2
    })
    .await;
    let a_before = prober.health("a").unwrap();
    let b_before = prober.health("b").unwrap();

    let restored_since = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
    let summary = prober.update([
        (id("a"), http("/a", (1, 1), addr)),
        (id("b"), http("/down", (1, 1), addr)),
        (
            id("c"),
            http("/c", (1, 1), addr).restored(Down, Some(restored_since)),
        ),
    ]);
    let expected = UpdateSummary {
        added: 1,
        changed: 1,
        removed: 0,
        unchanged: 1,
    };
    assert_eq!(summary, expected);
    let a = prober.health("a").unwrap();
    assert_eq!(
        (a.state, a.since),
        (a_before.state, a_before.since),
        "a kept running"
    );
    let b = prober.health("b").unwrap();
    assert_eq!(
        (b.state, b.since),
        (Up, b_before.since),
        "b keeps its verdict"
    );
    assert_eq!(
        prober.health("c"),
        Some(TaskHealth::new(Down, Some(restored_since)))
    );

    let mut changes = Vec::new();
    let after = reports_until(&mut reports, |r| {
        if let Some(t) = r.transition {
            changes.push((r.task_id.to_string(), t.from, t.to));
        }
        changes.len() == 2
    })
    .await;
    changes.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(changes, [(id("b"), Up, Down), (id("c"), Down, Up)]);
    assert!(
        after
            .iter()
            .all(|r| &*r.task_id != "a" || r.transition.is_none())
    );

    let summary = prober.update([(id("a"), http("/a", (1, 1), addr))]);
    assert_eq!((summary.removed, summary.unchanged), (2, 1));
    assert_eq!(prober.len(), 1);
    assert_eq!(prober.health("b"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_probe_delays_no_other_task() {
    let silent = SilentServer::start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = ProberConfig {
        max_concurrent_probes: 2,
        ..ProberConfig::default()
    };
    let (mut prober, mut reports) = Prober::new(config);
    let hang = json!({ "protocol": "HTTP", "intervalSeconds": 10, "timeoutMillis": 9900 });
    prober.update([
        (id("hang"), task(hang, silent.addr)),
        (id("fast"), tcp(1, listener.local_addr().unwrap())),
    ]);
    tokio::time::timeout(PATIENCE, async {
        while silent.accepted() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the hanging probe starts within its first interval");

    let mut fast = 0;
    let seen = reports_until(&mut reports, |r| {
        fast += usize::from(&*r.task_id == "fast");
        fast == 3
    })
    .await;
    assert!(
        seen.iter()
            .all(|r| &*r.task_id == "fast" && r.outcome.is_success())
    );
    assert_eq!(silent.accepted(), 1, "one probe in flight per task");
}
