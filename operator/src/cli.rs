//! Command line: `gtm-operator run | local | crds` (see docs/configuration.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use gtm_crds::location::EMBEDDED_LOCATION;
use gtm_prober::plan::Location;

use gtm_crds::pool::EndpointKind;

use crate::agent::AgentOptions;
use crate::cluster::ClusterOptions;
use crate::drop_guard::DropGuardSettings;
use crate::local::LocalOptions;

/// kube-gtm operator.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run in a cluster: reconcile the CRs into the DNS pods' ConfigMaps and report status.
    Run(RunArgs),
    /// Run without a cluster: read CR manifests from a directory, write the DNS pod's payload
    /// files into another, print each object's status.
    Local(LocalArgs),
    /// Run in an edge cluster: publish the addresses of its Services, Ingresses and Gateways
    /// to the control cluster, for `endpointSources` that name this cluster.
    EndpointAgent(AgentArgs),
    /// Print the CustomResourceDefinitions of the four kinds as YAML (what `make crds` checks
    /// in under charts/kube-gtm/files/crds.yaml).
    Crds,
}

/// Flags of `gtm-operator run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Zones the DNS pods are authoritative for (repeatable, or comma-separated).
    #[arg(
        long = "zone",
        env = "GTM_ZONES",
        value_delimiter = ',',
        required = true
    )]
    pub zones: Vec<String>,
    /// Namespace the operator writes its ConfigMaps and Lease to.
    #[arg(long, env = "POD_NAMESPACE")]
    pub namespace: String,
    /// Namespaces whose CRs are reconciled; all when empty.
    #[arg(long, env = "GTM_WATCH_NAMESPACES", value_delimiter = ',')]
    pub watch_namespaces: Vec<String>,
    /// Instance name: ConfigMap name prefix and `gtm.kubegtm.io/instance` label.
    #[arg(long, env = "GTM_INSTANCE", default_value = "kube-gtm")]
    pub instance: String,
    /// Address of `/metrics`, `/healthz`, `/readyz` and the topology page.
    #[arg(long, env = "GTM_HTTP_LISTEN", default_value = "0.0.0.0:8080")]
    pub http_listen: SocketAddr,
    /// The topology page.
    #[command(flatten)]
    pub page: PageArgs,
    /// Take a Lease before writing, so that several replicas can run.
    #[arg(long, env = "GTM_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Lease name; `<instance>-operator` when unset.
    #[arg(long, env = "GTM_LEASE_NAME")]
    pub lease_name: Option<String>,
    /// This replica's identity in the leader Lease and in events (the pod name); the host
    /// name when unset. Must differ between replicas.
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
    /// Status writes in flight at most.
    #[arg(long, env = "GTM_CONCURRENCY", default_value_t = 4)]
    pub concurrency: usize,
    /// Health probes in flight at most.
    #[arg(long, env = "GTM_PROBE_CONCURRENCY", default_value_t = 256)]
    pub probe_concurrency: usize,
    /// Whether `gtm_operator_address_up` has a series per address (100 000 addresses make
    /// 100 000 series); the pool-level metrics stay either way.
    #[arg(long, env = "GTM_ADDRESS_METRICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub address_metrics: bool,
    /// The drop guard.
    #[command(flatten)]
    pub drop_guard: DropGuardArgs,
    /// Kinds whose objects `endpointSources` may name in this cluster (`Service`, `Ingress`,
    /// `Gateway`; comma-separated), watched read-only in the watched namespaces; none when
    /// unset.
    #[arg(long, env = "GTM_ENDPOINT_KINDS", value_delimiter = ',')]
    pub endpoint_kinds: Vec<EndpointKind>,
    /// Probe locations.
    #[command(flatten)]
    pub locations: LocationArgs,
    /// The Secret (in `--namespace`) holding the signed zones' keys, one `<zone>.key` item
    /// each: the one the DNS pods mount (chart `dns.dnssec.keysSecret`, which sets this). The
    /// operator reads it (`get` on this name only) at every reconcile pass with signed zones,
    /// at least every 30 s, to show each `GtmZone`'s DS record in `status.dnssec`; unset,
    /// those zones' `DnssecKeyReady` is `False` (`KeySourceNotSet`).
    #[arg(long, env = "GTM_DNSSEC_KEYS_SECRET")]
    pub dnssec_keys_secret: Option<String>,
}

impl From<RunArgs> for ClusterOptions {
    fn from(a: RunArgs) -> Self {
        ClusterOptions {
            lease_name: a
                .lease_name
                .unwrap_or_else(|| format!("{}-operator", a.instance)),
            identity: a.pod_name.unwrap_or_else(host_identity),
            zones: a.zones,
            namespace: a.namespace,
            watch_namespaces: a.watch_namespaces,
            instance: a.instance,
            http_listen: a.http_listen,
            leader_election: a.leader_election,
            concurrency: a.concurrency,
            probe_concurrency: a.probe_concurrency,
            address_metrics: a.address_metrics,
            drop_guard: a.drop_guard.into(),
            topology_page: a.page.topology_page,
            endpoint_kinds: a.endpoint_kinds,
            location: a.locations.embedded(),
            stale_after: a.locations.stale_after(),
            dnssec_keys_secret: a.dnssec_keys_secret,
        }
    }
}

