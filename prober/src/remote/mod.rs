//! `gtm-prober`: a probe location of its own, in any cluster or on any host.
//!
//! It reads the config payload the DNS pods read ([`config_source`]), runs the tasks whose
//! templates select it ([`crate::plan`]), and publishes ([`reports`]):
//!
//! - its verdicts, whenever one changes (after a short batch window, so that a burst of
//!   transitions is one write), and only then;
//! - a heartbeat every `--heartbeat-seconds`, which vouches that the published verdicts are
//!   current. While a verdict write fails, no heartbeat is written: the location turns stale
//!   at the operator and abstains, rather than vote with verdicts it could not publish.
//!
//! A restarted prober publishes no verdict until its tasks' thresholds decide (see
//! [`crate::verdicts`]).

mod config_source;
mod metrics;
pub mod reports;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use gtm_crds::config::{GtmConfig, SCHEMA_VERSION};
use gtm_crds::location::{Heartbeat, Report};
use gtm_crds::parts::MAX_PART_BYTES;
use k8s_openapi::jiff::Timestamp;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::http::{HttpState, serve};
use crate::plan::{Location, plan};
use crate::scheduler::{ProbeReport, Prober, ProberConfig};
use crate::verdicts::VerdictBook;
use config_source::ConfigSource;
use metrics::RemoteMetrics;
use reports::{ClusterReports, ReportSink};

/// The subdirectory of the payload directory where local-mode reports go by default (and where
/// `gtm-operator local` reads them).
pub const REPORT_SUBDIR: &str = "locations";

/// How long the prober keeps collecting transitions after a first one before it publishes:
/// short against the failover budget, long enough to merge a burst.
const BATCH_WINDOW: Duration = Duration::from_millis(25);

/// First wait before a failed verdict write is retried; it doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(200);
/// Longest wait between retries of a failed verdict write.
const RETRY_MAX: Duration = Duration::from_secs(10);

/// Where the config comes from and the reports go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Local mode: payload files in, report files out.
    Dir {
        /// The operator's payload directory.
        config_dir: PathBuf,
        /// Where the report files go.
        report_dir: PathBuf,
    },
    /// Cluster mode: the control cluster's ConfigMaps, through the API.
    Cluster {
        /// The operator's namespace.
        namespace: String,
        /// The instance name.
        instance: String,
        /// A kubeconfig for the control cluster; the in-cluster config (or `KUBECONFIG`) when
        /// `None`.
        kubeconfig: Option<PathBuf>,
        /// Most ConfigMaps the verdicts may take.
        max_verdict_parts: usize,
    },
}

/// Settings of `gtm-prober`.
#[derive(Clone, Debug)]
pub struct RemoteOptions {
    /// This location.
    pub location: Location,
    /// Where the config comes from and the reports go.
    pub source: Source,
    /// Time between two heartbeats.
    pub heartbeat: Duration,
    /// Probes in flight at most.
    pub probe_concurrency: usize,
    /// Address of `/metrics`, `/healthz`, `/readyz`.
    pub http_listen: SocketAddr,
}

/// Runs the location until SIGTERM or Ctrl-C.
pub async fn run(opts: RemoteOptions) -> anyhow::Result<()> {
    let metrics = Arc::new(RemoteMetrics::new(&opts.location.name));
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
    let (source, mut sink) = open(&opts).await?;
    let published = match sink.published_verdicts().await {
        Ok(published) => published.filter(|v| v.location == opts.location.name),
        Err(e) => {
            tracing::warn!("reading the verdicts published before failed, starting over: {e:#}");
            None
        }
    };
    tracing::info!(location = %opts.location.name, labels = ?opts.location.labels, "probe location started");
    let (prober, reports) = Prober::new(ProberConfig {
        max_concurrent_probes: opts.probe_concurrency,
        ..ProberConfig::default()
    });
    let prober = prober.located(&opts.location.name);
    let mut location = RemoteLocation {
        book: VerdictBook::new(&opts.location.name, published),
        opts,
        prober,
        sink,
        metrics,
        // The first publication withdraws what a previous run left.
        due: Some(Instant::now()),
        vouching: false,
        retry: RETRY_FIRST,
    };
    let result = location.run(source, reports, &ready).await;
    tracing::info!("probe location stopped");
    shutdown.cancel();
    http.await??;
    result
}

/// The config source and the report sink `opts` name.
async fn open(opts: &RemoteOptions) -> anyhow::Result<(ConfigSource, ReportSink)> {
    Ok(match &opts.source {
        Source::Dir {
            config_dir,
            report_dir,
        } => (
            ConfigSource::dir(config_dir),
            ReportSink::Dir {
                dir: report_dir.clone(),
                location: opts.location.name.clone(),
            },
        ),
        Source::Cluster {
            namespace,
            instance,
            kubeconfig,
            max_verdict_parts,
        } => {
            let client = client(kubeconfig.as_deref()).await?;
            let api = kube::Api::namespaced(client, namespace);
            (
                ConfigSource::cluster(api.clone(), instance),
                ReportSink::Cluster(Box::new(ClusterReports {
                    api,
                    namespace: namespace.clone(),
                    instance: instance.clone(),
                    location: opts.location.name.clone(),
                    part_bytes: MAX_PART_BYTES,
                    max_parts: *max_verdict_parts,
                    parts: 0,
                })),
            )
        }
    })
}

