//! Wiring: config source, DNS listeners and HTTP endpoint, with one shutdown signal fanned out
//! to all of them.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use k8s_openapi::api::core::v1::ConfigMap;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::cli::Args;
use crate::config_source;
use crate::dnstap::Dnstap;
use crate::geoip::GeoIp;
use crate::handler::GtmHandler;
use crate::query_log::QueryLog;
use crate::server::DnsServer;
use crate::state::{Loader, Shared};

/// Runs the pod, serving into `shared`, until `shutdown` is cancelled (the binary cancels it on
/// SIGTERM or SIGINT); the config source reads its payloads again whenever `reload` is
/// notified (SIGHUP).
pub async fn run(
    args: Args,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    reload: Arc<Notify>,
) -> anyhow::Result<()> {
    let geoip = match &args.geoip_db {
        Some(path) => Some(Arc::new(
            GeoIp::open(path).with_context(|| format!("opening {}", path.display()))?,
        )),
        None => {
            tracing::warn!(
                "no --geoip-db: ASN, continent, country and subdivision sources never match"
            );
            None
        }
    };
    let mut loader = Loader::new(shared.clone(), args.zone_settings());
    let key_dir = args
        .dnssec_keys
        .clone()
        .or_else(|| args.config_dir.as_ref().map(|d| d.join("dnssec")));
    if let Some(dir) = key_dir {
        loader = loader.with_key_dir(dir);
    }

    let mut handler = GtmHandler::new(shared.clone(), geoip).with_udp_limits(args.udp_limits());
    if let Some(settings) = args.query_log() {
        let log = QueryLog::start(&settings, shared.metrics.query_log.clone())
            .with_context(|| format!("opening the query log {}", settings.path.display()))?;
        tracing::info!(path = %settings.path.display(), sample = settings.sample, rate = settings.rate, "query log on");
        handler = handler.with_query_log(Arc::new(log));
    }
    if let Some(settings) = args.dnstap() {
        let dnstap = Dnstap::start(&settings, shared.metrics.dnstap.clone())
            .context("starting the dnstap writer")?;
        tracing::info!(socket = %settings.socket.display(), identity = %settings.identity, "dnstap on");
        handler = handler.with_dnstap(Arc::new(dnstap));
    }
    let mut dns = DnsServer::bind_limited(&args.dns_listen, handler, args.tcp_limits())
        .await
        .context("binding the DNS listeners")?;
    let http = TcpListener::bind(args.http_listen)
        .await
        .with_context(|| format!("binding {}", args.http_listen))?;
    let http_addr = http.local_addr().context("the HTTP address")?;
    tracing::info!(dns = ?dns.addrs, http = %http_addr, "listening");

    let source = match (&args.config_dir, &args.namespace) {
        (Some(dir), _) => {
            let (dir, options) = (dir.clone(), args.follow_options());
            let stop = shutdown.clone();
            tokio::spawn(async move {
                config_source::dir::follow(dir, loader, options, reload, stop)
                    .await
                    .map_err(anyhow::Error::from)
            })
        }
        (None, Some(namespace)) => {
            let client = kube_client(args.kubeconfig.as_deref()).await?;
            tracing::info!(
                kubeconfig = ?args.kubeconfig,
                %namespace,
                instance = %args.instance,
                "reading the payload ConfigMaps through the API"
            );
            let api = kube::Api::<ConfigMap>::namespaced(client, namespace);
            tokio::spawn(config_source::kube::monitor(
                api.clone(),
                gtm_crds::parts::selector(&args.instance),
                shared.clone(),
                args.stale_policy(),
                shutdown.clone(),
            ));
            let instance = args.instance.clone();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                config_source::kube::follow(api, &instance, loader, reload, stop).await;
                Ok(())
            })
        }
        (None, None) => anyhow::bail!("--namespace is required without --config-dir"),
    };

    let dns_token = dns.server.shutdown_token().clone();
    let http_task = tokio::spawn(crate::http::serve(
        http,
        shared,
        args.stale_policy(),
        shutdown.clone(),
    ));
    tokio::select! {
        // A source ends when shutdown is cancelled: both are ready then, and the shutdown is
        // what happened (unbiased, one SIGTERM in three exited with "config source stopped").
        biased;
        _ = shutdown.cancelled() => {}
        result = source => {
            // The source only ends on shutdown; anything else is fatal.
            shutdown.cancel();
            result.context("config source task")??;
            anyhow::bail!("config source stopped");
        }
    }
    dns_token.cancel();
    dns.server.block_until_done().await.context("DNS server")?;
    http_task
        .await
        .context("HTTP task")?
        .context("HTTP server")?;
    tracing::info!("stopped");
    Ok(())
}

/// A client for the cluster holding the ConfigMaps: through `kubeconfig` when given (an edge
/// pod reading the control cluster, with the account that kubeconfig names), else this pod's
/// own cluster (in-cluster account, or `KUBECONFIG`).
async fn kube_client(kubeconfig: Option<&Path>) -> anyhow::Result<kube::Client> {
    let Some(path) = kubeconfig else {
        return kube::Client::try_default()
            .await
            .context("connecting to the Kubernetes API");
    };
    let file = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("reading --kubeconfig {}", path.display()))?;
    let config =
        kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
            .await
            .with_context(|| format!("loading --kubeconfig {}", path.display()))?;
    kube::Client::try_from(config)
        .with_context(|| format!("a client from --kubeconfig {}", path.display()))
}
