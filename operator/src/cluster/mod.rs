//! The operator in a cluster: watches the four kinds and its own ConfigMaps, takes the leader
//! Lease, and runs a reconcile pass ([`reconciler`]) whenever anything changed.

mod configmaps;
mod reconciler;
mod sink;
mod status_change;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use futures::StreamExt;
use gtm_crds::pool::EndpointKind;
use gtm_crds::{AddressPool, GtmAccessDomain, GtmZone, HealthCheckTemplate};
use gtm_prober::plan::Location;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, Store};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, CustomResourceExt, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use std::collections::BTreeMap;

use crate::compile::Compilation;
use crate::discovery::KindWatches;
use crate::endpoints::{Discovered, ENDPOINTS_KEY, ENDPOINTS_LABEL, Published, published_name};
use crate::health::{Restored, restored_from_status};
use crate::http::{HttpState, bind, serve};
use crate::inventory::{Inventory, SpecVersion};
use crate::local::now;
use crate::locations::configmaps::ReportConfigMaps;
use crate::locations::{Embedded, LocationBook, Quorum};
use crate::metrics::Metrics;
use crate::monitor::Monitor;
use crate::page::{Feed, RemoteResults, Snapshot, Source};
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
    /// Whether `gtm_operator_address_up` has a series per address.
    pub address_metrics: bool,
    /// When a change that drops most access domains is held.
    pub drop_guard: crate::drop_guard::DropGuardSettings,
    /// Whether the HTTP port serves the topology page.
    pub topology_page: bool,
    /// The kinds whose objects endpoint sources may name in this cluster (watched in the
    /// watched namespaces); empty turns discovery in this cluster off.
    pub endpoint_kinds: Vec<EndpointKind>,
    /// The embedded prober as a location (name `local`, labels).
    pub location: Location,
    /// A remote location is stale (abstains) after this long without a heartbeat.
    pub stale_after: Duration,
    /// The Secret of `namespace` holding the signed zones' keys (`<zone>.key` items), read
    /// for the DS records in status.
    pub dnssec_keys_secret: Option<String>,
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

/// Waits until the CRDs are established.
async fn wait_for_crds(client: &Client) -> anyhow::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [
        GtmAccessDomain::crd_name(),
        AddressPool::crd_name(),
        HealthCheckTemplate::crd_name(),
        GtmZone::crd_name(),
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
    let page = opts.topology_page.then(Feed::new);
    let http = tokio::spawn(serve(
        bind(opts.http_listen).await?,
        HttpState {
            metrics: metrics.clone(),
            ready: ready.clone(),
            page: page.as_ref().map(Feed::subscribe),
        },
        shutdown.clone(),
    ));

    wait_for_crds(&client).await?;
    let mut reconciler = new_reconciler(&client, &opts, metrics.clone());
    reconciler.set_page(page.clone());
    let changed = Arc::new(Notify::new());
    let watches = Watches::start(&client, &opts, &reconciler.selector(), &changed);
    watches.wait_until_ready().await?;
    ready.store(true, Ordering::Release);
    tracing::info!("watches synced");

    let (leader, leadership) = leadership(&client, &opts).await?;
    let mut operator = Operator {
        reconciler,
        watches,
        changed,
        metrics,
        probe_concurrency: opts.probe_concurrency,
        monitor: None,
        restored: BTreeMap::new(),
        compiled: CompileCache::default(),
        backoff: Backoff::default(),
        page,
        location: opts.location.clone(),
        book: LocationBook::new(opts.stale_after),
        reports: ReportConfigMaps::default(),
        quorum: Quorum::default(),
    };
    let result = operator.run_until_shutdown(leader).await;
    tracing::info!("shutting down");
    drop(operator);
    leadership.release().await;
    shutdown.cancel();
    http.await??;
    result
}

/// The reconciler for `opts`, writing as this replica.
fn new_reconciler(client: &Client, opts: &ClusterOptions, metrics: Arc<Metrics>) -> Reconciler {
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
            address_metrics: opts.address_metrics,
            keys_secret: opts.dnssec_keys_secret.clone(),
        },
        reporter,
        metrics,
    );
    reconciler.set_drop_guard(opts.drop_guard);
    reconciler
}