/// A client for the control cluster: from `kubeconfig` when given, else inferred (in-cluster
/// ServiceAccount, or `KUBECONFIG`).
async fn client(kubeconfig: Option<&Path>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("using the kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("finding the Kubernetes API (in-cluster or KUBECONFIG)")?,
    };
    kube::Client::try_from(config).context("connecting to the Kubernetes API")
}

/// The state of a running location.
struct RemoteLocation {
    opts: RemoteOptions,
    prober: Prober,
    book: VerdictBook,
    sink: ReportSink,
    metrics: Arc<RemoteMetrics>,
    /// When the verdicts are due to be published, when they may have changed.
    due: Option<Instant>,
    /// Whether the published verdicts are current, so that a heartbeat may vouch for them.
    vouching: bool,
    /// The wait before the next retry of a failed verdict write.
    retry: Duration,
}

impl RemoteLocation {
    async fn run(
        &mut self,
        mut source: ConfigSource,
        mut reports: mpsc::Receiver<ProbeReport>,
        ready: &AtomicBool,
    ) -> anyhow::Result<()> {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut heartbeat = tokio::time::interval(self.opts.heartbeat);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut batch = Vec::with_capacity(256);
        loop {
            let due = self.due;
            tokio::select! {
                config = source.next() => {
                    self.follow(&config);
                    ready.store(true, Ordering::Release);
                }
                received = reports.recv_many(&mut batch, 1024) => {
                    if received == 0 {
                        anyhow::bail!("the prober stopped");
                    }
                    self.take(&mut batch);
                }
                () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                    self.publish().await;
                }
                _ = heartbeat.tick() => self.heartbeat().await,
                _ = term.recv() => return Ok(()),
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
    }

    /// Runs the tasks of a new config.
    fn follow(&mut self, config: &GtmConfig) {
        let plan = plan(config, &self.opts.location);
        if let Some((id, why)) = plan.unrunnable.first() {
            tracing::warn!(
                generation = config.generation,
                unrunnable = plan.unrunnable.len(),
                "some tasks cannot be run, e.g. {id}: {why}"
            );
        }
        let summary = self.prober.update(plan.tasks);
        tracing::info!(
            generation = config.generation,
            ?summary,
            "following a new config"
        );
        self.book
            .follow(self.prober.healths().map(|(id, h)| (id, h.state)));
        self.metrics
            .set_generation(&self.metrics.config_generation, config.generation);
        self.metrics.set_tasks(self.book.counts());
        self.schedule();
    }

    /// Takes a batch of probe reports.
    fn take(&mut self, batch: &mut Vec<ProbeReport>) {
        let mut transitions = false;
        let mut latency = false;
        for report in batch.drain(..) {
            self.metrics.probes.observe(&report);
            latency |=
                self.book
                    .observe(&report.task_id, report.health.state, report.health.latency);
            transitions |= report.transition.is_some();
        }
        if latency && !transitions {
            self.schedule();
        }
        if transitions {
            self.metrics.set_tasks(self.book.counts());
            self.schedule();
        }
    }

    /// Publishes the verdicts after the batch window, unless a publication is due already.
    fn schedule(&mut self) {
        self.due
            .get_or_insert_with(|| Instant::now() + BATCH_WINDOW);
    }

    /// Publishes the verdicts when they changed; vouches for them at once when they are
    /// published; retries with backoff when the write fails.
    async fn publish(&mut self) {
        let Some(verdicts) = self.book.next() else {
            self.due = None;
            self.vouching = true;
            return;
        };
        let result = self.sink.write_verdicts(&verdicts).await;
        self.metrics
            .count_write(Report::Verdicts.label_value(), result.is_ok());
        match result {
            Ok(()) => {
                tracing::debug!(
                    generation = verdicts.generation,
                    up = verdicts.up.len(),
                    down = verdicts.down.len(),
                    "verdicts published"
                );
                self.metrics
                    .set_generation(&self.metrics.verdicts_generation, verdicts.generation);
                self.book.published(verdicts);
                self.due = None;
                self.retry = RETRY_FIRST;
                self.vouching = true;
                self.heartbeat().await;
            }
            Err(e) => {
                tracing::warn!(
                    retry_in = ?self.retry,
                    "publishing the verdicts failed; no heartbeat until they are published, so the operator counts this location stale: {e:#}"
                );
                self.vouching = false;
                self.due = Some(Instant::now() + self.retry);
                self.retry = (self.retry * 2).min(RETRY_MAX);
            }
        }
    }

    /// Writes a heartbeat, when the published verdicts are current.
    async fn heartbeat(&mut self) {
        if !self.vouching {
            return;
        }
        let heartbeat = Heartbeat {
            schema_version: SCHEMA_VERSION,
            location: self.opts.location.name.clone(),
            labels: self.opts.location.labels.clone(),
            observed_time: Timestamp::now(),
            interval_seconds: u32::try_from(self.opts.heartbeat.as_secs()).unwrap_or(u32::MAX),
        };
        let result = self.sink.write_heartbeat(&heartbeat).await;
        self.metrics
            .count_write(Report::Heartbeat.label_value(), result.is_ok());
        if let Err(e) = result {
            tracing::warn!("writing the heartbeat failed, retrying at the next one: {e:#}");
        }
    }
}
