//! Reconcile passes against a mock API server (`tower-test`) that pins every request: method,
//! path and query (field manager included), and body. A pass that should write nothing is run
//! with no server answering, so any request would hang it.

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use kube::runtime::events::Reporter;
use serde_json::{Value, json};
use tower_test::mock::{self, Handle};

use gtm_crds::config::GtmConfig;
use gtm_crds::pool::HealthState;
use gtm_prober::http::Exposition as _;

use super::*;
use crate::drop_guard::CONFIRM_ANNOTATION;
use crate::health::TaskHealth;
use crate::manifests::test_support::loaded;

const NS: &str = "gtm-system";
const CM_QUERY: &str = "?&force=true&fieldManager=gtm-operator";

/// One request the mock API server received.
struct Seen {
    method: String,
    uri: String,
    body: Value,
}

/// The mock API server side: answers requests one by one.
struct ApiServer(Handle<Request<Body>, Response<Body>>);

type Reply = tower_test::mock::SendResponse<Response<Body>>;

impl ApiServer {
    /// Receives the next request (within 5 s), with the means to answer it.
    async fn receive(&mut self) -> (Seen, Reply) {
        let (request, send) = tokio::time::timeout(Duration::from_secs(5), self.0.next_request())
            .await
            .expect("a request within 5 s")
            .expect("the client is alive");
        let method = request.method().to_string();
        let uri = request.uri().to_string();
        let bytes = request.into_body().collect_bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (Seen { method, uri, body }, send)
    }

    /// Receives the next request and answers it with `status` and `response`.
    async fn answer(&mut self, status: u16, response: Value) -> Seen {
        let (seen, send) = self.receive().await;
        reply(send, status, &response);
        seen
    }

    /// Receives the next request and answers it as the API server would: a status patch with
    /// the object, a delete with a Status, an apply with what was applied.
    async fn peek_and_answer(&mut self, inv: &Inventory) -> Seen {
        let (seen, send) = self.receive().await;
        eprintln!(
            "DEBUG {} {} {}",
            seen.method,
            seen.uri,
            seen.body.get("reason").unwrap_or(&Value::Null)
        );
        let response = if seen.uri.contains("/status") {
            object_with_status(inv, &seen.body)
        } else if seen.method == "DELETE" {
            json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "metadata": {}})
        } else {
            seen.body.clone()
        };
        reply(send, 200, &response);
        seen
    }
}

fn reply(send: Reply, status: u16, body: &Value) {
    send.send_response(
        Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap(),
    );
}

fn setup(part_bytes: usize) -> (Reconciler, ApiServer, Arc<Metrics>) {
    setup_with(part_bytes, true)
}

/// [`setup`] with or without per-address metrics.
fn setup_with(part_bytes: usize, address_metrics: bool) -> (Reconciler, ApiServer, Arc<Metrics>) {
    setup_full(part_bytes, address_metrics, None)
}

/// [`setup_with`], told the Secret holding the zone keys (or not).
fn setup_full(
    part_bytes: usize,
    address_metrics: bool,
    keys_secret: Option<&str>,
) -> (Reconciler, ApiServer, Arc<Metrics>) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let metrics = Arc::new(Metrics::new());
    let r = Reconciler::new(
        client,
        Settings {
            namespace: NS.into(),
            instance: "kube-gtm".into(),
            zones: vec!["gtm.example.com".into()],
            part_bytes,
            concurrency: 1,
            address_metrics,
            keys_secret: keys_secret.map(str::to_string),
        },
        Reporter {
            controller: FIELD_MANAGER.into(),
            instance: Some("test".into()),
        },
        metrics.clone(),
    );
    (r, ApiServer(handle), metrics)
}

const POOL: &str = "apiVersion: gtm.kubegtm.io/v1alpha1
kind: AddressPool
metadata: {name: web, generation: 1}
spec:
  type: IPv4
  addresses: [{value: 192.0.2.1}]
";

fn domain(name: &str, pool: &str) -> String {
    format!(
        "apiVersion: gtm.kubegtm.io/v1alpha1
kind: GtmAccessDomain
metadata: {{name: {name}, generation: 1}}
spec:
  domain: web.gtm.example.com
  recordType: A
  pools: [{{name: {pool}}}]
"
    )
}

fn inventory(yaml: &str) -> Inventory {
    let l = loaded(yaml);
    assert!(l.invalid.is_empty() && l.problems.is_empty());
    l.inventory
}

fn t0() -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(1_767_225_700).unwrap())
}

/// The object named `name` among `objs`, as JSON.
fn object_json<K: serde::Serialize + kube::ResourceExt>(objs: &[Arc<K>], name: &str) -> Value {
    let obj = objs
        .iter()
        .find(|o| o.name_any() == name)
        .unwrap_or_else(|| panic!("no object {name}"));
    serde_json::to_value(obj.as_ref()).unwrap()
}

/// Gives the object named `name` among `objs` the status `status`.
fn set_status<K>(objs: &mut [Arc<K>], name: &str, status: &Value)
where
    K: serde::Serialize + serde::de::DeserializeOwned + kube::ResourceExt,
{
    for obj in objs.iter_mut().filter(|o| o.name_any() == name) {
        let mut json = serde_json::to_value(obj.as_ref()).unwrap();
        json["status"] = status.clone();
        *obj = Arc::new(serde_json::from_value(json).unwrap());
    }
}

/// Applies the statuses the server received back onto the inventory, as the watch would.
fn apply_statuses(inv: &mut Inventory, seen: &[Seen]) {
    for s in seen.iter().filter(|s| s.uri.contains("/status")) {
        let name = s.body["metadata"]["name"].as_str().unwrap();
        let status = &s.body["status"];
        match s.body["kind"].as_str().unwrap() {
            "AddressPool" => set_status(&mut inv.pools, name, status),
            "GtmAccessDomain" => set_status(&mut inv.domains, name, status),
            "HealthCheckTemplate" => set_status(&mut inv.templates, name, status),
            k => panic!("unexpected kind {k}"),
        }
    }
}

/// The object the API server returns for a status patch.
fn object_with_status(inv: &Inventory, seen_body: &Value) -> Value {
    let name = seen_body["metadata"]["name"].as_str().unwrap();
    let mut obj = match seen_body["kind"].as_str().unwrap() {
        "AddressPool" => object_json(&inv.pools, name),
        "HealthCheckTemplate" => object_json(&inv.templates, name),
        _ => object_json(&inv.domains, name),
    };
    obj["status"] = seen_body["status"].clone();
    obj
}

