//! The operator in a cluster: watches the three kinds and its own ConfigMaps, takes the leader
//! Lease, and runs a reconcile pass ([`reconciler`]) whenever anything changed.

mod configmaps;
pub mod reconciler;
mod sink;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use gtm_crds::{AddressPool, GtmAccessDomain, HealthCheckTemplate};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, Store};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, CustomResourceExt, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use std::collections::BTreeMap;

use crate::compile::Compilation;
use crate::health::restored_from_status;
use crate::http::{HttpState, serve};
use crate::inventory::{Inventory, SpecVersion};
use crate::local::now;
use crate::metrics::Metrics;
use crate::monitor::Monitor;
use reconciler::{Reconciler, STATUS_REFRESH};

/// Field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "gtm-operator";

/// Settings of `gtm-operator run`.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Zones served.
    pub zones: Vec<String>,
    /// Namespace of the ConfigMaps and the Lease.
    pub namespace: String,
    /// Namespaces whose CRs are reconciled; empty means all.
    pub watch_namespaces: Vec<String>,
    /// Instance name (ConfigMap prefix and label).
    pub instance: String,
    /// Address of `/metrics`, `/healthz`, `/readyz`.
    pub http_listen: SocketAddr,
    /// Whether to take a Lease before writing.
    pub leader_election: bool,
    /// Lease name.
    pub lease_name: String,
    /// This replica's identity in the Lease and in events.
    pub identity: String,
    /// Status writes in flight at most.
    pub concurrency: usize,
    /// Health probes in flight at most.
    pub probe_concurrency: usize,
    /// When a change that drops most access domains is held.
    pub drop_guard: crate::drop_guard::DropGuardSettings,
}

/// The reflector stores of one kind, one per watched namespace (or one for all).
struct Stores<K: Resource<DynamicType = ()> + Clone + 'static>(Vec<Store<K>>);

impl<K> Stores<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    /// Starts the watches; every event wakes `changed`.
    fn watch(
        client: &Client,
        namespaces: &[String],
        config: watcher::Config,
        changed: &Arc<Notify>,
    ) -> Self
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    {
        let apis: Vec<Api<K>> = if namespaces.is_empty() {
            vec![Api::all(client.clone())]
        } else {
            namespaces
                .iter()
                .map(|ns| Api::namespaced(client.clone(), ns))
                .collect()
        };
        let stores = apis
            .into_iter()
            .map(|api| {
                let (reader, writer) = reflector::store();
                let changed = changed.clone();
                let stream = reflector::reflector(writer, watcher(api, config.clone()))
                    .backoff(gtm_crds::watch::watch_backoff())
                    .for_each(move |event| {
                        if let Err(e) = event {
                            tracing::warn!(kind = %K::kind(&()), "watch error: {e}");
                        }
                        changed.notify_one();
                        futures::future::ready(())
                    });
                tokio::spawn(stream);
                reader
            })
            .collect();
        Self(stores)
    }

    async fn wait_until_ready(&self) -> anyhow::Result<()> {
        for s in &self.0 {
            s.wait_until_ready().await?;
        }
        Ok(())
    }

    fn state(&self) -> Vec<Arc<K>> {
        self.0.iter().flat_map(|s| s.state()).collect()
    }
}

/// Waits until the three CRDs are established.
async fn wait_for_crds(client: &Client) -> anyhow::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [
        GtmAccessDomain::crd_name(),
        AddressPool::crd_name(),
        HealthCheckTemplate::crd_name(),
    ] {
        tracing::info!(crd, "waiting for the CRD to be established");
        await_condition(api.clone(), crd, conditions::is_crd_established())
            .await
            .with_context(|| format!("waiting for CRD {crd}"))?;
    }
    Ok(())
}

