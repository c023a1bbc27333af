use serde_json::json;

use super::*;

fn pool(pool_type: &str, addresses: &[&str], sources: serde_json::Value) -> AddressPool {
    let addresses: Vec<_> = addresses.iter().map(|a| json!({"value": a})).collect();
    serde_json::from_value(json!({
        "apiVersion": "gtm.kubegtm.io/v1alpha1",
        "kind": "AddressPool",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {"type": pool_type, "addresses": addresses, "endpointSources": sources},
    }))
    .unwrap()
}

fn service(name: &str) -> EndpointRef {
    EndpointRef {
        cluster: None,
        kind: EndpointKind::Service,
        namespace: "apps".into(),
        name: name.into(),
    }
}

fn discovered(objects: &[(EndpointRef, &[&str])]) -> Discovered {
    Discovered {
        watched: [
            (None, EndpointKind::Service),
            (Some("eu".into()), EndpointKind::Gateway),
        ]
        .into_iter()
        .collect(),
        objects: objects
            .iter()
            .map(|(r, a)| (r.clone(), a.iter().map(|s| s.to_string()).collect()))
            .collect(),
    }
}

fn values(pool: &AddressPool) -> Vec<&str> {
    pool.spec
        .addresses
        .iter()
        .map(|a| a.value.as_str())
        .collect()
}

#[test]
fn the_status_fields_of_each_kind_give_its_addresses() {
    let lb = json!({
        "spec": {"type": "LoadBalancer"},
        "status": {"loadBalancer": {"ingress": [
            {"ip": "203.0.113.7"}, {"hostname": "lb.example.net"}, {"ip": "2001:db8::7"}
        ]}}
    });
    assert_eq!(
        addresses_in_status(EndpointKind::Service, &lb),
        ["203.0.113.7", "lb.example.net", "2001:db8::7"]
    );
    let cluster_ip = json!({"spec": {"type": "ClusterIP"}, "status": lb["status"].clone()});
    assert!(addresses_in_status(EndpointKind::Service, &cluster_ip).is_empty());
    let ingress = json!({"status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.1"}]}}});
    assert_eq!(
        addresses_in_status(EndpointKind::Ingress, &ingress),
        ["198.51.100.1"]
    );
    let gateway = json!({"status": {"addresses": [
        {"type": "IPAddress", "value": "192.0.2.9"},
        {"value": "192.0.2.10"},
        {"type": "Hostname", "value": "gw.example.net"},
        {"type": "example.com/custom", "value": "opaque"}
    ]}});
    assert_eq!(
        addresses_in_status(EndpointKind::Gateway, &gateway),
        ["192.0.2.9", "192.0.2.10", "gw.example.net"]
    );
    assert!(addresses_in_status(EndpointKind::Gateway, &json!({"status": {}})).is_empty());
}

#[test]
fn discovered_addresses_of_the_pools_type_join_with_the_sources_settings() {
    let p = pool(
        "IPv4",
        &["192.0.2.1"],
        json!([{"kind": "Service", "name": "web", "weight": 30, "order": 2, "mode": "AlwaysOnline"}]),
    );
    let d = discovered(&[(
        service("web"),
        &[
            "203.0.113.7",
            "2001:db8::7",
            "lb.example.net",
            "192.0.2.1",
            "0.0.0.0",
        ],
    )]);
    let (expanded, resolution) = expand(&p, &d).unwrap();
    // The IPv6 address, the host name, the literal duplicate and the unspecified address are left out.
    assert_eq!(values(&expanded), ["192.0.2.1", "203.0.113.7"]);
    let added = &expanded.spec.addresses[1];
    assert_eq!((added.weight, added.order), (30, 2));
    assert_eq!(added.mode, gtm_crds::pool::AddressMode::AlwaysOnline);
    assert!(added.enabled && added.health_checks.is_none());
    assert_eq!(
        resolution.origin,
        [("203.0.113.7".to_string(), "Service apps/web".to_string())].into()
    );
    assert_eq!(
        resolution.sources,
        [(service("web"), SourceState::Found(2))]
    );
    let c = resolution.condition();
    assert!(c.status, "{c:?}");
    assert_eq!(c.reason, "Resolved");
}

