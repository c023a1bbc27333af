//! The HTTP endpoint: `/metrics` (OpenMetrics text), `/healthz` (the process runs) and
//! `/readyz` (a config is being served, and its source not stale for longer than the
//! [`StalePolicy`] allows: [`crate::readiness`]).

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::readiness::StalePolicy;
use crate::state::Shared;

/// What the handlers read.
#[derive(Clone)]
struct Endpoint {
    shared: Arc<Shared>,
    policy: StalePolicy,
}

/// The router over the shared state, `/readyz` under `policy`.
pub fn router(shared: Arc<Shared>, policy: StalePolicy) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(Endpoint { shared, policy })
}

async fn metrics(State(Endpoint { shared, .. }): State<Endpoint>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared.metrics.encode(),
    )
}

async fn readyz(State(Endpoint { shared, policy }): State<Endpoint>) -> impl IntoResponse {
    let readiness = shared.readiness(policy, Instant::now());
    let code = if readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, format!("{readiness}\n"))
}

/// Serves the endpoints on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    policy: StalePolicy,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(shared, policy))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
