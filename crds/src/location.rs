//! The probe-location contract: what a `gtm-prober --location NAME` publishes and the operator
//! reads (the operator's embedded prober is the location [`EMBEDDED_LOCATION`] and publishes
//! nothing: the operator reads it in memory).
//!
//! Each location publishes two reports, apart because they change at different rates:
//!
//! - [`Verdicts`]: its verdict (`Up` or `Down`) of every task it has one for. Written only when
//!   a verdict changes; up to 100 000 tasks per location, so in a cluster it travels split into
//!   parts like the config ([`crate::parts`]): ConfigMaps [`verdicts_configmap_name`].
//! - [`Heartbeat`]: who the location is (name and labels) and when it last vouched that its
//!   published verdicts are current. Small, rewritten every [`Heartbeat::interval_seconds`]: a
//!   ConfigMap [`heartbeat_configmap_name`]. A location whose heartbeat stops is stale and
//!   abstains from the vote.
//!
//! Both kinds of ConfigMap carry [`INSTANCE_LABEL`], [`LOCATION_LABEL`] = the location and
//! [`REPORT_LABEL`] = [`Report::label_value`], and no [`crate::parts::PAYLOAD_LABEL`], so the
//! DNS pods never receive them. In local mode they are the files [`Report::file_name`] in one
//! directory.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::{ContractError, SCHEMA_VERSION, SchemaVersion, check_version};
use crate::parts::{INSTANCE_LABEL, Part, part_in};
use crate::pool::HealthState;

/// The location name of the prober embedded in the operator.
pub const EMBEDDED_LOCATION: &str = "local";
/// Label naming the location a report ConfigMap belongs to.
pub const LOCATION_LABEL: &str = "gtm.kubegtm.io/location";
/// Label saying which report a ConfigMap holds: `verdicts` or `heartbeat`.
pub const REPORT_LABEL: &str = "gtm.kubegtm.io/report";

/// The two reports of a location.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Report {
    /// The [`Verdicts`], in parts.
    Verdicts,
    /// The [`Heartbeat`].
    Heartbeat,
}

impl Report {
    /// Both reports.
    pub const ALL: [Report; 2] = [Report::Verdicts, Report::Heartbeat];

    /// Value of [`REPORT_LABEL`].
    pub fn label_value(self) -> &'static str {
        match self {
            Self::Verdicts => "verdicts",
            Self::Heartbeat => "heartbeat",
        }
    }

    /// Data key of the report's text in its ConfigMap(s).
    pub fn key(self) -> &'static str {
        match self {
            Self::Verdicts => "verdicts.json",
            Self::Heartbeat => "heartbeat.json",
        }
    }

    /// The file of `location`'s report in local mode, e.g. `eu.verdicts.json`.
    pub fn file_name(self, location: &str) -> String {
        format!("{location}.{}", self.key())
    }

    /// The location and report a local-mode file name stands for.
    pub fn of_file_name(name: &str) -> Option<(&str, Report)> {
        Self::ALL.into_iter().find_map(|report| {
            let location = name.strip_suffix(report.key())?.strip_suffix('.')?;
            check_location_name(location).ok()?;
            Some((location, report))
        })
    }

    /// The report a [`REPORT_LABEL`] value names.
    pub fn from_label_value(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.label_value() == value)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label_value())
    }
}

/// A location name that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "location {0:?} is not a valid name: 1 to 63 lower-case letters, digits and '-', starting and ending with a letter or digit"
)]
pub struct BadLocationName(pub String);

/// Checks a location name: an RFC 1123 label (it becomes part of object names and a label value).
pub fn check_location_name(name: &str) -> Result<(), BadLocationName> {
    if crate::manifest::is_dns1123_label(name) {
        Ok(())
    } else {
        Err(BadLocationName(name.into()))
    }
}

/// Name of the ConfigMap holding a location's heartbeat, e.g. `kube-gtm-location-eu`.
pub fn heartbeat_configmap_name(instance: &str, location: &str) -> String {
    format!("{instance}-location-{location}")
}

/// Name of the ConfigMap holding part `index` of a location's verdicts, e.g.
/// `kube-gtm-verdicts-eu-0`.
pub fn verdicts_configmap_name(instance: &str, location: &str, index: usize) -> String {
    format!("{instance}-verdicts-{location}-{index}")
}

/// The label selector of every location report of an instance.
pub fn selector(instance: &str) -> String {
    format!("{INSTANCE_LABEL}={instance},{LOCATION_LABEL}")
}

