//! Operator metrics (prefix `gtm_operator_`), served on `/metrics`. Labels stay low-cardinality:
//! kinds, results, protocols, and the pool/address identities users configured.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::time::SystemTime;

use gtm_crds::pool::HealthState;

use gtm_crds::location::EMBEDDED_LOCATION;
use gtm_prober::http::Exposition;
use gtm_prober::metrics::ProbeMetrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::health::TaskHealth;
use crate::locations::LocationBook;

/// Labels of reconcile counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct KindResult {
    /// Object kind, or `config` / `health` for the payloads.
    pub kind: String,
    /// `ok` or `error`.
    pub result: String,
}

/// Labels of the objects-by-condition gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct KindCondition {
    /// Object kind.
    pub kind: String,
    /// Condition type.
    pub condition: String,
    /// `True` or `False`.
    pub status: String,
}

/// Labels of per-payload gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PayloadLabel {
    /// `config` or `health`.
    pub payload: String,
}

/// Labels of per-address gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct AddressLabels {
    /// Pool id `namespace/name`.
    pub pool: String,
    /// Address value.
    pub address: String,
}

/// Labels of per-pool gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PoolLabel {
    /// Pool id `namespace/name`.
    pub pool: String,
}

/// Labels of per-domain counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DomainLabel {
    /// Domain id `namespace/name`.
    pub domain: String,
}

/// Labels of per-location gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct LocationLabel {
    /// The probe location (`local` for the embedded prober).
    pub location: String,
}

/// Labels of per-location verdict counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct LocationState {
    /// The probe location.
    pub location: String,
    /// `Up` or `Down`.
    pub state: String,
}

/// Every operator metric.
pub(crate) struct Metrics {
    /// Reconcile passes and payload writes by kind and result.
    pub reconciles: Family<KindResult, Counter>,
    /// Duration of a reconcile pass.
    pub reconcile_duration: Histogram,
    /// Size of the published payloads in bytes.
    pub payload_bytes: Family<PayloadLabel, Gauge>,
    /// Generation of the published payloads.
    pub payload_generation: Family<PayloadLabel, Gauge>,
    /// Objects by kind and condition status.
    pub objects: Family<KindCondition, Gauge>,
    /// 1 when an address is available, else 0.
    pub address_up: Family<AddressLabels, Gauge>,
    /// 1 when a pool is available, else 0.
    pub pool_available: Family<PoolLabel, Gauge>,
    /// Failovers and failbacks of access domains.
    pub failovers: Family<DomainLabel, Counter>,
    /// Probes of the embedded prober (location `local`) and their latency.
    pub probes: ProbeMetrics,
    /// 1 while a probe location is fresh (votes), 0 while it is stale (abstains).
    pub location_fresh: Family<LocationLabel, Gauge>,
    /// Seconds since a remote location's heartbeat last changed.
    pub location_heartbeat_age: Family<LocationLabel, Gauge<f64, AtomicU64>>,
    /// Tasks a location sees up or down.
    pub location_verdicts: Family<LocationState, Gauge>,
    /// 1 while this replica holds the leader Lease.
    pub leader: Gauge<i64, AtomicI64>,
    /// 1 while a change that drops most access domains is held (see `drop_guard`).
    pub publish_held: Gauge<i64, AtomicI64>,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("gtm_operator");
        let reconciles = Family::<KindResult, Counter>::default();
        registry.register(
            "reconciles",
            "Reconcile passes and payload writes by kind and result",
            reconciles.clone(),
        );
        let reconcile_duration = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "reconcile_duration_seconds",
            "Duration of a reconcile pass",
            reconcile_duration.clone(),
        );
        let payload_bytes = Family::<PayloadLabel, Gauge>::default();
        registry.register(
            "payload_bytes",
            "Size of the published payloads",
            payload_bytes.clone(),
        );
        let payload_generation = Family::<PayloadLabel, Gauge>::default();
        registry.register(
            "payload_generation",
            "Generation of the published payloads",
            payload_generation.clone(),
        );
        let objects = Family::<KindCondition, Gauge>::default();
        registry.register(
            "objects",
            "Objects by kind and condition status",
            objects.clone(),
        );
        let address_up = Family::<AddressLabels, Gauge>::default();
        registry.register(
            "address_up",
            "1 when an address is available, else 0",
            address_up.clone(),
        );
        let pool_available = Family::<PoolLabel, Gauge>::default();
        registry.register(
            "pool_available",
            "1 when a pool is available, else 0",
            pool_available.clone(),
        );
        let failovers = Family::<DomainLabel, Counter>::default();
        registry.register(
            "failovers",
            "Failovers and failbacks of access domains",
            failovers.clone(),
        );
        let probes = ProbeMetrics::register(&mut registry, EMBEDDED_LOCATION);
        let location_fresh = Family::<LocationLabel, Gauge>::default();
        registry.register(
            "location_fresh",
            "1 while a probe location is fresh (votes), 0 while it is stale (abstains)",
            location_fresh.clone(),
        );
        let location_heartbeat_age = Family::<LocationLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "location_heartbeat_age_seconds",
            "Seconds since a remote probe location's heartbeat last changed",
            location_heartbeat_age.clone(),
        );
        let location_verdicts = Family::<LocationState, Gauge>::default();
        registry.register(
            "location_verdicts",
            "Tasks a probe location sees up or down",
            location_verdicts.clone(),
        );
        let publish_held = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "publish_held",
            "1 while a change that drops most access domains is held",
            publish_held.clone(),
        );
        let leader = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease",
            leader.clone(),
        );
        Self {
            reconciles,
            reconcile_duration,
            payload_bytes,
            payload_generation,
            objects,
            address_up,
            pool_available,
            failovers,
            probes,
            location_fresh,
            location_heartbeat_age,
            location_verdicts,
            leader,
            publish_held,
            registry,
        }
    }

    /// Sets the location gauges: the embedded location (`local`, always fresh, the verdicts
    /// of `embedded`) and every remote one in `book` at `now`.
    pub(crate) fn record_locations(
        &self,
        book: &LocationBook,
        embedded: &BTreeMap<String, TaskHealth>,
        now: SystemTime,
    ) {
        self.location_fresh.clear();
        self.location_heartbeat_age.clear();
        self.location_verdicts.clear();
        let count = |location: &str, states: &mut dyn Iterator<Item = HealthState>| {
            let (mut up, mut down) = (0i64, 0i64);
            for state in states {
                match state {
                    HealthState::Up => up += 1,
                    HealthState::Down => down += 1,
                    HealthState::Unknown => {}
                }
            }
            for (state, n) in [("Up", up), ("Down", down)] {
                self.location_verdicts
                    .get_or_create(&LocationState {
                        location: location.into(),
                        state: state.into(),
                    })
                    .set(n);
            }
        };
        let label = |location: &str| LocationLabel {
            location: location.into(),
        };
        self.location_fresh
            .get_or_create(&label(EMBEDDED_LOCATION))
            .set(1);
        count(EMBEDDED_LOCATION, &mut embedded.values().map(|h| h.state));
        for (name, location) in book.iter() {
            self.location_fresh
                .get_or_create(&label(name))
                .set(i64::from(book.is_fresh(name, now)));
            if let Some(age) = location.silent_for(now) {
                self.location_heartbeat_age
                    .get_or_create(&label(name))
                    .set(age.as_secs_f64());
            }
            count(name, &mut location.verdicts.values().copied());
        }
    }
}

impl Exposition for Metrics {
    fn encode(&self) -> String {
        gtm_prober::http::encode(&self.registry)
    }
}