#[test]
fn a_domain_pool_takes_host_names_canonical_and_once() {
    let p = pool(
        "Domain",
        &[],
        json!([{"kind": "Service", "name": "a"}, {"kind": "Service", "name": "b"}]),
    );
    let d = discovered(&[
        (service("a"), &["LB.Example.NET.", "203.0.113.7"]),
        (service("b"), &["lb.example.net"]),
    ]);
    let (expanded, resolution) = expand(&p, &d).unwrap();
    assert_eq!(values(&expanded), ["lb.example.net"]);
    assert_eq!(resolution.origin["lb.example.net"], "Service apps/a");
    assert_eq!(
        resolution.sources,
        [
            (service("a"), SourceState::Found(1)),
            (service("b"), SourceState::Found(1))
        ]
    );
}

#[test]
fn missing_unwatched_and_empty_sources_are_reported_and_the_rest_serves() {
    let p = pool(
        "IPv4",
        &["192.0.2.1"],
        json!([
            {"kind": "Service", "name": "gone"},
            {"kind": "Service", "name": "pending"},
            {"kind": "Ingress", "name": "web"},
            {"kind": "Gateway", "name": "gw", "namespace": "edge", "cluster": "eu"},
            {"kind": "Service", "name": "web", "cluster": "us"}
        ]),
    );
    let gw = EndpointRef {
        cluster: Some("eu".into()),
        kind: EndpointKind::Gateway,
        namespace: "edge".into(),
        name: "gw".into(),
    };
    let d = discovered(&[(service("pending"), &[]), (gw.clone(), &["198.51.100.5"])]);
    let (expanded, resolution) = expand(&p, &d).unwrap();
    assert_eq!(values(&expanded), ["192.0.2.1", "198.51.100.5"]);
    assert_eq!(
        resolution.origin["198.51.100.5"],
        "Gateway edge/gw in cluster eu"
    );
    let states: Vec<&SourceState> = resolution.sources.iter().map(|(_, s)| s).collect();
    assert_eq!(
        states,
        [
            &SourceState::Missing,
            &SourceState::NoAddress,
            &SourceState::NotWatched,
            &SourceState::Found(1),
            &SourceState::NotWatched
        ]
    );
    let c = resolution.condition();
    assert!(!c.status);
    assert_eq!(c.reason, "SourceNotFound");
    for part in [
        "Service apps/gone not found",
        "Service apps/pending has no address",
        "Ingress apps/web: Ingress objects are not discovered there (the operator's --endpoint-kinds",
        "Service apps/web in cluster us: Service objects are not discovered there (no endpoint agent",
    ] {
        assert!(c.message.contains(part), "{part:?} in {}", c.message);
    }
}

#[test]
fn a_pool_without_sources_is_left_as_it_is() {
    let p = pool("IPv4", &["192.0.2.1"], json!([]));
    assert_eq!(expand(&p, &Discovered::default()), None);
}

#[test]
fn what_an_agent_publishes_is_read_back_under_its_clusters_name() {
    let mut own = Discovered::default();
    own.watched.insert((None, EndpointKind::Service));
    own.objects
        .insert(service("web"), vec!["203.0.113.7".into()]);
    let published = own.to_published();
    let text = serde_json::to_string(&published).unwrap();
    assert_eq!(
        text,
        r#"{"kinds":["Service"],"objects":[{"kind":"Service","namespace":"apps","name":"web","addresses":["203.0.113.7"]}]}"#
    );
    let mut control = Discovered::default();
    control.add_published("eu", serde_json::from_str(&text).unwrap());
    let eu = EndpointRef {
        cluster: Some("eu".into()),
        ..service("web")
    };
    assert_eq!(control.objects[&eu], ["203.0.113.7"]);
    assert!(
        control
            .watched
            .contains(&(Some("eu".into()), EndpointKind::Service))
    );
    assert!(!control.watched.contains(&(None, EndpointKind::Service)));
    assert_eq!(published_name("kube-gtm", "eu"), "kube-gtm-endpoints-eu");
}
