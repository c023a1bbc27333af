//! Local mode as processes: `gtm-operator local` on a manifest directory and `gtm-dnspod` on
//! its output, both on 127.0.0.1, and `gtm-prober` locations reading the same output, for the
//! end-to-end tests that run everywhere (no cluster).

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hickory_proto::rr::RecordType;
use tokio::process::{Child, Command};

use crate::dns::{Answer, Transport, query};
use crate::wait::{Check, Deadline, wait_for};

/// The directory cargo put this test executable's sibling binaries in (`target/<profile>`).
fn binary_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test> or target/<profile>/<bin>
    let dir = exe.parent().context("executable has a directory")?;
    Ok(if dir.ends_with("deps") {
        dir.parent().context("deps has a parent")?.to_path_buf()
    } else {
        dir.to_path_buf()
    })
}

/// The path of a workspace binary, brought up to date with cargo first (a no-op when the
/// workspace build already made it; needed when only this crate's tests were built).
pub fn binary(package: &str, name: &str) -> Result<PathBuf> {
    let path = binary_dir()?.join(name);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build.args(["build", "-p", package, "--bin", name]);
    if path.parent().is_some_and(|p| p.ends_with("release")) {
        build.arg("--release");
    }
    let status = build.status().with_context(|| format!("building {name}"))?;
    if !status.success() || !path.exists() {
        bail!("could not build {name} at {}", path.display());
    }
    Ok(path)
}

/// A free port on 127.0.0.1 for both UDP and TCP (bound then released).
pub fn free_port() -> Result<u16> {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0")?;
        let port = tcp.local_addr()?.port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
}

/// The operator in local mode and a DNS pod reading its output, killed on drop.
pub struct LocalGtm {
    /// Where the DNS pod answers (UDP and TCP).
    pub dns: SocketAddr,
    /// The DNS pod's `/metrics`, `/healthz`, `/readyz`.
    pub http: SocketAddr,
    /// The operator's `/metrics`, `/healthz`, `/readyz` and topology page.
    pub operator_http: SocketAddr,
    operator: Child,
    dnspod: Child,
}

impl LocalGtm {
    /// Starts both processes on `manifests`, writing payloads to `output`.
    pub fn start(manifests: &Path, output: &Path) -> Result<Self> {
        Self::start_with(manifests, output, &[], Stdio::null())
    }

    /// [`Self::start`] with extra flags for `gtm-operator local`, its status tables going to
    /// `tables`.
    pub fn start_with(
        manifests: &Path,
        output: &Path,
        operator_args: &[&str],
        tables: Stdio,
    ) -> Result<Self> {
        let dns = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let operator_http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let operator = Command::new(binary("gtm-operator", "gtm-operator")?)
            .args(["local", "--manifests"])
            .arg(manifests)
            .arg("--output")
            .arg(output)
            .args(["--http-listen", &operator_http.to_string()])
            .args(operator_args)
            .env("RUST_LOG", "warn")
            .stdout(tables)
            .kill_on_drop(true)
            .spawn()
            .context("starting gtm-operator")?;
        let dnspod = Command::new(binary("gtm-dnspod", "gtm-dnspod")?)
            .arg("--config-dir")
            .arg(output)
            .args(["--dns-listen", &dns.to_string()])
            .args(["--http-listen", &http.to_string()])
            // The tests poll one name from 127.0.0.1 far faster than a resolver would; response
            // rate limiting (on by default) would drop or truncate their answers.
            .args(["--rrl-rate", "0"])
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .context("starting gtm-dnspod")?;
        Ok(Self {
            dns,
            http,
            operator_http,
            operator,
            dnspod,
        })
    }

    /// One query over UDP.
    pub async fn query(&self, name: &str, rtype: RecordType) -> Result<Answer> {
        query(
            self.dns,
            name,
            rtype,
            Transport::Udp,
            Duration::from_secs(2),
        )
        .await
    }

    /// One query over the given transport.
    pub async fn query_over(
        &self,
        name: &str,
        rtype: RecordType,
        transport: Transport,
    ) -> Result<Answer> {
        query(self.dns, name, rtype, transport, Duration::from_secs(2)).await
    }

    /// Waits until `name` answers exactly `expected` (any order) over UDP; returns how long it
    /// took.
    pub async fn wait_answer(
        &self,
        name: &str,
        rtype: RecordType,
        expected: &[&str],
        deadline: Deadline,
    ) -> Result<Duration> {
        let start = std::time::Instant::now();
        let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        expected.sort();
        wait_for(
            &format!("{name} {rtype} to answer {expected:?}"),
            deadline,
            || async {
                let answer = self.query(name, rtype).await?;
                anyhow::Ok(if answer.sorted() == expected {
                    Check::Ready(())
                } else {
                    Check::Pending(answer.to_string())
                })
            },
        )
        .await?;
        Ok(start.elapsed())
    }