/// The watches a pass reads: the four kinds in the watched namespaces, the payload
/// ConfigMaps (by `selector`) and the probe locations' report ConfigMaps in the operator's
/// namespace, and for endpoint sources the enabled kinds in the watched namespaces and the
/// ConfigMaps edge clusters' agents publish.
struct Watches {
    domains: Stores<GtmAccessDomain>,
    pools: Stores<AddressPool>,
    templates: Stores<HealthCheckTemplate>,
    gtm_zones: Stores<GtmZone>,
    configmaps: Stores<ConfigMap>,
    endpoints: KindWatches,
    published: Stores<ConfigMap>,
    instance: String,
    reports: Stores<ConfigMap>,
}

impl Watches {
    /// Starts every watch; each event wakes `changed`.
    fn start(
        client: &Client,
        opts: &ClusterOptions,
        selector: &str,
        changed: &Arc<Notify>,
    ) -> Self {
        let ns = &opts.watch_namespaces;
        let cfg = watcher::Config::default();
        Self {
            domains: Stores::watch(client, ns, cfg.clone(), changed),
            pools: Stores::watch(client, ns, cfg.clone(), changed),
            templates: Stores::watch(client, ns, cfg.clone(), changed),
            gtm_zones: Stores::watch(client, ns, cfg, changed),
            configmaps: Stores::watch(
                client,
                std::slice::from_ref(&opts.namespace),
                watcher::Config::default().labels(selector),
                changed,
            ),
            endpoints: KindWatches::start(client, &opts.endpoint_kinds, ns, changed),
            published: Stores::watch(
                client,
                std::slice::from_ref(&opts.namespace),
                watcher::Config::default().labels(ENDPOINTS_LABEL),
                changed,
            ),
            instance: opts.instance.clone(),
            reports: Stores::watch(
                client,
                std::slice::from_ref(&opts.namespace),
                watcher::Config::default().labels(&gtm_crds::location::selector(&opts.instance)),
                changed,
            ),
        }
    }

    async fn wait_until_ready(&self) -> anyhow::Result<()> {
        self.domains.wait_until_ready().await?;
        self.pools.wait_until_ready().await?;
        self.templates.wait_until_ready().await?;
        self.gtm_zones.wait_until_ready().await?;
        self.published.wait_until_ready().await?;
        self.configmaps.wait_until_ready().await?;
        self.reports.wait_until_ready().await
    }

    /// The objects, pools with the addresses their endpoint sources resolve to.
    fn inventory(&self) -> Inventory {
        let mut inventory = Inventory {
            domains: self.domains.state(),
            pools: self.pools.state(),
            templates: self.templates.state(),
            gtm_zones: self.gtm_zones.state(),
            endpoints: Default::default(),
        };
        inventory.resolve_endpoints(&self.discovered());
        inventory
    }

    /// What this cluster's watches and the edge clusters' agents tell of endpoint objects.
    fn discovered(&self) -> Discovered {
        let mut out = Discovered::default();
        self.endpoints.add_to(None, &mut out);
        let prefix = published_name(&self.instance, "");
        for cm in self.published.state() {
            let name = cm.name_any();
            let Some(cluster) = name.strip_prefix(&prefix).filter(|c| !c.is_empty()) else {
                continue;
            };
            let text = cm.data.as_ref().and_then(|d| d.get(ENDPOINTS_KEY));
            match text.map(|t| serde_json::from_str::<Published>(t)) {
                Some(Ok(published)) => out.add_published(cluster, published),
                Some(Err(e)) => {
                    tracing::warn!(%name, "published endpoints unreadable; ignored: {e}")
                }
                None => {
                    tracing::warn!(%name, "published endpoints without {ENDPOINTS_KEY}; ignored")
                }
            }
        }
        out
    }
}

/// What the loop does about leadership before a pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LeaderStep {
    /// Just became the leader: resume from what is published and start probing.
    Start,
    /// No longer the leader: stop probing.
    Stop,
    /// Nothing changed.
    Stay,
}

/// The step for a replica that leads (or not) and probes (or not): only the leader probes.
fn leader_step(leading: bool, probing: bool) -> LeaderStep {
    match (leading, probing) {
        (true, false) => LeaderStep::Start,
        (false, true) => LeaderStep::Stop,
        (true, true) | (false, false) => LeaderStep::Stay,
    }
}

/// The last compilation and the spec versions it was made from. Specs change only with a
/// generation: status writes (ours included) and health transitions reuse it.
#[derive(Default)]
struct CompileCache(Option<(Vec<SpecVersion>, Compilation)>);

