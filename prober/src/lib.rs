//! The kube-gtm health prober.
//!
//! It probes health-check tasks — one (template, target, port) each — over ICMP, TCP, HTTP or
//! HTTPS, judges every task `Up` or `Down` with the template's consecutive thresholds, and
//! reports each probe (and, distinctly, each state change) on a channel. The operator embeds it
//! as one of its tasks and turns the reports into status, the health ConfigMap, events and
//! metrics.
//!
//! - [`probe`]: one probe of one target, per protocol, with the per-probe timeout
//!   ([`ProbeContext::probe`]).
//! - [`state`]: the pure per-task state machine ([`TaskHealth::observe`]).
//! - [`scheduler`]: [`Prober`], which runs every task on its own interval and emits
//!   [`ProbeReport`]s.
//! - [`metrics`]: probe metrics by location; [`http`]: the `/metrics`, `/healthz` and
//!   `/readyz` endpoint (the operator serves its own with it too).
//!
//! The same crate is `gtm-prober`, a probe location of its own ([`remote`]): it learns its
//! tasks from the published config ([`plan`]) and publishes its verdicts ([`verdicts`]) for the
//! operator to count in each task's vote.
//!
//! Embedding it:
//!
//! ```no_run
//! use gtm_crds::pool::HealthState;
//! use gtm_crds::task_id::TaskId;
//! use gtm_crds::template::HealthCheckTemplateSpec;
//! use gtm_prober::{ProbeTask, Prober, ProberConfig};
//!
//! # async fn operator(spec: HealthCheckTemplateSpec) {
//! let (mut prober, mut reports) = Prober::new(ProberConfig::default());
//! // On every config change: the whole desired set; unchanged tasks keep running.
//! let task = ProbeTask::new(spec, "192.0.2.10", Some(443))
//!     .restored(HealthState::Up, None); // the state recorded in AddressPool.status
//! let id = TaskId::new("default", "web-https", "192.0.2.10", Some(443));
//! prober.update([(id.to_string(), task)]);
//!
//! let mut batch = Vec::new();
//! while reports.recv_many(&mut batch, 1024).await > 0 {
//!     for report in batch.drain(..) {
//!         // every report: metrics (report.protocol, report.outcome) and the task's
//!         // lastProbeTime / latency / lastError (report.health);
//!         // report.transition: health ConfigMap, address judgement, events.
//!     }
//! }
//! # }
//! ```

pub mod cli;
pub mod http;
pub mod metrics;
pub mod outcome;
pub mod plan;
pub mod probe;
pub mod remote;
pub mod scheduler;
pub mod state;
pub mod verdicts;

pub use outcome::{ProbeError, ProbeOutcome};
pub use probe::ProbeContext;
pub use scheduler::{ProbeReport, ProbeTask, Prober, ProberConfig, UpdateSummary};
pub use state::{TaskHealth, Thresholds, Transition};