/// Runs a pass while the server answers `n` requests: config maps by echo, statuses with the
/// object, events with the event.
async fn pass(
    r: &mut Reconciler,
    server: &mut ApiServer,
    inv: &Inventory,
    configmaps: &[Arc<ConfigMap>],
    n: usize,
) -> (Report, Vec<Seen>) {
    pass_with_health(r, server, inv, &BTreeMap::new(), configmaps, n).await
}

/// [`pass`] under a health view.
async fn pass_with_health(
    r: &mut Reconciler,
    server: &mut ApiServer,
    inv: &Inventory,
    tasks: &BTreeMap<String, TaskHealth>,
    configmaps: &[Arc<ConfigMap>],
    n: usize,
) -> (Report, Vec<Seen>) {
    let inv2 = inv.clone();
    let serve = async {
        let mut seen = Vec::new();
        for _ in 0..n {
            let s = server.peek_and_answer(&inv2).await;
            seen.push(s);
        }
        seen
    };
    run_pass(r, inv, &HealthView::of(tasks.clone()), configmaps, serve).await
}

/// Runs a pass over `inv` under `view` at [`t0`] while `serve` plays the API server.
async fn run_pass(
    r: &mut Reconciler,
    inv: &Inventory,
    view: &HealthView,
    configmaps: &[Arc<ConfigMap>],
    serve: impl Future<Output = Vec<Seen>>,
) -> (Report, Vec<Seen>) {
    let now = t0();
    let compilation = r.compile(inv);
    let (report, seen) = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(
            r.reconcile(inv, &compilation, view, configmaps, &now),
            serve
        )
    })
    .await
    .expect("the pass made more requests than expected");
    (report.expect("the pass succeeds"), seen)
}

/// Runs a pass with no server: it must complete without a single request.
async fn silent_pass(r: &mut Reconciler, inv: &Inventory, configmaps: &[Arc<ConfigMap>]) -> Report {
    let compilation = r.compile(inv);
    tokio::time::timeout(
        Duration::from_secs(5),
        r.reconcile(inv, &compilation, &HealthView::default(), configmaps, &t0()),
    )
    .await
    .expect("a pass that writes nothing makes no request")
    .unwrap()
}

fn configmaps_from(seen: &[Seen]) -> Vec<Arc<ConfigMap>> {
    seen.iter()
        .filter(|s| s.uri.contains("/configmaps/") && s.method == "PATCH")
        .map(|s| Arc::new(serde_json::from_value(s.body.clone()).unwrap()))
        .collect()
}

/// The ConfigMaps the watch sees after a pass: `cms` with those the pass wrote replaced.
fn configmaps_after(cms: &[Arc<ConfigMap>], seen: &[Seen]) -> Vec<Arc<ConfigMap>> {
    let written = configmaps_from(seen);
    let mut out: Vec<Arc<ConfigMap>> = cms
        .iter()
        .filter(|c| !written.iter().any(|w| w.metadata.name == c.metadata.name))
        .cloned()
        .collect();
    out.extend(written);
    out
}

#[tokio::test]
async fn resume_lists_the_payload_configmaps_by_label() {
    let (mut r, mut server, _) = setup(1024);
    let (result, seen) = tokio::join!(
        r.resume(),
        server.answer(
            200,
            json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {}, "items": []})
        )
    );
    result.unwrap();
    assert_eq!(seen.method, "GET");
    assert_eq!(
        seen.uri,
        format!(
            "/api/v1/namespaces/{NS}/configmaps?&labelSelector=gtm.kubegtm.io%2Finstance%3Dkube-gtm%2Cgtm.kubegtm.io%2Fpayload"
        )
    );
}

