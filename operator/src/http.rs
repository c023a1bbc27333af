//! The operator's HTTP endpoint: `/metrics` (OpenMetrics text), `/healthz` (the process runs),
//! `/readyz` (the watches have synced and the CRDs are established, or in local mode the first
//! pass is done), as `gtm-prober` serves them ([`gtm_prober::http`]), and the topology page at
//! `/` ([`crate::page`]) unless it is turned off.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::page::Snapshots;
use crate::page::routes::routes;

/// What the endpoints read.
#[derive(Clone)]
pub(crate) struct HttpState {
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// Set once the operator is ready.
    pub ready: Arc<AtomicBool>,
    /// What the topology page shows; no page when `None`.
    pub page: Option<Snapshots>,
}

/// The routes.
pub(crate) fn router(state: HttpState) -> Router {
    let router = gtm_prober::http::router(gtm_prober::http::HttpState {
        metrics: state.metrics,
        ready: state.ready,
    });
    match state.page {
        Some(snapshots) => router.merge(routes(snapshots)),
        None => router,
    }
}

/// Binds `addr` (a port of 0 picks a free one); fails at once when it cannot.
pub(crate) async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr} (--http-listen)"))
}

/// Serves the endpoints on `listener` until `shutdown` is cancelled.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    state: HttpState,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    if state.page.is_some() {
        tracing::info!(%addr, "serving /metrics, /healthz, /readyz and the topology page at http://{addr}/");
    } else {
        tracing::info!(%addr, "serving /metrics, /healthz, /readyz");
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/healthz` and `/readyz` are `gtm_prober::http`'s, tested there; this pins that the
    /// operator's router serves the operator's own registry.
    #[tokio::test]
    async fn metrics_are_the_operators_over_a_real_socket() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let state = HttpState {
            metrics: Arc::new(Metrics::new()),
            ready: Arc::new(AtomicBool::new(false)),
            page: None,
        };
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, state, CancellationToken::new()));
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut metrics = String::new();
        s.read_to_string(&mut metrics).await.unwrap();
        assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
        assert!(
            metrics.contains("# TYPE gtm_operator_leader gauge"),
            "{metrics}"
        );
        assert!(metrics.contains("# EOF"));
    }
}
