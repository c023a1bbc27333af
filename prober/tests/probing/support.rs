//! Local listeners and helpers shared by the tests.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gtm_crds::template::HealthCheckTemplateSpec;
use gtm_prober::{ProbeContext, ProbeOutcome, ProbeReport};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A template spec from its JSON form, defaults filled in as the API server would.
pub(crate) fn spec(json: serde_json::Value) -> HealthCheckTemplateSpec {
    serde_json::from_value(json).expect("a valid template spec")
}

/// Probes `addr` once.
pub(crate) async fn probe_addr(spec: &HealthCheckTemplateSpec, addr: SocketAddr) -> ProbeOutcome {
    ProbeContext::new()
        .probe(spec, &addr.ip().to_string(), Some(addr.port()))
        .await
}

/// The failure message of an outcome, or a panic when it passed.
pub(crate) fn failure(outcome: &ProbeOutcome) -> String {
    match &outcome.result {
        Ok(()) => panic!("the probe passed: {outcome:?}"),
        Err(err) => err.to_string(),
    }
}

/// An address on 127.0.0.1 where nothing listens.
pub(crate) async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// A response of the test server.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn new(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }
}

/// A request the test server received: its head, and the TLS server name it was sent to.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    /// Request line and headers, lower-cased.
    pub(crate) head: String,
    pub(crate) sni: Option<String>,
}

impl Received {
    pub(crate) fn path(&self) -> &str {
        self.head.split(' ').nth(1).unwrap_or_default()
    }
}

type Handler = dyn Fn(&str) -> Reply + Send + Sync;

/// A minimal HTTP/1.1 server (one request per connection), plain or over TLS, listening on
/// the loopback address `localhost` resolves to first (as the prober resolves it).
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl TestServer {
    /// Answers each request with `handler(path)`.
    pub(crate) async fn http(handler: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Self {
        Self::start(None, Arc::new(handler)).await
    }

    /// The same over TLS with a self-signed certificate for `probe.test`.
    pub(crate) async fn https(handler: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Self {
        Self::start(Some(self_signed_acceptor()), Arc::new(handler)).await
    }

    /// The requests received so far.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    async fn start(tls: Option<TlsAcceptor>, handler: Arc<Handler>) -> Self {
        let listener = TcpListener::bind("localhost:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (tls, handler, log) = (tls.clone(), handler.clone(), log.clone());
                tokio::spawn(async move {
                    match tls {
                        None => serve(stream, None, &*handler, &log).await,
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(stream).await else {
                                return;
                            };
                            let sni = stream.get_ref().1.server_name().map(str::to_owned);
                            serve(stream, sni, &*handler, &log).await;
                        }
                    }
                });
            }
        });
        Self { addr, received }
    }
}

async fn serve(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    sni: Option<String>,
    handler: &Handler,
    log: &Mutex<Vec<Received>>,
) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    let received = Received { head, sni };
    let reply = handler(received.path().split('?').next().unwrap_or_default());
    log.lock().unwrap().push(received);
    let mut response = format!(
        "HTTP/1.1 {} Test\r\ncontent-length: {}\r\nconnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(&reply.body);
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn self_signed_acceptor() -> TlsAcceptor {
    let certified = rcgen::generate_simple_self_signed(vec!["probe.test".to_owned()]).unwrap();
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

/// A listener that accepts connections and never says a word.
pub(crate) struct SilentServer {
    pub(crate) addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl SilentServer {
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                open.push(stream);
            }
        });
        Self { addr, accepted }
    }

    /// Connections accepted so far.
    pub(crate) fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Long enough for any probe a test waits for, even on a loaded machine.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// Receives reports until one matches `wanted`, returning all received (the match last).
pub(crate) async fn reports_until(
    reports: &mut mpsc::Receiver<ProbeReport>,
    mut wanted: impl FnMut(&ProbeReport) -> bool,
) -> Vec<ProbeReport> {
    let mut seen = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while let Some(report) = reports.recv().await {
            let done = wanted(&report);
            seen.push(report);
            if done {
                return;
            }
        }
        panic!("the prober stopped reporting");
    })
    .await
    .unwrap_or_else(|_| panic!("no matching report; received: {seen:#?}"));
    seen
}
