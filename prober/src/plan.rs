//! Which tasks a probe location runs: pure, from the published config.
//!
//! A location runs every task of every enabled pool in the config whose template selects it
//! (`HealthCheckTemplate.spec.locations`; unset selects every location). A task's id says what
//! to probe ([`TaskId`]: template, target, port) and the config's `templates` hold each
//! template's spec. A task the location cannot run (its id unreadable, its template missing
//! from a config written before schema 1.1) is reported, never guessed.

use std::collections::BTreeMap;

use gtm_crds::config::GtmConfig;
use gtm_crds::task_id::TaskId;
use gtm_crds::template::HealthCheckTemplateSpec;

use crate::scheduler::ProbeTask;

/// A probe location: its name and labels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Location {
    /// The name, an RFC 1123 label ([`gtm_crds::location::check_location_name`]).
    pub name: String,
    /// The labels templates select on (`region`, `asn`, ...).
    pub labels: BTreeMap<String, String>,
}

impl Location {
    /// Whether a template's tasks run at (and are voted on by) this location.
    pub fn selected_by(&self, spec: &HealthCheckTemplateSpec) -> bool {
        spec.locations
            .as_ref()
            .is_none_or(|s| s.selects(&self.name, &self.labels))
    }
}

/// The tasks a location runs, by task id, and those it cannot run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskPlan {
    /// The tasks to run, starting `Unknown`.
    pub tasks: BTreeMap<String, ProbeTask>,
    /// Task ids that cannot be run, with why.
    pub unrunnable: Vec<(String, String)>,
}

/// The tasks `location` runs for `config`.
pub fn plan(config: &GtmConfig, location: &Location) -> TaskPlan {
    let mut plan = TaskPlan::default();
    let ids = config
        .pools
        .iter()
        .filter(|p| p.enabled)
        .flat_map(|p| &p.addresses)
        .flat_map(|a| &a.tasks);
    for id in ids {
        if plan.tasks.contains_key(id) {
            continue;
        }
        let task: TaskId = match id.parse() {
            Ok(task) => task,
            Err(e) => {
                plan.unrunnable.push((id.clone(), e.to_string()));
                continue;
            }
        };
        let template = format!("{}/{}", task.namespace, task.template);
        let Some(spec) = config.templates.get(&template) else {
            plan.unrunnable.push((
                id.clone(),
                format!("the config lacks template {template} (published by an older operator?)"),
            ));
            continue;
        };
        if location.selected_by(spec) {
            let probe = ProbeTask::new(spec.clone(), task.target, task.port);
            plan.tasks.insert(id.clone(), probe);
        }
    }
    plan.unrunnable.sort();
    plan.unrunnable.dedup();
    plan
}

#[cfg(test)]
mod tests {
    use gtm_crds::template::{LocationName, LocationSelector};

    use super::*;

    fn spec(locations: Option<LocationSelector>) -> HealthCheckTemplateSpec {
        let mut spec: HealthCheckTemplateSpec =
            serde_json::from_value(serde_json::json!({"protocol": "TCP"})).unwrap();
        spec.locations = locations;
        spec
    }

    /// A config with one enabled pool using `tasks`, one disabled pool, and the templates
    /// `ns/tcp` (every location) and `ns/eu-only` (named `eu`).
    fn config(tasks: &[&str]) -> GtmConfig {
        let pool = |id: &str, enabled: bool, tasks: &[&str]| {
            serde_json::json!({
                "id": id, "poolType": "IPv4", "enabled": enabled, "policy": "RoundRobin",
                "healthJudgement": "AnyOk", "addresses": [{
                    "value": "192.0.2.1", "enabled": true, "mode": "Auto", "weight": 1,
                    "order": 1, "healthJudgement": "AnyOk", "tasks": tasks
                }]
            })
        };
        let mut c = GtmConfig::empty(vec!["gtm.example.com".into()]);
        c.pools = vec![
            serde_json::from_value(pool("ns/on", true, tasks)).unwrap(),
            serde_json::from_value(pool("ns/off", false, &["ns/tcp@192.0.2.9#1"])).unwrap(),
        ];
        c.templates = BTreeMap::from([
            ("ns/tcp".to_string(), spec(None)),
            (
                "ns/eu-only".to_string(),
                spec(Some(LocationSelector {
                    names: vec![LocationName("eu".into())],
                    match_labels: BTreeMap::new(),
                })),
            ),
        ]);
        c
    }

    fn location(name: &str) -> Location {
        Location {
            name: name.into(),
            labels: BTreeMap::new(),
        }
    }

    #[test]
    fn a_location_runs_the_tasks_of_enabled_pools_its_templates_select() {
        let c = config(&["ns/tcp@192.0.2.1#443", "ns/eu-only@10.0.0.1#80"]);
        let eu = plan(&c, &location("eu"));
        assert_eq!(
            eu.tasks.keys().collect::<Vec<_>>(),
            ["ns/eu-only@10.0.0.1#80", "ns/tcp@192.0.2.1#443"]
        );
        let task = &eu.tasks["ns/eu-only@10.0.0.1#80"];
        assert_eq!((task.target.as_str(), task.port), ("10.0.0.1", Some(80)));
        assert!(eu.unrunnable.is_empty());

        let us = plan(&c, &location("us"));
        assert_eq!(
            us.tasks.keys().collect::<Vec<_>>(),
            ["ns/tcp@192.0.2.1#443"]
        );
    }

    #[test]
    fn tasks_without_a_template_or_a_readable_id_are_reported() {
        let c = config(&[
            "ns/gone@192.0.2.1#80",
            "not a task id",
            "ns/tcp@192.0.2.1#1",
        ]);
        let p = plan(&c, &location("eu"));
        assert_eq!(p.tasks.len(), 1);
        let ids: Vec<&str> = p.unrunnable.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["not a task id", "ns/gone@192.0.2.1#80"]);
        assert!(p.unrunnable[1].1.contains("lacks template ns/gone"));
    }

    #[test]
    fn labels_select_locations_too() {
        let mut c = config(&["ns/tcp@192.0.2.1#443"]);
        c.templates.get_mut("ns/tcp").unwrap().locations = Some(LocationSelector {
            names: vec![],
            match_labels: BTreeMap::from([("region".into(), "eu".into())]),
        });
        let mut eu = location("eu-1");
        assert!(plan(&c, &eu).tasks.is_empty());
        eu.labels.insert("region".into(), "eu".into());
        assert_eq!(plan(&c, &eu).tasks.len(), 1);
    }
}
