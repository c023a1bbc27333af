//! The query log: a sampled, structured record of answered queries, one JSON object per line
//! (time, client or ECS subnet, name, type, response code, answer, the access domain and its
//! policy decision: policy, leading pool and why, the ECS scope that decided it, latency,
//! transport), off unless `--query-log` names a file (or `-` for standard output).
//!
//! It can never slow the answer path: a query is sampled (one in `--query-log-sample`) and
//! admitted under a per-second cap (`--query-log-rate`) with two atomic operations; only an
//! admitted one builds its entry, which goes to a bounded queue without waiting. A writer
//! thread formats and writes the entries. Entries over the rate or finding the queue full are
//! dropped and counted (`gtm_dnspod_query_log_dropped_total{reason}`).

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gtm_crds::common::LbPolicy;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::Serialize;

use crate::engine::Reason;

/// Entries waiting for the writer at most.
pub const QUEUE: usize = 4096;

/// Settings from the flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryLogSettings {
    /// Where to write: a file (appended to), or `-` for standard output.
    pub path: PathBuf,
    /// One query in this many is logged (1: every query).
    pub sample: u32,
    /// Entries per second at most.
    pub rate: u32,
}

/// One logged query.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// When it was answered, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// `udp` or `tcp`.
    pub transport: &'static str,
    /// The resolver's address.
    pub resolver: IpAddr,
    /// The EDNS Client Subnet, `address/prefix`, when the query carried one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecs: Option<String>,
    /// The name asked.
    pub name: String,
    /// The type asked.
    pub qtype: String,
    /// The response code.
    pub rcode: String,
    /// The answer records' data, in order.
    pub answer: Vec<String>,
    /// The access domain that answered, if any (the policy decision's owner).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The access domain's pool-level policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<LbPolicy>,
    /// The pool leading the answer (`namespace/name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// Why the policy answered that pool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// The leading pool had no available address, so it answered all its enabled ones.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pool_fail_open: bool,
    /// The ECS scope the answer depended on (0: not on the client).
    pub scope: u8,
    /// Time from receiving the query to handing the response over, microseconds.
    pub latency_us: u64,
}

/// Labels of the dropped entries.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct DropLabels {
    /// `rate` (over `--query-log-rate`) or `queue` (the writer fell behind).
    pub reason: &'static str,
}

/// The log's counters, registered whether the log is on or not.
#[derive(Clone, Debug, Default)]
pub struct QueryLogMetrics {
    /// Entries written.
    pub written: Counter,
    /// Entries dropped, by reason.
    pub dropped: Family<DropLabels, Counter>,
}

/// The sampling, the rate cap and the queue to the writer thread.
#[derive(Debug)]
pub struct QueryLog {
    sample: u64,
    rate: u64,
    seen: AtomicU64,
    /// The current second (high 32 bits) and the entries admitted in it (low 32 bits).
    window: AtomicU64,
    queue: SyncSender<Entry>,
    metrics: QueryLogMetrics,
}

