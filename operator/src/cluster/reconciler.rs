//! One reconcile pass in a cluster: compile everything the operator knows, publish the payloads
//! that changed, write the statuses that changed, and record events for what flipped. The pass
//! is a function of the inventory (from the reflector stores) and the health view, so a change
//! to any object re-publishes everything that depends on it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use gtm_crds::location::heartbeat_configmap_name;
use gtm_crds::manifest::Kind;
use gtm_crds::parts::Payload;
use gtm_crds::{AddressPool, GtmAccessDomain, GtmZone, HealthCheckTemplate};
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};
use serde_json::json;

use super::FIELD_MANAGER;
use super::configmaps::PayloadConfigMaps;
use super::sink::{ConfigMapSink, count};
use super::status_change::status_change;
use crate::compile::{Compilation, compile};
use crate::conditions::capped;
use crate::drop_guard::{CONFIRM_ANNOTATION, DropGuardSettings, Hold, Release};
use crate::evaluate::{Evaluation, evaluate};
use crate::inventory::{Inventory, ObjectKey};
use crate::local::log_freshness;
use crate::locations::{FreshnessChange, HealthView};
use crate::metrics::{AddressLabels, DomainLabel, KindCondition, Metrics, PoolLabel};
use crate::page::{Feed, Snapshot, Source};
use crate::publish::{Plan, Proposal, Publisher, unix_now};
use crate::status::{ObjectStatus, ZoneFacts, compute_all};
use crate::zone_keys::{self, KeyLog, KeyStates, Lookup};

/// What a pass wrote.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Report {
    /// Payloads written.
    pub payloads: Vec<Payload>,
    /// Objects whose status was written.
    pub statuses: Vec<ObjectKey>,
    /// Events recorded.
    pub events: usize,
}

/// How often statuses are refreshed when only probe times and latencies changed.
pub(super) const STATUS_REFRESH: Duration = Duration::from_secs(30);

/// A status this leader wrote.
struct Written {
    key: ObjectKey,
    uid: Option<String>,
    status: ObjectStatus,
    at: Instant,
    events: usize,
}

/// Reconciles the whole inventory into ConfigMaps and statuses.
pub(super) struct Reconciler {
    client: Client,
    instance: String,
    zones: Vec<String>,
    configmaps: PayloadConfigMaps,
    publisher: Publisher,
    reporter: Reporter,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    concurrency: usize,
    address_metrics: bool,
    written: HashMap<ObjectKey, Written>,
    holds: HoldReports,
    page: Option<Feed>,
    keys: Option<KeysSecret>,
    key_log: KeyLog,
}

/// The Secret holding the signed zones' keys, read with `get` at every pass that has signed
/// zones (its RBAC grants `get` on this one name only; a pass runs at least every
/// [`STATUS_REFRESH`], so a changed Secret shows within that).
struct KeysSecret {
    api: Api<Secret>,
    /// `namespace/name`, for messages.
    id: String,
    name: String,
}

/// The drop guard's holds as reported by events: each hold once, and its end once.
#[derive(Default)]
struct HoldReports {
    /// The hold last reported.
    reported: Option<Hold>,
    /// The event about a hold or its end still to be recorded.
    event: Option<Event>,
}

impl HoldReports {
    /// Logs a new hold, and the end of one, and queues the event about it; `reference` names
    /// the config ConfigMap (where a hold is confirmed).
    fn report(&mut self, plan: &Plan, reference: impl FnOnce() -> ObjectReference) {
        match &plan.hold {
            Some(hold) if self.reported.as_ref().is_none_or(|h| h.token != hold.token) => {
                let reference = reference();
                let message = hold.message(&format!(
                    "kubectl annotate configmap -n {} {} {CONFIRM_ANNOTATION}={} --overwrite",
                    reference.namespace.as_deref().unwrap_or_default(),
                    reference.name.as_deref().unwrap_or_default(),
                    hold.token
                ));
                tracing::warn!("{message}");
                self.event = Some(hold_event(EventType::Warning, "PublishHeld", message));
                self.reported = Some(hold.clone());
            }
            Some(_) => {}
            None => {
                if let Some(hold) = self.reported.take() {
                    let release = plan.released.unwrap_or(Release::Withdrawn);
                    let reason = match release {
                        Release::Confirmed | Release::Expired => "PublishReleased",
                        Release::Withdrawn => "PublishHoldWithdrawn",
                    };
                    let message = release.message(&hold);
                    tracing::info!("{message}");
                    self.event = Some(hold_event(EventType::Normal, reason, message));
                }
            }
        }
    }
}

