//! One test per compile rule, on YAML fixtures. Objects are created in document order, so the
//! first document is the oldest.

use super::*;
use crate::manifests::test_support::loaded;

const ZONES: &[&str] = &["gtm.example.com"];

const TEMPLATES: &str = r#"
apiVersion: gtm.kubegtm.io/v1alpha1
kind: HealthCheckTemplate
metadata: {name: http}
spec: {protocol: HTTP}
---
apiVersion: gtm.kubegtm.io/v1alpha1
kind: HealthCheckTemplate
metadata: {name: tcp}
spec: {protocol: TCP}
---
apiVersion: gtm.kubegtm.io/v1alpha1
kind: HealthCheckTemplate
metadata: {name: ping}
spec: {protocol: ICMP}
---
apiVersion: gtm.kubegtm.io/v1alpha1
kind: AddressPool
metadata: {name: v4}
spec:
  type: IPv4
  healthChecks: [{template: http, port: 8080}]
  addresses:
    - {value: 192.0.2.1}
    - value: 192.0.2.2
      healthChecks: [{template: tcp, port: 443}, {template: ping}]
---
apiVersion: gtm.kubegtm.io/v1alpha1
kind: AddressPool
metadata: {name: names}
spec:
  type: Domain
  addresses: [{value: EU.CDN.Example.NET.}]
---
apiVersion: gtm.kubegtm.io/v1alpha1
kind: AddressPool
metadata: {name: v6}
spec:
  type: IPv6
  addresses: [{value: "2001:db8::1"}]
"#;

fn compile_with(extra: &str) -> Compilation {
    let text = format!("{TEMPLATES}\n---\n{extra}");
    let loaded = loaded(&text);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    assert!(loaded.invalid.is_empty(), "{:?}", loaded.invalid);
    let zones: Vec<String> = ZONES.iter().map(|z| z.to_string()).collect();
    compile(&loaded.inventory, &zones)
}

fn key(kind: Kind, name: &str) -> ObjectKey {
    ObjectKey::new(kind, "default", name)
}

fn verdict(c: &Compilation, kind: Kind, name: &str) -> Verdict {
    c.verdicts[&key(kind, name)].clone()
}

fn rejection(c: &Compilation, kind: Kind, name: &str) -> Rejection {
    verdict(c, kind, name)
        .accepted
        .expect_err("expected a rejection")
}

fn domain(name: &str, fqdn: &str, record: &str, pools: &[&str], policy: &str) -> String {
    let pools: Vec<String> = pools
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{{name: {p}, order: {}}}", i + 1))
        .collect();
    format!(
        "apiVersion: gtm.kubegtm.io/v1alpha1\nkind: GtmAccessDomain\nmetadata: {{name: {name}}}\nspec:\n  domain: {fqdn}\n  recordType: {record}\n  policy: {policy}\n  pools: [{}]\n",
        pools.join(", ")
    )
}

#[test]
fn valid_domain_compiles_with_canonical_names_tasks_and_defaults() {
    let c = compile_with(&domain(
        "app",
        "App.GTM.example.com.",
        "A",
        &["v4", "names"],
        "Sequential",
    ));
    assert_eq!(
        verdict(&c, Kind::GtmAccessDomain, "app"),
        Verdict::accepted(Publication::Published)
    );
    let d = &c.config.domains[0];
    assert_eq!(d.name, "app.gtm.example.com");
    assert_eq!(d.id, "default/app");
    assert_eq!(d.ttl, 30);
    assert_eq!(d.sequential_mode, gtm_crds::SequentialMode::Preemptive);
    assert_eq!(
        d.pools.iter().map(|m| m.pool.as_str()).collect::<Vec<_>>(),
        ["default/v4", "default/names"]
    );
    assert_eq!(
        c.config.pools.len(),
        2,
        "only referenced pools are published"
    );
    let v4 = c
        .config
        .pools
        .iter()
        .find(|p| p.id == "default/v4")
        .unwrap();
    // Pool default checks apply to the first address; the second replaces them.
    assert_eq!(v4.addresses[0].tasks, ["default/http@192.0.2.1#8080"]);
    assert_eq!(
        v4.addresses[1].tasks,
        ["default/tcp@192.0.2.2#443", "default/ping@192.0.2.2"]
    );
    let names = c
        .config
        .pools
        .iter()
        .find(|p| p.id == "default/names")
        .unwrap();
    assert_eq!(names.addresses[0].value, "eu.cdn.example.net");
    c.config
        .check_consistency()
        .expect("compiled configs are consistent");

    assert_eq!(
        verdict(&c, Kind::AddressPool, "v6").publication,
        Publication::Unreferenced
    );
    assert_eq!(c.tasks.len(), 3, "tasks run for every accepted pool");
    assert_eq!(verdict(&c, Kind::HealthCheckTemplate, "http").used_by, 1);
    assert_eq!(verdict(&c, Kind::HealthCheckTemplate, "tcp").used_by, 1);
}