/// The label selector of one location's reports.
pub fn location_selector(instance: &str, location: &str) -> String {
    format!("{INSTANCE_LABEL}={instance},{LOCATION_LABEL}={location}")
}

/// The labels of one report ConfigMap of `location`.
pub fn report_labels(instance: &str, location: &str, report: Report) -> BTreeMap<String, String> {
    BTreeMap::from([
        (INSTANCE_LABEL.to_string(), instance.to_string()),
        (LOCATION_LABEL.to_string(), location.to_string()),
        (REPORT_LABEL.to_string(), report.label_value().to_string()),
    ])
}

/// The location and report a ConfigMap's labels name, if they name a valid one.
pub fn report_of(cm: &ConfigMap) -> Option<(&str, Report)> {
    let labels = cm.metadata.labels.as_ref()?;
    let location = labels.get(LOCATION_LABEL)?;
    check_location_name(location).ok()?;
    Some((
        location,
        Report::from_label_value(labels.get(REPORT_LABEL)?)?,
    ))
}

/// The verdicts part a ConfigMap holds, when it is one.
pub fn verdicts_part_of(cm: &ConfigMap) -> Option<Part> {
    part_in(cm, Report::Verdicts.key())
}

/// A location's verdicts: the tasks it judges `Up` and those it judges `Down` (a task it has no
/// verdict for yet is in neither list), by task id ([`crate::task_id::TaskId`] as text).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdicts {
    /// Payload schema version (the config's).
    pub schema_version: SchemaVersion,
    /// The location.
    pub location: String,
    /// Increases with every published change.
    pub generation: u64,
    /// Tasks judged `Up`, sorted.
    #[serde(default)]
    pub up: Vec<String>,
    /// Tasks judged `Down`, sorted.
    #[serde(default)]
    pub down: Vec<String>,
    /// The latency of `Up` tasks, in milliseconds, by task id: what latency steering
    /// ([`crate::latency`]) ranks pools by. Reported only when it moves by more than
    /// [`crate::latency::REPORT_CHANGE_PERCENT`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub latency_millis: BTreeMap<String, u32>,
}

impl Verdicts {
    /// The verdicts of `location` from task states; `Unknown` tasks are left out.
    pub fn new<'a>(
        location: &str,
        generation: u64,
        states: impl IntoIterator<Item = (&'a str, HealthState)>,
    ) -> Self {
        let (mut up, mut down) = (Vec::new(), Vec::new());
        for (id, state) in states {
            match state {
                HealthState::Up => up.push(id.to_string()),
                HealthState::Down => down.push(id.to_string()),
                HealthState::Unknown => {}
            }
        }
        up.sort_unstable();
        down.sort_unstable();
        Self {
            schema_version: SCHEMA_VERSION,
            location: location.into(),
            generation,
            up,
            down,
            latency_millis: BTreeMap::new(),
        }
    }

    /// Every verdict, `Up` ones first.
    pub fn states(&self) -> impl Iterator<Item = (&str, HealthState)> {
        let up = self.up.iter().map(|id| (id.as_str(), HealthState::Up));
        let down = self.down.iter().map(|id| (id.as_str(), HealthState::Down));
        up.chain(down)
    }

    /// Parses and version-checks verdicts; refuses a location name that is not valid and a
    /// task listed both up and down.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ContractError> {
        check_version(bytes)?;
        let verdicts: Self = serde_json::from_slice(bytes)?;
        check_location_name(&verdicts.location)
            .map_err(|e| ContractError::Inconsistent(e.to_string()))?;
        if !verdicts.down.is_sorted() {
            return Err(ContractError::Inconsistent(
                "the down list is not sorted".into(),
            ));
        }
        let mut both = verdicts
            .up
            .iter()
            .filter(|id| verdicts.down.binary_search(id).is_ok());
        if let Some(id) = both.next() {
            return Err(ContractError::Inconsistent(format!(
                "task {id} is listed both up and down"
            )));
        }
        Ok(verdicts)
    }

    /// Serializes the verdicts (compact JSON).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("verdicts always serialize")
    }
}

/// A location's heartbeat: who it is, and when it last vouched that its published verdicts
/// are current.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    /// Payload schema version (the config's).
    pub schema_version: SchemaVersion,
    /// The location.
    pub location: String,
    /// The location's labels, which `HealthCheckTemplate.spec.locations.matchLabels` selects on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// When the location last vouched for its verdicts, on its own clock.
    pub observed_time: Timestamp,
    /// Seconds between two heartbeats.
    pub interval_seconds: u32,
}

