//! One test per rule of the resolution semantics (see [`super`]: two levels, the four
//! policies, availability and fail-open, and the DNS answers: NXDOMAIN vs NODATA, REFUSED outside
//! the zones, CNAME and ANY), on the pure engine.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use gtm_crds::common::{Cidr, LbPolicy, RequestSources, SequentialMode};
use gtm_crds::config::{ActiveSelections, GtmConfig, HealthSnapshot, HealthVerdicts};
use gtm_crds::domain::{Fallback, RecordType as Rt};
use gtm_crds::pool::AddressMode;
use hickory_server::proto::rr::{LowerName, Name, RecordType};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::{Compiled, Rcode, Reason};
use crate::shared_pools::served;
use crate::sources::Client;
use crate::zone::ZoneSettings;

#[path = "../../tests/support/fixtures.rs"]
#[allow(unreachable_pub)] // Shared with the integration tests, which need its items `pub`.
pub(crate) mod fixtures;
use fixtures::*;

/// Compiles `c` under `h` twice, directly and as an overlay on `c` compiled without verdicts,
/// checks that both decided the same, and returns the overlay: every rule below holds for
/// health applied both ways.
fn compile(c: &GtmConfig, h: &HealthSnapshot) -> Compiled {
    build(c, h, &ZoneSettings::default(), None)
}

fn build(
    c: &GtmConfig,
    h: &HealthSnapshot,
    settings: &ZoneSettings,
    previous: Option<&Compiled>,
) -> Compiled {
    let config = Arc::new(served(c.clone()));
    let health = HealthVerdicts::of(h);
    let direct = Compiled::build(config.clone(), &health, settings, &Default::default(), None)
        .expect("compiles");
    let unknown = HealthSnapshot::empty();
    let overlaid = Compiled::build(
        config,
        &HealthVerdicts::of(&unknown),
        settings,
        &Default::default(),
        previous,
    )
    .expect("compiles")
    .with_health(&health)
    .expect("applies");
    assert_eq!(direct.health_fingerprint(), overlaid.health_fingerprint());
    overlaid
}

fn lower(name: &str) -> LowerName {
    LowerName::new(&Name::from_str(name).unwrap())
}

/// Answers `name`/`qtype` for an unknown client and renders the answer's data.
fn ask(c: &Compiled, name: &str, qtype: RecordType) -> (Rcode, Vec<String>) {
    ask_from(c, name, qtype, None)
}

fn ask_from(
    c: &Compiled,
    name: &str,
    qtype: RecordType,
    client: Option<&Client<'_>>,
) -> (Rcode, Vec<String>) {
    let mut rng = StdRng::seed_from_u64(1);
    let a = c.answer(&lower(name), qtype, client, &mut rng);
    (
        a.rcode,
        a.records.iter().map(|r| r.data.to_string()).collect(),
    )
}

fn www(
    policy: LbPolicy,
    pools: Vec<gtm_crds::config::PoolMember>,
) -> gtm_crds::config::DomainConfig {
    domain("www", Rt::A, policy, pools)
}

const WWW: &str = "www.gtm.example.com.";

fn one_pool(policy: LbPolicy, addresses: Vec<gtm_crds::config::AddressConfig>) -> GtmConfig {
    config(
        1,
        vec![www(LbPolicy::RoundRobin, vec![member("ns/p")])],
        vec![pool("ns/p", policy, addresses)],
    )
}

#[test]
fn round_robin_answers_every_available_address_rotating_per_query() {
    let c = compile(
        &one_pool(
            LbPolicy::RoundRobin,
            vec![addr("192.0.2.1"), addr("192.0.2.2"), addr("192.0.2.3")],
        ),
        &health_down(1, &["192.0.2.2"]),
    );
    let first = ask(&c, WWW, RecordType::A).1;
    let second = ask(&c, WWW, RecordType::A).1;
    assert_eq!(first, vec!["192.0.2.1", "192.0.2.3"]);
    assert_eq!(second, vec!["192.0.2.3", "192.0.2.1"]);
}

fn sequential_config(mode: SequentialMode) -> GtmConfig {
    let mut p = pool(
        "ns/p",
        LbPolicy::Sequential,
        vec![
            ordered("192.0.2.2", 2),
            ordered("192.0.2.1", 1),
            ordered("192.0.2.3", 3),
        ],
    );
    p.sequential_mode = mode;
    config(
        1,
        vec![www(LbPolicy::RoundRobin, vec![member("ns/p")])],
        vec![p],
    )
}

fn active_address(value: &str) -> ActiveSelections {
    ActiveSelections {
        pools: [("ns/p".to_string(), value.to_string())].into(),
        ..ActiveSelections::default()
    }
}

#[test]
fn sequential_preemptive_fails_over_and_returns_when_the_primary_recovers() {
    let c = sequential_config(SequentialMode::Preemptive);
    let healthy = compile(&c, &health_down(1, &[]));
    assert_eq!(ask(&healthy, WWW, RecordType::A).1, vec!["192.0.2.1"]);
    let failed = compile(
        &c,
        &health_active(2, &["192.0.2.1"], active_address("192.0.2.2")),
    );
    assert_eq!(ask(&failed, WWW, RecordType::A).1, vec!["192.0.2.2"]);
    // Recovered: back to the primary, even while the published active still names the backup.
    let recovered = compile(&c, &health_active(3, &[], active_address("192.0.2.2")));
    assert_eq!(ask(&recovered, WWW, RecordType::A).1, vec!["192.0.2.1"]);
}

