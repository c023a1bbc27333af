//! Prometheus metrics, prefix `gtm_dnspod_`.
//!
//! Query counters and the latency histogram are plain atomics exported by a [`Collector`] at
//! scrape time, so the query path takes no lock (prometheus-client's `Family` and `Histogram`
//! lock). Reload metrics change off the query path and use the stock types.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::RecordType;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use gtm_crds::parts::Payload;

use crate::record_type::{ByType, of_qtype, qtype};

/// Query types counted by name besides the access-domain record types (which
/// [`DomainCounters`] counts by [`ByType`]); everything else is `other`.
const OTHER_QTYPES: [RecordType; 3] = [RecordType::SOA, RecordType::NS, RecordType::ANY];
/// Response codes counted by name; everything else is `other`.
const RCODES: [&str; 7] = [
    "NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED", "FORMERR", "NOTIMP", "other",
];
/// Upper bounds of the answer latency buckets, seconds.
const LATENCY_BOUNDS: [f64; 12] = [
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1,
];
/// Domain label of queries for names that are not access domains.
pub const OTHER_DOMAIN: &str = "-";

fn rcode_index(r: ResponseCode) -> usize {
    match r {
        ResponseCode::NoError => 0,
        ResponseCode::NXDomain => 1,
        ResponseCode::ServFail => 2,
        ResponseCode::Refused => 3,
        ResponseCode::FormErr => 4,
        ResponseCode::NotImp => 5,
        _ => 6,
    }
}

/// Query counts of one query type, by response code.
type RcodeCounts = [AtomicU64; RCODES.len()];

/// Query counts of one domain label, by query type and response code.
#[derive(Debug, Default)]
pub struct DomainCounters {
    /// Queries of the access-domain record types.
    record_types: ByType<RcodeCounts>,
    /// Queries of [`OTHER_QTYPES`], then of any other type.
    other_qtypes: [RcodeCounts; OTHER_QTYPES.len() + 1],
}

impl DomainCounters {
    /// Counts one query.
    pub fn count(&self, qtype: RecordType, rcode: ResponseCode) {
        let counts = match of_qtype(qtype) {
            Some(t) => self.record_types.get(t),
            None => {
                let i = OTHER_QTYPES.iter().position(|q| *q == qtype);
                &self.other_qtypes[i.unwrap_or(OTHER_QTYPES.len())]
            }
        };
        counts[rcode_index(rcode)].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts with their `qtype` label, in exposition order: A, AAAA, CNAME, SOA, NS, ANY,
    /// other.
    fn by_qtype(&self) -> impl Iterator<Item = (&'static str, &RcodeCounts)> {
        let record_types = self
            .record_types
            .iter()
            .map(|(t, counts)| (<&str>::from(qtype(t)), counts));
        let labels = OTHER_QTYPES.map(<&str>::from).into_iter().chain(["other"]);
        record_types.chain(labels.zip(&self.other_qtypes))
    }
}

/// Lock-free latency histogram.
#[derive(Debug, Default)]
struct LatencyHistogram {
    /// One count per bound, plus +Inf.
    buckets: [AtomicU64; LATENCY_BOUNDS.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl LatencyHistogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = LATENCY_BOUNDS.partition_point(|b| *b < secs);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(
            d.as_nanos().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// Per-query metrics.
#[derive(Debug, Default)]
pub struct QueryMetrics {
    /// Counters per access-domain name; only locked when a config is compiled and on scrapes.
    domains: Mutex<BTreeMap<String, Arc<DomainCounters>>>,
    other: Arc<DomainCounters>,
    latency: LatencyHistogram,
}

impl QueryMetrics {
    /// The counters of the access domains `names`, in order, for a config being installed:
    /// a name keeps its counters across reloads (they stay monotonic), a new name gets fresh
    /// ones, and the series of names no longer served are dropped from the exposition.
    pub fn domains<'n>(
        &self,
        names: impl IntoIterator<Item = &'n str>,
    ) -> Vec<Arc<DomainCounters>> {
        let mut map = self.domains.lock().unwrap_or_else(|e| e.into_inner());
        let mut previous = std::mem::take(&mut *map);
        names
            .into_iter()
            .map(|name| {
                map.entry(name.to_owned())
                    .or_insert_with(|| previous.remove(name).unwrap_or_default())
                    .clone()
            })
            .collect()
    }

    /// The counters of queries that concern no access domain.
    pub fn other(&self) -> &DomainCounters {
        &self.other
    }

    /// Records the time one answer took.
    pub fn observe_latency(&self, d: Duration) {
        self.latency.observe(d);
    }
}

impl Collector for QueryMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        {
            let mut queries = encoder.encode_descriptor(
                "queries",
                "DNS queries answered, by query type, response code and access domain",
                None,
                MetricType::Counter,
            )?;
            let map = self.domains.lock().unwrap_or_else(|e| e.into_inner());
            let all = map
                .iter()
                .map(|(n, c)| (n.as_str(), c.as_ref()))
                .chain([(OTHER_DOMAIN, self.other.as_ref())]);
            for (domain, counters) in all {
                for (qtype, counts) in counters.by_qtype() {
                    for (count, rcode) in counts.iter().zip(RCODES) {
                        let v = count.load(Ordering::Relaxed);
                        if v == 0 {
                            continue;
                        }
                        let labels = [("qtype", qtype), ("rcode", rcode), ("domain", domain)];
                        ConstCounter::new(v).encode(queries.encode_family(&labels)?)?;
                    }
                }
            }
        }
        let h = &self.latency;
        let mut buckets: Vec<(f64, u64)> = LATENCY_BOUNDS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(&h.buckets)
            .map(|(b, c)| (b, c.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, c)| c).sum();
        buckets.shrink_to_fit();
        let mut latency = encoder.encode_descriptor(
            "answer_duration",
            "Time from a decoded query to its encoded answer",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        latency.encode_histogram::<NoLabelSet>(
            h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            count,
            &buckets,
            None,
        )
    }
}

/// Response rate limiting: UDP responses over the rate (lock-free counters).
#[derive(Debug, Default)]
pub struct RrlMetrics {
    dropped: Counter,
    slipped: Counter,
}

impl RrlMetrics {
    /// Counts a response dropped by the rate limiter.
    pub fn dropped(&self) {
        self.dropped.inc();
    }