/// Where and how a [`Reconciler`] writes.
#[derive(Clone, Debug)]
pub(super) struct Settings {
    /// Namespace of the payload ConfigMaps.
    pub namespace: String,
    /// Instance name: ConfigMap prefix and label.
    pub instance: String,
    /// Zones served.
    pub zones: Vec<String>,
    /// Most payload bytes per ConfigMap.
    pub part_bytes: usize,
    /// Status writes in flight at most.
    pub concurrency: usize,
    /// Whether `gtm_operator_address_up` has a series per address.
    pub address_metrics: bool,
    /// The Secret of `namespace` holding the signed zones' keys, if the operator is told.
    pub keys_secret: Option<String>,
}

impl Reconciler {
    /// A reconciler writing as `settings` say, recording events as `reporter`.
    pub(super) fn new(
        client: Client,
        settings: Settings,
        reporter: Reporter,
        metrics: Arc<Metrics>,
    ) -> Self {
        let keys = settings.keys_secret.map(|name| KeysSecret {
            api: Api::namespaced(client.clone(), &settings.namespace),
            id: format!("{}/{name}", settings.namespace),
            name,
        });
        let configmaps = PayloadConfigMaps::new(
            Api::namespaced(client.clone(), &settings.namespace),
            &settings.namespace,
            &settings.instance,
            settings.part_bytes,
        );
        Self {
            recorder: Recorder::new(client.clone(), reporter.clone()),
            client,
            instance: settings.instance,
            zones: settings.zones,
            configmaps,
            // Off until `set_drop_guard` (which `cluster::run` always calls).
            publisher: Publisher::new(DropGuardSettings {
                max_drop_percent: 100,
                ..DropGuardSettings::default()
            }),
            reporter,
            metrics,
            concurrency: settings.concurrency.max(1),
            address_metrics: settings.address_metrics,
            written: HashMap::new(),
            holds: HoldReports::default(),
            page: None,
            keys,
            key_log: KeyLog::default(),
        }
    }

    /// Publishes the statuses of every pass to the topology page.
    pub(super) fn set_page(&mut self, page: Option<Feed>) {
        self.page = page;
    }

    /// Sets when a change that drops most access domains is held.
    pub(super) fn set_drop_guard(&mut self, settings: DropGuardSettings) {
        self.publisher.set_drop_guard(settings);
    }

    /// When the drop held now is due to be published: a pass from then on publishes it.
    pub(super) fn hold_until(&self) -> Option<tokio::time::Instant> {
        self.publisher
            .hold_deadline()
            .map(tokio::time::Instant::from_std)
    }

    /// The label selector of the payload ConfigMaps.
    pub(super) fn selector(&self) -> String {
        self.configmaps.selector()
    }

    /// Starts from what is published (after a restart or a leader change): unchanged payloads
    /// are not rewritten, generations continue, non-preemptive choices are kept. A drop held
    /// before (when this replica led earlier) is held anew, for the whole hold time, and
    /// reported again: another leader may have published in between.
    pub(super) async fn resume(&mut self) -> kube::Result<()> {
        let existing = self.configmaps.read_existing().await?;
        self.publisher.resume(existing);
        self.written.clear();
        self.holds = HoldReports::default();
        Ok(())
    }

    /// Compiles an inventory for the served zones (the caller points the prober at the
    /// result's tasks before reconciling it).
    pub(super) fn compile(&self, inventory: &Inventory) -> Compilation {
        compile(inventory, &self.zones)
    }