#[test]
fn sequential_non_preemptive_stays_on_the_active_member_after_recovery() {
    let c = sequential_config(SequentialMode::NonPreemptive);
    let failed = compile(
        &c,
        &health_active(2, &["192.0.2.1"], active_address("192.0.2.2")),
    );
    assert_eq!(ask(&failed, WWW, RecordType::A).1, vec!["192.0.2.2"]);
    let recovered = compile(&c, &health_active(3, &[], active_address("192.0.2.2")));
    assert_eq!(ask(&recovered, WWW, RecordType::A).1, vec!["192.0.2.2"]);
    // The active member fails in this pod's view: deterministically the lowest order left.
    let active_down = compile(
        &c,
        &health_active(4, &["192.0.2.2"], active_address("192.0.2.2")),
    );
    assert_eq!(ask(&active_down, WWW, RecordType::A).1, vec!["192.0.2.1"]);
    // Nothing published: lowest order.
    let unpublished = compile(&c, &health_down(5, &[]));
    assert_eq!(ask(&unpublished, WWW, RecordType::A).1, vec!["192.0.2.1"]);
}

#[test]
fn weighted_3_to_1_answers_the_heavy_member_75_percent_of_the_time() {
    let c = compile(
        &one_pool(
            LbPolicy::Weighted,
            vec![weighted("192.0.2.1", 3), weighted("192.0.2.2", 1)],
        ),
        &health_down(1, &[]),
    );
    let mut rng = StdRng::seed_from_u64(42);
    let name = lower(WWW);
    let n = 100_000;
    let heavy = (0..n)
        .filter(|_| {
            let a = c.answer(&name, RecordType::A, None, &mut rng);
            assert_eq!(a.records.len(), 1);
            a.records[0].data.to_string() == "192.0.2.1"
        })
        .count();
    let share = heavy as f64 / n as f64;
    assert!((0.73..=0.77).contains(&share), "share {share}");
}

#[test]
fn weighted_draws_only_among_available_members() {
    let c = compile(
        &one_pool(
            LbPolicy::Weighted,
            vec![weighted("192.0.2.1", 100), weighted("192.0.2.2", 1)],
        ),
        &health_down(1, &["192.0.2.1"]),
    );
    for _ in 0..50 {
        assert_eq!(ask(&c, WWW, RecordType::A).1, vec!["192.0.2.2"]);
    }
}

fn sourced(value: &str, cidrs: &[&str], default: bool) -> gtm_crds::config::AddressConfig {
    gtm_crds::config::AddressConfig {
        sources: RequestSources {
            cidrs: cidrs.iter().map(|c| Cidr((*c).into())).collect(),
            default,
            ..RequestSources::default()
        },
        ..addr(value)
    }
}

#[test]
fn source_nearest_prefers_the_longest_cidr_then_defaults_then_all() {
    let c = compile(
        &one_pool(
            LbPolicy::SourceNearest,
            vec![
                sourced("192.0.2.1", &["10.0.0.0/8"], false),
                sourced("192.0.2.2", &["10.1.0.0/16"], false),
                sourced("192.0.2.3", &[], true),
            ],
        ),
        &health_down(1, &[]),
    );
    let from = |ip: &str| {
        let client = Client::new(ip.parse().unwrap(), None);
        let mut rng = StdRng::seed_from_u64(1);
        let a = c.answer(&lower(WWW), RecordType::A, Some(&client), &mut rng);
        let data: Vec<String> = a.records.iter().map(|r| r.data.to_string()).collect();
        (data, a.ecs_scope)
    };
    assert_eq!(from("10.1.2.3"), (vec!["192.0.2.2".to_string()], 16));
    assert_eq!(from("10.200.0.1").0, vec!["192.0.2.1"]);
    assert_eq!(from("203.0.113.1").0, vec!["192.0.2.3"]);
    // Unknown location (ECS source prefix 0): the defaults, scope 0.
    assert_eq!(ask(&c, WWW, RecordType::A).1, vec!["192.0.2.3"]);

    // Without defaults, an unmatched client gets every member.
    let no_default = compile(
        &one_pool(
            LbPolicy::SourceNearest,
            vec![
                sourced("192.0.2.1", &["10.0.0.0/8"], false),
                sourced("192.0.2.2", &[], false),
            ],
        ),
        &health_down(1, &[]),
    );
    let client = Client::new("203.0.113.1".parse().unwrap(), None);
    assert_eq!(
        ask_from(&no_default, WWW, RecordType::A, Some(&client)).1,
        vec!["192.0.2.1", "192.0.2.2"]
    );
}

#[test]
fn source_nearest_ignores_members_that_are_down() {
    let c = compile(
        &one_pool(
            LbPolicy::SourceNearest,
            vec![
                sourced("192.0.2.1", &["10.0.0.0/8"], false),
                sourced("192.0.2.2", &[], true),
            ],
        ),
        &health_down(1, &["192.0.2.1"]),
    );
    let client = Client::new("10.0.0.1".parse().unwrap(), None);
    assert_eq!(
        ask_from(&c, WWW, RecordType::A, Some(&client)).1,
        vec!["192.0.2.2"]
    );
}

