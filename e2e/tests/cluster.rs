//! Cluster tests that share the installation made by `make e2e`, each in its own namespace.
//! `#[ignore]`d so that plain `cargo test` only builds them; outside `make e2e` they skip.

use std::time::Duration;

use anyhow::{Result, ensure};
use e2e::cluster;
use e2e::dns::{self, Transport};
use e2e::env::E2eEnv;
use e2e::wait::{Check, Deadline, wait_for};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use kube::Client;

/// Health checks run every 2 s and need 2 failures or successes: a transition shows within
/// about 10 s; allow for reconcile, ConfigMap propagation and a slow CI machine.
const TRANSITION: Duration = Duration::from_secs(90);
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// Waits until `name` A, over `transport`, answers exactly `expected` (any order).
async fn wait_for_answer(
    env: &E2eEnv,
    name: &str,
    transport: Transport,
    expected: &[&str],
) -> Result<()> {
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    wait_for(
        &format!("{name} A over {transport:?} to answer {want:?}"),
        Deadline::after(TRANSITION),
        || async {
            let answer = dns::query(env.dns, name, RecordType::A, transport, QUERY_TIMEOUT).await?;
            anyhow::Ok(
                if answer.rcode == ResponseCode::NoError
                    && answer.authoritative
                    && answer.sorted() == want
                {
                    Check::Ready(())
                } else {
                    Check::Pending(answer.to_string())
                },
            )
        },
    )
    .await?;
    Ok(())
}

/// Waits until the pool's `Available` condition has `status`; returns the pool.
async fn wait_for_pool(
    client: &Client,
    ns: &str,
    pool: &str,
    status: &str,
) -> Result<serde_json::Value> {
    Ok(wait_for(
        &format!("AddressPool {pool} Available={status}"),
        Deadline::after(TRANSITION),
        || async {
            let object = cluster::get(client, ns, "AddressPool", pool).await?;
            anyhow::Ok(match cluster::condition(&object, "Available") {
                Some((s, _)) if s == status => Check::Ready(object),
                other => {
                    Check::Pending(format!("Available={other:?}, status={}", object["status"]))
                }
            })
        },
    )
    .await?)
}

/// Waits until the leader exports `gtm_operator_address_up{address} == up`.
async fn wait_for_address_metric(
    client: &Client,
    env: &E2eEnv,
    address: &str,
    up: f64,
) -> Result<()> {
    let selector = format!(
        "app.kubernetes.io/instance={},app.kubernetes.io/component=operator",
        env.release
    );
    wait_for(
        &format!("gtm_operator_address_up{{address={address}}} == {up}"),
        Deadline::after(TRANSITION),
        || async {
            let text = cluster::scrape(client, &env.namespace, &selector, 8080).await?;
            let values =
                cluster::samples(&text, "gtm_operator_address_up", &[("address", address)]);
            anyhow::Ok(if values.contains(&up) {
                Check::Ready(())
            } else {
                Check::Pending(format!("samples {values:?}"))
            })
        },
    )
    .await?;
    Ok(())
}

