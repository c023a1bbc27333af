//! The release's lifecycle, run alone and last by `make e2e`: `helm upgrade` while answers keep
//! flowing, then `helm uninstall` leaves nothing of the release running (CRDs are kept).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use e2e::cluster;
use e2e::dns::{self, Transport};
use e2e::env::E2eEnv;
use e2e::wait::{Check, Deadline, wait_for};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::ListParams;
use kube::{Api, Client};

async fn upgrade_and_uninstall(env: &E2eEnv, client: &Client, ns: &str) -> Result<()> {
    let cluster::SequentialExample {
        eu_a, eu_b, domain, ..
    } = cluster::deploy_sequential_example(client, ns, &env.image).await?;
    let mut want = vec![eu_a, eu_b];
    want.sort();
    wait_for(
        &format!("{domain} to answer {want:?}"),
        Deadline::after(Duration::from_secs(90)),
        || async {
            let answer = dns::query(
                env.dns,
                &domain,
                RecordType::A,
                Transport::Udp,
                Duration::from_secs(2),
            )
            .await?;
            anyhow::Ok(if answer.sorted() == want {
                Check::Ready(())
            } else {
                Check::Pending(answer.to_string())
            })
        },
    )
    .await?;

    // Query continuously while the release is upgraded (a pod-template change rolls both
    // Deployments). A query counts as lost only when three tries in a row get no answer.
    let stop = Arc::new(AtomicBool::new(false));
    let querier = {
        let (stop, server, domain, want) = (stop.clone(), env.dns, domain.clone(), want.clone());
        tokio::spawn(async move {
            let (mut answered, mut problems) = (0u32, Vec::new());
            while !stop.load(Ordering::SeqCst) {
                match dns::query_with_retries(
                    server,
                    &domain,
                    RecordType::A,
                    Transport::Udp,
                    Duration::from_millis(700),
                    3,
                )
                .await
                {
                    Ok(a) if a.rcode == ResponseCode::NoError && a.sorted() == want => {
                        answered += 1
                    }
                    Ok(a) => problems.push(format!("wrong answer {a}")),
                    Err(e) => problems.push(format!("{e:#}")),
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (answered, problems)
        })
    };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        .to_string();
    let mut args: Vec<String> = vec!["upgrade".into(), env.release.clone()];
    args.extend(env.chart_args.iter().cloned());
    for component in ["operator", "dns"] {
        args.push("--set-string".into());
        args.push(format!(
            "{component}.podAnnotations.kubegtm\\.io/e2e-upgrade={stamp}"
        ));
    }
    args.extend(["--wait".into(), "--timeout".into(), "5m".into()]);
    cluster::helm(&args).await?;
    // Keep querying a little after the rollout: terminating pods leave the endpoints last.
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::SeqCst);
    let (answered, problems) = querier.await?;
    println!(
        "during the upgrade: {answered} answers, {} problems",
        problems.len()
    );
    ensure!(
        answered > 10,
        "too few answers during the upgrade: {answered}"
    );
    ensure!(
        problems.is_empty(),
        "answers stopped or changed during the upgrade: {problems:?}"
    );

    // Uninstall: nothing of the release keeps running; the CRDs stay (crds.keep).
    cluster::helm(&[
        "uninstall".into(),
        env.release.clone(),
        "--namespace".into(),
        env.namespace.clone(),
        "--wait".into(),
    ])
    .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &env.namespace);
    let selector = format!("app.kubernetes.io/instance={}", env.release);
    wait_for(
        "the release's pods to be gone",
        Deadline::after(Duration::from_secs(120)),
        || async {
            let left = pods
                .list(&ListParams::default().labels(&selector))
                .await?
                .items;
            let names: Vec<String> = left.into_iter().filter_map(|p| p.metadata.name).collect();
            anyhow::Ok(if names.is_empty() {
                Check::Ready(())
            } else {
                Check::Pending(format!("pods {names:?}"))
            })
        },
    )
    .await?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in [
        "gtmaccessdomains",
        "addresspools",
        "healthchecktemplates",
        "gtmzones",
    ] {
        crds.get(&format!("{name}.gtm.kubegtm.io"))
            .await
            .with_context(|| format!("CRD {name} kept after uninstall"))?;
    }
    let after = dns::query(
        env.dns,
        &domain,
        RecordType::A,
        Transport::Udp,
        Duration::from_secs(1),
    )
    .await;
    ensure!(
        after.is_err(),
        "nothing answers after uninstall, got {after:?}"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs the kind cluster of `make e2e`; uninstalls the release, so it runs last"]
async fn upgrade_keeps_answers_flowing_and_uninstall_is_clean() {
    cluster::run_in_namespace(
        "upgrade_keeps_answers_flowing_and_uninstall_is_clean",
        "lifecycle",
        |env, client, ns| Box::pin(upgrade_and_uninstall(env, client, ns)),
    )
    .await;
}
