//! DNS over TCP with bounded resources: an accept loop of our own (hickory's accepts without
//! limit and retries at once when accept fails, which spins a core at the descriptor limit),
//! connections capped in total and per source ([`ConnectionGate`]), accept backed off while
//! the process is out of descriptors, and every message read and every response written within
//! the idle timeout (a client trickling bytes is cut off). Messages use the TCP framing of
//! RFC 1035 section 4.2.2 (a two-byte length, then the message), are answered one after the
//! other per connection, as UDP queries are (the fast path, else the full path) with a
//! 65 535-byte limit.
//!
//! A connection over a cap is accepted and closed at once, so the client learns it now and can
//! try another server, rather than waiting in the listen backlog.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_server::net::xfer::Protocol;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::dnstap::Transport;
use crate::handler::GtmHandler;

/// Default cap on open TCP connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Default cap on open TCP connections from one source (an IPv4 address, an IPv6 /64).
pub const DEFAULT_MAX_CONNECTIONS_PER_SOURCE: usize = 32;
/// Default time a connection may take to send one message or receive one response.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// First pause of the accept loop when the process is out of descriptors; it doubles up to
/// [`ACCEPT_BACKOFF_MAX`] and ends early when one of our connections closes.
const ACCEPT_BACKOFF_FIRST: Duration = Duration::from_millis(10);
/// Longest pause of the accept loop.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Read and write buffer of a connection: room for dozens of pipelined queries and answers.
const TCP_BUFFER: usize = 8192;

/// Limits of the TCP server (`docs/configuration.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpLimits {
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections from one source at most.
    pub max_connections_per_source: usize,
    /// Time one message may take to arrive, and one response to be taken by the client.
    pub idle_timeout: Duration,
}

impl Default for TcpLimits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_source: DEFAULT_MAX_CONNECTIONS_PER_SOURCE,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// The key connections are counted under: an IPv4 address (IPv4-mapped IPv6 included), or
/// the /64 of an IPv6 address (one host usually has a whole /64).
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

/// Why a connection was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The total cap is reached.
    #[error("{0} TCP connections open, the most allowed (--tcp-max-connections)")]
    Total(usize),
    /// The cap of the source is reached.
    #[error(
        "{0} TCP connections open from this source, the most allowed (--tcp-max-connections-per-source)"
    )]
    Source(usize),
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_source: HashMap<IpAddr, usize>,
}

/// Counts open connections, in total and per source, against [`TcpLimits`]. Only the accept
/// loop and closing connections touch it, never a query.
#[derive(Debug)]
pub struct ConnectionGate {
    limits: TcpLimits,
    open: Mutex<Open>,
    closed: Notify,
}

/// An admitted connection; dropping it counts the connection as closed.
#[derive(Debug)]
pub struct Admission {
    gate: Arc<ConnectionGate>,
    source: IpAddr,
}

impl ConnectionGate {
    /// A gate with nothing open.
    pub fn new(limits: TcpLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            open: Mutex::default(),
            closed: Notify::new(),
        })
    }

    /// Admits a connection from `ip` if both caps allow it.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admission, Refusal> {
        let source = source_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.total >= self.limits.max_connections {
            return Err(Refusal::Total(open.total));
        }
        let from_source = open.by_source.entry(source).or_default();
        if *from_source >= self.limits.max_connections_per_source {
            return Err(Refusal::Source(*from_source));
        }
        *from_source += 1;
        open.total += 1;
        Ok(Admission {
            gate: self.clone(),
            source,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total -= 1;
        if let Some(n) = open.by_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                open.by_source.remove(&self.source);
            }
        }
        drop(open);
        self.gate.closed.notify_waiters();
    }
}