    /// Counts a response the rate limiter sent as an empty truncated answer.
    pub fn slipped(&self) {
        self.slipped.inc();
    }

    fn register(&self, registry: &mut Registry) {
        registry.register(
            "rrl_dropped",
            "UDP responses over the rate limit of their source prefix, dropped",
            self.dropped.clone(),
        );
        registry.register(
            "rrl_slipped",
            "UDP responses over the rate limit of their source prefix, sent empty and truncated (TC) so that the client retries over TCP",
            self.slipped.clone(),
        );
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PayloadLabels {
    payload: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    payload: &'static str,
    result: &'static str,
}

/// All metrics of the process and the registry that exports them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Per-query metrics.
    pub queries: Arc<QueryMetrics>,
    /// Response rate limiting.
    pub rrl: RrlMetrics,
    /// The query log.
    pub query_log: crate::query_log::QueryLogMetrics,
    /// dnstap.
    pub dnstap: crate::dnstap::DnstapMetrics,
    reloads: Family<ReloadLabels, Counter>,
    payload_read_errors: Family<PayloadLabels, Counter>,
    config_generation: Gauge,
    health_generation: Gauge,
    last_reload: Gauge<f64, AtomicU64>,
    config_source_stale: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("gtm_dnspod");
        let queries = Arc::new(QueryMetrics::default());
        registry.register_collector(Box::new(queries.clone()));
        let rrl = RrlMetrics::default();
        rrl.register(&mut registry);
        let query_log = crate::query_log::QueryLogMetrics::default();
        registry.register(
            "query_log_written",
            "Query log entries written",
            query_log.written.clone(),
        );
        registry.register(
            "query_log_dropped",
            "Query log entries dropped: over --query-log-rate (reason rate) or finding the writer's queue full (reason queue)",
            query_log.dropped.clone(),
        );
        let dnstap = crate::dnstap::DnstapMetrics::default();
        registry.register(
            "dnstap_sent",
            "dnstap frames sent to the collector (two per answered query)",
            dnstap.sent.clone(),
        );
        registry.register(
            "dnstap_dropped",
            "dnstap frames dropped: finding the writer's queue full (reason queue) or no collector connected (reason disconnected)",
            dnstap.dropped.clone(),
        );
        registry.register(
            "dnstap_connected",
            "1 while the dnstap collector is connected",
            dnstap.connected.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "reloads",
            "Payloads offered, by payload and result (success, or failure: refused, last good kept)",
            reloads.clone(),
        );
        let payload_read_errors = Family::<PayloadLabels, Counter>::default();
        registry.register(
            "payload_read_errors",
            "Payload reads that failed (I/O error, descriptor limit) and are retried, by payload",
            payload_read_errors.clone(),
        );
        let config_generation = Gauge::default();
        registry.register(
            "config_generation",
            "Generation of the config being served",
            config_generation.clone(),
        );
        let health_generation = Gauge::default();
        registry.register(
            "health_generation",
            "Generation of the health snapshot being served",
            health_generation.clone(),
        );
        let last_reload = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "last_reload_timestamp",
            "Unix time of the last successful reload",
            Unit::Seconds,
            last_reload.clone(),
        );
        let config_source_stale = Gauge::default();
        registry.register(
            "config_source_stale",
            "1 while the Kubernetes API cannot be reached: the last config and health keep serving",
            config_source_stale.clone(),
        );
        Self {
            registry,
            queries,
            rrl,
            query_log,
            dnstap,
            reloads,
            payload_read_errors,
            config_generation,
            health_generation,
            last_reload,
            config_source_stale,
        }
    }

