//! The chart's Grafana dashboard (`charts/kube-gtm/files/grafana-dashboard.json`) against what
//! the binaries export: every PromQL expression of the dashboard (panel targets, and the query
//! variables' `label_values(...)`) is read for the metric names it selects ([`promql`]), and each
//! name must be offered by one of the `/metrics` expositions of running processes
//! ([`exposition`]), so that a renamed or removed metric fails a test instead of leaving an
//! empty panel.

mod exposition;
mod promql;

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

/// The dashboard JSON shipped in the chart.
pub const DASHBOARD: &str = include_str!("../../charts/kube-gtm/files/grafana-dashboard.json");

/// One PromQL expression of a dashboard and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The panel title and target refId, or the variable name.
    pub location: String,
    /// The PromQL expression.
    pub expr: String,
}

/// Every PromQL expression of `dashboard`: each panel's targets (panels nested in rows
/// included) and each query variable's. Fails on a panel that has no query, a row aside.
pub fn queries(dashboard: &Value) -> Result<Vec<Query>> {
    let mut out = Vec::new();
    let panels = dashboard["panels"]
        .as_array()
        .context("the dashboard has no panels")?;
    collect_panel_queries(panels, &mut out)?;
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["type"] == "query")
    {
        let name = variable["name"].as_str().unwrap_or_default();
        let query = variable["query"]["query"]
            .as_str()
            .or_else(|| variable["query"].as_str())
            .with_context(|| format!("variable {name} has no query"))?;
        if let Some(expr) = variable_expr(query)
            .with_context(|| format!("variable {name}: unsupported query {query:?}"))?
        {
            out.push(Query {
                location: format!("variable {name}"),
                expr: expr.to_owned(),
            });
        }
    }
    Ok(out)
}

fn collect_panel_queries(panels: &[Value], out: &mut Vec<Query>) -> Result<()> {
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        if panel["type"] == "row" {
            collect_panel_queries(panel["panels"].as_array().map_or(&[], Vec::as_slice), out)?;
            continue;
        }
        let before = out.len();
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or_default();
            if !expr.trim().is_empty() {
                let ref_id = target["refId"].as_str().unwrap_or("?");
                out.push(Query {
                    location: format!("panel {title:?} target {ref_id}"),
                    expr: expr.to_owned(),
                });
            }
        }
        ensure!(out.len() > before, "panel {title:?} has no PromQL target");
    }
    Ok(())
}

/// The PromQL inside a Grafana Prometheus variable query: `label_values(EXPR, label)` and
/// `query_result(EXPR)` hold one, `label_values(label)` and `label_names()` none.
fn variable_expr(query: &str) -> Result<Option<&str>> {
    let query = query.trim();
    let call = |name: &str| {
        query
            .strip_prefix(name)
            .and_then(|q| q.trim_start().strip_prefix('('))
            .and_then(|q| q.strip_suffix(')'))
            .map(str::trim)
    };
    if let Some(args) = call("label_values") {
        // The label is the last argument; the expression may hold commas of its own.
        return Ok(args.rsplit_once(',').map(|(expr, _label)| expr.trim()));
    }
    if let Some(expr) = call("query_result") {
        return Ok(Some(expr));
    }
    if call("label_names").is_some() {
        return Ok(None);
    }
    bail!("not label_values(), query_result() or label_names()")
}

/// The metric names each query of `dashboard` selects, by name, with the locations using it.
pub fn metric_uses(dashboard: &Value) -> Result<BTreeMap<String, Vec<String>>> {
    let mut uses = BTreeMap::<String, Vec<String>>::new();
    for q in queries(dashboard)? {
        let names = promql::metric_names(&q.expr)
            .map_err(|e| anyhow::anyhow!("{}: {e} in {:?}", q.location, q.expr))?;
        ensure!(
            !names.is_empty(),
            "{} selects no metric: {:?}",
            q.location,
            q.expr
        );
        for name in names {
            uses.entry(name).or_default().push(q.location.clone());
        }
    }
    Ok(uses)
}

/// Fails, listing them, when metrics the chart's dashboard names are offered by none of
/// `expositions` (`/metrics` bodies of the running binaries). A labelled family is exported only
/// once it has a sample, so scrape after the processes answered queries and failed over.
pub fn check_exported(expositions: &[&str]) -> Result<()> {
    let dashboard: Value =
        serde_json::from_str(DASHBOARD).context("the chart's dashboard is not JSON")?;
    check_uses_exported(&metric_uses(&dashboard)?, expositions)
}

