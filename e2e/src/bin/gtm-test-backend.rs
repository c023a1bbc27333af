//! `gtm-test-backend`: an HTTP backend for the kube-gtm e2e tests (see `e2e::backend`).

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;

/// HTTP backend for health-check tests: GET /healthz is 200 until POST /fail, then 503 until
/// POST /recover.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "GTM_BACKEND_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Name returned by GET / (defaults to the host name, i.e. the pod name).
    #[arg(long, env = "GTM_BACKEND_NAME")]
    name: Option<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let Args { listen, name } = Args::parse();
    let name = name
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "backend".into());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    eprintln!(
        "gtm-test-backend {name} listening on {}",
        listener.local_addr()?
    );
    // As PID 1 in a container, SIGTERM is ignored unless handled: handle it, so pods stop at once.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        served = e2e::backend::serve(listener, e2e::backend::Backend::new(name)) => served?,
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        super::Args::command().debug_assert();
    }
}
