//! Reading CR manifests from text (local mode, tests): multi-document YAML, validated against
//! the generated CRD schemas exactly like the API server would, typed into an [`Inventory`].
//! Objects that fail validation come back with an `Invalid` rejection, so they get the same
//! conditions as any other rejected object.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use gtm_crds::manifest::{Kind, ManifestError, ManifestValidator, parse_yaml_stream};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use serde_json::Value;

use crate::compile::{RejectReason, Rejection};
use crate::inventory::{Inventory, ObjectKey};

/// What a set of manifest files holds.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The valid objects.
    pub inventory: Inventory,
    /// Objects of our kinds that failed validation.
    pub invalid: BTreeMap<ObjectKey, Rejection>,
    /// Problems that belong to no object: YAML syntax, foreign kinds, duplicates.
    pub problems: Vec<String>,
}

/// Reads manifest texts, each with the name of its source (file), in order.
///
/// `created` remembers when each object was first seen; objects have no creation time outside
/// a cluster, and conflicts are settled by age. New objects get `now`.
pub fn load(
    sources: &[(String, String)],
    default_namespace: &str,
    validator: &ManifestValidator,
    created: &mut HashMap<ObjectKey, Time>,
    now: &Time,
) -> Loaded {
    let mut loaded = Loaded::default();
    let mut seen: HashMap<ObjectKey, String> = HashMap::new();
    for (source, text) in sources {
        let docs = match parse_yaml_stream(text) {
            Ok(docs) => docs,
            Err(e) => {
                loaded
                    .problems
                    .push(format!("{source}: not valid YAML: {e}"));
                continue;
            }
        };
        for mut doc in docs {
            set_default_namespace(&mut doc, default_namespace);
            let key = key_of(&doc);
            if let Some(key) = &key {
                if let Some(first) = seen.get(key) {
                    loaded.problems.push(format!(
                        "{source}: {key} is defined again (first in {first}); the first definition is used"
                    ));
                    continue;
                }
                seen.insert(key.clone(), source.clone());
                let t = created.entry(key.clone()).or_insert_with(|| now.clone());
                set_creation_time(&mut doc, t);
            }
            match validator.validate(&doc) {
                Ok(valid) => {
                    if let Err(e) = add(&mut loaded.inventory, valid.kind, valid.object) {
                        loaded.problems.push(format!("{source}: {e}"));
                    }
                }
                Err(ManifestError::Invalid { causes, .. }) => {
                    let key = key.expect("an invalid kube-gtm object has a kind");
                    loaded.invalid.insert(
                        key,
                        Rejection::new(RejectReason::Invalid, causes.join("; ")),
                    );
                }
                Err(e) => loaded.problems.push(format!("{source}: {e}")),
            }
        }
    }
    created.retain(|k, _| seen.contains_key(k));
    loaded
}

fn set_default_namespace(doc: &mut Value, namespace: &str) {
    if let Some(meta) = doc.get_mut("metadata").and_then(Value::as_object_mut)
        && !meta.contains_key("namespace")
    {
        meta.insert("namespace".into(), Value::String(namespace.into()));
    }
}

fn set_creation_time(doc: &mut Value, t: &Time) {
    if let Some(meta) = doc.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert(
            "creationTimestamp".into(),
            serde_json::to_value(t).expect("a time serializes"),
        );
    }
}

/// The key of a kube-gtm object, when the document is one and has a name.
fn key_of(doc: &Value) -> Option<ObjectKey> {
    let kind = Kind::ALL
        .into_iter()
        .find(|k| doc.get("kind").and_then(Value::as_str) == Some(k.as_str()))?;
    if doc.get("apiVersion").and_then(Value::as_str) != Some(gtm_crds::API_VERSION) {
        return None;
    }
    let name = doc.pointer("/metadata/name").and_then(Value::as_str)?;
    let namespace = doc.pointer("/metadata/namespace").and_then(Value::as_str)?;
    Some(ObjectKey {
        kind,
        namespace: namespace.into(),
        name: name.into(),
    })
}

fn add(inventory: &mut Inventory, kind: Kind, object: Value) -> Result<(), serde_json::Error> {
    match kind {
        Kind::GtmAccessDomain => inventory.domains.push(Arc::new(typed(object)?)),
        Kind::AddressPool => inventory.pools.push(Arc::new(typed(object)?)),
        Kind::HealthCheckTemplate => inventory.templates.push(Arc::new(typed(object)?)),
    }
    Ok(())
}

fn typed<K: serde::de::DeserializeOwned + ResourceExt>(
    object: Value,
) -> Result<K, serde_json::Error> {
    serde_json::from_value(object)
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Builds inventories from inline YAML for the pure tests.
    use super::*;

    /// Loads one YAML text as if it were one file in namespace `default`, all objects created
    /// in document order one second apart.
    pub(crate) fn loaded(yaml: &str) -> Loaded {
        let validator = ManifestValidator::new();
        let mut created = HashMap::new();
        // Each document gets its own creation time, in order, so that "older" is the first.
        let mut out = Loaded::default();
        for (i, doc) in yaml.split("\n---\n").enumerate() {
            let now =
                Time(k8s_openapi::jiff::Timestamp::from_second(1_767_225_600 + i as i64).unwrap());
            let one = load(
                &[("test.yaml".into(), doc.to_string())],
                "default",
                &validator,
                &mut created,
                &now,
            );
            out.inventory.domains.extend(one.inventory.domains);
            out.inventory.pools.extend(one.inventory.pools);
            out.inventory.templates.extend(one.inventory.templates);
            out.invalid.extend(one.invalid);
            out.problems.extend(one.problems);
        }
        out
    }
}
