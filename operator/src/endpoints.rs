//! Endpoints from Kubernetes, the pure part: the addresses in the status of the objects an
//! `AddressPool`'s `endpointSources` name (a LoadBalancer `Service`, an `Ingress`, a Gateway API
//! `Gateway`), and the pool as compile sees it, those addresses added to its literal ones.
//!
//! ```text
//! control cluster: watches of the enabled kinds ─┐
//! edge clusters: endpoint agent ConfigMaps ──────┴─> Discovered ─> expand(pool) ─> compile
//!                                                                  └> PoolEndpoints: status source,
//!                                                                     EndpointsResolved condition
//! ```
//!
//! Discovered addresses never make a pool invalid: one that does not fit the pool's type (an
//! IPv6 address in an IPv4 pool, an IP in a Domain pool), is not unicast, or is already listed
//! (literally or by an earlier source) is left out.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

use gtm_crds::AddressPool;
use gtm_crds::config::address_fits_pool_type;
use gtm_crds::pool::{EndpointKind, EndpointSource, PoolAddress};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::compile::{canonical_address, not_unicast};
use crate::conditions::{Cond, ENDPOINTS_RESOLVED};

/// One object a source may name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EndpointRef {
    /// The edge cluster it lives in; `None`: the control cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Its kind.
    pub kind: EndpointKind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl fmt::Display for EndpointRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)?;
        if let Some(cluster) = &self.cluster {
            write!(f, " in cluster {cluster}")?;
        }
        Ok(())
    }
}

/// Where objects of one kind are known from: the control cluster (`None`) or an edge cluster.
pub type Origin = (Option<String>, EndpointKind);

/// What the operator knows of the objects sources may name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Discovered {
    /// The kinds whose objects are known, per cluster: watched and listed in the control
    /// cluster, or published by an edge cluster's agent. A source of another kind is
    /// `NotWatched`, not missing.
    pub watched: BTreeSet<Origin>,
    /// The addresses in each known object's status (empty: none yet), in status order.
    pub objects: BTreeMap<EndpointRef, Vec<String>>,
}

/// The addresses in the status of an object of `kind` (JSON as the API serves it): a
/// LoadBalancer Service's or an Ingress's `status.loadBalancer.ingress[].ip` and `.hostname`,
/// a Gateway's `status.addresses[].value` (types `IPAddress` and `Hostname`; the type defaults
/// to `IPAddress`). A Service of another type has none.
pub fn addresses_in_status(kind: EndpointKind, object: &Value) -> Vec<String> {
    let list = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let text = |v: &Value, field: &str| v.get(field).and_then(Value::as_str).map(str::to_owned);
    let mut out: Vec<String> = match kind {
        EndpointKind::Service
            if object.pointer("/spec/type").and_then(Value::as_str) != Some("LoadBalancer") =>
        {
            Vec::new()
        }
        EndpointKind::Service | EndpointKind::Ingress => list("/status/loadBalancer/ingress")
            .iter()
            .flat_map(|i| [text(i, "ip"), text(i, "hostname")])
            .flatten()
            .collect(),
        EndpointKind::Gateway => list("/status/addresses")
            .iter()
            .filter(|a| {
                matches!(
                    a.get("type").and_then(Value::as_str),
                    None | Some("IPAddress") | Some("Hostname")
                )
            })
            .filter_map(|a| text(a, "value"))
            .collect(),
    };
    out.retain(|a| !a.is_empty());
    out.dedup();
    out
}

/// Label of the ConfigMaps endpoint agents publish; its value is the agent's cluster.
pub const ENDPOINTS_LABEL: &str = "gtm.kubegtm.io/endpoints";
/// Data key of a published endpoints ConfigMap.
pub const ENDPOINTS_KEY: &str = "endpoints.json";

/// Name of the ConfigMap the endpoint agent of `cluster` publishes to in the control namespace
/// (the only one its account may write).
pub fn published_name(instance: &str, cluster: &str) -> String {
    format!("{instance}-endpoints-{cluster}")
}

/// What an edge cluster's endpoint agent publishes: the kinds it watches and, for every object
/// of those kinds, the addresses in its status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The kinds watched (and synced) there.
    pub kinds: Vec<EndpointKind>,
    /// Each object with its addresses.
    pub objects: Vec<PublishedObject>,
}

/// One object in [`Published`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedObject {
    /// Its kind.
    pub kind: EndpointKind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The addresses in its status.
    pub addresses: Vec<String>,
}

impl Discovered {
    /// Adds what the agent of `cluster` published. The cluster is the one the ConfigMap's name
    /// says (which the agent's account is limited to), never one the payload could claim.
    pub fn add_published(&mut self, cluster: &str, published: Published) {
        for kind in published.kinds {
            self.watched.insert((Some(cluster.to_owned()), kind));
        }
        for o in published.objects {
            let r = EndpointRef {
                cluster: Some(cluster.to_owned()),
                kind: o.kind,
                namespace: o.namespace,
                name: o.name,
            };
            self.objects.insert(r, o.addresses);
        }
    }

