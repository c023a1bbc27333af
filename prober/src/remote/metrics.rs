//! `gtm-prober`'s metrics (prefix `gtm_prober_`, every series labelled with the location):
//! probes and their latency ([`ProbeMetrics`]), the tasks run by verdict, the config generation
//! followed, and report writes by report and result.

use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::http::Exposition;
use crate::metrics::ProbeMetrics;

/// Labels of the task gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct StateLabels {
    /// The location.
    pub location: String,
    /// `Up`, `Down` or `Unknown`.
    pub state: String,
}

/// Labels of report writes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct WriteLabels {
    /// The location.
    pub location: String,
    /// `verdicts` or `heartbeat`.
    pub report: String,
    /// `ok` or `error`.
    pub result: String,
}

/// Labels of location-wide gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct LocationLabel {
    /// The location.
    pub location: String,
}

/// Every `gtm-prober` metric.
pub(super) struct RemoteMetrics {
    location: String,
    /// Probes and their latency.
    pub probes: ProbeMetrics,
    /// Tasks run, by verdict.
    pub tasks: Family<StateLabels, Gauge>,
    /// Generation of the config whose tasks run.
    pub config_generation: Family<LocationLabel, Gauge<i64, AtomicI64>>,
    /// Generation of the verdicts last published.
    pub verdicts_generation: Family<LocationLabel, Gauge<i64, AtomicI64>>,
    /// Report writes by report and result.
    pub writes: Family<WriteLabels, Counter>,
    registry: Registry,
}

impl RemoteMetrics {
    /// Creates and registers every metric of `location`.
    pub(super) fn new(location: &str) -> Self {
        let mut registry = Registry::with_prefix("gtm_prober");
        let probes = ProbeMetrics::register(&mut registry, location);
        let tasks = Family::<StateLabels, Gauge>::default();
        registry.register("tasks", "Tasks run, by verdict", tasks.clone());
        let config_generation = Family::default();
        registry.register(
            "config_generation",
            "Generation of the config whose tasks run",
            config_generation.clone(),
        );
        let verdicts_generation = Family::default();
        registry.register(
            "verdicts_generation",
            "Generation of the verdicts last published",
            verdicts_generation.clone(),
        );
        let writes = Family::<WriteLabels, Counter>::default();
        registry.register(
            "report_writes",
            "Report writes by report and result",
            writes.clone(),
        );
        Self {
            location: location.into(),
            probes,
            tasks,
            config_generation,
            verdicts_generation,
            writes,
            registry,
        }
    }

    fn location(&self) -> LocationLabel {
        LocationLabel {
            location: self.location.clone(),
        }
    }

    /// Sets the task gauge from counts of (up, down, unknown).
    pub(super) fn set_tasks(&self, (up, down, unknown): (usize, usize, usize)) {
        for (state, n) in [("Up", up), ("Down", down), ("Unknown", unknown)] {
            let labels = StateLabels {
                location: self.location.clone(),
                state: state.into(),
            };
            self.tasks
                .get_or_create(&labels)
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Sets a generation gauge.
    pub(super) fn set_generation(
        &self,
        family: &Family<LocationLabel, Gauge<i64, AtomicI64>>,
        generation: u64,
    ) {
        family
            .get_or_create(&self.location())
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
    }

    /// Counts one report write.
    pub(super) fn count_write(&self, report: &str, ok: bool) {
        let labels = WriteLabels {
            location: self.location.clone(),
            report: report.into(),
            result: if ok { "ok" } else { "error" }.into(),
        };
        self.writes.get_or_create(&labels).inc();
    }
}

impl Exposition for RemoteMetrics {
    fn encode(&self) -> String {
        crate::http::encode(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_names_the_location() {
        let m = RemoteMetrics::new("eu");
        m.set_tasks((2, 1, 0));
        m.set_generation(&m.config_generation, 7);
        m.count_write("verdicts", true);
        let text = m.encode();
        for line in [
            r#"gtm_prober_tasks{location="eu",state="Down"} 1"#,
            r#"gtm_prober_config_generation{location="eu"} 7"#,
            r#"gtm_prober_report_writes_total{location="eu",report="verdicts",result="ok"} 1"#,
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
