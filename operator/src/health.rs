//! The operator's health view: what it knows of every probe task (the prober's
//! [`TaskHealth`]), the health payload it publishes from it, and the states a restart starts
//! from, read back from `AddressPool.status` so that it neither flaps nor blackholes.

use std::collections::BTreeMap;
use std::time::SystemTime;

use gtm_crds::AddressPool;
use gtm_crds::config::{ActiveSelections, HealthSnapshot, SCHEMA_VERSION};
use gtm_crds::pool::HealthState;
use gtm_crds::task_id::TaskId;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

pub(crate) use gtm_prober::TaskHealth;

/// The health payload for the DNS pods: verdicts of the tasks that have one (a missing task
/// reads as `Unknown`) and the active selections; numbered when it is published
/// ([`HealthSnapshot::numbered_by`]).
pub(crate) fn snapshot(
    tasks: &BTreeMap<String, TaskHealth>,
    active: &ActiveSelections,
    generation: u64,
) -> HealthSnapshot {
    HealthSnapshot {
        schema_version: SCHEMA_VERSION,
        generation,
        numbered: None,
        tasks: tasks
            .iter()
            .filter(|(_, t)| t.state != HealthState::Unknown)
            .map(|(id, t)| (id.clone(), t.state))
            .collect(),
        active: active.clone(),
    }
}

/// A task state to start from: the verdict and since when it holds.
pub(crate) type Restored = (HealthState, Option<SystemTime>);

/// The task states recorded in the pools' statuses, by task id.
pub(crate) fn restored_from_status<'a>(
    pools: impl IntoIterator<Item = &'a AddressPool>,
) -> BTreeMap<String, Restored> {
    let mut out = BTreeMap::new();
    for pool in pools {
        let namespace = pool.namespace().unwrap_or_default();
        for address in pool.status.iter().flat_map(|s| &s.addresses) {
            for task in &address.tasks {
                let target = task.target.as_deref().unwrap_or(&address.value);
                let id = TaskId::new(&namespace, &task.template, target, task.port).to_string();
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
pub(crate) fn restored_from_snapshot(snapshot: &HealthSnapshot) -> BTreeMap<String, Restored> {
    snapshot
        .tasks
        .iter()
        .map(|(id, state)| (id.clone(), (*state, None)))
        .collect()
}

/// An API time from a system time.
pub(crate) fn api_time(t: SystemTime) -> Option<Time> {
    k8s_openapi::jiff::Timestamp::try_from(t).ok().map(Time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_states_are_read_back_from_pool_status() {
        let pool: AddressPool = serde_json::from_value(serde_json::json!({
            "apiVersion": "gtm.kubegtm.io/v1alpha1",
            "kind": "AddressPool",
            "metadata": {"name": "p", "namespace": "prod"},
            "spec": {"type": "IPv4", "addresses": [{"value": "192.0.2.1"}]},
            "status": {"addresses": [{
                "value": "192.0.2.1", "state": "Down", "available": false,
                "tasks": [
                    {"template": "http", "port": 8080, "state": "Down", "since": "2026-01-01T00:00:00Z"},
                    {"template": "ping", "state": "Up"},
                    {"template": "ping", "target": "10.0.0.1", "state": "Down"}
                ]
            }]}
        }))
        .unwrap();
        let restored = restored_from_status([&pool]);
        let (state, since) = restored["prod/http@192.0.2.1#8080"];
        assert_eq!(state, HealthState::Down);
        assert_eq!(
            since.map(|s| s.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()),
            Some(1_767_225_600)
        );
        assert_eq!(restored["prod/ping@192.0.2.1"], (HealthState::Up, None));
        assert_eq!(
            restored["prod/ping@10.0.0.1"],
            (HealthState::Down, None),
            "probe target"
        );
    }

    #[test]
    fn the_snapshot_holds_only_verdicts_and_the_active_members() {
        let tasks = BTreeMap::from([
            ("a".to_string(), TaskHealth::new(HealthState::Up, None)),
            ("b".to_string(), TaskHealth::new(HealthState::Unknown, None)),
        ]);
        let s = snapshot(&tasks, &ActiveSelections::default(), 3);
        assert_eq!(s.tasks.len(), 1);
        assert_eq!(s.generation, 3);
        assert_eq!(restored_from_snapshot(&s)["a"], (HealthState::Up, None));
    }
}
