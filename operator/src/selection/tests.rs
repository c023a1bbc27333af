use gtm_crds::HealthJudgement;
use gtm_crds::config::{AddressConfig, PoolMember, SCHEMA_VERSION};
use gtm_crds::domain::{Fallback, RecordType};
use gtm_crds::pool::{AddressMode, PoolType};

use super::*;
use crate::locations::quorum::LocationLatency;

fn address(value: &str, order: u16) -> AddressConfig {
    AddressConfig {
        value: value.into(),
        enabled: true,
        mode: AddressMode::Auto,
        weight: 1,
        order,
        sources: Default::default(),
        health_judgement: HealthJudgement::AnyOk,
        tasks: vec![format!("t@{value}")],
    }
}

fn pool(id: &str, policy: LbPolicy, mode: SequentialMode, addrs: &[(&str, u16)]) -> PoolConfig {
    PoolConfig {
        id: id.into(),
        pool_type: PoolType::IPv4,
        enabled: true,
        policy,
        sequential_mode: mode,
        affinity: None,
        health_judgement: HealthJudgement::AnyOk,
        min_available: None,
        addresses: addrs.iter().map(|(v, o)| address(v, *o)).collect(),
    }
}

fn config(domain_policy: LbPolicy, mode: SequentialMode) -> GtmConfig {
    GtmConfig {
        schema_version: SCHEMA_VERSION,
        generation: 1,
        zones: vec!["gtm.example.com".into()],
        zone_data: Vec::new(),
        serials: Default::default(),
        domains: vec![DomainConfig {
            id: "ns/app".into(),
            name: "app.gtm.example.com".into(),
            record_type: RecordType::A,
            ttl: 30,
            policy: domain_policy,
            sequential_mode: mode,
            affinity: None,
            latency: None,
            max_answers: None,
            when_all_unavailable: Fallback::FailOpen,
            pools: vec![
                PoolMember {
                    pool: "ns/primary".into(),
                    order: 1,
                    weight: 1,
                    sources: Default::default(),
                },
                PoolMember {
                    pool: "ns/standby".into(),
                    order: 2,
                    weight: 1,
                    sources: Default::default(),
                },
            ],
        }],
        pools: vec![
            pool(
                "ns/primary",
                LbPolicy::Sequential,
                mode,
                &[("10.0.0.2", 2), ("10.0.0.1", 1)],
            ),
            pool("ns/standby", LbPolicy::RoundRobin, mode, &[("10.0.1.1", 1)]),
        ],
        templates: BTreeMap::new(),
    }
}

/// Runs one evaluation step with the given addresses down; returns the new selections and
/// the domain view.
fn step(
    c: &GtmConfig,
    down: &[&str],
    previous: &ActiveSelections,
) -> (ActiveSelections, DomainView) {
    let task = |id: &str| {
        if down.iter().any(|d| id.ends_with(d)) {
            HealthState::Down
        } else {
            HealthState::Up
        }
    };
    let views = pool_views(&c.pools, &task);
    let active = active_selections(c, &c.pools, &views, &LatencyView::new(), previous);
    let by_id: BTreeMap<&str, &PoolConfig> = c.pools.iter().map(|p| (p.id.as_str(), p)).collect();
    let view = domain_view(&c.domains[0], &by_id, &views, &active);
    (active, view)
}

#[test]
fn preemptive_levels_fail_over_and_return() {
    let c = config(LbPolicy::Sequential, SequentialMode::Preemptive);
    let (a, v) = step(&c, &[], &ActiveSelections::default());
    assert_eq!(a.domains["ns/app"], "ns/primary");
    assert_eq!(
        a.pools["ns/primary"], "10.0.0.1",
        "lowest order, not first listed"
    );
    assert!(!v.failed_over);

    // Address level: the first address fails, the second takes over, and gives way back.
    let (a, _) = step(&c, &["10.0.0.1"], &a);
    assert_eq!(a.pools["ns/primary"], "10.0.0.2");
    let (a, _) = step(&c, &[], &a);
    assert_eq!(a.pools["ns/primary"], "10.0.0.1");

    // Pool level: the whole primary fails.
    let (a, v) = step(&c, &["10.0.0.1", "10.0.0.2"], &a);
    assert_eq!(a.domains["ns/app"], "ns/standby");
    assert_eq!(v.answering, ["ns/standby"]);
    assert!(v.failed_over && !v.all_unavailable);
    let (a, v) = step(&c, &[], &a);
    assert_eq!(a.domains["ns/app"], "ns/primary");
    assert!(!v.failed_over);
}

