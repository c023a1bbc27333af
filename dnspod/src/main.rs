//! The `gtm-dnspod` binary: flags, logging, signals; everything else is in the library.
//!
//! Signals: SIGTERM and SIGINT stop the pod gracefully; SIGHUP makes the config source read its
//! payloads again; SIGUSR1 logs what is being served; SIGUSR2 is logged and ignored. None of
//! them kills the process.

use std::sync::Arc;

use clap::Parser;
use gtm_dnspod::cli::Args;
use gtm_dnspod::state::Shared;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Log filter when `RUST_LOG` is unset: hickory logs every request at info.
const DEFAULT_LOG: &str = "info,hickory_server=warn";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG)),
        )
        .init();
    // Installed first: until then these signals would kill the process.
    let signals = match Signals::install() {
        Ok(signals) => signals,
        Err(error) => {
            eprintln!("Error: installing signal handlers: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let shutdown = CancellationToken::new();
    let reload = Arc::new(Notify::new());
    let shared = Shared::new();
    tokio::spawn(signals.handle(shutdown.clone(), reload.clone(), shared.clone()));
    match gtm_dnspod::app::run(args, shared, shutdown, reload).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The signals the pod handles.
struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
    usr1: Signal,
    usr2: Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
            usr1: signal(SignalKind::user_defined1())?,
            usr2: signal(SignalKind::user_defined2())?,
        })
    }

    /// Cancels `shutdown` on SIGTERM or SIGINT, notifies `reload` on SIGHUP, logs the served
    /// state on SIGUSR1.
    async fn handle(
        mut self,
        shutdown: CancellationToken,
        reload: Arc<Notify>,
        shared: Arc<Shared>,
    ) {
        loop {
            tokio::select! {
                _ = self.term.recv() => {
                    tracing::info!("SIGTERM: shutting down");
                    break;
                }
                _ = self.int.recv() => {
                    tracing::info!("SIGINT: shutting down");
                    break;
                }
                _ = self.hup.recv() => {
                    tracing::info!("SIGHUP: reading the config source again");
                    reload.notify_one();
                }
                _ = self.usr1.recv() => log_state(&shared),
                _ = self.usr2.recv() => tracing::info!("SIGUSR2: ignored"),
            }
        }
        shutdown.cancel();
    }
}

/// One log line on what is being served.
fn log_state(shared: &Shared) {
    match shared.snapshot() {
        Some(snapshot) => tracing::info!(
            config_generation = snapshot.compiled.generation(),
            health_generation = snapshot.compiled.health_generation(),
            domains = snapshot.counters.len(),
            "SIGUSR1: serving"
        ),
        None => tracing::info!("SIGUSR1: no config accepted yet; answering SERVFAIL"),
    }
}
