//! Watches of the kinds endpoint sources name, in one cluster: the control cluster (the
//! operator, `--endpoint-kinds`) or an edge cluster (the endpoint agent). Each watch keeps only
//! the addresses in each object's status ([`addresses_in_status`]), not the objects, and wakes
//! `changed` when they change. A kind counts as watched once its first list is done; until then
//! (or while its API is missing, a Gateway API not installed) sources of that kind are
//! `NotWatched` rather than missing, so that no one is told an object is gone that is merely
//! not listed yet.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use gtm_crds::pool::EndpointKind;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::Notify;

use crate::endpoints::{Discovered, EndpointRef, addresses_in_status};

/// The API resource of `kind`: core `v1` Services, `networking.k8s.io/v1` Ingresses,
/// `gateway.networking.k8s.io/v1` Gateways.
pub fn api_resource(kind: EndpointKind) -> ApiResource {
    match kind {
        EndpointKind::Service => ApiResource::erase::<Service>(&()),
        EndpointKind::Ingress => ApiResource::erase::<Ingress>(&()),
        EndpointKind::Gateway => ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "Gateway"),
            "gateways",
        ),
    }
}

/// The addresses of the objects one watch sees, by (namespace, name).
#[derive(Debug, Default)]
pub(crate) struct WatchState {
    synced: bool,
    objects: BTreeMap<(String, String), Vec<String>>,
    /// Objects of a relist in progress, swapped in whole when it is done.
    relisting: Option<BTreeMap<(String, String), Vec<String>>>,
}

impl WatchState {
    /// Applies a watch event for objects of `kind`; returns whether the known addresses (or
    /// whether the kind is synced) changed.
    pub(crate) fn apply(&mut self, kind: EndpointKind, event: Event<DynamicObject>) -> bool {
        let entry = |o: &DynamicObject| {
            let addresses = addresses_in_status(kind, &serde_json::to_value(o).unwrap_or_default());
            ((o.namespace().unwrap_or_default(), o.name_any()), addresses)
        };
        match event {
            Event::Init => {
                self.relisting = Some(BTreeMap::new());
                false
            }
            Event::InitApply(o) => {
                if let Some(r) = self.relisting.as_mut() {
                    let (key, addresses) = entry(&o);
                    r.insert(key, addresses);
                }
                false
            }
            Event::InitDone => {
                let relisted = self.relisting.take().unwrap_or_default();
                let changed = !self.synced || relisted != self.objects;
                self.objects = relisted;
                self.synced = true;
                changed
            }
            Event::Apply(o) => {
                let (key, addresses) = entry(&o);
                self.objects.insert(key, addresses.clone()) != Some(addresses)
            }
            Event::Delete(o) => self.objects.remove(&entry(&o).0).is_some(),
        }
    }
}

/// The watches of some kinds in one cluster (each kind in every watched namespace).
#[derive(Clone, Debug, Default)]
pub struct KindWatches {
    states: Vec<(EndpointKind, Arc<Mutex<WatchState>>)>,
}

impl KindWatches {
    /// Starts watching `kinds` in `namespaces` (all when empty); every change wakes `changed`.
    pub fn start(
        client: &Client,
        kinds: &[EndpointKind],
        namespaces: &[String],
        changed: &Arc<Notify>,
    ) -> Self {
        let mut states = Vec::new();
        for &kind in kinds {
            let resource = api_resource(kind);
            let apis: Vec<Api<DynamicObject>> = if namespaces.is_empty() {
                vec![Api::all_with(client.clone(), &resource)]
            } else {
                namespaces
                    .iter()
                    .map(|ns| Api::namespaced_with(client.clone(), ns, &resource))
                    .collect()
            };
            for api in apis {
                let state = Arc::new(Mutex::new(WatchState::default()));
                tokio::spawn(follow(api, kind, state.clone(), changed.clone()));
                states.push((kind, state));
            }
        }
        Self { states }
    }

    /// Adds what the watches know to `out` as `cluster`'s (`None`: the control cluster): a kind
    /// is watched once every namespace's watch of it has listed.
    pub fn add_to(&self, cluster: Option<&str>, out: &mut Discovered) {
        let cluster = cluster.map(str::to_owned);
        let mut synced: BTreeMap<EndpointKind, bool> = BTreeMap::new();
        for (kind, state) in &self.states {
            let state = state.lock().unwrap_or_else(|e| e.into_inner());
            *synced.entry(*kind).or_insert(true) &= state.synced;
            for ((namespace, name), addresses) in &state.objects {
                let r = EndpointRef {
                    cluster: cluster.clone(),
                    kind: *kind,
                    namespace: namespace.clone(),
                    name: name.clone(),
                };
                out.objects.insert(r, addresses.clone());
            }
        }
        for (kind, done) in synced {
            if done {
                out.watched.insert((cluster.clone(), kind));
            }
        }
    }

    /// Whether every watch has listed once.
    pub fn synced(&self) -> bool {
        self.states
            .iter()
            .all(|(_, s)| s.lock().unwrap_or_else(|e| e.into_inner()).synced)
    }
}

/// Follows one watch into `state` for good (the watcher relists after errors, with backoff).
async fn follow(
    api: Api<DynamicObject>,
    kind: EndpointKind,
    state: Arc<Mutex<WatchState>>,
    changed: Arc<Notify>,
) {
    let mut events = watcher(api, watcher::Config::default())
        .backoff(gtm_crds::watch::watch_backoff())
        .boxed();
    // The first failure after a success is a warning, the retries that follow are debug lines
    // (a missing Gateway API fails every few seconds for good).
    let mut failing = false;
    while let Some(event) = events.next().await {
        match event {
            Ok(event) => {
                if std::mem::take(&mut failing) {
                    tracing::info!(%kind, "watching {kind} objects works again");
                }
                let moved = state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .apply(kind, event);
                if moved {
                    changed.notify_one();
                }
            }
            Err(e) if failing => {
                tracing::debug!(%kind, "watching {kind} objects failed again: {e}")
            }
            Err(e) => {
                failing = true;
                tracing::warn!(
                    %kind,
                    "watching {kind} objects failed (for Gateways: is the Gateway API installed?); retrying: {e}"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
