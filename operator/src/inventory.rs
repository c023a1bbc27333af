//! The objects one compile sees: every `GtmAccessDomain`, `AddressPool`, `HealthCheckTemplate`
//! and `GtmZone` the operator knows, from the API (reflector stores) or from manifest files
//! (local mode).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use gtm_crds::manifest::Kind;
use gtm_crds::{AddressPool, GtmAccessDomain, GtmZone, HealthCheckTemplate};
use kube::ResourceExt;

use crate::endpoints::{Discovered, PoolEndpoints, expand};

/// Identity of one object: kind, namespace and name. The one spelling of an object's identity in
/// the operator: maps are keyed by it, and its payload form `namespace/name` is built by
/// [`ObjectKey::id`] and read back by [`ObjectKey::from_id`] only.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// Its kind.
    pub kind: Kind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl ObjectKey {
    /// The key of `kind` `namespace/name`.
    pub fn new(kind: Kind, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of a kube-gtm object.
    pub fn of<K: ResourceExt>(kind: Kind, obj: &K) -> Self {
        Self::new(kind, obj.namespace().unwrap_or_default(), obj.name_any())
    }

    /// The key of the `kind` object `name` in this object's namespace: what a reference by
    /// name (a domain's pool, a pool's template) points at.
    pub fn sibling(&self, kind: Kind, name: impl Into<String>) -> Self {
        Self::new(kind, self.namespace.clone(), name)
    }

    /// `namespace/name`, the id used in payloads.
    pub fn id(&self) -> String {
        gtm_crds::config::object_id(&self.namespace, &self.name)
    }

    /// The key of the `kind` object with the payload id `namespace/name`; `None` when the id
    /// has no `/`.
    pub fn from_id(kind: Kind, id: &str) -> Option<Self> {
        let (namespace, name) = id.split_once('/')?;
        Some(Self::new(kind, namespace, name))
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// What identifies one version of an object's spec in a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecVersion {
    /// The object.
    pub key: ObjectKey,
    /// Its uid (a recreated object is another object).
    pub uid: Option<String>,
    /// Its `metadata.generation`, which the API server bumps on every spec change.
    pub generation: Option<i64>,
    /// The addresses its endpoint sources gave (pools), which change without a generation.
    pub discovered: Vec<String>,
}

/// Everything a compile reads.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    /// Access domains.
    pub domains: Vec<Arc<GtmAccessDomain>>,
    /// Address pools.
    pub pools: Vec<Arc<AddressPool>>,
    /// Health-check templates.
    pub templates: Vec<Arc<HealthCheckTemplate>>,
    /// Zones' own data.
    pub gtm_zones: Vec<Arc<GtmZone>>,
    /// How the endpoint sources of each pool that has some resolved ([`Self::resolve_endpoints`]).
    pub endpoints: BTreeMap<ObjectKey, PoolEndpoints>,
}

impl Inventory {
    /// Adds to every pool with endpoint sources the addresses they resolve to in `discovered`
    /// ([`crate::endpoints::expand`]), and records how each resolved.
    pub fn resolve_endpoints(&mut self, discovered: &Discovered) {
        self.endpoints.clear();
        for pool in &mut self.pools {
            if let Some((expanded, resolution)) = expand(pool, discovered) {
                self.endpoints
                    .insert(ObjectKey::of(Kind::AddressPool, pool.as_ref()), resolution);
                *pool = Arc::new(expanded);
            }
        }
    }

    /// Number of objects of all kinds.
    pub fn len(&self) -> usize {
        self.domains.len() + self.pools.len() + self.templates.len() + self.gtm_zones.len()
    }

    /// The identity and spec generation of every object, sorted: equal lists mean a compile
    /// would give the same result.
    pub fn spec_versions(&self) -> Vec<SpecVersion> {
        fn of<K: ResourceExt>(
            kind: Kind,
            objs: &[Arc<K>],
        ) -> impl Iterator<Item = SpecVersion> + '_ {
            objs.iter().map(move |o| SpecVersion {
                key: ObjectKey::of(kind, o.as_ref()),
                uid: o.meta().uid.clone(),
                generation: o.meta().generation,
                discovered: Vec::new(),
            })
        }
        let mut versions: Vec<SpecVersion> = of(Kind::GtmAccessDomain, &self.domains)
            .chain(of(Kind::AddressPool, &self.pools))
            .chain(of(Kind::HealthCheckTemplate, &self.templates))
            .chain(of(Kind::GtmZone, &self.gtm_zones))
            .collect();
        for v in &mut versions {
            if let Some(endpoints) = self.endpoints.get(&v.key) {
                v.discovered = endpoints.origin.keys().cloned().collect();
            }
        }
        versions.sort_by(|a, b| a.key.cmp(&b.key));
        versions
    }

    /// True when there is no object at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which of two objects claiming the same thing is older, and so wins: earlier creation time,
/// then namespace and name (so the outcome never depends on watch order).
pub(crate) fn age_order<K: ResourceExt>(a: &K, b: &K) -> Ordering {
    let created = |k: &K| k.meta().creation_timestamp.as_ref().map(|t| t.0);
    match (created(a), created(b)) {
        (Some(x), Some(y)) if x != y => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        _ => (a.namespace(), a.name_any()).cmp(&(b.namespace(), b.name_any())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_versions_follow_generations_not_statuses() {
        let pool = |generation: i64, status: bool| -> Arc<gtm_crds::AddressPool> {
            let mut v = serde_json::json!({
                "apiVersion": "gtm.kubegtm.io/v1alpha1",
                "kind": "AddressPool",
                "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "generation": generation},
                "spec": {"type": "IPv4", "addresses": [{"value": "192.0.2.1"}]},
            });
            if status {
                v["status"] = serde_json::json!({"availableAddresses": 1});
            }
            Arc::new(serde_json::from_value(v).unwrap())
        };
        let inv = |p| Inventory {
            pools: vec![p],
            ..Inventory::default()
        };
        let base = inv(pool(1, false)).spec_versions();
        assert_eq!(inv(pool(1, true)).spec_versions(), base);
        assert_ne!(inv(pool(2, false)).spec_versions(), base);
    }

    #[test]
    fn a_key_round_trips_through_its_payload_id() {
        let key = ObjectKey::new(Kind::AddressPool, "ns", "p");
        assert_eq!(key.id(), "ns/p");
        assert_eq!(ObjectKey::from_id(Kind::AddressPool, &key.id()), Some(key));
        assert_eq!(ObjectKey::from_id(Kind::AddressPool, "no-slash"), None);
        assert_eq!(
            ObjectKey::new(Kind::GtmAccessDomain, "ns", "d").sibling(Kind::AddressPool, "p"),
            ObjectKey::new(Kind::AddressPool, "ns", "p")
        );
    }
}