impl CompileCache {
    /// The compilation of an inventory whose objects are at `specs`: the cached one when the
    /// specs are the same, else `compile()`'s, which `fresh` is told about first.
    fn get(
        &mut self,
        specs: Vec<SpecVersion>,
        compile: impl FnOnce() -> Compilation,
        fresh: impl FnOnce(&Compilation),
    ) -> &Compilation {
        if self
            .0
            .as_ref()
            .is_none_or(|(versions, _)| *versions != specs)
        {
            let compilation = compile();
            fresh(&compilation);
            self.0 = Some((specs, compilation));
        }
        &self.0.as_ref().expect("compiled above").1
    }

    /// Forgets the compilation: the next `get` compiles.
    fn clear(&mut self) {
        self.0 = None;
    }
}

/// The wait before retrying a failed step: 100 ms, doubling up to 30 s, back to 100 ms after a
/// success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(30);

    /// The wait now; the next one is twice as long.
    fn next(&mut self) -> Duration {
        let now = self.0;
        self.0 = (now * 2).min(Self::MAX);
        now
    }

    /// After a success.
    fn reset(&mut self) {
        self.0 = Self::FIRST;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self(Self::FIRST)
    }
}

/// The state of the main loop.
struct Operator {
    reconciler: Reconciler,
    watches: Watches,
    changed: Arc<Notify>,
    metrics: Arc<Metrics>,
    probe_concurrency: usize,
    /// Probing, while leading; a new leader starts every task from the state in status.
    monitor: Option<Monitor>,
    /// The task states read from the statuses when leadership began.
    restored: BTreeMap<String, Restored>,
    compiled: CompileCache,
    backoff: Backoff,
    /// Where the topology page reads from (the reconciler publishes while leading).
    page: Option<Feed>,
    /// The embedded prober as a location.
    location: Location,
    /// The remote locations.
    book: LocationBook,
    /// What was read of their report ConfigMaps.
    reports: ReportConfigMaps,
    /// The last verdict of every task, kept where nobody votes.
    quorum: Quorum,
}