#[test]
fn policies_that_ignore_the_client_report_scope_zero() {
    let c = compile(
        &one_pool(LbPolicy::RoundRobin, vec![addr("192.0.2.1")]),
        &health_down(1, &[]),
    );
    let client = Client::new("10.0.0.1".parse().unwrap(), None);
    let mut rng = StdRng::seed_from_u64(1);
    assert_eq!(
        c.answer(&lower(WWW), RecordType::A, Some(&client), &mut rng)
            .ecs_scope,
        0
    );
}

#[test]
fn address_availability_follows_enabled_mode_and_judgement() {
    let mut disabled = addr("192.0.2.1");
    disabled.enabled = false;
    let mut offline = addr("192.0.2.2");
    offline.mode = AddressMode::AlwaysOffline;
    let mut online = addr("192.0.2.3");
    online.mode = AddressMode::AlwaysOnline;
    let mut unchecked = addr("192.0.2.4");
    unchecked.tasks.clear();
    let mut all_ok = addr("192.0.2.5");
    all_ok.health_judgement = gtm_crds::common::HealthJudgement::AllOk;
    all_ok.tasks.push(task("192.0.2.99"));
    let c = compile(
        &one_pool(
            LbPolicy::RoundRobin,
            vec![
                disabled,
                offline,
                online,
                unchecked,
                all_ok,
                addr("192.0.2.6"),
            ],
        ),
        // The AlwaysOnline address is down, and one of the two tasks of the AllOk one.
        &health_down(1, &["192.0.2.3", "192.0.2.99"]),
    );
    let mut got = ask(&c, WWW, RecordType::A).1;
    got.sort();
    assert_eq!(got, vec!["192.0.2.3", "192.0.2.4", "192.0.2.6"]);
}

#[test]
fn a_pool_below_its_judgement_or_min_available_is_skipped() {
    let mut half = pool(
        "ns/half",
        LbPolicy::RoundRobin,
        vec![addr("192.0.2.1"), addr("192.0.2.2")],
    );
    half.health_judgement = gtm_crds::common::HealthJudgement::AllOk;
    let mut min = pool(
        "ns/min",
        LbPolicy::RoundRobin,
        vec![addr("192.0.2.3"), addr("192.0.2.4")],
    );
    min.min_available = Some(2);
    let backup = pool("ns/backup", LbPolicy::RoundRobin, vec![addr("192.0.2.5")]);
    let mut members = vec![member("ns/half"), member("ns/min"), member("ns/backup")];
    for (i, m) in members.iter_mut().enumerate() {
        m.order = i as u16 + 1;
    }
    let c = config(
        1,
        vec![www(LbPolicy::Sequential, members)],
        vec![half, min, backup],
    );
    let h = compile(&c, &health_down(1, &["192.0.2.2", "192.0.2.4"]));
    assert_eq!(ask(&h, WWW, RecordType::A).1, vec!["192.0.2.5"]);
    let ok = compile(&c, &health_down(2, &[]));
    assert_eq!(
        ask(&ok, WWW, RecordType::A).1,
        vec!["192.0.2.1", "192.0.2.2"]
    );
}

#[test]
fn no_pool_available_fails_open_to_all_eligible_addresses_of_the_lowest_order_pool() {
    let mut offline = addr("192.0.2.3");
    offline.mode = AddressMode::AlwaysOffline;
    let first = pool(
        "ns/a",
        LbPolicy::Sequential,
        vec![addr("192.0.2.1"), addr("192.0.2.2"), offline],
    );
    let second = pool("ns/b", LbPolicy::RoundRobin, vec![addr("192.0.2.4")]);
    let mut disabled = pool("ns/c", LbPolicy::RoundRobin, vec![addr("192.0.2.5")]);
    disabled.enabled = false;
    let mut ma = member("ns/a");
    ma.order = 2;
    let mut mc = member("ns/c");
    mc.order = 0;
    let c = config(
        1,
        vec![www(
            LbPolicy::Weighted,
            vec![mc, ma, {
                let mut m = member("ns/b");
                m.order = 3;
                m
            }],
        )],
        vec![first, second, disabled],
    );
    let h = compile(
        &c,
        &health_down(1, &["192.0.2.1", "192.0.2.2", "192.0.2.4"]),
    );
    // The disabled pool (order 0) is never answered; ns/a (order 2) answers every eligible
    // address, down or not, but not the AlwaysOffline one.
    assert_eq!(
        ask(&h, WWW, RecordType::A).1,
        vec!["192.0.2.1", "192.0.2.2"]
    );
}

