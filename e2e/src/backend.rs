//! `gtm-test-backend`: the backend the e2e tests health-check. Shipped in the kube-gtm image so
//! the tests need no other image.
//!
//! `GET /healthz` answers 200 until `POST /fail`, then 503 until `POST /recover`; `GET /` names
//! the backend. A tiny HTTP/1.1 server, one request per connection (`Connection: close`). The
//! local-mode tests can slow it down for one probe location ([`Backend::slow_for`]), which its
//! probes name in their User-Agent: that location's own network view, without `tc`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Shared state of one backend.
#[derive(Debug, Default)]
pub struct Backend {
    failing: AtomicBool,
    name: String,
    /// Delay of the answers to a probe location, by location name.
    slow: Mutex<BTreeMap<String, Duration>>,
}

impl Backend {
    /// A healthy backend that names itself `name` on `GET /`.
    pub fn new(name: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            failing: AtomicBool::new(false),
            name: name.into(),
            slow: Mutex::default(),
        })
    }

    /// Answers the probes of location `location` (User-Agent `... (location NAME)`) only
    /// after `delay`.
    pub fn slow_for(&self, location: &str, delay: Duration) {
        self.slow
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(location.into(), delay);
    }

    /// How long to hold the answer to a request with this head.
    fn delay(&self, head: &str) -> Option<Duration> {
        let agent = head.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("user-agent").then_some(value)
        })?;
        let location = agent.split("(location ").nth(1)?.split(')').next()?;
        self.slow
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(location)
            .copied()
    }

    /// Whether `/healthz` fails now.
    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::SeqCst)
    }

    /// The response (status, body) to a request line's method and path.
    pub fn respond(&self, method: &str, path: &str) -> (u16, String) {
        let path = path.split('?').next().unwrap_or(path);
        match (method, path) {
            ("GET" | "HEAD", "/healthz") if self.is_failing() => (503, "failing\n".into()),
            ("GET" | "HEAD", "/healthz") => (200, "ok\n".into()),
            ("POST", "/fail") => {
                self.failing.store(true, Ordering::SeqCst);
                (200, "failing\n".into())
            }
            ("POST", "/recover") => {
                self.failing.store(false, Ordering::SeqCst);
                (200, "ok\n".into())
            }
            ("GET" | "HEAD", "/") => (200, format!("gtm-test-backend {}\n", self.name)),
            (_, "/healthz" | "/fail" | "/recover" | "/") => (405, "method not allowed\n".into()),
            _ => (404, "not found\n".into()),
        }
    }
}

/// A backend serving on one address in this process until killed, for the local-mode tests.
pub struct Listener {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// Its state.
    pub backend: Arc<Backend>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Listener {
    /// Starts listening on `addr`.
    pub async fn start(addr: std::net::SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let backend = Backend::new(addr.to_string());
        let task = tokio::spawn(serve(listener, backend.clone()));
        Ok(Self {
            addr,
            backend,
            task: Some(task),
        })
    }

    /// Stops listening: probes get "connection refused".
    pub async fn kill(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same address.
    pub async fn restart(&mut self) -> std::io::Result<()> {
        *self = Self::start(self.addr).await?;
        Ok(())
    }
}

/// Serves `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, backend: Arc<Backend>) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let backend = backend.clone();
        tokio::spawn(async move {
            // A client that hangs up mid-request is its own problem.
            let _ = handle(stream, &backend).await;
        });
    }
}

async fn handle(mut stream: TcpStream, backend: &Backend) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    // Read the request head; bodies (none expected) are ignored.
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request head"))??;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 16 * 1024 {
            return write(&mut stream, 431, "request header too large\n", false).await;
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let (status, body) = backend.respond(method, path);
    if let Some(delay) = backend.delay(&head) {
        tokio::time::sleep(delay).await;
    }
    write(&mut stream, status, &body, method == "HEAD").await
}

async fn write(
    stream: &mut TcpStream,
    status: u16,
    body: &str,
    head_only: bool,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    };
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        response.push_str(body);
    }
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    async fn start() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, Backend::new("eu-west-1a")));
        addr
    }

    /// One raw HTTP/1.1 request over a real socket; returns (status, body).
    async fn request(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let req = format!("{method} {path} HTTP/1.1\r\nhost: test\r\ncontent-length: 0\r\n\r\n");
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
        let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
        (status, body)
    }

    #[tokio::test]
    async fn healthz_fails_after_post_fail_and_recovers_after_post_recover() {
        let addr = start().await;
        assert_eq!(request(addr, "GET", "/healthz").await, (200, "ok\n".into()));
        assert_eq!(request(addr, "POST", "/fail").await.0, 200);
        assert_eq!(
            request(addr, "GET", "/healthz").await,
            (503, "failing\n".into())
        );
        assert_eq!(
            request(addr, "GET", "/healthz").await.0,
            503,
            "stays failing"
        );
        assert_eq!(request(addr, "POST", "/recover").await.0, 200);
        assert_eq!(request(addr, "GET", "/healthz").await, (200, "ok\n".into()));
    }

    #[tokio::test]
    async fn root_names_the_backend_and_unknown_paths_are_404() {
        let addr = start().await;
        assert_eq!(
            request(addr, "GET", "/").await,
            (200, "gtm-test-backend eu-west-1a\n".into())
        );
        assert_eq!(request(addr, "GET", "/nope").await.0, 404);
        assert_eq!(
            request(addr, "GET", "/fail").await.0,
            405,
            "failing takes a POST"
        );
        assert_eq!(request(addr, "GET", "/healthz?probe=1").await.0, 200);
    }

    #[tokio::test]
    async fn a_slowed_location_waits_and_the_others_do_not() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let backend = Backend::new("b");
        backend.slow_for("us", std::time::Duration::from_millis(300));
        tokio::spawn(serve(listener, backend));
        let timed = |agent: &'static str| async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let req = format!("GET /healthz HTTP/1.1\r\nuser-agent: {agent}\r\n\r\n");
            let started = std::time::Instant::now();
            stream.write_all(req.as_bytes()).await.unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).await.unwrap();
            assert!(response.starts_with("HTTP/1.1 200"), "{response}");
            started.elapsed()
        };
        assert!(timed("kube-gtm-prober/0.1.0 (location us)").await >= Duration::from_millis(300));
        assert!(timed("kube-gtm-prober/0.1.0 (location eu)").await < Duration::from_millis(300));
    }

    #[tokio::test]
    async fn head_has_no_body() {
        let addr = start().await;
        let (status, body) = request(addr, "HEAD", "/healthz").await;
        assert_eq!((status, body.as_str()), (200, ""));
    }

    #[tokio::test]
    async fn a_client_that_hangs_up_does_not_stop_the_server() {
        let addr = start().await;
        drop(TcpStream::connect(addr).await.unwrap());
        assert_eq!(request(addr, "GET", "/healthz").await.0, 200);
    }
}
