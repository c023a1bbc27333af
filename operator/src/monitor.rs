//! The monitor: the prober embedded in the operator. It keeps the prober's task set equal to
//! what the last compile asks for, drains probe reports in its own task into the health view
//! (so probing never waits for a reconcile pass), counts probe metrics, and batches state
//! changes so that several transitions in a short window become one publication.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use gtm_prober::plan::Location;
use gtm_prober::{ProbeReport, ProbeTask, Prober, ProberConfig};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::compile::CompiledTask;
use crate::health::{Restored, TaskHealth};
use crate::metrics::Metrics;

/// How long the monitor keeps collecting after a first state change before it reports a
/// batch: short against the failover budget, long enough to merge a burst.
pub(crate) const BATCH_WINDOW: Duration = Duration::from_millis(25);

/// The health view the drain task keeps current.
#[derive(Default)]
struct View {
    tasks: BTreeMap<String, TaskHealth>,
    transitions: usize,
    /// When the first transition not yet reported arrived: its batch ends [`BATCH_WINDOW`]
    /// later, however often [`Monitor::next_transitions`] is started and cancelled meanwhile.
    pending_since: Option<Instant>,
}

/// The prober and the health view it feeds.
pub(crate) struct Monitor {
    prober: Prober,
    view: Arc<Mutex<View>>,
    changed: Arc<Notify>,
    drain: JoinHandle<()>,
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.drain.abort();
    }
}

fn lock(view: &Mutex<View>) -> std::sync::MutexGuard<'_, View> {
    // A panic while holding the lock leaves a usable view: each update is one assignment.
    view.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Monitor {
    /// A monitor with at most `concurrency` probes in flight; must be created inside a tokio
    /// runtime.
    pub(crate) fn new(concurrency: usize, metrics: Arc<Metrics>) -> Self {
        let (prober, reports) = Prober::new(ProberConfig {
            max_concurrent_probes: concurrency,
            ..ProberConfig::default()
        });
        let view = Arc::new(Mutex::new(View::default()));
        let changed = Arc::new(Notify::new());
        let drain = tokio::spawn(drain(reports, view.clone(), changed.clone(), metrics));
        Self {
            prober,
            view,
            changed,
            drain,
        }
    }

    /// The health of every task the monitor runs, as of now.
    pub(crate) fn tasks(&self) -> BTreeMap<String, TaskHealth> {
        lock(&self.view).tasks.clone()
    }

    /// Makes the running tasks those of a compile whose templates select `location` (the
    /// embedded one). Unchanged tasks keep running and keep their state; new tasks start from
    /// `restored` where it has them (after a restart), else `Unknown`.
    pub(crate) fn update(
        &mut self,
        tasks: &BTreeMap<String, CompiledTask>,
        location: &Location,
        restored: &BTreeMap<String, Restored>,
    ) {
        let selected = || tasks.iter().filter(|(_, t)| location.selected_by(&t.spec));
        let desired = selected().map(|(id, t)| {
            let mut task = ProbeTask::new(t.spec.clone(), t.target.clone(), t.port);
            if let Some((state, since)) = restored.get(id) {
                task = task.restored(*state, *since);
            }
            (id.clone(), task)
        });
        let summary = self.prober.update(desired);
        if summary.added + summary.changed + summary.removed > 0 {
            tracing::info!(?summary, "probe tasks updated");
        }
        let current = selected()
            .filter_map(|(id, _)| self.prober.health(id).map(|h| (id.clone(), h)))
            .collect();
        lock(&self.view).tasks = current;
    }

    /// Waits for the next state change, lets the batch window pass, and returns how many
    /// transitions the batch holds.
    ///
    /// Cancel safe: the operators' loops `select!` over it with other timers (local mode polls
    /// the probe locations every 50 ms, inside the 25 ms window), and a cancelled wait leaves
    /// the pending batch in the view, to end at its own deadline on the next call. (Waiting
    /// for the notification again instead held a verdict back until some later event, up to
    /// the manifests' 3 s rescan.)
    pub(crate) async fn next_transitions(&self) -> usize {
        loop {
            let pending = lock(&self.view).pending_since;
            let Some(since) = pending else {
                self.changed.notified().await;
                continue;
            };
            tokio::time::sleep_until(since + BATCH_WINDOW).await;
            let mut view = lock(&self.view);
            view.pending_since = None;
            let n = std::mem::take(&mut view.transitions);
            if n > 0 {
                return n;
            }
        }
    }
}

