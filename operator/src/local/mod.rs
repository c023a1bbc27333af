//! Local mode: the operator without a cluster. It reads CR manifests from a directory, runs the
//! same validation, compile and evaluation as in a cluster, writes the same payloads as files
//! for the DNS pod (`gtm-dnspod --config-dir`), prints each object's status as a table on
//! every change (and on SIGUSR1) and keeps the statuses in `status.json` next to the payloads;
//! SIGHUP reads the manifests again. Its HTTP port serves `/metrics`, `/healthz`, `/readyz` and
//! the topology page, as in a cluster. The signed zones' keys are read from the DNS pod's key
//! directory at every pass and every [`RESCAN`], for the DS records in status ([`zone_keys`]). The reports of `gtm-prober --config-dir` locations are
//! read from a directory every [`LOCATION_POLL`] and voted on with the embedded prober's
//! verdicts.

pub(crate) mod files;
mod last_good;
mod status_file;
mod table;
mod watch;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use gtm_crds::manifest::ManifestValidator;
use gtm_prober::plan::Location;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio_util::sync::CancellationToken;

use self::last_good::LastGood;
use self::watch::ManifestWatch;
use crate::compile::{Compilation, compile_with_refused};
use crate::drop_guard::{CONFIRM_FILE, DropGuardSettings};
use crate::endpoints::Discovered;
use crate::evaluate::evaluate;
use crate::health::{Restored, TaskHealth, restored_from_snapshot};
use crate::http::{HttpState, bind, serve};
use crate::inventory::{Inventory, ObjectKey};
use crate::locations::files::ReportDir;
use crate::locations::{Embedded, FreshnessChange, HealthView, LocationBook, Quorum};
use crate::manifests::{Loaded, load};
use crate::metrics::Metrics;
use crate::monitor::Monitor;
use crate::page::{Feed, Snapshot, Source};
use crate::publish::{Proposal, Publisher, unix_now};
use crate::status::{ObjectStatus, ZoneFacts, compute_all};
use crate::zone_keys::{self, KeyLog, KeyStates};

/// How often the manifest directory is read even without a change event (a safety net for
/// missed events; a rescan that finds nothing new changes nothing).
pub const RESCAN: Duration = Duration::from_secs(3);

/// How often the location report directory is read (only files that changed are parsed), and
/// so how soon a location is seen to turn stale.
pub const LOCATION_POLL: Duration = Duration::from_millis(50);

/// Settings of local mode.
#[derive(Clone, Debug)]
pub struct LocalOptions {
    /// Directory of CR manifests.
    pub manifests: PathBuf,
    /// Directory the payload files go to.
    pub output: PathBuf,
    /// Zones served.
    pub zones: Vec<String>,
    /// Namespace of manifests that name none.
    pub namespace: String,
    /// Health probes in flight at most.
    pub probe_concurrency: usize,
    /// When a change that drops most access domains is held.
    pub drop_guard: DropGuardSettings,
    /// Address of `/metrics`, `/healthz`, `/readyz` and the topology page.
    pub http_listen: SocketAddr,
    /// Whether the HTTP port serves the topology page.
    pub topology_page: bool,
    /// The embedded prober as a location (name `local`, labels).
    pub location: Location,
    /// Directory of the remote locations' reports.
    pub locations: PathBuf,
    /// A remote location is stale (abstains) after this long without a heartbeat.
    pub stale_after: Duration,
    /// Directory of the signed zones' keys (`<zone>.key`), the DNS pod's `--dnssec-keys`.
    pub dnssec_keys: PathBuf,
}

/// The state local mode keeps between passes.
pub struct LocalOperator {
    opts: LocalOptions,
    validator: ManifestValidator,
    created: HashMap<ObjectKey, Time>,
    publisher: Publisher,
    statuses: BTreeMap<ObjectKey, ObjectStatus>,
    /// The embedded prober's health of the tasks it runs.
    embedded: BTreeMap<String, TaskHealth>,
    book: LocationBook,
    reports: ReportDir,
    quorum: Quorum,
    /// The health published: the tasks as their locations vote them.
    view: HealthView,
    last_good: LastGood,
    /// The report of the change the drop guard holds.
    hold: Option<String>,
    /// Why the compiled config is refused, while it is.
    refused: Option<String>,
    loaded: Loaded,
    compilation: Option<Compilation>,
    table: String,
    page: Option<Feed>,
    /// The signed zones' keys as last read.
    keys: KeyStates,
    key_log: KeyLog,
}

