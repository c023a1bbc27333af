//! The status conditions the operator writes: their types, which the CRDs' printer columns name
//! too (a test keeps the two in step), and their status values.

use serde::{Deserialize, Serialize};

/// Condition type: the object passed validation and its references resolve.
pub const ACCEPTED: &str = "Accepted";
/// Condition type: the object is in the published config.
pub const READY: &str = "Ready";
/// Condition type (pools): the pool meets its health judgement.
pub const AVAILABLE: &str = "Available";
/// Condition type (pools): some enabled addresses are unavailable.
pub const DEGRADED: &str = "Degraded";
/// Condition type (pools): every health check of the pool can run (ICMP sockets, valid
/// checks).
pub const CHECKS_RUNNABLE: &str = "HealthChecksRunnable";
/// Condition type (pools with `endpointSources`): every source names an object that has
/// addresses.
pub const ENDPOINTS_RESOLVED: &str = "EndpointsResolved";
/// Condition type (templates): some probe location the template selects reports (its tasks
/// are voted on); false when none does, and the tasks keep their last verdicts.
pub const LOCATIONS_REPORTING: &str = "LocationsReporting";
/// Condition type (domains): the domain answers from other pools than its first choice.
pub const FAILED_OVER: &str = "FailedOver";
/// Condition type (zones with `dnssec`): the operator read the zone's key and it is of the
/// zone's algorithm, so `status.dnssec` shows the DS the parent zone needs.
pub const DNSSEC_KEY_READY: &str = "DnssecKeyReady";

/// The `status` of a condition, spelled as Kubernetes does (`"True"`, `"False"`, `"Unknown"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known (also what any other text reads as).
    Unknown,
}

impl ConditionStatus {
    /// The text in a condition's `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }

    /// Reads a condition's `status`; text other than `True` or `False` is `Unknown`.
    pub fn parse(text: &str) -> Self {
        match text {
            "True" => Self::True,
            "False" => Self::False,
            _ => Self::Unknown,
        }
    }
}

impl From<bool> for ConditionStatus {
    fn from(holds: bool) -> Self {
        if holds { Self::True } else { Self::False }
    }
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;

    use super::*;
    use crate::{AddressPool, GtmAccessDomain, HealthCheckTemplate};

    #[test]
    fn statuses_read_and_write_as_kubernetes_spells_them() {
        for status in [
            ConditionStatus::True,
            ConditionStatus::False,
            ConditionStatus::Unknown,
        ] {
            assert_eq!(ConditionStatus::parse(status.as_str()), status);
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::json!(status.as_str())
            );
        }
        assert_eq!(ConditionStatus::parse("true"), ConditionStatus::Unknown);
    }

    /// The printer columns' JSONPaths cannot call code: every column that shows a condition
    /// names exactly one of the types above, and each kind shows the one it should.
    #[test]
    fn printer_columns_name_the_condition_types() {
        for (crd, column, condition) in [
            (GtmAccessDomain::crd(), "Ready", READY),
            (AddressPool::crd(), "Ready", AVAILABLE),
            (HealthCheckTemplate::crd(), "Accepted", ACCEPTED),
        ] {
            let columns: Vec<_> = crd
                .spec
                .versions
                .iter()
                .flat_map(|v| v.additional_printer_columns.iter().flatten())
                .filter(|c| c.json_path.contains(".status.conditions"))
                .map(|c| (c.name.as_str(), c.json_path.as_str()))
                .collect();
            assert_eq!(
                columns,
                [(
                    column,
                    format!(".status.conditions[?(@.type=='{condition}')].status").as_str()
                )],
                "{}",
                crd.spec.names.kind
            );
        }
    }
}
