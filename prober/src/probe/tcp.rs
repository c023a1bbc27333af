//! TCP probe: the three-way handshake completes.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use crate::outcome::ProbeError;

/// Connects to `ip:port` and closes at once. The close resets the connection (`SO_LINGER` 0),
/// as HAProxy's checks do, so that a prober making thousands of connections a second leaves no
/// `TIME_WAIT` sockets behind to exhaust its ephemeral ports.
pub(super) async fn probe(ip: IpAddr, port: u16) -> Result<Duration, ProbeError> {
    let started = Instant::now();
    let stream = TcpStream::connect(SocketAddr::new(ip, port))
        .await
        .map_err(|e| ProbeError::connect(&e))?;
    let latency = started.elapsed();
    if let Err(err) = stream.set_zero_linger() {
        tracing::debug!(%ip, port, %err, "cannot set SO_LINGER 0 on a probe connection");
    }
    Ok(latency)
}
