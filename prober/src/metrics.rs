//! Probe metrics, the same for the operator's embedded prober (registered under the operator's
//! prefix, `gtm_operator_`) and for `gtm-prober` (`gtm_prober_`): probes by location, protocol
//! and result, and their latency. The `location` label tells the probe locations apart on one
//! dashboard.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::scheduler::ProbeReport;

/// Labels of probe metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    /// The probe location (`local` for the operator's embedded prober).
    pub location: String,
    /// `ICMP`, `TCP`, `HTTP` or `HTTPS`.
    pub protocol: String,
    /// `success` or `failure`.
    pub result: String,
}

/// A histogram of probe latencies: 0.5 ms to about 16 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The probe metrics of one location.
#[derive(Clone, Debug)]
pub struct ProbeMetrics {
    location: String,
    /// Probes by location, protocol and result.
    pub probes: Family<ProbeLabels, Counter>,
    /// Probe latency by location, protocol and result.
    pub probe_duration: Family<ProbeLabels, Histogram, fn() -> Histogram>,
}

impl ProbeMetrics {
    /// Creates the metrics of `location` and registers them in `registry` as `probes` and
    /// `probe_duration_seconds`.
    pub fn register(registry: &mut Registry, location: &str) -> Self {
        let probes = Family::<ProbeLabels, Counter>::default();
        registry.register(
            "probes",
            "Probes by location, protocol and result",
            probes.clone(),
        );
        let probe_duration =
            Family::<ProbeLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        registry.register(
            "probe_duration_seconds",
            "Probe latency by location, protocol and result",
            probe_duration.clone(),
        );
        Self {
            location: location.into(),
            probes,
            probe_duration,
        }
    }

    /// Counts one probe.
    pub fn observe(&self, report: &ProbeReport) {
        let labels = ProbeLabels {
            location: self.location.clone(),
            protocol: format!("{:?}", report.protocol),
            result: if report.outcome.is_success() {
                "success"
            } else {
                "failure"
            }
            .into(),
        };
        self.probes.get_or_create(&labels).inc();
        self.probe_duration
            .get_or_create(&labels)
            .observe(report.outcome.latency.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gtm_crds::pool::HealthState;
    use gtm_crds::template::Protocol;

    use super::*;
    use crate::{ProbeOutcome, TaskHealth};

    #[test]
    fn probes_are_counted_by_location_protocol_and_result() {
        let mut registry = Registry::with_prefix("gtm_prober");
        let metrics = ProbeMetrics::register(&mut registry, "eu");
        metrics.observe(&ProbeReport {
            task_id: "ns/t@192.0.2.1#80".into(),
            protocol: Protocol::TCP,
            outcome: ProbeOutcome {
                latency: Duration::from_millis(3),
                result: Ok(()),
            },
            health: TaskHealth::new(HealthState::Up, None),
            transition: None,
        });
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(
                r#"gtm_prober_probes_total{location="eu",protocol="TCP",result="success"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"gtm_prober_probe_duration_seconds_count{location="eu",protocol="TCP",result="success"} 1"#),
            "{text}"
        );
    }
}
