//! Cluster mode: the ConfigMaps of the config contract, watched through the API (not a volume
//! mount, which kubelet syncs only every minute or so). They are selected by
//! `gtm.kubegtm.io/instance=<instance>` and the presence of `gtm.kubegtm.io/payload`, grouped
//! by payload, and reassembled with [`gtm_crds::parts::assemble`]. A set of parts that is not
//! whole yet (an update in flight) is reported once and the last good payload keeps serving.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use gtm_crds::parts::{Part, Payload, assemble, part_of, payload_of};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::state::{Loader, Reloader};

mod freshness;
pub use freshness::monitor;

/// The payload ConfigMaps currently known, by name.
#[derive(Debug, Default)]
pub struct ConfigMapSet {
    current: BTreeMap<String, ConfigMap>,
    /// Objects of a relist in progress, swapped in whole when it is done.
    relisting: Option<BTreeMap<String, ConfigMap>>,
    /// Per payload, the (name, resourceVersion) list last reported, so that an unchanged set
    /// is neither reloaded nor reported again.
    seen: BTreeMap<&'static str, Vec<(String, String)>>,
}

fn name_of(cm: &ConfigMap) -> String {
    cm.metadata.name.clone().unwrap_or_default()
}

/// Why a payload could not be taken from its ConfigMaps.
#[derive(Debug, thiserror::Error)]
pub enum PartsError {
    /// A ConfigMap lacks the part annotations or the data key.
    #[error("ConfigMap {0} is not a valid part (annotations or data key missing)")]
    BadPart(String),
    /// The parts do not form a payload.
    #[error(transparent)]
    Assembly(#[from] gtm_crds::parts::AssemblyError),
}

impl ConfigMapSet {
    /// Applies a watch event; returns whether the known set changed (never mid-relist).
    pub fn apply(&mut self, event: Event<ConfigMap>) -> bool {
        match event {
            Event::Init => {
                self.relisting = Some(BTreeMap::new());
                false
            }
            Event::InitApply(cm) => {
                if let Some(r) = self.relisting.as_mut() {
                    r.insert(name_of(&cm), cm);
                }
                false
            }
            Event::InitDone => {
                if let Some(r) = self.relisting.take() {
                    self.current = r;
                }
                true
            }
            Event::Apply(cm) => {
                self.current.insert(name_of(&cm), cm);
                true
            }
            Event::Delete(cm) => {
                self.current.remove(&name_of(&cm));
                true
            }
        }
    }

    /// The assembled text of `payload`, or `None` when its parts are the ones last returned.
    pub fn changed_payload(&mut self, payload: Payload) -> Option<Result<String, PartsError>> {
        let members: Vec<&ConfigMap> = self
            .current
            .values()
            .filter(|cm| payload_of(cm) == Some(payload))
            .collect();
        let key: Vec<(String, String)> = members
            .iter()
            .map(|cm| {
                (
                    name_of(cm),
                    cm.metadata.resource_version.clone().unwrap_or_default(),
                )
            })
            .collect();
        if members.is_empty() || self.seen.get(payload.label_value()) == Some(&key) {
            return None;
        }
        let result = members
            .iter()
            .map(|cm| {
                part_of(cm)
                    .map(|(_, part)| part)
                    .ok_or_else(|| PartsError::BadPart(name_of(cm)))
            })
            .collect::<Result<Vec<Part>, _>>()
            .and_then(|parts| Ok(assemble(&parts)?));
        self.seen.insert(payload.label_value(), key);
        Some(result)
    }
}

/// Watches the payload ConfigMaps of `instance` in `api`'s namespace and offers every whole
/// new payload to `loader` (which runs on its own thread, [`Reloader`]), until `shutdown`. Watch errors are logged and retried with
/// backoff. When `reload` is notified (SIGHUP) the watch starts over with a fresh list.
pub async fn follow(
    api: Api<ConfigMap>,
    instance: &str,
    loader: Loader,
    reload: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let config = watcher::Config::default().labels(&gtm_crds::parts::selector(instance));
    let start = || {
        watcher(api.clone(), config.clone())
            .backoff(gtm_crds::watch::watch_backoff())
            .boxed()
    };
    let mut events = start();
    let mut set = ConfigMapSet::default();
    let loader = Reloader::start(loader);
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            () = reload.notified() => {
                tracing::info!("listing the payload ConfigMaps again");
                events = start();
                continue;
            }
            event = events.next() => event,
        };
        match event {
            None => break,
            Some(Err(error)) => tracing::warn!(%error, "ConfigMap watch failed; retrying"),
            Some(Ok(event)) => {
                if !set.apply(event) {
                    continue;
                }
                for payload in Payload::ALL {
                    match set.changed_payload(payload) {
                        None => {}
                        Some(Ok(text)) => {
                            // A refusal is logged and counted by the loader.
                            let _ = loader.offer(payload, text.into_bytes()).await;
                        }
                        Some(Err(error)) => {
                            tracing::warn!(%payload, %error, "payload parts not usable; the last good payload keeps serving");
                            loader.refuse(payload);
                        }
                    }
                }
            }
        }
    }
}
