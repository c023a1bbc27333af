//! `gtm-prober`: a probe location of kube-gtm (see [`gtm_prober::remote`]).
//!
//! Signals: SIGTERM and SIGINT stop it.

use clap::Parser;
use gtm_prober::cli::Cli;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    gtm_prober::remote::run(Cli::parse().into()).await
}
