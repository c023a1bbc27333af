//! `gtm-operator`: the controller half of kube-gtm.

use std::io::Write;

use clap::Parser;
use gtm_operator::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Run(args) => gtm_operator::cluster::run(args.into()).await,
        Command::Local(args) => gtm_operator::local::run(args.into()).await,
        Command::Crds => {
            std::io::stdout().write_all(gtm_crds::crd_manifests().as_bytes())?;
            Ok(())
        }
    }
}
