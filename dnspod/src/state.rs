//! The served state: the compiled snapshot the handler reads, and the [`Loader`] that turns
//! payloads from a config source into new snapshots.
//!
//! Every payload is parsed, validated and compiled here, on the reload thread ([`Reloader`]:
//! never on the async runtime), then swapped in with one atomic store; queries in flight keep
//! the snapshot they loaded. A
//! refused payload (malformed, inconsistent, unknown major version, not compilable) is logged
//! and counted, and the last good snapshot keeps serving. A health snapshot that arrives
//! before any config is kept until a config arrives.
//!
//! A health payload is applied as an overlay on the snapshot being served
//! ([`Compiled::with_health`]): the config is not parsed or compiled again, and only the pools
//! and domains whose verdicts changed are. The last accepted health payload is kept as bytes
//! (3.7 MB at 100 000 tasks), read again only when a new config needs its verdicts: a parsed
//! copy keyed by owned task ids would cost more memory, and 100 000 allocations per verdict.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwapOption;
use gtm_crds::config::{HealthSnapshot, HealthVerdicts};
use gtm_crds::parts::Payload;
use sha2::{Digest as _, Sha256};

use crate::dnssec::{KeyError, ZoneKey, ZoneKeys};
use crate::engine::Compiled;
use crate::metrics::{DomainCounters, Metrics};
use crate::readiness::{Readiness, StalePolicy};
use crate::shared_pools::{self, ServedConfig};
use crate::zone::ZoneSettings;

mod reload;
pub use reload::Reloader;

/// A compiled config with the query counters of its access domains.
#[derive(Debug)]
pub struct Snapshot {
    /// The answer index.
    pub compiled: Compiled,
    /// Counters per access domain, indexed like [`crate::engine::Answer::domain`].
    pub counters: Vec<Arc<DomainCounters>>,
}

/// What the handler, the HTTP endpoints and the loader share.
#[derive(Debug, Default)]
pub struct Shared {
    current: ArcSwapOption<Snapshot>,
    /// Process metrics.
    pub metrics: Metrics,
    /// Since when the config source has been unreachable (`None`: fresh); read by `/readyz`.
    source_stale_since: std::sync::Mutex<Option<Instant>>,
}

impl Shared {
    /// A fresh state with nothing loaded.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The snapshot being served, if any config has been accepted yet.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.current.load_full()
    }

    /// Whether a config is being served.
    pub fn is_ready(&self) -> bool {
        self.current.load().is_some()
    }

    /// Records since when the config source has been unreachable (`None`: it is fresh), and
    /// sets `gtm_dnspod_config_source_stale`.
    pub fn set_source_stale_since(&self, since: Option<Instant>) {
        *self
            .source_stale_since
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = since;
        self.metrics.set_config_source_stale(since.is_some());
    }

    /// Readiness at `now` under `policy`: a config served, and the source not stale for longer
    /// than the policy allows.
    pub fn readiness(&self, policy: StalePolicy, now: Instant) -> Readiness {
        let since = *self
            .source_stale_since
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        Readiness::of(
            self.is_ready(),
            since.map(|s| now.saturating_duration_since(s)),
            policy,
        )
    }
}