/// Flags of the topology page (both modes).
#[derive(Debug, clap::Args)]
pub struct PageArgs {
    /// Serve the read-only topology page at `/` of the HTTP port (`--http-listen`): access
    /// domains, pools, addresses, checks and histories, updated live.
    #[arg(long, env = "GTM_TOPOLOGY_PAGE", default_value_t = true, action = clap::ArgAction::Set)]
    pub topology_page: bool,
}

/// The host name (a pod's name in Kubernetes), else a name unique to this process start.
fn host_identity() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            format!("gtm-operator-{}-{nanos:x}", std::process::id())
        })
}

/// Flags of the guard against publishing a change that drops most access domains (both modes).
#[derive(Debug, clap::Args)]
pub struct DropGuardArgs {
    /// A change that drops more than this percentage of the published access domains is held
    /// (the last published config keeps serving) until it persists or is confirmed; 100 turns
    /// the guard off.
    #[arg(long, env = "GTM_MAX_DOMAIN_DROP_PERCENT", default_value_t = 50, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub max_domain_drop_percent: u8,
    /// Seconds a held change must persist before it is published anyway.
    #[arg(long, env = "GTM_DROP_HOLD_SECONDS", default_value_t = 300)]
    pub drop_hold_seconds: u64,
}

impl From<DropGuardArgs> for DropGuardSettings {
    fn from(a: DropGuardArgs) -> Self {
        DropGuardSettings {
            max_drop_percent: a.max_domain_drop_percent,
            hold_for: std::time::Duration::from_secs(a.drop_hold_seconds),
        }
    }
}

/// Flags of `gtm-operator endpoint-agent`.
#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// The name this cluster's objects are published under (`endpointSources[].cluster`).
    #[arg(long, env = "GTM_CLUSTER", value_parser = cluster_name)]
    pub cluster: String,
    /// Kinds watched here (`Service`, `Ingress`, `Gateway`; comma-separated).
    #[arg(
        long,
        env = "GTM_ENDPOINT_KINDS",
        value_delimiter = ',',
        required = true
    )]
    pub endpoint_kinds: Vec<EndpointKind>,
    /// Namespaces watched here; all when empty.
    #[arg(long, env = "GTM_WATCH_NAMESPACES", value_delimiter = ',')]
    pub watch_namespaces: Vec<String>,
    /// Kubeconfig of the control cluster (an account that may write this cluster's endpoints
    /// ConfigMap there).
    #[arg(long, env = "GTM_CONTROL_KUBECONFIG", value_hint = clap::ValueHint::FilePath)]
    pub control_kubeconfig: PathBuf,
    /// The control release's namespace.
    #[arg(long, env = "GTM_CONTROL_NAMESPACE")]
    pub control_namespace: String,
    /// The control release's instance.
    #[arg(long, env = "GTM_INSTANCE", default_value = "kube-gtm")]
    pub instance: String,
    /// Address of `/healthz` and `/readyz` (ready once the endpoints are published).
    #[arg(long, env = "GTM_HTTP_LISTEN", default_value = "0.0.0.0:8080")]
    pub http_listen: SocketAddr,
}

/// A cluster name: a DNS label, as `endpointSources[].cluster` allows.
fn cluster_name(name: &str) -> Result<String, String> {
    gtm_crds::manifest::is_dns1123_label(name)
        .then(|| name.to_owned())
        .ok_or_else(|| format!("{name:?} is not a DNS label (lower-case letters, digits, '-')"))
}

impl From<AgentArgs> for AgentOptions {
    fn from(a: AgentArgs) -> Self {
        AgentOptions {
            cluster: a.cluster,
            kinds: a.endpoint_kinds,
            watch_namespaces: a.watch_namespaces,
            control_kubeconfig: a.control_kubeconfig,
            control_namespace: a.control_namespace,
            instance: a.instance,
            http_listen: a.http_listen,
        }
    }
}

/// Flags about probe locations (both modes).
#[derive(Debug, clap::Args)]
pub struct LocationArgs {
    /// A label of the embedded prober's location `local`, `key=value` (repeatable, or
    /// comma-separated); templates select locations by label.
    #[arg(long = "location-label", env = "GTM_LOCATION_LABELS", value_delimiter = ',', value_parser = gtm_prober::cli::parse_label)]
    pub labels: Vec<(String, String)>,
    /// A remote probe location (`gtm-prober`) whose heartbeat has not changed for this many
    /// seconds is stale: it abstains from every vote until it reports again.
    #[arg(long, env = "GTM_LOCATION_STALE_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub location_stale_seconds: u64,
}