#[test]
fn failing_open_keeps_known_health_before_answering_everything() {
    // ns/first (order 1): both down. ns/min (order 2): one of two up, below minAvailable 2.
    let first = pool(
        "ns/first",
        LbPolicy::RoundRobin,
        vec![addr("192.0.2.1"), addr("192.0.2.2")],
    );
    let mut min = pool(
        "ns/min",
        LbPolicy::Sequential,
        vec![addr("192.0.2.3"), addr("192.0.2.4"), addr("192.0.2.5")],
    );
    min.min_available = Some(2);
    let mut second = member("ns/min");
    second.order = 2;
    let c = config(
        1,
        vec![www(LbPolicy::Sequential, vec![member("ns/first"), second])],
        vec![first, min],
    );
    let down = ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.5"];
    let h = compile(&c, &health_down(1, &down));
    // No pool meets its judgement: the pool that still has an available address answers it
    // by its policy, not the first pool's dead addresses.
    assert_eq!(ask(&h, WWW, RecordType::A).1, vec!["192.0.2.4"]);
    // When nothing is available anywhere, the lowest-order pool answers every address.
    let all_down = compile(&c, &health_down(2, &[&down[..], &["192.0.2.4"]].concat()));
    assert_eq!(
        ask(&all_down, WWW, RecordType::A).1,
        vec!["192.0.2.1", "192.0.2.2"]
    );
}

#[test]
fn no_answer_fallback_gives_nodata_when_nothing_is_available() {
    let mut d = www(LbPolicy::RoundRobin, vec![member("ns/p")]);
    d.when_all_unavailable = Fallback::NoAnswer;
    let c = config(
        1,
        vec![d],
        vec![pool("ns/p", LbPolicy::RoundRobin, vec![addr("192.0.2.1")])],
    );
    let h = compile(&c, &health_down(1, &["192.0.2.1"]));
    assert_eq!(ask(&h, WWW, RecordType::A), (Rcode::NoError, vec![]));
}

#[test]
fn max_answers_caps_the_records() {
    let mut c = one_pool(
        LbPolicy::RoundRobin,
        vec![addr("192.0.2.1"), addr("192.0.2.2"), addr("192.0.2.3")],
    );
    c.domains[0].max_answers = Some(2);
    let h = compile(&c, &health_down(1, &[]));
    assert_eq!(ask(&h, WWW, RecordType::A).1.len(), 2);
}

#[test]
fn a_domain_without_max_answers_answers_at_most_the_default() {
    let addresses = (1..=20).map(|i| addr(&format!("192.0.2.{i}"))).collect();
    let mut c = one_pool(LbPolicy::RoundRobin, addresses);
    let h = compile(&c, &health_down(1, &[]));
    let default = usize::from(gtm_crds::config::DEFAULT_MAX_ANSWERS);
    assert_eq!(ask(&h, WWW, RecordType::A).1.len(), default);
    // Failing open (everything down) answers no more either.
    let down: Vec<String> = (1..=20).map(|i| format!("192.0.2.{i}")).collect();
    let down: Vec<&str> = down.iter().map(String::as_str).collect();
    let h = compile(&c, &health_down(1, &down));
    assert_eq!(ask(&h, WWW, RecordType::A).1.len(), default);
    c.domains[0].max_answers = Some(20);
    let h = compile(&c, &health_down(1, &[]));
    assert_eq!(ask(&h, WWW, RecordType::A).1.len(), 20);
}

#[test]
fn level_one_round_robin_joins_the_pools_answers_and_weighted_picks_one_pool() {
    let a = pool("ns/a", LbPolicy::RoundRobin, vec![addr("192.0.2.1")]);
    let b = pool("ns/b", LbPolicy::RoundRobin, vec![addr("192.0.2.2")]);
    let rr = config(
        1,
        vec![www(
            LbPolicy::RoundRobin,
            vec![member("ns/a"), member("ns/b")],
        )],
        vec![a.clone(), b.clone()],
    );
    let h = compile(&rr, &health_down(1, &[]));
    assert_eq!(
        ask(&h, WWW, RecordType::A).1,
        vec!["192.0.2.1", "192.0.2.2"]
    );
    assert_eq!(
        ask(&h, WWW, RecordType::A).1,
        vec!["192.0.2.2", "192.0.2.1"]
    );

    let mut ma = member("ns/a");
    ma.weight = 3;
    let w = config(
        1,
        vec![www(LbPolicy::Weighted, vec![ma, member("ns/b")])],
        vec![a, b],
    );
    let h = compile(&w, &health_down(1, &[]));
    let mut rng = StdRng::seed_from_u64(7);
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..4000 {
        let ans = h.answer(&lower(WWW), RecordType::A, None, &mut rng);
        assert_eq!(ans.records.len(), 1);
        *counts.entry(ans.records[0].data.to_string()).or_default() += 1;
    }
    let share = counts["192.0.2.1"] as f64 / 4000.0;
    assert!((0.70..=0.80).contains(&share), "share {share}");
}

#[test]
fn a_domain_pool_answers_exactly_one_cname_never_mixed_with_addresses() {
    let alias = pool(
        "ns/alias",
        LbPolicy::RoundRobin,
        vec![addr("a.example.net"), addr("b.example.net")],
    );
    let ips = pool("ns/ips", LbPolicy::RoundRobin, vec![addr("192.0.2.1")]);
    let c = config(
        1,
        vec![
            www(
                LbPolicy::RoundRobin,
                vec![member("ns/alias"), member("ns/ips")],
            ),
            domain(
                "cn",
                Rt::CNAME,
                LbPolicy::Sequential,
                vec![member("ns/alias")],
            ),
        ],
        vec![alias, ips],
    );
    let h = compile(&c, &health_down(1, &[]));
    // First pick starts with the alias pool: one CNAME only.
    assert_eq!(ask(&h, WWW, RecordType::A).1, vec!["a.example.net."]);
    // Next rotation starts with the IP pool: its A records, the alias pool skipped.
    assert_eq!(ask(&h, WWW, RecordType::A).1, vec!["192.0.2.1"]);
    // A CNAME domain answers its CNAME to A, AAAA, CNAME and other types alike.
    for t in [
        RecordType::A,
        RecordType::AAAA,
        RecordType::CNAME,
        RecordType::TXT,
    ] {
        assert_eq!(ask(&h, "cn.gtm.example.com.", t).1.len(), 1, "{t}");
    }
}

