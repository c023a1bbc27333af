//! Reading CR manifests from text (local mode, tests): multi-document YAML, validated against
//! the generated CRD schemas exactly like the API server would, typed into an [`Inventory`].
//! Objects that fail validation come back with an `Invalid` rejection, so they get the same
//! conditions as any other rejected object; whatever cannot be tied to an object (bad bytes,
//! YAML syntax, an object without a usable name) is a problem named after its file. Nothing
//! here panics on any input: [`load_file`] is the entry point the fuzzer drives.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use gtm_crds::manifest::{Kind, ManifestError, ManifestValidator, parse_yaml_stream};
use gtm_crds::{AddressPool, GtmAccessDomain, GtmZone, HealthCheckTemplate};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
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
///
/// The YAML parse (per file) and the validation and typing (per object) are pure and run on
/// all cores ([`in_parallel`]); naming, deduplication and the order of the problems are settled
/// in one pass in between, so the result is the same as reading the objects one by one.
pub fn load(
    sources: &[(String, String)],
    default_namespace: &str,
    validator: &ManifestValidator,
    created: &mut HashMap<ObjectKey, Time>,
    now: &Time,
) -> Loaded {
    let parsed = in_parallel(sources, 1, |(_, text)| parse_yaml_stream(text));
    let mut steps = Vec::new();
    let mut seen: HashMap<ObjectKey, String> = HashMap::new();
    for ((source, _), docs) in sources.iter().zip(parsed) {
        let docs = match docs {
            Ok(docs) => docs,
            Err(e) => {
                steps.push(Step::Problem(format!("{source}: not valid YAML: {e}")));
                continue;
            }
        };
        for mut doc in docs {
            set_default_namespace(&mut doc, default_namespace);
            let key = key_of(&doc);
            if let Some(key) = &key {
                if let Some(first) = seen.get(key) {
                    steps.push(Step::Problem(format!(
                        "{source}: {key} is defined again (first in {first}); the first definition is used"
                    )));
                    continue;
                }
                seen.insert(key.clone(), source.clone());
                let t = created.entry(key.clone()).or_insert_with(|| now.clone());
                set_creation_time(&mut doc, t);
            }
            steps.push(Step::Check { source, key, doc });
        }
    }
    created.retain(|k, _| seen.contains_key(k));

    let checked = in_parallel(&steps, CHECKS_PER_THREAD, |step| match step {
        Step::Check { doc, .. } => Some(check(validator, doc)),
        Step::Problem(_) => None,
    });
    let mut loaded = Loaded::default();
    for (step, checked) in steps.into_iter().zip(checked) {
        let (source, key) = match step {
            Step::Problem(problem) => {
                loaded.problems.push(problem);
                continue;
            }
            Step::Check { source, key, .. } => (source, key),
        };
        match checked.expect("every check step was checked") {
            Ok(Ok(object)) => object.add_to(&mut loaded.inventory),
            Ok(Err(e)) => loaded.problems.push(format!("{source}: {e}")),
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
    loaded
}

/// One document of the sources, in order: a problem found before validation, or an object to
/// validate.
enum Step<'s> {
    Problem(String),
    Check {
        source: &'s str,
        key: Option<ObjectKey>,
        doc: Value,
    },
}

/// Below this many objects per thread, validating on more threads costs more than it saves.
const CHECKS_PER_THREAD: usize = 64;

/// `f` over `items`, the results in order, on up to as many threads as there are cores, each
/// taking a contiguous run of at least `min_per_thread` items (fewer items run on this thread).
fn in_parallel<T: Sync, R: Send>(
    items: &[T],
    min_per_thread: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = items.len().div_ceil(threads).max(min_per_thread).max(1);
    if items.len() <= per_thread {
        return items.iter().map(f).collect();
    }
    std::thread::scope(|scope| {
        let runs: Vec<_> = items
            .chunks(per_thread)
            .map(|run| scope.spawn(|| run.iter().map(&f).collect::<Vec<_>>()))
            .collect();
        runs.into_iter()
            .flat_map(|run| run.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// A valid object, typed.
enum Object {
    Domain(GtmAccessDomain),
    Pool(AddressPool),
    Template(HealthCheckTemplate),
    Zone(GtmZone),
}

impl Object {
    fn add_to(self, inventory: &mut Inventory) {
        match self {
            Self::Domain(o) => inventory.domains.push(Arc::new(o)),
            Self::Pool(o) => inventory.pools.push(Arc::new(o)),
            Self::Template(o) => inventory.templates.push(Arc::new(o)),
            Self::Zone(o) => inventory.gtm_zones.push(Arc::new(o)),
        }
    }
}

/// Validates one document and types it: the rejection, or the typed object (or why the valid
/// object does not fit its type).
fn check(
    validator: &ManifestValidator,
    doc: &Value,
) -> Result<Result<Object, serde_json::Error>, ManifestError> {
    let valid = validator.validate(doc)?;
    let object = valid.object;
    Ok(match valid.kind {
        Kind::GtmAccessDomain => serde_json::from_value(object).map(Object::Domain),
        Kind::AddressPool => serde_json::from_value(object).map(Object::Pool),
        Kind::HealthCheckTemplate => serde_json::from_value(object).map(Object::Template),
        Kind::GtmZone => serde_json::from_value(object).map(Object::Zone),
    })
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
