//! Thin Kubernetes I/O for the e2e tests: a namespace per test, backend pods, server-side apply
//! of example objects, status, events and metrics through the API server's proxy (pod IPs are
//! not reachable from the kind host), and helm.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
    PostParams,
};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::wait::{Check, Deadline, wait_for};

/// Field manager of everything the tests apply.
pub const FIELD_MANAGER: &str = "kube-gtm-e2e";
/// Port the test backend listens on (the examples' health checks use it too).
pub const BACKEND_PORT: u16 = 8080;

/// A namespace of one test, labelled with the test's name.
pub struct TestNamespace {
    /// Its name, `gtm-e2e-<test>-<random>`.
    pub name: String,
    client: Client,
}

impl TestNamespace {
    /// Creates a fresh namespace for `test`.
    pub async fn create(client: &Client, test: &str) -> Result<Self> {
        let name = unique_name(test);
        let ns: Namespace = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"kubegtm.io/e2e-test": test}}
        }))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .context("creating the test namespace")?;
        Ok(Self {
            name,
            client: client.clone(),
        })
    }

    /// Ends the test: on success deletes the namespace; on failure prints diagnostics of this
    /// namespace and of `release_namespace`, keeps the namespace for inspection, and panics.
    pub async fn finish(self, result: Result<()>, release_namespace: &str) {
        match result {
            Ok(()) => {
                let _ = Api::<Namespace>::all(self.client.clone())
                    .delete(&self.name, &DeleteParams::background())
                    .await;
            }
            Err(error) => {
                let report =
                    crate::diag::collect(&self.client, &[&self.name, release_namespace]).await;
                eprintln!("{report}");
                panic!("e2e test in namespace {} failed: {error:#}", self.name);
            }
        }
    }
}

/// Runs one cluster test: skips (with a printed reason) outside `make e2e`, else runs `body` in
/// a fresh namespace prefixed `prefix` and ends it with [`TestNamespace::finish`].
pub async fn run_in_namespace<F>(test: &str, prefix: &str, body: F)
where
    F: for<'a> FnOnce(
        &'a crate::env::E2eEnv,
        &'a Client,
        &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + 'a>>,
{
    let Some(env) = crate::env::E2eEnv::get_or_skip(test) else {
        return;
    };
    let client = Client::try_default()
        .await
        .expect("kube client from KUBECONFIG");
    let ns = TestNamespace::create(&client, prefix)
        .await
        .expect("test namespace");
    let result = body(&env, &client, &ns.name).await;
    ns.finish(result, &env.namespace).await;
}

/// `gtm-e2e-<test>-<6 hex digits>`, a valid namespace name of at most 63 characters.
pub fn unique_name(test: &str) -> String {
    let clean: String = test
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut base = format!("gtm-e2e-{}", clean.trim_matches('-'));
    base.truncate(63 - 7);
    format!(
        "{}-{:06x}",
        base.trim_end_matches('-'),
        (nanos as u32) & 0xff_ffff
    )
}

/// Starts a `gtm-test-backend` pod from the kube-gtm image and returns its IP once it is ready.
pub async fn run_backend(client: &Client, ns: &str, name: &str, image: &str) -> Result<String> {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "gtm-test-backend", "kubegtm.io/backend": name}},
        "spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "backend",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["/usr/local/bin/gtm-test-backend"],
                "ports": [{"name": "http", "containerPort": BACKEND_PORT}],
                // Readiness on `/`, which never fails: /healthz is what the tests toggle.
                "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
                "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}}
            }]
        }
    }))?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    pods.create(&PostParams::default(), &pod)
        .await
        .with_context(|| format!("creating backend pod {name}"))?;
    wait_for(
        &format!("backend pod {ns}/{name} ready"),
        Deadline::after(Duration::from_secs(120)),
        || async {
            let pod = pods.get(name).await?;
            let status = pod.status.unwrap_or_default();
            let ready = status
                .conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            Ok::<_, kube::Error>(match (ready, status.pod_ip) {
                (true, Some(ip)) => Check::Ready(ip),
                (_, ip) => Check::Pending(format!(
                    "phase {:?}, ready {ready}, ip {ip:?}",
                    status.phase
                )),
            })
        },
    )
    .await
    .map_err(Into::into)
}