#[test]
fn a_cname_query_at_an_a_domain_answers_its_cname_or_nodata() {
    let alias = pool(
        "ns/alias",
        LbPolicy::RoundRobin,
        vec![addr("a.example.net")],
    );
    let c = config(
        1,
        vec![www(LbPolicy::RoundRobin, vec![member("ns/alias")])],
        vec![alias],
    );
    let h = compile(&c, &health_down(1, &[]));
    assert_eq!(ask(&h, WWW, RecordType::CNAME).1, vec!["a.example.net."]);
    let ip = compile(
        &one_pool(LbPolicy::RoundRobin, vec![addr("192.0.2.1")]),
        &health_down(1, &[]),
    );
    assert_eq!(ask(&ip, WWW, RecordType::CNAME), (Rcode::NoError, vec![]));
}

#[test]
fn names_types_and_zones_give_nxdomain_nodata_refused_and_apex_records() {
    let mut c = one_pool(LbPolicy::RoundRobin, vec![addr("192.0.2.1")]);
    c.domains[0].name = format!("a.b.{ZONE}");
    let h = compile(&c, &health_down(1, &[]));
    assert_eq!(
        ask(&h, "A.B.GTM.Example.COM.", RecordType::A).1,
        vec!["192.0.2.1"]
    );
    assert_eq!(
        ask(&h, "a.b.gtm.example.com.", RecordType::AAAA),
        (Rcode::NoError, vec![])
    );
    // Empty non-terminal: NODATA, not NXDOMAIN.
    assert_eq!(
        ask(&h, "b.gtm.example.com.", RecordType::A),
        (Rcode::NoError, vec![])
    );
    assert_eq!(
        ask(&h, "c.gtm.example.com.", RecordType::A).0,
        Rcode::NxDomain
    );
    assert_eq!(
        ask(&h, "x.a.b.gtm.example.com.", RecordType::A).0,
        Rcode::NxDomain
    );
    assert_eq!(ask(&h, "example.com.", RecordType::A).0, Rcode::Refused);
    assert_eq!(ask(&h, "www.example.org.", RecordType::A).0, Rcode::Refused);
    let (rcode, soa) = ask(&h, "gtm.example.com.", RecordType::SOA);
    assert_eq!(rcode, Rcode::NoError);
    assert!(soa[0].starts_with("ns1.gtm.example.com. hostmaster.gtm.example.com. 1 "));
    assert_eq!(
        ask(&h, "gtm.example.com.", RecordType::NS).1,
        vec!["ns1.gtm.example.com."]
    );
    assert_eq!(
        ask(&h, "gtm.example.com.", RecordType::A),
        (Rcode::NoError, vec![])
    );
    // NS/SOA below the apex: NODATA.
    assert_eq!(
        ask(&h, "a.b.gtm.example.com.", RecordType::NS),
        (Rcode::NoError, vec![])
    );
}

#[test]
fn any_gets_one_rrset() {
    let mut c = one_pool(
        LbPolicy::RoundRobin,
        vec![addr("192.0.2.1"), addr("192.0.2.2")],
    );
    c.pools.push(pool(
        "ns/v6",
        LbPolicy::RoundRobin,
        vec![addr("2001:db8::1")],
    ));
    c.domains.push(domain(
        "www",
        Rt::AAAA,
        LbPolicy::RoundRobin,
        vec![member("ns/v6")],
    ));
    let h = compile(&c, &health_down(1, &[]));
    assert_eq!(
        ask(&h, WWW, RecordType::ANY).1,
        vec!["192.0.2.1", "192.0.2.2"]
    );
    assert_eq!(ask(&h, WWW, RecordType::AAAA).1, vec!["2001:db8::1"]);
    assert_eq!(ask(&h, "gtm.example.com.", RecordType::ANY).1.len(), 1);
}

#[test]
fn flag_zones_are_served_even_without_domains() {
    let c = one_pool(LbPolicy::RoundRobin, vec![addr("192.0.2.1")]);
    let settings = ZoneSettings {
        extra_zones: vec!["other.example".into()],
        ..ZoneSettings::default()
    };
    let h = build(&c, &health_down(1, &[]), &settings, None);
    let mut rng = StdRng::seed_from_u64(1);
    let a = h.answer(&lower("x.other.example."), RecordType::A, None, &mut rng);
    assert_eq!(a.rcode, Rcode::NxDomain);
    assert_eq!(h.zones().len(), 2);
}

/// Answers `name`/`qtype` and renders the additional section's data.
fn additionals(c: &Compiled, name: &str, qtype: RecordType) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(1);
    let a = c.answer(&lower(name), qtype, None, &mut rng);
    a.additionals.iter().map(|r| r.data.to_string()).collect()
}

