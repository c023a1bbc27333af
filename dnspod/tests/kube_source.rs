//! The ConfigMap source against a mock API server (tower-test): the exact list and watch
//! requests, reassembly of multi-part payloads, and refusal of a half-updated set.

mod support;

use std::time::Duration;

use gtm_crds::common::LbPolicy;
use gtm_crds::config::GtmConfig;
use gtm_crds::domain::RecordType as Rt;
use gtm_crds::parts::{
    DIGEST_ANNOTATION, INSTANCE_LABEL, PART_ANNOTATION, PAYLOAD_LABEL, Part, Payload,
    configmap_name, split,
};
use gtm_dnspod::config_source::kube::follow;
use gtm_dnspod::state::{Loader, Shared};
use gtm_dnspod::zone::ZoneSettings;
use http::{Request, Response};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::client::Body;
use serde_json::json;
use support::fixtures::*;
use tokio_util::sync::CancellationToken;

const NS: &str = "gtm";
const INSTANCE: &str = "kube-gtm";

fn generation(g: u64) -> GtmConfig {
    config(
        g,
        vec![domain(
            "www",
            Rt::A,
            LbPolicy::RoundRobin,
            vec![member("ns/p")],
        )],
        vec![pool(
            "ns/p",
            LbPolicy::RoundRobin,
            (1..=20).map(|i| addr(&format!("192.0.2.{i}"))).collect(),
        )],
    )
}

/// The ConfigMaps carrying `text` in parts of at most 600 bytes, at `resource_version`.
fn configmaps(payload: Payload, text: &str, resource_version: u32) -> Vec<ConfigMap> {
    split(text, 600)
        .into_iter()
        .map(|p| configmap(payload, &p, resource_version))
        .collect()
}

fn configmap(payload: Payload, part: &Part, resource_version: u32) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {
            "name": configmap_name(INSTANCE, payload, part.index),
            "namespace": NS,
            "resourceVersion": resource_version.to_string(),
            "labels": { PAYLOAD_LABEL: payload.label_value(), INSTANCE_LABEL: INSTANCE },
            "annotations": { PART_ANNOTATION: part.annotation(), DIGEST_ANNOTATION: part.digest },
        },
        "data": { payload.key(): part.data },
    }))
    .unwrap()
}

fn respond(send: tower_test::mock::SendResponse<Response<Body>>, body: Vec<u8>) {
    send.send_response(
        Response::builder()
            .status(200)
            .body(Body::from(body))
            .unwrap(),
    );
}

async fn wait_for_generation(shared: &Shared, g: u64) {
    for _ in 0..500 {
        if shared
            .snapshot()
            .is_some_and(|s| s.compiled.generation() == g)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("generation {g} never served");
}

#[tokio::test]
async fn payloads_are_listed_watched_and_reassembled() {
    let (service, mut api) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, NS);
    let shared = Shared::new();
    let stop = CancellationToken::new();
    let source = tokio::spawn(follow(
        kube::Api::<ConfigMap>::namespaced(client, NS),
        INSTANCE,
        Loader::new(shared.clone(), ZoneSettings::default()),
        Default::default(),
        stop.clone(),
    ));

    let first = String::from_utf8(generation(1).to_json()).unwrap();
    let health = serde_json::to_string(&health_down(1, &[])).unwrap();
    let mut items = configmaps(Payload::Config, &first, 10);
    assert!(items.len() > 1, "the config travels in several parts");
    items.extend(configmaps(Payload::Health, &health, 11));

    let selector = "labelSelector=gtm.kubegtm.io%2Finstance%3Dkube-gtm%2Cgtm.kubegtm.io%2Fpayload";
    let (request, send) = api.next_request().await.expect("a list request");
    assert_eq!(request.method(), "GET");
    assert_eq!(
        request.uri().to_string(),
        format!("/api/v1/namespaces/{NS}/configmaps?&{selector}&limit=500")
    );
    let list = json!({"kind": "ConfigMapList", "apiVersion": "v1",
        "metadata": {"resourceVersion": "11"}, "items": items});
    respond(send, serde_json::to_vec(&list).unwrap());
    wait_for_generation(&shared, 1).await;

    let (request, send) = api.next_request().await.expect("a watch request");
    assert_eq!(request.method(), "GET");
    assert_eq!(
        request.uri().to_string(),
        format!(
            "/api/v1/namespaces/{NS}/configmaps?&watch=true&timeoutSeconds=290&{selector}&allowWatchBookmarks=true&resourceVersion=11"
        )
    );
    // Generation 2 arrives part by part: until the last part the set is mixed and refused
    // (generation 1 keeps serving); after the last part generation 2 is served.
    let second = String::from_utf8(generation(2).to_json()).unwrap();
    let parts = configmaps(Payload::Config, &second, 20);
    let mut events = Vec::new();
    for (i, cm) in parts.iter().enumerate() {
        let mut cm = cm.clone();
        cm.metadata.resource_version = Some((20 + i).to_string());
        events.extend(serde_json::to_vec(&json!({"type": "MODIFIED", "object": cm})).unwrap());
        events.push(b'\n');
    }
    respond(send, events);
    wait_for_generation(&shared, 2).await;
    let metrics = shared.metrics.encode();
    assert!(
        metrics.contains(&format!(
            r#"gtm_dnspod_reloads_total{{payload="config",result="failure"}} {}"#,
            parts.len() - 1
        )),
        "every half-updated set was refused once:\n{metrics}"
    );
    assert!(metrics.contains(r#"gtm_dnspod_reloads_total{payload="config",result="success"} 2"#));

    stop.cancel();
    source.await.unwrap();
}
