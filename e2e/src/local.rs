//! Local mode as processes: `gtm-operator local` on a manifest directory and `gtm-dnspod` on
//! its output, both on 127.0.0.1, for the end-to-end tests that run everywhere (no cluster).

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hickory_proto::rr::RecordType;
use tokio::process::{Child, Command};

use crate::dns::{Answer, Transport, query};

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
        let dns = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let operator_http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let operator = Command::new(binary("gtm-operator", "gtm-operator")?)
            .args(["local", "--manifests"])
            .arg(manifests)
            .arg("--output")
            .arg(output)
            .args(["--http-listen", &operator_http.to_string()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
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
