//! How the binaries retry a failed watch of the API server. kube's default backoff grows to
//! 30 s, so after an API outage of half a minute a watch may sleep that long after the API server
//! is back, and config, health and status changes wait for it. A GTM must converge fast: retries
//! here start at 200 ms and never wait more than [`MAX_RETRY`], with jitter so that many DNS pods
//! do not relist in step, and start over once a watch has run for 2 minutes without an error.

use std::time::Duration;

use kube::runtime::utils::{Backoff, ResetTimerBackoff};
use kube::runtime::watcher::ExponentialBackoff;

/// The longest wait between two attempts to watch again.
pub const MAX_RETRY: Duration = Duration::from_secs(5);

/// The retry schedule of every watch (`.backoff(watch_backoff())` on a watcher stream).
pub fn watch_backoff() -> impl Backoff + 'static {
    let exponential = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(MAX_RETRY)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times();
    ResetTimerBackoff::new(
        ExponentialBackoff::from(exponential),
        Duration::from_secs(120),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_grow_but_never_beyond_the_maximum() {
        let mut backoff = watch_backoff();
        let delays: Vec<Duration> = (0..20).map(|_| backoff.next().unwrap()).collect();
        assert!(delays[0] < Duration::from_millis(500), "{delays:?}");
        // Jitter adds at most one more delay's worth.
        assert!(delays.iter().all(|d| *d <= MAX_RETRY * 2), "{delays:?}");
        assert!(delays[19] >= MAX_RETRY, "{delays:?}");
    }
}