/// Whether an accept error means the process or the system is out of a resource, so that
/// retrying at once would only spin.
fn is_exhaustion(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// The TCP listeners' tasks and the shutdown token every listener, UDP included, follows.
#[derive(Debug, Default)]
pub struct TcpServer {
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    /// One gate for every listener: the caps are the process's, whatever it listens on.
    gate: Option<Arc<ConnectionGate>>,
}

impl TcpServer {
    /// No listener yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves DNS on `listener` with `handler` until shutdown. Every listener shares the caps of
    /// the first one's `limits`: they count the process's connections, not one address's.
    pub fn register_listener(
        &mut self,
        listener: TcpListener,
        handler: GtmHandler,
        limits: TcpLimits,
    ) {
        let gate = self
            .gate
            .get_or_insert_with(|| ConnectionGate::new(limits))
            .clone();
        self.tasks
            .spawn(serve(listener, handler, gate, self.shutdown.clone()));
    }

    /// The token that stops every listener.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Waits until every listener has stopped (after the shutdown token is cancelled).
    pub async fn block_until_done(&mut self) -> Result<(), tokio::task::JoinError> {
        while let Some(result) = self.tasks.join_next().await {
            result?;
        }
        Ok(())
    }

    /// Cancels the shutdown token and waits until every listener has stopped.
    pub async fn shutdown_gracefully(&mut self) -> Result<(), tokio::task::JoinError> {
        self.shutdown.cancel();
        self.block_until_done().await
    }
}

/// The accept loop of one listener. Its connections end with it.
async fn serve(
    listener: TcpListener,
    handler: GtmHandler,
    gate: Arc<ConnectionGate>,
    shutdown: CancellationToken,
) {
    let mut connections = JoinSet::new();
    let mut backoff = ACCEPT_BACKOFF_FIRST;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        while connections.try_join_next().is_some() {}
        match accepted {
            Ok((stream, src)) => {
                backoff = ACCEPT_BACKOFF_FIRST;
                match gate.admit(src.ip()) {
                    Ok(admission) => {
                        send_at_once(&stream, src);
                        let handler = handler.clone();
                        let idle = gate.limits.idle_timeout;
                        connections.spawn(async move {
                            serve_connection(stream, src, &handler, idle).await;
                            drop(admission);
                        });
                    }
                    // Dropping the stream closes it.
                    Err(refusal) => tracing::debug!(%src, %refusal, "TCP connection refused"),
                }
            }
            Err(error) if is_exhaustion(&error) => {
                if backoff == ACCEPT_BACKOFF_FIRST {
                    tracing::warn!(%error, open = gate.open(), "cannot accept TCP connections; backing off until descriptors are free");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                    () = gate.closed.notified() => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
            }
            // The client went away before it was accepted, and the like.
            Err(error) => tracing::debug!(%error, "accepting a TCP connection failed"),
        }
    }
}

/// Turns Nagle's algorithm off for an accepted connection. Responses are already gathered in
/// the connection's buffer and written once no further query is buffered, so Nagle could only
/// delay them: a response written while the one before it is still unacknowledged would wait
/// for the client's acknowledgement, up to a round trip plus the client's delayed-ACK timer
/// (40 ms at least on Linux, up to 200 ms). A pipelining client meets that when its next query
/// arrives after the previous response was written but was sent before that response reached
/// it (on a link whose round trip is longer than the gap between two queries).
fn send_at_once(stream: &TcpStream, src: SocketAddr) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%src, %error, "cannot turn Nagle's algorithm off");
    }
}