/// `POST <path>` to a backend pod through the API server's pod proxy (`/fail`, `/recover`).
pub async fn backend_post(client: &Client, ns: &str, pod: &str, path: &str) -> Result<String> {
    let uri = format!("/api/v1/namespaces/{ns}/pods/{pod}:{BACKEND_PORT}/proxy{path}");
    let request = http::Request::post(uri).body(Vec::new())?;
    client
        .request_text(request)
        .await
        .with_context(|| format!("POST {path} to backend {ns}/{pod}"))
}

/// The API resource of a kube-gtm kind (`GtmAccessDomain`, `AddressPool`, `HealthCheckTemplate`,
/// `GtmZone`).
pub fn gtm_resource(kind: &str) -> ApiResource {
    let gvk = GroupVersionKind::gvk("gtm.kubegtm.io", "v1alpha1", kind);
    ApiResource::from_gvk_with_plural(&gvk, &format!("{}s", kind.to_ascii_lowercase()))
}

/// Server-side applies `objects` (kube-gtm kinds) into `ns`.
pub async fn apply(client: &Client, ns: &str, objects: &[Value]) -> Result<()> {
    for object in objects {
        let kind = object["kind"].as_str().context("object without kind")?;
        let name = object["metadata"]["name"]
            .as_str()
            .context("object without name")?;
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &gtm_resource(kind));
        api.patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(object),
        )
        .await
        .with_context(|| format!("applying {kind} {ns}/{name}"))?;
    }
    Ok(())
}

/// A kube-gtm object as JSON.
pub async fn get(client: &Client, ns: &str, kind: &str, name: &str) -> Result<Value> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &gtm_resource(kind));
    Ok(serde_json::to_value(api.get(name).await?)?)
}

/// The (status, reason) of condition `type_` in `object.status.conditions`.
pub fn condition(object: &Value, type_: &str) -> Option<(String, String)> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_owned(),
                c["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
}

/// Core-API events about the object `name` in `ns` (events.k8s.io events show there too).
pub async fn events_for(client: &Client, ns: &str, name: &str) -> Result<Vec<Event>> {
    let params = ListParams::default().fields(&format!("involvedObject.name={name}"));
    Ok(Api::<Event>::namespaced(client.clone(), ns)
        .list(&params)
        .await?
        .items)
}

/// `/metrics` of every pod matching `selector` in `ns`, through the pod proxy, concatenated.
pub async fn scrape(client: &Client, ns: &str, selector: &str, port: u16) -> Result<String> {
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(selector))
        .await?;
    if pods.items.is_empty() {
        bail!("no pods match {selector} in {ns}");
    }
    let mut text = String::new();
    for pod in pods.items {
        let name = pod.metadata.name.unwrap_or_default();
        let request = http::Request::get(format!(
            "/api/v1/namespaces/{ns}/pods/{name}:{port}/proxy/metrics"
        ))
        .body(Vec::new())?;
        // A standby replica may be starting; the leader's numbers are what count.
        if let Ok(body) = client.request_text(request).await {
            text.push_str(&body);
            text.push('\n');
        }
    }
    Ok(text)
}

/// The values of the samples of metric `name` (Prometheus text format) whose labels include all
/// of `labels`. Every replica exports its own sample, so there may be several.
pub fn samples(text: &str, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let has_all = labels.iter().all(|(k, v)| {
                label_text
                    .split(',')
                    .any(|pair| pair.trim() == format!("{k}=\"{v}\""))
            });
            if has_all {
                value.trim().parse().ok()
            } else {
                None
            }
        })
        .collect()
}

/// Runs `helm` with `args`; fails with its output when it fails.
pub async fn helm(args: &[String]) -> Result<String> {
    let output = tokio::process::Command::new("helm")
        .args(args)
        .output()
        .await
        .context("running helm")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        bail!("helm {} failed: {text}", args.join(" "));
    }
    Ok(text)
}

