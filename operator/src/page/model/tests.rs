//! The page's model from the operator's real pure steps: manifests loaded, compiled, evaluated
//! under a health view, statuses computed (each from the one before, so histories build up),
//! then seen through filters.

use std::collections::BTreeMap;

use gtm_crds::config::ActiveSelections;
use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::compile::compile;
use crate::evaluate::evaluate;
use crate::health::TaskHealth;
use crate::inventory::Inventory;
use crate::manifests::test_support::loaded;
use crate::status::compute_all;

const TEMPLATE: &str = "apiVersion: gtm.kubegtm.io/v1alpha1
kind: HealthCheckTemplate
metadata: {name: http}
spec: {protocol: HTTP}";

/// A Sequential domain over a two-address primary and a one-address standby.
fn failover_set(ns: &str, name: &str) -> String {
    format!(
        "apiVersion: gtm.kubegtm.io/v1alpha1
kind: AddressPool
metadata: {{name: {name}-primary, namespace: {ns}}}
spec:
  type: IPv4
  healthChecks: [{{template: http, port: 80}}]
  addresses: [{{value: 192.0.2.1, remark: zone-a}}, {{value: 192.0.2.2}}]
---
apiVersion: gtm.kubegtm.io/v1alpha1
kind: AddressPool
metadata: {{name: {name}-standby, namespace: {ns}}}
spec:
  type: IPv4
  healthChecks: [{{template: http, port: 80}}]
  addresses: [{{value: 198.51.100.1}}]
---
apiVersion: gtm.kubegtm.io/v1alpha1
kind: GtmAccessDomain
metadata: {{name: {name}, namespace: {ns}}}
spec:
  domain: {name}.{ns}.gtm.example.com
  recordType: A
  policy: Sequential
  pools: [{{name: {name}-primary, order: 1}}, {{name: {name}-standby, order: 2}}]"
    )
}

/// The manifests, with the template in every namespace they use.
fn manifests(sets: &[(&str, &str)]) -> Inventory {
    let namespaces: std::collections::BTreeSet<&str> = sets.iter().map(|(ns, _)| *ns).collect();
    let mut docs: Vec<String> = namespaces
        .iter()
        .map(|ns| TEMPLATE.replace("{name: http}", &format!("{{name: http, namespace: {ns}}}")))
        .collect();
    docs.extend(sets.iter().map(|(ns, name)| failover_set(ns, name)));
    let l = loaded(&docs.join("\n---\n"));
    assert!(
        l.invalid.is_empty() && l.problems.is_empty(),
        "{:?}",
        l.invalid
    );
    l.inventory
}

fn t(second: i64) -> Time {
    Time(Timestamp::from_second(1_767_225_600 + second).unwrap())
}

/// The operator's view after a pass at `at` with the listed addresses' checks down, every
/// status computed from `previous`'s.
fn pass(inventory: &Inventory, down: &[&str], previous: Option<&Snapshot>, at: i64) -> Snapshot {
    let compilation = compile(inventory, &["gtm.example.com".to_string()]);
    let tasks: BTreeMap<String, TaskHealth> = compilation
        .tasks
        .keys()
        .map(|id| {
            let failing = down.iter().any(|a| id.contains(&format!("@{a}#")));
            let mut health = TaskHealth::new(
                if failing {
                    HealthState::Down
                } else {
                    HealthState::Up
                },
                None,
            );
            health.latency = (!failing).then(|| std::time::Duration::from_millis(7));
            health.last_error =
                failing.then(|| gtm_prober::ProbeError::Connect("connection refused".into()));
            (id.clone(), health)
        })
        .collect();
    let evaluation = evaluate(
        &compilation,
        &tasks,
        &Default::default(),
        &ActiveSelections::default(),
    );
    let statuses = compute_all(
        inventory,
        |key, _| previous.and_then(|p| p.statuses.get(key)),
        &compilation,
        &crate::status::ZoneFacts {
            serials: &BTreeMap::new(),
            keys: &BTreeMap::new(),
        },
        &evaluation,
        &crate::locations::HealthView::of(tasks),
        &t(at),
    );
    Snapshot {
        inventory: inventory.clone(),
        statuses,
        remote: RemoteResults::new(),
        source: Source::Local,
        taken: t(at),
    }
}

fn domain<'a>(view: &'a Topology, id: &str) -> &'a DomainCard {
    view.domains
        .iter()
        .find(|d| format!("{}/{}", d.namespace, d.name) == id)
        .unwrap_or_else(|| panic!("no domain {id} in {view:?}"))
}

