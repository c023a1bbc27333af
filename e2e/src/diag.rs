//! Diagnostics for a failed e2e test: the pods of a namespace with their state, recent events,
//! and the tail of their logs, formatted as one readable report.
//!
//! Formatting is pure (unit-tested); [`collect`] does the API calls.

use std::fmt::Write as _;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ListParams, LogParams};
use kube::{Api, Client};

/// One titled part of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Heading.
    pub title: String,
    /// Text under it.
    pub body: String,
}

/// Renders sections under `==== title ====` headings; empty bodies say so.
pub fn render(sections: &[Section]) -> String {
    let mut out = String::new();
    for s in sections {
        let _ = writeln!(out, "==== {} ====", s.title);
        if s.body.trim().is_empty() {
            out.push_str("(nothing)\n");
        } else {
            out.push_str(s.body.trim_end());
            out.push('\n');
        }
    }
    out
}

/// One line per pod: name, phase, ready containers, restarts, IP, and the reason of any container
/// that is waiting or terminated.
pub fn format_pods(pods: &[Pod]) -> String {
    let mut out = String::new();
    for pod in pods {
        let name = pod.metadata.name.as_deref().unwrap_or("?");
        let status = pod.status.clone().unwrap_or_default();
        let containers = status.container_statuses.unwrap_or_default();
        let ready = containers.iter().filter(|c| c.ready).count();
        let restarts: i32 = containers.iter().map(|c| c.restart_count).sum();
        let reasons: Vec<String> = containers
            .iter()
            .filter_map(|c| {
                let state = c.state.as_ref()?;
                let why = state
                    .waiting
                    .as_ref()
                    .and_then(|w| w.reason.clone())
                    .or_else(|| state.terminated.as_ref().and_then(|t| t.reason.clone()))?;
                Some(format!("{}: {why}", c.name))
            })
            .collect();
        let _ = write!(
            out,
            "{name} {} ready {ready}/{} restarts {restarts} ip {}",
            status.phase.as_deref().unwrap_or("Unknown"),
            containers.len(),
            status.pod_ip.as_deref().unwrap_or("-"),
        );
        if !reasons.is_empty() {
            let _ = write!(out, " ({})", reasons.join(", "));
        }
        out.push('\n');
    }
    out
}

/// One line per event, oldest first: `type reason kind/name: message (xN)`.
pub fn format_events(events: &[Event]) -> String {
    let mut events: Vec<&Event> = events.iter().collect();
    events.sort_by_key(|e| {
        e.last_timestamp
            .as_ref()
            .or(e.first_timestamp.as_ref())
            .map(|t| t.0)
    });
    let mut out = String::new();
    for e in events {
        let object = &e.involved_object;
        let _ = writeln!(
            out,
            "{} {} {}/{}: {}{}",
            e.type_.as_deref().unwrap_or("Normal"),
            e.reason.as_deref().unwrap_or("-"),
            object.kind.as_deref().unwrap_or("?"),
            object.name.as_deref().unwrap_or("?"),
            e.message.as_deref().unwrap_or("").trim(),
            e.count
                .filter(|c| *c > 1)
                .map(|c| format!(" (x{c})"))
                .unwrap_or_default(),
        );
    }
    out
}

/// Collects pods, events and log tails of `namespace` (and of the release namespace when given).
/// Errors become part of the report: a diagnostic must not fail the failing test a second way.
pub async fn collect(client: &Client, namespaces: &[&str]) -> String {
    let mut sections = Vec::new();
    for ns in namespaces {
        let pods_api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let pods = match pods_api.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(error) => {
                sections.push(Section {
                    title: format!("{ns}: pods"),
                    body: format!("error: {error}"),
                });
                Vec::new()
            }
        };
        sections.push(Section {
            title: format!("{ns}: pods"),
            body: format_pods(&pods),
        });
        let events = match Api::<Event>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await
        {
            Ok(list) => format_events(&list.items),
            Err(error) => format!("error: {error}"),
        };
        sections.push(Section {
            title: format!("{ns}: events"),
            body: events,
        });
        for pod in &pods {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let params = LogParams {
                tail_lines: Some(200),
                ..LogParams::default()
            };
            let body = pods_api
                .logs(&name, &params)
                .await
                .unwrap_or_else(|e| format!("error: {e}"));
            sections.push(Section {
                title: format!("{ns}: logs of {name}"),
                body,
            });
        }
    }
    render(&sections)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateWaiting, ContainerStatus, ObjectReference, PodStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use k8s_openapi::jiff::Timestamp;

    fn pod(name: &str, ready: bool, waiting: Option<&str>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            status: Some(PodStatus {
                phase: Some(if ready { "Running" } else { "Pending" }.into()),
                pod_ip: ready.then(|| "10.244.0.5".into()),
                container_statuses: Some(vec![ContainerStatus {
                    name: "dns".into(),
                    ready,
                    restart_count: if ready { 0 } else { 3 },
                    state: waiting.map(|r| ContainerState {
                        waiting: Some(ContainerStateWaiting {
                            reason: Some(r.into()),
                            message: None,
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn event(reason: &str, name: &str, message: &str, at: i64, count: i32) -> Event {
        Event {
            reason: Some(reason.into()),
            type_: Some("Warning".into()),
            message: Some(message.into()),
            count: Some(count),
            last_timestamp: Some(Time(Timestamp::from_second(at).unwrap())),
            involved_object: ObjectReference {
                kind: Some("AddressPool".into()),
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn pods_show_phase_readiness_restarts_and_why_they_wait() {
        let text = format_pods(&[
            pod("dns-a", true, None),
            pod("dns-b", false, Some("CrashLoopBackOff")),
        ]);
        assert_eq!(
            text,
            "dns-a Running ready 1/1 restarts 0 ip 10.244.0.5\n\
             dns-b Pending ready 0/1 restarts 3 ip - (dns: CrashLoopBackOff)\n"
        );
    }

    #[test]
    fn events_are_sorted_oldest_first_with_repeat_counts() {
        let text = format_events(&[
            event(
                "Failover",
                "app-eu-west",
                "answer moved to app-us-east",
                200,
                1,
            ),
            event(
                "AddressDown",
                "app-eu-west",
                "10.244.0.11 failed 2 checks ",
                100,
                4,
            ),
        ]);
        assert_eq!(
            text,
            "Warning AddressDown AddressPool/app-eu-west: 10.244.0.11 failed 2 checks (x4)\n\
             Warning Failover AddressPool/app-eu-west: answer moved to app-us-east\n"
        );
    }

    #[test]
    fn report_has_a_heading_per_section_and_marks_empty_ones() {
        let report = render(&[
            Section {
                title: "ns: pods".into(),
                body: "a Running\n\n".into(),
            },
            Section {
                title: "ns: events".into(),
                body: " \n".into(),
            },
        ]);
        assert_eq!(
            report,
            "==== ns: pods ====\na Running\n==== ns: events ====\n(nothing)\n"
        );
    }
}
