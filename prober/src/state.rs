//! The per-task health state machine: pure, driven by probe outcomes and the clock readings
//! given to it.
//!
//! Rules (as Route 53 and GTM judge, and as `HealthState::Unknown` is meant):
//! - `Unknown` (a new task; counts as healthy so that a new checker never blackholes) becomes
//!   `Up` after `successThreshold` consecutive successes and `Down` after `failureThreshold`
//!   consecutive failures. So the first verdict needs its threshold too: a single lost probe of
//!   a new task does not take it down.
//! - `Up` becomes `Down` after `failureThreshold` consecutive failures.
//! - `Down` becomes `Up` after `successThreshold` consecutive successes.
//! - A success resets the failure count and a failure the success count.
//!
//! A task restored from status starts in its recorded state and `since`, with both counts at
//! zero, so a restart neither flaps nor blackholes.

use std::time::{Duration, SystemTime};

use gtm_crds::pool::HealthState;
use gtm_crds::template::HealthCheckTemplateSpec;

use crate::outcome::{ProbeError, ProbeOutcome};

/// Consecutive results needed to change a task's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// Failures that take a task down (at least 1).
    pub failure: u8,
    /// Successes that bring a task up (at least 1).
    pub success: u8,
}

impl From<&HealthCheckTemplateSpec> for Thresholds {
    fn from(spec: &HealthCheckTemplateSpec) -> Self {
        Self {
            failure: spec.failure_threshold,
            success: spec.success_threshold,
        }
    }
}

/// A change of a task's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The state before.
    pub from: HealthState,
    /// The state after.
    pub to: HealthState,
    /// When the probe that decided it finished.
    pub at: SystemTime,
}

/// What is known of one task's health: the fields of `TaskStatus`, plus the running counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskHealth {
    /// The verdict.
    pub state: HealthState,
    /// When `state` last changed; `None` when not known (a new task).
    pub since: Option<SystemTime>,
    /// When the last probe finished.
    pub last_probe: Option<SystemTime>,
    /// The latency of the last successful probe.
    pub latency: Option<Duration>,
    /// Why the last failed probe failed.
    pub last_error: Option<ProbeError>,
    consecutive_successes: u32,
    consecutive_failures: u32,
}

impl TaskHealth {
    /// A task starting in `state`, in it since `since`: `Unknown` and `None` for a new task,
    /// the values recorded in status for a task restored after a restart.
    pub fn new(state: HealthState, since: Option<SystemTime>) -> Self {
        Self {
            state,
            since,
            last_probe: None,
            latency: None,
            last_error: None,
            consecutive_successes: 0,
            consecutive_failures: 0,
        }
    }

    /// The same knowledge with both counts at zero: for a task whose check changed, which
    /// keeps its verdict until the new check's thresholds decide.
    pub(crate) fn with_counts_reset(self) -> Self {
        Self {
            consecutive_successes: 0,
            consecutive_failures: 0,
            ..self
        }
    }

    /// Takes in the outcome of a probe that finished at `at`; returns the transition it
    /// causes, if any.
    pub fn observe(
        &mut self,
        outcome: &ProbeOutcome,
        at: SystemTime,
        thresholds: Thresholds,
    ) -> Option<Transition> {
        self.last_probe = Some(at);
        let verdict = match &outcome.result {
            Ok(()) => {
                self.latency = Some(outcome.latency);
                self.consecutive_failures = 0;
                self.consecutive_successes = self.consecutive_successes.saturating_add(1);
                (self.consecutive_successes >= u32::from(thresholds.success.max(1)))
                    .then_some(HealthState::Up)
            }
            Err(err) => {
                self.last_error = Some(err.clone());
                self.consecutive_successes = 0;
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                (self.consecutive_failures >= u32::from(thresholds.failure.max(1)))
                    .then_some(HealthState::Down)
            }
        };
        let to = verdict.filter(|&to| to != self.state)?;
        let transition = Transition {
            from: self.state,
            to,
            at,
        };
        self.state = to;
        self.since = Some(at);
        Some(transition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HealthState::{Down, Unknown, Up};

    const T: Thresholds = Thresholds {
        failure: 3,
        success: 2,
    };

    fn outcome(success: bool) -> ProbeOutcome {
        ProbeOutcome {
            latency: Duration::from_millis(7),
            result: if success {
                Ok(())
            } else {
                Err(ProbeError::Connect("connection refused".into()))
            },
        }
    }

    /// Feeds `probes` ('+' success, '-' failure) from `start` and returns the state after each.
    fn run(start: HealthState, probes: &str, thresholds: Thresholds) -> Vec<HealthState> {
        let mut health = TaskHealth::new(start, None);
        probes
            .chars()
            .map(|probe| {
                health.observe(&outcome(probe == '+'), SystemTime::now(), thresholds);
                health.state
            })
            .collect()
    }

    #[test]
    fn transitions_follow_consecutive_thresholds() {
        let table = [
            // (start, probes, states after each probe)
            (Unknown, "++", vec![Unknown, Up]),
            (Unknown, "---", vec![Unknown, Unknown, Down]),
            (Unknown, "+-+-+-", vec![Unknown; 6]),
            (Up, "--+---", vec![Up, Up, Up, Up, Up, Down]),
            (Up, "+++", vec![Up, Up, Up]),
            (Down, "+-++", vec![Down, Down, Down, Up]),
            (Down, "---", vec![Down, Down, Down]),
            (Up, "---++", vec![Up, Up, Down, Down, Up]),
        ];
        for (start, probes, expected) in table {
            assert_eq!(run(start, probes, T), expected, "{start:?} then {probes}");
        }
    }

    #[test]
    fn thresholds_of_one_decide_on_every_probe() {
        let one = Thresholds {
            failure: 1,
            success: 1,
        };
        assert_eq!(run(Unknown, "+-+", one), vec![Up, Down, Up]);
        let zero = Thresholds {
            failure: 0,
            success: 0,
        };
        assert_eq!(run(Unknown, "-+", zero), vec![Down, Up]);
    }

    #[test]
    fn transitions_are_reported_once_with_since() {
        let mut health = TaskHealth::new(Up, Some(SystemTime::UNIX_EPOCH));
        let at = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(health.observe(&outcome(false), at(1), T), None);
        assert_eq!(health.observe(&outcome(false), at(2), T), None);
        let down = health.observe(&outcome(false), at(3), T);
        assert_eq!(
            down,
            Some(Transition {
                from: Up,
                to: Down,
                at: at(3)
            })
        );
        assert_eq!(health.observe(&outcome(false), at(4), T), None);
        assert_eq!(health.since, Some(at(3)));
        assert_eq!(health.last_probe, Some(at(4)));
    }

    #[test]
    fn latency_and_error_keep_their_last_values() {
        let mut health = TaskHealth::new(Unknown, None);
        health.observe(&outcome(true), SystemTime::now(), T);
        health.observe(&outcome(false), SystemTime::now(), T);
        assert_eq!(health.latency, Some(Duration::from_millis(7)));
        health.observe(&outcome(true), SystemTime::now(), T);
        assert_eq!(
            health.last_error.as_ref().map(ToString::to_string),
            Some("connection refused".into())
        );
    }

    #[test]
    fn a_restored_state_is_kept_until_the_thresholds_say_otherwise() {
        let since = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let mut health = TaskHealth::new(Down, Some(since));
        assert_eq!(health.observe(&outcome(true), SystemTime::now(), T), None);
        assert_eq!((health.state, health.since), (Down, Some(since)));
    }
}
