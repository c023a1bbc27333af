//! Command line: `gtm-operator local | crds` (see docs/configuration.md).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    /// Run without a cluster: read CR manifests from a directory, write the DNS pod's payload
    /// files into another, print each object's status.
    Local(LocalArgs),
    /// Print the CustomResourceDefinitions of the three kinds as YAML (what `make crds` checks
    /// in under charts/kube-gtm/files/crds.yaml).
    Crds,
}

/// Flags of `gtm-operator local`.
#[derive(Debug, clap::Args)]
pub struct LocalArgs {
    /// Directory of CR manifests (`*.yaml`, `*.yml`, multi-document).
    #[arg(long, env = "GTM_MANIFESTS", default_value = "examples")]
    pub manifests: PathBuf,
    /// Directory the payload files `config.json` and `health.json` are written to.
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
}

impl From<LocalArgs> for LocalOptions {
    fn from(a: LocalArgs) -> Self {
        LocalOptions {
            manifests: a.manifests,
            output: a.output,
            zones: a.zones,
            namespace: a.namespace,
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
}