#[test]
fn http_task_without_port_uses_the_protocol_default() {
    let c = compile_with(
        "apiVersion: gtm.kubegtm.io/v1alpha1\nkind: AddressPool\nmetadata: {name: p}\nspec:\n  type: IPv4\n  healthChecks: [{template: http}]\n  addresses: [{value: 192.0.2.9}]\n",
    );
    assert_eq!(
        c.pools["default/p"].addresses[0].tasks,
        ["default/http@192.0.2.9#80"]
    );
}

#[test]
fn probe_targets_override_what_is_probed_not_what_is_answered() {
    let c = compile_with(
        "apiVersion: gtm.kubegtm.io/v1alpha1
kind: AddressPool
metadata: {name: nat}
spec:
  type: IPv4
  healthChecks: [{template: http, port: 8080}]
  addresses:
    - {value: 203.0.113.5, probeTarget: 10.0.0.5}
    - value: 203.0.113.6
      probeTarget: 10.0.0.6
      healthChecks: [{template: tcp, port: 443, target: GW.Example.NET.}, {template: ping}]
    - {value: 203.0.113.7}
",
    );
    let pool = &c.pools["default/nat"];
    assert_eq!(pool.addresses[0].value, "203.0.113.5");
    assert_eq!(pool.addresses[0].tasks, ["default/http@10.0.0.5#8080"]);
    assert_eq!(
        pool.addresses[1].tasks,
        ["default/tcp@gw.example.net#443", "default/ping@10.0.0.6"],
        "a check's target wins over the address's probeTarget, canonical"
    );
    assert_eq!(pool.addresses[2].tasks, ["default/http@203.0.113.7#8080"]);
    let task = &c.tasks["default/tcp@gw.example.net#443"];
    assert_eq!(
        (task.target.as_str(), task.port),
        ("gw.example.net", Some(443))
    );
}

#[test]
fn a_probe_target_that_is_no_address_or_name_is_refused() {
    // The schema refuses it first; compile refuses it too, for objects that skipped the schema.
    let mut inventory = loaded(TEMPLATES).inventory;
    let pool: AddressPool = serde_json::from_value(serde_json::json!({
        "apiVersion": "gtm.kubegtm.io/v1alpha1", "kind": "AddressPool",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"type": "IPv4", "addresses": [
            {"value": "192.0.2.9", "probeTarget": "not a host", "healthChecks": [{"template": "ping"}]}
        ]}
    }))
    .unwrap();
    inventory.pools.push(std::sync::Arc::new(pool));
    let c = compile(&inventory, &["gtm.example.com".to_string()]);
    let r = rejection(&c, Kind::AddressPool, "p");
    assert_eq!(r.reason, RejectReason::InvalidProbeTarget);
    assert!(r.message.contains("\"not a host\""), "{}", r.message);
}

#[test]
fn unknown_template_rejects_the_pool_and_its_domains() {
    let c = compile_with(&format!(
        "apiVersion: gtm.kubegtm.io/v1alpha1\nkind: AddressPool\nmetadata: {{name: broken}}\nspec:\n  type: IPv4\n  healthChecks: [{{template: nope, port: 80}}]\n  addresses: [{{value: 192.0.2.7}}]\n---\n{}",
        domain("d", "d.gtm.example.com", "A", &["broken"], "Sequential")
    ));
    let r = rejection(&c, Kind::AddressPool, "broken");
    assert_eq!(r.reason, RejectReason::TemplateNotFound);
    assert!(r.message.contains("\"nope\""), "{}", r.message);
    let r = rejection(&c, Kind::GtmAccessDomain, "d");
    assert_eq!(r.reason, RejectReason::PoolNotAccepted);
    assert!(c.config.domains.is_empty());
}