    /// Records an accepted payload and the generations now served.
    pub fn reload_succeeded(
        &self,
        payload: Payload,
        config_generation: u64,
        health_generation: u64,
    ) {
        self.count_reload(payload, "success");
        self.config_generation.set(config_generation as i64);
        self.health_generation.set(health_generation as i64);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        self.last_reload.set(now.as_secs_f64());
    }

    /// Records whether the config source is stale (its API server unreachable).
    pub fn set_config_source_stale(&self, stale: bool) {
        self.config_source_stale.set(i64::from(stale));
    }

    /// Records a refused payload.
    pub fn reload_failed(&self, payload: Payload) {
        self.count_reload(payload, "failure");
    }

    /// Records a payload read that failed and will be retried.
    pub fn payload_read_failed(&self, payload: Payload) {
        self.payload_read_errors
            .get_or_create(&PayloadLabels {
                payload: payload.label_value(),
            })
            .inc();
    }

    fn count_reload(&self, payload: Payload, result: &'static str) {
        self.reloads
            .get_or_create(&ReloadLabels {
                payload: payload.label_value(),
                result,
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_queries_latency_and_reloads() {
        let m = Metrics::new();
        m.queries.domains(["www.gtm.example.com"])[0].count(RecordType::A, ResponseCode::NoError);
        m.queries
            .other()
            .count(RecordType::TXT, ResponseCode::Refused);
        m.queries.observe_latency(Duration::from_micros(30));
        m.reload_succeeded(Payload::Config, 7, 3);
        m.reload_failed(Payload::Health);
        m.payload_read_failed(Payload::Config);
        m.rrl.dropped();
        m.rrl.slipped();
        m.rrl.slipped();
        let text = m.encode();
        for line in [
            r#"gtm_dnspod_queries_total{qtype="A",rcode="NOERROR",domain="www.gtm.example.com"} 1"#,
            r#"gtm_dnspod_queries_total{qtype="other",rcode="REFUSED",domain="-"} 1"#,
            r#"gtm_dnspod_answer_duration_seconds_bucket{le="0.00005"} 1"#,
            "gtm_dnspod_answer_duration_seconds_count 1",
            r#"gtm_dnspod_reloads_total{payload="config",result="success"} 1"#,
            r#"gtm_dnspod_reloads_total{payload="health",result="failure"} 1"#,
            r#"gtm_dnspod_payload_read_errors_total{payload="config"} 1"#,
            "gtm_dnspod_config_generation 7",
            "gtm_dnspod_health_generation 3",
            "gtm_dnspod_rrl_dropped_total 1",
            "gtm_dnspod_rrl_slipped_total 2",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(text.contains("gtm_dnspod_last_reload_timestamp_seconds "));
    }

    #[test]
    fn series_of_domains_no_longer_served_are_dropped() {
        let m = Metrics::new();
        let first = m.queries.domains(["a.example", "b.example"]);
        first[0].count(RecordType::A, ResponseCode::NoError);
        first[1].count(RecordType::A, ResponseCode::NoError);
        let second = m.queries.domains(["b.example", "c.example"]);
        assert!(Arc::ptr_eq(&first[1], &second[0]), "kept across reloads");
        second[1].count(RecordType::A, ResponseCode::NoError);
        let text = m.encode();
        assert!(!text.contains(r#"domain="a.example""#), "{text}");
        for d in ["b.example", "c.example"] {
            let line =
                format!(r#"gtm_dnspod_queries_total{{qtype="A",rcode="NOERROR",domain="{d}"}} 1"#);
            assert!(text.contains(&line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn every_counted_query_type_has_its_own_series_in_a_fixed_order() {
        let m = Metrics::new();
        let counted = [
            RecordType::A,
            RecordType::AAAA,
            RecordType::CNAME,
            RecordType::SOA,
            RecordType::NS,
            RecordType::ANY,
            RecordType::TXT,
            RecordType::MX,
        ];
        for (n, qtype) in counted.into_iter().enumerate() {
            for _ in 0..=n {
                m.queries.other().count(qtype, ResponseCode::NoError);
            }
        }
        let text = m.encode();
        let series: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("gtm_dnspod_queries_total{"))
            .collect();
        let expected: Vec<String> = ["A", "AAAA", "CNAME", "SOA", "NS", "ANY"]
            .iter()
            .enumerate()
            .map(|(n, q)| (*q, n + 1))
            .chain([("other", 7 + 8)])
            .map(|(q, v)| {
                format!(r#"gtm_dnspod_queries_total{{qtype="{q}",rcode="NOERROR",domain="-"}} {v}"#)
            })
            .collect();
        assert_eq!(series, expected);
    }
}
