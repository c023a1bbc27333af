//! `gtm-operator`: the controller half of kube-gtm.
//!
//! Signals: SIGTERM and SIGINT stop it; in local mode SIGHUP reads the manifests again and
//! SIGUSR1 prints the status table. Every other use of SIGHUP, SIGUSR1 and SIGUSR2 is logged
//! and ignored: none of them kills the process.

use std::io::Write;

use clap::Parser;
use gtm_operator::cli::{Cli, Command};
use tokio::signal::unix::{Signal, SignalKind, signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let command = Cli::parse().command;
    // Registered before anything else runs; tokio never unregisters a handler, so from here on
    // these signals no longer terminate the process, whatever listens to them later.
    let mut hup = signal(SignalKind::hangup())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    let local = matches!(command, Command::Local(_));
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = recv_unless(&mut hup, local) => "SIGHUP",
                _ = recv_unless(&mut usr1, local) => "SIGUSR1",
                _ = usr2.recv() => "SIGUSR2",
            };
            tracing::info!("{name}: ignored");
        }
    });
    match command {
        Command::Run(args) => gtm_operator::cluster::run(args.into()).await,
        Command::Local(args) => gtm_operator::local::run(args.into()).await,
        Command::EndpointAgent(args) => gtm_operator::agent::run(args.into()).await,
        Command::Crds => {
            std::io::stdout().write_all(gtm_crds::crd_manifests().as_bytes())?;
            Ok(())
        }
    }
}

/// The next delivery of `signal`, never when `handled_elsewhere` (local mode handles it).
async fn recv_unless(signal: &mut Signal, handled_elsewhere: bool) {
    if handled_elsewhere {
        std::future::pending::<()>().await;
    }
    signal.recv().await;
}
