//! Load measurement: 10 000 TCP tasks at a 1 s interval against local listeners, reporting the
//! CPU time the prober's process used over 30 s, in all and per probe.
//!
//! `cargo run --release -p gtm-prober --example load [-- TASKS SECONDS [INTERVAL_MS]]`
//!
//! INTERVAL_MS (default 1000) below 1000 sets `intervalMillis`: 1 000 tasks at 100 ms probe as
//! often as 10 000 at 1 s.
//!
//! The listeners run in a child process (this binary with the argument `listen`), so that the
//! CPU measured is the prober's alone. They sit on 8 loopback addresses x 8 ports: the probe
//! closes each connection with a reset (`SO_LINGER` 0, no `TIME_WAIT`), and spreading the
//! connections over 64 destinations keeps any one (source, destination) pair far from the
//! ephemeral port range's limit even where the kernel keeps some sockets in `TIME_WAIT`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gtm_crds::template::HealthCheckTemplateSpec;
use gtm_prober::{ProbeTask, Prober, ProberConfig};
use tokio::net::TcpListener;

const ADDRESSES: u8 = 8;
const PORTS_PER_ADDRESS: usize = 8;
/// Time for the first probes, spread over the first interval, to settle before measuring.
const WARM_UP: Duration = Duration::from_secs(3);
/// Linux reports process CPU time in ticks of 1/100 s (`USER_HZ`).
const TICKS_PER_SECOND: f64 = 100.0;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("listen") {
        return listen();
    }
    let number = |i: usize, default: u64| args.get(i).map_or(default, |a| a.parse().unwrap());
    let (tasks, seconds, interval_ms) = (number(0, 10_000), number(1, 30), number(2, 1000));

    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("listen")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let listeners: Vec<SocketAddr> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .take_while(|line| line != "ready")
        .map(|line| line.parse().unwrap())
        .collect();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(measure(
        tasks,
        interval_ms,
        Duration::from_secs(seconds),
        &listeners,
        child.id(),
    ));
    child.kill().unwrap();
    child.wait().unwrap();
}

async fn measure(
    tasks: u64,
    interval_ms: u64,
    window: Duration,
    listeners: &[SocketAddr],
    child: u32,
) {
    let spec: HealthCheckTemplateSpec = serde_json::from_value(serde_json::json!({
        "protocol": "TCP", "intervalSeconds": 1, "intervalMillis": interval_ms,
        "timeoutMillis": interval_ms * 9 / 10,
    }))
    .unwrap();
    let (mut prober, mut reports) = Prober::new(ProberConfig::default());
    prober.update((0..tasks).map(|i| {
        let addr = listeners[i as usize % listeners.len()];
        let id = format!("tcp-{i}");
        (
            id,
            ProbeTask::new(spec.clone(), addr.ip().to_string(), Some(addr.port())),
        )
    }));

    let mut batch = Vec::with_capacity(1024);
    let warm_up_end = Instant::now() + WARM_UP;
    while Instant::now() < warm_up_end {
        let _ =
            tokio::time::timeout_at(warm_up_end.into(), reports.recv_many(&mut batch, 1024)).await;
        batch.clear();
    }

    let (cpu_start, child_cpu_start, started) = (
        cpu_seconds("self"),
        cpu_seconds(&child.to_string()),
        Instant::now(),
    );
    let (mut passed, mut failed, mut batches) = (0u64, 0u64, 0u64);
    let end = started + window;
    let mut errors = std::collections::BTreeMap::<String, u64>::new();
    while let Ok(received) =
        tokio::time::timeout_at(end.into(), reports.recv_many(&mut batch, 1024)).await
    {
        if received == 0 {
            break;
        }
        batches += 1;
        for report in batch.drain(..) {
            match report.outcome.result {
                Ok(()) => passed += 1,
                Err(err) => {
                    failed += 1;
                    *errors.entry(err.to_string()).or_default() += 1;
                }
            }
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds("self").since(cpu_start);
    let child_cpu = cpu_seconds(&child.to_string()).since(child_cpu_start);
    println!(
        "tasks: {tasks} at a {interval_ms} ms interval, {} listeners, window {wall:.1} s",
        listeners.len()
    );
    println!(
        "probes: {} passed, {} failed ({:.0}/s), {batches} report batches",
        passed,
        failed,
        (passed + failed) as f64 / wall
    );
    for (error, count) in errors {
        println!("  {count} x {error}");
    }
    println!("prober CPU: {}", cpu.describe(wall));
    let probes = (passed + failed).max(1) as f64;
    println!(
        "prober CPU per probe: {:.1} µs (user {:.1} µs, system {:.1} µs)",
        (cpu.user + cpu.system) * 1e6 / probes,
        cpu.user * 1e6 / probes,
        cpu.system * 1e6 / probes
    );
    println!(
        "listener process CPU (not counted above): {}",
        child_cpu.describe(wall)
    );
}

/// User and system CPU seconds of a process (`self` or a pid), from `/proc/<pid>/stat`.
fn cpu_seconds(pid: &str) -> CpuTime {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let seconds = |i: usize| fields[i].parse::<u64>().unwrap() as f64 / TICKS_PER_SECOND;
    CpuTime {
        user: seconds(11),
        system: seconds(12),
    }
}

#[derive(Clone, Copy)]
struct CpuTime {
    user: f64,
    system: f64,
}

impl CpuTime {
    fn since(self, start: Self) -> Self {
        Self {
            user: self.user - start.user,
            system: self.system - start.system,
        }
    }

    fn describe(self, wall: f64) -> String {
        let total = self.user + self.system;
        format!(
            "{total:.2} s (user {:.2} s, system {:.2} s) = {:.1}% of one core",
            self.user,
            self.system,
            100.0 * total / wall
        )
    }
}

/// The child: accepts on every listener and drops each connection at once.
fn listen() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for a in 1..=ADDRESSES {
            for _ in 0..PORTS_PER_ADDRESS {
                let listener = TcpListener::bind((std::net::Ipv4Addr::new(127, 0, 0, a), 0))
                    .await
                    .unwrap();
                println!("{}", listener.local_addr().unwrap());
                tokio::spawn(async move {
                    while let Ok((stream, _)) = listener.accept().await {
                        drop(stream);
                    }
                });
            }
        }
        println!("ready");
        std::future::pending::<()>().await;
    });
}
