//! Reading CR manifests from text (local mode, tests): multi-document YAML, validated against
//! the generated CRD schemas exactly like the API server would, typed into an [`Inventory`].
//! Objects that fail validation come back with an `Invalid` rejection, so they get the same
//! conditions as any other rejected object; whatever cannot be tied to an object (bad bytes,
//! YAML syntax, an object without a usable name) is a problem named after its file. Nothing
//! here panics on any input: [`load_file`] is the entry point the fuzzer drives.

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

/// Checks that a file's bytes can be read as manifests at all (UTF-8 text, YAML syntax), and
/// returns the text and how many (non-empty) documents it holds. The error is a problem line
/// naming the file.
pub fn readable_text<'a>(file: &str, bytes: &'a [u8]) -> Result<(&'a str, usize), String> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "{file}: not UTF-8 text (invalid byte at offset {})",
            e.valid_up_to()
        )
    })?;
    let docs = parse_yaml_stream(text).map_err(|e| format!("{file}: not valid YAML: {e}"))?;
    Ok((text, docs.len()))
}

/// Loads one file's bytes on their own: objects, rejections and problems, never a panic.
/// This is what [`load`] does for a directory, for one file (the fuzz target's entry point).
pub fn load_file(
    file: &str,
    bytes: &[u8],
    default_namespace: &str,
    validator: &ManifestValidator,
    now: &Time,
) -> Loaded {
    match readable_text(file, bytes) {
        Ok((text, _)) => load(
            &[(file.to_string(), text.to_string())],
            default_namespace,
            validator,
            &mut HashMap::new(),
            now,
        ),
        Err(problem) => Loaded {
            problems: vec![problem],
            ..Loaded::default()
        },
    }
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
                Err(ManifestError::Invalid { kind, causes, .. }) => match key {
                    Some(key) => {
                        loaded.invalid.insert(
                            key,
                            Rejection::new(RejectReason::Invalid, causes.join("; ")),
                        );
                    }
                    // Without a name (or namespace) string there is no object to report on.
                    None => loaded.problems.push(format!(
                        "{source}: a {kind} without a usable metadata.name: {}",
                        causes.join("; ")
                    )),
                },
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
    Some(ObjectKey::new(kind, namespace, name))
}

fn add(inventory: &mut Inventory, kind: Kind, object: Value) -> Result<(), serde_json::Error> {
    match kind {
        Kind::GtmAccessDomain => inventory.domains.push(Arc::new(typed(object)?)),
        Kind::AddressPool => inventory.pools.push(Arc::new(typed(object)?)),
        Kind::HealthCheckTemplate => inventory.templates.push(Arc::new(typed(object)?)),
        Kind::GtmZone => inventory.gtm_zones.push(Arc::new(typed(object)?)),
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
        // Each document gets its own creation time, in order, so that "older" is the first.
        let mut out = Loaded::default();
        for (i, doc) in yaml.split("\n---\n").enumerate() {
            let now =
                Time(k8s_openapi::jiff::Timestamp::from_second(1_767_225_600 + i as i64).unwrap());
            let one = load_file("test.yaml", doc.as_bytes(), "default", &validator, &now);
            out.inventory.domains.extend(one.inventory.domains);
            out.inventory.pools.extend(one.inventory.pools);
            out.inventory.templates.extend(one.inventory.templates);
            out.inventory.gtm_zones.extend(one.inventory.gtm_zones);
            out.invalid.extend(one.invalid);
            out.problems.extend(one.problems);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_one(bytes: &[u8]) -> Loaded {
        let now = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        load_file("x.yaml", bytes, "default", &ManifestValidator::new(), &now)
    }

    const GOOD_POOL: &str = "apiVersion: gtm.kubegtm.io/v1alpha1
kind: AddressPool
metadata: {name: ok}
spec: {type: IPv4, addresses: [{value: 192.0.2.1}]}
";

    #[test]
    fn objects_without_a_usable_name_are_problems_of_their_file_not_panics() {
        for metadata in [
            "",
            "metadata: {name: 12345}\n",
            "metadata: hello\n",
            "metadata: {namespace: 7, name: x}\n",
        ] {
            let text = format!(
                "apiVersion: gtm.kubegtm.io/v1alpha1\nkind: AddressPool\n{metadata}spec: {{type: IPv4, addresses: [{{value: 192.0.2.9}}]}}\n---\n{GOOD_POOL}"
            );
            let loaded = load_one(text.as_bytes());
            assert_eq!(
                loaded.problems.len(),
                1,
                "{metadata:?}: {:?}",
                loaded.problems
            );
            assert!(
                loaded.problems[0].starts_with("x.yaml: "),
                "{:?}",
                loaded.problems
            );
            assert!(loaded.invalid.is_empty(), "{metadata:?}");
            assert_eq!(
                loaded.inventory.pools.len(),
                1,
                "the good object in the file stays"
            );
        }
    }

    #[test]
    fn unreadable_bytes_are_one_problem_naming_the_file() {
        let loaded = load_one(b"kind: AddressPool\nmetadata: {name: caf\xe9}\n");
        assert_eq!(
            loaded.problems,
            vec!["x.yaml: not UTF-8 text (invalid byte at offset 38)".to_string()]
        );
        let loaded = load_one(b"kind: [unbalanced\n");
        assert!(
            loaded.problems[0].starts_with("x.yaml: not valid YAML"),
            "{:?}",
            loaded.problems
        );
        assert_eq!(load_one(GOOD_POOL.as_bytes()).inventory.pools.len(), 1);
    }
}