#[test]
fn tcp_task_without_port_is_rejected() {
    let c = compile_with(
        "apiVersion: gtm.kubegtm.io/v1alpha1\nkind: AddressPool\nmetadata: {name: p}\nspec:\n  type: IPv4\n  healthChecks: [{template: tcp}]\n  addresses: [{value: 192.0.2.9}]\n",
    );
    assert_eq!(
        rejection(&c, Kind::AddressPool, "p").reason,
        RejectReason::PortRequired
    );
}

#[test]
fn unknown_pool_is_rejected_and_the_rest_keeps_serving() {
    let c = compile_with(&format!(
        "{}---\n{}",
        domain(
            "bad",
            "bad.gtm.example.com",
            "A",
            &["missing"],
            "Sequential"
        ),
        domain("good", "good.gtm.example.com", "A", &["v4"], "Sequential")
    ));
    let r = rejection(&c, Kind::GtmAccessDomain, "bad");
    assert_eq!(r.reason, RejectReason::PoolNotFound);
    assert!(r.message.contains("\"missing\""));
    assert_eq!(c.config.domains.len(), 1);
    assert_eq!(c.config.domains[0].id, "default/good");
}

#[test]
fn record_type_must_fit_the_pool_type() {
    for (record, pool) in [
        ("A", "v6"),
        ("AAAA", "v4"),
        ("CNAME", "v4"),
        ("CNAME", "v6"),
    ] {
        let c = compile_with(&domain(
            "d",
            "d.gtm.example.com",
            record,
            &[pool],
            "Sequential",
        ));
        assert_eq!(
            rejection(&c, Kind::GtmAccessDomain, "d").reason,
            RejectReason::PoolTypeMismatch,
            "{record} over {pool}"
        );
    }
    for (record, pool) in [
        ("A", "names"),
        ("AAAA", "names"),
        ("AAAA", "v6"),
        ("CNAME", "names"),
    ] {
        let c = compile_with(&domain(
            "d",
            "d.gtm.example.com",
            record,
            &[pool],
            "Sequential",
        ));
        assert!(verdict(&c, Kind::GtmAccessDomain, "d").is_accepted());
    }
}

#[test]
fn round_robin_cannot_mix_ip_and_domain_pools() {
    let c = compile_with(&domain(
        "d",
        "d.gtm.example.com",
        "A",
        &["v4", "names"],
        "RoundRobin",
    ));
    assert_eq!(
        rejection(&c, Kind::GtmAccessDomain, "d").reason,
        RejectReason::MixedPoolTypes
    );
    let c = compile_with(&domain(
        "d",
        "d.gtm.example.com",
        "A",
        &["v4", "names"],
        "Weighted",
    ));
    assert!(verdict(&c, Kind::GtmAccessDomain, "d").is_accepted());
}

#[test]
fn domain_outside_served_zones_is_rejected() {
    let c = compile_with(&domain("d", "app.example.org", "A", &["v4"], "Sequential"));
    let r = rejection(&c, Kind::GtmAccessDomain, "d");
    assert_eq!(r.reason, RejectReason::ZoneNotServed);
    assert!(r.message.contains("gtm.example.com"));
    // A name that merely ends with the zone's text is outside it.
    let c = compile_with(&domain("d", "xgtm.example.com", "A", &["v4"], "Sequential"));
    assert_eq!(
        rejection(&c, Kind::GtmAccessDomain, "d").reason,
        RejectReason::ZoneNotServed
    );
}

#[test]
fn cname_at_the_zone_apex_is_rejected() {
    let c = compile_with(&domain(
        "d",
        "gtm.example.com",
        "A",
        &["names"],
        "Sequential",
    ));
    assert_eq!(
        rejection(&c, Kind::GtmAccessDomain, "d").reason,
        RejectReason::CnameAtApex
    );
    let c = compile_with(&domain("d", "gtm.example.com", "A", &["v4"], "Sequential"));
    assert!(verdict(&c, Kind::GtmAccessDomain, "d").is_accepted());
}

#[test]
fn the_older_of_two_claims_wins() {
    let c = compile_with(&format!(
        "{}---\n{}---\n{}",
        domain("first", "app.gtm.example.com", "A", &["v4"], "Sequential"),
        domain("second", "APP.gtm.example.com.", "A", &["v4"], "Sequential"),
        domain("v6", "app.gtm.example.com", "AAAA", &["v6"], "Sequential"),
    ));
    assert!(verdict(&c, Kind::GtmAccessDomain, "first").is_accepted());
    let r = rejection(&c, Kind::GtmAccessDomain, "second");
    assert_eq!(r.reason, RejectReason::Conflict);
    assert!(r.message.contains("default/first"), "{}", r.message);
    assert!(
        verdict(&c, Kind::GtmAccessDomain, "v6").is_accepted(),
        "A and AAAA may share a name"
    );
}

