//! [`Prober`]: holds the desired tasks and runs each on its own schedule.
//!
//! Scheduling rules:
//! - every task runs on its own timer, every interval (`intervalMillis`, else `intervalSeconds`,
//!   [`HealthCheckTemplateSpec::interval`]); its first probe comes at a
//!   random point of its first interval, so that tasks added together spread out;
//! - a task has at most one probe in flight; a tick that comes while its probe (or its wait for
//!   a probe slot) still runs is skipped, keeping the task's phase;
//! - at most [`ProberConfig::max_concurrent_probes`] probes run at once; slots are handed out
//!   first come, first served, and every probe ends by its timeout, so a hanging target costs
//!   one slot for at most its timeout and delays no other task's timer;
//! - [`Prober::update`] restarts only the tasks whose check, target or port changed.

mod runner;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use gtm_crds::pool::HealthState;
use gtm_crds::template::{HealthCheckTemplateSpec, Protocol};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::AbortHandle;

use crate::outcome::ProbeOutcome;
use crate::probe::ProbeContext;
use crate::state::{TaskHealth, Transition};
use runner::{Runner, TaskSlot};

/// Scheduler settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProberConfig {
    /// Probes in flight at most, over all tasks.
    pub max_concurrent_probes: usize,
    /// Reports the channel holds. When it is full, tasks wait for the consumer before
    /// reporting (and so before probing again): keep receiving, in batches.
    pub report_buffer: usize,
}

impl Default for ProberConfig {
    fn default() -> Self {
        Self {
            max_concurrent_probes: 256,
            report_buffer: 8192,
        }
    }
}

/// One health-check task: probe `target` on `port` as `spec` says. Its id is a
/// [`gtm_crds::task_id::TaskId`] as text.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeTask {
    /// The template's spec.
    pub spec: HealthCheckTemplateSpec,
    /// An IP address or a host name.
    pub target: String,
    /// The port to probe; `None` for ICMP and for HTTP(S) on the protocol's default port.
    pub port: Option<u16>,
    /// Where the task starts when the prober does not run it yet; ignored otherwise.
    pub initial: TaskHealth,
}

impl ProbeTask {
    /// A new task, starting `Unknown`.
    pub fn new(
        spec: HealthCheckTemplateSpec,
        target: impl Into<String>,
        port: Option<u16>,
    ) -> Self {
        Self {
            spec,
            target: target.into(),
            port,
            initial: TaskHealth::new(HealthState::Unknown, None),
        }
    }

    /// The same task, starting from the state (and its `since`) recorded in status before a
    /// restart.
    pub fn restored(self, state: HealthState, since: Option<SystemTime>) -> Self {
        Self {
            initial: TaskHealth::new(state, since),
            ..self
        }
    }

    /// True when both tasks probe the same way (the initial state does not count).
    fn probes_like(&self, other: &Self) -> bool {
        self.spec == other.spec && self.target == other.target && self.port == other.port
    }
}

/// What one probe of one task yielded; the prober sends one per probe.
///
/// Batch them with `Receiver::recv_many`. Reports of a task that [`Prober::update`] just
/// removed may still be queued: skip ids you no longer track.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeReport {
    /// The task id.
    pub task_id: Arc<str>,
    /// The task's protocol (a metric label).
    pub protocol: Protocol,
    /// The probe's result and latency.
    pub outcome: ProbeOutcome,
    /// The task's health after this probe (`last_probe` is when the probe finished).
    pub health: TaskHealth,
    /// The state change this probe caused, if any: reported exactly once.
    pub transition: Option<Transition>,
}

/// What an [`update`](Prober::update) did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpdateSummary {
    /// Tasks started.
    pub added: usize,
    /// Tasks restarted because their check, target or port changed.
    pub changed: usize,
    /// Tasks stopped.
    pub removed: usize,
    /// Tasks left running as they were.
    pub unchanged: usize,
}

