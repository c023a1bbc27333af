//! Verdicts by task number (schema 1.3) over real sockets: a numbered verdict moves the answer;
//! verdicts numbered by another task list are never applied by number (the ids are read
//! instead); numbered verdicts that do not fit their task list are refused and the last good
//! ones keep serving.
//!
//! The payloads here say one thing by number and another by id, which the operator never
//! writes, so that each answer shows which of the two the pod read.

mod support;

use gtm_crds::common::LbPolicy;
use gtm_crds::config::{GtmConfig, TaskList};
use gtm_crds::domain::RecordType as Rt;
use gtm_crds::parts::Payload;
use hickory_server::proto::rr::RecordType;
use support::fixtures::*;
use support::*;

const WWW: &str = "www.gtm.example.com.";

/// www answered by a pool of `addresses`, each with one task.
fn serving(generation: u64, addresses: &[&str]) -> GtmConfig {
    config(
        generation,
        vec![domain(
            "www",
            Rt::A,
            LbPolicy::RoundRobin,
            vec![member("ns/web")],
        )],
        vec![pool(
            "ns/web",
            LbPolicy::RoundRobin,
            addresses.iter().map(|a| addr(a)).collect(),
        )],
    )
}

/// A health payload numbered by `list` with the tasks of `down_by_number` down, whose ids say
/// that the tasks of `down_by_id` are down.
fn health(
    generation: u64,
    list: &TaskList<'_>,
    down_by_number: &[&str],
    down_by_id: &[&str],
) -> Vec<u8> {
    let mut health = health_down(generation, down_by_number).numbered_by(list);
    health.tasks = health_down(generation, down_by_id).tasks;
    serde_json::to_vec(&health).unwrap()
}

async fn answer(pod: &TestPod) -> Vec<String> {
    let mut got = data(&udp(pod.addr, &query(WWW, RecordType::A)).await.answers);
    got.sort();
    got
}

#[tokio::test]
async fn a_numbered_verdict_moves_the_answer_for_its_task_list_only() {
    let (a, b) = ("192.0.2.1", "192.0.2.2");
    let config = serving(1, &[a, b]);
    let list = TaskList::of(&config);
    let mut pod = TestPod::serving(&config, &health_down(1, &[])).await;
    assert_eq!(answer(&pod).await, [a, b]);

    // Numbered by the served task list: read by number.
    pod.loader
        .offer(Payload::Health, health(2, &list, &[b], &[a]))
        .unwrap();
    assert_eq!(answer(&pod).await, [a]);
    pod.loader
        .offer(Payload::Health, health(3, &list, &[a], &[]))
        .unwrap();
    assert_eq!(answer(&pod).await, [b]);

    // Numbered by another task list (the same addresses in another order): read by id.
    let reordered = serving(1, &[b, a]);
    let other = TaskList::of(&reordered);
    assert_ne!(other.digest(), list.digest());
    pod.loader
        .offer(Payload::Health, health(4, &other, &[a], &[b]))
        .unwrap();
    assert_eq!(answer(&pod).await, [a]);

    // Verdicts that do not fit their task list are refused; the last good ones serve on.
    let mut short: serde_json::Value =
        serde_json::from_slice(&health(5, &list, &[b], &[b])).unwrap();
    short["numbered"]["verdicts"] = "D".into();
    assert!(
        pod.loader
            .offer(Payload::Health, serde_json::to_vec(&short).unwrap())
            .is_err()
    );
    assert_eq!(answer(&pod).await, [a]);
    let served = pod.shared.snapshot().unwrap();
    assert_eq!(served.compiled.health_generation(), 4);

    // A new config whose task list the kept payload is not numbered by reads its ids.
    let grown = serving(6, &[a, b, "192.0.2.3"]);
    pod.loader.offer(Payload::Config, grown.to_json()).unwrap();
    assert_eq!(answer(&pod).await, [a, "192.0.2.3"]);
}
