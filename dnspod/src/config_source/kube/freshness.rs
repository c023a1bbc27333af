//! Whether the API server behind the ConfigMap source is reachable: the DNS pod keeps answering
//! its last config and health while it is not (readiness per [`StalePolicy`]: ready by
//! default), and says so with a log line and `gtm_dnspod_config_source_stale`, so that a stale
//! pod is visible. [`monitor`] probes the
//! API on its own schedule, apart from the watch (which resumes by itself): an idle watch shows
//! neither an outage nor a recovery. [`Freshness`] is the pure bookkeeping.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use tokio_util::sync::CancellationToken;

use crate::readiness::StalePolicy;
use crate::state::Shared;

/// How often the source is probed (a one-item list of the payload ConfigMaps), so that an
/// outage is seen even while the watch is idle, and a recovery even when nothing changed.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// How long one probe may take before it counts as failed.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Probes the API server every [`PROBE_INTERVAL`] with a one-item list of the payload
/// ConfigMaps (`selector`), which the DNS pods' role allows, and reports every change of
/// freshness, and the moment `policy` makes the pod unready, until `shutdown`.
pub async fn monitor(
    api: Api<ConfigMap>,
    selector: String,
    shared: Arc<Shared>,
    policy: StalePolicy,
    shutdown: CancellationToken,
) {
    let params = ListParams::default().labels(&selector).limit(1);
    let mut freshness = Freshness::default();
    let mut unready_logged = false;
    loop {
        let ok = matches!(
            tokio::time::timeout(PROBE_TIMEOUT, api.list_metadata(&params)).await,
            Ok(Ok(_))
        );
        match freshness.observe(ok, Instant::now()) {
            Some(Transition::BecameStale) => tracing::warn!(
                "the Kubernetes API is unreachable: answering from the last config and health until it returns"
            ),
            Some(Transition::BecameFresh { stale_for }) => {
                tracing::info!(?stale_for, "the Kubernetes API is reachable again")
            }
            None => {}
        }
        shared.set_source_stale_since(freshness.stale_since);
        let unready = !shared.readiness(policy, Instant::now()).is_ready() && freshness.is_stale();
        if unready && !unready_logged {
            tracing::warn!(
                unready_after = ?policy.unready_after,
                "stale beyond --unready-after-stale-seconds: /readyz fails until the Kubernetes API returns; answers go on"
            );
        }
        unready_logged = unready;
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(PROBE_INTERVAL) => {}
        }
    }
}

/// A change of freshness worth a log line and a metric update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// The API server stopped answering: the last config keeps serving.
    BecameStale,
    /// It answers again; `stale_for` is how long it did not.
    BecameFresh {
        /// Time since the first failure.
        stale_for: Duration,
    },
}

/// The source's freshness: fresh until a contact fails, stale until one succeeds.
#[derive(Debug, Default)]
pub(crate) struct Freshness {
    stale_since: Option<Instant>,
}

impl Freshness {
    /// Records one contact with the API server (a watch event or a probe) at `now`.
    pub(crate) fn observe(&mut self, ok: bool, now: Instant) -> Option<Transition> {
        match (ok, self.stale_since) {
            (false, None) => {
                self.stale_since = Some(now);
                Some(Transition::BecameStale)
            }
            (true, Some(since)) => {
                self.stale_since = None;
                Some(Transition::BecameFresh {
                    stale_for: now.saturating_duration_since(since),
                })
            }
            _ => None,
        }
    }

    /// Whether the last contact failed.
    pub(crate) fn is_stale(&self) -> bool {
        self.stale_since.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_makes_it_stale_once_and_a_success_fresh_again() {
        let mut f = Freshness::default();
        let t0 = Instant::now();
        assert!(!f.is_stale());
        assert_eq!(f.observe(true, t0), None);
        assert_eq!(f.observe(false, t0), Some(Transition::BecameStale));
        assert_eq!(f.observe(false, t0 + Duration::from_secs(5)), None);
        assert!(f.is_stale());
        assert_eq!(
            f.observe(true, t0 + Duration::from_secs(30)),
            Some(Transition::BecameFresh {
                stale_for: Duration::from_secs(30)
            })
        );
        assert!(!f.is_stale());
        assert_eq!(f.observe(true, t0 + Duration::from_secs(31)), None);
    }
}