#[test]
fn zone_data_gives_ns_with_glue_soa_fields_and_static_records() {
    let h = compile(&with_zone_data(1), &health_down(1, &[]));
    let apex = "gtm.example.com.";
    assert_eq!(
        ask(&h, apex, RecordType::NS).1,
        vec!["ns1.gtm.example.com.", "ns.example.net."]
    );
    assert_eq!(
        additionals(&h, apex, RecordType::NS),
        vec!["192.0.2.53", "2001:db8::53"]
    );
    let soa = ask(&h, apex, RecordType::SOA).1;
    assert!(
        soa[0].starts_with("ns1.gtm.example.com. ops.example.com. 1 3600 600 86400 60"),
        "{soa:?}"
    );
    // Glue names resolve in the zone: the default ns1 is no longer NXDOMAIN.
    assert_eq!(
        ask(&h, "NS1.gtm.example.com.", RecordType::A),
        (Rcode::NoError, vec!["192.0.2.53".to_string()])
    );
    assert_eq!(
        ask(&h, "ns1.gtm.example.com.", RecordType::AAAA).1,
        vec!["2001:db8::53"]
    );
    assert_eq!(
        ask(&h, "ns1.gtm.example.com.", RecordType::TXT),
        (Rcode::NoError, vec![])
    );
    assert_eq!(
        ask(&h, "_acme-challenge.gtm.example.com.", RecordType::TXT).1,
        vec!["token-1"]
    );
    assert_eq!(ask(&h, apex, RecordType::TXT).1.len(), 2);
    assert_eq!(
        ask(&h, apex, RecordType::MX).1,
        vec!["10 mail.gtm.example.com."]
    );
    assert_eq!(
        additionals(&h, apex, RecordType::MX),
        vec!["192.0.2.25"],
        "the MX target's static address"
    );
    assert_eq!(
        ask(&h, apex, RecordType::CAA).1,
        vec!["0 issue \"letsencrypt.org\""]
    );
    assert_eq!(
        ask(&h, "_sip._udp.gtm.example.com.", RecordType::SRV).1,
        vec!["10 5 5060 mail.gtm.example.com."]
    );
    // `_udp` is an empty non-terminal: NODATA, not NXDOMAIN.
    assert_eq!(
        ask(&h, "_udp.gtm.example.com.", RecordType::TXT),
        (Rcode::NoError, vec![])
    );
    assert_eq!(
        ask(&h, "nope.gtm.example.com.", RecordType::TXT).0,
        Rcode::NxDomain
    );
    // ANY: the access domain, or the name's first static set.
    assert_eq!(ask(&h, WWW, RecordType::ANY).1, vec!["192.0.2.1"]);
    assert_eq!(
        ask(&h, "_acme-challenge.gtm.example.com.", RecordType::ANY).1,
        vec!["token-1"]
    );
    // Access domains answer as before, and the negative TTL is the zone's.
    assert_eq!(ask(&h, WWW, RecordType::A).1, vec!["192.0.2.1"]);
    let mut rng = StdRng::seed_from_u64(1);
    let nx = h.answer(
        &lower("nope.gtm.example.com."),
        RecordType::A,
        None,
        &mut rng,
    );
    assert_eq!(nx.zone.unwrap().soa.ttl, 60);
}

#[test]
fn the_soa_serial_is_the_operators_else_the_generation() {
    let mut c = with_zone_data(9);
    let serial = |h: &Compiled| {
        let soa = ask(h, "gtm.example.com.", RecordType::SOA).1;
        soa[0].split(' ').nth(2).unwrap().to_string()
    };
    assert_eq!(serial(&compile(&c, &health_down(1, &[]))), "9");
    c.serials.insert(ZONE.into(), 1_800_000_000);
    assert_eq!(serial(&compile(&c, &health_down(1, &[]))), "1800000000");
}

#[test]
fn round_robin_keeps_its_rotation_across_recompiles() {
    let c = one_pool(
        LbPolicy::RoundRobin,
        vec![addr("192.0.2.1"), addr("192.0.2.2"), addr("192.0.2.3")],
    );
    let first = compile(&c, &health_down(1, &[]));
    assert_eq!(ask(&first, WWW, RecordType::A).1[0], "192.0.2.1");
    assert_eq!(ask(&first, WWW, RecordType::A).1[0], "192.0.2.2");
    // A health change recompiles: the rotation goes on instead of starting over.
    let settings = ZoneSettings::default();
    let second = build(&c, &health_down(2, &[]), &settings, Some(&first));
    assert_eq!(ask(&second, WWW, RecordType::A).1[0], "192.0.2.3");
    let third = build(&c, &health_down(3, &[]), &settings, Some(&second));
    assert_eq!(ask(&third, WWW, RecordType::A).1[0], "192.0.2.1");
    // Without the previous snapshot (a restart), it starts from the first.
    assert_eq!(
        ask(&compile(&c, &health_down(4, &[])), WWW, RecordType::A).1[0],
        "192.0.2.1"
    );
}

