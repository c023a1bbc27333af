//! The payload ConfigMaps: written with server-side apply under one field manager, split into
//! parts that fit one object, labelled so that DNS pods can select them, and pruned when a
//! payload shrinks.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};

use gtm_crds::parts::{
    INSTANCE_LABEL, PAYLOAD_LABEL, Part, Payload, assemble, configmap_name, part_configmap,
    part_of, split,
};
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use kube::Resource;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};

use super::FIELD_MANAGER;

/// Reads and writes the payload ConfigMaps of one instance in one namespace.
pub(super) struct PayloadConfigMaps {
    api: Api<ConfigMap>,
    namespace: String,
    instance: String,
    part_bytes: usize,
    /// Parts last written (or found) per payload.
    written: HashMap<Payload, Written>,
    /// ConfigMap name to the resourceVersion whose data was last checked against (or written
    /// as) its part: unchanged objects are not hashed again.
    verified: HashMap<String, String>,
}

/// What one payload's parts hold.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Written {
    /// The whole payload's digest (every part's annotation).
    digest: String,
    /// Fingerprint of each part's data, by index.
    parts: Vec<u64>,
}

/// A fingerprint of a part's data, to notice a part edited by someone else (not a security
/// check: RBAC keeps others out; this undoes a careless edit).
fn fingerprint(data: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    data.hash(&mut hasher);
    hasher.finish()
}

impl PayloadConfigMaps {
    /// ConfigMaps `<instance>-<payload>-<i>` in `namespace`, at most `part_bytes` of payload
    /// each.
    pub(super) fn new(
        api: Api<ConfigMap>,
        namespace: &str,
        instance: &str,
        part_bytes: usize,
    ) -> Self {
        Self {
            api,
            namespace: namespace.into(),
            instance: instance.into(),
            part_bytes,
            written: HashMap::new(),
            verified: HashMap::new(),
        }
    }

    /// The label selector of this instance's payload ConfigMaps.
    pub(super) fn selector(&self) -> String {
        gtm_crds::parts::selector(&self.instance)
    }

    /// The ConfigMap holding the config's first part: where a held drop is confirmed and
    /// reported. Taken from `seen` (with its uid) when there, else named.
    pub(super) fn config_reference<'a>(
        &self,
        seen: impl IntoIterator<Item = &'a ConfigMap>,
    ) -> ObjectReference {
        let name = configmap_name(&self.instance, Payload::Config, 0);
        seen.into_iter()
            .find(|c| c.metadata.name.as_deref() == Some(name.as_str()))
            .map(|c| c.object_ref(&()))
            .unwrap_or(ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("ConfigMap".into()),
                name: Some(name),
                namespace: Some(self.namespace.clone()),
                ..ObjectReference::default()
            })
    }

    /// Reads back what a previous leader published: the whole payloads (where complete) and
    /// how many parts each has, so that pruning and change detection start from the truth.
    pub(super) async fn read_existing(&mut self) -> kube::Result<HashMap<Payload, String>> {
        let list = self
            .api
            .list(&ListParams::default().labels(&self.selector()))
            .await?;
        let mut parts: HashMap<Payload, Vec<Part>> = HashMap::new();
        for cm in list.items {
            if let Some((payload, part)) = part_of(&cm) {
                parts.entry(payload).or_default().push(part);
            }
        }
        let mut out = HashMap::new();
        for (payload, mut parts) in parts {
            parts.sort_by_key(|p| p.index);
            let count = parts.iter().map(|p| p.index + 1).max().unwrap_or(0);
            let mut fingerprints = vec![0; count];
            for part in &parts {
                fingerprints[part.index] = fingerprint(&part.data);
            }
            self.written.insert(
                payload,
                Written {
                    digest: parts[0].digest.clone(),
                    parts: fingerprints,
                },
            );
            if let Ok(text) = assemble(&parts) {
                out.insert(payload, text);
            }
        }
        Ok(out)
    }

    /// Whether the ConfigMaps seen in the cluster still hold what was last written (someone
    /// may have edited or deleted one).
    pub(super) fn intact<'a>(
        &mut self,
        payload: Payload,
        seen: impl IntoIterator<Item = &'a ConfigMap>,
    ) -> bool {
        let Some(written) = self.written.get(&payload) else {
            return false;
        };
        let count = written.parts.len();
        let mut found = BTreeMap::new();
        for cm in seen {
            let Some((p, part)) = part_of(cm) else {
                continue;
            };
            if p != payload {
                continue;
            }
            let name = cm.metadata.name.clone().unwrap_or_default();
            // Without a resourceVersion (never from an API server) the data is always hashed.
            let version = cm
                .metadata
                .resource_version
                .clone()
                .filter(|v| !v.is_empty());
            let ok = part.digest == written.digest
                && part.count == count
                && (version.is_some() && self.verified.get(&name) == version.as_ref()
                    || written.parts.get(part.index) == Some(&fingerprint(&part.data)));
            if let (true, Some(version)) = (ok, version) {
                self.verified.insert(name, version);
            }
            found.insert(part.index, ok);
        }
        found.len() == count && found.values().all(|ok| *ok)
    }

    /// Writes a payload: every part by server-side apply, then deletes parts beyond the new
    /// count.
    pub(super) async fn write(&mut self, payload: Payload, text: &str) -> kube::Result<usize> {
        let parts = split(text, self.part_bytes);
        for part in &parts {
            let name = configmap_name(&self.instance, payload, part.index);
            let labels = BTreeMap::from([
                (INSTANCE_LABEL.to_string(), self.instance.clone()),
                (PAYLOAD_LABEL.to_string(), payload.label_value().to_string()),
                (
                    "app.kubernetes.io/managed-by".to_string(),
                    FIELD_MANAGER.to_string(),
                ),
            ]);
            let body = part_configmap(&name, &self.namespace, labels, payload.key(), part);
            let applied = self
                .api
                .patch(
                    &name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&body),
                )
                .await?;
            match applied.metadata.resource_version.filter(|v| !v.is_empty()) {
                Some(version) => self.verified.insert(name, version),
                None => self.verified.remove(&name),
            };
        }
        let before = self.written.get(&payload).map_or(0, |w| w.parts.len());
        for index in parts.len()..before {
            let name = configmap_name(&self.instance, payload, index);
            match self.api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        self.written.insert(
            payload,
            Written {
                digest: parts[0].digest.clone(),
                parts: parts.iter().map(|p| fingerprint(&p.data)).collect(),
            },
        );
        Ok(parts.len())
    }
}
