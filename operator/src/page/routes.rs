//! The page's HTTP routes, all `GET` and all relative to where the page is served, so that it
//! works at the root of a port-forward and under a `kubectl proxy` path alike:
//!
//! - `/`, `/app.js`, `/style.css`: the page, embedded in the binary (plain HTML, CSS and
//!   JavaScript; nothing is fetched from elsewhere, and the Content-Security-Policy says so);
//! - `/topology.json`: the [`model`](super::model) once, for scripts and `curl`;
//! - `/events`: the model as server-sent events, one on connecting and one after each change.
//!
//! Both data routes take the filter as a query string (`namespace`, `state`, `q`); a bad
//! filter gets 400 with the reason.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::Stream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::model::{Filter, topology};
use super::{Snapshot, Snapshots};

/// Event streams open at once at most: each costs a model per change.
pub(crate) const MAX_VIEWERS: usize = 32;

/// How long a stream waits after a change before it sends, so that a burst of passes (a
/// failover writes several statuses) becomes one update.
const COALESCE: Duration = Duration::from_millis(200);

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/style.css");

/// Everything the page needs comes from its own origin; nothing may frame it.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

#[derive(Clone)]
struct PageState {
    snapshots: Snapshots,
    viewers: Arc<Semaphore>,
}

/// The page's routes over `snapshots`.
pub(crate) fn routes(snapshots: Snapshots) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route("/topology.json", get(topology_json))
        .route("/events", get(events))
        .with_state(PageState {
            snapshots,
            viewers: Arc::new(Semaphore::new(MAX_VIEWERS)),
        })
}

/// The headers every page response carries.
fn hardened(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    hardened(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// The model for a filter as JSON; `None` before the first snapshot.
fn render(snapshot: Option<&Snapshot>, filter: &Filter) -> Option<String> {
    let topology = topology(snapshot?, filter);
    Some(serde_json::to_string(&topology).expect("the model serializes"))
}

/// What a page shows before the operator's first pass.
const PENDING: &str = "the operator has not finished its first pass yet";

async fn topology_json(State(s): State<PageState>, Query(filter): Query<Filter>) -> Response {
    let snapshot = s.snapshots.borrow().clone();
    hardened(match render(snapshot.as_deref(), &filter) {
        Some(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, PENDING).into_response(),
    })
}

/// One open event stream.
struct Viewer {
    snapshots: Snapshots,
    filter: Filter,
    /// What it was sent last; `None` before the first event.
    sent: Option<String>,
    _permit: OwnedSemaphorePermit,
}

impl Viewer {
    /// The next event: at once for a new stream, else after the snapshot changed so that the
    /// model does (an unchanged model is not sent again). `None` when the operator stops.
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if self.sent.is_some() {
                self.snapshots.changed().await.ok()?;
                tokio::time::sleep(COALESCE).await;
            }
            let snapshot = self.snapshots.borrow_and_update().clone();
            let (name, data) = match render(snapshot.as_deref(), &self.filter) {
                Some(json) => ("topology", json),
                None => ("pending", PENDING.to_string()),
            };
            if self.sent.as_ref() != Some(&data) {
                self.sent = Some(data.clone());
                return Some((Ok(Event::default().event(name).data(data)), self));
            }
        }
    }
}

async fn events(State(s): State<PageState>, Query(filter): Query<Filter>) -> Response {
    let Ok(permit) = s.viewers.clone().try_acquire_owned() else {
        return hardened(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{MAX_VIEWERS} pages are open already; close one"),
            )
                .into_response(),
        );
    };
    let viewer = Viewer {
        snapshots: s.snapshots.clone(),
        filter,
        sent: None,
        _permit: permit,
    };
    let stream: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> =
        Box::pin(futures::stream::unfold(viewer, Viewer::next));
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response();
    // Proxies (nginx, and so some ingresses) would hold the stream back otherwise.
    response.headers_mut().insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    hardened(response)
}

#[cfg(test)]
mod tests;