#[test]
fn a_recompile_shares_the_records_of_unchanged_members_and_the_task_ids_of_the_same_task_list() {
    let c = one_pool(
        LbPolicy::RoundRobin,
        vec![addr("192.0.2.1"), addr("192.0.2.2")],
    );
    let settings = ZoneSettings::default();
    let records = |s: &Compiled| s.base.domains[0].members[0].records.clone();
    let sorted = |s: &Compiled| {
        let mut data = ask(s, WWW, RecordType::A).1;
        data.sort();
        data
    };
    let first = compile(&c, &health_down(1, &[]));
    let mut next = c.clone();
    next.generation = 2;
    let same = build(&next, &health_down(1, &[]), &settings, Some(&first));
    assert!(Arc::ptr_eq(&records(&first), &records(&same)));
    assert!(Arc::ptr_eq(&first.base.tasks, &same.base.tasks));
    // A new TTL, or another address, is built again.
    next.domains[0].ttl += 1;
    let ttl = build(&next, &health_down(1, &[]), &settings, Some(&same));
    assert!(!Arc::ptr_eq(&records(&same), &records(&ttl)));
    assert!(records(&ttl).iter().all(|r| r.ttl == next.domains[0].ttl));
    assert!(Arc::ptr_eq(&same.base.tasks, &ttl.base.tasks));
    next.pools[0].addresses[1] = addr("192.0.2.9");
    let moved = build(&next, &health_down(1, &[]), &settings, Some(&ttl));
    assert!(!Arc::ptr_eq(&ttl.base.tasks, &moved.base.tasks));
    assert!(
        moved
            .base
            .tasks
            .iter()
            .any(|(id, _)| **id == task("192.0.2.9"))
    );
    assert_eq!(sorted(&ttl), ["192.0.2.1", "192.0.2.2"]);
    assert_eq!(sorted(&moved), ["192.0.2.1", "192.0.2.9"]);
}

#[test]
fn sticky_keeps_a_client_network_on_one_address_and_moves_only_those_of_a_failed_one() {
    let c = one_pool(
        LbPolicy::Sticky,
        vec![addr("192.0.2.1"), addr("192.0.2.2"), addr("192.0.2.3")],
    );
    let all_up = compile(&c, &health_down(1, &[]));
    let one_down = compile(&c, &health_down(2, &["192.0.2.2"]));
    let mut rng = StdRng::seed_from_u64(1);
    let (mut moved, mut spread) = (0, std::collections::BTreeSet::new());
    for i in 0..300u32 {
        let ip = std::net::IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 | (i << 8)));
        let client = Client::new(ip, None);
        let before = all_up.answer(&lower(WWW), RecordType::A, Some(&client), &mut rng);
        assert_eq!(
            before.ecs_scope, 24,
            "the answer depends on the client's /24"
        );
        let first = before.records[0].data.to_string();
        for _ in 0..3 {
            let again = ask_from(&all_up, WWW, RecordType::A, Some(&client)).1;
            assert_eq!(
                again,
                [first.as_str()],
                "one address per network, every time"
            );
        }
        let after = ask_from(&one_down, WWW, RecordType::A, Some(&client)).1;
        if first == "192.0.2.2" {
            moved += 1;
            assert_ne!(after[0], "192.0.2.2");
        } else {
            assert_eq!(
                after,
                [first.as_str()],
                "networks of healthy addresses stay"
            );
        }
        spread.insert(first);
    }
    assert_eq!(spread.len(), 3, "every address gets networks");
    assert!((60..140).contains(&moved), "about a third moved: {moved}");
}

/// The decision behind the answer to `WWW` for `client`: (pool id, reason, pool fail-open).
fn decided<'c>(c: &'c Compiled, client: Option<&Client<'_>>) -> (Option<&'c str>, Reason, bool) {
    let mut rng = StdRng::seed_from_u64(1);
    let d = c
        .answer(&lower(WWW), RecordType::A, client, &mut rng)
        .decision
        .expect("an access domain answered");
    (
        d.pool.and_then(|p| c.pool_id(p)),
        d.reason,
        d.pool_fail_open,
    )
}

#[test]
fn the_decision_names_the_leading_pool_and_why_sequential_answered_it() {
    let mut standby = member("ns/standby");
    standby.order = 2;
    let mut d = www(LbPolicy::Sequential, vec![member("ns/primary"), standby]);
    let pools = vec![
        pool("ns/primary", LbPolicy::RoundRobin, vec![addr("192.0.2.1")]),
        pool(
            "ns/standby",
            LbPolicy::RoundRobin,
            vec![addr("192.0.2.2"), addr("192.0.2.3")],
        ),
    ];
    let c = config(1, vec![d.clone()], pools.clone());
    let decision = |down: &[&str]| {
        let compiled = compile(&c, &health_down(1, down));
        let (pool, reason, fail_open) = decided(&compiled, None);
        (pool.map(str::to_string), reason, fail_open)
    };
    let primary = Some("ns/primary".to_string());
    let standby = Some("ns/standby".to_string());
    assert_eq!(decision(&[]), (primary.clone(), Reason::Preferred, false));
    assert_eq!(
        decision(&["192.0.2.1"]),
        (standby.clone(), Reason::FailedOver, false)
    );
    assert_eq!(
        decision(&["192.0.2.1", "192.0.2.2", "192.0.2.3"]),
        (primary, Reason::FailOpen, true),
        "no pool available: the lowest order answers all its addresses"
    );
    d.when_all_unavailable = Fallback::NoAnswer;
    let c = config(1, vec![d], pools);
    let none = compile(
        &c,
        &health_down(1, &["192.0.2.1", "192.0.2.2", "192.0.2.3"]),
    );
    assert_eq!(decided(&none, None), (None, Reason::Unavailable, false));
}

