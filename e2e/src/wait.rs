//! Waiting for a condition with a deadline, never a fixed sleep.
//!
//! A check returns [`Check::Ready`] with the value waited for, or [`Check::Pending`] with a short
//! description of what it saw; errors count as pending (the cluster is eventually consistent),
//! and the last thing seen goes into the timeout error, so a failed wait tells what was there.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// What one look at the world found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check<T> {
    /// The condition holds; the wait returns this value.
    Ready(T),
    /// Not yet; the text says what was seen instead.
    Pending(String),
}

/// A wait that ran out of time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeout {
    /// What was waited for.
    pub what: String,
    /// How long it waited.
    pub waited: Duration,
    /// How many times it looked.
    pub attempts: u32,
    /// What the last look saw.
    pub last: String,
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {:.1?} ({} checks) waiting for {}; last seen: {}",
            self.waited, self.attempts, self.what, self.last
        )
    }
}

impl std::error::Error for Timeout {}

/// How long to wait and how often to look.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    /// Give up after this long.
    pub timeout: Duration,
    /// Pause between two looks.
    pub interval: Duration,
}

impl Deadline {
    /// A deadline of `timeout`, looking every 250 ms.
    pub const fn after(timeout: Duration) -> Self {
        Self {
            timeout,
            interval: Duration::from_millis(250),
        }
    }

    /// The same deadline, looking every `interval`.
    pub const fn every(self, interval: Duration) -> Self {
        Self { interval, ..self }
    }
}

/// Looks with `check` until it is ready or `deadline` passes. The first look is immediate; a
/// look that takes long counts against the deadline.
pub async fn wait_for<T, E, F, Fut>(
    what: &str,
    deadline: Deadline,
    mut check: F,
) -> Result<T, Timeout>
where
    E: fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Check<T>, E>>,
{
    let start = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let remaining = deadline.timeout.saturating_sub(start.elapsed());
        let last = match tokio::time::timeout(remaining, check()).await {
            Ok(Ok(Check::Ready(value))) => return Ok(value),
            Ok(Ok(Check::Pending(seen))) => seen,
            Ok(Err(error)) => format!("error: {error}"),
            Err(_) => "the check itself did not finish before the deadline".to_owned(),
        };
        if start.elapsed() + deadline.interval > deadline.timeout {
            return Err(Timeout {
                what: what.to_owned(),
                waited: start.elapsed(),
                attempts,
                last,
            });
        }
        tokio::time::sleep(deadline.interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn counter() -> Arc<AtomicU32> {
        Arc::new(AtomicU32::new(0))
    }

    #[tokio::test(start_paused = true)]
    async fn returns_the_value_once_the_condition_holds() {
        let looks = counter();
        let l = looks.clone();
        let value = wait_for(
            "the third look",
            Deadline::after(Duration::from_secs(10)),
            || {
                let n = l.fetch_add(1, Ordering::SeqCst) + 1;
                async move {
                    Ok::<_, String>(if n == 3 {
                        Check::Ready(n * 10)
                    } else {
                        Check::Pending(format!("look {n}"))
                    })
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(value, 30);
        assert_eq!(looks.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn first_look_is_immediate() {
        let start = Instant::now();
        let value = wait_for(
            "ready at once",
            Deadline::after(Duration::from_secs(5)),
            || async { Ok::<_, String>(Check::Ready("now")) },
        )
        .await
        .unwrap();
        assert_eq!(value, "now");
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn times_out_with_what_it_saw_last() {
        let looks = counter();
        let l = looks.clone();
        let deadline = Deadline::after(Duration::from_secs(2)).every(Duration::from_millis(500));
        let error =
            wait_for("pool eu-west Available=False", deadline, || {
                let n = l.fetch_add(1, Ordering::SeqCst) + 1;
                async move {
                    Ok::<Check<()>, String>(Check::Pending(format!("Available=True (look {n})")))
                }
            })
            .await
            .unwrap_err();
        assert_eq!(error.what, "pool eu-west Available=False");
        assert_eq!(
            error.attempts, 5,
            "looks at 0, 0.5, 1.0, 1.5 and 2.0 s; 2.5 s is past the deadline"
        );
        assert_eq!(error.last, "Available=True (look 5)");
        assert!(error.waited <= Duration::from_secs(2));
        let text = error.to_string();
        assert!(
            text.contains("waiting for pool eu-west Available=False"),
            "{text}"
        );
        assert!(
            text.contains("last seen: Available=True (look 5)"),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn errors_count_as_pending_and_are_reported() {
        let looks = counter();
        let l = looks.clone();
        let value = wait_for(
            "the API to answer",
            Deadline::after(Duration::from_secs(5)),
            || {
                let n = l.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 2 {
                        Err("connection refused")
                    } else {
                        Ok(Check::Ready(n))
                    }
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(value, 2);

        let error = wait_for("never", Deadline::after(Duration::from_secs(1)), || async {
            Err::<Check<()>, _>("connection refused")
        })
        .await
        .unwrap_err();
        assert_eq!(error.last, "error: connection refused");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_check_is_cut_at_the_deadline() {
        let error = wait_for(
            "a check that hangs",
            Deadline::after(Duration::from_secs(3)),
            || async { std::future::pending::<Result<Check<()>, String>>().await },
        )
        .await
        .unwrap_err();
        assert_eq!(error.attempts, 1);
        assert!(error.last.contains("did not finish"), "{}", error.last);
        assert_eq!(error.waited, Duration::from_secs(3));
    }
}
