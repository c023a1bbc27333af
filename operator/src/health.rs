//! The operator's health view: what it knows of every probe task, and the health payload it
//! publishes from it.

use std::collections::BTreeMap;

use gtm_crds::config::{ActiveSelections, HealthSnapshot, SCHEMA_VERSION};
use gtm_crds::pool::HealthState;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// What is known of one probe task.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskHealth {
    /// The verdict.
    pub state: HealthState,
    /// When the verdict last changed.
    pub since: Option<Time>,
    /// When the last probe finished.
    pub last_probe: Option<Time>,
    /// Round trip of the last probe, in milliseconds.
    pub latency_millis: Option<u32>,
    /// Why the last failing probe failed.
    pub last_error: Option<String>,
}

/// The health payload for the DNS pods: verdicts of the known tasks (only those with one; a
/// missing task reads as `Unknown`) and the active selections.
pub fn snapshot(
    tasks: &BTreeMap<String, TaskHealth>,
    active: &ActiveSelections,
    generation: u64,
) -> HealthSnapshot {
    HealthSnapshot {
        schema_version: SCHEMA_VERSION,
        generation,
        tasks: tasks
            .iter()
            .filter(|(_, t)| t.state != HealthState::Unknown)
            .map(|(id, t)| (id.clone(), t.state))
            .collect(),
        active: active.clone(),
    }
}
