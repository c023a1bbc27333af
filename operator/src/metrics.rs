//! Operator metrics (prefix `gtm_operator_`), served on `/metrics`. Labels stay low-cardinality:
//! kinds, results, protocols, and the pool/address identities users configured.

use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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

/// Labels of probe metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ProbeLabels {
    /// `ICMP`, `TCP`, `HTTP` or `HTTPS`.
    pub protocol: String,
    /// `success` or `failure`.
    pub result: String,
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
    /// Probes by protocol and result.
    pub probes: Family<ProbeLabels, Counter>,
    /// Probe latency by protocol.
    pub probe_duration: Family<ProbeLabels, Histogram, fn() -> Histogram>,
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
        let probes = Family::<ProbeLabels, Counter>::default();
        registry.register("probes", "Probes by protocol and result", probes.clone());
        let probe_duration = Family::<ProbeLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.0005, 2.0, 16))) as fn() -> Histogram,
        );
        registry.register(
            "probe_duration_seconds",
            "Probe latency by protocol and result",
            probe_duration.clone(),
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
            probe_duration,
            leader,
            publish_held,
            registry,
        }
    }

    /// The metrics in the OpenMetrics text format.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