#[test]
fn the_decision_says_how_the_client_found_its_pool() {
    let mut near = member("ns/near");
    near.sources = RequestSources {
        cidrs: vec![Cidr("198.51.100.0/24".into())],
        ..RequestSources::default()
    };
    let mut far = member("ns/far");
    far.sources = RequestSources {
        default: true,
        ..RequestSources::default()
    };
    let pools = vec![
        pool("ns/near", LbPolicy::RoundRobin, vec![addr("192.0.2.1")]),
        pool("ns/far", LbPolicy::RoundRobin, vec![addr("192.0.2.2")]),
    ];
    let sourced = compile(
        &config(
            1,
            vec![www(LbPolicy::SourceNearest, vec![near, far])],
            pools.clone(),
        ),
        &health_down(1, &[]),
    );
    let client = |a: &str| Client::new(a.parse().unwrap(), None);
    assert_eq!(
        decided(&sourced, Some(&client("198.51.100.7"))),
        (Some("ns/near"), Reason::SourceMatch, false)
    );
    assert_eq!(
        decided(&sourced, Some(&client("203.0.113.7"))),
        (Some("ns/far"), Reason::SourceDefault, false)
    );
    let members = || vec![member("ns/near"), member("ns/far")];
    for (policy, reason) in [
        (LbPolicy::Sticky, Reason::Sticky),
        (LbPolicy::Weighted, Reason::Weighted),
        (LbPolicy::RoundRobin, Reason::Rotation),
        (LbPolicy::SourceNearest, Reason::SourceFallback),
    ] {
        let c = compile(
            &config(1, vec![www(policy, members())], pools.clone()),
            &health_down(1, &[]),
        );
        let (pool, why, _) = decided(&c, Some(&client("203.0.113.7")));
        assert!(pool.is_some(), "{policy:?}");
        assert_eq!(why, reason, "{policy:?}");
    }
}

#[test]
fn latency_answers_the_pool_the_clients_location_ranks_first_that_is_available() {
    use gtm_crds::latency::{LatencyLocation, LatencySteering};
    let location = |name: &str, cidr: &str| LatencyLocation {
        name: name.into(),
        sources: RequestSources {
            cidrs: vec![Cidr(cidr.into())],
            ..RequestSources::default()
        },
    };
    let mut us = member("ns/us");
    us.order = 2;
    let mut d = www(LbPolicy::Latency, vec![member("ns/eu"), us]);
    d.latency = Some(LatencySteering {
        locations: vec![
            location("eu", "198.51.100.0/24"),
            location("us", "203.0.113.0/24"),
        ],
        margin_percent: 20,
        margin_millis: 5,
    });
    let c = config(
        1,
        vec![d],
        vec![
            pool("ns/eu", LbPolicy::RoundRobin, vec![addr("192.0.2.1")]),
            pool("ns/us", LbPolicy::RoundRobin, vec![addr("192.0.2.2")]),
        ],
    );
    let ranked = |eu: &[&str], us: &[&str]| ActiveSelections {
        latency: [(
            "ns/www-a".to_string(),
            [
                ("eu".to_string(), eu.iter().map(|p| p.to_string()).collect()),
                ("us".to_string(), us.iter().map(|p| p.to_string()).collect()),
            ]
            .into(),
        )]
        .into(),
        ..ActiveSelections::default()
    };
    let client = |a: &str| Client::new(a.parse().unwrap(), None);
    let (eu_client, us_client) = (client("198.51.100.9"), client("203.0.113.9"));
    let steered = compile(
        &c,
        &health_active(1, &[], ranked(&["ns/eu", "ns/us"], &["ns/us", "ns/eu"])),
    );
    assert_eq!(
        decided(&steered, Some(&eu_client)),
        (Some("ns/eu"), Reason::Latency, false)
    );
    assert_eq!(
        ask_from(&steered, WWW, RecordType::A, Some(&us_client)).1,
        vec!["192.0.2.2"]
    );
    let mut rng = StdRng::seed_from_u64(1);
    let scope = steered
        .answer(&lower(WWW), RecordType::A, Some(&us_client), &mut rng)
        .ecs_scope;
    assert_eq!(scope, 24, "the answer depends on the client's /24");
    // A client no location stands for, and a location with nothing measured: the order.
    assert_eq!(
        decided(&steered, Some(&client("192.0.2.77"))),
        (Some("ns/eu"), Reason::LatencyFallback, false)
    );
    let unmeasured = compile(&c, &health_active(1, &[], ranked(&[], &["ns/us"])));
    assert_eq!(
        decided(&unmeasured, Some(&eu_client)),
        (Some("ns/eu"), Reason::LatencyFallback, false)
    );
    // The first-ranked pool down in this pod's view: the next in the ranking.
    let eu_down = compile(
        &c,
        &health_active(1, &["192.0.2.1"], ranked(&["ns/eu", "ns/us"], &["ns/us"])),
    );
    assert_eq!(
        decided(&eu_down, Some(&eu_client)),
        (Some("ns/us"), Reason::Latency, false)
    );
}
