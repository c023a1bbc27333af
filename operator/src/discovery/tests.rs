use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::{self, Handle};

use super::*;

fn object(kind: EndpointKind, name: &str, status: Value) -> DynamicObject {
    let mut o = json!({
        "apiVersion": api_resource(kind).api_version,
        "kind": kind.as_str(),
        "metadata": {"name": name, "namespace": "apps", "resourceVersion": "1"},
        "status": status,
    });
    if kind == EndpointKind::Service {
        o["spec"] = json!({"type": "LoadBalancer"});
    }
    serde_json::from_value(o).unwrap()
}

fn lb(ip: &str) -> Value {
    json!({"loadBalancer": {"ingress": [{"ip": ip}]}})
}

#[test]
fn a_watch_state_follows_lists_and_changes_and_reports_only_real_changes() {
    let s = EndpointKind::Service;
    let mut state = WatchState::default();
    assert!(!state.apply(s, Event::Init));
    assert!(!state.apply(s, Event::InitApply(object(s, "web", lb("203.0.113.7")))));
    assert!(
        state.apply(s, Event::InitDone),
        "the first list syncs the kind"
    );
    assert!(state.synced);
    // The same addresses again (a status write of another field) change nothing.
    assert!(!state.apply(s, Event::Apply(object(s, "web", lb("203.0.113.7")))));
    assert!(state.apply(s, Event::Apply(object(s, "web", lb("203.0.113.8")))));
    assert!(state.apply(s, Event::Apply(object(s, "new", json!({})))));
    // A relist that finds what is known is no change; one that misses an object is.
    assert!(!state.apply(s, Event::Init));
    for (name, status) in [("web", lb("203.0.113.8")), ("new", json!({}))] {
        state.apply(s, Event::InitApply(object(s, name, status)));
    }
    assert!(!state.apply(s, Event::InitDone));
    assert!(state.apply(s, Event::Delete(object(s, "new", json!({})))));
    assert!(!state.apply(s, Event::Delete(object(s, "new", json!({})))));
    assert_eq!(
        state.objects,
        BTreeMap::from([(("apps".into(), "web".into()), vec!["203.0.113.8".into()])])
    );
}

type Reply = tower_test::mock::SendResponse<Response<Body>>;

async fn next(handle: &mut Handle<Request<Body>, Response<Body>>) -> (String, Reply) {
    let (request, reply) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
        .await
        .expect("a request in time")
        .expect("a request");
    assert_eq!(request.method(), "GET");
    (request.uri().to_string(), reply)
}

fn respond(reply: Reply, body: &Value) {
    reply.send_response(
        Response::builder()
            .status(200)
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap(),
    );
}

#[tokio::test]
async fn the_kinds_are_listed_and_watched_in_the_watched_namespaces() {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let changed = Arc::new(Notify::new());
    let watches = KindWatches::start(
        &client,
        &[EndpointKind::Service, EndpointKind::Gateway],
        &["apps".to_string()],
        &changed,
    );
    let mut out = Discovered::default();
    watches.add_to(None, &mut out);
    assert!(out.watched.is_empty(), "nothing is watched before its list");

    // One list per kind, in the namespace, read-only.
    let mut lists = BTreeMap::new();
    for _ in 0..2 {
        let (uri, reply) = next(&mut handle).await;
        lists.insert(uri, reply);
    }
    let service_list = "/api/v1/namespaces/apps/services?&limit=500";
    let gateway_list = "/apis/gateway.networking.k8s.io/v1/namespaces/apps/gateways?&limit=500";
    assert_eq!(
        lists.keys().map(String::as_str).collect::<Vec<_>>(),
        [service_list, gateway_list]
    );
    respond(
        lists.remove(service_list).unwrap(),
        &json!({"kind": "ServiceList", "apiVersion": "v1", "metadata": {"resourceVersion": "5"},
                "items": [object(EndpointKind::Service, "web", lb("203.0.113.7"))]}),
    );
    respond(
        lists.remove(gateway_list).unwrap(),
        &json!({"kind": "GatewayList", "apiVersion": "gateway.networking.k8s.io/v1",
                "metadata": {"resourceVersion": "6"},
                "items": [object(EndpointKind::Gateway, "gw", json!({"addresses": [{"type": "Hostname", "value": "gw.example.net"}]}))]}),
    );
    let mut watches_seen = Vec::new();
    for _ in 0..2 {
        let (uri, reply) = next(&mut handle).await;
        watches_seen.push((uri, reply));
    }
    watches_seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        watches_seen
            .iter()
            .map(|(u, _)| u.as_str())
            .collect::<Vec<_>>(),
        [
            "/api/v1/namespaces/apps/services?&watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion=5",
            "/apis/gateway.networking.k8s.io/v1/namespaces/apps/gateways?&watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion=6",
        ]
    );
    assert!(watches.synced());
    // A status change arrives on the Service watch.
    let (_, service_watch) = watches_seen.remove(0);
    let event = json!({"type": "MODIFIED", "object": object(EndpointKind::Service, "web", lb("203.0.113.9"))});
    respond(service_watch, &event);
    tokio::time::timeout(Duration::from_secs(5), changed.notified())
        .await
        .expect("the change wakes the operator");
    for _ in 0..100 {
        let mut out = Discovered::default();
        watches.add_to(Some("eu"), &mut out);
        let web = EndpointRef {
            cluster: Some("eu".into()),
            kind: EndpointKind::Service,
            namespace: "apps".into(),
            name: "web".into(),
        };
        if out.objects.get(&web) == Some(&vec!["203.0.113.9".to_string()]) {
            assert_eq!(out.watched.len(), 2);
            let gw = EndpointRef {
                kind: EndpointKind::Gateway,
                name: "gw".into(),
                ..web
            };
            assert_eq!(out.objects[&gw], ["gw.example.net"]);
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the Service's new address never showed");
}