impl QueryLog {
    /// Opens the log's output and starts its writer thread.
    pub fn start(settings: &QueryLogSettings, metrics: QueryLogMetrics) -> std::io::Result<Self> {
        let out: Box<dyn Write + Send> = if settings.path.as_os_str() == "-" {
            Box::new(std::io::stdout())
        } else {
            Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&settings.path)?,
            )
        };
        let (queue, entries) = sync_channel(QUEUE);
        let written = metrics.written.clone();
        std::thread::Builder::new()
            .name("query-log".into())
            .spawn(move || write_entries(&entries, out, &written))?;
        Ok(Self::with_queue(settings, queue, metrics))
    }

    fn with_queue(
        settings: &QueryLogSettings,
        queue: SyncSender<Entry>,
        metrics: QueryLogMetrics,
    ) -> Self {
        Self {
            sample: u64::from(settings.sample.max(1)),
            rate: u64::from(settings.rate),
            seen: AtomicU64::new(0),
            window: AtomicU64::new(0),
            queue,
            metrics,
        }
    }

    /// Whether the query answered now is to be logged: sampled, and within the rate of the
    /// current second. Call it before building an [`Entry`].
    pub fn admit(&self) -> bool {
        if !self
            .seen
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(self.sample)
        {
            return false;
        }
        let second = now_ms() / 1000;
        let admitted = self
            .window
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
                let (at, count) = (w >> 32, w & u64::from(u32::MAX));
                if at != second & u64::from(u32::MAX) {
                    Some(((second & u64::from(u32::MAX)) << 32) | 1)
                } else if count < self.rate {
                    Some(w + 1)
                } else {
                    None
                }
            })
            .is_ok();
        if !admitted {
            self.metrics
                .dropped
                .get_or_create(&DropLabels { reason: "rate" })
                .inc();
        }
        admitted
    }

    /// Hands an admitted entry to the writer, or drops and counts it when the queue is full.
    pub fn push(&self, entry: Entry) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.queue.try_send(entry)
        {
            self.metrics
                .dropped
                .get_or_create(&DropLabels { reason: "queue" })
                .inc();
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The writer thread: one JSON line per entry, flushed whenever the queue runs empty.
fn write_entries(entries: &Receiver<Entry>, out: Box<dyn Write + Send>, written: &Counter) {
    let mut out = std::io::BufWriter::new(out);
    let mut failed = false;
    while let Ok(first) = entries.recv() {
        let mut next = Some(first);
        while let Some(entry) = next {
            let line = serde_json::to_string(&entry).unwrap_or_default();
            match writeln!(out, "{line}") {
                Ok(()) => {
                    written.inc();
                }
                Err(e) if !failed => {
                    tracing::warn!("writing the query log failed: {e}");
                    failed = true;
                }
                Err(_) => {}
            }
            next = entries.recv_timeout(Duration::ZERO).ok();
        }
        if out.flush().is_err() && !failed {
            tracing::warn!("flushing the query log failed");
            failed = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64) -> Entry {
        Entry {
            time_ms: n,
            transport: "udp",
            resolver: "192.0.2.1".parse().unwrap(),
            ecs: Some("198.51.100.0/24".into()),
            name: "www.gtm.example.com.".into(),
            qtype: "A".into(),
            rcode: "NoError".into(),
            answer: vec!["192.0.2.10".into()],
            domain: Some("www.gtm.example.com".into()),
            policy: Some(LbPolicy::Sequential),
            pool: Some("default/standby".into()),
            reason: Some(Reason::FailedOver),
            pool_fail_open: false,
            scope: 24,
            latency_us: 12,
        }
    }

    #[test]
    fn sampling_and_the_rate_bound_what_is_logged_and_the_rest_is_counted() {
        let (queue, entries) = sync_channel(2);
        let metrics = QueryLogMetrics::default();
        let settings = QueryLogSettings {
            path: "-".into(),
            sample: 10,
            rate: 3,
        };
        let log = QueryLog::with_queue(&settings, queue, metrics.clone());
        let admitted = (0..100).filter(|_| log.admit()).count();
        // 10 of 100 sampled, 3 of those within the second's rate (a second boundary in
        // between can admit up to 3 more).
        assert!((3..=6).contains(&admitted), "{admitted}");
        let rate_dropped = metrics
            .dropped
            .get_or_create(&DropLabels { reason: "rate" })
            .get();
        assert_eq!(rate_dropped as usize, 10 - admitted);
        for n in 0..3 {
            log.push(entry(n));
        }
        assert_eq!(
            metrics
                .dropped
                .get_or_create(&DropLabels { reason: "queue" })
                .get(),
            1,
            "the third found the queue of two full and was dropped without waiting"
        );
        assert_eq!(entries.try_iter().count(), 2);
    }

    #[test]
    fn entries_are_written_as_json_lines() {
        let dir = std::env::temp_dir().join(format!("gtm-qlog-{}", std::process::id()));
        let metrics = QueryLogMetrics::default();
        let log = QueryLog::start(
            &QueryLogSettings {
                path: dir.clone(),
                sample: 1,
                rate: 100,
            },
            metrics.clone(),
        )
        .unwrap();
        assert!(log.admit());
        log.push(entry(7));
        for _ in 0..200 {
            if metrics.written.get() == 1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let text = std::fs::read_to_string(&dir).unwrap();
        let _ = std::fs::remove_file(&dir);
        let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(v["name"], "www.gtm.example.com.");
        assert_eq!(v["ecs"], "198.51.100.0/24");
        assert_eq!(v["answer"][0], "192.0.2.10");
        assert_eq!(
            (v["scope"].as_u64(), v["latencyUs"].as_u64()),
            (Some(24), Some(12))
        );
        assert_eq!(
            (&v["policy"], &v["pool"], &v["reason"]),
            (
                &serde_json::json!("Sequential"),
                &serde_json::json!("default/standby"),
                &serde_json::json!("failedOver")
            )
        );
        assert!(v.get("poolFailOpen").is_none(), "only written when true");
    }
}