/// The active/standby example (examples/health-checks.yaml and sequential-preemptive.yaml)
/// deployed in a test namespace: its addresses rewritten to backend pods' IPs.
pub struct SequentialExample {
    /// Pod IP of the first eu-west backend.
    pub eu_a: String,
    /// Pod IP of the second eu-west backend.
    pub eu_b: String,
    /// Pod IP of the us-east backend.
    pub us_a: String,
    /// The access domain's name.
    pub domain: String,
}

/// Starts the three backends and applies the active/standby example in `ns`.
pub async fn deploy_sequential_example(
    client: &Client,
    ns: &str,
    image: &str,
) -> Result<SequentialExample> {
    let eu_a = run_backend(client, ns, "eu-west-1a", image).await?;
    let eu_b = run_backend(client, ns, "eu-west-1b", image).await?;
    let us_a = run_backend(client, ns, "us-east-1a", image).await?;
    let mut objects = crate::manifests::load_example("health-checks.yaml")?;
    objects.extend(crate::manifests::load_example(
        "sequential-preemptive.yaml",
    )?);
    let map = [
        ("127.0.10.1", eu_a.clone()),
        ("127.0.10.2", eu_b.clone()),
        ("127.0.20.1", us_a.clone()),
    ];
    crate::manifests::rewrite(&mut objects, &map, ns)?;
    let domain =
        crate::manifests::domain_of(&objects).context("the example has a GtmAccessDomain")?;
    apply(client, ns, &objects).await?;
    Ok(SequentialExample {
        eu_a,
        eu_b,
        us_a,
        domain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_valid_namespace_names() {
        let name = unique_name("Sequential_Failover");
        assert!(name.starts_with("gtm-e2e-sequential-failover-"), "{name}");
        let long = unique_name(&"x".repeat(100));
        assert!(long.len() <= 63, "{long}");
        for n in [name, long] {
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{n}"
            );
            assert!(!n.ends_with('-'));
        }
    }

    #[test]
    fn plurals_of_the_three_kinds() {
        assert_eq!(gtm_resource("GtmAccessDomain").plural, "gtmaccessdomains");
        assert_eq!(gtm_resource("AddressPool").plural, "addresspools");
        assert_eq!(
            gtm_resource("HealthCheckTemplate").plural,
            "healthchecktemplates"
        );
        assert_eq!(
            gtm_resource("AddressPool").api_version,
            "gtm.kubegtm.io/v1alpha1"
        );
    }

    #[test]
    fn conditions_are_found_by_type() {
        let pool = json!({"status": {"conditions": [
            {"type": "Accepted", "status": "True", "reason": "Valid"},
            {"type": "Available", "status": "False", "reason": "JudgementNotMet"}
        ]}});
        assert_eq!(
            condition(&pool, "Available"),
            Some(("False".into(), "JudgementNotMet".into()))
        );
        assert_eq!(condition(&pool, "Degraded"), None);
        assert_eq!(condition(&json!({}), "Ready"), None);
    }

    #[test]
    fn samples_match_name_and_labels() {
        let text = "# HELP gtm_operator_address_up 1 when the address is available\n\
                    # TYPE gtm_operator_address_up gauge\n\
                    gtm_operator_address_up{namespace=\"t\",pool=\"eu\",address=\"10.0.0.1\"} 0\n\
                    gtm_operator_address_up{namespace=\"t\",pool=\"eu\",address=\"10.0.0.2\"} 1\n\
                    gtm_operator_address_up_total 5\n\
                    gtm_operator_failovers_total{namespace=\"t\",domain=\"app\"} 2\n\
                    gtm_operator_failovers_total{namespace=\"t\",domain=\"app\"} 2\n";
        assert_eq!(
            samples(text, "gtm_operator_address_up", &[("address", "10.0.0.1")]),
            [0.0]
        );
        assert_eq!(
            samples(text, "gtm_operator_address_up", &[("pool", "eu")]),
            [0.0, 1.0]
        );
        assert_eq!(
            samples(text, "gtm_operator_failovers_total", &[]),
            [2.0, 2.0]
        );
        assert!(samples(text, "gtm_operator_address_up", &[("address", "10.0.0.9")]).is_empty());
    }
}
