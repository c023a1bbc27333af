//! The monitor: the prober embedded in the operator. It keeps the prober's task set equal to
//! what the last compile asks for, collects probe reports into the health view, counts probe
//! metrics, and batches state changes so that several transitions in a short window become
//! one publication.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gtm_prober::{ProbeReport, ProbeTask, Prober, ProberConfig};
use tokio::sync::mpsc;

use crate::compile::CompiledTask;
use crate::health::{Restored, TaskHealth};
use crate::metrics::{Metrics, ProbeLabels};

/// How long the monitor keeps collecting after a first state change before it reports a
/// batch: short against the failover budget, long enough to merge a burst.
pub const BATCH_WINDOW: Duration = Duration::from_millis(25);

/// The prober and the health view it feeds.
pub struct Monitor {
    prober: Prober,
    reports: mpsc::Receiver<ProbeReport>,
    tasks: BTreeMap<String, TaskHealth>,
    metrics: Arc<Metrics>,
}

impl Monitor {
    /// A monitor with at most `concurrency` probes in flight.
    pub fn new(concurrency: usize, metrics: Arc<Metrics>) -> Self {
        let (prober, reports) = Prober::new(ProberConfig {
            max_concurrent_probes: concurrency,
            ..ProberConfig::default()
        });
        Self {
            prober,
            reports,
            tasks: BTreeMap::new(),
            metrics,
        }
    }

    /// The health of every task the monitor runs.
    pub fn tasks(&self) -> &BTreeMap<String, TaskHealth> {
        &self.tasks
    }

    /// Makes the running tasks those of a compile. Unchanged tasks keep running and keep
    /// their state; new tasks start from `restored` where it has them (after a restart),
    /// else `Unknown`.
    pub fn update(
        &mut self,
        tasks: &BTreeMap<String, CompiledTask>,
        restored: &BTreeMap<String, Restored>,
    ) {
        let desired = tasks.iter().map(|(id, t)| {
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
        self.tasks = tasks
            .keys()
            .filter_map(|id| self.prober.health(id).map(|h| (id.clone(), h)))
            .collect();
    }

    /// Waits for the next state change and returns once the batch window after it has
    /// passed, with every report received meanwhile applied. Returns the number of
    /// transitions; probe reports without one update the view silently.
    pub async fn next_transitions(&mut self) -> usize {
        let mut transitions = 0;
        let mut batch = Vec::with_capacity(256);
        while transitions == 0 {
            if self.reports.recv_many(&mut batch, 1024).await == 0 {
                // The prober is gone (only at shutdown): never return a batch again.
                std::future::pending::<()>().await;
            }
            transitions += self.apply(&mut batch);
        }
        let deadline = tokio::time::Instant::now() + BATCH_WINDOW;
        while let Ok(n) =
            tokio::time::timeout_at(deadline, self.reports.recv_many(&mut batch, 1024)).await
        {
            if n == 0 {
                break;
            }
            transitions += self.apply(&mut batch);
        }
        transitions
    }

    fn apply(&mut self, batch: &mut Vec<ProbeReport>) -> usize {
        let mut transitions = 0;
        for report in batch.drain(..) {
            let result = if report.outcome.is_success() {
                "success"
            } else {
                "failure"
            };
            let labels = ProbeLabels {
                protocol: format!("{:?}", report.protocol),
                result: result.into(),
            };
            self.metrics.probes.get_or_create(&labels).inc();
            self.metrics
                .probe_duration
                .get_or_create(&labels)
                .observe(report.outcome.latency.as_secs_f64());
            // Reports of a task removed by the last update may still be queued: skip them.
            if let Some(health) = self.tasks.get_mut(report.task_id.as_ref()) {
                *health = report.health;
                transitions += usize::from(report.transition.is_some());
            }
        }
        transitions
    }
}