/// The health prober: runs the desired tasks, each on its own interval, and sends a
/// [`ProbeReport`] per probe. Dropping it stops every task.
pub struct Prober {
    context: Arc<ProbeContext>,
    permits: Arc<Semaphore>,
    reports: mpsc::Sender<ProbeReport>,
    tasks: HashMap<Arc<str>, RunningTask>,
}

impl Prober {
    /// A prober with no tasks, and the receiving end of its reports.
    pub fn new(config: ProberConfig) -> (Self, mpsc::Receiver<ProbeReport>) {
        let (reports, receiver) = mpsc::channel(config.report_buffer.max(1));
        let prober = Self {
            context: Arc::new(ProbeContext::new()),
            permits: Arc::new(Semaphore::new(config.max_concurrent_probes.max(1))),
            reports,
            tasks: HashMap::new(),
        };
        (prober, receiver)
    }

    /// The same prober for probe location `name`, which its HTTP(S) probes name in their
    /// User-Agent; call it before the first [`Self::update`].
    pub fn located(self, name: &str) -> Self {
        Self {
            context: Arc::new(ProbeContext::for_location(name)),
            ..self
        }
    }

    /// Makes `tasks` (id to task; ids unique) the running set. New ids start from their
    /// [`initial`](ProbeTask::initial) health; tasks whose check, target or port changed
    /// restart with the health they had (counts reset) so their verdict holds until the new
    /// check decides; the others keep running untouched; missing ids stop. Must be called
    /// within a Tokio runtime.
    pub fn update(
        &mut self,
        tasks: impl IntoIterator<Item = (String, ProbeTask)>,
    ) -> UpdateSummary {
        let mut summary = UpdateSummary::default();
        let mut previous = std::mem::take(&mut self.tasks);
        for (id, task) in tasks {
            let id: Arc<str> = id.into();
            let health = match previous.remove(&id) {
                Some(running) if running.task.probes_like(&task) => {
                    summary.unchanged += 1;
                    self.tasks.insert(id, running);
                    continue;
                }
                Some(running) => {
                    summary.changed += 1;
                    running.stop().with_counts_reset()
                }
                None => {
                    summary.added += 1;
                    task.initial.clone()
                }
            };
            let running = self.start(id.clone(), task, health);
            self.tasks.insert(id, running);
        }
        summary.removed = previous.len();
        for running in previous.into_values() {
            running.stop();
        }
        tracing::debug!(?summary, "probe tasks updated");
        summary
    }

    /// The current health of one task.
    pub fn health(&self, task_id: &str) -> Option<TaskHealth> {
        self.tasks.get(task_id).map(RunningTask::health)
    }

    /// The current health of every task, for a full status write.
    pub fn healths(&self) -> impl Iterator<Item = (&str, TaskHealth)> {
        self.tasks
            .iter()
            .map(|(id, running)| (id.as_ref(), running.health()))
    }

    /// How many tasks run.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// True when no task runs.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    fn start(&self, id: Arc<str>, task: ProbeTask, health: TaskHealth) -> RunningTask {
        let slot = Arc::new(Mutex::new(TaskSlot::new(health)));
        let task = Arc::new(task);
        let runner = Runner {
            id,
            task: task.clone(),
            slot: slot.clone(),
            context: self.context.clone(),
            permits: self.permits.clone(),
            reports: self.reports.clone(),
        };
        let handle = tokio::spawn(runner.run()).abort_handle();
        RunningTask { task, slot, handle }
    }
}

/// A task the prober runs.
struct RunningTask {
    task: Arc<ProbeTask>,
    slot: Arc<Mutex<TaskSlot>>,
    handle: AbortHandle,
}

impl RunningTask {
    fn health(&self) -> TaskHealth {
        self.lock().health.clone()
    }

    /// Stops the task and returns its last health. Retiring the slot under its lock keeps a
    /// probe finishing right now from reporting after this point.
    fn stop(self) -> TaskHealth {
        let health = {
            let mut slot = self.lock();
            slot.retired = true;
            slot.health.clone()
        };
        self.handle.abort();
        health
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TaskSlot> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for RunningTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}