#[test]
fn non_preemptive_levels_stay_until_the_member_fails() {
    let c = config(LbPolicy::Sequential, SequentialMode::NonPreemptive);
    let (a, _) = step(&c, &[], &ActiveSelections::default());
    let (a, v) = step(&c, &["10.0.0.1", "10.0.0.2"], &a);
    assert_eq!(a.domains["ns/app"], "ns/standby");
    assert!(v.failed_over);
    // The primary recovers: stay on the standby.
    let (a, v) = step(&c, &[], &a);
    assert_eq!(a.domains["ns/app"], "ns/standby");
    assert_eq!(v.answering, ["ns/standby"]);
    assert!(v.failed_over);
    // The standby fails: back to the primary.
    let (a, _) = step(&c, &["10.0.1.1"], &a);
    assert_eq!(a.domains["ns/app"], "ns/primary");

    // Address level in the same mode.
    let (a, _) = step(&c, &["10.0.0.1"], &a);
    assert_eq!(a.pools["ns/primary"], "10.0.0.2");
    let (a, _) = step(&c, &[], &a);
    assert_eq!(a.pools["ns/primary"], "10.0.0.2");
}

#[test]
fn nothing_available_fails_open_to_the_first_pool_and_keeps_the_choice() {
    let c = config(LbPolicy::Sequential, SequentialMode::NonPreemptive);
    let (a, _) = step(&c, &[], &ActiveSelections::default());
    let (a, v) = step(&c, &["10.0.0.1", "10.0.0.2", "10.0.1.1"], &a);
    assert!(v.all_unavailable);
    assert_eq!(v.answering, ["ns/primary"]);
    assert_eq!(a.domains["ns/app"], "ns/primary", "previous choice kept");
    assert!(
        !v.keeps_health,
        "nothing is available: all addresses answer"
    );
}

#[test]
fn failing_open_prefers_the_pool_that_still_has_available_addresses() {
    let mut c = config(LbPolicy::Sequential, SequentialMode::Preemptive);
    c.pools[0].min_available = Some(2);
    // The primary keeps one of its two addresses, too few for minAvailable; the backup is down.
    let (a, v) = step(&c, &["10.0.0.1", "10.0.1.1"], &ActiveSelections::default());
    assert!(v.all_unavailable && v.keeps_health);
    assert_eq!(v.answering, ["ns/primary"]);
    assert_eq!(
        a.pools["ns/primary"], "10.0.0.2",
        "its available address answers"
    );
    c.domains[0].pools[0].order = 3;
    let (_, v) = step(&c, &["10.0.0.1", "10.0.1.1"], &ActiveSelections::default());
    assert_eq!(v.answering, ["ns/primary"], "even at a higher order");
}

#[test]
fn other_policies_answer_every_available_pool() {
    let c = config(LbPolicy::Weighted, SequentialMode::Preemptive);
    let (a, v) = step(&c, &[], &ActiveSelections::default());
    assert!(!a.domains.contains_key("ns/app"));
    assert_eq!(v.answering, ["ns/primary", "ns/standby"]);
    assert!(!v.failed_over);
    let (_, v) = step(&c, &["10.0.1.1"], &a);
    assert_eq!(v.answering, ["ns/primary"]);
    assert!(v.failed_over);
}

#[test]
fn latency_ranks_each_locations_pools_and_holds_within_the_margins() {
    use gtm_crds::latency::{LatencyLocation, LatencySteering};
    let mut c = config(LbPolicy::Latency, SequentialMode::Preemptive);
    let location = |name: &str| LatencyLocation {
        name: name.into(),
        sources: Default::default(),
    };
    c.domains[0].latency = Some(LatencySteering {
        locations: vec![location("eu"), location("us"), location("ap")],
        margin_percent: 20,
        margin_millis: 5,
    });
    // eu: primary (mean of its addresses, 30 and 50) 40 ms, standby 90; us: standby faster.
    let measured = |primary: [u32; 2], standby: u32| LocationLatency {
        measured: BTreeMap::from([
            ("t@10.0.0.1".to_string(), primary[0]),
            ("t@10.0.0.2".to_string(), primary[1]),
            ("t@10.0.1.1".to_string(), standby),
        ]),
        unjudged: BTreeSet::new(),
    };
    let mut latency = LatencyView::from([
        ("eu".to_string(), measured([30, 50], 90)),
        ("us".to_string(), measured([120, 140], 20)),
    ]);
    let task = |_: &str| HealthState::Up;
    let views = pool_views(&c.pools, &task);
    let first = active_selections(&c, &c.pools, &views, &latency, &ActiveSelections::default());
    let rankings = &first.latency["ns/app"];
    assert_eq!(rankings["eu"], ["ns/primary", "ns/standby"]);
    assert_eq!(rankings["us"], ["ns/standby", "ns/primary"]);
    assert!(!rankings.contains_key("ap"), "ap measures nothing");
    // eu's standby gets a little faster than its primary: within the margins, eu holds.
    latency.insert("eu".into(), measured([30, 50], 36));
    let second = active_selections(&c, &c.pools, &views, &latency, &first);
    assert_eq!(second.latency["ns/app"]["eu"], ["ns/primary", "ns/standby"]);
    // Much faster: eu switches. A down address leaves the mean.
    latency.insert("eu".into(), measured([30, 50], 10));
    let third = active_selections(&c, &c.pools, &views, &latency, &second);
    assert_eq!(third.latency["ns/app"]["eu"], ["ns/standby", "ns/primary"]);
    let primary_down = |id: &str| {
        if id.ends_with("10.0.0.1") || id.ends_with("10.0.0.2") {
            HealthState::Down
        } else {
            HealthState::Up
        }
    };
    let down_views = pool_views(&c.pools, &primary_down);
    let fourth = active_selections(&c, &c.pools, &down_views, &latency, &third);
    assert_eq!(
        fourth.latency["ns/app"]["us"],
        ["ns/standby"],
        "an unavailable pool is not ranked"
    );
}