fn check_uses_exported(uses: &BTreeMap<String, Vec<String>>, expositions: &[&str]) -> Result<()> {
    let mut exported = exposition::Exported::default();
    for text in expositions {
        exported.add(text);
    }
    let missing: Vec<String> = uses
        .iter()
        .filter(|(name, _)| exported.family_of(name).is_none())
        .map(|(name, locations)| format!("{name} (in {})", locations.join(", ")))
        .collect();
    ensure!(
        missing.is_empty(),
        "the Grafana dashboard names metrics no binary exports:\n  {}",
        missing.join("\n  ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chart_dashboard() -> Value {
        serde_json::from_str(DASHBOARD).unwrap()
    }

    #[test]
    fn every_query_of_the_charts_dashboard_reads_and_names_kube_gtm_metrics() {
        let uses = metric_uses(&chart_dashboard()).unwrap();
        let foreign: Vec<_> = uses
            .keys()
            .filter(|n| !n.starts_with("gtm_dnspod_") && !n.starts_with("gtm_operator_"))
            .collect();
        assert!(foreign.is_empty(), "not kube-gtm metrics: {foreign:?}");
        for family in [
            "gtm_dnspod_queries_total",
            "gtm_dnspod_answer_duration_seconds_bucket",
            "gtm_dnspod_reloads_total",
            "gtm_operator_address_up",
            "gtm_operator_pool_available",
            "gtm_operator_failovers_total",
            "gtm_operator_probe_duration_seconds_bucket",
        ] {
            assert!(uses.contains_key(family), "the dashboard shows no {family}");
        }
    }

    #[test]
    fn panels_in_rows_and_variables_are_read_and_a_panel_without_a_query_is_refused() {
        let dashboard = json!({
            "panels": [
                {"type": "row", "title": "r", "panels": [
                    {"type": "timeseries", "title": "inner", "targets": [{"refId": "A", "expr": "a"}]}
                ]},
                {"type": "stat", "title": "outer", "targets": [{"refId": "B", "expr": "b_total"}]}
            ],
            "templating": {"list": [
                {"type": "datasource", "name": "datasource", "query": "prometheus"},
                {"type": "query", "name": "ns", "query": {"query": "label_values(c{x=~\"a,b\"}, namespace)"}},
                {"type": "query", "name": "lbl", "query": "label_values(namespace)"}
            ]}
        });
        let got: Vec<_> = queries(&dashboard)
            .unwrap()
            .into_iter()
            .map(|q| (q.location, q.expr))
            .collect();
        assert_eq!(
            got,
            [
                ("panel \"inner\" target A".to_owned(), "a".to_owned()),
                ("panel \"outer\" target B".to_owned(), "b_total".to_owned()),
                ("variable ns".to_owned(), "c{x=~\"a,b\"}".to_owned()),
            ]
        );
        let empty = json!({"panels": [{"type": "stat", "title": "blank", "targets": [{"refId": "A", "expr": " "}]}]});
        let err = queries(&empty).unwrap_err().to_string();
        assert!(err.contains("\"blank\" has no PromQL target"), "{err}");
    }

    #[test]
    fn metrics_no_exposition_offers_are_listed_with_their_panels() {
        let uses = metric_uses(&json!({"panels": [
            {"type": "stat", "title": "p", "targets": [
                {"refId": "A", "expr": "sum(rate(x_total[5m])) / sum(rate(gone_total[5m]))"},
                {"refId": "B", "expr": "histogram_quantile(0.9, rate(lat_seconds_bucket[5m]))"}
            ]}
        ]}))
        .unwrap();
        let exposition = "# TYPE x counter\n# TYPE lat_seconds histogram\n";
        let err = check_uses_exported(&uses, &[exposition])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("gone_total (in panel \"p\" target A)"),
            "{err}"
        );
        assert!(
            !err.contains("x_total") && !err.contains("lat_seconds"),
            "{err}"
        );
        check_uses_exported(&uses, &[exposition, "# TYPE gone counter\n"]).unwrap();
    }

    #[test]
    fn a_query_that_cannot_be_read_names_its_panel() {
        let err = metric_uses(&json!({"panels": [
            {"type": "stat", "title": "broken", "targets": [{"refId": "C", "expr": "sum(rate(x[5m])"}]}
        ]}))
        .unwrap_err()
        .to_string();
        assert!(err.contains("panel \"broken\" target C"), "{err}");
    }
}