#[test]
fn a_healthy_domain_answers_its_first_choice_and_shows_every_check() {
    let inv = manifests(&[("prod", "app")]);
    let view = topology(&pass(&inv, &[], None, 0), &Filter::default());
    let d = domain(&view, "prod/app");
    assert_eq!(d.state, DomainState::Healthy);
    assert_eq!(d.fqdn, "app.prod.gtm.example.com");
    assert_eq!(d.why, "answering from app-primary");
    assert_eq!(d.answering, ["app-primary"]);
    let primary = &d.pools[0];
    assert_eq!(
        (primary.state, primary.answering),
        (PoolState::Available, true)
    );
    assert!(!primary.fail_open);
    // A RoundRobin pool draws from every available address.
    assert!(primary.addresses.iter().all(|a| a.answered && a.available));
    assert_eq!(primary.addresses[0].remark.as_deref(), Some("zone-a"));
    let task = &primary.addresses[0].tasks[0];
    assert_eq!(
        (task.template.as_str(), task.port, task.protocol, task.state),
        ("http", Some(80), Some(Protocol::HTTP), HealthState::Up)
    );
    assert_eq!(task.latency_millis, Some(7));
    // One location, the operator's own prober.
    assert_eq!(task.locations.len(), 1);
    assert_eq!(task.locations[0].location, EMBEDDED_LOCATION);
    let standby = &d.pools[1];
    assert!(!standby.answering && standby.addresses.iter().all(|a| !a.answered));
    assert!(d.history.is_empty());
}

#[test]
fn a_failover_shows_why_what_answers_and_the_history() {
    let inv = manifests(&[("prod", "app")]);
    let before = pass(&inv, &[], None, 0);
    let half = pass(&inv, &["192.0.2.1"], Some(&before), 10);
    let view = topology(&half, &Filter::default());
    let d = domain(&view, "prod/app");
    assert_eq!(d.state, DomainState::Degraded, "one of two addresses down");
    let primary = &d.pools[0];
    assert_eq!(primary.state, PoolState::Degraded);
    assert_eq!(
        primary
            .addresses
            .iter()
            .map(|a| a.answered)
            .collect::<Vec<_>>(),
        [false, true]
    );
    assert_eq!(
        primary.addresses[0].tasks[0].last_error.as_deref(),
        Some("connection refused")
    );

    let over = pass(&inv, &["192.0.2.1", "192.0.2.2"], Some(&half), 20);
    let view = topology(&over, &Filter::default());
    let d = domain(&view, "prod/app");
    assert_eq!(d.state, DomainState::FailedOver);
    assert_eq!(d.why, "answering from app-standby");
    assert_eq!(
        d.pools
            .iter()
            .map(|p| (p.state, p.answering))
            .collect::<Vec<_>>(),
        [
            (PoolState::Unavailable, false),
            (PoolState::Available, true)
        ]
    );
    assert!(d.pools[1].addresses[0].answered);
    assert_eq!(
        d.history
            .iter()
            .map(|e| (e.reason.as_str(), e.from.as_str(), e.to.as_str()))
            .collect::<Vec<_>>(),
        [("Failover", "app-primary", "app-standby")]
    );
    assert_eq!(d.history[0].time, t(20));
    assert_eq!(
        d.pools[0]
            .history
            .iter()
            .map(|e| e.reason.as_str())
            .collect::<Vec<_>>(),
        ["PoolUnavailable", "AddressDown", "AddressDown"]
    );
}

#[test]
fn with_every_pool_down_the_first_answers_whole() {
    let inv = manifests(&[("prod", "app")]);
    let all = ["192.0.2.1", "192.0.2.2", "198.51.100.1"];
    let view = topology(&pass(&inv, &all, None, 0), &Filter::default());
    let d = domain(&view, "prod/app");
    assert_eq!(d.state, DomainState::FailOpen);
    assert_eq!(
        d.why,
        "no pool is available; failing open to app-primary, all its addresses (none is available)"
    );
    let primary = &d.pools[0];
    assert!(primary.answering && primary.fail_open);
    assert!(primary.addresses.iter().all(|a| a.answered && !a.available));
    assert!(!d.pools[1].answering);
}

#[test]
fn a_domain_that_cannot_be_served_says_why_and_names_the_missing_pool() {
    let mut inv = manifests(&[("prod", "app")]);
    let dangling = loaded(
        "apiVersion: gtm.kubegtm.io/v1alpha1
kind: GtmAccessDomain
metadata: {name: lost, namespace: prod}
spec:
  domain: lost.gtm.example.com
  recordType: A
  pools: [{name: nowhere}]",
    );
    inv.domains.extend(dangling.inventory.domains);
    let view = topology(&pass(&inv, &[], None, 0), &Filter::default());
    let d = domain(&view, "prod/lost");
    assert_eq!(d.state, DomainState::NotServing);
    assert!(d.why.contains("nowhere"), "{}", d.why);
    assert_eq!(d.pools[0].state, PoolState::Missing);
    assert_eq!(d.pools[0].why, "no AddressPool nowhere in namespace prod");
}

