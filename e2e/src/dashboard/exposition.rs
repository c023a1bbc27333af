//! The series names a Prometheus or OpenMetrics text exposition (a `/metrics` body) offers, each
//! mapped to its metric family. A family is offered once its `# TYPE` line is there, samples or
//! not, with the names PromQL selects it by: a counter `x` as `x_total`, a histogram as
//! `x_bucket`, `x_sum` and `x_count`, a summary as `x`, `x_sum` and `x_count`, an info as
//! `x_info`, anything else as `x`. Sample lines of families without a `# TYPE` line count under
//! their own name. (prometheus-client leaves a labelled family out, `# TYPE` line and all, until
//! it has a sample: read the exposition after the process did what the family counts.)

use std::collections::BTreeMap;

/// Series names offered by one or more expositions, each with its family.
#[derive(Debug, Default)]
pub(crate) struct Exported {
    family_of: BTreeMap<String, String>,
}

impl Exported {
    /// Adds what one exposition offers.
    pub(crate) fn add(&mut self, text: &str) {
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut fields = rest.split_whitespace();
                if let (Some(family), Some(kind)) = (fields.next(), fields.next()) {
                    for series in series_names(family, kind) {
                        self.family_of.insert(series, family.to_owned());
                    }
                }
            } else if !line.starts_with('#') {
                let name = line
                    .split(|c: char| c == '{' || c.is_whitespace())
                    .next()
                    .unwrap_or_default();
                if !name.is_empty() {
                    self.family_of
                        .entry(name.to_owned())
                        .or_insert_with(|| name.to_owned());
                }
            }
        }
    }

    /// The family `series` belongs to, if any exposition offers it.
    pub(crate) fn family_of(&self, series: &str) -> Option<&str> {
        self.family_of.get(series).map(String::as_str)
    }
}

/// The names PromQL selects a family of this type by.
fn series_names(family: &str, kind: &str) -> Vec<String> {
    let suffixed = |suffixes: &[&str]| suffixes.iter().map(|s| format!("{family}{s}")).collect();
    match kind {
        // The classic text format may declare a counter by its sample name.
        "counter" if family.ends_with("_total") => vec![family.to_owned()],
        "counter" => suffixed(&["_total", "_created"]),
        "histogram" => suffixed(&["_bucket", "_sum", "_count", "_created"]),
        "gaugehistogram" => suffixed(&["_bucket", "_gsum", "_gcount"]),
        "summary" => suffixed(&["", "_sum", "_count", "_created"]),
        "info" => suffixed(&["_info"]),
        _ => vec![family.to_owned()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape prometheus-client writes: a labelled counter family with no sample yet, a
    /// histogram with a unit, a gauge.
    const OPENMETRICS: &str = "\
# HELP gtm_operator_failovers Failovers and failbacks of access domains.
# TYPE gtm_operator_failovers counter
# HELP gtm_dnspod_answer_duration_seconds Time from a decoded query to its encoded answer.
# TYPE gtm_dnspod_answer_duration_seconds histogram
# UNIT gtm_dnspod_answer_duration_seconds seconds
gtm_dnspod_answer_duration_seconds_sum 0.5
gtm_dnspod_answer_duration_seconds_count 3
gtm_dnspod_answer_duration_seconds_bucket{le=\"+Inf\"} 3
# HELP gtm_operator_leader 1 while this replica holds the leader Lease.
# TYPE gtm_operator_leader gauge
gtm_operator_leader 1
# EOF
";

    #[test]
    fn declared_families_are_offered_under_their_promql_names() {
        let mut exported = Exported::default();
        exported.add(OPENMETRICS);
        for (series, family) in [
            ("gtm_operator_failovers_total", "gtm_operator_failovers"),
            (
                "gtm_dnspod_answer_duration_seconds_bucket",
                "gtm_dnspod_answer_duration_seconds",
            ),
            (
                "gtm_dnspod_answer_duration_seconds_sum",
                "gtm_dnspod_answer_duration_seconds",
            ),
            (
                "gtm_dnspod_answer_duration_seconds_count",
                "gtm_dnspod_answer_duration_seconds",
            ),
            ("gtm_operator_leader", "gtm_operator_leader"),
        ] {
            assert_eq!(exported.family_of(series), Some(family), "{series}");
        }
        for absent in [
            "gtm_operator_failovers",
            "gtm_dnspod_answer_duration_seconds",
            "gtm_operator_leader_total",
            "EOF",
        ] {
            assert_eq!(exported.family_of(absent), None, "{absent}");
        }
    }

    #[test]
    fn expositions_add_up_and_untyped_samples_count_by_name() {
        let mut exported = Exported::default();
        exported.add(OPENMETRICS);
        exported.add(
            "# TYPE legacy_requests_total counter\nlegacy_requests_total 1\nbare{a=\"b\"} 2\n",
        );
        assert_eq!(
            exported.family_of("legacy_requests_total"),
            Some("legacy_requests_total")
        );
        assert_eq!(exported.family_of("bare"), Some("bare"));
        assert_eq!(
            exported.family_of("gtm_operator_leader"),
            Some("gtm_operator_leader")
        );
    }
}
