//! Every example validates against the generated CRD schemas (OpenAPI and CEL) and parses into
//! its Rust type; every manifest under tests/invalid is rejected with the message it expects.

use std::fs;
use std::path::{Path, PathBuf};

use gtm_crds::manifest::{Kind, ManifestError, ManifestValidator, parse_yaml_stream};
use gtm_crds::{AddressPool, GtmAccessDomain, GtmZone, HealthCheckTemplate};

/// The `.yaml` files in `dir` and its subdirectories (examples that need more than the others,
/// such as `examples/dnssec`, live in their own).
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
    {
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml") {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn every_example_is_valid_and_parses_into_its_type() {
    let validator = ManifestValidator::new();
    let mut seen = std::collections::BTreeMap::<Kind, usize>::new();
    let files = yaml_files(&root().join("examples"));
    assert!(files.len() >= 8, "examples/ holds a set per scenario");
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for doc in parse_yaml_stream(&text).unwrap() {
            let valid = validator
                .validate(&doc)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            *seen.entry(valid.kind).or_default() += 1;
            let parsed = match valid.kind {
                Kind::GtmAccessDomain => {
                    serde_json::from_value::<GtmAccessDomain>(valid.object).map(|_| ())
                }
                Kind::AddressPool => {
                    serde_json::from_value::<AddressPool>(valid.object).map(|_| ())
                }
                Kind::HealthCheckTemplate => {
                    serde_json::from_value::<HealthCheckTemplate>(valid.object).map(|_| ())
                }
                Kind::GtmZone => serde_json::from_value::<GtmZone>(valid.object).map(|_| ()),
            };
            parsed.unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        }
    }
    assert_eq!(
        seen.len(),
        Kind::ALL.len(),
        "the examples use every kind: {seen:?}"
    );
}

#[test]
fn every_invalid_manifest_is_rejected_with_its_message() {
    let validator = ManifestValidator::new();
    let files = yaml_files(&root().join("crds/tests/invalid"));
    assert!(files.len() >= 25);
    let mut failures = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| {
                panic!(
                    "{}: first line must be `# expect: <message>`",
                    file.display()
                )
            });
        let docs = parse_yaml_stream(&text).unwrap();
        assert_eq!(docs.len(), 1, "{}", file.display());
        match validator.validate(&docs[0]) {
            Err(e @ ManifestError::Invalid { .. }) if e.to_string().contains(expect) => {}
            other => failures.push(format!(
                "{}: expected {expect:?}, got {other:?}",
                file.display()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn defaults_are_applied_before_validation() {
    let doc = serde_json::json!({
        "apiVersion": "gtm.kubegtm.io/v1alpha1",
        "kind": "HealthCheckTemplate",
        "metadata": {"name": "t"},
        "spec": {"protocol": "HTTP", "http": {}}
    });
    let valid = ManifestValidator::new().validate(&doc).unwrap();
    let spec = &valid.object["spec"];
    assert_eq!(spec["intervalSeconds"], 5);
    assert_eq!(spec["timeoutMillis"], 2000);
    assert_eq!(spec["http"]["path"], "/");
    assert_eq!(
        spec["http"]["expectedCodes"],
        serde_json::json!(["200-399"])
    );
    let t: HealthCheckTemplate = serde_json::from_value(valid.object).unwrap();
    assert_eq!(t.spec.http.unwrap().verify_certificate, None);
}

#[test]
fn foreign_and_malformed_objects_are_told_apart() {
    let v = ManifestValidator::new();
    let cm =
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
    assert!(matches!(
        v.validate(&cm),
        Err(ManifestError::ForeignKind { .. })
    ));
    let other = serde_json::json!({"apiVersion": "gtm.kubegtm.io/v1alpha1", "kind": "Nope"});
    assert!(matches!(
        v.validate(&other),
        Err(ManifestError::ForeignKind { .. })
    ));
    assert!(matches!(
        v.validate(&serde_json::json!([1])),
        Err(ManifestError::NotAnObject(_))
    ));
    assert!(matches!(
        v.validate(&serde_json::json!({"kind": "AddressPool"})),
        Err(ManifestError::NotAnObject(_))
    ));
}