#[test]
fn a_cname_owns_its_name() {
    let c = compile_with(&format!(
        "{}---\n{}",
        domain(
            "web",
            "www.gtm.example.com",
            "CNAME",
            &["names"],
            "Sequential"
        ),
        domain("web4", "www.gtm.example.com", "A", &["v4"], "Sequential"),
    ));
    assert_eq!(
        rejection(&c, Kind::GtmAccessDomain, "web4").reason,
        RejectReason::Conflict
    );
}

#[test]
fn disabled_domains_are_accepted_but_not_published_and_claim_nothing() {
    let c = compile_with(&format!(
        "{}  enabled: false\n---\n{}",
        domain("off", "app.gtm.example.com", "A", &["v4"], "Sequential"),
        domain("on", "app.gtm.example.com", "A", &["v4"], "Sequential"),
    ));
    assert_eq!(
        verdict(&c, Kind::GtmAccessDomain, "off"),
        Verdict::accepted(Publication::Disabled)
    );
    assert!(verdict(&c, Kind::GtmAccessDomain, "on").is_accepted());
    assert_eq!(c.config.domains.len(), 1);
}

#[test]
fn references_do_not_cross_namespaces() {
    let text = format!(
        "{TEMPLATES}\n---\n{}",
        domain("d", "d.gtm.example.com", "A", &["v4"], "Sequential").replace(
            "metadata: {name: d}",
            "metadata: {name: d, namespace: other}"
        )
    );
    let loaded = loaded(&text);
    let c = compile(&loaded.inventory, &["gtm.example.com".to_string()]);
    let k = ObjectKey::new(Kind::GtmAccessDomain, "other", "d");
    assert_eq!(
        c.verdicts[&k].accepted.as_ref().unwrap_err().reason,
        RejectReason::PoolNotFound
    );
}

#[test]
fn every_example_compiles_and_is_accepted() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
    let sources: Vec<(String, String)> =
        crate::local::files::read_manifests(std::path::Path::new(dir))
            .unwrap()
            .into_iter()
            .map(|(name, bytes)| (name, String::from_utf8(bytes.unwrap()).unwrap()))
            .collect();
    let validator = gtm_crds::manifest::ManifestValidator::new();
    let loaded = crate::manifests::load(
        &sources,
        "default",
        &validator,
        &mut Default::default(),
        &crate::local::now(),
    );
    assert!(loaded.problems.is_empty() && loaded.invalid.is_empty());
    let c = compile(&loaded.inventory, &["gtm.example.com".to_string()]);
    for (k, v) in &c.verdicts {
        assert!(v.is_accepted(), "{k}: {:?}", v.accepted);
        assert_eq!(v.publication, Publication::Published, "{k}");
    }
    c.config.check_consistency().unwrap();
}

#[test]
fn malformed_or_repeated_addresses_are_rejected_before_they_reach_the_dns_pods() {
    // The first two are refused by the schema too; objects stored under an older schema (or
    // with validation off) still never reach the DNS pods.
    for (pool_type, record_type, addresses) in [
        ("Domain", "A", vec!["a..example.com"]),
        ("Domain", "A", vec!["-x.example.com"]),
        ("Domain", "A", vec!["App.example.com", "app.example.com."]),
        ("IPv6", "AAAA", vec!["2001:DB8::1", "2001:db8::1"]),
        ("IPv4", "A", vec!["0.0.0.0"]),
        ("IPv4", "A", vec!["255.255.255.255"]),
        ("IPv4", "A", vec!["224.0.0.1"]),
        ("IPv4", "A", vec!["239.255.255.250"]),
        ("IPv6", "AAAA", vec!["::"]),
        ("IPv6", "AAAA", vec!["ff02::1"]),
    ] {
        let mut inventory = loaded(&domain(
            "d",
            "d.gtm.example.com",
            record_type,
            &["p"],
            "Sequential",
        ))
        .inventory;
        let addresses: Vec<_> = addresses
            .iter()
            .map(|a| serde_json::json!({"value": a}))
            .collect();
        inventory.pools.push(std::sync::Arc::new(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "gtm.kubegtm.io/v1alpha1",
                "kind": "AddressPool",
                "metadata": {"name": "p", "namespace": "default"},
                "spec": {"type": pool_type, "addresses": addresses},
            }))
            .unwrap(),
        ));
        let c = compile(&inventory, &["gtm.example.com".to_string()]);
        let r = rejection(&c, Kind::AddressPool, "p");
        assert_eq!(
            r.reason,
            RejectReason::InvalidAddress,
            "{addresses:?}: {}",
            r.message
        );
        assert_eq!(
            rejection(&c, Kind::GtmAccessDomain, "d").reason,
            RejectReason::PoolNotAccepted
        );
        c.config
            .check_consistency()
            .expect("what is published stays consistent");
    }
}

