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

pub mod outcome;
pub mod probe;
pub mod scheduler;
pub mod state;

pub use outcome::{ProbeError, ProbeOutcome};
pub use probe::ProbeContext;
pub use scheduler::{ProbeReport, ProbeTask, Prober, ProberConfig, UpdateSummary};
pub use state::{TaskHealth, Thresholds, Transition};