impl LocalOperator {
    /// Prepares local mode; numbering continues after payloads a previous run left behind.
    pub fn new(opts: LocalOptions) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&opts.output)
            .with_context(|| format!("creating {}", opts.output.display()))?;
        let mut publisher = Publisher::new(opts.drop_guard);
        publisher.resume(files::previous_payloads(&opts.output));
        // Transition times and histories carry over from the last run, and so do the task
        // verdicts it published: the first pass, before the prober has a view, votes with no
        // voter and so republishes them (the quorum's last verdicts) instead of an empty
        // health view (every address Unknown, so answered).
        let statuses = status_file::read(&opts.output);
        let restored = publisher
            .last_health()
            .map(restored_from_snapshot)
            .unwrap_or_default();
        Ok(Self {
            book: LocationBook::new(opts.stale_after),
            reports: ReportDir::new(&opts.locations),
            quorum: Quorum::new(&restored),
            opts,
            validator: ManifestValidator::new(),
            created: HashMap::new(),
            publisher,
            statuses,
            embedded: BTreeMap::new(),
            view: HealthView::default(),
            last_good: LastGood::default(),
            hold: None,
            refused: None,
            loaded: Loaded::default(),
            compilation: None,
            table: String::new(),
            page: None,
            keys: KeyStates::new(),
            key_log: KeyLog::default(),
        })
    }

    /// Publishes the statuses after every pass to the topology page.
    pub(crate) fn set_page(&mut self, page: Option<Feed>) {
        self.page = page;
    }

    /// The last compilation (its probe tasks are what the prober runs).
    pub fn compilation(&self) -> Option<&Compilation> {
        self.compilation.as_ref()
    }

    /// The current status table.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The task states the last run published, to start the prober from after a restart.
    pub fn restored(&self) -> BTreeMap<String, Restored> {
        self.publisher
            .last_health()
            .map(restored_from_snapshot)
            .unwrap_or_default()
    }

    /// Re-reads the manifests, recompiles and republishes; returns the status table when it
    /// changed.
    pub async fn reload(&mut self, now: &Time) -> anyhow::Result<Option<String>> {
        let read = files::read_manifests(&self.opts.manifests)
            .with_context(|| format!("reading {}", self.opts.manifests.display()))?;
        let sources = self.last_good.update(read);
        self.loaded = load(
            &sources.texts,
            &self.opts.namespace,
            &self.validator,
            &mut self.created,
            now,
        );
        self.loaded.problems.splice(0..0, sources.problems);
        // No cluster here: a pool's endpoint sources resolve to nothing, and its
        // EndpointsResolved condition says why.
        self.loaded
            .inventory
            .resolve_endpoints(&Discovered::default());
        self.compilation = Some(compile_with_refused(
            &self.loaded.inventory,
            &self.loaded.invalid,
            &self.opts.zones,
        ));
        self.republish(now).await
    }

    /// Takes the embedded prober's new health view and republishes; returns the status table
    /// when it changed.
    pub async fn health_changed(
        &mut self,
        tasks: &BTreeMap<String, TaskHealth>,
        now: &Time,
    ) -> anyhow::Result<Option<String>> {
        self.embedded.clone_from(tasks);
        self.republish(now).await
    }

    /// Reads the remote locations' reports and judges their freshness; republishes when a
    /// report or a location's freshness changed. Returns the status table when it changed.
    pub async fn locations_changed(&mut self, now: &Time) -> anyhow::Result<Option<String>> {
        let clock = SystemTime::from(now.0);
        let read = self.reports.read(&mut self.book, clock);
        let flipped = self.book.refresh(clock);
        for change in &flipped {
            log_freshness(change, self.book.stale_after());
        }
        if !read && flipped.is_empty() {
            return Ok(None);
        }
        self.republish(now).await
    }

    /// Reads the signed zones' keys again; republishes when one changed (a key file made,
    /// replaced or removed). Returns the status table when it changed.
    pub async fn keys_changed(&mut self, now: &Time) -> anyhow::Result<Option<String>> {
        let changed = self
            .compilation
            .as_ref()
            .is_some_and(|c| self.read_keys(c) != self.keys);
        if !changed {
            return Ok(None);
        }
        self.republish(now).await
    }

    /// The key states of the zones `compilation` signs, from the key directory.
    fn read_keys(&self, compilation: &Compilation) -> KeyStates {
        let signed = zone_keys::signed_zones(&compilation.config.zone_data);
        zone_keys::read_dir(&self.opts.dnssec_keys, &signed)
    }

    /// Votes every task, evaluates the last compilation under that health, writes the payloads
    /// that changed, and recomputes the statuses and the table.
    async fn republish(&mut self, now: &Time) -> anyhow::Result<Option<String>> {
        let Some(compilation) = self.compilation.take() else {
            return Ok(None);
        };
        self.view = self.quorum.vote(
            &compilation.tasks,
            &Embedded {
                location: &self.opts.location,
                tasks: &self.embedded,
            },
            &self.book,
            SystemTime::from(now.0),
        );
        let inventory = self.loaded.inventory.clone();
        let published = self.publish(&inventory, &compilation, now).await;
        self.compilation = Some(compilation);
        let statuses = published?;
        let problems: Vec<String> = self
            .hold
            .iter()
            .chain(&self.refused)
            .chain(&self.loaded.problems)
            .cloned()
            .collect();
        let table = table::render(
            &statuses,
            &self.loaded.invalid,
            &problems,
            self.publisher.config_generation(),
        );
        // The file is for people and the next run; the payloads are out already.
        if statuses != self.statuses
            && let Err(e) = status_file::write(&self.opts.output, &statuses)
        {
            tracing::warn!("writing {}: {e:#}", status_file::STATUS_FILE);
        }
        self.statuses = statuses;
        if let Some(page) = &self.page {
            page.publish(Snapshot {
                inventory,
                statuses: self.statuses.clone(),
                remote: self.view.remote.clone(),
                source: Source::Local,
                taken: now.clone(),
            });
        }
        Ok(self.replace_table(table))
    }

    /// Evaluates, writes the payloads that changed, and computes the statuses.
    async fn publish(
        &mut self,
        inventory: &Inventory,
        compilation: &Compilation,
        now: &Time,
    ) -> anyhow::Result<BTreeMap<ObjectKey, ObjectStatus>> {
        let evaluation = evaluate(
            compilation,
            &self.view.tasks,
            &self.view.latency,
            self.publisher.active(),
        );
        let confirm_file = self.opts.manifests.join(CONFIRM_FILE);
        let confirmation = std::fs::read_to_string(&confirm_file).ok();
        let mut sink = files::FileSink(&self.opts.output);
        let plan = self.publisher.plan(
            &Proposal {
                compiled: &compilation.config,
                tasks: &self.view.tasks,
                active: &evaluation.active,
                confirmation: confirmation.as_deref(),
                now: std::time::Instant::now(),
                unix_time: unix_now(),
            },
            &mut sink,
        );
        let hold = plan
            .hold
            .map(|h| h.message(&format!("write it to {}", confirm_file.display())));
        if hold.is_some() && self.hold.is_none() {
            tracing::warn!("{}", hold.as_deref().unwrap_or_default());
        }
        self.hold = hold;
        let refused = plan
            .refused
            .map(|e| format!("the compiled config breaks the contract; keeping the last one: {e}"));
        if let Some(refused) = &refused {
            tracing::error!("{refused}");
        }
        self.refused = refused;
        self.publisher.write(plan.writes, &mut sink).await?;
        self.keys = self.read_keys(compilation);
        self.key_log.log_changes(&self.keys);
        // Objects read from files have no status: each starts from the one it had.
        Ok(compute_all(
            inventory,
            |key, _| self.statuses.get(key),
            compilation,
            &ZoneFacts {
                serials: &self.publisher.serials(),
                keys: &self.keys,
            },
            &evaluation,
            &self.view,
            now,
        ))
    }

    fn replace_table(&mut self, table: String) -> Option<String> {
        if table == self.table {
            return None;
        }
        self.table = table;
        Some(self.table.clone())
    }
}

