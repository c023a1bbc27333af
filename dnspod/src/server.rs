//! Binding the DNS listeners: every address gets a UDP socket and a TCP listener on the same
//! port. TCP is served by [`crate::tcp`] (connections capped). UDP is served here, by threads blocked on the
//! socket as in the fastest authoritative servers: each reads the queries queued (on Linux up to
//! [`UDP_BATCH`] with one `recvmmsg`), answers the common queries on the handler's fast path and the
//! rest on its full path, and sends the responses (one `sendmmsg`). Per query that saves
//! hickory's task and channel and most system calls, which dominate under load. Both stop on
//! the TCP server's shutdown token. A blocked UDP thread wakes only for queries: at shutdown
//! (or when the runtime that serves TCP goes away) the socket's reading side is shut, which
//! returns every blocked read at once (Linux; elsewhere the threads look at the token five
//! times a second).
//!
//! Over UDP only queries get a response (never a message with QR set, decodable or not: that
//! would reflect), within the handler's size cap, and only as the response rate limiter allows
//! ([`GtmHandler::rate_limit`]): a limited response is dropped or slips out as an empty
//! truncated answer.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{Header, MessageType, ResponseCode};
use hickory_server::proto::rr::Record;
use hickory_server::proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder, Queries};
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

use crate::dnstap::Transport;
use crate::handler::GtmHandler;
use crate::rrl::{self, Tick, Verdict};
use crate::tcp::{TcpLimits, TcpServer};

/// Attempts to find a port free for both UDP and TCP when port 0 is asked for.
const PORT_ATTEMPTS: usize = 20;

/// A running DNS server and the addresses it listens on.
pub struct DnsServer {
    /// The TCP listeners; use its `shutdown_token()` (which stops UDP too) and
    /// `block_until_done()`.
    pub server: TcpServer,
    /// The bound addresses (UDP and TCP share each one).
    pub addrs: Vec<SocketAddr>,
}

impl DnsServer {
    /// Binds UDP and TCP on every address and starts answering with `handler`, with the
    /// default [`TcpLimits`]. Port 0 picks a port free for both protocols.
    pub async fn bind(addrs: &[SocketAddr], handler: GtmHandler) -> io::Result<Self> {
        Self::bind_limited(addrs, handler, TcpLimits::default()).await
    }

