//! The repository's example sets, made fit for one test namespace: addresses rewritten to the
//! backend pods' IPs and domain names made unique per namespace (two objects claiming the same
//! name and type would conflict across namespaces).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// `examples/` of the repository.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("examples")
}

/// Reads `examples/<file>` as a list of objects.
pub fn load_example(file: &str) -> Result<Vec<Value>> {
    let path = examples_dir().join(file);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    parse_documents(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Parses multi-document YAML into JSON values, skipping empty documents.
pub fn parse_documents(text: &str) -> Result<Vec<Value>> {
    let mut objects = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let value: Value = serde::Deserialize::deserialize(document)?;
        if !value.is_null() {
            objects.push(value);
        }
    }
    Ok(objects)
}

/// Rewrites an example set for one test:
/// - every `AddressPool` address whose value is a key of `addresses` gets the mapped value
///   (example addresses are loopback addresses for local mode; in a cluster they become pod IPs);
/// - every `GtmAccessDomain` `spec.domain` `<label>.<zone>` becomes `<label>-<suffix>.<zone>`;
/// - `metadata.namespace` is removed (the objects are applied into the test namespace).
///
/// Fails when an address of the example has no mapping, so a changed example cannot silently
/// point a test at nothing.
pub fn rewrite(objects: &mut [Value], addresses: &[(&str, String)], suffix: &str) -> Result<()> {
    for object in objects.iter_mut() {
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("namespace");
        }
        match object["kind"].as_str() {
            Some("AddressPool") => {
                let name = object["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let Some(list) = object
                    .pointer_mut("/spec/addresses")
                    .and_then(Value::as_array_mut)
                else {
                    continue;
                };
                for address in list {
                    let value = address["value"].as_str().unwrap_or_default().to_owned();
                    match addresses.iter().find(|(from, _)| *from == value) {
                        Some((_, to)) => address["value"] = Value::String(to.clone()),
                        None => {
                            bail!("AddressPool {name}: no replacement given for address {value}")
                        }
                    }
                }
            }
            Some("GtmAccessDomain") => {
                if let Some(domain) = object.pointer_mut("/spec/domain") {
                    let old = domain.as_str().unwrap_or_default();
                    let (label, zone) = old
                        .split_once('.')
                        .with_context(|| format!("domain {old} has no zone"))?;
                    *domain = Value::String(format!("{label}-{suffix}.{zone}"));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The `spec.domain` of the first `GtmAccessDomain` in `objects`.
pub fn domain_of(objects: &[Value]) -> Option<String> {
    objects
        .iter()
        .find(|o| o["kind"] == "GtmAccessDomain")
        .and_then(|o| o["spec"]["domain"].as_str())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_parses_into_gtm_objects() {
        // Top level and one level down (examples/dnssec).
        let mut files = Vec::new();
        for entry in std::fs::read_dir(examples_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            } else {
                files.push(path);
            }
        }
        files.sort();
        assert!(!files.is_empty());
        for path in files {
            let relative = path.strip_prefix(examples_dir()).unwrap();
            let objects = load_example(relative.to_str().unwrap()).unwrap();
            assert!(!objects.is_empty(), "{}", path.display());
            for o in objects {
                assert_eq!(
                    o["apiVersion"],
                    "gtm.kubegtm.io/v1alpha1",
                    "{}",
                    path.display()
                );
            }
        }
    }

    #[test]
    fn the_failover_example_is_rewritten_to_pod_ips_and_a_unique_name() {
        let mut objects = load_example("sequential-preemptive.yaml").unwrap();
        let map = [
            ("127.0.10.1", "10.244.0.11".to_owned()),
            ("127.0.10.2", "10.244.0.12".to_owned()),
            ("127.0.20.1", "10.244.0.21".to_owned()),
        ];
        rewrite(&mut objects, &map, "e2e-abc").unwrap();
        assert_eq!(
            domain_of(&objects).as_deref(),
            Some("app-e2e-abc.gtm.example.com")
        );
        let values: Vec<_> = objects
            .iter()
            .filter(|o| o["kind"] == "AddressPool")
            .flat_map(|o| {
                o["spec"]["addresses"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["value"].as_str().unwrap().to_owned())
            })
            .collect();
        assert_eq!(values, ["10.244.0.11", "10.244.0.12", "10.244.0.21"]);
    }

    #[test]
    fn an_unmapped_address_is_an_error() {
        let mut objects = load_example("sequential-preemptive.yaml").unwrap();
        let error = rewrite(&mut objects, &[("127.0.10.1", "10.0.0.1".into())], "x").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("no replacement given for address 127.0.10.2"),
            "{error}"
        );
    }

    #[test]
    fn namespaces_are_dropped() {
        let mut objects = parse_documents(
            "kind: HealthCheckTemplate\nmetadata:\n  name: a\n  namespace: other\n---\n",
        )
        .unwrap();
        rewrite(&mut objects, &[], "x").unwrap();
        assert!(objects[0]["metadata"].get("namespace").is_none());
    }
}
