//! Binding the DNS listeners: every address gets a UDP socket and a TCP listener on the same
//! port, served by one hickory [`Server`].

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};

use crate::handler::GtmHandler;

/// Idle time after which a TCP connection without a request is closed.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Responses queued per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 64;
/// Attempts to find a port free for both UDP and TCP when port 0 is asked for.
const PORT_ATTEMPTS: usize = 20;

/// A running DNS server and the addresses it listens on.
pub struct DnsServer {
    /// The hickory server; use its `shutdown_token()` and `block_until_done()`.
    pub server: Server<GtmHandler>,
    /// The bound addresses (UDP and TCP share each one).
    pub addrs: Vec<SocketAddr>,
}

impl DnsServer {
    /// Binds UDP and TCP on every address and starts answering with `handler`. Port 0 picks a
    /// port free for both protocols.
    pub async fn bind(addrs: &[SocketAddr], handler: GtmHandler) -> io::Result<Self> {
        let mut server = Server::new(handler);
        let mut bound = Vec::with_capacity(addrs.len());
        for addr in addrs {
            let (udp, tcp) = bind_pair(*addr).await?;
            bound.push(udp.local_addr()?);
            server.register_socket(udp);
            server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
        }
        Ok(Self {
            server,
            addrs: bound,
        })
    }
}

async fn bind_pair(addr: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    let mut last_error = None;
    for _ in 0..PORT_ATTEMPTS {
        let udp = UdpSocket::bind(addr).await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no port free for UDP and TCP")))
}