/// The current time as an API time.
pub fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// Logs a location that turned fresh or stale (cluster mode records an event too).
pub(crate) fn log_freshness(change: &FreshnessChange, stale_after: Duration) {
    if change.fresh {
        tracing::info!(location = %change.location, "probe location reports: it votes");
    } else {
        tracing::warn!(
            location = %change.location,
            silent_for = ?change.silent_for,
            "probe location stale: no heartbeat within {stale_after:?}, it abstains"
        );
    }
}

/// Runs local mode until SIGINT or SIGTERM.
pub async fn run(opts: LocalOptions) -> anyhow::Result<()> {
    // Before the first pass: a signal sent once the table is printed is not missed.
    let mut usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut operator = LocalOperator::new(opts.clone())?;
    let metrics = Arc::new(Metrics::new());
    let mut monitor = Monitor::new(opts.probe_concurrency, metrics.clone());
    let page = opts.topology_page.then(Feed::new);
    operator.set_page(page.clone());
    let ready = Arc::new(AtomicBool::new(false));
    let shutdown = CancellationToken::new();
    let http = tokio::spawn(serve(
        bind(opts.http_listen).await?,
        HttpState {
            metrics,
            ready: ready.clone(),
            page: page.as_ref().map(Feed::subscribe),
        },
        shutdown.clone(),
    ));
    drop(page);
    let mut watch = ManifestWatch::new(&opts.manifests, RESCAN)?;
    let mut locations = tokio::time::interval(LOCATION_POLL);
    locations.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut keys = tokio::time::interval(RESCAN);
    keys.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(
        manifests = %opts.manifests.display(),
        output = %opts.output.display(),
        "local mode started"
    );
    // The first probes start from what the last run published: a restart does not flap.
    let restored = operator.restored();
    print_reload(operator.reload(&now()).await);
    follow_compilation(&mut operator, &mut monitor, &restored).await;
    ready.store(true, Ordering::Release);

    loop {
        tokio::select! {
            () = watch.changed() => reread(&mut operator, &mut monitor).await,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reading the manifests again");
                reread(&mut operator, &mut monitor).await;
            }
            _ = monitor.next_transitions() => {
                print_reload(operator.health_changed(&monitor.tasks(), &now()).await);
            }
            _ = locations.tick() => print_reload(operator.locations_changed(&now()).await),
            _ = keys.tick() => print_reload(operator.keys_changed(&now()).await),
            _ = usr1.recv() => println!("{}", operator.table()),
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    // The page's event streams end with the operator's feed; then the server stops.
    drop(operator);
    shutdown.cancel();
    http.await??;
    tracing::info!("local mode stopped");
    Ok(())
}

/// Reads the manifests again and publishes what changed.
async fn reread(operator: &mut LocalOperator, monitor: &mut Monitor) {
    print_reload(operator.reload(&now()).await);
    follow_compilation(operator, monitor, &BTreeMap::new()).await;
}

/// Points the prober at the tasks of the last compilation and republishes with its view.
async fn follow_compilation(
    operator: &mut LocalOperator,
    monitor: &mut Monitor,
    restored: &BTreeMap<String, Restored>,
) {
    if let Some(compilation) = operator.compilation() {
        monitor.update(&compilation.tasks, &operator.opts.location, restored);
        print_reload(operator.health_changed(&monitor.tasks(), &now()).await);
    }
}

fn print_reload(result: anyhow::Result<Option<String>>) {
    match result {
        Ok(Some(table)) => println!("{table}"),
        Ok(None) => {}
        Err(e) => tracing::error!("{e:#}; keeping the last published payloads"),
    }
}

#[cfg(test)]
mod tests;