    /// Fails when either process has exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(s) = self.operator.try_wait()? {
            bail!("gtm-operator exited: {s}");
        }
        if let Some(s) = self.dnspod.try_wait()? {
            bail!("gtm-dnspod exited: {s}");
        }
        Ok(())
    }
}

/// How a probe location sees the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkView {
    /// The host's: it reaches the backends on 127.0.0.0/8.
    Host,
    /// A network namespace of its own (`unshare --net`, as root or in a user namespace) whose
    /// loopback is down: every probe fails with "network unreachable", as from a location cut
    /// off from the backends. It still reads and writes the payload directory.
    Isolated,
}

/// A `gtm-prober` location in local mode, reading `output` and reporting into
/// `output/locations`, killed on drop.
pub struct ProbeLocation {
    /// The location name.
    pub name: String,
    child: Child,
}

impl ProbeLocation {
    /// Starts location `name` with a heartbeat every second.
    pub fn start(name: &str, output: &Path, view: NetworkView) -> Result<Self> {
        let prober = binary("gtm-prober", "gtm-prober")?;
        let mut command = match view {
            NetworkView::Host => Command::new(prober),
            NetworkView::Isolated => {
                let mut c = Command::new("unshare");
                c.args(["--net", "--map-root-user"]).arg(prober);
                c
            }
        };
        let child = command
            .args(["--location", name, "--heartbeat-seconds", "1"])
            .arg("--config-dir")
            .arg(output)
            // Port 0: an isolated location has no usable 127.0.0.1.
            .args(["--http-listen", "0.0.0.0:0"])
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting gtm-prober --location {name}"))?;
        Ok(Self {
            name: name.into(),
            child,
        })
    }

    /// Kills the process (its heartbeat stops; its last reports stay on disk).
    pub async fn kill(mut self) -> Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// Fails when the process has exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(s) = self.child.try_wait()? {
            bail!("gtm-prober --location {} exited: {s}", self.name);
        }
        Ok(())
    }
}

/// Manifests for the failover tests (local mode and DNSSEC): an HTTP check every second that takes one failure or one
/// success to decide, two single-address pools, and domains over them in both sequential
/// modes plus a weighted pool of both addresses.
pub fn failover_manifests(primary: SocketAddr, standby: SocketAddr) -> String {
    format!(
        "apiVersion: gtm.kubegtm.io/v1alpha1
kind: HealthCheckTemplate
metadata: {{name: fast}}
spec:
  protocol: HTTP
  intervalSeconds: 1
  timeoutMillis: 500
  failureThreshold: 1
  successThreshold: 1
  http: {{path: /healthz}}
---
apiVersion: gtm.kubegtm.io/v1alpha1
kind: AddressPool
metadata: {{name: primary}}
spec:
  type: IPv4
  addresses: [{{value: \"{pi}\", healthChecks: [{{template: fast, port: {pp}}}]}}]
---
apiVersion: gtm.kubegtm.io/v1alpha1
kind: AddressPool
metadata: {{name: standby}}
spec:
  type: IPv4
  addresses: [{{value: \"{si}\", healthChecks: [{{template: fast, port: {sp}}}]}}]
---
apiVersion: gtm.kubegtm.io/v1alpha1
kind: AddressPool
metadata: {{name: both}}
spec:
  type: IPv4
  policy: Weighted
  addresses:
    - {{value: \"{pi}\", weight: 3, healthChecks: [{{template: fast, port: {pp}}}]}}
    - {{value: \"{si}\", weight: 1, healthChecks: [{{template: fast, port: {sp}}}]}}
---
apiVersion: gtm.kubegtm.io/v1alpha1
kind: GtmAccessDomain
metadata: {{name: pre}}
spec:
  domain: pre.gtm.example.com
  recordType: A
  ttl: 5
  policy: Sequential
  sequentialMode: Preemptive
  pools: [{{name: primary, order: 1}}, {{name: standby, order: 2}}]
---
apiVersion: gtm.kubegtm.io/v1alpha1
kind: GtmAccessDomain
metadata: {{name: non}}
spec:
  domain: non.gtm.example.com
  recordType: A
  ttl: 5
  policy: Sequential
  sequentialMode: NonPreemptive
  pools: [{{name: primary, order: 1}}, {{name: standby, order: 2}}]
---
apiVersion: gtm.kubegtm.io/v1alpha1
kind: GtmAccessDomain
metadata: {{name: weighted}}
spec:
  domain: weighted.gtm.example.com
  recordType: A
  ttl: 5
  pools: [{{name: both}}]
",
        pi = primary.ip(),
        pp = primary.port(),
        si = standby.ip(),
        sp = standby.port(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_bindable_for_udp_and_tcp() {
        let port = free_port().unwrap();
        TcpListener::bind(("127.0.0.1", port)).unwrap();
        UdpSocket::bind(("127.0.0.1", port)).unwrap();
    }

    #[test]
    fn binaries_are_found_next_to_the_test_executable() {
        let dir = binary_dir().unwrap();
        assert!(
            dir.ends_with("debug") || dir.ends_with("release"),
            "{}",
            dir.display()
        );
    }
}
