//! Each CEL rule against objects it must accept (the invalid side of each rule is in
//! `crds/tests/invalid/`), and the helpers.

use super::*;
use serde_json::json;

fn object(kind: &str, spec: Value) -> Value {
    json!({"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": "x"}, "spec": spec})
}

fn accepts(kind: &str, spec: Value) {
    let v = ManifestValidator::new();
    if let Err(e) = v.validate(&object(kind, spec.clone())) {
        panic!("{kind} {spec} rejected: {e}");
    }
}

#[test]
fn template_rules_accept_what_they_allow() {
    let t = "HealthCheckTemplate";
    accepts(
        t,
        json!({"protocol": "TCP", "intervalSeconds": 2, "timeoutMillis": 1999}),
    );
    accepts(
        t,
        json!({"protocol": "HTTPS", "http": {"sni": "a.example.com", "verifyCertificate": false}}),
    );
    accepts(
        t,
        json!({"protocol": "HTTP", "http": {"method": "HEAD", "expectedCodes": ["204", "300-302"]}}),
    );
    accepts(
        t,
        json!({"protocol": "HTTP", "http": {"method": "GET", "bodyContains": "ok"}}),
    );
    accepts(
        t,
        json!({"protocol": "ICMP", "icmp": {"packetCount": 10, "toleratedLossPercent": 20}}),
    );
}

#[test]
fn pool_rules_accept_what_they_allow() {
    let p = "AddressPool";
    accepts(
        p,
        json!({"type": "IPv4", "policy": "Sequential", "sequentialMode": "NonPreemptive",
                      "addresses": [{"value": "192.0.2.1"}]}),
    );
    accepts(
        p,
        json!({"type": "IPv6", "addresses": [{"value": "2001:db8::1"}, {"value": "::1"}]}),
    );
    accepts(
        p,
        json!({"type": "Domain", "addresses": [{"value": "eu.lb.example.net."}, {"value": "_svc.example.org"}]}),
    );
    accepts(
        p,
        json!({"type": "IPv4", "minAvailable": 2, "addresses": [{"value": "192.0.2.1"}, {"value": "192.0.2.2"}]}),
    );
}

#[test]
fn domain_rules_accept_what_they_allow() {
    let d = "GtmAccessDomain";
    accepts(
        d,
        json!({"domain": "app.gtm.example.com.", "recordType": "A", "sequentialMode": "Preemptive",
                      "pools": [{"name": "p"}]}),
    );
    accepts(
        d,
        json!({"domain": "APP.gtm.example.com", "recordType": "AAAA", "policy": "SourceNearest",
                      "pools": [{"name": "p", "requestSources": {"cidrs": ["10.0.0.0/8", "2001:db8::/32"],
                      "asns": [64500], "continents": ["EU"], "countries": ["DE"], "subdivisions": ["US-CA"]}}]}),
    );
    accepts(
        d,
        json!({"domain": "app.gtm.example.com", "recordType": "A", "policy": "Latency",
               "latency": {"locations": [{"name": "eu", "sources": {"continents": ["EU"]}},
                                         {"name": "us", "sources": {"default": true}}],
                           "marginPercent": 30},
               "pools": [{"name": "eu"}, {"name": "us"}]}),
    );
}

#[test]
fn several_violations_are_all_reported() {
    let v = ManifestValidator::new();
    let err = v
        .validate(&object("GtmAccessDomain", json!({"domain": "a.example.com", "recordType": "MX", "ttl": 0, "pools": [{"name": "p"}]})))
        .unwrap_err();
    let ManifestError::Invalid { causes, name, kind } = err else {
        panic!()
    };
    assert_eq!((kind, name.as_str()), (Kind::GtmAccessDomain, "x"));
    assert_eq!(causes.len(), 2, "{causes:?}");
}

#[test]
fn yaml_streams_skip_empty_documents() {
    let docs = parse_yaml_stream("---\n# only a comment\n---\na: 1\n---\n---\nb: 2\n").unwrap();
    assert_eq!(docs, vec![json!({"a": 1}), json!({"b": 2})]);
    assert!(parse_yaml_stream("a: [1\n").is_err());
}

#[test]
fn json_pointers_become_field_paths() {
    assert_eq!(
        json_pointer_to_path("/spec/pools/0/name"),
        "spec.pools[0].name"
    );
    assert_eq!(json_pointer_to_path(""), "");
}

#[test]
fn dns1123_names() {
    assert!(is_dns1123_subdomain("app-eu.west1"));
    assert!(!is_dns1123_subdomain("App"));
    assert!(!is_dns1123_subdomain("-a"));
    assert!(!is_dns1123_subdomain("a..b"));
    assert!(!is_dns1123_subdomain(&"a".repeat(254)));
}
