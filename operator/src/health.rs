//! The operator's health view: what it knows of every probe task (the prober's
//! [`TaskHealth`]), the health payload it publishes from it, and the states a restart starts
//! from, read back from `AddressPool.status` so that it neither flaps nor blackholes.

use std::collections::BTreeMap;
use std::time::SystemTime;

use gtm_crds::AddressPool;
use gtm_crds::config::{ActiveSelections, HealthSnapshot, SCHEMA_VERSION, object_id, task_id};
use gtm_crds::pool::HealthState;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

pub use gtm_prober::TaskHealth;

/// The health payload for the DNS pods: verdicts of the tasks that have one (a missing task
/// reads as `Unknown`) and the active selections.
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

/// A task state to start from: the verdict and since when it holds.
pub type Restored = (HealthState, Option<SystemTime>);

/// The task states recorded in the pools' statuses, by task id.
pub fn restored_from_status<'a>(
    pools: impl IntoIterator<Item = &'a AddressPool>,
) -> BTreeMap<String, Restored> {
    let mut out = BTreeMap::new();
    for pool in pools {
        let namespace = pool.namespace().unwrap_or_default();
        for address in pool.status.iter().flat_map(|s| &s.addresses) {
            for task in &address.tasks {
                let id = task_id(
                    &object_id(&namespace, &task.template),
                    &address.value,
                    task.port,
                );
                out.insert(
                    id,
                    (
                        task.state,
                        task.since.as_ref().map(|t| SystemTime::from(t.0)),
                    ),
                );
            }
        }
    }
    out
}

/// The task states of a published health payload (local mode restarts from it).
pub fn restored_from_snapshot(snapshot: &HealthSnapshot) -> BTreeMap<String, Restored> {
    snapshot
        .tasks
        .iter()
        .map(|(id, state)| (id.clone(), (*state, None)))
        .collect()
}

/// An API time from a system time.
pub fn api_time(t: SystemTime) -> Option<Time> {
    k8s_openapi::jiff::Timestamp::try_from(t).ok().map(Time)
}