#[test]
fn a_location_ranks_only_once_it_has_judged_every_available_pool() {
    use gtm_crds::latency::{LatencyLocation, LatencySteering};
    let mut c = config(LbPolicy::Latency, SequentialMode::Preemptive);
    c.domains[0].latency = Some(LatencySteering {
        locations: vec![LatencyLocation {
            name: "eu".into(),
            sources: Default::default(),
        }],
        margin_percent: 20,
        margin_millis: 5,
    });
    let task = |_: &str| HealthState::Up;
    let views = pool_views(&c.pools, &task);
    let seen = |measured: &[(&str, u32)], unjudged: &[&str]| {
        LatencyView::from([(
            "eu".to_string(),
            LocationLatency {
                measured: measured
                    .iter()
                    .map(|(t, ms)| (t.to_string(), *ms))
                    .collect(),
                unjudged: unjudged.iter().map(|t| t.to_string()).collect(),
            },
        )])
    };
    // The first probe back is the slow standby's: no ranking yet, the pools' order answers.
    let slow_first = seen(&[("t@10.0.1.1", 150)], &["t@10.0.0.1", "t@10.0.0.2"]);
    let first = active_selections(
        &c,
        &c.pools,
        &views,
        &slow_first,
        &ActiveSelections::default(),
    );
    assert!(first.latency.is_empty(), "{:?}", first.latency);
    // One primary address measured, the other not yet: still waiting.
    let half = seen(&[("t@10.0.1.1", 150), ("t@10.0.0.1", 3)], &["t@10.0.0.2"]);
    let second = active_selections(&c, &c.pools, &views, &half, &first);
    assert!(second.latency.is_empty());
    // Every pool judged: ranked.
    let all = seen(
        &[("t@10.0.1.1", 150), ("t@10.0.0.1", 3), ("t@10.0.0.2", 5)],
        &[],
    );
    let third = active_selections(&c, &c.pools, &views, &all, &second);
    assert_eq!(third.latency["ns/app"]["eu"], ["ns/primary", "ns/standby"]);
    // A new, unjudged address of the standby: the ranking holds as it was, even though the
    // primary now measures slower than the standby by the margins.
    c.pools[1].addresses.push(address("10.0.1.2", 2));
    let views = pool_views(&c.pools, &task);
    let new_address = seen(
        &[("t@10.0.1.1", 10), ("t@10.0.0.1", 300), ("t@10.0.0.2", 300)],
        &["t@10.0.1.2"],
    );
    let fourth = active_selections(&c, &c.pools, &views, &new_address, &third);
    assert_eq!(fourth.latency["ns/app"]["eu"], ["ns/primary", "ns/standby"]);
    // While waiting, an unavailable pool still leaves the ranking at once.
    let down = |addresses: &'static [&'static str]| {
        move |id: &str| {
            if addresses.iter().any(|a| id.ends_with(a)) {
                HealthState::Down
            } else {
                HealthState::Up
            }
        }
    };
    let down_views = pool_views(&c.pools, &down(&["10.0.0.1", "10.0.0.2"]));
    let fifth = active_selections(&c, &c.pools, &down_views, &new_address, &fourth);
    assert_eq!(fifth.latency["ns/app"]["eu"], ["ns/standby"]);
    // An unjudged address that is down holds nothing back: ranked, the standby now first.
    let new_down = pool_views(&c.pools, &down(&["10.0.1.2"]));
    let sixth = active_selections(&c, &c.pools, &new_down, &new_address, &fourth);
    assert_eq!(sixth.latency["ns/app"]["eu"], ["ns/standby", "ns/primary"]);
    c.pools[1].addresses.pop();
    let views = pool_views(&c.pools, &task);
    // A task the location judged Down is judged: it just has no latency.
    let judged = seen(&[("t@10.0.1.1", 150), ("t@10.0.0.1", 3)], &[]);
    let seventh = active_selections(&c, &c.pools, &views, &judged, &ActiveSelections::default());
    assert_eq!(
        seventh.latency["ns/app"]["eu"],
        ["ns/primary", "ns/standby"]
    );
}