    /// One pass over a compilation of `inventory`. `configmaps` are the payload ConfigMaps the
    /// watch sees, to notice edits and deletions by others.
    #[tracing::instrument(
        name = "reconcile",
        skip_all,
        fields(objects = inventory.len(), tasks = view.tasks.len(), domains = compilation.config.domains.len())
    )]
    pub(super) async fn reconcile(
        &mut self,
        inventory: &Inventory,
        compilation: &Compilation,
        view: &HealthView,
        configmaps: &[Arc<ConfigMap>],
        now: &Time,
    ) -> kube::Result<Report> {
        let started = Instant::now();
        let result = self
            .pass(inventory, compilation, view, configmaps, now)
            .await;
        self.metrics
            .reconcile_duration
            .observe(started.elapsed().as_secs_f64());
        count(&self.metrics, "all", result.is_ok());
        result
    }

    async fn pass(
        &mut self,
        inventory: &Inventory,
        compilation: &Compilation,
        view: &HealthView,
        configmaps: &[Arc<ConfigMap>],
        now: &Time,
    ) -> kube::Result<Report> {
        let mut report = Report::default();
        let evaluation = evaluate(
            compilation,
            &view.tasks,
            &view.latency,
            self.publisher.active(),
        );
        let confirmation = confirmation(configmaps);
        let mut sink = ConfigMapSink {
            configmaps: &mut self.configmaps,
            seen: configmaps,
            metrics: &self.metrics,
        };
        let plan = self.publisher.plan(
            &Proposal {
                compiled: &compilation.config,
                tasks: &view.tasks,
                active: &evaluation.active,
                confirmation: confirmation.as_deref(),
                // The runtime's clock, which the loop's timers use too.
                now: tokio::time::Instant::now().into_std(),
                unix_time: unix_now(),
            },
            &mut sink,
        );
        if let Some(e) = &plan.refused {
            tracing::error!("the compiled config breaks the contract; keeping the last one: {e}");
        }
        self.metrics
            .publish_held
            .set(i64::from(plan.hold.is_some()));
        self.holds.report(&plan, || {
            sink.configmaps
                .config_reference(configmaps.iter().map(AsRef::as_ref))
        });
        report.payloads = self.publisher.write(plan.writes, &mut sink).await?;
        report.events += self.record_hold_event(configmaps).await;

        // What this leader wrote last is newer than the watch cache may be.
        let written = &self.written;
        let newer = |key: &ObjectKey, uid: Option<&str>| {
            written
                .get(key)
                .filter(|w| w.uid.as_deref() == uid)
                .map(|w| &w.status)
        };
        let serials = self.publisher.serials();
        let keys = self.read_keys(compilation).await;
        self.key_log.log_changes(&keys);
        let statuses = compute_all(
            inventory,
            newer,
            compilation,
            &ZoneFacts {
                serials: &serials,
                keys: &keys,
            },
            &evaluation,
            view,
            now,
        );
        self.record_health_metrics(compilation, &evaluation);
        self.record_object_metrics(&statuses);
        // Status writes are independent: run up to `concurrency` at once, results in order.
        let writes = inventory
            .templates
            .iter()
            .map(|o| {
                self.write_status(o.as_ref(), Kind::HealthCheckTemplate, &statuses)
                    .boxed_local()
            })
            .chain(inventory.pools.iter().map(|o| {
                self.write_status(o.as_ref(), Kind::AddressPool, &statuses)
                    .boxed_local()
            }))
            .chain(inventory.domains.iter().map(|o| {
                self.write_status(o.as_ref(), Kind::GtmAccessDomain, &statuses)
                    .boxed_local()
            }))
            .chain(inventory.gtm_zones.iter().map(|o| {
                self.write_status(o.as_ref(), Kind::GtmZone, &statuses)
                    .boxed_local()
            }));
        let results: Vec<kube::Result<Option<Written>>> = futures::stream::iter(writes)
            .buffered(self.concurrency)
            .collect()
            .await;
        self.written.retain(|key, _| statuses.contains_key(key));
        for result in results {
            if let Some(written) = result? {
                report.statuses.push(written.key.clone());
                report.events += written.events;
                self.written.insert(written.key.clone(), written);
            }
        }
        if let Some(page) = &self.page {
            page.publish(Snapshot {
                inventory: inventory.clone(),
                statuses,
                remote: view.remote.clone(),
                source: Source::Leader,
                taken: now.clone(),
            });
        }
        Ok(report)
    }

    /// Logs every location that turned fresh or stale and records an event about it on its
    /// heartbeat ConfigMap (among `reports`), `LocationReporting` or `LocationStale`; returns
    /// how many events were recorded. One that fails is logged and not retried.
    pub(super) async fn record_location_events(
        &self,
        changes: &[FreshnessChange],
        reports: &[Arc<ConfigMap>],
        stale_after: Duration,
    ) -> usize {
        let mut recorded = 0;
        for change in changes {
            log_freshness(change, stale_after);
            let heartbeat = heartbeat_configmap_name(&self.instance, &change.location);
            let Some(cm) = reports
                .iter()
                .find(|c| c.metadata.name.as_deref() == Some(heartbeat.as_str()))
            else {
                continue;
            };
            let event = location_event(change, stale_after);
            match self.recorder.publish(&event, &cm.object_ref(&())).await {
                Ok(()) => recorded += 1,
                Err(e) => {
                    tracing::warn!(location = %change.location, "recording an event failed: {e}")
                }
            }
        }
        recorded
    }

    /// Records the queued event about a hold on the config ConfigMap; returns how many events
    /// were recorded. One that fails is logged and not retried, as every event. Each is a new
    /// Event object: the shared recorder would count a second hold within minutes into the
    /// first one's series, which keeps the first note, and so the first token.
    async fn record_hold_event(&mut self, configmaps: &[Arc<ConfigMap>]) -> usize {
        let Some(event) = self.holds.event.take() else {
            return 0;
        };
        let reference = self
            .configmaps
            .config_reference(configmaps.iter().map(|c| c.as_ref()));
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        match recorder.publish(&event, &reference).await {
            Ok(()) => 1,
            Err(e) => {
                tracing::warn!("recording the {} event failed: {e}", event.reason);
                0
            }
        }
    }

    /// The key states of the zones `compilation` signs, from the keys Secret: one `get`, and
    /// none when no zone is signed. A failed read is each zone's `KeyUnreadable`, not a failed
    /// pass: the other statuses are still written.
    async fn read_keys(&self, compilation: &Compilation) -> KeyStates {
        let signed = zone_keys::signed_zones(&compilation.config.zone_data);
        if signed.is_empty() {
            return KeyStates::new();
        }
        let Some(secret) = &self.keys else {
            return zone_keys::unset_states(&signed);
        };
        let from = format!("Secret {}", secret.id);
        match secret.api.get_opt(&secret.name).await {
            Ok(Some(s)) => zone_keys::key_states(&signed, |item| {
                match s.data.as_ref().and_then(|d| d.get(item)) {
                    Some(bytes) => Lookup::Found {
                        from: format!("{from} item {item}"),
                        pem: bytes.0.clone(),
                    },
                    None => Lookup::Missing(format!("{from} has no item {item}")),
                }
            }),
            Ok(None) => zone_keys::key_states(&signed, |_| {
                Lookup::Missing(format!("{from} does not exist"))
            }),
            Err(e) => zone_keys::key_states(&signed, |_| {
                Lookup::Unreadable(format!("reading {from}: {e}"))
            }),
        }
    }

    /// Patches an object's status when [`status_change`] says so, and records the events it
    /// gives.
    #[tracing::instrument(
        name = "status_write",
        skip_all,
        fields(kind = kind.as_str(), name = %obj.meta().name.as_deref().unwrap_or_default(), generation = obj.meta().generation)
    )]
    async fn write_status<K>(
        &self,
        obj: &K,
        kind: Kind,
        statuses: &BTreeMap<ObjectKey, ObjectStatus>,
    ) -> kube::Result<Option<Written>>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + HasObjectStatus
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let key = ObjectKey::of(kind, obj);
        let Some(desired) = statuses.get(&key) else {
            return Ok(None);
        };
        // What this leader wrote last is newer than the watch cache may be.
        let uid = obj.meta().uid.clone();
        let last = self.written.get(&key).filter(|w| w.uid == uid);
        let current = last
            .map(|w| w.status.clone())
            .or_else(|| obj.object_status());
        let written_ago = last.map(|w| w.at.elapsed());
        let Some(change) = status_change(kind, desired, current.as_ref(), written_ago) else {
            return Ok(None);
        };
        let body = json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "metadata": { "name": key.name },
            "status": desired.to_json(),
        });
        let api: Api<K> = Api::namespaced(self.client.clone(), &key.namespace);
        let result = api
            .patch_status(
                &key.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await;
        count(&self.metrics, kind.as_str(), result.is_ok());
        result?;

        if change.failed_over {
            self.metrics
                .failovers
                .get_or_create(&DomainLabel { domain: key.id() })
                .inc();
        }
        let mut recorded = 0;
        for event in change.events {
            // An event that cannot be recorded must not stop the reconcile.
            match self.recorder.publish(&event, &obj.object_ref(&())).await {
                Ok(()) => recorded += 1,
                Err(e) => tracing::warn!(object = %key, "recording an event failed: {e}"),
            }
        }
        Ok(Some(Written {
            key,
            uid,
            status: desired.clone(),
            at: Instant::now(),
            events: recorded,
        }))
    }

    fn record_health_metrics(&self, compilation: &Compilation, evaluation: &Evaluation) {
        self.metrics.address_up.clear();
        self.metrics.pool_available.clear();
        for (id, view) in &evaluation.pools {
            self.metrics
                .pool_available
                .get_or_create(&PoolLabel { pool: id.clone() })
                .set(i64::from(view.available));
            let Some(pool) = compilation.pools.get(id).filter(|_| self.address_metrics) else {
                continue;
            };
            for (address, up) in pool.addresses.iter().zip(&view.addresses) {
                self.metrics
                    .address_up
                    .get_or_create(&AddressLabels {
                        pool: id.clone(),
                        address: address.value.clone(),
                    })
                    .set(i64::from(*up));
            }
        }
    }

    fn record_object_metrics(&self, statuses: &BTreeMap<ObjectKey, ObjectStatus>) {
        self.metrics.objects.clear();
        for (key, status) in statuses {
            for c in status.conditions() {
                self.metrics
                    .objects
                    .get_or_create(&KindCondition {
                        kind: key.kind.as_str().into(),
                        condition: c.type_.clone(),
                        status: c.status.clone(),
                    })
                    .inc();
            }
        }
    }
}