#[tokio::test]
async fn create_then_nothing_changed_then_update_then_delete() {
    let (mut r, mut server, metrics) = setup(64 * 1024);
    let mut inv = inventory(&format!("{POOL}---\n{}", domain("web", "web")));

    // Create: config, health, then the pool's and the domain's status.
    let (report, seen) = pass(&mut r, &mut server, &inv, &[], 4).await;
    assert_eq!(report.payloads, [Payload::Config, Payload::Health]);
    assert_eq!(report.events, 0, "a healthy new object gets no event");
    let [config, health, pool, dom] = &seen[..] else {
        unreachable!()
    };
    assert_eq!(config.method, "PATCH");
    assert_eq!(
        config.uri,
        format!("/api/v1/namespaces/{NS}/configmaps/kube-gtm-config-0{CM_QUERY}")
    );
    assert_eq!(
        config.body["metadata"]["labels"]["gtm.kubegtm.io/payload"],
        "config"
    );
    assert_eq!(
        config.body["metadata"]["labels"]["gtm.kubegtm.io/instance"],
        "kube-gtm"
    );
    assert_eq!(
        config.body["metadata"]["annotations"]["gtm.kubegtm.io/part"],
        "0/1"
    );
    let published = GtmConfig::from_json(
        config.body["data"]["config.json"]
            .as_str()
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(published.generation, 1);
    assert_eq!(published.domains[0].id, "default/web");
    assert_eq!(
        health.uri,
        format!("/api/v1/namespaces/{NS}/configmaps/kube-gtm-health-0{CM_QUERY}")
    );
    assert_eq!(pool.method, "PATCH");
    assert_eq!(
        pool.uri,
        "/apis/gtm.kubegtm.io/v1alpha1/namespaces/default/addresspools/web/status?&force=true&fieldManager=gtm-operator"
    );
    assert_eq!(pool.body["apiVersion"], "gtm.kubegtm.io/v1alpha1");
    assert_eq!(pool.body["kind"], "AddressPool");
    assert_eq!(pool.body["status"]["availableAddresses"], 1);
    assert_eq!(pool.body["status"]["observedGeneration"], 1);
    assert_eq!(
        dom.uri,
        "/apis/gtm.kubegtm.io/v1alpha1/namespaces/default/gtmaccessdomains/web/status?&force=true&fieldManager=gtm-operator"
    );
    assert_eq!(dom.body["status"]["activePools"], json!(["web"]));
    let conds = dom.body["status"]["conditions"].as_array().unwrap();
    assert_eq!(conds[0]["type"], "Accepted");
    assert_eq!(conds[0]["status"], "True");
    assert_eq!(conds[1]["type"], "Ready");
    assert_eq!(conds[1]["reason"], "Published");
    assert!(
        metrics
            .encode()
            .contains("gtm_operator_payload_generation{payload=\"config\"} 1")
    );

    // Nothing changed (the watch brought the statuses back): nothing is written.
    apply_statuses(&mut inv, &seen);
    let cms = configmaps_from(&seen);
    assert_eq!(silent_pass(&mut r, &inv, &cms).await, Report::default());

    // Update: a new address changes the config and the pool's status only.
    let mut updated = inventory(&format!(
        "{}---\n{}",
        POOL.replace(
            "[{value: 192.0.2.1}]",
            "[{value: 192.0.2.1}, {value: 192.0.2.2}]"
        )
        .replace("generation: 1", "generation: 2"),
        domain("web", "web")
    ));
    updated.domains = inv.domains.clone();
    Arc::make_mut(&mut updated.pools[0]).status = inv.pools[0].status.clone();
    let (report, seen) = pass(&mut r, &mut server, &updated, &cms, 2).await;
    assert_eq!(report.payloads, [Payload::Config]);
    assert_eq!(
        seen[0].uri,
        format!("/api/v1/namespaces/{NS}/configmaps/kube-gtm-config-0{CM_QUERY}")
    );
    assert!(
        seen[0].body["data"]["config.json"]
            .as_str()
            .unwrap()
            .contains("192.0.2.2")
    );
    assert!(seen[1].uri.contains("/addresspools/web/status"));
    assert_eq!(seen[1].body["status"]["totalAddresses"], 2);
    assert_eq!(seen[1].body["status"]["observedGeneration"], 2);
    apply_statuses(&mut updated, &seen);

    // Delete the domain: the config drops it, its active selection leaves the health payload,
    // and the pool is no longer referenced.
    let cms = configmaps_from(&seen);
    updated.domains.clear();
    let (report, seen) = pass(&mut r, &mut server, &updated, &cms, 3).await;
    assert_eq!(report.payloads, [Payload::Config, Payload::Health]);
    let config = GtmConfig::from_json(
        seen[0].body["data"]["config.json"]
            .as_str()
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    assert!(config.domains.is_empty() && config.pools.is_empty());
    let health = seen[1].body["data"]["health.json"].as_str().unwrap();
    assert!(!health.contains("default/web"), "{health}");
    assert!(seen[2].uri.contains("/addresspools/web/status"));
    let ready = seen[2].body["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()
        .clone();
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "Unreferenced");
}

#[tokio::test]
async fn conflict_and_dangling_reference_get_conditions_and_warning_events() {
    let (mut r, mut server, _) = setup(64 * 1024);
    let inv = inventory(&format!(
        "{POOL}---\n{}---\n{}---\n{}",
        domain("older", "web"),
        domain("newer", "web"),
        domain("dangling", "nowhere").replace("web.gtm", "other.gtm")
    ));
    // config, health, pool status, then each domain in inventory order; the two rejected
    // ones each add an event.
    let (report, seen) = pass(&mut r, &mut server, &inv, &[], 8).await;
    assert_eq!(report.events, 2);
    let uris: Vec<&str> = seen.iter().map(|s| s.uri.as_str()).collect();
    let events: Vec<&Seen> = seen
        .iter()
        .filter(|s| {
            s.uri
                .starts_with("/apis/events.k8s.io/v1/namespaces/default/events")
        })
        .collect();
    assert_eq!(events.len(), 2, "{uris:#?}");
    for e in &events {
        assert_eq!(e.method, "POST");
        assert_eq!(e.body["type"], "Warning");
        assert_eq!(e.body["reportingController"], "gtm-operator");
    }
    let reasons: Vec<&str> = events
        .iter()
        .map(|e| e.body["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["Conflict", "PoolNotFound"]);
    assert_eq!(events[0].body["regarding"]["name"], "newer");
    assert_eq!(events[1].body["regarding"]["name"], "dangling");
    let newer = seen
        .iter()
        .find(|s| s.uri.contains("/gtmaccessdomains/newer/status"))
        .unwrap();
    let accepted = &newer.body["status"]["conditions"][0];
    assert_eq!(accepted["status"], "False");
    assert_eq!(accepted["reason"], "Conflict");
    assert!(
        accepted["message"]
            .as_str()
            .unwrap()
            .contains("default/older")
    );
    // Only the older domain is published.
    let config = GtmConfig::from_json(
        seen[0].body["data"]["config.json"]
            .as_str()
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(
        config
            .domains
            .iter()
            .map(|d| d.id.as_str())
            .collect::<Vec<_>>(),
        ["default/older"]
    );
}

#[tokio::test]
async fn large_payloads_are_split_and_extra_parts_pruned_when_they_shrink() {
    let addresses: Vec<String> = (1..=200)
        .map(|i| format!("{{value: 10.0.{}.{}}}", i / 250, i % 250 + 1))
        .collect();
    let big_pool = POOL.replace(
        "[{value: 192.0.2.1}]",
        &format!("[{}]", addresses.join(", ")),
    );
    let (mut r, mut server, _) = setup(4096);
    let mut inv = inventory(&format!("{big_pool}---\n{}", domain("web", "web")));
    let config_len = compile(&inv, &["gtm.example.com".to_string()])
        .config
        .to_json()
        .len();
    let parts = config_len.div_ceil(4096);
    assert!(
        parts >= 3,
        "the fixture spans several parts ({config_len} bytes)"
    );
    let (_, seen) = pass(&mut r, &mut server, &inv, &[], parts + 3).await;
    for (i, s) in seen[..parts].iter().enumerate() {
        assert_eq!(
            s.uri,
            format!("/api/v1/namespaces/{NS}/configmaps/kube-gtm-config-{i}{CM_QUERY}")
        );
        assert_eq!(
            s.body["metadata"]["annotations"]["gtm.kubegtm.io/part"],
            format!("{i}/{parts}")
        );
    }
    // The parts reassemble into the config.
    let cms = configmaps_from(&seen);
    let config_parts: Vec<gtm_crds::parts::Part> = cms
        .iter()
        .filter_map(|c| gtm_crds::parts::part_of(c))
        .filter(|(p, _)| *p == Payload::Config)
        .map(|(_, part)| part)
        .collect();
    let text = gtm_crds::parts::assemble(&config_parts).unwrap();
    assert_eq!(
        GtmConfig::from_json(text.as_bytes()).unwrap().pools[0]
            .addresses
            .len(),
        200
    );
    apply_statuses(&mut inv, &seen);

    // Shrink to one address: one part is written, the others deleted.
    let mut small = inventory(&format!("{POOL}---\n{}", domain("web", "web")));
    small.domains = inv.domains.clone();
    Arc::make_mut(&mut small.pools[0]).status = inv.pools[0].status.clone();
    let (_, seen) = pass(&mut r, &mut server, &small, &cms, 1 + (parts - 1) + 1).await;
    assert_eq!(seen[0].method, "PATCH");
    for (i, s) in seen[1..parts].iter().enumerate() {
        assert_eq!(s.method, "DELETE");
        assert_eq!(
            s.uri,
            format!(
                "/api/v1/namespaces/{NS}/configmaps/kube-gtm-config-{}?",
                i + 1
            )
        );
    }
    assert!(seen[parts].uri.contains("/addresspools/web/status"));
}

#[tokio::test]
async fn an_edited_or_deleted_payload_configmap_is_restored() {
    let (mut r, mut server, _) = setup(64 * 1024);
    let mut inv = inventory(&format!("{POOL}---\n{}", domain("web", "web")));
    let (_, seen) = pass(&mut r, &mut server, &inv, &[], 4).await;
    apply_statuses(&mut inv, &seen);
    let written = configmaps_from(&seen);
    // Someone deletes the health ConfigMap: the same payload is written again.
    let mut cms = written.clone();
    cms.retain(|c| c.metadata.name.as_deref() != Some("kube-gtm-health-0"));
    let (report, seen) = pass(&mut r, &mut server, &inv, &cms, 1).await;
    assert_eq!(report.payloads, [Payload::Health]);
    assert_eq!(
        seen[0].uri,
        format!("/api/v1/namespaces/{NS}/configmaps/kube-gtm-health-0{CM_QUERY}")
    );
    // Someone edits the config's data and leaves the annotations: written again too.
    let mut cms = written.clone();
    let config = cms
        .iter_mut()
        .find(|c| c.metadata.name.as_deref() == Some("kube-gtm-config-0"))
        .unwrap();
    let mut edited = config.as_ref().clone();
    for value in edited.data.as_mut().unwrap().values_mut() {
        *value = "tampered".into();
    }
    *config = Arc::new(edited);
    let (report, seen) = pass(&mut r, &mut server, &inv, &cms, 1).await;
    assert_eq!(report.payloads, [Payload::Config]);
    assert_eq!(
        seen[0].uri,
        format!("/api/v1/namespaces/{NS}/configmaps/kube-gtm-config-0{CM_QUERY}")
    );
    // Untouched ConfigMaps write nothing.
    silent_pass(&mut r, &inv, &written).await;
}

/// A template, a checked primary pool, an unchecked standby, and a sequential domain.
const FAILOVER: &str = "apiVersion: gtm.kubegtm.io/v1alpha1
kind: HealthCheckTemplate
metadata: {name: tcp, generation: 1}
spec: {protocol: TCP}
---
apiVersion: gtm.kubegtm.io/v1alpha1
kind: AddressPool
metadata: {name: primary, generation: 1}
spec:
  type: IPv4
  healthChecks: [{template: tcp, port: 80}]
  addresses: [{value: 192.0.2.1}]
---
apiVersion: gtm.kubegtm.io/v1alpha1
kind: AddressPool
metadata: {name: standby, generation: 1}
spec:
  type: IPv4
  addresses: [{value: 192.0.2.9}]
---
apiVersion: gtm.kubegtm.io/v1alpha1
kind: GtmAccessDomain
metadata: {name: web, generation: 1}
spec:
  domain: web.gtm.example.com
  recordType: A
  pools: [{name: primary, order: 1}, {name: standby, order: 2}]
";

#[tokio::test]
async fn a_failing_address_writes_health_status_and_alert_events() {
    let (mut r, mut server, metrics) = setup(64 * 1024);
    let mut inv = inventory(FAILOVER);
    let task = "default/tcp@192.0.2.1#80".to_string();
    let health = |state| BTreeMap::from([(task.clone(), TaskHealth::new(state, None))]);

    let (_, seen) =
        pass_with_health(&mut r, &mut server, &inv, &health(HealthState::Up), &[], 6).await;
    let health_json = seen[1].body["data"]["health.json"].as_str().unwrap();
    assert!(
        health_json.contains(r#""default/tcp@192.0.2.1#80":"Up""#),
        "{health_json}"
    );
    assert!(seen[2].uri.contains("/healthchecktemplates/tcp/status"));
    assert_eq!(seen[2].body["status"]["usedBy"], 1);
    apply_statuses(&mut inv, &seen);
    let cms = configmaps_from(&seen);

    // The primary's only address goes down: health, pool status and two events, domain
    // status and a failover event.
    let (report, seen) = pass_with_health(
        &mut r,
        &mut server,
        &inv,
        &health(HealthState::Down),
        &cms,
        6,
    )
    .await;
    assert_eq!(report.payloads, [Payload::Health]);
    assert_eq!(report.events, 3);
    let health_json = seen[0].body["data"]["health.json"].as_str().unwrap();
    assert!(
        health_json.contains(r#""default/web":"default/standby""#),
        "{health_json}"
    );
    assert!(seen[1].uri.contains("/addresspools/primary/status"));
    assert_eq!(seen[1].body["status"]["addresses"][0]["available"], false);
    assert_eq!(
        seen[1].body["status"]["addresses"][0]["tasks"][0]["state"],
        "Down"
    );
    let reasons: Vec<&str> = seen
        .iter()
        .filter(|s| s.uri.contains("/events"))
        .map(|s| s.body["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["PoolUnavailable", "AddressDown", "Failover"]);
    let domain = seen
        .iter()
        .find(|s| s.uri.contains("/gtmaccessdomains/web/status"))
        .unwrap();
    assert_eq!(domain.body["status"]["activePools"], json!(["standby"]));
    assert_eq!(
        domain.body["status"]["lastFailoverTime"],
        json!("2026-01-01T00:01:40Z")
    );
    // Both statuses record the transitions in their history, for after the events expire.
    assert_eq!(
        seen[1].body["status"]["history"],
        json!([
            {"time": "2026-01-01T00:01:40Z", "reason": "PoolUnavailable", "from": "Available",
             "to": "Unavailable", "message": "0 of 1 enabled addresses available (judgement AnyOk)"},
            {"time": "2026-01-01T00:01:40Z", "reason": "AddressDown", "from": "Available",
             "to": "Unavailable", "message": "192.0.2.1"},
        ])
    );
    assert_eq!(
        domain.body["status"]["history"],
        json!([{"time": "2026-01-01T00:01:40Z", "reason": "Failover", "from": "primary",
                "to": "standby", "message": "answering from standby"}])
    );
    // The watch cache has not caught up with these writes yet: a later pass starts from what
    // was written, so it neither rewrites the history with a new time nor writes at all.
    let later = Time(k8s_openapi::jiff::Timestamp::from_second(1_767_225_800).unwrap());
    let compilation = r.compile(&inv);
    let after = configmaps_after(&cms, &seen);
    let report = tokio::time::timeout(
        Duration::from_secs(5),
        r.reconcile(
            &inv,
            &compilation,
            &HealthView::of(health(HealthState::Down)),
            &after,
            &later,
        ),
    )
    .await
    .expect("a pass that writes nothing makes no request")
    .unwrap();
    assert_eq!(report, Report::default());
    let text = metrics.encode();
    assert!(
        text.contains(r#"gtm_operator_failovers_total{domain="default/web"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"gtm_operator_address_up{pool="default/primary",address="192.0.2.1"} 0"#)
    );
    assert!(text.contains(r#"gtm_operator_pool_available{pool="default/primary"} 0"#));

    // And back: failback and AddressUp, PoolAvailable.
    apply_statuses(&mut inv, &seen);
    let (report, seen) =
        pass_with_health(&mut r, &mut server, &inv, &health(HealthState::Up), &cms, 6).await;
    assert_eq!(report.events, 3);
    let reasons: Vec<&str> = seen
        .iter()
        .filter(|s| s.uri.contains("/events"))
        .map(|s| s.body["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["PoolAvailable", "AddressUp", "Failback"]);
    let history = |name: &str| -> Vec<String> {
        let status = seen
            .iter()
            .find(|s| s.uri.contains(&format!("/{name}/status")))
            .unwrap();
        status.body["status"]["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["reason"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        history("addresspools/primary"),
        [
            "PoolAvailable",
            "AddressUp",
            "PoolUnavailable",
            "AddressDown"
        ]
    );
    assert_eq!(history("gtmaccessdomains/web"), ["Failback", "Failover"]);
}

#[tokio::test]
async fn without_address_metrics_only_the_pool_series_are_exported() {
    let (mut r, mut server, metrics) = setup_with(64 * 1024, false);
    let inv = inventory(FAILOVER);
    let health = BTreeMap::from([(
        "default/tcp@192.0.2.1#80".to_string(),
        TaskHealth::new(HealthState::Up, None),
    )]);
    pass_with_health(&mut r, &mut server, &inv, &health, &[], 6).await;
    let text = metrics.encode();
    assert!(!text.contains("gtm_operator_address_up{"), "{text}");
    assert!(
        text.contains(r#"gtm_operator_pool_available{pool="default/primary"} 1"#),
        "{text}"
    );
}

/// 20 000 addresses (80 pools of 250, one domain each), built as typed objects.
fn inventory_of_20000_addresses() -> Inventory {
    let mut inv = Inventory::default();
    for p in 0..80 {
        let addresses: Vec<Value> = (0..250)
            .map(|a| json!({"value": format!("10.{}.{}.{}", p, a / 200, a % 200 + 1)}))
            .collect();
        inv.pools.push(Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "gtm.kubegtm.io/v1alpha1",
                "kind": "AddressPool",
                "metadata": {"name": format!("pool-{p}"), "namespace": "default"},
                "spec": {"type": "IPv4", "policy": "Weighted", "addresses": addresses},
            }))
            .unwrap(),
        ));
        inv.domains.push(Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "gtm.kubegtm.io/v1alpha1",
                "kind": "GtmAccessDomain",
                "metadata": {"name": format!("d-{p}"), "namespace": "default"},
                "spec": {
                    "domain": format!("d{p}.gtm.example.com"),
                    "recordType": "A",
                    "pools": [{"name": format!("pool-{p}")}],
                },
            }))
            .unwrap(),
        ));
    }
    inv
}

#[tokio::test]
async fn a_config_of_20000_addresses_is_split_into_configmaps_that_reassemble() {
    let (r, mut server, _) = setup(gtm_crds::parts::MAX_PART_BYTES);
    let inv = inventory_of_20000_addresses();
    let config = r.compile(&inv).config;
    assert_eq!(
        config
            .pools
            .iter()
            .map(|p| p.addresses.len())
            .sum::<usize>(),
        20_000
    );
    let text = String::from_utf8(config.to_json()).unwrap();
    assert!(
        text.len() > 1024 * 1024,
        "{} bytes fit one ConfigMap",
        text.len()
    );
    let parts = text.len().div_ceil(gtm_crds::parts::MAX_PART_BYTES);

    let mut maps = super::super::configmaps::PayloadConfigMaps::new(
        Api::namespaced(r.client.clone(), NS),
        NS,
        "kube-gtm",
        gtm_crds::parts::MAX_PART_BYTES,
    );
    let serve = async {
        let mut seen = Vec::new();
        for _ in 0..parts {
            seen.push(server.peek_and_answer(&inv).await);
        }
        seen
    };
    let (written, seen) = tokio::join!(maps.write(Payload::Config, &text), serve);
    assert_eq!(written.unwrap(), parts);
    let mut received = Vec::new();
    for s in &seen {
        assert_eq!(s.method, "PATCH");
        let cm: ConfigMap = serde_json::from_value(s.body.clone()).unwrap();
        // The API server caps the data of a ConfigMap at 1 MiB.
        let data: usize = cm
            .data
            .iter()
            .flatten()
            .map(|(k, v)| k.len() + v.len())
            .sum();
        assert!(data < 1024 * 1024, "a part holds {data} bytes");
        received.push(gtm_crds::parts::part_of(&cm).unwrap().1);
    }
    received.reverse();
    let whole = gtm_crds::parts::assemble(&received).unwrap();
    assert_eq!(GtmConfig::from_json(whole.as_bytes()).unwrap(), config);
}

#[tokio::test]
async fn a_failed_payload_write_is_retried_on_the_next_pass() {
    let (mut r, mut server, metrics) = setup(64 * 1024);
    let inv = inventory(&format!("{POOL}---\n{}", domain("web", "web")));
    let compilation = r.compile(&inv);
    let now = t0();
    let failure = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "etcd is down", "reason": "InternalError", "code": 500
    });
    let view = HealthView::default();
    let (result, seen) = tokio::join!(
        r.reconcile(&inv, &compilation, &view, &[], &now),
        server.answer(500, failure)
    );
    assert!(result.is_err());
    assert!(seen.uri.contains("/configmaps/kube-gtm-config-0"));
    assert!(
        metrics
            .encode()
            .contains(r#"gtm_operator_reconciles_total{kind="config",result="error"} 1"#)
    );

    // Nothing changed, but the config never landed: it is written again.
    let (report, seen) = pass(&mut r, &mut server, &inv, &[], 4).await;
    assert_eq!(report.payloads, [Payload::Config, Payload::Health]);
    assert!(seen[0].uri.contains("/configmaps/kube-gtm-config-0"));
}

#[tokio::test]
async fn probe_times_alone_and_a_stale_watch_cache_write_nothing() {
    let (mut r, mut server, _) = setup(64 * 1024);
    let inv = inventory(FAILOVER);
    let task = "default/tcp@192.0.2.1#80".to_string();
    let health = |state, probed: u64| {
        let mut h = TaskHealth::new(state, None);
        h.last_probe = Some(std::time::UNIX_EPOCH + Duration::from_secs(1_767_225_600 + probed));
        h.latency = Some(Duration::from_millis(3));
        BTreeMap::from([(task.clone(), h)])
    };
    let (_, seen) = pass_with_health(
        &mut r,
        &mut server,
        &inv,
        &health(HealthState::Up, 1),
        &[],
        6,
    )
    .await;
    assert_eq!(
        seen[3].body["status"]["addresses"][0]["tasks"][0]["lastProbeTime"],
        "2026-01-01T00:00:01Z"
    );
    let cms = configmaps_from(&seen);

    // The watch has not delivered the statuses yet (the inventory still has none), and only
    // the probe time moved: nothing is written, no event is repeated.
    let compilation = r.compile(&inv);
    let report = tokio::time::timeout(
        Duration::from_secs(5),
        r.reconcile(
            &inv,
            &compilation,
            &HealthView::of(health(HealthState::Up, 2)),
            &cms,
            &t0(),
        ),
    )
    .await
    .expect("no request")
    .unwrap();
    assert_eq!(report, Report::default());

    // A real change is written at once, against what was written last.
    let (report, _) = pass_with_health(
        &mut r,
        &mut server,
        &inv,
        &health(HealthState::Down, 3),
        &cms,
        6,
    )
    .await;
    assert_eq!(
        report.events, 3,
        "PoolUnavailable, AddressDown, Failover, once each"
    );
}

/// The ConfigMaps `cms` with the config's first one annotated to confirm a drop with `token`.
fn confirming(cms: &[Arc<ConfigMap>], token: &str) -> Vec<Arc<ConfigMap>> {
    cms.iter()
        .map(|c| {
            let mut c = c.as_ref().clone();
            if c.metadata.name.as_deref() == Some("kube-gtm-config-0") {
                c.metadata
                    .annotations
                    .get_or_insert_default()
                    .insert(CONFIRM_ANNOTATION.into(), token.into());
            }
            Arc::new(c)
        })
        .collect()
}

/// Asserts `seen` is an event about the drop guard on the config ConfigMap; returns its note.
fn hold_event_note(seen: &Seen, type_: &str, reason: &str) -> String {
    assert_eq!(seen.method, "POST");
    assert_eq!(
        seen.uri,
        format!("/apis/events.k8s.io/v1/namespaces/{NS}/events?")
    );
    assert_eq!(seen.body["type"], type_);
    assert_eq!(seen.body["reason"], reason);
    assert_eq!(seen.body["action"], "Publish");
    assert_eq!(
        seen.body["regarding"],
        json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "kube-gtm-config-0", "namespace": NS})
    );
    seen.body["note"].as_str().unwrap().to_string()
}

/// The pool and one domain published, with the guard on; the watch has brought the statuses
/// and ConfigMaps back.
async fn published_with_guard(
    r: &mut Reconciler,
    server: &mut ApiServer,
) -> (Inventory, Vec<Arc<ConfigMap>>) {
    r.set_drop_guard(DropGuardSettings::default());
    let mut inv = inventory(&format!("{POOL}---\n{}", domain("web", "web")));
    let (_, seen) = pass(r, server, &inv, &[], 4).await;
    apply_statuses(&mut inv, &seen);
    (inv, configmaps_from(&seen))
}

#[tokio::test(start_paused = true)]
async fn a_held_drop_gets_one_warning_event_and_its_confirmation_a_normal_one() {
    let (mut r, mut server, metrics) = setup(64 * 1024);
    let (mut inv, mut cms) = published_with_guard(&mut r, &mut server).await;

    // Every domain deleted: held, reported once on the config ConfigMap with how to confirm;
    // the pool's status says it is no longer referenced.
    inv.domains.clear();
    let (report, seen) = pass(&mut r, &mut server, &inv, &cms, 2).await;
    assert_eq!((report.payloads, report.events), (vec![], 1));
    let note = hold_event_note(&seen[0], "Warning", "PublishHeld");
    let token = note
        .split("confirmed with token ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap()
        .to_string();
    assert_eq!(
        note,
        format!(
            "publishing held: the change drops 1 of 1 published access domains (default/web); the last published config keeps serving for 300s more unless confirmed with token {token} (kubectl annotate configmap -n {NS} kube-gtm-config-0 gtm.kubegtm.io/confirm-drop={token} --overwrite)"
        )
    );
    assert!(seen[1].uri.contains("/addresspools/web/status"));
    apply_statuses(&mut inv, &seen);
    cms = configmaps_after(&cms, &seen);
    assert!(metrics.encode().contains("gtm_operator_publish_held 1"));

    // A minute later, still held: nothing is written and the hold is not reported again.
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(silent_pass(&mut r, &inv, &cms).await, Report::default());

    // Confirmed: the empty config is published and the release reported.
    let (report, seen) = pass(&mut r, &mut server, &inv, &confirming(&cms, &token), 3).await;
    assert_eq!(
        (report.payloads, report.events),
        (vec![Payload::Config, Payload::Health], 1)
    );
    assert_eq!(
        seen[0].uri,
        format!("/api/v1/namespaces/{NS}/configmaps/kube-gtm-config-0{CM_QUERY}")
    );
    let config = GtmConfig::from_json(
        seen[0].body["data"]["config.json"]
            .as_str()
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    assert!(config.domains.is_empty());
    assert_eq!(
        hold_event_note(&seen[2], "Normal", "PublishReleased"),
        format!(
            "publishing the held change that drops 1 of 1 published access domains: confirmed with token {token}"
        )
    );
    assert!(metrics.encode().contains("gtm_operator_publish_held 0"));
}

#[tokio::test(start_paused = true)]
async fn a_withdrawn_hold_and_an_expired_one_are_reported() {
    let (mut r, mut server, _) = setup(64 * 1024);
    let (mut inv, mut cms) = published_with_guard(&mut r, &mut server).await;
    let domains = inv.domains.clone();
    inv.domains.clear();
    let (_, seen) = pass(&mut r, &mut server, &inv, &cms, 2).await;
    hold_event_note(&seen[0], "Warning", "PublishHeld");
    apply_statuses(&mut inv, &seen);
    cms = configmaps_after(&cms, &seen);

    // The domain comes back: the hold is lifted, nothing was dropped.
    inv.domains = domains;
    let (report, seen) = pass(&mut r, &mut server, &inv, &cms, 2).await;
    assert_eq!(report.payloads, []);
    assert_eq!(
        hold_event_note(&seen[0], "Normal", "PublishHoldWithdrawn"),
        "hold lifted: the held change that drops 1 of 1 published access domains is no longer proposed; what is published now drops no more than the allowed share"
    );
    assert!(seen[1].uri.contains("/addresspools/web/status"));
    apply_statuses(&mut inv, &seen);
    cms = configmaps_after(&cms, &seen);

    // Deleted again: a new hold, reported again; once it has persisted 5 minutes it is
    // published.
    inv.domains.clear();
    let (_, seen) = pass(&mut r, &mut server, &inv, &cms, 2).await;
    hold_event_note(&seen[0], "Warning", "PublishHeld");
    apply_statuses(&mut inv, &seen);
    cms = configmaps_after(&cms, &seen);
    tokio::time::advance(Duration::from_secs(300)).await;
    let (report, seen) = pass(&mut r, &mut server, &inv, &cms, 3).await;
    assert_eq!(report.payloads, [Payload::Config, Payload::Health]);
    assert_eq!(
        hold_event_note(&seen[2], "Normal", "PublishReleased"),
        "publishing the held change that drops 1 of 1 published access domains: it persisted for the hold time"
    );
}

#[tokio::test(start_paused = true)]
async fn a_held_drop_is_due_when_its_hold_time_has_passed_since_it_was_first_seen() {
    let (mut r, mut server, _) = setup(64 * 1024);
    let (mut inv, mut cms) = published_with_guard(&mut r, &mut server).await;
    assert_eq!(r.hold_until(), None);
    inv.domains.clear();
    let held_at = tokio::time::Instant::now();
    let (_, seen) = pass(&mut r, &mut server, &inv, &cms, 2).await;
    apply_statuses(&mut inv, &seen);
    cms = configmaps_after(&cms, &seen);
    let due = held_at + Duration::from_secs(300);
    assert_eq!(r.hold_until(), Some(due));

    // Passes before then keep holding and do not move the deadline.
    tokio::time::advance(Duration::from_secs(299)).await;
    assert_eq!(silent_pass(&mut r, &inv, &cms).await, Report::default());
    assert_eq!(r.hold_until(), Some(due));

    // A pass at the deadline publishes.
    tokio::time::advance(due - tokio::time::Instant::now()).await;
    let (report, _) = pass(&mut r, &mut server, &inv, &cms, 3).await;
    assert_eq!(report.payloads, [Payload::Config, Payload::Health]);
    assert_eq!(r.hold_until(), None);
}

#[tokio::test]
async fn while_a_drop_is_held_the_health_of_the_held_config_stays_published() {
    let (mut r, mut server, _) = setup(64 * 1024);
    r.set_drop_guard(DropGuardSettings::default());
    let mut inv = inventory(FAILOVER);
    let task = "default/tcp@192.0.2.1#80".to_string();
    let down = BTreeMap::from([(task.clone(), TaskHealth::new(HealthState::Down, None))]);
    // The primary is down: the domain answers from the standby (four statuses, two events).
    let (_, seen) = pass_with_health(&mut r, &mut server, &inv, &down, &[], 8).await;
    apply_statuses(&mut inv, &seen);
    let cms = configmaps_after(&[], &seen);
    let published = r.publisher.last_health().unwrap().clone();
    assert_eq!(published.tasks[&task], HealthState::Down);
    assert_eq!(published.active.domains["default/web"], "default/standby");

    // Every object deleted: the prober drops their tasks, but the held config still answers
    // with the primary's address; its verdict and the active standby stay published, or the
    // DNS pods would take the task as Unknown (healthy) and go back to the dead primary.
    let (report, seen) = pass_with_health(
        &mut r,
        &mut server,
        &Inventory::default(),
        &BTreeMap::new(),
        &cms,
        1,
    )
    .await;
    assert_eq!((report.payloads, report.events), (vec![], 1));
    hold_event_note(&seen[0], "Warning", "PublishHeld");
    assert_eq!(r.publisher.last_health(), Some(&published));
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_resumes_holds_a_drop_anew() {
    let (mut r, mut server, _) = setup(64 * 1024);
    let (mut inv, cms) = published_with_guard(&mut r, &mut server).await;
    inv.domains.clear();
    let (_, seen) = pass(&mut r, &mut server, &inv, &cms, 2).await;
    hold_event_note(&seen[0], "Warning", "PublishHeld");
    apply_statuses(&mut inv, &seen);

    // Leadership lost and regained 200 s later: the published payloads are read back, and the
    // hold starts over (another leader may have published meanwhile), reported again.
    tokio::time::advance(Duration::from_secs(200)).await;
    let items: Vec<Value> = cms
        .iter()
        .map(|c| serde_json::to_value(c.as_ref()).unwrap())
        .collect();
    let (resumed, _) = tokio::join!(
        r.resume(),
        server.answer(
            200,
            json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {}, "items": items})
        )
    );
    resumed.unwrap();
    assert_eq!(r.hold_until(), None);
    let (_, seen) = pass(&mut r, &mut server, &inv, &cms, 1).await;
    assert!(
        hold_event_note(&seen[0], "Warning", "PublishHeld").contains("for 300s more"),
        "{:?}",
        seen[0].body["note"]
    );
    assert_eq!(
        r.hold_until(),
        Some(tokio::time::Instant::now() + Duration::from_secs(300))
    );
}

#[tokio::test]
async fn a_pass_is_a_reconcile_span_and_each_status_write_a_status_write_span() {
    let (captured, _capture) = crate::spans::capture();
    let (mut r, mut server, _) = setup(64 * 1024);
    let inv = inventory(&format!("{POOL}---\n{}", domain("web", "web")));
    pass(&mut r, &mut server, &inv, &[], 4).await;
    let closed = captured.closed_spans();
    let text = closed.join("\n");
    assert!(
        closed
            .iter()
            .any(|l| l.contains("reconcile{objects=2 tasks=0 domains=1}")),
        "{text}"
    );
    for kind in ["AddressPool", "GtmAccessDomain"] {
        let span = format!("status_write{{kind=\"{kind}\" name=web generation=1}}");
        assert!(
            closed.iter().any(|l| l.contains(&span)),
            "no {span}:\n{text}"
        );
    }
}

/// A zone signed with algorithm 13.
const SIGNED_ZONE: &str = "apiVersion: gtm.kubegtm.io/v1alpha1
kind: GtmZone
metadata: {name: signed, generation: 1, uid: z1}
spec:
  zone: gtm.example.com
  dnssec: {algorithm: ECDSAP256SHA256}
";

const ZONE_STATUS_URI: &str = "/apis/gtm.kubegtm.io/v1alpha1/namespaces/default/gtmzones/signed/status?&force=true&fieldManager=gtm-operator";
const SECRET_URI: &str = "/api/v1/namespaces/gtm-system/secrets/gtm-dnssec";

/// Runs a pass over `inv` while the server answers: the keys Secret with `secret` (status
/// and body), a zone status patch with the zone and that status, anything else by echo.
/// Returns what the server saw.
async fn zone_pass(
    r: &mut Reconciler,
    server: &mut ApiServer,
    inv: &Inventory,
    configmaps: &[Arc<ConfigMap>],
    secret: (u16, Value),
    n: usize,
) -> (Report, Vec<Seen>) {
    let zone = object_json(&inv.gtm_zones, "signed");
    let serve = async {
        let mut seen = Vec::new();
        for _ in 0..n {
            let (s, send) = server.receive().await;
            let response = if s.uri == SECRET_URI {
                reply(send, secret.0, &secret.1);
                seen.push(s);
                continue;
            } else if s.uri.contains("/status") {
                let mut obj = zone.clone();
                obj["status"] = s.body["status"].clone();
                obj
            } else {
                s.body.clone()
            };
            reply(send, 200, &response);
            seen.push(s);
        }
        seen
    };
    run_pass(r, inv, &HealthView::default(), configmaps, serve).await
}

fn condition<'v>(status: &'v Value, type_: &str) -> &'v Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap_or_else(|| panic!("no {type_} in {status}"))
}

#[tokio::test]
async fn a_signed_zone_gets_its_ds_from_the_keys_secret_and_a_warning_without_it() {
    use crate::zone_keys::tests::{P256_DS, P256_PEM};
    let (mut r, mut server, _) = setup_full(64 * 1024, true, Some("gtm-dnssec"));
    let mut inv = inventory(SIGNED_ZONE);
    let not_found = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "secrets \"gtm-dnssec\" not found", "reason": "NotFound", "code": 404
    });

    // No Secret yet: config, health, the Secret read, the zone's status, a warning event.
    let (report, seen) = zone_pass(&mut r, &mut server, &inv, &[], (404, not_found), 5).await;
    let uris: Vec<(&str, &str)> = seen
        .iter()
        .map(|s| (s.method.as_str(), s.uri.as_str()))
        .collect();
    assert_eq!(
        uris[2..],
        [
            ("GET", SECRET_URI),
            ("PATCH", ZONE_STATUS_URI),
            ("POST", "/apis/events.k8s.io/v1/namespaces/default/events?")
        ]
    );
    assert_eq!(report.events, 1);
    let status = &seen[3].body["status"];
    assert_eq!(seen[3].body["kind"], "GtmZone");
    assert_eq!(status.get("dnssec"), None);
    let key = condition(status, "DnssecKeyReady");
    assert_eq!(
        (&key["status"], &key["reason"]),
        (&json!("False"), &json!("KeyNotFound"))
    );
    assert!(
        key["message"]
            .as_str()
            .unwrap()
            .starts_with("Secret gtm-system/gtm-dnssec does not exist: make the zone's key"),
        "{key}"
    );
    let ready = condition(status, "Ready");
    assert_eq!(
        (&ready["status"], &ready["reason"]),
        (&json!("False"), &json!("DnssecKeyNotReady"))
    );
    let event = &seen[4].body;
    assert_eq!(
        (&event["type"], &event["reason"]),
        (&json!("Warning"), &json!("KeyNotFound"))
    );
    assert_eq!(event["regarding"]["name"], "signed");
    assert_eq!(event["note"], key["message"]);

    // The Secret appears: the DS in status, the key condition and Ready true, a normal event.
    apply_zone_status(&mut inv, &seen[3]);
    let cms = configmaps_from(&seen);
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "gtm-dnssec", "namespace": NS},
        "data": {"gtm.example.com.key": data_encoding_base64(P256_PEM.as_bytes())}
    });
    let (report, seen) = zone_pass(&mut r, &mut server, &inv, &cms, (200, secret.clone()), 3).await;
    assert_eq!(
        (seen[0].method.as_str(), seen[0].uri.as_str()),
        ("GET", SECRET_URI)
    );
    assert_eq!(seen[1].uri, ZONE_STATUS_URI);
    let status = &seen[1].body["status"];
    assert_eq!(
        status["dnssec"],
        json!({
            "keyTag": 58220,
            "algorithm": 13,
            "digestType": 2,
            "digest": "FEE52E5B84EFDC57D29CC033AED157AE9A5F8E5F9BD6181ED9BB0658CB9971A3",
            "ds": P256_DS,
            "dnskey": "gtm.example.com. 3600 IN DNSKEY 257 3 13 Lg6kxou4jfqeodFMNe8TGxw2Rs2APC8ajmGcd1+jng6LVPwYLq9lBnIZhmEnfE2iD3ipf533sA5Zp7wTTkILQQ=="
        })
    );
    assert_eq!(condition(status, "DnssecKeyReady")["reason"], "KeyLoaded");
    assert_eq!(condition(status, "Ready")["status"], "True");
    assert_eq!(report.events, 1);
    assert_eq!(seen[2].body["reason"], "DnssecKeyLoaded");
    assert_eq!(seen[2].body["type"], "Normal");
    // Nothing of the private key was sent anywhere but read.
    for s in &seen[1..] {
        let body = s.body.to_string();
        for line in P256_PEM.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!body.contains(line), "{body}");
        }
    }

    // Unchanged: the Secret is read again, nothing is written.
    apply_zone_status(&mut inv, &seen[1]);
    let (report, seen) = zone_pass(&mut r, &mut server, &inv, &cms, (200, secret), 1).await;
    assert_eq!(seen[0].uri, SECRET_URI);
    assert_eq!(report, Report::default());
}

#[tokio::test]
async fn without_a_keys_secret_a_signed_zone_says_so_and_nothing_is_read() {
    let (mut r, mut server, _) = setup(64 * 1024);
    let inv = inventory(SIGNED_ZONE);
    let (_, seen) = zone_pass(&mut r, &mut server, &inv, &[], (500, Value::Null), 4).await;
    assert!(seen.iter().all(|s| !s.uri.contains("/secrets/")));
    let status = &seen[2].body["status"];
    assert_eq!(
        condition(status, "DnssecKeyReady")["reason"],
        "KeySourceNotSet"
    );
    assert_eq!(
        condition(status, "Ready")["status"],
        "True",
        "the DNS pods may have the key"
    );
    assert_eq!(seen[3].body["reason"], "KeySourceNotSet");
}

/// Gives the inventory's zone the status a patch wrote, as the watch would.
fn apply_zone_status(inv: &mut Inventory, patch: &Seen) {
    set_status(&mut inv.gtm_zones, "signed", &patch.body["status"]);
}

/// Standard base64, as Secret data is encoded.
fn data_encoding_base64(bytes: &[u8]) -> String {
    serde_json::to_value(k8s_openapi::ByteString(bytes.to_vec()))
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}