    /// As [`DnsServer::bind`], with TCP connections within `tcp_limits`.
    pub async fn bind_limited(
        addrs: &[SocketAddr],
        handler: GtmHandler,
        tcp_limits: TcpLimits,
    ) -> io::Result<Self> {
        let mut server = TcpServer::new();
        let shutdown = server.shutdown_token().clone();
        // One UDP thread per core the process may use.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut bound = Vec::with_capacity(addrs.len());
        for addr in addrs {
            let (udp, tcp) = bind_pair(*addr).await?;
            bound.push(udp.local_addr()?);
            let udp = udp.into_std()?;
            udp.set_nonblocking(false)?;
            wake_at_shutdown(&udp, shutdown.clone())?;
            let runtime = tokio::runtime::Handle::current();
            for _ in 0..threads {
                let socket = udp.try_clone()?;
                let (handler, shutdown, runtime) =
                    (handler.clone(), shutdown.clone(), runtime.clone());
                std::thread::Builder::new()
                    .name("gtm-dnspod-udp".into())
                    .spawn(move || serve_udp(&socket, &handler, &shutdown, &runtime))?;
            }
            server.register_listener(tcp, handler.clone(), tcp_limits);
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

/// Largest UDP query read; longer datagrams arrive truncated and are answered FORMERR.
const UDP_BUFFER: usize = 4096;
/// Queries read, answered and sent together.
pub const UDP_BATCH: usize = 32;
/// How often a UDP thread blocked on its socket looks at the shutdown token, where shutting the
/// socket's reading side does not wake it.
#[cfg(not(target_os = "linux"))]
const UDP_SHUTDOWN_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// Makes the UDP threads blocked on `socket` return when `shutdown` is cancelled, or when the
/// runtime is dropped before: a task holds a [`ReadShutter`] until then. No timer wakes them
/// meanwhile, so an idle pod's answering threads sleep until a query comes.
#[cfg(target_os = "linux")]
fn wake_at_shutdown(socket: &std::net::UdpSocket, shutdown: CancellationToken) -> io::Result<()> {
    let shutter = ReadShutter(socket.try_clone()?);
    tokio::spawn(async move {
        shutdown.cancelled().await;
        drop(shutter);
    });
    Ok(())
}

/// Where a blocked read cannot be woken, the UDP threads look at the token now and then.
#[cfg(not(target_os = "linux"))]
fn wake_at_shutdown(socket: &std::net::UdpSocket, _shutdown: CancellationToken) -> io::Result<()> {
    socket.set_read_timeout(Some(UDP_SHUTDOWN_POLL))
}

/// Shuts the reading side of a UDP socket when dropped. On Linux that returns every read
/// blocked on the socket, and every later one, at once with an empty message from no sender
/// (`shutdown` itself reports `ENOTCONN` for an unconnected socket, but wakes the readers).
#[cfg(target_os = "linux")]
struct ReadShutter(std::net::UdpSocket);

#[cfg(target_os = "linux")]
impl Drop for ReadShutter {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        let _ = nix::sys::socket::shutdown(self.0.as_raw_fd(), nix::sys::socket::Shutdown::Read);
    }
}

/// Answers one UDP query into `response` at `now` (for the rate limiter); false when it gets
/// no response.
fn answer_udp(
    handler: &GtmHandler,
    runtime: &tokio::runtime::Handle,
    packet: &[u8],
    src: SocketAddr,
    now: Option<Tick>,
    response: &mut Vec<u8>,
) -> bool {
    // As hickory: never answer towards port 0 or an unspecified address.
    if src.port() == 0 || src.ip().is_unspecified() {
        return false;
    }
    // Only queries are answered: no header, or QR set, gets nothing.
    if packet.len() < 12 || packet[2] & 0x80 != 0 {
        return false;
    }
    let Some(dnstap) = handler.dnstap() else {
        return respond_udp(handler, runtime, packet, src, now, response);
    };
    let received = std::time::SystemTime::now();
    let answered = respond_udp(handler, runtime, packet, src, now, response);
    let sent = answered.then_some(response.as_slice());
    dnstap.exchange(src, Transport::Udp, received, packet, sent);
    answered
}

/// Answers one UDP query (from a valid source, with QR clear) into `response`, as the rate
/// limiter allows; false when it gets no response.
fn respond_udp(
    handler: &GtmHandler,
    runtime: &tokio::runtime::Handle,
    packet: &[u8],
    src: SocketAddr,
    now: Option<Tick>,
    response: &mut Vec<u8>,
) -> bool {
    match handler.rate_limit(src.ip(), now) {
        Verdict::Send => {}
        Verdict::Slip => return rrl::write_slip(packet, response),
        Verdict::Drop => return false,
    }
    if handler.answer_fast(packet, src, Protocol::Udp, response) {
        return true;
    }
    // The full path awaits nothing but its own encoding; no I/O driver is needed.
    match runtime.block_on(full_path(handler, packet, src, Protocol::Udp)) {
        Some(bytes) => {
            *response = bytes;
            true
        }
        None => false,
    }
}

/// Serves the UDP queries of the blocking `socket` until `shutdown` or until its reading side is
/// shut ([`ReadShutter`]): a batch at a time with `recvmmsg` and `sendmmsg`.
#[cfg(target_os = "linux")]
fn serve_udp(
    socket: &std::net::UdpSocket,
    handler: &GtmHandler,
    shutdown: &CancellationToken,
    runtime: &tokio::runtime::Handle,
) {
    use std::io::{IoSlice, IoSliceMut};
    use std::os::fd::AsRawFd;

    use nix::errno::Errno;
    use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};

    let fd = socket.as_raw_fd();
    let mut buffers = vec![vec![0u8; UDP_BUFFER]; UDP_BATCH];
    let mut responses: Vec<Vec<u8>> = (0..UDP_BATCH).map(|_| Vec::with_capacity(512)).collect();
    let mut received: Vec<(usize, Option<SocketAddr>)> = Vec::with_capacity(UDP_BATCH);
    let mut destinations: Vec<Option<SockaddrStorage>> = Vec::with_capacity(UDP_BATCH);
    let mut recv_headers = MultiHeaders::<SockaddrStorage>::preallocate(UDP_BATCH, None);
    let mut send_headers = MultiHeaders::<SockaddrStorage>::preallocate(UDP_BATCH, None);
    while !shutdown.is_cancelled() {
        received.clear();
        {
            let mut slices: Vec<[IoSliceMut<'_>; 1]> =
                buffers.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
            // Blocks until one query is queued, then takes every one queued, up to the batch.
            match recvmmsg(
                fd,
                &mut recv_headers,
                slices.iter_mut(),
                MsgFlags::MSG_WAITFORONE,
                None,
            ) {
                Ok(messages) => received.extend(messages.map(|m| {
                    let src =
                        m.address
                            .and_then(|a| match (a.as_sockaddr_in(), a.as_sockaddr_in6()) {
                                (Some(v4), _) => Some(SocketAddr::V4((*v4).into())),
                                (None, Some(v6)) => Some(SocketAddr::V6((*v6).into())),
                                _ => None,
                            });
                    (m.bytes, src)
                })),
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                Err(error) => {
                    tracing::debug!(%error, "receiving UDP queries failed");
                    continue;
                }
            }
        }
        // A datagram always has a sender: an empty read from none is the shut socket.
        if received.first() == Some(&(0, None)) {
            break;
        }
        destinations.clear();
        let now = handler.rate_limit_now();
        for (buffer, &(len, src)) in buffers.iter().zip(&received) {
            let Some(src) = src else { continue };
            let response = &mut responses[destinations.len()];
            if answer_udp(handler, runtime, &buffer[..len], src, now, response) {
                destinations.push(Some(SockaddrStorage::from(src)));
            }
        }
        let slices: Vec<[IoSlice<'_>; 1]> = responses[..destinations.len()]
            .iter()
            .map(|r| [IoSlice::new(r)])
            .collect();
        let mut sent = 0;
        while sent < slices.len() {
            let no_cmsgs: [nix::sys::socket::ControlMessage<'_>; 0] = [];
            match sendmmsg(
                fd,
                &mut send_headers,
                &slices[sent..],
                &destinations[sent..],
                no_cmsgs,
                MsgFlags::empty(),
            ) {
                Ok(results) => sent += results.count().max(1),
                Err(Errno::EINTR) => {}
                Err(error) => {
                    // The first message failed (e.g. its destination is unreachable): skip it.
                    tracing::debug!(%error, "sending a UDP response failed");
                    sent += 1;
                }
            }
        }
    }
}

/// Serves the UDP queries of the blocking `socket` until `shutdown`, one at a time (systems
/// without `recvmmsg`).
#[cfg(not(target_os = "linux"))]
fn serve_udp(
    socket: &std::net::UdpSocket,
    handler: &GtmHandler,
    shutdown: &CancellationToken,
    runtime: &tokio::runtime::Handle,
) {
    let mut buffer = vec![0; UDP_BUFFER];
    let mut response = Vec::with_capacity(512);
    while !shutdown.is_cancelled() {
        let (len, src) = match socket.recv_from(&mut buffer) {
            Ok(received) => received,
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(error) => {
                tracing::debug!(%error, "receiving a UDP query failed");
                continue;
            }
        };
        let now = handler.rate_limit_now();
        if answer_udp(handler, runtime, &buffer[..len], src, now, &mut response) {
            if let Err(error) = socket.send_to(&response, src) {
                tracing::debug!(%error, %src, "sending a UDP response failed");
            }
        }
    }
}

/// A query (UDP, or one TCP message) through hickory's decoder and the handler's full path: no
/// response to fewer than 12 bytes or to a response, FORMERR (counted) when a query does not
/// decode. Returns the encoded response, within the UDP limits or 65 535 bytes over TCP.
pub async fn full_path(
    handler: &GtmHandler,
    packet: &[u8],
    src: SocketAddr,
    protocol: Protocol,
) -> Option<Vec<u8>> {
    let started = std::time::Instant::now();
    let header = Header::read(&mut BinDecoder::new(packet)).ok()?;
    if header.metadata.message_type == MessageType::Response {
        return None;
    }
    match Request::from_bytes(packet.to_vec(), src, protocol) {
        Ok(request) => {
            let max = match protocol {
                Protocol::Udp => handler
                    .udp_limits()
                    .response_size(request.edns.as_ref().map(|e| e.max_payload())),
                _ => u16::MAX,
            };
            let capture = Capture::new(max);
            handler
                .handle_request::<_, TokioTime>(&request, capture.clone())
                .await;
            capture.take()
        }
        Err(error) => {
            tracing::debug!(%error, %src, %protocol, "undecodable query");
            let queries = Queries::read(&mut BinDecoder::new(&[]), 0).ok()?;
            let response = MessageResponseBuilder::new(&queries, None)
                .error_msg(&header.metadata, ResponseCode::FormErr);
            let mut capture = Capture::new(512);
            capture.send_response(response).await.ok()?;
            handler.count_undecodable(started);
            capture.take()
        }
    }
}

/// A [`ResponseHandler`] that keeps the encoded response instead of sending it.
#[derive(Clone)]
struct Capture {
    max_size: u16,
    bytes: Arc<Mutex<Option<Vec<u8>>>>,
}

impl Capture {
    fn new(max_size: u16) -> Self {
        Self {
            max_size,
            bytes: Arc::default(),
        }
    }

    fn take(&self) -> Option<Vec<u8>> {
        self.bytes.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

#[async_trait::async_trait]
impl ResponseHandler for Capture {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let mut bytes = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(self.max_size);
        let info = response.destructive_emit(&mut encoder)?;
        *self.bytes.lock().unwrap_or_else(|e| e.into_inner()) = Some(bytes);
        Ok(info)
    }
}
