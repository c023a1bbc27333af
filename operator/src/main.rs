//! `gtm-operator`: the controller half of kube-gtm.

use std::io::Write;

use clap::{Parser, Subcommand};

/// kube-gtm operator.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions of the three kinds as YAML (what `make crds` checks
    /// in under charts/kube-gtm/files/crds.yaml).
    Crds,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crds => {
            std::io::stdout().write_all(gtm_crds::crd_manifests().as_bytes())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