impl Heartbeat {
    /// Parses and version-checks a heartbeat; refuses a location name that is not valid.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ContractError> {
        check_version(bytes)?;
        let heartbeat: Self = serde_json::from_slice(bytes)?;
        check_location_name(&heartbeat.location)
            .map_err(|e| ContractError::Inconsistent(e.to_string()))?;
        Ok(heartbeat)
    }

    /// Serializes the heartbeat (compact JSON).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a heartbeat always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_names_are_rfc_1123_labels() {
        for good in ["a", "eu-west-1", "local", &"x".repeat(63)] {
            assert_eq!(check_location_name(good), Ok(()), "{good}");
        }
        for bad in ["", "-a", "a-", "EU", "eu_west", "a.b", &"x".repeat(64)] {
            assert!(check_location_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_files_and_selectors() {
        assert_eq!(
            verdicts_configmap_name("kube-gtm", "eu", 2),
            "kube-gtm-verdicts-eu-2"
        );
        assert_eq!(
            heartbeat_configmap_name("kube-gtm", "eu"),
            "kube-gtm-location-eu"
        );
        assert_eq!(Report::Verdicts.file_name("eu"), "eu.verdicts.json");
        assert_eq!(
            Report::of_file_name("eu-1.heartbeat.json"),
            Some(("eu-1", Report::Heartbeat))
        );
        for other in [
            "verdicts.json",
            ".verdicts.json",
            "EU.verdicts.json",
            "eu.json",
        ] {
            assert_eq!(Report::of_file_name(other), None, "{other}");
        }
        assert_eq!(
            selector("kube-gtm"),
            "gtm.kubegtm.io/instance=kube-gtm,gtm.kubegtm.io/location"
        );
        assert_eq!(
            location_selector("kube-gtm", "eu"),
            "gtm.kubegtm.io/instance=kube-gtm,gtm.kubegtm.io/location=eu"
        );
    }

    #[test]
    fn verdicts_round_trip_without_unknown_tasks() {
        let v = Verdicts::new(
            "eu",
            4,
            [
                ("ns/t@b#80", HealthState::Down),
                ("ns/t@a#80", HealthState::Up),
                ("ns/t@c#80", HealthState::Unknown),
                ("ns/t@a#81", HealthState::Down),
            ],
        );
        assert_eq!(v.up, ["ns/t@a#80"]);
        assert_eq!(v.down, ["ns/t@a#81", "ns/t@b#80"]);
        let back = Verdicts::from_json(v.to_json().as_bytes()).unwrap();
        assert_eq!(back, v);
        assert_eq!(back.states().count(), 3);
    }

    #[test]
    fn contradictory_or_foreign_verdicts_are_refused() {
        let both =
            br#"{"schemaVersion":"1.1","location":"eu","generation":1,"up":["a"],"down":["a"]}"#;
        assert!(matches!(
            Verdicts::from_json(both),
            Err(ContractError::Inconsistent(_))
        ));
        let unsorted =
            br#"{"schemaVersion":"1.1","location":"eu","generation":1,"down":["b","a"]}"#;
        assert!(Verdicts::from_json(unsorted).is_err());
        let bad_name = br#"{"schemaVersion":"1.1","location":"EU","generation":1}"#;
        assert!(Verdicts::from_json(bad_name).is_err());
        let future = br#"{"schemaVersion":"2.0","location":"eu","generation":1}"#;
        assert!(matches!(
            Verdicts::from_json(future),
            Err(ContractError::UnsupportedVersion { .. })
        ));
    }

    #[test]
    fn heartbeats_round_trip() {
        let h = Heartbeat {
            schema_version: SCHEMA_VERSION,
            location: "eu".into(),
            labels: BTreeMap::from([("region".into(), "eu".into())]),
            observed_time: "2026-01-01T00:00:00Z".parse().unwrap(),
            interval_seconds: 10,
        };
        let json = h.to_json();
        assert!(
            json.contains(r#""observedTime":"2026-01-01T00:00:00Z""#),
            "{json}"
        );
        assert_eq!(Heartbeat::from_json(json.as_bytes()).unwrap(), h);
    }

    #[test]
    fn report_configmaps_are_told_by_their_labels() {
        let mut cm = ConfigMap::default();
        cm.metadata.labels = Some(report_labels("kube-gtm", "eu", Report::Heartbeat));
        assert_eq!(report_of(&cm), Some(("eu", Report::Heartbeat)));
        cm.metadata.labels = Some(report_labels("kube-gtm", "Bad", Report::Heartbeat));
        assert_eq!(report_of(&cm), None);
        cm.metadata.labels = None;
        assert_eq!(report_of(&cm), None);
    }
}
