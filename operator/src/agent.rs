//! `gtm-operator endpoint-agent`: runs in an edge cluster, watches the kinds endpoint sources
//! name there ([`KindWatches`], read-only, with the pod's own account), and publishes the
//! addresses in their status to the control cluster through the API: one ConfigMap
//! [`published_name`]`(instance, cluster)` in the control release's namespace, written by
//! server-side apply with the kubeconfig of an account that may write that ConfigMap only
//! (the control release's `edgeAccess.endpointAgents`). It writes only on change, after every
//! kind has listed once, and retries a failed write with backoff; the operator reads the
//! ConfigMap as that cluster's objects (`endpointSources[].cluster`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use gtm_crds::parts::{INSTANCE_LABEL, MAX_PART_BYTES};
use gtm_crds::pool::EndpointKind;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ObjectMeta, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::discovery::KindWatches;
use crate::endpoints::{Discovered, ENDPOINTS_KEY, ENDPOINTS_LABEL, published_name};
use crate::http::{HttpState, bind, serve};
use crate::metrics::Metrics;

/// Field manager of the agent's writes.
pub const AGENT_FIELD_MANAGER: &str = "gtm-endpoint-agent";

/// Settings of `gtm-operator endpoint-agent`.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// The name this cluster is published under (`endpointSources[].cluster`).
    pub cluster: String,
    /// The kinds watched here.
    pub kinds: Vec<EndpointKind>,
    /// Namespaces watched here; all when empty.
    pub watch_namespaces: Vec<String>,
    /// Kubeconfig of the control cluster.
    pub control_kubeconfig: PathBuf,
    /// The control release's namespace, where the ConfigMap goes.
    pub control_namespace: String,
    /// The control release's instance (the ConfigMap's name prefix and label).
    pub instance: String,
    /// Address of `/healthz` and `/readyz` (ready once published).
    pub http_listen: SocketAddr,
}

/// Runs the agent until SIGTERM or SIGINT.
pub async fn run(opts: AgentOptions) -> anyhow::Result<()> {
    let local = Client::try_default()
        .await
        .context("connecting to this cluster's API")?;
    let path = opts.control_kubeconfig.display();
    let kubeconfig = Kubeconfig::read_from(&opts.control_kubeconfig)
        .with_context(|| format!("reading --control-kubeconfig {path}"))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("loading --control-kubeconfig {path}"))?;
    let control = Client::try_from(config).context("a client for the control cluster")?;
    let ready = Arc::new(AtomicBool::new(false));
    let shutdown = CancellationToken::new();
    let http = tokio::spawn(serve(
        bind(opts.http_listen).await?,
        HttpState {
            metrics: Arc::new(Metrics::new()),
            ready: ready.clone(),
            page: None,
        },
        shutdown.clone(),
    ));
    let changed = Arc::new(Notify::new());
    let watches = KindWatches::start(&local, &opts.kinds, &opts.watch_namespaces, &changed);
    let publisher = Publisher {
        api: Api::namespaced(control, &opts.control_namespace),
        name: published_name(&opts.instance, &opts.cluster),
        cluster: opts.cluster.clone(),
        instance: opts.instance.clone(),
    };
    tracing::info!(
        cluster = %opts.cluster,
        kinds = ?opts.kinds,
        configmap = %publisher.name,
        namespace = %opts.control_namespace,
        "publishing this cluster's endpoints to the control cluster"
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut last: Option<String> = None;
    let mut retry = Duration::from_millis(100);
    loop {
        let mut wait = None;
        if watches.synced() {
            let mut own = Discovered::default();
            watches.add_to(None, &mut own);
            let text = serde_json::to_string(&own.to_published())?;
            if last.as_ref() != Some(&text) {
                match publisher.publish(&text).await {
                    Ok(()) => {
                        tracing::info!(objects = own.objects.len(), "endpoints published");
                        last = Some(text);
                        ready.store(true, Ordering::Release);
                        retry = Duration::from_millis(100);
                    }
                    Err(e) => {
                        tracing::warn!(
                            "publishing the endpoints failed, retrying in {retry:?}: {e:#}"
                        );
                        wait = Some(retry);
                        retry = (retry * 2).min(Duration::from_secs(30));
                    }
                }
            }
        }
        tokio::select! {
            _ = changed.notified() => {}
            _ = tokio::time::sleep(wait.unwrap_or(Duration::from_secs(3600))) => {}
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
        // Coalesce bursts of watch events into one write.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::info!("shutting down");
    shutdown.cancel();
    http.await?
}

/// Writes the agent's ConfigMap in the control cluster.
struct Publisher {
    api: Api<ConfigMap>,
    name: String,
    cluster: String,
    instance: String,
}

impl Publisher {
    /// Applies the ConfigMap holding `text`; refuses a text that does not fit one ConfigMap.
    async fn publish(&self, text: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            text.len() <= MAX_PART_BYTES,
            "the endpoints take {} bytes, more than one ConfigMap holds ({MAX_PART_BYTES}); watch fewer namespaces",
            text.len()
        );
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                labels: Some(BTreeMap::from([
                    (ENDPOINTS_LABEL.to_owned(), self.cluster.clone()),
                    (INSTANCE_LABEL.to_owned(), self.instance.clone()),
                ])),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(
                ENDPOINTS_KEY.to_owned(),
                text.to_owned(),
            )])),
            ..Default::default()
        };
        self.api
            .patch(
                &self.name,
                &PatchParams::apply(AGENT_FIELD_MANAGER).force(),
                &Patch::Apply(&cm),
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use http::{Request, Response};
    use kube::client::Body;
    use tower_test::mock;

    use super::*;

    #[tokio::test]
    async fn the_endpoints_are_applied_to_the_agents_own_configmap() {
        let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
        let publisher = Publisher {
            api: Api::namespaced(Client::new(service, "gtm"), "gtm"),
            name: published_name("kube-gtm", "eu"),
            cluster: "eu".into(),
            instance: "kube-gtm".into(),
        };
        let text = r#"{"kinds":["Service"],"objects":[]}"#;
        let server = tokio::spawn(async move {
            let (request, reply) = handle.next_request().await.expect("a request");
            assert_eq!(request.method(), "PATCH");
            assert_eq!(
                request.uri().to_string(),
                "/api/v1/namespaces/gtm/configmaps/kube-gtm-endpoints-eu?&force=true&fieldManager=gtm-endpoint-agent"
            );
            assert_eq!(
                request.headers()["content-type"],
                "application/apply-patch+yaml"
            );
            let body = request.into_body().collect_bytes().await.unwrap();
            let sent: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(sent["metadata"]["labels"][ENDPOINTS_LABEL], "eu");
            assert_eq!(sent["metadata"]["labels"][INSTANCE_LABEL], "kube-gtm");
            assert_eq!(
                sent["data"][ENDPOINTS_KEY],
                r#"{"kinds":["Service"],"objects":[]}"#
            );
            reply.send_response(
                Response::builder()
                    .status(200)
                    .body(Body::from(serde_json::to_vec(&sent).unwrap()))
                    .unwrap(),
            );
        });
        publisher.publish(text).await.unwrap();
        server.await.unwrap();
        // One ConfigMap holds the whole cluster; more is refused, nothing is written.
        let big = "x".repeat(MAX_PART_BYTES + 1);
        let error = publisher.publish(&big).await.unwrap_err();
        assert!(
            error.to_string().contains("more than one ConfigMap holds"),
            "{error}"
        );
    }
}