/// Active/standby (examples/sequential-preemptive.yaml): both eu-west backends fail, the answer
/// moves to us-east and the pool, its events and the metrics say so; they recover, and the answer
/// returns (Preemptive).
async fn sequential_failover(env: &E2eEnv, client: &Client, ns: &str) -> Result<()> {
    let cluster::SequentialExample {
        eu_a,
        eu_b,
        us_a,
        domain,
    } = cluster::deploy_sequential_example(client, ns, &env.image).await?;

    wait_for(
        "GtmAccessDomain app Ready=True",
        Deadline::after(TRANSITION),
        || async {
            let object = cluster::get(client, ns, "GtmAccessDomain", "app").await?;
            anyhow::Ok(match cluster::condition(&object, "Ready") {
                Some((s, _)) if s == "True" => Check::Ready(()),
                other => Check::Pending(format!(
                    "Ready={other:?}, conditions={}",
                    object["status"]["conditions"]
                )),
            })
        },
    )
    .await?;
    wait_for_answer(env, &domain, Transport::Udp, &[&eu_a, &eu_b]).await?;
    wait_for_answer(env, &domain, Transport::Tcp, &[&eu_a, &eu_b]).await?;
    wait_for_pool(client, ns, "app-eu-west", "True").await?;

    // Fail the primary region.
    for pod in ["eu-west-1a", "eu-west-1b"] {
        cluster::backend_post(client, ns, pod, "/fail").await?;
    }
    wait_for_answer(env, &domain, Transport::Udp, &[&us_a]).await?;
    let pool = wait_for_pool(client, ns, "app-eu-west", "False").await?;
    let addresses = pool["status"]["addresses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ensure!(
        !addresses.is_empty() && addresses.iter().all(|a| a["available"] == false),
        "every eu-west address reported unavailable: {}",
        pool["status"]
    );
    wait_for(
        "a Warning event on AddressPool app-eu-west",
        Deadline::after(TRANSITION),
        || async {
            let events = cluster::events_for(client, ns, "app-eu-west").await?;
            let reasons: Vec<String> = events
                .iter()
                .map(|e| format!("{:?}/{:?}", e.type_, e.reason))
                .collect();
            anyhow::Ok(
                if events.iter().any(|e| e.type_.as_deref() == Some("Warning")) {
                    Check::Ready(())
                } else {
                    Check::Pending(format!("events {reasons:?}"))
                },
            )
        },
    )
    .await?;
    wait_for_address_metric(client, env, &eu_a, 0.0).await?;
    let selector = format!(
        "app.kubernetes.io/instance={},app.kubernetes.io/component=operator",
        env.release
    );
    let text = cluster::scrape(client, &env.namespace, &selector, 8080).await?;
    // Domain label: `<namespace>/<name>` of the GtmAccessDomain.
    let domain_id = format!("{ns}/app");
    let failovers = cluster::samples(
        &text,
        "gtm_operator_failovers_total",
        &[("domain", &domain_id)],
    );
    ensure!(
        failovers.iter().any(|v| *v >= 1.0),
        "gtm_operator_failovers_total counted the failover: {failovers:?}"
    );

    // Recover: Preemptive returns to eu-west.
    for pod in ["eu-west-1a", "eu-west-1b"] {
        cluster::backend_post(client, ns, pod, "/recover").await?;
    }
    wait_for_answer(env, &domain, Transport::Udp, &[&eu_a, &eu_b]).await?;
    wait_for_pool(client, ns, "app-eu-west", "True").await?;
    wait_for_address_metric(client, env, &eu_a, 1.0).await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs the kind cluster of `make e2e`"]
async fn sequential_failover_is_answered_reported_and_recovered() {
    cluster::run_in_namespace(
        "sequential_failover_is_answered_reported_and_recovered",
        "failover",
        |env, client, ns| Box::pin(sequential_failover(env, client, ns)),
    )
    .await;
}

/// Names outside the served zones are refused and the zone apex has SOA: the DNS pods are
/// authoritative servers, never open resolvers.
#[tokio::test]
#[ignore = "needs the kind cluster of `make e2e`"]
async fn out_of_zone_queries_are_refused_and_the_apex_has_an_soa() {
    let Some(env) = E2eEnv::get_or_skip("out_of_zone_queries_are_refused_and_the_apex_has_an_soa")
    else {
        return;
    };
    for transport in [Transport::Udp, Transport::Tcp] {
        let answer = dns::query_with_retries(
            env.dns,
            "example.net",
            RecordType::A,
            transport,
            QUERY_TIMEOUT,
            3,
        )
        .await
        .expect("an answer");
        assert_eq!(
            answer.rcode,
            ResponseCode::Refused,
            "{transport:?}: {answer}"
        );
        let soa = dns::query_with_retries(
            env.dns,
            "gtm.example.com",
            RecordType::SOA,
            transport,
            QUERY_TIMEOUT,
            3,
        )
        .await
        .expect("an answer");
        assert!(
            soa.authoritative && soa.types == [RecordType::SOA],
            "{transport:?}: {soa}"
        );
    }
}
