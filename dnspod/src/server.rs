//! Binding the DNS listeners: every address gets a UDP socket and a TCP listener on the same
//! port. TCP is served by a hickory [`Server`]; UDP by [`serve_udp`] here, which answers plain
//! queries on the handler's fast path and hands the rest to the handler's full path, in the
//! receiving task, without a task and a channel per query as hickory's UDP server has. Both
//! stop on the hickory server's shutdown token.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_server::Server;
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
        let mut server = Server::new(handler.clone());
        let shutdown = server.shutdown_token().clone();
        let tasks = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut bound = Vec::with_capacity(addrs.len());
        for addr in addrs {
            let (udp, tcp) = bind_pair(*addr).await?;
            bound.push(udp.local_addr()?);
            let udp = Arc::new(udp);
            // Several receivers on one socket, so that every runtime worker can answer.
            for _ in 0..tasks {
                tokio::spawn(serve_udp(udp.clone(), handler.clone(), shutdown.clone()));
            }
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

/// Largest UDP datagram read.
const UDP_BUFFER: usize = 65_535;
/// Queries read before their responses are sent. Answering what is queued in a burst, as
/// servers with `recvmmsg`/`sendmmsg` do, means fewer wake-ups of the clients' receivers, which
/// cost more than the answers under load.
const UDP_BATCH: usize = 32;

/// Answers the UDP queries of `socket` until `shutdown`.
async fn serve_udp(socket: Arc<UdpSocket>, handler: GtmHandler, shutdown: CancellationToken) {
    let mut buffer = vec![0; UDP_BUFFER];
    let mut responses: Vec<(Vec<u8>, SocketAddr)> = (0..UDP_BATCH)
        .map(|_| (Vec::with_capacity(512), SocketAddr::from(([0, 0, 0, 0], 0))))
        .collect();
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            ready = socket.readable() => if let Err(error) = ready {
                tracing::warn!(%error, "UDP socket failed");
                break;
            },
        }
        let mut pending = 0;
        while pending < UDP_BATCH {
            let (len, src) = match socket.try_recv_from(&mut buffer) {
                Ok(received) => received,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) => {
                    tracing::debug!(%error, "receiving a UDP query failed");
                    continue;
                }
            };
            // As hickory: never answer towards port 0 or an unspecified address.
            if src.port() == 0 || src.ip().is_unspecified() {
                continue;
            }
            let packet = &buffer[..len];
            let (response, dst) = &mut responses[pending];
            if !handler.answer_plain_udp(packet, src, response) {
                match full_path(&handler, packet, src).await {
                    Some(bytes) => *response = bytes,
                    None => continue,
                }
            }
            *dst = src;
            pending += 1;
        }
        for (response, dst) in &responses[..pending] {
            let sent = match socket.try_send_to(response, *dst) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    socket.send_to(response, *dst).await
                }
                other => other,
            };
            if let Err(error) = sent {
                tracing::debug!(%error, %dst, "sending a UDP response failed");
            }
        }
    }
}

/// A UDP query through hickory's decoder and the handler's full path, as hickory's own UDP
/// server does it: no response to fewer than 12 bytes or to a response, FORMERR when the
/// message does not decode. Returns the encoded response.
async fn full_path(handler: &GtmHandler, packet: &[u8], src: SocketAddr) -> Option<Vec<u8>> {
    let header = Header::read(&mut BinDecoder::new(packet)).ok()?;
    match Request::from_bytes(packet.to_vec(), src, Protocol::Udp) {
        Ok(request) => {
            if request.metadata.message_type == MessageType::Response {
                return None;
            }
            let max = request
                .edns
                .as_ref()
                .map_or(512, |e| e.max_payload().max(512));
            let capture = Capture::new(max);
            handler
                .handle_request::<_, TokioTime>(&request, capture.clone())
                .await;
            capture.take()
        }
        Err(error) => {
            tracing::debug!(%error, %src, "undecodable UDP query");
            let queries = Queries::read(&mut BinDecoder::new(&[]), 0).ok()?;
            let response = MessageResponseBuilder::new(&queries, None)
                .error_msg(&header.metadata, ResponseCode::FormErr);
            let mut capture = Capture::new(512);
            capture.send_response(response).await.ok()?;
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