#[test]
fn the_most_specific_zone_decides_the_apex() {
    let text = format!(
        "{TEMPLATES}\n---\n{}",
        domain("d", "gtm.example.com", "A", &["names"], "Sequential")
    );
    let loaded = loaded(&text);
    let c = compile(
        &loaded.inventory,
        &["example.com".to_string(), "gtm.example.com".to_string()],
    );
    assert_eq!(
        rejection(&c, Kind::GtmAccessDomain, "d").reason,
        RejectReason::CnameAtApex
    );
}

fn domain_pool(name: &str, targets: &[&str]) -> String {
    let addresses: Vec<String> = targets.iter().map(|t| format!("{{value: {t}}}")).collect();
    format!(
        "apiVersion: gtm.kubegtm.io/v1alpha1\nkind: AddressPool\nmetadata: {{name: {name}}}\nspec:\n  type: Domain\n  addresses: [{}]\n",
        addresses.join(", ")
    )
}

#[test]
fn a_cname_to_itself_is_a_loop() {
    let c = compile_with(&format!(
        "{}---\n{}",
        domain_pool("self", &["eu.cdn.example.net", "A.gtm.example.com."]),
        domain("a", "a.gtm.example.com", "CNAME", &["self"], "Sequential")
    ));
    let r = rejection(&c, Kind::GtmAccessDomain, "a");
    assert_eq!(r.reason, RejectReason::CnameLoop);
    assert!(
        r.message
            .starts_with("CNAME loop: a.gtm.example.com -> a.gtm.example.com;"),
        "{}",
        r.message
    );
    assert!(c.config.domains.is_empty());
}

#[test]
fn the_domain_that_closes_a_cname_loop_is_refused_and_the_older_ones_serve() {
    let c = compile_with(&format!(
        "{}---\n{}---\n{}---\n{}---\n{}---\n{}",
        domain_pool("to-b", &["b.gtm.example.com"]),
        domain_pool("to-c", &["c.gtm.example.com"]),
        domain_pool("to-a", &["a.gtm.example.com"]),
        domain("a", "a.gtm.example.com", "A", &["to-b"], "Sequential"),
        domain("b", "b.gtm.example.com", "CNAME", &["to-c"], "Sequential"),
        domain("c", "c.gtm.example.com", "A", &["v4", "to-a"], "Sequential"),
    ));
    assert!(verdict(&c, Kind::GtmAccessDomain, "a").is_accepted());
    assert!(verdict(&c, Kind::GtmAccessDomain, "b").is_accepted());
    let r = rejection(&c, Kind::GtmAccessDomain, "c");
    assert_eq!(r.reason, RejectReason::CnameLoop);
    assert!(
        r.message.starts_with(
            "CNAME loop: c.gtm.example.com -> a.gtm.example.com -> b.gtm.example.com -> c.gtm.example.com;"
        ),
        "{}",
        r.message
    );
}

#[test]
fn cname_chains_of_different_query_types_do_not_loop() {
    // a answers A queries with a CNAME to b, b answers AAAA queries with a CNAME to a: no
    // query type goes round.
    let c = compile_with(&format!(
        "{}---\n{}---\n{}---\n{}",
        domain_pool("to-b", &["b.gtm.example.com"]),
        domain_pool("to-a", &["a.gtm.example.com"]),
        domain("a", "a.gtm.example.com", "A", &["to-b"], "Sequential"),
        domain("b", "b.gtm.example.com", "AAAA", &["to-a"], "Sequential"),
    ));
    assert_eq!(c.config.domains.len(), 2);
}
