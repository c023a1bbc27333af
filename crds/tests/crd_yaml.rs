//! The checked-in CRD YAML matches the Rust types, and the schemas are ones the API server
//! accepts: structural, with map-list keys that are required, and CEL rules within budget.

use gtm_crds::{crd_manifests, crds};
use kube::core::cel::{compile_schema, estimate_rule_cost};
use serde_json::Value;

const CHECKED_IN: &str = include_str!("../../charts/kube-gtm/files/crds.yaml");

#[test]
fn checked_in_crds_match_the_rust_types() {
    assert!(
        CHECKED_IN == crd_manifests(),
        "charts/kube-gtm/files/crds.yaml is stale: run `make crds` and commit the result"
    );
}

#[test]
fn crds_have_status_printer_columns_and_the_gtm_category() {
    for crd in crds() {
        let names = &crd.spec.names;
        assert_eq!(crd.spec.group, "gtm.kubegtm.io");
        assert_eq!(crd.spec.scope, "Namespaced");
        assert!(
            names
                .categories
                .as_ref()
                .unwrap()
                .contains(&"gtm".to_string()),
            "{}",
            names.kind
        );
        assert!(
            names.short_names.as_ref().is_some_and(|s| !s.is_empty()),
            "{}",
            names.kind
        );
        let v = &crd.spec.versions[0];
        assert_eq!(v.name, "v1alpha1");
        assert!(
            v.subresources.as_ref().unwrap().status.is_some(),
            "{}",
            names.kind
        );
        assert!(
            v.additional_printer_columns.as_ref().unwrap().len() >= 4,
            "{}",
            names.kind
        );
    }
}

fn schemas() -> Vec<(String, Value)> {
    crds()
        .into_iter()
        .map(|crd| {
            let schema = crd.spec.versions[0]
                .schema
                .clone()
                .unwrap()
                .open_api_v3_schema
                .unwrap();
            (crd.spec.names.kind, serde_json::to_value(schema).unwrap())
        })
        .collect()
}

/// Walks every schema node, calling `f(path, node)`.
fn walk(path: &str, node: &Value, f: &mut dyn FnMut(&str, &Value)) {
    f(path, node);
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            walk(&format!("{path}.{k}"), v, f);
        }
    }
    if let Some(items) = node.get("items") {
        walk(&format!("{path}[]"), items, f);
    }
    if let Some(extra) = node.get("additionalProperties").filter(|v| v.is_object()) {
        walk(&format!("{path}{{}}"), extra, f);
    }
}

/// The rules of "Specifying a structural schema" in the Kubernetes CRD documentation, plus
/// the constructs apiextensions refuses outright.
fn structural_violations(path: &str, node: &Value) -> Vec<String> {
    let mut v = Vec::new();
    let has = |k: &str| node.get(k).is_some();
    let escape = node.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
        || node.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if !has("type") && !escape {
        v.push(format!("{path}: no type"));
    }
    for forbidden in [
        "$ref",
        "definitions",
        "$defs",
        "$schema",
        "oneOf",
        "anyOf",
        "allOf",
        "not",
        "patternProperties",
        "dependencies",
        "additionalItems",
        "id",
    ] {
        if has(forbidden) {
            v.push(format!("{path}: uses {forbidden}"));
        }
    }
    if node.get("uniqueItems") == Some(&Value::Bool(true)) {
        v.push(format!("{path}: uniqueItems: true is forbidden"));
    }
    if node.get("additionalProperties") == Some(&Value::Bool(false)) {
        v.push(format!("{path}: additionalProperties: false is forbidden"));
    }
    if has("additionalProperties") && has("properties") {
        v.push(format!(
            "{path}: properties and additionalProperties together"
        ));
    }
    if node.get("type").and_then(Value::as_str) == Some("array") && !has("items") {
        v.push(format!("{path}: array without items"));
    }
    if node.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map") {
        let items = &node["items"];
        let required: Vec<&str> = items["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for key in node["x-kubernetes-list-map-keys"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let key = key.as_str().unwrap();
            if !required.contains(&key) && items["properties"][key].get("default").is_none() {
                v.push(format!(
                    "{path}: map-list key {key} is neither required nor defaulted"
                ));
            }
        }
    }
    v
}

#[test]
fn schemas_are_structural() {
    for (kind, schema) in schemas() {
        let mut violations = Vec::new();
        walk(&kind, &schema, &mut |p, n| {
            violations.extend(structural_violations(p, n))
        });
        assert!(violations.is_empty(), "{}", violations.join("\n"));
    }
}

#[test]
fn the_walker_catches_non_structural_constructs() {
    let bad = serde_json::json!({
        "type": "object",
        "properties": {
            "a": {"description": "no type"},
            "b": {"type": "array"},
            "c": {"type": "object", "anyOf": [{"type": "string"}]},
            "d": {"type": "array", "items": {"type": "object", "properties": {"k": {"type": "string"}}},
                  "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"]}
        }
    });
    let mut violations = Vec::new();
    walk("X", &bad, &mut |p, n| {
        violations.extend(structural_violations(p, n))
    });
    assert_eq!(violations.len(), 4, "{violations:?}");
}

#[test]
fn every_cel_rule_compiles_and_stays_within_the_cost_budget() {
    let mut count = 0;
    for (kind, schema) in schemas() {
        let mut problems = Vec::new();
        walk(&kind, &schema, &mut |path, node| {
            let Some(rules) = node
                .get("x-kubernetes-validations")
                .and_then(Value::as_array)
            else {
                return;
            };
            let compiled = compile_schema(node);
            for err in compiled.compilation_errors() {
                problems.push(format!("{path}: {err}"));
            }
            for rule in rules {
                count += 1;
                assert!(
                    rule.get("message").is_some(),
                    "{path}: rule without a message"
                );
                let text = rule["rule"].as_str().unwrap();
                // (kube-cel's scope check does not know comprehension variables, so only cost is
                // analysed here; the rules themselves are evaluated in tests/cel_rules.rs.)
                for w in estimate_rule_cost(text, &compiled) {
                    problems.push(format!("{path}: {text}: {}", w.message));
                }
            }
        });
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
    assert!(
        count >= 12,
        "expected the CEL rules of every kind, found {count}"
    );
}
