//! Readiness (`/readyz`): a pod is ready once it serves a config. While the API server that
//! holds its ConfigMaps is unreachable (an edge pod cut off from the control cluster, an API
//! outage) it keeps answering from the last config and health, and by default stays ready: an
//! outage of the control cluster would otherwise take every DNS pod of every cluster out of its
//! Service at once, and a stale answer beats none. Where other clusters' DNS pods serve the same
//! zone (NS records for each cluster at the parent), `--unready-after-stale-seconds` takes a pod
//! cut off for longer than that out of its Service, so that resolvers move to the clusters that
//! still follow the health checks.

use std::time::Duration;

/// What readiness does while the config source is stale.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StalePolicy {
    /// Fail `/readyz` once the source has been stale this long; `None` stays ready.
    pub unready_after: Option<Duration>,
}

/// The answer of `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Serving a config.
    Ready,
    /// No config accepted yet (answers are SERVFAIL).
    NoConfig,
    /// Serving, but the source has been stale for longer than the policy allows.
    Stale {
        /// How long the source has been stale.
        stale_for: Duration,
    },
}

impl Readiness {
    /// Readiness of a pod that has (`loaded`) or has not accepted a config, whose source has
    /// been stale for `stale_for` (`None`: fresh), under `policy`.
    pub fn of(loaded: bool, stale_for: Option<Duration>, policy: StalePolicy) -> Self {
        match (loaded, stale_for, policy.unready_after) {
            (false, _, _) => Self::NoConfig,
            (true, Some(stale_for), Some(limit)) if stale_for >= limit => Self::Stale { stale_for },
            _ => Self::Ready,
        }
    }

    /// Whether `/readyz` succeeds.
    pub fn is_ready(self) -> bool {
        self == Self::Ready
    }
}

impl std::fmt::Display for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ready => f.write_str("ready"),
            Self::NoConfig => f.write_str("no config loaded yet"),
            Self::Stale { stale_for } => write!(
                f,
                "config source unreachable for {} s (--unready-after-stale-seconds); still answering the last config",
                stale_for.as_secs()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn a_pod_without_config_is_never_ready() {
        for stale in [None, Some(MINUTE)] {
            assert_eq!(
                Readiness::of(false, stale, StalePolicy::default()),
                Readiness::NoConfig
            );
        }
    }

    #[test]
    fn by_default_a_stale_pod_stays_ready() {
        let r = Readiness::of(true, Some(100 * MINUTE), StalePolicy::default());
        assert!(r.is_ready());
    }

    #[test]
    fn with_a_limit_a_pod_goes_unready_at_the_limit_and_back_when_fresh() {
        let policy = StalePolicy {
            unready_after: Some(MINUTE),
        };
        assert_eq!(Readiness::of(true, None, policy), Readiness::Ready);
        assert_eq!(
            Readiness::of(true, Some(MINUTE - Duration::from_millis(1)), policy),
            Readiness::Ready
        );
        let at = Readiness::of(true, Some(MINUTE), policy);
        assert_eq!(at, Readiness::Stale { stale_for: MINUTE });
        assert!(!at.is_ready());
        assert!(at.to_string().contains("60 s"), "{at}");
    }
}
