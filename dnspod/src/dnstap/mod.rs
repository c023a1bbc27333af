//! dnstap: every query and response as `AUTH_QUERY` and `AUTH_RESPONSE` messages (the format
//! Knot, BIND, Unbound and gdnsd users already collect), in Frame Streams over a unix socket
//! that a collector listens on (`--dnstap-socket`); off unless set.
//!
//! It can never slow the answer path: when dnstap is on, a query's two messages (their DNS
//! bytes copied, nothing encoded) go to a bounded queue ([`QUEUE`] frames) without waiting;
//! a writer thread encodes them (protobuf, by prost) and sends them. Frames finding the queue full, or arriving while no collector is connected, are
//! dropped and counted (`gtm_dnspod_dnstap_dropped_total{reason}`). The writer connects,
//! and after a lost connection reconnects, every [`RETRY`].

mod frame_streams;
mod message;

use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use frame_streams::{Control, control, data, handshake};
pub use message::Transport;
use message::{Exchange, Header, Kind, encode, header};

/// Frames waiting for the writer at most (two per query).
pub const QUEUE: usize = 8192;
/// How long the writer waits before connecting again.
pub const RETRY: Duration = Duration::from_secs(1);
/// How long a write to the collector may block before the connection counts as lost.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings from the flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnstapSettings {
    /// The collector's unix socket.
    pub socket: PathBuf,
    /// The `identity` field of every message (the server's name).
    pub identity: String,
}

/// Labels of the dropped frames.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct DropLabels {
    /// `queue` (the writer fell behind) or `disconnected` (no collector connected).
    pub reason: &'static str,
}

/// dnstap's counters, registered whether it is on or not.
#[derive(Clone, Debug, Default)]
pub struct DnstapMetrics {
    /// Frames sent to the collector.
    pub sent: Counter,
    /// Frames dropped, by reason.
    pub dropped: Family<DropLabels, Counter>,
    /// 1 while a collector is connected.
    pub connected: Gauge,
}

/// The queue to the writer thread.
#[derive(Debug)]
pub struct Dnstap {
    queue: SyncSender<Exchange>,
    metrics: DnstapMetrics,
}

impl Dnstap {
    /// Starts the writer thread, which connects to the collector (now, and whenever the
    /// connection is lost).
    pub fn start(settings: &DnstapSettings, metrics: DnstapMetrics) -> std::io::Result<Self> {
        let (queue, frames) = sync_channel(QUEUE);
        let socket = settings.socket.clone();
        let writer_metrics = metrics.clone();
        let header = header(
            &settings.identity,
            concat!("kube-gtm ", env!("CARGO_PKG_VERSION")),
        );
        std::thread::Builder::new()
            .name("dnstap".into())
            .spawn(move || run(&socket, &header, &frames, &writer_metrics))?;
        Ok(Self { queue, metrics })
    }

    /// Queues the messages of one query from `client` over `transport` received at
    /// `received`: its `AUTH_QUERY`, and its `AUTH_RESPONSE` when it got one (sent now).
    pub fn exchange(
        &self,
        client: SocketAddr,
        transport: Transport,
        received: SystemTime,
        query: &[u8],
        response: Option<&[u8]>,
    ) {
        self.push(Exchange {
            kind: Kind::AuthQuery,
            client,
            transport,
            received,
            sent: received,
            message: query.to_vec(),
        });
        if let Some(response) = response {
            self.push(Exchange {
                kind: Kind::AuthResponse,
                client,
                transport,
                received,
                sent: SystemTime::now(),
                message: response.to_vec(),
            });
        }
    }

    fn push(&self, exchange: Exchange) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.queue.try_send(exchange)
        {
            self.metrics
                .dropped
                .get_or_create(&DropLabels { reason: "queue" })
                .inc();
        }
    }
}

/// The writer thread: connect, send until the connection is lost, wait [`RETRY`] (dropping
/// what arrives meanwhile), again; until the handler is gone.
fn run(socket: &Path, header: &Header, frames: &Receiver<Exchange>, metrics: &DnstapMetrics) {
    let mut warned = false;
    loop {
        match connect(socket) {
            Ok(stream) => {
                tracing::info!(socket = %socket.display(), "dnstap collector connected");
                warned = false;
                metrics.connected.set(1);
                let sent = send(stream, header, frames, &metrics.sent);
                metrics.connected.set(0);
                match sent {
                    Sent::Shutdown => return,
                    Sent::Lost(error) => {
                        tracing::warn!(socket = %socket.display(), %error, "dnstap collector lost; reconnecting");
                    }
                }
            }
            Err(error) if !warned => {
                tracing::warn!(socket = %socket.display(), %error, "dnstap collector not reachable; retrying every second");
                warned = true;
            }
            Err(_) => {}
        }
        let until = Instant::now() + RETRY;
        loop {
            match frames.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(_) => {
                    metrics
                        .dropped
                        .get_or_create(&DropLabels {
                            reason: "disconnected",
                        })
                        .inc();
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

/// A connected, handshaken collector.
fn connect(socket: &Path) -> std::io::Result<UnixStream> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(WRITE_TIMEOUT))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    handshake(&mut stream)?;
    Ok(stream)
}

/// How sending ended.
enum Sent {
    /// The handler is gone: STOP was sent.
    Shutdown,
    /// The connection failed.
    Lost(std::io::Error),
}

/// Encodes and sends messages as they come, flushing whenever the queue runs empty.
fn send(stream: UnixStream, header: &Header, frames: &Receiver<Exchange>, sent: &Counter) -> Sent {
    let mut out = BufWriter::new(stream);
    let mut framed = Vec::new();
    while let Ok(first) = frames.recv() {
        let mut next = Some(first);
        while let Some(exchange) = next {
            framed.clear();
            data(&mut framed, &encode(header, exchange));
            if let Err(error) = out.write_all(&framed) {
                return Sent::Lost(error);
            }
            sent.inc();
            next = frames.try_recv().ok();
        }
        if let Err(error) = out.flush() {
            return Sent::Lost(error);
        }
    }
    let _ = out
        .write_all(&control(Control::Stop))
        .and_then(|()| out.flush());
    Sent::Shutdown
}