/// Answers the messages of one connection in order until the client closes it, stalls or sends
/// something that is not a DNS message. Reads and writes are buffered: pipelined queries that
/// arrived together are answered from the buffer, and their responses written together, once
/// no further query is buffered (as Knot and gdnsd do), so a pipelining client costs a few
/// system calls per batch instead of several per query.
async fn serve_connection(
    mut stream: TcpStream,
    src: SocketAddr,
    handler: &GtmHandler,
    idle: Duration,
) {
    let (reader, writer) = stream.split();
    let mut reader = BufReader::with_capacity(TCP_BUFFER, reader);
    let mut writer = BufWriter::with_capacity(TCP_BUFFER, writer);
    let mut message = Vec::new();
    let mut response = Vec::with_capacity(512);
    loop {
        if !holds_message(reader.buffer())
            && !writer.buffer().is_empty()
            && !written(src, tokio::time::timeout(idle, writer.flush()).await)
        {
            return;
        }
        match tokio::time::timeout(idle, read_message(&mut reader, &mut message)).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                // The client closed its side; what it asked is still answered.
                let _ = tokio::time::timeout(idle, writer.flush()).await;
                return;
            }
            Ok(Err(error)) => {
                tracing::debug!(%src, %error, "TCP connection failed");
                // The messages before the bad one are still answered.
                let _ = tokio::time::timeout(idle, writer.flush()).await;
                return;
            }
            Err(_) => {
                tracing::debug!(%src, "TCP connection idle; closed");
                return;
            }
        }
        let received = handler.dnstap().map(|_| std::time::SystemTime::now());
        let answered = handler.answer_fast(&message, src, Protocol::Tcp, &mut response)
            || match crate::server::full_path(handler, &message, src, Protocol::Tcp).await {
                Some(full) => {
                    response = full;
                    true
                }
                None => false,
            };
        if let (Some(dnstap), Some(received)) = (handler.dnstap(), received) {
            let sent = answered.then_some(response.as_slice());
            dnstap.exchange(src, Transport::Tcp, received, &message, sent);
        }
        if !answered {
            continue;
        }
        let write = tokio::time::timeout(idle, write_message(&mut writer, &response)).await;
        if !written(src, write) {
            return;
        }
    }
}

/// Whether a write (or flush) to `src` within the idle timeout succeeded; logs why not.
fn written(src: SocketAddr, result: Result<io::Result<()>, tokio::time::error::Elapsed>) -> bool {
    match result {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::debug!(%src, %error, "TCP connection failed");
            false
        }
        Err(_) => {
            tracing::debug!(%src, "TCP client does not read; closed");
            false
        }
    }
}

/// Whether `buffered` bytes hold a whole length-prefixed message (so reading it cannot wait
/// for the client).
fn holds_message(buffered: &[u8]) -> bool {
    match buffered {
        [l0, l1, rest @ ..] => rest.len() >= usize::from(u16::from_be_bytes([*l0, *l1])),
        _ => false,
    }
}

/// Reads one length-prefixed message into `message`; false when the client closed the
/// connection between messages. An empty message is an error.
pub async fn read_message(
    stream: &mut (impl AsyncRead + Unpin),
    message: &mut Vec<u8>,
) -> io::Result<bool> {
    let mut length = [0u8; 2];
    match stream.read(&mut length[..1]).await? {
        0 => return Ok(false),
        _ => stream.read_exact(&mut length[1..]).await?,
    };
    let length = usize::from(u16::from_be_bytes(length));
    if length == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "empty DNS message",
        ));
    }
    message.resize(length, 0);
    stream.read_exact(message).await?;
    Ok(true)
}

