//! Cluster mode against a real kube-apiserver (etcd and kube-apiserver as local processes, RBAC
//! enforced), run by `scripts/apiserver-suite.sh` in `make test`. The chart is installed with
//! helm; `gtm-operator run` and `gtm-dnspod` run as processes with the environment of the chart's
//! Deployments and tokens of the chart's ServiceAccounts; health checks probe real HTTP
//! listeners on 127.0.x.y; DNS is queried over real sockets. Without the suite's control plane
//! each test prints one line and passes.
//!
//! What only the kind suite (`make e2e`) proves: pods, images, Services and node ports, kubelet
//! probes, NetworkPolicy, scheduling.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use e2e::apiserver::{Component, ControlPlane, GtmProcess, PodSpec, repo_root};
use e2e::backend::{Backend, serve};
use e2e::cluster::{apply, condition, events_for, get, gtm_resource, samples};
use e2e::dig::dig;
use e2e::dns::{Answer, Transport, query};
use e2e::ds::ds_of_dnskey;
use e2e::manifests::{domain_of, load_example, parse_documents, rewrite};
use e2e::wait::{Check, Deadline, wait_for};
use gtm_crds::manifest::{ManifestError, ManifestValidator, parse_yaml_stream};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// Long enough for any wait here; waits end as soon as the condition holds.
const DEADLINE: Deadline = Deadline {
    timeout: Duration::from_secs(90),
    interval: Duration::from_millis(100),
};

/// The zone every release serves.
const ZONE: &str = "gtm.example.com";