/// Reads the typed status of an object as an [`ObjectStatus`].
pub(super) trait HasObjectStatus {
    /// The current status, if any.
    fn object_status(&self) -> Option<ObjectStatus>;
}

impl HasObjectStatus for GtmAccessDomain {
    fn object_status(&self) -> Option<ObjectStatus> {
        self.status.clone().map(ObjectStatus::Domain)
    }
}

impl HasObjectStatus for AddressPool {
    fn object_status(&self) -> Option<ObjectStatus> {
        self.status.clone().map(ObjectStatus::Pool)
    }
}

impl HasObjectStatus for HealthCheckTemplate {
    fn object_status(&self) -> Option<ObjectStatus> {
        self.status.clone().map(ObjectStatus::Template)
    }
}

impl HasObjectStatus for GtmZone {
    fn object_status(&self) -> Option<ObjectStatus> {
        self.status.clone().map(ObjectStatus::Zone)
    }
}

/// The token given to confirm a held drop: the annotation [`CONFIRM_ANNOTATION`] on a payload
/// ConfigMap.
fn confirmation(configmaps: &[Arc<ConfigMap>]) -> Option<String> {
    configmaps.iter().find_map(|c| {
        c.metadata
            .annotations
            .as_ref()?
            .get(CONFIRM_ANNOTATION)
            .cloned()
    })
}

/// The event about a location that turned fresh or stale.
fn location_event(change: &FreshnessChange, stale_after: Duration) -> Event {
    let (type_, reason, note) = if change.fresh {
        (
            EventType::Normal,
            "LocationReporting",
            format!(
                "probe location {} reports: its verdicts count in the votes of the templates that select it",
                change.location
            ),
        )
    } else {
        (
            EventType::Warning,
            "LocationStale",
            format!(
                "probe location {} sent no heartbeat for {}s (bound {}s): it abstains from every vote until it reports again",
                change.location,
                change.silent_for.map_or(0, |d| d.as_secs()),
                stale_after.as_secs()
            ),
        )
    };
    Event {
        type_,
        reason: reason.into(),
        note: Some(capped(note)),
        action: "ProbeLocation".into(),
        secondary: None,
    }
}

/// An event about the drop guard (on the config ConfigMap).
fn hold_event(type_: EventType, reason: &str, note: String) -> Event {
    Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: "Publish".into(),
        secondary: None,
    }
}

#[cfg(test)]
mod tests;
