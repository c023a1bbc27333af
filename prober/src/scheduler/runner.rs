//! The loop that probes one task on its interval.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::{Instant, MissedTickBehavior};

use super::{ProbeReport, ProbeTask};
use crate::probe::ProbeContext;
use crate::state::{TaskHealth, Thresholds};

/// A task's health, shared between its runner (the only writer) and the prober.
pub(super) struct TaskSlot {
    pub(super) health: TaskHealth,
    /// Set when the prober stopped the task: the runner then reports nothing more.
    pub(super) retired: bool,
}

impl TaskSlot {
    pub(super) fn new(health: TaskHealth) -> Self {
        Self {
            health,
            retired: false,
        }
    }
}

/// Everything one task's loop needs.
pub(super) struct Runner {
    pub(super) id: Arc<str>,
    pub(super) task: Arc<ProbeTask>,
    pub(super) slot: Arc<Mutex<TaskSlot>>,
    pub(super) context: Arc<ProbeContext>,
    pub(super) permits: Arc<Semaphore>,
    pub(super) reports: mpsc::Sender<ProbeReport>,
}

impl Runner {
    /// Probes every interval, from a random point of the first one, until stopped or until
    /// the reports' receiver is gone.
    pub(super) async fn run(self) {
        let spec = &self.task.spec;
        let interval = spec.interval();
        let first = Instant::now() + interval.mul_f64(fastrand::f64());
        let mut ticks = tokio::time::interval_at(first, interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            ticks.tick().await;
            let outcome = {
                let Ok(_permit) = self.permits.acquire().await else {
                    return;
                };
                let task = &self.task;
                self.context.probe(spec, &task.target, task.port).await
            };
            let Ok(sending) = self.reports.reserve().await else {
                return;
            };
            let report = {
                let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
                if slot.retired {
                    return;
                }
                let at = SystemTime::now();
                let transition = slot.health.observe(&outcome, at, Thresholds::from(spec));
                ProbeReport {
                    task_id: self.id.clone(),
                    protocol: spec.protocol,
                    outcome,
                    health: slot.health.clone(),
                    transition,
                }
            };
            if let Some(transition) = &report.transition {
                let error = report
                    .outcome
                    .result
                    .as_ref()
                    .err()
                    .map(ToString::to_string);
                tracing::info!(task = %self.id, from = ?transition.from, to = ?transition.to,
                    error, "health check state changed");
            }
            sending.send(report);
        }
    }
}