// ---------------------------------------------------------------------------------------------
// 1. CRDs
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn crds_are_served_explained_and_listed() {
    let Some(cp) = ControlPlane::get_or_skip("crds_are_served_explained_and_listed", "main").await
    else {
        return;
    };
    cp.apply_crds().await.unwrap();
    // `kubectl explain` shows the doc comments of the Rust types (from the served schema).
    let crds =
        std::fs::read_to_string(repo_root().join("charts/kube-gtm/files/crds.yaml")).unwrap();
    let schema: Vec<Value> = parse_documents(&crds).unwrap();
    let domain_doc = schema[0]
        .pointer(
            "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/domain/description",
        )
        .and_then(Value::as_str)
        .unwrap()
        .to_owned();
    // The API server publishes a new CRD's OpenAPI schema, which `kubectl explain` reads, a
    // moment after the CRD is established.
    let explained = wait_for("kubectl explain to know the CRDs", DEADLINE, || async {
        anyhow::Ok(
            match cp
                .kubectl_result(&["explain", "gtmaccessdomain.spec.domain"])
                .await?
            {
                Ok(text) => Check::Ready(text),
                Err(e) => Check::Pending(e),
            },
        )
    })
    .await
    .unwrap();
    let first_words: String = domain_doc
        .split_whitespace()
        .take(6)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        explained
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .contains(&first_words),
        "kubectl explain shows {explained:?}, expected the doc {domain_doc:?}"
    );
    for kind in [
        "addresspool.spec.addresses",
        "healthchecktemplate.spec.http",
        "gtmzone.spec.records",
    ] {
        let out = cp.kubectl(&["explain", kind]).await.unwrap();
        assert!(
            out.contains("DESCRIPTION") && out.contains("FIELD"),
            "{kind}: {out}"
        );
    }

    // `kubectl get gtm` lists the kinds with their printer columns.
    let ns = namespace(&cp, "gtm-crds").await.unwrap();
    let mut objects = load_example("health-checks.yaml").unwrap();
    objects.extend(load_example("sequential-preemptive.yaml").unwrap());
    objects.extend(load_example("zone.yaml").unwrap());
    rewrite(&mut objects, &loopback_map(101), &ns).unwrap();
    apply(&cp.client, &ns, &objects).await.unwrap();
    let listed = cp.kubectl(&["get", "gtm", "-n", &ns]).await.unwrap();
    for kind in [
        "gtmaccessdomain.gtm.kubegtm.io/app",
        "addresspool.gtm.kubegtm.io/app-eu-west",
        "healthchecktemplate.gtm.kubegtm.io/http-healthz",
        "gtmzone.gtm.kubegtm.io/gtm-example-com",
    ] {
        assert!(
            listed.contains(kind),
            "{kind} missing from kubectl get gtm:\n{listed}"
        );
    }
    for crd in &schema {
        let columns = crd
            .pointer("/spec/versions/0/additionalPrinterColumns")
            .and_then(Value::as_array)
            .unwrap();
        let plural = crd
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap();
        let header = cp.kubectl(&["get", plural, "-n", &ns]).await.unwrap();
        let header = header.lines().next().unwrap_or_default().to_owned();
        for column in columns {
            let name = column["name"].as_str().unwrap().to_ascii_uppercase();
            assert!(
                header.contains(&name),
                "{plural}: column {name} missing in {header:?}"
            );
        }
    }
    cp.delete_all_gtm_objects().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 2. Validation parity
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_api_server_and_the_offline_validator_agree() {
    let Some(cp) =
        ControlPlane::get_or_skip("the_api_server_and_the_offline_validator_agree", "main").await
    else {
        return;
    };
    cp.apply_crds().await.unwrap();
    let ns = namespace(&cp, "gtm-parity").await.unwrap();
    let validator = ManifestValidator::new();
    let mut disagreements = Vec::new();

    // Top level and one level down (examples/dnssec).
    let mut examples: Vec<_> = std::fs::read_dir(repo_root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .flat_map(|p| {
            if p.is_dir() {
                std::fs::read_dir(&p)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .collect()
            } else {
                vec![p]
            }
        })
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    examples.sort();
    for file in &examples {
        let text = std::fs::read_to_string(file).unwrap();
        for doc in parse_yaml_stream(&text).unwrap() {
            let offline = validator
                .validate(&doc)
                .map(|_| ())
                .map_err(|e| e.to_string());
            let server = server_dry_run(&cp, &ns, &doc).await.unwrap();
            if offline.is_err() || server.is_err() {
                disagreements.push(format!(
                    "{}: example {}: offline {offline:?}, API server {server:?}",
                    file.display(),
                    doc["metadata"]["name"]
                ));
            }
        }
    }

    let dir = repo_root().join("crds/tests/invalid");
    let mut invalid: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    invalid.sort();
    assert!(
        invalid.len() >= 25,
        "crds/tests/invalid holds a manifest per rule"
    );
    for file in &invalid {
        let text = std::fs::read_to_string(file).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap()
            .to_owned();
        let doc = parse_yaml_stream(&text).unwrap().remove(0);
        let offline = match validator.validate(&doc) {
            Err(e @ ManifestError::Invalid { .. }) => Err(e.to_string()),
            Err(other) => Err(format!("not a schema rejection: {other}")),
            Ok(_) => Ok(()),
        };
        let server = server_dry_run(&cp, &ns, &doc).await.unwrap();
        let offline_ok = matches!(&offline, Err(m) if m.contains(&expect));
        let server_ok = matches!(&server, Err(m) if squash(m).contains(&squash(&expect)));
        if !(offline_ok && server_ok) {
            disagreements.push(format!(
                "{}: expected {expect:?}\n  offline:    {offline:?}\n  API server: {server:?}",
                file.display()
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

/// `kubectl apply --dry-run=server` of one object, as README tells users to apply manifests
/// (strict field validation): `Err(message)` when the API server refuses it.
async fn server_dry_run(cp: &ControlPlane, ns: &str, doc: &Value) -> Result<Result<(), String>> {
    let input = serde_json::to_string(doc)?;
    let result = cp
        .kubectl_with_input(&["apply", "--dry-run=server", "-n", ns, "-f", "-"], &input)
        .await?;
    Ok(result.map(|_| ()))
}

/// Whitespace collapsed: kubectl folds long messages.
fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------------------------
// 3. The chart
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_chart_installs_upgrades_and_uninstalls() {
    let Some(cp) =
        ControlPlane::get_or_skip("the_chart_installs_upgrades_and_uninstalls", "main").await
    else {
        return;
    };
    let chart = repo_root().join("charts/kube-gtm");
    let chart = chart.to_str().unwrap();

    // Default values: the chart installs the CRDs itself.
    delete_crds(&cp).await.unwrap();
    let ns = "gtm-chart-default";
    cp.helm(&[
        "install",
        "chart-default",
        chart,
        "-n",
        ns,
        "--create-namespace",
        "--set",
        &format!("zones={{{ZONE}}}"),
    ])
    .await
    .unwrap();
    cp.apply_crds().await.unwrap(); // they are there (and Established)
    let operator = PodSpec::of_release(&cp.client, ns, "chart-default", Component::Operator)
        .await
        .unwrap();
    assert_eq!(operator.env["GTM_CONCURRENCY"], "4");
    assert_eq!(operator.env["GTM_ZONES"], ZONE);
    let objects = release_objects(&cp, ns, "chart-default").await.unwrap();
    for kind in [
        "deployment",
        "service",
        "serviceaccount",
        "role",
        "rolebinding",
        "clusterrole",
        "clusterrolebinding",
        "poddisruptionbudget",
    ] {
        assert!(
            objects.iter().any(|o| o.starts_with(&format!("{kind}/"))),
            "no {kind} installed: {objects:?}"
        );
    }

    // Upgrade to changed values.
    cp.helm(&[
        "upgrade",
        "chart-default",
        chart,
        "-n",
        ns,
        "--reuse-values",
        "--set",
        "operator.concurrency=9",
        "--set",
        "dns.replicas=3",
    ])
    .await
    .unwrap();
    let operator = PodSpec::of_release(&cp.client, ns, "chart-default", Component::Operator)
        .await
        .unwrap();
    assert_eq!(operator.env["GTM_CONCURRENCY"], "9");
    let replicas = cp
        .kubectl(&[
            "get",
            "deployment",
            "-n",
            ns,
            "-l",
            "app.kubernetes.io/instance=chart-default,app.kubernetes.io/component=dns",
            "-o",
            "jsonpath={.items[0].spec.replicas}",
        ])
        .await
        .unwrap();
    assert_eq!(replicas, "3");

    // Uninstall: nothing left but the CRDs (crds.keep=true by default).
    cp.helm(&["uninstall", "chart-default", "-n", ns, "--wait"])
        .await
        .unwrap();
    let left = release_objects(&cp, ns, "chart-default").await.unwrap();
    assert_eq!(
        left,
        [
            "customresourcedefinition/addresspools.gtm.kubegtm.io",
            "customresourcedefinition/gtmaccessdomains.gtm.kubegtm.io",
            "customresourcedefinition/gtmzones.gtm.kubegtm.io",
            "customresourcedefinition/healthchecktemplates.gtm.kubegtm.io"
        ],
        "left after uninstall"
    );

    // Every feature on (the all-features values of `make chart-test`), less the Prometheus
    // Operator's ServiceMonitor and PrometheusRule, whose CRDs this API server does not have.
    delete_crds(&cp).await.unwrap();
    for extra in ["apps", "payments"] {
        namespace_named(&cp, extra).await.unwrap();
    }
    let values = repo_root().join("charts/kube-gtm/ci/all-features-values.yaml");
    let ns = "gtm-chart-all";
    cp.helm(&[
        "install",
        "chart-all",
        chart,
        "-n",
        ns,
        "--create-namespace",
        "-f",
        values.to_str().unwrap(),
        "--set",
        "metrics.serviceMonitor.enabled=false",
        "--set",
        "metrics.prometheusRule.enabled=false",
    ])
    .await
    .unwrap();
    let objects = release_objects(&cp, ns, "chart-all").await.unwrap();
    for kind in ["networkpolicy", "service"] {
        assert!(
            objects.iter().any(|o| o.starts_with(&format!("{kind}/"))),
            "no {kind}: {objects:?}"
        );
    }
    let watched_roles = cp
        .kubectl(&["get", "role", "-n", "payments", "-o", "name"])
        .await
        .unwrap();
    assert!(
        watched_roles.contains("operator"),
        "a Role per watched namespace: {watched_roles}"
    );
    cp.helm(&["uninstall", "chart-all", "-n", ns, "--wait"])
        .await
        .unwrap();
    let left = release_objects(&cp, ns, "chart-all").await.unwrap();
    assert!(
        left.iter()
            .all(|o| o.starts_with("customresourcedefinition/")),
        "left after uninstall: {left:?}"
    );
    assert!(
        cp.kubectl(&["get", "role", "-n", "payments", "-o", "name"])
            .await
            .unwrap()
            .trim()
            .is_empty()
    );
    delete_crds(&cp).await.unwrap();
}

/// The namespaced kinds a release may install (or the operator may write).
const NAMESPACED_KINDS: &str = "deployments,services,serviceaccounts,roles,rolebindings,\
                                poddisruptionbudgets,configmaps,networkpolicies";

/// `kind/name` of every object labelled with Helm release `release` (namespaced ones in `ns`).
async fn release_objects(cp: &ControlPlane, ns: &str, release: &str) -> Result<Vec<String>> {
    let selector = format!("app.kubernetes.io/instance={release}");
    let namespaced = cp
        .kubectl(&[
            "get",
            NAMESPACED_KINDS,
            "-n",
            ns,
            "-l",
            &selector,
            "-o",
            "name",
        ])
        .await?;
    let cluster = cp
        .kubectl(&[
            "get",
            "clusterroles,clusterrolebindings,customresourcedefinitions",
            "-l",
            &selector,
            "-o",
            "name",
        ])
        .await?;
    let mut all: Vec<String> = namespaced
        .lines()
        .chain(cluster.lines())
        .map(|l| {
            let (kind, name) = l.split_once('/').unwrap_or((l, ""));
            format!("{}/{name}", kind.split('.').next().unwrap_or(kind))
        })
        .collect();
    all.sort();
    Ok(all)
}

const GTM_CRDS: [&str; 4] = [
    "gtmaccessdomains.gtm.kubegtm.io",
    "addresspools.gtm.kubegtm.io",
    "healthchecktemplates.gtm.kubegtm.io",
    "gtmzones.gtm.kubegtm.io",
];

/// Deletes the CRDs. A CRD deleted while the API server is still starting its storage (a
/// second after it was created) can stay Terminating for good: the CRD finalizer fails with
/// "storage is (re)initializing" and does not come back to it (seen with kube-apiserver 1.37
/// here). Such a CRD has its finalizer removed after 30 s; these tests leave no instances.
async fn delete_crds(cp: &ControlPlane) -> Result<()> {
    let mut args = vec![
        "delete",
        "crd",
        "--ignore-not-found",
        "--wait",
        "--timeout=30s",
    ];
    args.extend(GTM_CRDS);
    if cp.kubectl_result(&args).await?.is_ok() {
        return Ok(());
    }
    for crd in GTM_CRDS {
        let unfinalize = r#"{"metadata":{"finalizers":null}}"#;
        let patch = ["patch", "crd", crd, "--type=merge", "-p", unfinalize];
        // Already gone is fine.
        let _ = cp.kubectl_result(&patch).await?;
    }
    args.retain(|a| *a != "--timeout=30s");
    cp.kubectl(&args).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 4 and 5. RBAC for real, and the whole loop
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_chart_grants_exactly_what_each_component_uses() {
    let Some(cp) =
        ControlPlane::get_or_skip("the_chart_grants_exactly_what_each_component_uses", "main")
            .await
    else {
        return;
    };
    let release = Release::install(&cp, "rbac", &[]).await.unwrap();
    let ns = release.namespace.as_str();
    let dns = release.spec(Component::Dns).await.unwrap().service_account;
    let op = release
        .spec(Component::Operator)
        .await
        .unwrap()
        .service_account;
    // The DNS pods read their ConfigMaps and nothing else.
    reads_only_configmaps(&cp, ns, &dns, "default")
        .await
        .unwrap();
    // The operator: what it uses, where it uses it.
    for (verb, resource, in_ns) in [
        ("patch", "configmaps", ns),
        ("delete", "configmaps", ns),
        ("watch", "addresspools.gtm.kubegtm.io", "default"),
        ("patch", "addresspools.gtm.kubegtm.io/status", "default"),
        ("patch", "gtmaccessdomains.gtm.kubegtm.io/status", "default"),
        ("create", "events.events.k8s.io", "default"),
        (
            "patch",
            "leases.coordination.k8s.io/rbac-kube-gtm-operator",
            ns,
        ),
    ] {
        assert!(
            cp.can_i(ns, &op, verb, resource, in_ns).await.unwrap(),
            "operator may {verb} {resource} in {in_ns}"
        );
    }
    for (verb, resource, in_ns) in [
        ("patch", "configmaps", "default"),
        ("get", "secrets", ns),
        ("update", "addresspools.gtm.kubegtm.io", "default"),
        ("delete", "gtmaccessdomains.gtm.kubegtm.io", "default"),
        ("patch", "leases.coordination.k8s.io/another", ns),
        ("create", "pods", ns),
    ] {
        assert!(
            !cp.can_i(ns, &op, verb, resource, in_ns).await.unwrap(),
            "operator must not {verb} {resource} in {in_ns}"
        );
    }
    release.uninstall().await.unwrap();
}

#[tokio::test]
async fn the_whole_loop_runs_with_the_charts_accounts() {
    with_gtm(
        "the_whole_loop_runs_with_the_charts_accounts",
        "loop",
        110,
        1,
        |_cp, release, gtm| {
            Box::pin(async move {
                // The payload ConfigMaps are written by server-side apply with our field manager.
                for cm in release.payload_configmaps().await? {
                    let managers: Vec<_> = cm
                        .metadata
                        .managed_fields
                        .unwrap_or_default()
                        .into_iter()
                        .map(|m| {
                            (
                                m.manager.unwrap_or_default(),
                                m.operation.unwrap_or_default(),
                            )
                        })
                        .collect();
                    ensure!(
                        managers.contains(&("gtm-operator".into(), "Apply".into())),
                        "ConfigMap {:?} managed by {managers:?}",
                        cm.metadata.name
                    );
                }
                // Fail both eu-west backends: answers, pool status, events and metrics follow.
                gtm.backends[0].fail();
                gtm.backends[1].fail();
                gtm.wait_answer(&[&gtm.backends[2].ip]).await?;
                let pool = gtm
                    .wait_pool_condition("app-eu-west", "Available", "False")
                    .await?;
                let tasks = pool.pointer("/status/addresses/0/tasks/0/state").cloned();
                ensure!(
                    tasks == Some(json!("Down")),
                    "task state in status: {tasks:?}"
                );
                gtm.wait_events("app-eu-west", &["AddressDown", "PoolUnavailable"])
                    .await?;
                gtm.wait_events("app", &["Failover"]).await?;
                // The transitions stay in status, for after the events expire.
                let history = gtm.history("GtmAccessDomain", "app").await?;
                ensure!(
                    history.first()
                        == Some(&(
                            "Failover".into(),
                            "app-eu-west".into(),
                            "app-us-east".into()
                        )),
                    "the domain's history: {history:?}"
                );
                // The leader's topology page shows it too.
                let (code, body) = gtm.operators[0]
                    .http_get(&format!("/topology.json?namespace={}", gtm.apps))
                    .await?;
                ensure!(code == 200, "topology.json answered {code}: {body}");
                let topology: Value = serde_json::from_str(&body)?;
                let app = topology["domains"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|d| d["name"] == "app");
                ensure!(
                    topology["source"] == "Leader"
                        && app.is_some_and(|d| d["state"] == "FailedOver"
                            && d["answering"] == json!(["app-us-east"])),
                    "the topology page: {topology}"
                );
                let history = gtm.history("AddressPool", "app-eu-west").await?;
                ensure!(
                    ["PoolUnavailable", "AddressDown"]
                        .iter()
                        .all(|r| history.iter().any(|(reason, _, _)| reason == r)),
                    "the pool's history: {history:?}"
                );
                let metrics = gtm.operators[0].metrics().await?;
                let failovers = samples(&metrics, "gtm_operator_failovers_total", &[]);
                ensure!(
                    failovers.iter().sum::<f64>() >= 1.0,
                    "failovers_total {failovers:?}"
                );
                let up = samples(
                    &metrics,
                    "gtm_operator_address_up",
                    &[("address", &gtm.backends[0].ip)],
                );
                ensure!(up == [0.0], "address_up of the failed backend: {up:?}");
                let dns_metrics = gtm.dns[0].metrics().await?;
                ensure!(
                    !samples(&dns_metrics, "gtm_dnspod_queries_total", &[]).is_empty(),
                    "the DNS process counts queries"
                );
                // Recover: back to eu-west (Preemptive).
                gtm.backends[0].recover();
                gtm.backends[1].recover();
                gtm.wait_answer(&[&gtm.backends[0].ip, &gtm.backends[1].ip])
                    .await?;
                gtm.wait_pool_condition("app-eu-west", "Available", "True")
                    .await?;
                gtm.wait_events("app-eu-west", &["AddressUp", "PoolAvailable"])
                    .await?;
                gtm.wait_events("app", &["Failback"]).await?;
                let history = gtm.history("GtmAccessDomain", "app").await?;
                let reasons: Vec<&str> = history.iter().map(|(r, _, _)| r.as_str()).collect();
                ensure!(
                    reasons.starts_with(&["Failback", "Failover"]),
                    "the domain's history: {history:?}"
                );
                // Every metric the chart's Grafana dashboard names is exported by the two binaries.
                e2e::dashboard::check_exported(&[
                    &gtm.operators[0].metrics().await?,
                    &gtm.dns[0].metrics().await?,
                ])?;
                gtm.check_running()
            })
        },
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 6. Leader election
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_standby_operator_takes_over_from_a_killed_leader() {
    with_gtm(
        "a_standby_operator_takes_over_from_a_killed_leader",
        "leader",
        111,
        2,
        |_cp, release, gtm| {
            Box::pin(async move {
                let leader = gtm.wait_single_leader().await?;
                let standby = 1 - leader;
                // Only the leader writes: the standby has made no status or payload writes.
                let standby_metrics = gtm.operators[standby].metrics().await?;
                let writes: f64 = samples(&standby_metrics, "gtm_operator_reconciles_total", &[])
                    .iter()
                    .sum();
                ensure!(writes == 0.0, "the standby reconciled {writes} times");
                let lease_before = release.lease_holder().await?;
                ensure!(
                    lease_before.as_deref() == Some(&*format!("op-{leader}")),
                    "Lease held by {lease_before:?}"
                );

                let killed = Instant::now();
                gtm.operators[leader].kill9().await?;
                let holder = wait_for("the standby to take the Lease", DEADLINE, || async {
                    Ok::<_, anyhow::Error>(match release.lease_holder().await? {
                        Some(h) if h == format!("op-{standby}") => Check::Ready(h),
                        other => Check::Pending(format!("holder {other:?}")),
                    })
                })
                .await?;
                let took_lease = killed.elapsed();
                // The Lease lasts 15 s after its last renewal, and a standby tries again every
                // 5 s (the operator's grace): 25 s leaves room for a loaded machine.
                ensure!(
                    took_lease <= Duration::from_secs(25),
                    "the standby took the Lease only {took_lease:.1?} after the kill"
                );
                // Status and answers keep moving under the new leader.
                gtm.backends[0].fail();
                gtm.backends[1].fail();
                gtm.wait_answer(&[&gtm.backends[2].ip]).await?;
                gtm.wait_pool_condition("app-eu-west", "Available", "False")
                    .await?;
                let answered = killed.elapsed();
                println!(
                    "leader takeover: {holder} took the Lease {took_lease:.1?} after kill -9; \
                     failover answered {answered:.1?} after the kill"
                );
                gtm.operators[standby].check_running()?;
                gtm.dns[0].check_running()
            })
        },
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 7. Restart without flapping
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_restarted_operator_neither_flaps_nor_changes_answers() {
    with_gtm(
        "a_restarted_operator_neither_flaps_nor_changes_answers",
        "restart",
        112,
        1,
        |_cp, _release, gtm| {
            Box::pin(async move {
                // One address down before the restart: it must stay down, the others up.
                gtm.backends[0].fail();
                gtm.wait_answer(&[&gtm.backends[1].ip]).await?;
                gtm.wait_events("app-eu-west", &["AddressDown"]).await?;
                let before = gtm.event_reasons("app-eu-west").await?;
                let probes_before = gtm.probes_total(0).await?;

                gtm.operators[0].restart().await?;
                let restarted = Instant::now();
                // Until the restarted operator has probed every task twice (beyond both thresholds),
                // every answer stays what it was.
                loop {
                    let answer = gtm.query().await?;
                    ensure!(
                        answer.sorted() == [gtm.backends[1].ip.clone()],
                        "answer changed after the restart: {answer}"
                    );
                    let probes = gtm.probes_total(0).await.unwrap_or(0.0);
                    if probes >= 3.0 * 2.0 + 1.0 && gtm.is_leader(0).await.unwrap_or(false) {
                        break;
                    }
                    ensure!(
                        restarted.elapsed() < Duration::from_secs(60),
                        "restarted operator did not probe: {probes} probes (before: {probes_before})\n{}",
                        gtm.operators[0].log_tail()
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let after = gtm.event_reasons("app-eu-west").await?;
                ensure!(
                    before == after,
                    "events after the restart: {before:?} -> {after:?}"
                );
                gtm.check_running()
            })
        },
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 8. Sharding at the real size limits
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn twenty_thousand_addresses_are_split_served_and_defended() {
    with_gtm(
        "twenty_thousand_addresses_are_split_served_and_defended",
        "big",
        113,
        1,
        |cp, release, gtm| {
            Box::pin(async move {
                let apps = gtm.apps.clone();
                let objects = big_config(79, 254);
                let count: usize = objects
                    .iter()
                    .filter_map(|o| o.pointer("/spec/addresses").and_then(Value::as_array))
                    .map(Vec::len)
                    .sum();
                ensure!(count >= 20_000, "{count} addresses");
                let started = Instant::now();
                use futures::StreamExt;
                let results: Vec<Result<()>> =
                    futures::stream::iter(objects.chunks(1).map(|chunk| {
                        let client = cp.client.clone();
                        let apps = apps.clone();
                        let chunk = chunk.to_vec();
                        async move { apply(&client, &apps, &chunk).await }
                    }))
                    .buffer_unordered(8)
                    .collect()
                    .await;
                results.into_iter().collect::<Result<Vec<()>>>()?;
                let last = "big-78.gtm.example.com";
                let answer = wait_for(&format!("{last} answered"), DEADLINE, || async {
                    let a = query(
                        gtm.dns[0].dns.unwrap(),
                        last,
                        RecordType::A,
                        Transport::Tcp,
                        Duration::from_secs(2),
                    )
                    .await?;
                    Ok::<_, anyhow::Error>(
                        if a.rcode == ResponseCode::NoError && !a.records.is_empty() {
                            Check::Ready(a)
                        } else {
                            Check::Pending(a.to_string())
                        },
                    )
                })
                .await?;
                ensure!(
                    answer.records.iter().all(|r| r.starts_with("10.78.")),
                    "{answer}"
                );
                println!(
                    "{count} addresses as CRs: applied and answered in {:.1?}",
                    started.elapsed()
                );
                let parts = release.payload_configmaps().await?;
                let config_parts: Vec<_> = parts
                    .iter()
                    .filter(|c| {
                        c.metadata
                            .labels
                            .as_ref()
                            .and_then(|l| l.get("gtm.kubegtm.io/payload"))
                            .is_some_and(|p| p == "config")
                    })
                    .collect();
                ensure!(
                    config_parts.len() > 1,
                    "{} config ConfigMaps: the payload was not split",
                    config_parts.len()
                );

                // Another field manager's edit of a config ConfigMap is undone.
                let victim = config_parts[0].metadata.name.clone().unwrap();
                let (key, original) = config_parts[0]
                    .data
                    .clone()
                    .unwrap()
                    .into_iter()
                    .next()
                    .unwrap();
                let api: Api<ConfigMap> = Api::namespaced(cp.client.clone(), &release.namespace);
                api.patch(
                    &victim,
                    &PatchParams {
                        field_manager: Some("intruder".into()),
                        ..Default::default()
                    },
                    &Patch::Merge(json!({"data": {&key: "tampered"}})),
                )
                .await?;
                wait_for(
                    &format!("ConfigMap {victim} restored"),
                    DEADLINE,
                    || async {
                        let cm = api.get(&victim).await?;
                        let now = cm
                            .data
                            .unwrap_or_default()
                            .get(&key)
                            .cloned()
                            .unwrap_or_default();
                        Ok::<_, kube::Error>(if now == original {
                            Check::Ready(())
                        } else {
                            Check::Pending(format!("{} bytes", now.len()))
                        })
                    },
                )
                .await?;
                // Served all along.
                let again = gtm.query_name(last).await?;
                ensure!(
                    again.rcode == ResponseCode::NoError && !again.records.is_empty(),
                    "{again}"
                );
                cp.delete_all_gtm_objects().await?;
                gtm.check_running()
            })
        },
    )
    .await;
}

/// `pools` IPv4 pools of `per_pool` addresses (10.<pool>.x.y, no health checks) and one access
/// domain `big-<pool>` per pool.
fn big_config(pools: usize, per_pool: usize) -> Vec<Value> {
    let mut objects = Vec::new();
    for p in 0..pools {
        let addresses: Vec<Value> = (0..per_pool)
            .map(|i| json!({"value": format!("10.{p}.{}.{}", i / 250, i % 250 + 1)}))
            .collect();
        objects.push(json!({
            "apiVersion": "gtm.kubegtm.io/v1alpha1", "kind": "AddressPool",
            "metadata": {"name": format!("big-{p}")},
            "spec": {"type": "IPv4", "addresses": addresses}
        }));
        objects.push(json!({
            "apiVersion": "gtm.kubegtm.io/v1alpha1", "kind": "GtmAccessDomain",
            "metadata": {"name": format!("big-{p}")},
            "spec": {
                "domain": format!("big-{p}.{ZONE}"),
                "recordType": "A",
                "policy": "RoundRobin",
                "pools": [{"name": format!("big-{p}")}]
            }
        }));
    }
    objects
}

// ---------------------------------------------------------------------------------------------
// 9. API outage
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn dns_keeps_answering_through_an_api_outage_and_resumes() {
    with_gtm(
        "dns_keeps_answering_through_an_api_outage_and_resumes",
        "outage",
        114,
        1,
        |cp, _release, gtm| {
            Box::pin(async move {
                let pids = (gtm.operators[0].pid(), gtm.dns[0].pid());
                let expected = gtm.query().await?.sorted();
                cp.script("stop-apiserver").await?;
                let stopped = Instant::now();
                let mut stale_seen = false;
                while stopped.elapsed() < Duration::from_secs(30) {
                    let answer = gtm.query().await?;
                    ensure!(
                        answer.sorted() == expected,
                        "answer changed during the outage: {answer}"
                    );
                    let (ready, _) = gtm.dns[0].http_get("/readyz").await?;
                    ensure!(ready == 200, "/readyz answered {ready} during the outage");
                    stale_seen |= gtm.is_stale(0).await?;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                ensure!(
                    stale_seen,
                    "the DNS process never reported its source stale"
                );
                cp.script("start-apiserver").await?;
                let restarted = Instant::now();
                gtm.wait_fresh(0).await?;
                // Both resume watching without a restart: a change made now is answered.
                let fresh = restarted.elapsed();
                gtm.backends[0].fail();
                gtm.backends[1].fail();
                gtm.wait_answer(&[&gtm.backends[2].ip]).await?;
                let answered = restarted.elapsed();
                gtm.wait_pool_condition("app-eu-west", "Available", "False")
                    .await?;
                println!(
                    "after the outage: source fresh {fresh:.1?}, failover answered {answered:.1?}, \
                     pool status {:.1?} after kube-apiserver was back",
                    restarted.elapsed()
                );
                ensure!(
                    (gtm.operators[0].pid(), gtm.dns[0].pid()) == pids,
                    "a process was restarted"
                );
                gtm.check_running()
            })
        },
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 10. Two clusters: edge DNS pods reading the control cluster
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_edge_cluster_answers_from_the_control_cluster_with_its_own_account() {
    with_edge(
        "an_edge_cluster_answers_from_the_control_cluster_with_its_own_account",
        "ctl",
        "west",
        115,
        |cp, edge_cp, release, gtm| {
            Box::pin(async move {
                let ns = release.namespace.as_str();
                let account = release.edge_account("west");
                // In the control cluster the edge's account reads ConfigMaps there, nothing else.
                reads_only_configmaps(cp, ns, &account, &gtm.apps).await?;
                let edge = EdgeRelease::install(edge_cp, release, "west", "west", &[]).await?;
                // The edge release installs DNS pods only: no CRDs, no operator, no RBAC.
                let crds = edge_cp.kubectl(&["get", "crd", "-o", "name"]).await?;
                ensure!(
                    !crds.contains("gtm.kubegtm.io"),
                    "CRDs in the edge cluster: {crds}"
                );
                let objects = edge_cp
                    .kubectl(&[
                        "get",
                        "deployments,roles,rolebindings,clusterroles,clusterrolebindings",
                        "-A",
                        "-l",
                        "app.kubernetes.io/instance=west",
                        "-o",
                        "name",
                    ])
                    .await?;
                ensure!(
                    objects.trim() == "deployment.apps/west-kube-gtm-dns",
                    "edge release objects: {objects}"
                );
                let i = edge.start_dns(gtm).await?;
                let both = [gtm.backends[0].ip.as_str(), gtm.backends[1].ip.as_str()];
                gtm.wait_answer_at(i, &both).await?;
                // A failover decided in the control cluster reaches the edge's answers.
                gtm.backends[0].fail();
                gtm.backends[1].fail();
                gtm.wait_answer_at(i, &[&gtm.backends[2].ip]).await?;
                gtm.backends[0].recover();
                gtm.backends[1].recover();
                gtm.wait_answer_at(i, &both).await?;
                ensure!(!gtm.is_stale(i).await?, "the edge reports its source stale");
                gtm.check_running()?;
                edge.uninstall().await
            })
        },
    )
    .await;
}

#[tokio::test]
async fn an_edge_keeps_answering_while_the_control_cluster_is_down() {
    with_edge(
        "an_edge_keeps_answering_while_the_control_cluster_is_down",
        "ctlout",
        "east",
        116,
        |cp, edge_cp, release, gtm| {
            Box::pin(async move {
                // Two edge releases with the same access: one stays ready (the default), one
                // goes unready after 3 s stale.
                let stays = EdgeRelease::install(edge_cp, release, "east", "east", &[]).await?;
                let strict = EdgeRelease::install(
                    edge_cp,
                    release,
                    "east",
                    "east-strict",
                    &["--set", "dns.unreadyAfterStaleSeconds=3"],
                )
                .await?;
                let edges = [stays.start_dns(gtm).await?, strict.start_dns(gtm).await?];
                let both = [gtm.backends[0].ip.as_str(), gtm.backends[1].ip.as_str()];
                for i in edges {
                    gtm.wait_answer_at(i, &both).await?;
                    let (ready, body) = gtm.dns[i].http_get("/readyz").await?;
                    ensure!(ready == 200, "edge {i} not ready before the outage: {body}");
                }
                let pids: Vec<_> = edges.iter().map(|&i| gtm.dns[i].pid()).collect();
                cp.script("stop-apiserver").await?;
                let stopped = Instant::now();
                let (mut stale_seen, mut strict_unready) = ([false; 2], None);
                while stopped.elapsed() < Duration::from_secs(20) {
                    for (k, &i) in edges.iter().enumerate() {
                        let answer = gtm.query_name_at(i, &gtm.domain).await?;
                        ensure!(
                            answer.sorted() == both,
                            "edge {i} answer changed during the outage: {answer}"
                        );
                        stale_seen[k] |= gtm.is_stale(i).await?;
                    }
                    let (ready, _) = gtm.dns[edges[0]].http_get("/readyz").await?;
                    ensure!(ready == 200, "the default edge went unready: {ready}");
                    let (ready, body) = gtm.dns[edges[1]].http_get("/readyz").await?;
                    if ready == 503 && strict_unready.is_none() {
                        ensure!(body.contains("config source unreachable"), "{body}");
                        strict_unready = Some(stopped.elapsed());
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                ensure!(stale_seen == [true; 2], "stale reported: {stale_seen:?}");
                let unready_after = strict_unready.context("the strict edge never went unready")?;
                for &i in &edges {
                    let log = std::fs::read_to_string(&gtm.dns[i].log)?;
                    ensure!(
                        log.contains("the Kubernetes API is unreachable"),
                        "edge {i} logged no outage"
                    );
                }
                cp.script("start-apiserver").await?;
                let restarted = Instant::now();
                for &i in &edges {
                    gtm.wait_fresh(i).await?;
                }
                let fresh = restarted.elapsed();
                // The edges resume watching: a failover decided now reaches them.
                gtm.backends[0].fail();
                gtm.backends[1].fail();
                for &i in &edges {
                    gtm.wait_answer_at(i, &[&gtm.backends[2].ip]).await?;
                }
                println!(
                    "edge outage: strict edge unready {unready_after:.1?} after the control \
                     API server stopped; edges fresh {fresh:.1?} and failover answered \
                     {:.1?} after it was back",
                    restarted.elapsed()
                );
                let now: Vec<_> = edges.iter().map(|&i| gtm.dns[i].pid()).collect();
                ensure!(now == pids, "an edge process was restarted");
                gtm.check_running()?;
                stays.uninstall().await?;
                strict.uninstall().await
            })
        },
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 11. Endpoints from Kubernetes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn addresses_follow_a_load_balancer_service_and_a_gateway_in_the_control_cluster() {
    with_gtm_values(
        "addresses_follow_a_load_balancer_service_and_a_gateway_in_the_control_cluster",
        "disc",
        &[
            "--set",
            "operator.endpointDiscovery.kinds={Service,Gateway}",
        ],
        117,
        1,
        |cp, release, gtm| {
            Box::pin(async move {
                let apps = gtm.apps.clone();
                let gateway = std::env::var("GTM_GATEWAY_CRD").ok();
                let ip = |i: usize| gtm.backends[i].ip.clone();
                let (a, b, c) = (ip(0), ip(1), ip(2));
                let mut sources = vec![json!({"kind": "Service", "name": "web"})];
                if let Some(crd) = &gateway {
                    cp.kubectl(&["apply", "--server-side", "-f", crd]).await?;
                    cp.kubectl(&[
                        "wait",
                        "--for=condition=Established",
                        "--timeout=60s",
                        "crd/gateways.gateway.networking.k8s.io",
                    ])
                    .await?;
                    let gw = json!({
                        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                        "metadata": {"name": "gw", "namespace": apps},
                        "spec": {"gatewayClassName": "test",
                                 "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}
                    });
                    cp.kubectl_with_input(&["apply", "-f", "-"], &gw.to_string())
                        .await?
                        .map_err(anyhow::Error::msg)?;
                    sources.push(json!({"kind": "Gateway", "name": "gw"}));
                } else {
                    println!("GTM_GATEWAY_CRD unset (no Go): the Gateway source is not tested");
                }
                // The operator reads Services (and Gateways, below), and writes neither.
                let op = release.spec(Component::Operator).await?.service_account;
                let ns = release.namespace.as_str();
                for (verb, resource, allowed) in [
                    ("watch", "services", true),
                    ("patch", "services", false),
                    ("patch", "services/status", false),
                    ("list", "ingresses.networking.k8s.io", false),
                ] {
                    ensure!(
                        cp.can_i(ns, &op, verb, resource, &apps).await? == allowed,
                        "operator {verb} {resource}: expected {allowed}"
                    );
                }
                if gateway.is_some() {
                    let (verb, resource) = ("watch", "gateways.gateway.networking.k8s.io");
                    ensure!(
                        cp.can_i(ns, &op, verb, resource, &apps).await?,
                        "operator may {verb} {resource}"
                    );
                    let (verb, resource) = ("delete", "gateways.gateway.networking.k8s.io");
                    ensure!(
                        !cp.can_i(ns, &op, verb, resource, &apps).await?,
                        "operator must not {verb} {resource}"
                    );
                }
                load_balancer_service(cp, &apps, &[&a]).await?;
                apply(&gtm.client, &apps, &pool_from_sources("lb", json!(sources))).await?;
                let name = format!("lb.{ZONE}");
                gtm.wait_name_answer_at(0, &name, &[&a]).await?;
                let pool = get(&gtm.client, &apps, "AddressPool", "lb").await?;
                ensure!(
                    pool.pointer("/status/addresses/0/source")
                        == Some(&json!(format!("Service {apps}/web"))),
                    "source in status: {:?}",
                    pool.pointer("/status/addresses")
                );
                let mut serving: Vec<&str> = Vec::new();
                if gateway.is_some() {
                    // A Gateway without an address yet: reported, and the Service's address serves.
                    let pool = gtm
                        .wait_pool_condition("lb", "EndpointsResolved", "False")
                        .await?;
                    let reason = condition(&pool, "EndpointsResolved").map(|c| c.1);
                    ensure!(reason.as_deref() == Some("NoAddressYet"), "{reason:?}");
                    gtm.wait_events("lb", &["NoAddressYet"]).await?;
                    let patch =
                        json!({"status": {"addresses": [{"type": "IPAddress", "value": b}]}});
                    cp.kubectl(&[
                        "patch",
                        "gateway",
                        "gw",
                        "-n",
                        &apps,
                        "--subresource=status",
                        "--type=merge",
                        "-p",
                        &patch.to_string(),
                    ])
                    .await?;
                    gtm.wait_name_answer_at(0, &name, &[&a, &b]).await?;
                    gtm.wait_pool_condition("lb", "EndpointsResolved", "True")
                        .await?;
                    gtm.wait_events("lb", &["EndpointsResolved"]).await?;
                    // Health checks apply to discovered addresses: a failed backend leaves the
                    // answer.
                    gtm.backends[0].fail();
                    gtm.wait_name_answer_at(0, &name, &[&b]).await?;
                    gtm.backends[0].recover();
                    serving.push(&b);
                }
                // The Service's status changes: the answer follows.
                let changed = Instant::now();
                set_load_balancer(cp, &apps, "web", &[&c]).await?;
                let mut expected = serving.clone();
                expected.push(&c);
                gtm.wait_name_answer_at(0, &name, &expected).await?;
                println!(
                    "endpoints: a Service's status change answered {:.1?} after the patch",
                    changed.elapsed()
                );
                // The Service is deleted: reported; what else the pool has keeps serving.
                cp.kubectl(&["delete", "service", "web", "-n", &apps])
                    .await?;
                gtm.wait_pool_condition("lb", "EndpointsResolved", "False")
                    .await?;
                gtm.wait_events("lb", &["SourceNotFound"]).await?;
                if gateway.is_some() {
                    gtm.wait_name_answer_at(0, &name, &serving).await?;
                    cp.kubectl(&["delete", "gateway", "gw", "-n", &apps])
                        .await?;
                }
                gtm.check_running()
            })
        },
    )
    .await;
}

#[tokio::test]
async fn an_edge_clusters_service_reaches_the_answers_through_its_endpoint_agent() {
    with_edge(
        "an_edge_clusters_service_reaches_the_answers_through_its_endpoint_agent",
        "ctlep",
        "north",
        118,
        |cp, edge_cp, release, gtm| {
            Box::pin(async move {
                let ns = release.namespace.as_str();
                let agent = release.agent_account("north");
                // In the control cluster the agent writes its own ConfigMap and nothing else.
                let own = format!("configmaps/{}-endpoints-north", release.instance());
                let other = format!("configmaps/{}-config-0", release.instance());
                for (verb, resource, allowed) in [
                    ("patch", own.as_str(), true),
                    ("create", "configmaps", true),
                    ("patch", other.as_str(), false),
                    ("get", other.as_str(), false),
                    ("list", "configmaps", false),
                    ("get", "secrets", false),
                    ("list", "addresspools.gtm.kubegtm.io", false),
                ] {
                    ensure!(
                        cp.can_i(ns, &agent, verb, resource, ns).await? == allowed,
                        "agent {verb} {resource}: expected {allowed}"
                    );
                }
                // A LoadBalancer Service in the edge cluster.
                namespace_named(edge_cp, "shop").await?;
                let (a, c) = (gtm.backends[0].ip.clone(), gtm.backends[2].ip.clone());
                load_balancer_service(edge_cp, "shop", &[&a]).await?;
                let edge = EdgeRelease::install(
                    edge_cp,
                    release,
                    "north",
                    "north",
                    &[
                        "--set",
                        "edge.endpointAgent.enabled=true",
                        "--set",
                        "edge.endpointAgent.cluster=north",
                        "--set",
                        "edge.endpointAgent.kubeconfigSecret=kube-gtm-agent",
                        "--set",
                        "edge.endpointAgent.watchNamespaces={shop}",
                    ],
                )
                .await?;
                let kubeconfig = cp.service_account_kubeconfig(ns, &agent).await?;
                edge_cp
                    .create_kubeconfig_secret(&edge.namespace, "kube-gtm-agent", &kubeconfig)
                    .await?;
                let mut process = edge.start_agent().await?;
                let result = async {
                    let sources = json!([{"kind": "Service", "name": "web", "namespace": "shop", "cluster": "north"}]);
                    apply(&gtm.client, &gtm.apps, &pool_from_sources("north", sources)).await?;
                    let name = format!("north.{ZONE}");
                    gtm.wait_name_answer_at(0, &name, &[&a]).await?;
                    let pool = gtm
                        .wait_pool_condition("north", "EndpointsResolved", "True")
                        .await?;
                    ensure!(
                        pool.pointer("/status/addresses/0/source")
                            == Some(&json!("Service shop/web in cluster north")),
                        "source in status: {:?}",
                        pool.pointer("/status/addresses")
                    );
                    let changed = Instant::now();
                    set_load_balancer(edge_cp, "shop", "web", &[&c]).await?;
                    gtm.wait_name_answer_at(0, &name, &[&c]).await?;
                    println!(
                        "endpoints: an edge Service's status change answered {:.1?} after the patch",
                        changed.elapsed()
                    );
                    let cm = Api::<ConfigMap>::namespaced(cp.client.clone(), ns)
                        .get(&format!("{}-endpoints-north", release.instance()))
                        .await?;
                    let managers: Vec<_> = cm
                        .metadata
                        .managed_fields
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|m| m.manager)
                        .collect();
                    ensure!(managers == ["gtm-endpoint-agent"], "managers {managers:?}");
                    let (ready, _) = process.http_get("/readyz").await?;
                    ensure!(ready == 200, "the agent is not ready after publishing");
                    process.check_running()?;
                    gtm.check_running()
                }
                .await;
                let result =
                    result.map_err(|e| e.context(format!("agent log:\n{}", process.log_tail())));
                edge.uninstall().await?;
                edge_cp
                    .kubectl(&["delete", "service", "web", "-n", "shop"])
                    .await?;
                result
            })
        },
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 12. A probe location in another cluster
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_probe_location_in_an_edge_cluster_votes_with_its_own_account() {
    let test = "a_probe_location_in_an_edge_cluster_votes_with_its_own_account";
    let Some(edge_cp) = ControlPlane::get_or_skip(test, "edge").await else {
        return;
    };
    let values = [
        "--set",
        "edgeAccess.edges={north}",
        "--set",
        "proberAccess.locations={north}",
    ];
    with_gtm_values(
        test,
        "ctlprobe",
        &values,
        117,
        1,
        move |cp, release, gtm| {
            Box::pin(async move {
                let ns = release.namespace.as_str();
                let instance = release.instance();
                let account = release.prober_account("north");
                // In the control cluster the location's account reads and creates ConfigMaps (a
                // server-side apply that creates needs `create`, which RBAC cannot narrow by
                // name) and changes or deletes only its own reports, by name.
                let heartbeat = format!("configmaps/{instance}-location-north");
                let part = format!("configmaps/{instance}-verdicts-north-0");
                for (verb, resource, allowed) in [
                    ("list", "configmaps", true),
                    ("watch", "configmaps", true),
                    ("patch", heartbeat.as_str(), true),
                    ("patch", part.as_str(), true),
                    ("delete", part.as_str(), true),
                    ("patch", "configmaps/other", false),
                    ("patch", &format!("configmaps/{instance}-config-0"), false),
                    (
                        "patch",
                        &format!("configmaps/{instance}-verdicts-north-16"),
                        false,
                    ),
                    ("create", "configmaps", true),
                    ("delete", "configmaps/other", false),
                    ("get", "secrets", false),
                    ("list", "addresspools.gtm.kubegtm.io", false),
                ] {
                    ensure!(
                        cp.can_i(ns, &account, verb, resource, ns).await? == allowed,
                        "{account} may{} {verb} {resource}",
                        if allowed { "" } else { " not" }
                    );
                }
                let edge = EdgeRelease::install(
                    &edge_cp,
                    release,
                    "north",
                    "north",
                    &[
                        "--set",
                        "prober.enabled=true",
                        "--set",
                        "prober.location=north",
                        "--set",
                        "prober.labels.region=north",
                        "--set",
                        "prober.kubeconfigSecret=kube-gtm-prober-north",
                        "--set",
                        "prober.heartbeatSeconds=1",
                    ],
                )
                .await?;
                let kubeconfig = cp.service_account_kubeconfig(ns, &account).await?;
                edge_cp
                    .create_kubeconfig_secret(&edge.namespace, "kube-gtm-prober-north", &kubeconfig)
                    .await?;
                edge.start_prober(gtm).await?;
                let started = Instant::now();
                // The operator hears it: the template (every location by default) reports two.
                let template = wait_for("the template to count north", DEADLINE, || async {
                    let object = get(
                        &gtm.client,
                        &gtm.apps,
                        "HealthCheckTemplate",
                        "http-healthz",
                    )
                    .await?;
                    let reporting = object["status"]["conditions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|c| c["type"] == "LocationsReporting")
                        .map(|c| c["message"].as_str().unwrap_or_default().to_owned())
                        .unwrap_or_default();
                    Ok::<_, anyhow::Error>(if reporting.contains("local, north") {
                        Check::Ready(object)
                    } else {
                        Check::Pending(reporting)
                    })
                })
                .await?;
                ensure!(
                    template.pointer("/status/reportingLocations") == Some(&json!(2)),
                    "{template}"
                );
                println!(
                    "probe location started to counted by the operator: {:?}",
                    started.elapsed()
                );
                // Only north votes from now on: its verdicts alone move the answers.
                let patch = json!({"spec": {"locations": {"names": ["north"]}}});
                Api::<DynamicObject>::namespaced_with(
                    gtm.client.clone(),
                    &gtm.apps,
                    &gtm_resource("HealthCheckTemplate"),
                )
                .patch(
                    "http-healthz",
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
                wait_for(
                    "north alone voting on eu-west's tasks",
                    DEADLINE,
                    || async {
                        let object =
                            get(&gtm.client, &gtm.apps, "AddressPool", "app-eu-west").await?;
                        let votes: Vec<(Value, Value)> = object
                            .pointer("/status/addresses")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .flat_map(|a| a["tasks"].as_array().cloned().unwrap_or_default())
                            .map(|t| (t["locationsUp"].clone(), t["locationsDown"].clone()))
                            .collect();
                        Ok::<_, anyhow::Error>(
                            if !votes.is_empty() && votes.iter().all(|v| *v == (json!(1), json!(0)))
                            {
                                Check::Ready(())
                            } else {
                                Check::Pending(format!("{votes:?}"))
                            },
                        )
                    },
                )
                .await?;
                gtm.backends[0].fail();
                gtm.backends[1].fail();
                let failing = Instant::now();
                gtm.wait_answer(&[&gtm.backends[2].ip]).await?;
                println!(
                    "backends failed to answer moved by north's verdicts: {:?}",
                    failing.elapsed()
                );
                let metrics = gtm.operators[0].metrics().await?;
                ensure!(
                    samples(
                        &metrics,
                        "gtm_operator_location_fresh",
                        &[("location", "north")]
                    ) == [1.0],
                    "{metrics}"
                );
                let prober = gtm.probers[0].metrics().await?;
                ensure!(
                    samples(
                        &prober,
                        "gtm_prober_tasks",
                        &[("location", "north"), ("state", "Down")]
                    )
                    .first()
                    .is_some_and(|n| *n >= 2.0),
                    "{prober}"
                );
                gtm.backends[0].recover();
                gtm.backends[1].recover();
                gtm.wait_answer(&[&gtm.backends[0].ip, &gtm.backends[1].ip])
                    .await?;
                gtm.check_running()?;
                edge.uninstall().await
            })
        },
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 13. DNSSEC: the DS in status, from the keys Secret
// ---------------------------------------------------------------------------------------------

/// The Secret holding the signed zone's key, named in `dns.dnssec.keysSecret`.
const KEYS_SECRET: &str = "gtm-dnssec-keys";

#[tokio::test]
async fn a_signed_zone_shows_the_ds_of_the_key_its_dns_pods_serve() {
    const TEST: &str = "a_signed_zone_shows_the_ds_of_the_key_its_dns_pods_serve";
    let Some(cp) = ControlPlane::get_or_skip(TEST, "main").await else {
        return;
    };
    // The Secret exists before the DNS process mounts it, as it must before a pod starts.
    namespace_named(&cp, "gtm-dnssec").await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(cp.client.clone(), "gtm-dnssec");
    let _ = secrets.delete(KEYS_SECRET, &Default::default()).await;
    let key = include_str!("../../crds/tests/keys/p256.pem");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": KEYS_SECRET},
        "stringData": {format!("{ZONE}.key"): key}
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let keys = format!("dns.dnssec.keysSecret={KEYS_SECRET}");
    with_gtm_values(
        TEST,
        "dnssec",
        &["--set", &keys],
        119,
        1,
        |cp, release, gtm| {
            Box::pin(async move {
                // The operator may get this one Secret, and no other, nor list or watch them.
                let ns = release.namespace.as_str();
                let op = release.spec(Component::Operator).await?.service_account;
                let this = format!("secrets/{KEYS_SECRET}");
                ensure!(
                    cp.can_i(ns, &op, "get", &this, ns).await?,
                    "operator may get {this}"
                );
                for (verb, resource) in [
                    ("get", "secrets/other"),
                    ("list", "secrets"),
                    ("watch", "secrets"),
                ] {
                    ensure!(
                        !cp.can_i(ns, &op, verb, resource, ns).await?,
                        "operator must not {verb} {resource}"
                    );
                }
                let zone = json!({
                    "apiVersion": "gtm.kubegtm.io/v1alpha1",
                    "kind": "GtmZone",
                    "metadata": {"name": "signed"},
                    "spec": {"zone": ZONE, "dnssec": {"algorithm": "ECDSAP256SHA256"}}
                });
                apply(&gtm.client, &gtm.apps, &[zone]).await?;

                // The DS of the DNSKEY the DNS process serves is the one in status.
                let dns = gtm.dns[0].dns.context("a DNS process")?;
                let dnskey = wait_for("the zone's DNSKEY served", DEADLINE, || async {
                    let d = dig(dns, ZONE, "DNSKEY", &["+dnssec"]).await?;
                    let key = d
                        .answer
                        .iter()
                        .find(|l| l.split(' ').nth(3) == Some("DNSKEY"))
                        .and_then(|l| l.splitn(5, ' ').nth(4));
                    Ok::<_, anyhow::Error>(match key {
                        Some(k) => Check::Ready(k.to_string()),
                        None => Check::Pending(format!("{:?}", d.answer)),
                    })
                })
                .await?;
                let ds = ds_of_dnskey(ZONE, &dnskey)?;
                let zone = wait_for("status.dnssec.ds", DEADLINE, || async {
                    let object = get(&gtm.client, &gtm.apps, "GtmZone", "signed").await?;
                    Ok::<_, anyhow::Error>(if object["status"]["dnssec"]["ds"] == ds.as_str() {
                        Check::Ready(object)
                    } else {
                        Check::Pending(format!("status {}, served DS {ds}", object["status"]))
                    })
                })
                .await?;
                ensure!(
                    condition(&zone, "DnssecKeyReady") == Some(("True".into(), "KeyLoaded".into()))
                        && condition(&zone, "Ready").is_some_and(|(s, _)| s == "True"),
                    "conditions: {}",
                    zone["status"]["conditions"]
                );

                // The Secret goes: the zone says so (a touch of the zone starts a pass at once;
                // else the next one comes within 30 s) and its DNS process keeps its key.
                Api::<Secret>::namespaced(gtm.client.clone(), ns)
                    .delete(KEYS_SECRET, &Default::default())
                    .await?;
                let api: Api<DynamicObject> =
                    Api::namespaced_with(gtm.client.clone(), &gtm.apps, &gtm_resource("GtmZone"));
                let poke = json!({"metadata": {"annotations": {"test.kubegtm.io/poke": "1"}}});
                api.patch("signed", &PatchParams::default(), &Patch::Merge(&poke))
                    .await?;
                let zone = wait_for("DnssecKeyReady=False", DEADLINE, || async {
                    let object = get(&gtm.client, &gtm.apps, "GtmZone", "signed").await?;
                    Ok::<_, anyhow::Error>(match condition(&object, "DnssecKeyReady") {
                        Some((s, r)) if s == "False" => {
                            ensure!(r == "KeyNotFound", "reason {r}");
                            Check::Ready(object)
                        }
                        other => Check::Pending(format!("{other:?}")),
                    })
                })
                .await?;
                ensure!(
                    condition(&zone, "Ready") == Some(("False".into(), "DnssecKeyNotReady".into()))
                        && zone["status"].get("dnssec").is_none(),
                    "status without the Secret: {}",
                    zone["status"]
                );
                gtm.wait_events("signed", &["KeyNotFound"]).await?;
                let still = dig(dns, ZONE, "DNSKEY", &["+dnssec"]).await?;
                ensure!(
                    still.answer.iter().any(|l| l.ends_with(&dnskey)),
                    "the DNS process still serves its key: {still:?}"
                );
                gtm.check_running()
            })
        },
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// Runs one test of the whole loop: skips without the suite's control plane; otherwise installs
/// Helm release `name`, starts the active/standby example with `operators` operator processes
/// and one DNS process (backends on 127.<block>.x.y), waits until it answers, runs `body`, and
/// ends with every process's log on failure and the release uninstalled.
async fn with_gtm<F>(test: &str, name: &str, block: u8, operators: usize, body: F)
where
    F: for<'a> FnOnce(
        &'a ControlPlane,
        &'a Release,
        &'a mut Gtm,
    ) -> Pin<Box<dyn Future<Output = Result<()>> + 'a>>,
{
    with_gtm_values(test, name, &[], block, operators, body).await;
}

/// [`with_gtm`] with extra `helm install` arguments for the release.
async fn with_gtm_values<F>(
    test: &str,
    name: &str,
    values: &[&str],
    block: u8,
    operators: usize,
    body: F,
) where
    F: for<'a> FnOnce(
        &'a ControlPlane,
        &'a Release,
        &'a mut Gtm,
    ) -> Pin<Box<dyn Future<Output = Result<()>> + 'a>>,
{
    let Some(cp) = ControlPlane::get_or_skip(test, "main").await else {
        return;
    };
    let release = Release::install(&cp, name, values).await.unwrap();
    let mut gtm = release.start(block, operators).await.unwrap();
    let result = match gtm.settle().await {
        Ok(()) => body(&cp, &release, &mut gtm).await,
        Err(e) => Err(e),
    };
    gtm.finish(result).await;
    release.uninstall().await.unwrap();
}

/// A whole-loop test with a second cluster: skips without the suite's `edge` control plane;
/// otherwise [`with_gtm_values`] with `edgeAccess.edges={edge}`,
/// `edgeAccess.endpointAgents={edge}` and one operator, `body` getting the edge control plane
/// after the main one.
async fn with_edge<F>(test: &str, name: &str, edge: &str, block: u8, body: F)
where
    F: for<'a> FnOnce(
            &'a ControlPlane,
            &'a ControlPlane,
            &'a Release,
            &'a mut Gtm,
        ) -> Pin<Box<dyn Future<Output = Result<()>> + 'a>>
        + 'static,
{
    let Some(edge_cp) = ControlPlane::get_or_skip(test, "edge").await else {
        return;
    };
    let access = format!("edgeAccess.edges={{{edge}}}");
    let agents = format!("edgeAccess.endpointAgents={{{edge}}}");
    with_gtm_values(
        test,
        name,
        &["--set", &access, "--set", &agents],
        block,
        1,
        move |cp, release, gtm| Box::pin(async move { body(cp, &edge_cp, release, gtm).await }),
    )
    .await;
}

/// Fails unless ServiceAccount `namespace/account` may read ConfigMaps in `namespace` and do
/// nothing else: no writes, no Secrets, no other kinds, nothing in `other` (another namespace).
async fn reads_only_configmaps(
    cp: &ControlPlane,
    namespace: &str,
    account: &str,
    other: &str,
) -> Result<()> {
    for verb in ["get", "list", "watch"] {
        ensure!(
            cp.can_i(namespace, account, verb, "configmaps", namespace)
                .await?,
            "{account} may {verb} configmaps"
        );
    }
    for (verb, resource, in_ns) in [
        ("create", "configmaps", namespace),
        ("patch", "configmaps", namespace),
        ("delete", "configmaps", namespace),
        ("get", "configmaps", other),
        ("list", "configmaps", other),
        ("get", "secrets", namespace),
        ("list", "addresspools.gtm.kubegtm.io", other),
        ("list", "addresspools.gtm.kubegtm.io", namespace),
        ("get", "leases.coordination.k8s.io", namespace),
        ("create", "events", namespace),
        ("list", "pods", namespace),
    ] {
        ensure!(
            !cp.can_i(namespace, account, verb, resource, in_ns).await?,
            "{account} must not {verb} {resource} in {in_ns}"
        );
    }
    Ok(())
}

/// The state of every task of every address in a pool's status.
fn task_states(pool: &Value) -> Vec<String> {
    pool.pointer("/status/addresses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|a| a["tasks"].as_array().cloned().unwrap_or_default())
        .map(|t| t["state"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A namespace `prefix-<random>` for objects of one test.
async fn namespace(cp: &ControlPlane, prefix: &str) -> Result<String> {
    let name = e2e::cluster::unique_name(prefix);
    namespace_named(cp, &name).await?;
    Ok(name)
}

async fn namespace_named(cp: &ControlPlane, name: &str) -> Result<()> {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    match Api::<Namespace>::all(cp.client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The example addresses (127.0.10.1, 127.0.10.2, 127.0.20.1) moved to 127.<block>.10.1 etc., so
/// that tests never share a listener.
fn loopback_map(block: u8) -> Vec<(&'static str, String)> {
    vec![
        ("127.0.10.1", format!("127.{block}.10.1")),
        ("127.0.10.2", format!("127.{block}.10.2")),
        ("127.0.20.1", format!("127.{block}.20.1")),
    ]
}

/// A Helm release of the chart in its own namespace, CRDs applied beforehand.
struct Release {
    cp: ControlPlane,
    name: String,
    namespace: String,
}

impl Release {
    async fn install(cp: &ControlPlane, name: &str, values: &[&str]) -> Result<Self> {
        cp.apply_crds().await?;
        cp.delete_all_gtm_objects().await?;
        let namespace = format!("gtm-{name}");
        // A release left by an earlier, failed run of the same test.
        cp.helm(&["uninstall", name, "-n", &namespace, "--ignore-not-found"])
            .await?;
        delete_payload_configmaps(cp, &namespace).await?;
        let chart = repo_root().join("charts/kube-gtm");
        let zones = format!("zones={{{ZONE}}}");
        let mut args = vec![
            "install",
            name,
            chart.to_str().unwrap(),
            "-n",
            &namespace,
            "--create-namespace",
            "--set",
            &zones,
            "--set",
            "crds.install=false",
        ];
        args.extend_from_slice(values);
        cp.helm(&args).await?;
        Ok(Self {
            cp: cp.clone(),
            name: name.to_owned(),
            namespace,
        })
    }

    async fn spec(&self, component: Component) -> Result<PodSpec> {
        PodSpec::of_release(&self.cp.client, &self.namespace, &self.name, component).await
    }

    /// The chart's instance (`instance` unset: the full name).
    fn instance(&self) -> String {
        format!("{}-kube-gtm", self.name)
    }

    /// The ServiceAccount `edgeAccess.edges={edge}` creates.
    fn edge_account(&self, edge: &str) -> String {
        format!("{}-edge-{edge}", self.instance())
    }

    /// The ServiceAccount `proberAccess.locations={location}` creates.
    fn prober_account(&self, location: &str) -> String {
        format!("{}-prober-{location}", self.instance())
    }

    /// The ServiceAccount `edgeAccess.endpointAgents={edge}` creates.
    fn agent_account(&self, edge: &str) -> String {
        format!("{}-agent-{edge}", self.instance())
    }

    /// Backends on 127.<block>.x.y, the active/standby example applied in an apps namespace,
    /// `operators` operator processes and one DNS process, each with its chart account.
    async fn start(&self, block: u8, operators: usize) -> Result<Gtm> {
        let apps = namespace(&self.cp, &format!("{}-apps", self.name)).await?;
        let map = loopback_map(block);
        let mut backends = Vec::new();
        for (_, ip) in &map {
            backends.push(TestBackend::start(ip).await?);
        }
        let mut objects = load_example("health-checks.yaml")?;
        objects.extend(load_example("sequential-preemptive.yaml")?);
        rewrite(&mut objects, &map, &apps)?;
        let domain = domain_of(&objects).context("a domain")?;
        apply(&self.cp.client, &apps, &objects).await?;

        let logs = self.cp.work_dir.join(&self.name);
        let _ = std::fs::remove_dir_all(&logs);
        std::fs::create_dir_all(&logs)?;
        let op_spec = self.spec(Component::Operator).await?;
        // The DNS pod's Secret volumes (`dns.dnssec.keysSecret`), as kubelet would mount them.
        let dns_spec = self
            .spec(Component::Dns)
            .await?
            .with_mounted_secrets(&self.cp.client, &self.namespace, &logs.join("dns-0"))
            .await?;
        let op_config = self
            .cp
            .service_account_kubeconfig(&self.namespace, &op_spec.service_account)
            .await?;
        let dns_config = self
            .cp
            .service_account_kubeconfig(&self.namespace, &dns_spec.service_account)
            .await?;
        let mut ops = Vec::new();
        for i in 0..operators {
            let spec = op_spec.replica(&format!("op-{i}"));
            ops.push(GtmProcess::start(
                Component::Operator,
                &spec,
                &op_config,
                &logs.join(format!("operator-{i}.log")),
            )?);
        }
        let dns = vec![GtmProcess::start(
            Component::Dns,
            &dns_spec,
            &dns_config,
            &logs.join("dns-0.log"),
        )?];
        Ok(Gtm {
            client: self.cp.client.clone(),
            apps,
            domain,
            backends,
            operators: ops,
            dns,
            probers: Vec::new(),
        })
    }

    async fn payload_configmaps(&self) -> Result<Vec<ConfigMap>> {
        let api: Api<ConfigMap> = Api::namespaced(self.cp.client.clone(), &self.namespace);
        Ok(api
            .list(&ListParams::default().labels("gtm.kubegtm.io/payload"))
            .await?
            .items)
    }

    async fn lease_holder(&self) -> Result<Option<String>> {
        let leases = Api::<Lease>::namespaced(self.cp.client.clone(), &self.namespace)
            .list(&ListParams::default())
            .await?;
        Ok(leases
            .items
            .into_iter()
            .find_map(|l| l.spec.and_then(|s| s.holder_identity)))
    }

    /// Uninstalls the release and removes what the operator wrote (README: after `helm
    /// uninstall`, delete the payload ConfigMaps by label).
    async fn uninstall(self) -> Result<()> {
        self.cp.delete_all_gtm_objects().await?;
        self.cp
            .helm(&["uninstall", &self.name, "-n", &self.namespace])
            .await?;
        delete_payload_configmaps(&self.cp, &self.namespace).await
    }
}

/// An edge release (`mode=edge`) of the chart in the `edge` control plane, reading release
/// `control` of the main one with the account `control`'s `edgeAccess.edges` made for it: a
/// token from the TokenRequest API in a self-contained kubeconfig, stored in a Secret of the
/// edge cluster, as README tells users to.
struct EdgeRelease {
    cp: ControlPlane,
    name: String,
    namespace: String,
}

impl EdgeRelease {
    /// Installs edge release `name` with the access of `edge`.
    async fn install(
        cp: &ControlPlane,
        control: &Release,
        edge: &str,
        name: &str,
        values: &[&str],
    ) -> Result<Self> {
        let namespace = format!("gtm-edge-{name}");
        namespace_named(cp, &namespace).await?;
        cp.helm(&["uninstall", name, "-n", &namespace, "--ignore-not-found"])
            .await?;
        let kubeconfig = control
            .cp
            .service_account_kubeconfig(&control.namespace, &control.edge_account(edge))
            .await?;
        cp.create_kubeconfig_secret(&namespace, "kube-gtm-control", &kubeconfig)
            .await?;
        let chart = repo_root().join("charts/kube-gtm");
        let sets = [
            "mode=edge".to_owned(),
            format!("instance={}", control.instance()),
            "edge.controlPlane.kubeconfigSecret=kube-gtm-control".to_owned(),
            format!("edge.controlPlane.namespace={}", control.namespace),
            format!("zones={{{ZONE}}}"),
        ];
        let mut args = vec!["install", name, chart.to_str().unwrap(), "-n", &namespace];
        for set in &sets {
            args.extend(["--set", set]);
        }
        args.extend_from_slice(values);
        cp.helm(&args).await?;
        Ok(Self {
            cp: cp.clone(),
            name: name.to_owned(),
            namespace,
        })
    }

    /// Starts its DNS process as the edge Deployment's pod would run: its environment, the
    /// kubeconfig Secret mounted, and for its own cluster the chart's DNS account (which has no
    /// rights there); adds it to `gtm` and returns its index in `gtm.dns`.
    async fn start_dns(&self, gtm: &mut Gtm) -> Result<usize> {
        gtm.dns.push(self.start(Component::Dns).await?);
        Ok(gtm.dns.len() - 1)
    }

    /// Starts its endpoint agent as the edge Deployment's pod would run (environment, Secret
    /// mounted, the chart's agent account in the edge cluster, read-only on its kinds).
    async fn start_agent(&self) -> Result<GtmProcess> {
        self.start(Component::EndpointAgent).await
    }

    /// Starts its probe location as the edge's prober Deployment would run it (environment, the
    /// kubeconfig of the location's account in the control cluster mounted, the chart's prober
    /// account in the edge cluster); adds it to `gtm.probers`.
    async fn start_prober(&self, gtm: &mut Gtm) -> Result<()> {
        gtm.probers.push(self.start(Component::Prober).await?);
        Ok(())
    }

    /// Starts `component` with its Deployment's environment, its Secret volumes mounted, and a
    /// token of its ServiceAccount for this (the edge) cluster.
    async fn start(&self, component: Component) -> Result<GtmProcess> {
        let spec =
            PodSpec::of_release(&self.cp.client, &self.namespace, &self.name, component).await?;
        let dir = self
            .cp
            .work_dir
            .join(format!("edge-{}-{}", self.name, component.label()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let spec = spec
            .with_mounted_secrets(&self.cp.client, &self.namespace, &dir)
            .await?;
        let own = self
            .cp
            .service_account_kubeconfig(&self.namespace, &spec.service_account)
            .await?;
        GtmProcess::start(component, &spec, &own, &dir.join("process.log"))
    }

    async fn uninstall(self) -> Result<()> {
        self.cp
            .helm(&["uninstall", &self.name, "-n", &self.namespace])
            .await?;
        Ok(())
    }
}

/// Sets the `status.loadBalancer.ingress` of Service `namespace/name` to `ips`, as a cloud's
/// load-balancer controller would (there is none here).
async fn set_load_balancer(
    cp: &ControlPlane,
    namespace: &str,
    name: &str,
    ips: &[&str],
) -> Result<()> {
    let ingress: Vec<Value> = ips.iter().map(|ip| json!({"ip": ip})).collect();
    let patch = json!({"status": {"loadBalancer": {"ingress": ingress}}}).to_string();
    cp.kubectl(&[
        "patch",
        "service",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch,
    ])
    .await?;
    Ok(())
}

/// Creates Service `namespace/web` of type LoadBalancer with `ips` in its status.
async fn load_balancer_service(cp: &ControlPlane, namespace: &str, ips: &[&str]) -> Result<()> {
    let service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    });
    cp.kubectl_with_input(&["apply", "-f", "-"], &service.to_string())
        .await?
        .map_err(anyhow::Error::msg)?;
    set_load_balancer(cp, namespace, "web", ips).await
}

/// An IPv4 pool `name` of the addresses of `sources` (endpointSources), checked like the
/// examples' (http-healthz on 8080), and an A access domain `<name>.<zone>` answering it.
fn pool_from_sources(name: &str, sources: Value) -> Vec<Value> {
    vec![
        json!({
            "apiVersion": "gtm.kubegtm.io/v1alpha1", "kind": "AddressPool",
            "metadata": {"name": name},
            "spec": {"type": "IPv4", "policy": "RoundRobin",
                     "healthChecks": [{"template": "http-healthz", "port": 8080}],
                     "endpointSources": sources}
        }),
        json!({
            "apiVersion": "gtm.kubegtm.io/v1alpha1", "kind": "GtmAccessDomain",
            "metadata": {"name": name},
            "spec": {"domain": format!("{name}.{ZONE}"), "recordType": "A", "ttl": 5,
                     "policy": "RoundRobin", "pools": [{"name": name}]}
        }),
    ]
}

/// Deletes the payload ConfigMaps the operator wrote in `namespace` (they are not the chart's:
/// `helm uninstall` leaves them, and a new release would start from them).
async fn delete_payload_configmaps(cp: &ControlPlane, namespace: &str) -> Result<()> {
    cp.kubectl(&[
        "delete",
        "configmaps",
        "-n",
        namespace,
        "-l",
        "gtm.kubegtm.io/payload",
        "--ignore-not-found",
    ])
    .await?;
    Ok(())
}

/// An HTTP backend on `<ip>:8080` whose `/healthz` can be failed.
struct TestBackend {
    ip: String,
    backend: Arc<Backend>,
    task: JoinHandle<std::io::Result<()>>,
}

impl TestBackend {
    async fn start(ip: &str) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind((ip, 8080))
            .await
            .with_context(|| format!("binding {ip}:8080"))?;
        let backend = Backend::new(ip);
        let task = tokio::spawn(serve(listener, backend.clone()));
        Ok(Self {
            ip: ip.to_owned(),
            backend,
            task,
        })
    }

    fn fail(&self) {
        self.backend.respond("POST", "/fail");
    }

    fn recover(&self) {
        self.backend.respond("POST", "/recover");
    }
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A running GTM: backends, example objects, operator and DNS processes.
struct Gtm {
    client: Client,
    apps: String,
    domain: String,
    backends: Vec<TestBackend>,
    operators: Vec<GtmProcess>,
    dns: Vec<GtmProcess>,
    probers: Vec<GtmProcess>,
}

impl Gtm {
    /// Waits until the example is accepted and answered from eu-west.
    async fn settle(&self) -> Result<()> {
        wait_for("the domain accepted", DEADLINE, || async {
            let object = get(&self.client, &self.apps, "GtmAccessDomain", "app").await?;
            Ok::<_, anyhow::Error>(match condition(&object, "Accepted") {
                Some((s, _)) if s == "True" => Check::Ready(()),
                other => Check::Pending(format!("{other:?}")),
            })
        })
        .await?;
        self.wait_answer(&[&self.backends[0].ip, &self.backends[1].ip])
            .await?;
        // Every task Up in status: the answer alone could be a fail-open one.
        for pool in ["app-eu-west", "app-us-east"] {
            wait_for(&format!("every task of {pool} Up"), DEADLINE, || async {
                let object = get(&self.client, &self.apps, "AddressPool", pool).await?;
                let states = task_states(&object);
                Ok::<_, anyhow::Error>(if !states.is_empty() && states.iter().all(|s| s == "Up") {
                    Check::Ready(())
                } else {
                    Check::Pending(format!("{states:?}"))
                })
            })
            .await?;
        }
        Ok(())
    }

    async fn query_name(&self, name: &str) -> Result<Answer> {
        self.query_name_at(0, name).await
    }

    /// Queries DNS process `i` (0 is the control cluster's; edge processes follow).
    async fn query_name_at(&self, i: usize, name: &str) -> Result<Answer> {
        query(
            self.dns[i].dns.context("a DNS process")?,
            name,
            RecordType::A,
            Transport::Udp,
            Duration::from_secs(2),
        )
        .await
    }

    async fn query(&self) -> Result<Answer> {
        self.query_name(&self.domain).await
    }

    async fn wait_answer(&self, expected: &[&str]) -> Result<()> {
        self.wait_answer_at(0, expected).await
    }

    /// Waits until DNS process `i` answers the domain with exactly `expected`.
    async fn wait_answer_at(&self, i: usize, expected: &[&str]) -> Result<()> {
        self.wait_name_answer_at(i, &self.domain, expected).await
    }

    /// Waits until DNS process `i` answers `name` with exactly `expected`.
    async fn wait_name_answer_at(&self, i: usize, name: &str, expected: &[&str]) -> Result<()> {
        let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        expected.sort();
        wait_for(
            &format!("{name} to answer {expected:?} from DNS process {i}"),
            DEADLINE,
            || async {
                let answer = self.query_name_at(i, name).await?;
                Ok::<_, anyhow::Error>(if answer.sorted() == expected {
                    Check::Ready(())
                } else {
                    Check::Pending(answer.to_string())
                })
            },
        )
        .await?;
        Ok(())
    }

    async fn wait_pool_condition(&self, pool: &str, type_: &str, status: &str) -> Result<Value> {
        Ok(
            wait_for(&format!("{pool} {type_}={status}"), DEADLINE, || async {
                let object = get(&self.client, &self.apps, "AddressPool", pool).await?;
                Ok::<_, anyhow::Error>(match condition(&object, type_) {
                    Some((s, _)) if s == status => Check::Ready(object),
                    other => Check::Pending(format!("{other:?}")),
                })
            })
            .await?,
        )
    }

    /// (reason, from, to) of each entry of an object's status history, newest first.
    async fn history(&self, kind: &str, name: &str) -> Result<Vec<(String, String, String)>> {
        let object = get(&self.client, &self.apps, kind, name).await?;
        let text = |e: &Value, field: &str| e[field].as_str().unwrap_or_default().to_string();
        Ok(object["status"]["history"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| (text(e, "reason"), text(e, "from"), text(e, "to")))
            .collect())
    }

    /// (reason, message, count) of every event about `object`, sorted.
    async fn event_reasons(&self, object: &str) -> Result<Vec<(String, String, i32)>> {
        let mut events: Vec<_> = events_for(&self.client, &self.apps, object)
            .await?
            .into_iter()
            .map(|e| {
                (
                    e.reason.unwrap_or_default(),
                    e.message.unwrap_or_default(),
                    e.count.unwrap_or(1),
                )
            })
            .collect();
        events.sort();
        Ok(events)
    }

    async fn wait_events(&self, object: &str, reasons: &[&str]) -> Result<()> {
        wait_for(
            &format!("events {reasons:?} on {object}"),
            DEADLINE,
            || async {
                let seen = self.event_reasons(object).await?;
                let missing: Vec<_> = reasons
                    .iter()
                    .filter(|r| !seen.iter().any(|(s, _, _)| s == *r))
                    .collect();
                Ok::<_, anyhow::Error>(if missing.is_empty() {
                    Check::Ready(())
                } else {
                    Check::Pending(format!("missing {missing:?}, seen {seen:?}"))
                })
            },
        )
        .await?;
        Ok(())
    }

    /// Whether DNS process `i` reports its config source stale.
    async fn is_stale(&self, i: usize) -> Result<bool> {
        let stale = samples(
            &self.dns[i].metrics().await?,
            "gtm_dnspod_config_source_stale",
            &[],
        );
        ensure!(
            stale.len() == 1,
            "gtm_dnspod_config_source_stale: {stale:?}"
        );
        Ok(stale == [1.0])
    }

    /// Waits until DNS process `i` reports its source fresh and `/readyz` succeeds.
    async fn wait_fresh(&self, i: usize) -> Result<()> {
        wait_for(
            &format!("DNS process {i} fresh and ready"),
            DEADLINE,
            || async {
                let stale = self.is_stale(i).await?;
                let (ready, _) = self.dns[i].http_get("/readyz").await?;
                Ok::<_, anyhow::Error>(if !stale && ready == 200 {
                    Check::Ready(())
                } else {
                    Check::Pending(format!("stale {stale}, /readyz {ready}"))
                })
            },
        )
        .await?;
        Ok(())
    }

    async fn is_leader(&self, i: usize) -> Result<bool> {
        Ok(samples(
            &self.operators[i].metrics().await?,
            "gtm_operator_leader",
            &[],
        ) == [1.0])
    }

    async fn wait_single_leader(&self) -> Result<usize> {
        Ok(wait_for("one leader", DEADLINE, || async {
            let mut leaders = Vec::new();
            for i in 0..self.operators.len() {
                if self.is_leader(i).await? {
                    leaders.push(i);
                }
            }
            Ok::<_, anyhow::Error>(if leaders.len() == 1 {
                Check::Ready(leaders[0])
            } else {
                Check::Pending(format!("leaders {leaders:?}"))
            })
        })
        .await?)
    }

    async fn probes_total(&self, i: usize) -> Result<f64> {
        Ok(samples(
            &self.operators[i].metrics().await?,
            "gtm_operator_probes_total",
            &[],
        )
        .iter()
        .sum())
    }

    fn check_running(&mut self) -> Result<()> {
        for p in self
            .operators
            .iter_mut()
            .chain(self.dns.iter_mut())
            .chain(self.probers.iter_mut())
        {
            p.check_running()?;
        }
        Ok(())
    }

    /// Ends a test: on failure prints every process's log and the objects, then panics.
    async fn finish(self, result: Result<()>) {
        if let Err(error) = result {
            for p in self
                .operators
                .iter()
                .chain(self.dns.iter())
                .chain(self.probers.iter())
            {
                eprintln!(
                    "==> {} ({:?})\n{}",
                    p.log.display(),
                    p.component,
                    p.log_tail()
                );
            }
            eprintln!("{}", e2e::diag::collect(&self.client, &[&self.apps]).await);
            panic!("{error:#}");
        }
    }
}