impl LocationArgs {
    /// The embedded prober as a location.
    fn embedded(&self) -> Location {
        Location {
            name: EMBEDDED_LOCATION.into(),
            labels: self.labels.iter().cloned().collect(),
        }
    }

    fn stale_after(&self) -> Duration {
        Duration::from_secs(self.location_stale_seconds)
    }
}

/// Flags of `gtm-operator local`.
#[derive(Debug, clap::Args)]
pub struct LocalArgs {
    /// Directory of CR manifests (`*.yaml`, `*.yml` in any case, multi-document), followed by
    /// its path and rescanned every 3 s.
    #[arg(long, env = "GTM_MANIFESTS", default_value = "examples")]
    pub manifests: PathBuf,
    /// Directory the payload files `config.json` and `health.json` are written to, with
    /// `status.json`, every object's status (read back at start).
    #[arg(long, env = "GTM_OUTPUT")]
    pub output: PathBuf,
    /// Zones the DNS pods serve (repeatable, or comma-separated).
    #[arg(
        long = "zone",
        env = "GTM_ZONES",
        value_delimiter = ',',
        default_value = "gtm.example.com"
    )]
    pub zones: Vec<String>,
    /// Namespace given to manifests that name none.
    #[arg(long, env = "GTM_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// Health probes in flight at most.
    #[arg(long, env = "GTM_PROBE_CONCURRENCY", default_value_t = 256)]
    pub probe_concurrency: usize,
    /// Address of `/metrics`, `/healthz`, `/readyz` and the topology page (port 0 picks a
    /// free port; the log says which).
    #[arg(long, env = "GTM_HTTP_LISTEN", default_value = "127.0.0.1:8080")]
    pub http_listen: SocketAddr,
    /// The topology page.
    #[command(flatten)]
    pub page: PageArgs,
    /// The drop guard.
    #[command(flatten)]
    pub drop_guard: DropGuardArgs,
    /// Directory of the remote probe locations' reports (`gtm-prober --config-dir` writes
    /// them); `<output>/locations` when unset.
    #[arg(long = "locations", env = "GTM_LOCATIONS_DIR")]
    pub locations_dir: Option<PathBuf>,
    /// Probe locations.
    #[command(flatten)]
    pub locations: LocationArgs,
    /// Directory of the signed zones' keys (`<zone>.key`), read for the DS record each
    /// `GtmZone` with `dnssec` shows in status: the DNS pod's `--dnssec-keys`;
    /// `<output>/dnssec` when unset (where `gtm-dnspod --config-dir <output>` reads them).
    #[arg(long, env = "GTM_DNSSEC_KEYS", value_hint = clap::ValueHint::DirPath)]
    pub dnssec_keys: Option<PathBuf>,
}

impl From<LocalArgs> for LocalOptions {
    fn from(a: LocalArgs) -> Self {
        LocalOptions {
            dnssec_keys: a.dnssec_keys.unwrap_or_else(|| a.output.join("dnssec")),
            locations: a
                .locations_dir
                .unwrap_or_else(|| a.output.join(gtm_prober::remote::REPORT_SUBDIR)),
            location: a.locations.embedded(),
            stale_after: a.locations.stale_after(),
            manifests: a.manifests,
            output: a.output,
            zones: a.zones,
            namespace: a.namespace,
            probe_concurrency: a.probe_concurrency,
            drop_guard: a.drop_guard.into(),
            http_listen: a.http_listen,
            topology_page: a.page.topology_page,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn the_agent_takes_a_cluster_name_and_kinds() {
        use clap::Parser;
        let parse = |extra: &[&str]| {
            let mut args = vec![
                "gtm-operator",
                "endpoint-agent",
                "--control-kubeconfig",
                "/k",
                "--control-namespace",
                "gtm",
            ];
            args.extend_from_slice(extra);
            super::Cli::try_parse_from(args)
        };
        let cli = parse(&["--cluster", "eu-1", "--endpoint-kinds", "Service,gateway"]).unwrap();
        let super::Command::EndpointAgent(a) = cli.command else {
            panic!("endpoint-agent")
        };
        assert_eq!(a.cluster, "eu-1");
        assert_eq!(
            a.endpoint_kinds,
            [
                gtm_crds::pool::EndpointKind::Service,
                gtm_crds::pool::EndpointKind::Gateway
            ]
        );
        assert!(parse(&["--cluster", "EU", "--endpoint-kinds", "Service"]).is_err());
        assert!(parse(&["--cluster", "eu", "--endpoint-kinds", "Pod"]).is_err());
        assert!(parse(&["--cluster", "eu"]).is_err(), "kinds are required");
    }
}