/// Why a payload was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Parsing or validation failed.
    #[error(transparent)]
    Contract(#[from] gtm_crds::config::ContractError),
    /// Compilation failed.
    #[error(transparent)]
    Compile(#[from] crate::engine::CompileError),
    /// A signed zone's key could not be read.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// A SHA-256 digest.
type Digest = sha2::digest::Output<Sha256>;

/// Turns payloads into snapshots. One per config source.
#[derive(Debug)]
pub struct Loader {
    shared: Arc<Shared>,
    settings: ZoneSettings,
    /// The bytes of the last accepted health payload.
    health: Option<Vec<u8>>,
    /// A digest (SHA-256) of the last config offered, so that re-reading an unchanged file or
    /// ConfigMap neither recompiles nor logs again; a digest rather than the bytes, which are
    /// tens of megabytes at 100 000 addresses.
    last_config: Option<Digest>,
    /// The digest of the last health payload refused (none since one was accepted). An
    /// unchanged health payload is told by its bytes, which are kept ([`Self::health`]): no
    /// digest of every verdict's 3.7 MB (a sixth of a verdict's time at 100 000 tasks).
    refused_health: Option<Digest>,
    /// Directory of the signed zones' keys (`--dnssec-keys`).
    key_dir: Option<PathBuf>,
    /// The DS record last logged per signed zone.
    logged_ds: BTreeMap<String, String>,
    /// Told at every compile whether an async runtime is current on the compiling thread.
    #[cfg(test)]
    runtime_probe: Option<std::sync::mpsc::Sender<bool>>,
}

impl Loader {
    /// A loader feeding `shared`, with the zone settings from the flags.
    pub fn new(shared: Arc<Shared>, settings: ZoneSettings) -> Self {
        Self {
            shared,
            settings,
            health: None,
            last_config: None,
            refused_health: None,
            key_dir: None,
            logged_ds: BTreeMap::new(),
            #[cfg(test)]
            runtime_probe: None,
        }
    }

    /// The same loader reading the signed zones' keys from `dir` (`<zone>.key`, see
    /// [`crate::dnssec::key_file`]) at every compile, so a replaced key file is used from the
    /// next reload on.
    pub fn with_key_dir(self, dir: PathBuf) -> Self {
        Self {
            key_dir: Some(dir),
            ..self
        }
    }

    /// Offers a payload. Returns whether it was new and accepted; an unchanged payload is
    /// `Ok(false)`. A refused payload is logged and counted before the error is returned.
    ///
    /// Each offer runs in a `payload_reload` span with fields `payload`, `bytes`, `generation`
    /// (of the payload, once parsed) and `result` (`unchanged`, `accepted` or `refused`).
    ///
    /// The bytes are taken by value so that a config's are freed as soon as they are parsed,
    /// before the compile (18 MB of the reload's peak at 100 000 addresses), and a health
    /// payload's are kept without a copy.
    pub fn offer(
        &mut self,
        payload: Payload,
        bytes: impl Into<Vec<u8>>,
    ) -> Result<bool, LoadError> {
        let bytes = bytes.into();
        let span = tracing::info_span!(
            "payload_reload",
            %payload,
            bytes = bytes.len(),
            generation = tracing::field::Empty,
            result = tracing::field::Empty,
        );
        let _entered = span.enter();
        let unchanged = match payload {
            Payload::Config => {
                let digest = Sha256::digest(&bytes);
                let same = self.last_config == Some(digest);
                self.last_config = Some(digest);
                same
            }
            Payload::Health => {
                self.health.as_deref() == Some(bytes.as_slice())
                    || self
                        .refused_health
                        .is_some_and(|d| d == Sha256::digest(&bytes))
            }
        };
        if unchanged {
            span.record("result", "unchanged");
            return Ok(false);
        }
        let accepted = match payload {
            Payload::Config => self.accept_config(bytes),
            Payload::Health => self.accept_health(bytes),
        };
        match accepted {
            Ok(()) => {
                span.record("result", "accepted");
                Ok(true)
            }
            Err(error) => {
                span.record("result", "refused");
                tracing::warn!(%payload, %error, "payload refused; the last good one keeps serving");
                self.shared.metrics.reload_failed(payload);
                Err(error)
            }
        }
    }

    fn accept_config(&mut self, bytes: Vec<u8>) -> Result<(), LoadError> {
        let serving = self.shared.snapshot();
        let served = serving.as_deref().map(|s| s.compiled.config());
        let config = Arc::new(shared_pools::parse(&bytes, served)?);
        drop((bytes, serving));
        tracing::Span::current().record("generation", config.generation);
        let empty = HealthSnapshot::empty();
        // Taken out for the compile, which updates the loader (the keys' DS log), and put
        // back whatever its outcome: a copy would add its megabytes to the reload's peak.
        // The new config's task list is not known before its compile: the kept verdicts are
        // read by id (a config reload parses and compiles tens of megabytes anyway).
        let kept = self.health.take();
        let compiled = match &kept {
            Some(bytes) => HealthVerdicts::from_json(bytes, None)
                .map_err(LoadError::from)
                .and_then(|health| self.compile(config, &health)),
            None => self.compile(config, &HealthVerdicts::of(&empty)),
        };
        self.health = kept;
        compiled
    }

    fn accept_health(&mut self, bytes: Vec<u8>) -> Result<(), LoadError> {
        if let Err(error) = self.apply_health(&bytes) {
            self.refused_health = Some(Sha256::digest(&bytes));
            return Err(error);
        }
        self.refused_health = None;
        self.health = Some(bytes);
        Ok(())
    }

    /// Lays a health payload over the snapshot being served, or keeps it for the first config.
    ///
    /// Verdicts numbered by the served config's task list are read by number, else by id.
    fn apply_health(&self, bytes: &[u8]) -> Result<(), LoadError> {
        let serving = self.shared.snapshot();
        let task_list = serving.as_deref().map(|s| s.compiled.task_list());
        let health = HealthVerdicts::from_json(bytes, task_list)?;
        tracing::Span::current().record("generation", health.generation);
        match &serving {
            Some(serving) => self.overlay(serving, &health)?,
            None => tracing::info!(
                generation = health.generation,
                "health snapshot kept until a config arrives"
            ),
        }
        Ok(())
    }

    /// The keys of the zones `config` signs, read from the key directory.
    fn load_keys(&self, config: &ServedConfig) -> Result<ZoneKeys, LoadError> {
        let mut keys = ZoneKeys::new();
        for zone in &config.zone_data {
            let Some(dnssec) = &zone.dnssec else {
                continue;
            };
            let Some(dir) = &self.key_dir else {
                return Err(KeyError {
                    zone: zone.name.clone(),
                    path: String::new(),
                    reason: "DNSSEC is on but the DNS pod has no key directory (--dnssec-keys)"
                        .into(),
                }
                .into());
            };
            let key = ZoneKey::load(dir, &zone.name, dnssec.algorithm)?;
            keys.insert(zone.name.clone(), Arc::new(key));
        }
        Ok(keys)
    }

    /// Logs the DS record of every signed zone whose key is new.
    fn log_new_keys(&mut self, keys: &ZoneKeys) {
        for (zone, key) in keys {
            if self.logged_ds.get(zone).map(String::as_str) != Some(key.ds()) {
                tracing::info!(
                    zone,
                    key_tag = key.key_tag(),
                    ds = key.ds(),
                    "DNSSEC: signing the zone; its parent zone needs this DS record"
                );
                self.logged_ds.insert(zone.clone(), key.ds().to_owned());
            }
        }
        self.logged_ds.retain(|zone, _| keys.contains_key(zone));
    }

    /// Compiles `config` with `health` and serves it.
    fn compile(
        &mut self,
        config: Arc<ServedConfig>,
        health: &HealthVerdicts<'_>,
    ) -> Result<(), LoadError> {
        #[cfg(test)]
        if let Some(probe) = &self.runtime_probe {
            let _ = probe.send(tokio::runtime::Handle::try_current().is_ok());
        }
        let serving = self.shared.snapshot();
        let keys = self.load_keys(&config)?;
        let compiled = Compiled::build(
            config,
            health,
            &self.settings,
            &keys,
            serving.as_deref().map(|s| &s.compiled),
        )?;
        self.log_new_keys(&keys);
        let counters = self.shared.metrics.queries.domains(compiled.domain_names());
        self.install(Payload::Config, Snapshot { compiled, counters });
        Ok(())
    }

    /// Serves `serving`'s config under `health`; the access domains, and so their counters,
    /// stay the same.
    fn overlay(&self, serving: &Snapshot, health: &HealthVerdicts<'_>) -> Result<(), LoadError> {
        let compiled = serving.compiled.with_health(health)?;
        let counters = serving.counters.clone();
        self.install(Payload::Health, Snapshot { compiled, counters });
        Ok(())
    }

    fn install(&self, payload: Payload, snapshot: Snapshot) {
        let (config_generation, health_generation) = (
            snapshot.compiled.generation(),
            snapshot.compiled.health_generation(),
        );
        self.shared.current.store(Some(Arc::new(snapshot)));
        self.shared
            .metrics
            .reload_succeeded(payload, config_generation, health_generation);
        tracing::info!(
            %payload,
            config_generation,
            health_generation,
            "serving new snapshot"
        );
    }
}

#[cfg(test)]
mod tests {
    use gtm_crds::config::{GtmConfig, SCHEMA_VERSION};

    use super::*;

    fn config_json(generation: u64) -> Vec<u8> {
        GtmConfig {
            schema_version: SCHEMA_VERSION,
            generation,
            zones: vec!["gtm.example.com".into()],
            zone_data: Vec::new(),
            serials: Default::default(),
            domains: vec![],
            pools: vec![],
            templates: Default::default(),
        }
        .to_json()
    }

    fn health_json(generation: u64) -> Vec<u8> {
        serde_json::to_vec(&HealthSnapshot {
            generation,
            ..HealthSnapshot::empty()
        })
        .unwrap()
    }

    #[test]
    fn health_before_config_is_kept_and_applied_with_the_config() {
        let shared = Shared::new();
        let mut loader = Loader::new(shared.clone(), ZoneSettings::default());
        assert!(loader.offer(Payload::Health, health_json(4)).unwrap());
        assert!(!shared.is_ready());
        assert!(loader.offer(Payload::Config, config_json(2)).unwrap());
        let snap = shared.snapshot().unwrap();
        assert_eq!(
            (
                snap.compiled.generation(),
                snap.compiled.health_generation()
            ),
            (2, 4)
        );
    }

    #[test]
    fn bad_payloads_are_refused_and_the_last_good_keeps_serving() {
        let shared = Shared::new();
        let mut loader = Loader::new(shared.clone(), ZoneSettings::default());
        loader.offer(Payload::Config, config_json(1)).unwrap();
        let future = String::from_utf8(config_json(9))
            .unwrap()
            .replace(&format!("\"{SCHEMA_VERSION}\""), "\"2.0\"");
        for bad in [&b"{not json"[..], &config_json(5)[..10], future.as_bytes()] {
            assert!(loader.offer(Payload::Config, bad).is_err());
            assert_eq!(shared.snapshot().unwrap().compiled.generation(), 1);
        }
        assert!(loader.offer(Payload::Health, b"[]").is_err());
        // Offered again unchanged: neither reloaded nor counted again.
        assert!(!loader.offer(Payload::Config, future.as_bytes()).unwrap());
        let text = shared.metrics.encode();
        assert!(text.contains(r#"gtm_dnspod_reloads_total{payload="config",result="failure"} 3"#));
        assert!(text.contains(r#"gtm_dnspod_reloads_total{payload="health",result="failure"} 1"#));
    }

    #[test]
    fn a_republished_config_is_served_with_the_pools_of_the_one_before() {
        use crate::engine::tests::fixtures::www_only;
        let shared = Shared::new();
        let mut loader = Loader::new(shared.clone(), ZoneSettings::default());
        loader
            .offer(Payload::Config, www_only(1, "192.0.2.1").to_json())
            .unwrap();
        let first = shared.snapshot().unwrap();
        loader
            .offer(Payload::Config, www_only(2, "192.0.2.1").to_json())
            .unwrap();
        let second = shared.snapshot().unwrap();
        assert_eq!(second.compiled.generation(), 2);
        let pool = |s: &Snapshot| s.compiled.config().pools[0].clone();
        assert!(pool(&second).is_shared_with(&pool(&first)));
        loader
            .offer(Payload::Config, www_only(3, "192.0.2.2").to_json())
            .unwrap();
        let third = shared.snapshot().unwrap();
        assert!(!pool(&third).is_shared_with(&pool(&second)));
    }

    #[test]
    fn an_unchanged_payload_is_not_reloaded() {
        let shared = Shared::new();
        let mut loader = Loader::new(shared, ZoneSettings::default());
        assert!(loader.offer(Payload::Config, config_json(1)).unwrap());
        assert!(!loader.offer(Payload::Config, config_json(1)).unwrap());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn payloads_are_compiled_off_the_async_runtime() {
        let (probe, compiled_on_runtime) = std::sync::mpsc::channel();
        let mut loader = Loader::new(Shared::new(), ZoneSettings::default());
        loader.runtime_probe = Some(probe);
        // Offered straight from a task, the compile would run on the runtime's thread.
        assert!(loader.offer(Payload::Config, config_json(1)).unwrap());
        assert_eq!(compiled_on_runtime.try_recv(), Ok(true));

        let reloader = Reloader::start(loader);
        assert!(
            reloader
                .offer(Payload::Config, config_json(2))
                .await
                .unwrap()
        );
        assert_eq!(compiled_on_runtime.try_recv(), Ok(false));
        assert!(
            reloader
                .offer(Payload::Health, b"[]".to_vec())
                .await
                .is_err(),
            "verdicts come back"
        );
    }

    /// Collects what a `fmt` subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_offer_is_a_reload_span_with_its_payload_size_generation_and_result() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_ansi(false)
            .finish();
        let config = config_json(7);
        tracing::subscriber::with_default(subscriber, || {
            let mut loader = Loader::new(Shared::new(), ZoneSettings::default());
            loader.offer(Payload::Config, config.clone()).unwrap();
            loader.offer(Payload::Config, config.clone()).unwrap();
            loader.offer(Payload::Health, b"[]").unwrap_err();
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let closed: Vec<&str> = text.lines().filter(|l| l.contains("close")).collect();
        let bytes = config.len();
        let expected = [
            format!(
                "payload_reload{{payload=config bytes={bytes} generation=7 result=\"accepted\"}}"
            ),
            format!("payload_reload{{payload=config bytes={bytes} result=\"unchanged\"}}"),
            "payload_reload{payload=health bytes=2 result=\"refused\"}".to_string(),
        ];
        assert_eq!(closed.len(), expected.len(), "{text}");
        for (line, span) in closed.iter().zip(&expected) {
            assert!(line.contains(span.as_str()), "{span} not in {line}");
        }
    }
}