#[test]
fn filters_narrow_the_list_and_counts_stay_whole() {
    let inv = manifests(&[("prod", "app"), ("prod", "shop"), ("staging", "app")]);
    let snapshot = pass(&inv, &["192.0.2.1", "192.0.2.2"], None, 0);
    let ids = |f: Filter| -> Vec<String> {
        topology(&snapshot, &f)
            .domains
            .iter()
            .map(|d| format!("{}/{}", d.namespace, d.name))
            .collect()
    };
    // Every set shares the addresses: every domain failed over.
    let all = topology(&snapshot, &Filter::default());
    assert_eq!(all.namespaces, ["prod", "staging"]);
    assert_eq!(all.counts, BTreeMap::from([(DomainState::FailedOver, 3)]));
    assert_eq!(
        ids(Filter::default()),
        ["prod/app", "prod/shop", "staging/app"]
    );
    let only = |namespace: &str, state, q: &str| Filter {
        namespace: namespace.into(),
        state,
        q: q.into(),
    };
    assert_eq!(ids(only("staging", StateFilter::All, "")), ["staging/app"]);
    assert_eq!(ids(only("", StateFilter::All, "SHOP.prod")), ["prod/shop"]);
    assert_eq!(ids(only("prod", StateFilter::Problems, "")).len(), 2);
    assert_eq!(
        ids(only("", StateFilter::Only(DomainState::FailedOver), "app")),
        ["prod/app", "staging/app"]
    );
    let none = topology(
        &snapshot,
        &only("", StateFilter::Only(DomainState::Healthy), ""),
    );
    assert!(none.domains.is_empty() && none.matching == 0);
    assert_eq!(none.counts, all.counts, "counts ignore the filter");
}

#[test]
fn a_large_inventory_lists_the_first_domains_and_counts_the_rest() {
    let sets: Vec<(String, String)> = (0..MAX_DOMAINS + 3)
        .map(|i| ("prod".to_string(), format!("d{i:03}")))
        .collect();
    let refs: Vec<(&str, &str)> = sets.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let view = topology(&pass(&manifests(&refs), &[], None, 0), &Filter::default());
    assert_eq!(view.matching, MAX_DOMAINS + 3);
    assert_eq!(view.domains.len(), MAX_DOMAINS);
    assert_eq!(view.domains[0].name, "d000");
}

#[test]
fn remote_locations_follow_the_operators_own_and_a_standby_reads_the_objects() {
    let inv = manifests(&[("prod", "app")]);
    let mut snapshot = pass(&inv, &["192.0.2.1"], None, 0);
    snapshot.remote.insert(
        "prod/http@192.0.2.1#80".to_string(),
        vec![LocationResult {
            location: "eu".into(),
            fresh: false,
            state: HealthState::Up,
            latency_millis: None,
            last_error: None,
        }],
    );
    let view = topology(&snapshot, &Filter::default());
    let locations = &domain(&view, "prod/app").pools[0].addresses[0].tasks[0].locations;
    assert_eq!(
        locations
            .iter()
            .map(|l| (l.location.as_str(), l.fresh, l.state))
            .collect::<Vec<_>>(),
        [
            (EMBEDDED_LOCATION, true, HealthState::Down),
            ("eu", false, HealthState::Up)
        ]
    );

    // A standby has no statuses of its own: the objects carry the leader's.
    let mut standby = inv.clone();
    for p in &mut standby.pools {
        let key = ObjectKey::of(Kind::AddressPool, p.as_ref());
        if let Some(ObjectStatus::Pool(s)) = snapshot.statuses.get(&key) {
            std::sync::Arc::make_mut(p).status = Some(s.clone());
        }
    }
    for d in &mut standby.domains {
        let key = ObjectKey::of(Kind::GtmAccessDomain, d.as_ref());
        if let Some(ObjectStatus::Domain(s)) = snapshot.statuses.get(&key) {
            std::sync::Arc::make_mut(d).status = Some(s.clone());
        }
    }
    let from_objects = Snapshot {
        inventory: standby,
        statuses: BTreeMap::new(),
        remote: RemoteResults::new(),
        source: Source::Standby,
        taken: snapshot.taken.clone(),
    };
    snapshot.remote.clear();
    let leader = topology(&snapshot, &Filter::default());
    let standby = topology(&from_objects, &Filter::default());
    assert_eq!(standby.source, Source::Standby);
    assert_eq!(standby.domains, leader.domains);
}

#[test]
fn the_model_serializes_as_the_page_reads_it() {
    let inv = manifests(&[("prod", "app")]);
    let view = topology(&pass(&inv, &[], None, 0), &Filter::default());
    let json = serde_json::to_value(&view).unwrap();
    assert_eq!(json["source"], "Local");
    assert_eq!(json["counts"], serde_json::json!({"Healthy": 1}));
    let d = &json["domains"][0];
    assert_eq!(d["recordType"], "A");
    assert_eq!(d["pools"][0]["poolType"], "IPv4");
    assert_eq!(
        d["pools"][0]["addresses"][0]["tasks"][0]["latencyMillis"],
        7
    );
    assert_eq!(
        d["pools"][0]["addresses"][0]["tasks"][0]["locations"][0]["location"],
        "local"
    );
}