/// Applies every probe report to the view, as soon as it arrives.
async fn drain(
    mut reports: mpsc::Receiver<ProbeReport>,
    view: Arc<Mutex<View>>,
    changed: Arc<Notify>,
    metrics: Arc<Metrics>,
) {
    let mut batch = Vec::with_capacity(256);
    while reports.recv_many(&mut batch, 1024).await > 0 {
        if apply_batch(&mut batch, &view, &metrics) > 0 {
            changed.notify_one();
        }
    }
}

/// Counts a batch of probe reports in the metrics and applies them to the view, in a
/// `probe_batch` span (fields `reports`, `transitions`); returns the state transitions it saw.
#[tracing::instrument(name = "probe_batch", skip_all, fields(reports = batch.len(), transitions))]
fn apply_batch(batch: &mut Vec<ProbeReport>, view: &Mutex<View>, metrics: &Metrics) -> usize {
    for report in batch.iter() {
        metrics.probes.observe(report);
    }
    let mut transitions = 0;
    let mut view = lock(view);
    for report in batch.drain(..) {
        // Reports of a task removed by the last update may still be queued: skip them.
        if let Some(health) = view.tasks.get_mut(report.task_id.as_ref()) {
            *health = report.health;
            transitions += usize::from(report.transition.is_some());
        }
    }
    view.transitions += transitions;
    if transitions > 0 && view.pending_since.is_none() {
        view.pending_since = Some(Instant::now());
    }
    tracing::Span::current().record("transitions", transitions);
    transitions
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use gtm_crds::pool::HealthState;
    use gtm_crds::template::Protocol;
    use gtm_prober::{ProbeOutcome, Transition};

    use super::*;

    fn report(task: &str, transition: bool) -> ProbeReport {
        ProbeReport {
            task_id: task.into(),
            protocol: Protocol::TCP,
            outcome: ProbeOutcome {
                latency: Duration::from_millis(3),
                result: Ok(()),
            },
            health: TaskHealth::new(HealthState::Up, None),
            transition: transition.then(|| Transition {
                from: HealthState::Unknown,
                to: HealthState::Up,
                at: SystemTime::now(),
            }),
        }
    }

    #[test]
    fn a_batch_of_reports_is_applied_in_a_probe_batch_span() {
        let view = Mutex::new(View {
            tasks: BTreeMap::from([("a".to_string(), TaskHealth::new(HealthState::Unknown, None))]),
            ..View::default()
        });
        let metrics = Metrics::new();
        let (captured, _capture) = crate::spans::capture();
        // A report of a task that is gone counts in the metrics but not in the view.
        let mut batch = vec![report("a", true), report("gone", true)];
        let transitions = apply_batch(&mut batch, &view, &metrics);
        assert_eq!(transitions, 1);
        assert!(batch.is_empty());
        assert_eq!(lock(&view).tasks["a"].state, HealthState::Up);
        assert_eq!(lock(&view).transitions, 1);
        let closed = captured.closed_spans();
        assert!(
            closed
                .iter()
                .any(|l| l.contains("probe_batch{reports=2 transitions=1}")),
            "{closed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_cancelled_inside_the_batch_window_keeps_its_batch() {
        let metrics = Metrics::new();
        let monitor = Monitor::new(1, Arc::new(Metrics::new()));
        lock(&monitor.view).tasks =
            BTreeMap::from([("a".to_string(), TaskHealth::new(HealthState::Unknown, None))]);
        let waiting = async {
            // Cancelled 10 ms into the 25 ms window, as a faster timer in a `select!` does.
            let cancelled =
                tokio::time::timeout(Duration::from_millis(10), monitor.next_transitions()).await;
            assert!(cancelled.is_err());
            // The next wait ends with the batch at the same deadline, without another change.
            tokio::time::timeout(Duration::from_millis(20), monitor.next_transitions()).await
        };
        let transition = async {
            assert_eq!(
                apply_batch(&mut vec![report("a", true)], &monitor.view, &metrics),
                1
            );
            monitor.changed.notify_one();
        };
        let (batch, ()) = tokio::join!(waiting, transition);
        assert_eq!(batch, Ok(1));
    }
}
