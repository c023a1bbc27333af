//! Where `gtm-prober` learns its tasks: the config payload the DNS pods read, from the payload
//! directory (local mode) or the control cluster's payload ConfigMaps (cluster mode). Either
//! yields each new whole config once; a payload that cannot be read or parsed is logged and
//! the tasks of the last good one keep running.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use gtm_crds::config::{CONFIG_KEY, GtmConfig, PAYLOAD_LABEL};
use gtm_crds::parts::{INSTANCE_LABEL, Part, Payload, assemble, part_of};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::Notify;
use tokio::time::{Interval, MissedTickBehavior};

/// How often the payload directory is looked at (the file's size and modification time; it
/// is read only when they change).
pub(super) const POLL: Duration = Duration::from_secs(1);

/// The config payload, from a directory or from the API.
pub(super) enum ConfigSource {
    /// `config.json` in the operator's payload directory.
    Dir {
        /// The file.
        path: PathBuf,
        /// Size and modification time of the file last looked at.
        seen: Option<(u64, SystemTime)>,
        /// The polling schedule (kept across calls, so that a caller's `select!` that drops
        /// [`ConfigSource::next`] does not restart the wait).
        poll: Interval,
    },
    /// The config ConfigMaps of an instance.
    Cluster {
        /// The payload ConfigMaps, as the watch sees them.
        store: Store<ConfigMap>,
        /// Woken on every watch event.
        changed: Arc<Notify>,
        /// Digest of the config last yielded.
        digest: Option<String>,
    },
}

impl ConfigSource {
    /// The `config.json` of a payload directory.
    pub(super) fn dir(config_dir: &Path) -> Self {
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self::Dir {
            path: config_dir.join(CONFIG_KEY),
            seen: None,
            poll,
        }
    }

    /// Starts watching the config ConfigMaps of `instance` in `api`'s namespace.
    pub(super) fn cluster(api: Api<ConfigMap>, instance: &str) -> Self {
        let selector = format!(
            "{INSTANCE_LABEL}={instance},{PAYLOAD_LABEL}={}",
            Payload::Config.label_value()
        );
        let (store, writer) = reflector::store();
        let changed = Arc::new(Notify::new());
        let notify = changed.clone();
        let stream = reflector::reflector(
            writer,
            watcher(api, watcher::Config::default().labels(&selector)),
        )
        .backoff(gtm_crds::watch::watch_backoff())
        .for_each(move |event| {
            match event {
                Err(e) => tracing::warn!("config ConfigMap watch failed, retrying: {e}"),
                Ok(watcher::Event::InitDone) => tracing::debug!("config ConfigMaps listed"),
                Ok(_) => {}
            }
            notify.notify_one();
            futures::future::ready(())
        });
        tokio::spawn(stream);
        Self::Cluster {
            store,
            changed,
            digest: None,
        }
    }

    /// The next config that differs from the last one yielded. Cancel-safe: a call dropped
    /// before it returns loses nothing.
    pub(super) async fn next(&mut self) -> GtmConfig {
        loop {
            let text = match self {
                Self::Dir { path, seen, poll } => {
                    poll.tick().await;
                    match changed_file(path, seen) {
                        Some(text) => text,
                        None => continue,
                    }
                }
                Self::Cluster {
                    store,
                    changed,
                    digest,
                } => {
                    changed.notified().await;
                    match changed_parts(store, digest) {
                        Some(text) => text,
                        None => continue,
                    }
                }
            };
            match GtmConfig::from_json(text.as_bytes()) {
                Ok(config) => return config,
                Err(e) => tracing::warn!(
                    "the config payload is not usable, the last one's tasks keep running: {e}"
                ),
            }
        }
    }
}

/// The file's text when its size or modification time changed since `seen`.
fn changed_file(path: &Path, seen: &mut Option<(u64, SystemTime)>) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    let now = (meta.len(), meta.modified().ok()?);
    if *seen == Some(now) {
        return None;
    }
    match std::fs::read_to_string(path) {
        Ok(text) => {
            *seen = Some(now);
            Some(text)
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), "reading the config failed, retrying: {e}");
            None
        }
    }
}

/// The config assembled from the ConfigMaps in `store`, when they are whole and hold another
/// config than the one of `digest`.
fn changed_parts(store: &Store<ConfigMap>, digest: &mut Option<String>) -> Option<String> {
    let parts: Vec<Part> = store
        .state()
        .iter()
        .filter_map(|cm| part_of(cm))
        .filter(|(payload, _)| *payload == Payload::Config)
        .map(|(_, part)| part)
        .collect();
    let first = parts.first()?;
    if digest.as_deref() == Some(first.digest.as_str()) {
        return None;
    }
    match assemble(&parts) {
        Ok(text) => {
            *digest = Some(first.digest.clone());
            Some(text)
        }
        Err(e) => {
            tracing::debug!("config parts not whole yet: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_directory_yields_each_new_config_once_and_skips_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let write = |config: &str| {
            let tmp = dir.path().join(".tmp");
            std::fs::write(&tmp, config).unwrap();
            std::fs::rename(&tmp, dir.path().join(CONFIG_KEY)).unwrap();
        };
        let mut config = GtmConfig::empty(vec!["gtm.example.com".into()]);
        config.generation = 1;
        write(&String::from_utf8(config.to_json()).unwrap());
        let mut source = ConfigSource::dir(dir.path());
        assert_eq!(source.next().await.generation, 1);

        write("{not json");
        config.generation = 2;
        let good = String::from_utf8(config.to_json()).unwrap();
        let next = tokio::spawn(async move { source.next().await.generation });
        tokio::time::sleep(POLL * 3).await;
        assert!(!next.is_finished(), "a broken payload is not yielded");
        // A different length, so that the change is seen whatever the clock's resolution.
        write(&format!("{good}\n"));
        assert_eq!(next.await.unwrap(), 2);
    }
}
