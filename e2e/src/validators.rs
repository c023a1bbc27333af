//! Validating DNS clients for the DNSSEC tests: `unbound` (Debian package unbound), a
//! validating resolver holding a test zone's trust anchor with a stub zone to a DNS pod, and
//! `delv` (bind9-dnsutils), BIND's validating lookup with the same anchor.
//! `scripts/install-test-tools.sh` installs both.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context as _, Result, bail};
use tokio::process::{Child, Command};

use crate::local::free_port;

/// `unbound` in the foreground on 127.0.0.1, killed on drop.
pub struct Unbound {
    /// Where it answers (UDP and TCP).
    pub addr: SocketAddr,
    _child: Child,
}

impl Unbound {
    /// Starts a validating resolver in `dir` trusting `dnskey` (presentation form, e.g.
    /// `257 3 13 <base64>`) for `zone`, resolving `zone` from `server` (a stub zone), and
    /// caching nothing (answers follow the DNS pod at once).
    pub async fn start(dir: &Path, zone: &str, dnskey: &str, server: SocketAddr) -> Result<Self> {
        let port = free_port()?;
        let config = dir.join("unbound.conf");
        std::fs::write(
            &config,
            format!(
                "server:
  interface: 127.0.0.1@{port}
  port: {port}
  do-daemonize: no
  chroot: \"\"
  username: \"\"
  directory: \"{dir}\"
  pidfile: \"\"
  use-syslog: no
  logfile: \"\"
  verbosity: 0
  val-log-level: 2
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  cache-max-ttl: 0
  cache-max-negative-ttl: 0
  trust-anchor: \"{zone}. DNSKEY {dnskey}\"
  module-config: \"validator iterator\"
stub-zone:
  name: \"{zone}\"
  stub-addr: {ip}@{server_port}
remote-control:
  control-enable: no
",
                dir = dir.display(),
                ip = server.ip(),
                server_port = server.port(),
            ),
        )?;
        let child = Command::new(unbound_binary()?)
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting unbound")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        // Up once it answers; unbound binds before it serves.
        for _ in 0..100 {
            if crate::dig::dig(addr, zone, "SOA", &["+rec"]).await.is_ok() {
                return Ok(Self {
                    addr,
                    _child: child,
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        bail!("unbound did not answer on {addr}")
    }
}

/// The unbound binary (`/usr/sbin` is not on every user's PATH).
fn unbound_binary() -> Result<PathBuf> {
    let sbin = PathBuf::from("/usr/sbin/unbound");
    if sbin.exists() {
        return Ok(sbin);
    }
    which("unbound").context("unbound is not installed (scripts/install-test-tools.sh)")
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
}

/// What `delv` concluded about one lookup.
#[derive(Debug)]
pub struct Delv {
    /// `fully validated` (positive) or `negative response, fully validated`; empty when it
    /// said neither.
    pub verdict: String,
    /// Everything it printed.
    pub output: String,
}

/// Looks up `name` `rtype` at `server` with `delv`, trusting `dnskey` for `zone`.
pub async fn delv(
    dir: &Path,
    server: SocketAddr,
    zone: &str,
    dnskey: &str,
    name: &str,
    rtype: &str,
) -> Result<Delv> {
    let mut parts = dnskey.split_whitespace();
    let (flags, protocol, algorithm) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let key: String = parts.collect();
    let anchors = dir.join("anchors.conf");
    std::fs::write(
        &anchors,
        format!(
            "trust-anchors {{\n  {zone}. static-key {flags} {protocol} {algorithm} \"{key}\";\n}};\n"
        ),
    )?;
    let output = Command::new("delv")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "-a"])
        .arg(&anchors)
        .arg(format!("+root={zone}"))
        .args([name, rtype])
        .output()
        .await
        .context("running delv (install bind9-dnsutils with scripts/install-test-tools.sh)")?;
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let verdict = output
        .lines()
        .filter_map(|l| l.strip_prefix("; "))
        .find(|l| l.ends_with("fully validated"))
        .unwrap_or_default()
        .to_string();
    Ok(Delv { verdict, output })
}