impl Operator {
    /// Follows leadership and runs a pass after every change until SIGTERM or Ctrl-C.
    async fn run_until_shutdown(
        &mut self,
        mut leader: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            let leading = *leader.borrow();
            self.metrics.leader.set(i64::from(leading));
            match leader_step(leading, self.monitor.is_some()) {
                LeaderStep::Start => {
                    if let Err(e) = self.start_leading().await {
                        let wait = self.backoff.next();
                        tracing::warn!(
                            "reading the published payloads failed, retrying in {wait:?}: {e}"
                        );
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                }
                LeaderStep::Stop => {
                    tracing::info!("no longer leading: probing stops");
                    self.monitor = None;
                }
                LeaderStep::Stay => {}
            }
            if let Err(e) = self.pass().await {
                // After an API outage the watches relist as soon as the API server is back:
                // that change retries at once instead of at the end of a long backoff.
                let wait = self.backoff.next();
                tracing::warn!("reconcile failed, retrying in {wait:?} or at the next change: {e}");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.changed.notified() => {}
                    _ = shutdown_signal(&mut term) => return Ok(()),
                }
                continue;
            }
            let transitions = async {
                match self.monitor.as_ref() {
                    Some(m) => m.next_transitions().await,
                    None => std::future::pending().await,
                }
            };
            // Only the leader runs passes, so only it waits for a hold to end or a location
            // to turn stale.
            let hold_until = self.monitor.as_ref().and(self.reconciler.hold_until());
            let expiry = self
                .monitor
                .as_ref()
                .and(self.book.next_expiry(SystemTime::now()))
                .map(|d| tokio::time::Instant::now() + d);
            let wake_at = match (hold_until, expiry) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::select! {
                _ = self.changed.notified() => {}
                _ = transitions => {}
                r = leader.changed() => r.context("leader election stopped")?,
                // Refreshes last probe times and latencies in status now and then, and
                // publishes a held drop when its hold ends.
                _ = tokio::time::sleep_until(idle_until(tokio::time::Instant::now(), wake_at)) => {}
                _ = shutdown_signal(&mut term) => return Ok(()),
            }
        }
    }

    /// Becomes the leader: resumes from the published payloads and starts probing from the
    /// task states in status.
    async fn start_leading(&mut self) -> kube::Result<()> {
        tracing::info!("leading: resuming from the published payloads and statuses");
        self.reconciler.resume().await?;
        self.restored = restored_from_status(self.watches.pools.state().iter().map(|p| p.as_ref()));
        self.quorum = Quorum::new(&self.restored);
        self.monitor = Some(Monitor::new(self.probe_concurrency, self.metrics.clone()));
        self.compiled.clear();
        Ok(())
    }

    /// One reconcile pass, when leading; a standby only shows the statuses the leader wrote.
    async fn pass(&mut self) -> kube::Result<()> {
        let Some(monitor) = self.monitor.as_mut() else {
            if let Some(page) = &self.page {
                page.publish(Snapshot {
                    inventory: self.watches.inventory(),
                    statuses: BTreeMap::new(),
                    remote: RemoteResults::new(),
                    source: Source::Standby,
                    taken: now(),
                });
            }
            return Ok(());
        };
        // Coalesce bursts of watch events into one pass.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let inventory = self.watches.inventory();
        let (reconciler, restored, location) = (&self.reconciler, &self.restored, &self.location);
        let compilation = self.compiled.get(
            inventory.spec_versions(),
            || reconciler.compile(&inventory),
            |compilation| monitor.update(&compilation.tasks, location, restored),
        );
        let clock = SystemTime::now();
        let reports = self.watches.reports.state();
        self.reports.read(&reports, &mut self.book, clock);
        let flipped = self.book.refresh(clock);
        let embedded = monitor.tasks();
        let view = self.quorum.vote(
            &compilation.tasks,
            &Embedded {
                location: &self.location,
                tasks: &embedded,
            },
            &self.book,
            clock,
        );
        self.metrics.record_locations(&self.book, &embedded, clock);
        let mut report = self
            .reconciler
            .reconcile(
                &inventory,
                compilation,
                &view,
                &self.watches.configmaps.state(),
                &now(),
            )
            .await?;
        report.events += self
            .reconciler
            .record_location_events(&flipped, &reports, self.book.stale_after())
            .await;
        self.backoff.reset();
        if report != Default::default() {
            tracing::info!(?report, "reconciled");
        }
        Ok(())
    }
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal(term: &mut tokio::signal::unix::Signal) {
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Until when the loop waits when nothing happens: the next status refresh, or `wake_at` (the
/// end of a held drop, a location turning stale) if that comes first.
fn idle_until(
    now: tokio::time::Instant,
    wake_at: Option<tokio::time::Instant>,
) -> tokio::time::Instant {
    let refresh = now + STATUS_REFRESH;
    wake_at.map_or(refresh, |at| at.min(refresh))
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

    #[test]
    fn only_the_leader_probes() {
        assert_eq!(leader_step(true, false), LeaderStep::Start);
        assert_eq!(leader_step(false, true), LeaderStep::Stop);
        assert_eq!(leader_step(true, true), LeaderStep::Stay);
        assert_eq!(leader_step(false, false), LeaderStep::Stay);
    }

    #[test]
    fn a_compilation_is_reused_until_a_spec_changes_or_it_is_cleared() {
        let specs = |generation: i64| {
            vec![SpecVersion {
                key: crate::inventory::ObjectKey::new(
                    gtm_crds::manifest::Kind::AddressPool,
                    "ns",
                    "p",
                ),
                uid: Some("u".into()),
                generation: Some(generation),
                discovered: Vec::new(),
            }]
        };
        let mut cache = CompileCache::default();
        let (mut compiles, mut told) = (0, 0);
        let mut get = |cache: &mut CompileCache, generation| {
            cache.get(
                specs(generation),
                || {
                    compiles += 1;
                    crate::compile::compile(&Inventory::default(), &[])
                },
                |_| told += 1,
            );
        };
        get(&mut cache, 1);
        get(&mut cache, 1);
        get(&mut cache, 2);
        cache.clear();
        get(&mut cache, 2);
        assert_eq!(compiles, 3);
        assert_eq!(told, 3, "every fresh compilation is handed to the prober");
    }

    #[test]
    fn retries_back_off_from_100_ms_to_30_s_and_start_over_after_a_success() {
        let mut backoff = Backoff::default();
        let waits: Vec<u64> = (0..11).map(|_| backoff.next().as_millis() as u64).collect();
        assert_eq!(
            waits,
            [
                100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000
            ]
        );
        backoff.reset();
        assert_eq!(backoff.next(), Duration::from_millis(100));
    }
}