    /// What the agent of `cluster` publishes of this (its own cluster's) discovery.
    pub fn to_published(&self) -> Published {
        Published {
            kinds: self
                .watched
                .iter()
                .filter(|(c, _)| c.is_none())
                .map(|(_, k)| *k)
                .collect(),
            objects: self
                .objects
                .iter()
                .filter(|(r, _)| r.cluster.is_none())
                .map(|(r, addresses)| PublishedObject {
                    kind: r.kind,
                    namespace: r.namespace.clone(),
                    name: r.name.clone(),
                    addresses: addresses.clone(),
                })
                .collect(),
        }
    }
}

/// What one source of a pool resolved to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceState {
    /// Objects of its kind in its cluster are not known: discovery of that kind is off in the
    /// control cluster, or no agent publishes that cluster (or not that kind).
    NotWatched,
    /// No such object.
    Missing,
    /// The object has no address the pool can take (none in its status yet, or none of the
    /// pool's type).
    NoAddress,
    /// It gave this many addresses of the pool's type (some may be left out as duplicates).
    Found(usize),
}

/// How a pool's sources resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolEndpoints {
    /// Each source with what it resolved to, in spec order.
    pub sources: Vec<(EndpointRef, SourceState)>,
    /// The source of each discovered address (canonical value), as status shows it.
    pub origin: BTreeMap<String, String>,
}

impl PoolEndpoints {
    /// The `EndpointsResolved` condition: true when every source has addresses.
    pub(crate) fn condition(&self) -> Cond {
        let problems: Vec<String> = self
            .sources
            .iter()
            .filter_map(|(r, state)| match state {
                SourceState::Found(_) => None,
                SourceState::Missing => Some(format!("{r} not found")),
                SourceState::NoAddress => Some(format!(
                    "{r} has no address of the pool's type in its status yet"
                )),
                SourceState::NotWatched => Some(format!(
                    "{r}: {} objects are not discovered there ({})",
                    r.kind,
                    if r.cluster.is_some() {
                        "no endpoint agent publishes that cluster's objects of this kind"
                    } else {
                        "the operator's --endpoint-kinds, chart operator.endpointDiscovery.kinds"
                    }
                )),
            })
            .collect();
        let reason = self.sources.iter().find_map(|(_, s)| match s {
            SourceState::Found(_) => None,
            SourceState::Missing => Some("SourceNotFound"),
            SourceState::NoAddress => Some("NoAddressYet"),
            SourceState::NotWatched => Some("SourceNotWatched"),
        });
        match reason {
            None => Cond::new(
                ENDPOINTS_RESOLVED,
                true,
                "Resolved",
                format!(
                    "{} discovered addresses from {} sources",
                    self.origin.len(),
                    self.sources.len()
                ),
            ),
            Some(reason) => Cond::new(ENDPOINTS_RESOLVED, false, reason, problems.join("; ")),
        }
    }
}

/// `pool` as compile sees it: the addresses its `endpointSources` resolve to in `discovered`
/// added after its literal ones, each with the source's weight, order and mode (and the pool's
/// health checks), and how each source resolved. `None` for a pool without sources.
pub fn expand(pool: &AddressPool, discovered: &Discovered) -> Option<(AddressPool, PoolEndpoints)> {
    let spec = &pool.spec;
    if spec.endpoint_sources.is_empty() {
        return None;
    }
    let namespace = pool.metadata.namespace.clone().unwrap_or_default();
    let mut seen: HashSet<String> = spec
        .addresses
        .iter()
        .map(|a| canonical_address(&a.value, spec.pool_type))
        .collect();
    let mut expanded = pool.clone();
    let mut resolution = PoolEndpoints::default();
    for source in &spec.endpoint_sources {
        let r = EndpointRef {
            cluster: source.cluster.clone(),
            kind: source.kind,
            namespace: source
                .namespace
                .clone()
                .unwrap_or_else(|| namespace.clone()),
            name: source.name.clone(),
        };
        let state = match discovered.objects.get(&r) {
            _ if !discovered.watched.contains(&(r.cluster.clone(), r.kind)) => {
                SourceState::NotWatched
            }
            None => SourceState::Missing,
            Some(addresses) => {
                let fitting: Vec<String> = addresses
                    .iter()
                    .filter(|a| {
                        address_fits_pool_type(a, spec.pool_type)
                            && not_unicast(a, spec.pool_type).is_none()
                    })
                    .map(|a| canonical_address(a, spec.pool_type))
                    .collect();
                for value in &fitting {
                    if seen.insert(value.clone()) {
                        resolution.origin.insert(value.clone(), r.to_string());
                        expanded
                            .spec
                            .addresses
                            .push(discovered_address(value, source));
                    }
                }
                if fitting.is_empty() {
                    SourceState::NoAddress
                } else {
                    SourceState::Found(fitting.len())
                }
            }
        };
        resolution.sources.push((r, state));
    }
    Some((expanded, resolution))
}

/// The pool address a source gives for `value`: the source's weight, order and mode, every
/// other field at its CRD default (enabled, the pool's health checks).
fn discovered_address(value: &str, source: &EndpointSource) -> PoolAddress {
    let address = serde_json::json!({
        "value": value,
        "weight": source.weight,
        "order": source.order,
        "mode": source.mode,
    });
    serde_json::from_value(address).expect("a pool address from its own fields")
}

#[cfg(test)]
mod tests;