/// Runs the operator until SIGTERM.
pub async fn run(opts: ClusterOptions) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API")?;
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    let shutdown = CancellationToken::new();
    let http = tokio::spawn(serve(
        opts.http_listen,
        HttpState {
            metrics: metrics.clone(),
            ready: ready.clone(),
        },
        shutdown.clone(),
    ));

    wait_for_crds(&client).await?;
    let changed = Arc::new(Notify::new());
    let ns = &opts.watch_namespaces;
    let cfg = watcher::Config::default();
    let domains = Stores::<GtmAccessDomain>::watch(&client, ns, cfg.clone(), &changed);
    let pools = Stores::<AddressPool>::watch(&client, ns, cfg.clone(), &changed);
    let templates = Stores::<HealthCheckTemplate>::watch(&client, ns, cfg, &changed);

    let reporter = Reporter {
        controller: FIELD_MANAGER.into(),
        instance: Some(opts.identity.clone()),
    };
    let mut reconciler = Reconciler::new(
        client.clone(),
        reconciler::Settings {
            namespace: opts.namespace.clone(),
            instance: opts.instance.clone(),
            zones: opts.zones.clone(),
            part_bytes: gtm_crds::parts::MAX_PART_BYTES,
            concurrency: opts.concurrency,
        },
        reporter,
        metrics.clone(),
    );
    reconciler.set_drop_guard(opts.drop_guard);
    let configmaps = Stores::<ConfigMap>::watch(
        &client,
        std::slice::from_ref(&opts.namespace),
        watcher::Config::default().labels(&reconciler.selector()),
        &changed,
    );
    domains.wait_until_ready().await?;
    pools.wait_until_ready().await?;
    templates.wait_until_ready().await?;
    configmaps.wait_until_ready().await?;
    ready.store(true, Ordering::Release);
    tracing::info!("watches synced");

    let (mut leader, leadership) = leadership(&client, &opts).await?;
    // Only the leader probes; a new leader starts every task from the state in status.
    let mut monitor: Option<Monitor> = None;
    let mut restored = BTreeMap::new();
    let mut compiled: Option<(Vec<SpecVersion>, Compilation)> = None;
    let mut backoff = Duration::from_millis(100);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let leading = *leader.borrow();
        metrics.leader.set(i64::from(leading));
        match (leading, monitor.is_some()) {
            (true, false) => {
                tracing::info!("leading: resuming from the published payloads and statuses");
                if let Err(e) = reconciler.resume().await {
                    tracing::warn!(
                        "reading the published payloads failed, retrying in {backoff:?}: {e}"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
                restored = restored_from_status(pools.state().iter().map(|p| p.as_ref()));
                monitor = Some(Monitor::new(opts.probe_concurrency, metrics.clone()));
                compiled = None;
            }
            (false, true) => {
                tracing::info!("no longer leading: probing stops");
                monitor = None;
            }
            _ => {}
        }
        if let Some(m) = monitor.as_mut() {
            // Coalesce bursts of watch events into one pass.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let inventory = Inventory {
                domains: domains.state(),
                pools: pools.state(),
                templates: templates.state(),
            };
            // Specs change only with a generation; status writes (ours included) and health
            // transitions reuse the last compilation.
            let specs = inventory.spec_versions();
            if compiled
                .as_ref()
                .is_none_or(|(versions, _)| *versions != specs)
            {
                let compilation = reconciler.compile(&inventory);
                m.update(&compilation.tasks, &restored);
                compiled = Some((specs, compilation));
            }
            let (_, compilation) = compiled.as_ref().expect("compiled above");
            match reconciler
                .reconcile(
                    &inventory,
                    compilation,
                    &m.tasks(),
                    &configmaps.state(),
                    &now(),
                )
                .await
            {
                Ok(report) => {
                    backoff = Duration::from_millis(100);
                    if report != Default::default() {
                        tracing::info!(?report, "reconciled");
                    }
                }
                Err(e) => {
                    // After an API outage the watches relist as soon as the API server is back:
                    // that change retries at once instead of at the end of a long backoff.
                    tracing::warn!(
                        "reconcile failed, retrying in {backoff:?} or at the next change: {e}"
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = changed.notified() => {}
                        _ = term.recv() => break,
                        _ = tokio::signal::ctrl_c() => break,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            }
        }
        let transitions = async {
            match monitor.as_ref() {
                Some(m) => m.next_transitions().await,
                None => std::future::pending().await,
            }
        };
        // Only the leader runs passes, so only it waits for a hold to end.
        let hold_until = monitor.as_ref().and(reconciler.hold_until());
        tokio::select! {
            _ = changed.notified() => {}
            _ = transitions => {}
            r = leader.changed() => r.context("leader election stopped")?,
            // Refreshes last probe times and latencies in status now and then, and publishes a
            // held drop when its hold ends.
            _ = tokio::time::sleep_until(idle_until(tokio::time::Instant::now(), hold_until)) => {}
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    tracing::info!("shutting down");
    drop(monitor);
    drop(leader);
    leadership.release().await;
    shutdown.cancel();
    http.await??;
    Ok(())
}

/// Until when the loop waits when nothing happens: the next status refresh, or the end of a
/// held drop if that comes first.
fn idle_until(
    now: tokio::time::Instant,
    hold_until: Option<tokio::time::Instant>,
) -> tokio::time::Instant {
    let refresh = now + STATUS_REFRESH;
    hold_until.map_or(refresh, |hold| hold.min(refresh))
}

/// Whether this replica leads, and what keeps that answer alive.
enum Leadership {
    /// Leader election is off: always leading.
    Always(tokio::sync::watch::Sender<bool>),
    /// A Lease held by a background task; it ends when the receiver is dropped and hands the
    /// manager back, so the Lease can be released.
    Lease(tokio::task::JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>),
}

impl Leadership {
    /// Gives the Lease up at shutdown (after the receiver was dropped), so that another
    /// replica takes over at once instead of after the Lease expires.
    async fn release(self) {
        let task = match self {
            Self::Always(sender) => return drop(sender),
            Self::Lease(task) => task,
        };
        match task.await {
            Ok(Ok(manager)) => match manager.release().await {
                Ok(()) => tracing::info!("leader Lease released"),
                Err(e) => tracing::warn!("releasing the leader Lease failed: {e}"),
            },
            Ok(Err(e)) => tracing::warn!("leader election ended with an error: {e}"),
            Err(e) => tracing::warn!("leader election task failed: {e}"),
        }
    }
}

/// A channel that says whether this replica leads: a Lease when leader election is on,
/// always `true` otherwise.
async fn leadership(
    client: &Client,
    opts: &ClusterOptions,
) -> anyhow::Result<(tokio::sync::watch::Receiver<bool>, Leadership)> {
    if !opts.leader_election {
        let (tx, rx) = tokio::sync::watch::channel(true);
        return Ok((rx, Leadership::Always(tx)));
    }
    let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &opts.lease_name)
        .with_namespace(&opts.namespace)
        .with_identity(opts.identity.clone())
        .with_duration(15)
        .with_grace(5)
        .build()
        .await
        .context("setting up leader election")?;
    let (rx, task) = manager.watch().await;
    Ok((rx, Leadership::Lease(task)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loop_wakes_up_when_a_hold_ends() {
        let now = tokio::time::Instant::now();
        let soon = now + Duration::from_secs(5);
        assert_eq!(idle_until(now, Some(soon)), soon);
        assert_eq!(idle_until(now, None), now + STATUS_REFRESH);
        let late = now + Duration::from_secs(300);
        assert_eq!(idle_until(now, Some(late)), now + STATUS_REFRESH);
    }
}