/// Writes one length-prefixed message into the connection's buffer (of [`TCP_BUFFER`] bytes;
/// written out when it fills or is flushed). The length and its message reach TCP in one
/// write, as RFC 7766 section 8 asks, so that they leave in one segment: what the buffer holds
/// is written out first when the message does not fit beside it, and a message larger than
/// the whole buffer is written with its length at once.
async fn write_message<W: AsyncWrite + Unpin>(
    writer: &mut BufWriter<W>,
    response: &[u8],
) -> io::Result<()> {
    let length = u16::try_from(response.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "response above 65 535 bytes"))?
        .to_be_bytes();
    let framed = length.len() + response.len();
    if writer.buffer().len() + framed > TCP_BUFFER {
        writer.flush().await?;
    }
    if framed > TCP_BUFFER {
        return writer
            .get_mut()
            .write_all(&[&length[..], response].concat())
            .await;
    }
    writer.write_all(&length).await?;
    writer.write_all(response).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_source: usize) -> TcpLimits {
        TcpLimits {
            max_connections: total,
            max_connections_per_source: per_source,
            ..TcpLimits::default()
        }
    }

    #[test]
    fn sources_are_ipv4_addresses_and_ipv6_slash_64s() {
        let key = |s: &str| source_key(s.parse().unwrap()).to_string();
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
    }

    #[test]
    fn the_gate_caps_each_source_and_the_total_and_frees_on_drop() {
        let gate = ConnectionGate::new(limits(3, 2));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = gate.admit(a).unwrap();
        let a2 = gate.admit(a).unwrap();
        assert_eq!(gate.admit(a).unwrap_err(), Refusal::Source(2));
        let b1 = gate.admit(b).unwrap();
        assert_eq!(gate.admit(b).unwrap_err(), Refusal::Total(3));
        assert_eq!(gate.open(), 3);
        drop(a1);
        assert_eq!(gate.open(), 2);
        let b2 = gate.admit(b).unwrap();
        // Every source's count went back to zero and was forgotten.
        drop((a2, b1, b2));
        assert_eq!(gate.open(), 0);
        assert!(gate.open.lock().unwrap().by_source.is_empty());
    }

    #[test]
    fn a_buffer_holds_a_message_only_when_all_its_bytes_are_in() {
        assert!(!holds_message(&[]));
        assert!(!holds_message(&[0]));
        assert!(!holds_message(&[0, 3, 1, 2]));
        assert!(holds_message(&[0, 3, 1, 2, 3]));
        assert!(holds_message(&[0, 3, 1, 2, 3, 0]));
        assert!(holds_message(&[0, 0]), "empty: read_message fails at once");
    }

    #[tokio::test]
    async fn send_at_once_turns_nagle_off() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, src) = listener.accept().await.unwrap();
        assert!(!stream.nodelay().unwrap(), "Nagle is on by default");
        send_at_once(&stream, src);
        assert!(stream.nodelay().unwrap());
    }

    /// A connection's far end that keeps every write it is given apart.
    #[derive(Default)]
    struct Writes(Vec<Vec<u8>>);

    impl AsyncWrite for Writes {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<io::Result<usize>> {
            self.0.push(buf.to_vec());
            std::task::Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    /// Each message with its two-byte length in front.
    fn framed(messages: &[&[u8]]) -> Vec<u8> {
        messages
            .iter()
            .flat_map(|m| [&(m.len() as u16).to_be_bytes()[..], m].concat())
            .collect()
    }

    #[tokio::test]
    async fn a_length_and_its_message_are_written_together() {
        let mut writer = BufWriter::with_capacity(TCP_BUFFER, Writes::default());
        let (a, b, big) = ([1u8; 5000], [2u8; 4000], [3u8; TCP_BUFFER]);
        // 5 002 bytes buffered; 4 002 more do not fit beside them: the 5 002 go first, alone.
        write_message(&mut writer, &a).await.unwrap();
        write_message(&mut writer, &b).await.unwrap();
        // Larger than the whole buffer: what is buffered, then the message with its length.
        write_message(&mut writer, &big).await.unwrap();
        writer.flush().await.unwrap();
        let writes = &writer.get_ref().0;
        assert_eq!(
            writes,
            &[framed(&[&a]), framed(&[&b]), framed(&[&big])],
            "every write starts with a length and ends with its message"
        );
    }

    #[tokio::test]
    async fn messages_that_fit_share_one_write() {
        let mut writer = BufWriter::with_capacity(TCP_BUFFER, Writes::default());
        let (a, b) = ([1u8; 5000], [2u8; TCP_BUFFER - 5004]);
        write_message(&mut writer, &a).await.unwrap();
        write_message(&mut writer, &b).await.unwrap();
        writer.flush().await.unwrap();
        assert_eq!(writer.get_ref().0, [framed(&[&a, &b])]);
    }

    #[test]
    fn descriptor_exhaustion_is_told_apart_from_other_accept_errors() {
        assert!(is_exhaustion(&io::Error::from_raw_os_error(libc::EMFILE)));
        assert!(is_exhaustion(&io::Error::from_raw_os_error(libc::ENFILE)));
        assert!(!is_exhaustion(&io::Error::from_raw_os_error(
            libc::ECONNABORTED
        )));
    }
}
