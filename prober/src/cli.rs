//! Command line of `gtm-prober` (see docs/configuration.md).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use gtm_crds::location::{EMBEDDED_LOCATION, check_location_name};

use crate::plan::Location;
use crate::remote::{RemoteOptions, Source};

/// kube-gtm probe location: probes the health-check tasks of the published config from where it
/// runs, and reports its verdicts to the operator, which counts them in each task's vote.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// This location's name (1 to 63 lower-case letters, digits and '-'); templates select
    /// locations by it. `local` is the operator's embedded prober.
    #[arg(long, env = "GTM_LOCATION", value_parser = location_name)]
    pub location: String,
    /// A label of this location, `key=value` (repeatable, or comma-separated), e.g.
    /// `region=eu`; templates select locations by label too.
    #[arg(long = "label", env = "GTM_LOCATION_LABELS", value_delimiter = ',', value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Local mode: the directory the operator writes its payloads to (`gtm-operator local
    /// --output`); `config.json` is read from it. Without it, the prober reads the control
    /// cluster's ConfigMaps through the API.
    #[arg(long, env = "GTM_CONFIG_DIR")]
    pub config_dir: Option<PathBuf>,
    /// Local mode: the directory the reports go to; `<config-dir>/locations` when unset, which
    /// is where `gtm-operator local` reads them by default.
    #[arg(long, env = "GTM_REPORT_DIR", requires = "config_dir")]
    pub report_dir: Option<PathBuf>,
    /// Cluster mode: the control cluster's namespace of the operator's ConfigMaps, where the
    /// reports are written too.
    #[arg(long, env = "GTM_NAMESPACE", required_unless_present = "config_dir")]
    pub namespace: Option<String>,
    /// Cluster mode: the instance name (ConfigMap prefix and `gtm.kubegtm.io/instance` label).
    #[arg(long, env = "GTM_INSTANCE", default_value = "kube-gtm")]
    pub instance: String,
    /// Cluster mode: a kubeconfig for the control cluster (e.g. mounted from a Secret); the
    /// in-cluster ServiceAccount, or `KUBECONFIG`, when unset.
    #[arg(long, env = "GTM_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Cluster mode: the most ConfigMaps the verdicts may take (900 KiB each, about 20 000
    /// tasks); the chart's Role names exactly that many.
    #[arg(long, env = "GTM_MAX_VERDICT_PARTS", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub max_verdict_parts: u16,
    /// Seconds between two heartbeats; the operator counts a location stale after
    /// `--location-stale-seconds` (30 by default) without one.
    #[arg(long, env = "GTM_HEARTBEAT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub heartbeat_seconds: u32,
    /// Health probes in flight at most.
    #[arg(long, env = "GTM_PROBE_CONCURRENCY", default_value_t = 256)]
    pub probe_concurrency: usize,
    /// Address of `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, env = "GTM_HTTP_LISTEN", default_value = "0.0.0.0:8081")]
    pub http_listen: SocketAddr,
}

fn location_name(s: &str) -> Result<String, String> {
    check_location_name(s).map_err(|e| e.to_string())?;
    if s == EMBEDDED_LOCATION {
        return Err(format!(
            "{s:?} is the operator's embedded prober; give this location another name"
        ));
    }
    Ok(s.to_string())
}

/// Reads a location label, `key=value` (the key not empty).
pub fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("label {s:?} is not key=value")),
    }
}

impl From<Cli> for RemoteOptions {
    fn from(c: Cli) -> Self {
        let source = match (c.config_dir, c.namespace) {
            (Some(config_dir), _) => Source::Dir {
                report_dir: c
                    .report_dir
                    .unwrap_or_else(|| config_dir.join(crate::remote::REPORT_SUBDIR)),
                config_dir,
            },
            (None, namespace) => Source::Cluster {
                namespace: namespace.expect("clap requires --namespace without --config-dir"),
                instance: c.instance,
                kubeconfig: c.kubeconfig,
                max_verdict_parts: usize::from(c.max_verdict_parts),
            },
        };
        RemoteOptions {
            location: Location {
                name: c.location,
                labels: c.labels.into_iter().collect::<BTreeMap<_, _>>(),
            },
            source,
            heartbeat: Duration::from_secs(c.heartbeat_seconds.into()),
            probe_concurrency: c.probe_concurrency,
            http_listen: c.http_listen,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn local_mode_reports_next_to_the_config_by_default() {
        let cli = Cli::try_parse_from([
            "gtm-prober",
            "--location",
            "eu",
            "--label",
            "region=eu,asn=64500",
            "--config-dir",
            "/tmp/out",
        ])
        .unwrap();
        let opts = RemoteOptions::from(cli);
        assert_eq!(opts.location.labels["asn"], "64500");
        assert_eq!(
            opts.source,
            Source::Dir {
                config_dir: "/tmp/out".into(),
                report_dir: "/tmp/out/locations".into(),
            }
        );
    }

    #[test]
    fn bad_names_and_labels_and_a_missing_source_are_refused() {
        for args in [
            &["gtm-prober", "--location", "EU", "--config-dir", "d"][..],
            &["gtm-prober", "--location", "local", "--config-dir", "d"],
            &[
                "gtm-prober",
                "--location",
                "eu",
                "--label",
                "x",
                "--config-dir",
                "d",
            ],
            &["gtm-prober", "--location", "eu"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
        let cli = Cli::try_parse_from(["gtm-prober", "--location", "eu", "--namespace", "gtm"]);
        assert!(matches!(
            RemoteOptions::from(cli.unwrap()).source,
            Source::Cluster { .. }
        ));
    }
}
