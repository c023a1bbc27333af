//! The HTTP endpoint of the operator and of `gtm-prober`: `/metrics` (OpenMetrics text),
//! `/healthz` (the process runs), `/readyz` (the process says it is ready: the operator once its
//! watches have synced and the CRDs are established, `gtm-prober` once it has read a config).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

/// Metrics that can be written in the OpenMetrics text format.
pub trait Exposition: Send + Sync + 'static {
    /// The metrics as OpenMetrics text.
    fn encode(&self) -> String;
}

/// A metrics registry in the OpenMetrics text format.
pub fn encode(registry: &prometheus_client::registry::Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)
        .expect("writing to a String cannot fail");
    out
}

/// What the endpoints read.
#[derive(Clone)]
pub struct HttpState {
    /// The metrics.
    pub metrics: Arc<dyn Exposition>,
    /// Set once the process is ready.
    pub ready: Arc<AtomicBool>,
}

/// The routes: `/metrics`, `/healthz`, `/readyz` (other routes can be merged in).
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics(State(s): State<HttpState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}

async fn readyz(State(s): State<HttpState>) -> impl IntoResponse {
    if s.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

/// Serves the endpoints on `addr` until `shutdown` is cancelled.
pub async fn serve(
    addr: SocketAddr,
    state: HttpState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;

    impl Exposition for Fixed {
        fn encode(&self) -> String {
            "# TYPE gtm_test_up gauge\ngtm_test_up 1\n# EOF\n".into()
        }
    }

    #[tokio::test]
    async fn endpoints_answer_over_a_real_socket() {
        let state = HttpState {
            metrics: Arc::new(Fixed),
            ready: Arc::new(AtomicBool::new(false)),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let get = |path: &'static str| async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        assert!(get("/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get("/readyz").await.starts_with("HTTP/1.1 503"));
        state.ready.store(true, Ordering::Release);
        assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
        let metrics = get("/metrics").await;
        assert!(metrics.contains("gtm_test_up 1\n# EOF"), "{metrics}");
        assert!(
            metrics.contains("application/openmetrics-text"),
            "{metrics}"
        );
    }
}
