use super::*;
use crate::common::{LbPolicy, RequestSources, SequentialMode};
use crate::pool::PoolType;

fn addr(value: &str, tasks: &[&str]) -> AddressConfig {
    AddressConfig {
        value: value.into(),
        enabled: true,
        mode: AddressMode::Auto,
        weight: 1,
        order: 1,
        sources: RequestSources::default(),
        health_judgement: HealthJudgement::AnyOk,
        tasks: tasks.iter().map(|t| t.to_string()).collect(),
    }
}

fn pool(addresses: Vec<AddressConfig>) -> PoolConfig {
    PoolConfig {
        id: "ns/p".into(),
        pool_type: PoolType::IPv4,
        enabled: true,
        policy: LbPolicy::RoundRobin,
        sequential_mode: SequentialMode::Preemptive,
        affinity: None,
        health_judgement: HealthJudgement::AnyOk,
        min_available: None,
        addresses,
    }
}

fn states<'a>(down: &'a [&'a str], up: &'a [&'a str]) -> impl Fn(&str) -> HealthState + 'a {
    move |t| {
        if down.contains(&t) {
            HealthState::Down
        } else if up.contains(&t) {
            HealthState::Up
        } else {
            HealthState::Unknown
        }
    }
}

#[test]
fn judgement_table() {
    use HealthJudgement::*;
    // (judgement, ok, total, met)
    let rows = [
        (AnyOk, 0, 3, false),
        (AnyOk, 1, 3, true),
        (P30Ok, 0, 3, false),
        (P30Ok, 1, 3, true), // 33 %
        (P30Ok, 2, 10, false),
        (P30Ok, 3, 10, true),
        (P50Ok, 1, 3, false),
        (P50Ok, 1, 2, true),
        (P50Ok, 5, 10, true),
        (P70Ok, 6, 10, false),
        (P70Ok, 7, 10, true),
        (P70Ok, 2, 3, false), // 66 %
        (AllOk, 2, 3, false),
        (AllOk, 3, 3, true),
        (AnyOk, 0, 0, false),
        (AllOk, 0, 0, false),
    ];
    for (j, ok, total, met) in rows {
        assert_eq!(judgement_met(j, ok, total), met, "{j:?} {ok}/{total}");
    }
}

#[test]
fn address_without_checks_is_healthy() {
    let a = addr("192.0.2.1", &[]);
    assert_eq!(address_health(&a, states(&[], &[])), HealthState::Up);
    assert!(address_available(&a, states(&[], &[])));
}

#[test]
fn address_with_unknown_checks_is_available() {
    let a = addr("192.0.2.1", &["t1", "t2"]);
    assert_eq!(address_health(&a, states(&[], &[])), HealthState::Unknown);
    assert!(address_available(&a, states(&[], &[])));
}

#[test]
fn address_judgement_over_its_tasks() {
    let mut a = addr("192.0.2.1", &["t1", "t2"]);
    assert!(address_available(&a, states(&["t1"], &["t2"])));
    a.health_judgement = HealthJudgement::AllOk;
    assert!(!address_available(&a, states(&["t1"], &["t2"])));
    assert_eq!(
        address_health(&a, states(&["t1"], &["t2"])),
        HealthState::Down
    );
    assert!(!address_available(&a, states(&["t1", "t2"], &[])));
}

#[test]
fn address_modes_and_enabled() {
    let down = states(&["t1"], &[]);
    let mut a = addr("192.0.2.1", &["t1"]);
    assert!(!address_available(&a, &down));
    a.mode = AddressMode::AlwaysOnline;
    assert!(address_available(&a, &down));
    a.mode = AddressMode::AlwaysOffline;
    assert!(!address_available(&a, states(&[], &["t1"])));
    assert!(!address_eligible(&a));
    a.mode = AddressMode::AlwaysOnline;
    a.enabled = false;
    assert!(!address_available(&a, states(&[], &["t1"])));
    assert!(!address_eligible(&a));
}

#[test]
fn pool_judgement_counts_enabled_addresses_only() {
    let mut disabled = addr("192.0.2.3", &[]);
    disabled.enabled = false;
    let mut p = pool(vec![
        addr("192.0.2.1", &[]),
        addr("192.0.2.2", &[]),
        disabled,
    ]);
    p.health_judgement = HealthJudgement::AllOk;
    assert!(pool_available(&p, &[true, true, false]));
    assert!(!pool_available(&p, &[true, false, false]));
}

#[test]
fn pool_min_available() {
    let mut p = pool(vec![
        addr("192.0.2.1", &[]),
        addr("192.0.2.2", &[]),
        addr("192.0.2.3", &[]),
    ]);
    p.min_available = Some(2);
    assert!(!pool_available(&p, &[true, false, false]));
    assert!(pool_available(&p, &[true, true, false]));
}

#[test]
fn disabled_pool_is_never_available_nor_eligible() {
    let mut p = pool(vec![addr("192.0.2.1", &[])]);
    p.enabled = false;
    assert!(!pool_available(&p, &[true]));
    assert!(!pool_eligible(&p));
}

#[test]
fn empty_pool_is_unavailable() {
    let mut off = addr("192.0.2.1", &[]);
    off.enabled = false;
    let p = pool(vec![off]);
    assert!(!pool_available(&p, &[false]));
    assert!(!pool_eligible(&p));
}

fn member(order: u16, available: bool, eligible: bool) -> MemberView {
    MemberView {
        order,
        available,
        eligible,
        // An available pool has available addresses.
        healthy: available,
    }
}

#[test]
fn available_pools_are_chosen() {
    let m = [
        member(1, false, true),
        member(2, true, true),
        member(3, true, true),
    ];
    assert_eq!(
        pool_choice(&m, Fallback::FailOpen),
        PoolChoice::Available(vec![1, 2])
    );
}

#[test]
fn no_pool_available_fails_open_to_lowest_order_non_empty_pool() {
    let m = [
        member(3, false, true),
        member(1, false, false),
        member(2, false, true),
    ];
    assert_eq!(pool_choice(&m, Fallback::FailOpen), PoolChoice::FailOpen(2));
}

#[test]
fn fail_open_prefers_a_pool_that_still_has_available_addresses() {
    let below_judgement = MemberView {
        healthy: true,
        ..member(5, false, true)
    };
    let m = [
        member(1, false, true),
        below_judgement,
        member(2, false, true),
    ];
    assert_eq!(pool_choice(&m, Fallback::FailOpen), PoolChoice::FailOpen(1));
}

#[test]
fn a_pool_answers_among_its_available_addresses_or_all_eligible_ones() {
    let p = pool(vec![addr("a", &[]), addr("b", &[]), addr("c", &[])]);
    assert_eq!(address_choice(&p, &[false, true, false]), [1]);
    assert_eq!(address_choice(&p, &[false, false, false]), [0, 1, 2]);
}

#[test]
fn fail_open_ties_go_to_the_earlier_member() {
    let m = [member(2, false, true), member(2, false, true)];
    assert_eq!(pool_choice(&m, Fallback::FailOpen), PoolChoice::FailOpen(0));
}

#[test]
fn no_answer_fallback_answers_nothing() {
    let m = [member(1, false, true)];
    assert_eq!(pool_choice(&m, Fallback::NoAnswer), PoolChoice::Nothing);
}

#[test]
fn nothing_eligible_answers_nothing() {
    let m = [member(1, false, false)];
    assert_eq!(pool_choice(&m, Fallback::FailOpen), PoolChoice::Nothing);
}

#[test]
fn chosen_pool_without_available_address_answers_all_eligible() {
    let mut off = addr("192.0.2.3", &[]);
    off.mode = AddressMode::AlwaysOffline;
    let p = pool(vec![addr("192.0.2.1", &[]), addr("192.0.2.2", &[]), off]);
    assert_eq!(address_choice(&p, &[false, false, false]), vec![0, 1]);
    assert_eq!(address_choice(&p, &[false, true, false]), vec![1]);
    assert_eq!(eligible_addresses(&p), vec![0, 1]);
}

#[test]
fn sequential_picks_the_lowest_order_and_the_earlier_member_on_ties() {
    for mode in [SequentialMode::Preemptive, SequentialMode::NonPreemptive] {
        let members = [("b", 2), ("a", 1), ("c", 1)];
        assert_eq!(sequential_pick(mode, members, None), Some("a"));
        assert_eq!(sequential_pick(mode, members, Some("gone")), Some("a"));
        assert_eq!(sequential_pick(mode, [], Some("a")), None::<&str>);
    }
}

#[test]
fn sequential_preemptive_returns_to_the_lowest_order() {
    let members = [("primary", 1), ("standby", 2)];
    assert_eq!(
        sequential_pick(SequentialMode::Preemptive, members, Some("standby")),
        Some("primary")
    );
}

#[test]
fn sequential_non_preemptive_stays_on_the_current_member_while_it_may_answer() {
    let members = [("primary", 1), ("standby", 2)];
    let mode = SequentialMode::NonPreemptive;
    assert_eq!(
        sequential_pick(mode, members, Some("standby")),
        Some("standby")
    );
    // The current member may no longer answer: the lowest order left.
    assert_eq!(
        sequential_pick(mode, [("primary", 1), ("third", 3)], Some("standby")),
        Some("primary")
    );
}
