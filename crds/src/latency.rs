//! Latency steering (`policy: Latency` on an access domain): each client gets the pool with
//! the lowest latency measured from the probe location its network maps to, as Route 53
//! latency records, Azure's Performance method and GTM 3.0 Ultimate do.
//!
//! - The domain's `latency.locations` map clients (EDNS Client Subnet, else the resolver
//!   address, matched like `SourceNearest`) to probe locations; a client nothing maps takes
//!   the locations marked `default`, else the pools' `Sequential` order.
//! - A pool's latency from a location is the mean of what that location measures to the
//!   pool's available addresses (each address: its fastest task). The probers report it
//!   quantised ([`quantised_millis`]) and only when it moves by more than
//!   [`REPORT_CHANGE_PERCENT`], so that a latency wobble neither rewrites reports nor
//!   recompiles the DNS pods.
//! - A location ranks pools only once it has a verdict on every available address its
//!   templates give it (its first probes land spread over an interval, and the first to come
//!   back is not the fastest), or [`first_verdict_within`] has passed. Meanwhile it keeps the
//!   ranking it had, less any pool that went unavailable; with none, its clients get the
//!   pools' order.
//! - Hysteresis ([`rank`]): a location keeps the pool it answers until another available
//!   pool is faster by both `marginPercent` and `marginMillis`; a pool that goes unavailable
//!   loses its place at once. The operator decides the ranking and publishes it in the health
//!   payload ([`crate::config::ActiveSelections::latency`]), so every DNS pod answers alike; a
//!   DNS pod answers the first pool of the ranking that is available in its own view.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::RequestSources;
use crate::template::HealthCheckTemplateSpec;

/// A probe location's reported latency changes only when it moves by more than this share.
pub const REPORT_CHANGE_PERCENT: u32 = 10;

/// How latency steering maps clients to probe locations and when it switches pools; only with
/// `policy: Latency`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LatencySteering {
    /// The probe locations whose measurements stand for the clients, each with the clients it
    /// stands for (at most 64). A client (its EDNS Client Subnet, else its resolver's address)
    /// takes the location whose `sources` match it most specifically, as `SourceNearest`
    /// matches pools; one nothing matches takes the locations marked `default: true`, and
    /// with none of those the pools' `order` decides, as `Sequential`.
    #[schemars(length(min = 1, max = 64))]
    pub locations: Vec<LatencyLocation>,
    /// Another pool must be faster than the one a location answers by at least this share
    /// (0 to 100 percent, default 20) before the location switches to it.
    #[serde(default = "default_margin_percent")]
    #[schemars(range(min = 0, max = 100))]
    pub margin_percent: u8,
    /// ...and by at least this many milliseconds (0 to 10000, default 5), so that pools a few
    /// milliseconds apart never trade places on noise.
    #[serde(default = "default_margin_millis")]
    #[schemars(range(min = 0, max = 10000))]
    pub margin_millis: u32,
}

/// A probe location and the clients it stands for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LatencyLocation {
    /// The probe location's name (`gtm-prober --location`), or `local` for the operator's
    /// embedded prober.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// The clients it stands for: CIDRs, ASNs, regions, or `default: true`.
    pub sources: RequestSources,
}

fn default_margin_percent() -> u8 {
    20
}

fn default_margin_millis() -> u32 {
    5
}

/// A latency in milliseconds, rounded up to whole milliseconds (at least 1).
pub fn quantised_millis(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_micros().div_ceil(1000))
        .unwrap_or(u32::MAX)
        .max(1)
}

/// How long latency steering waits for a location's first verdict on a task of `template`
/// before it ranks without it: the interval times the larger threshold, plus two intervals
/// (the first probe lands anywhere in the first one). A target that never meets a threshold
/// (it alternates) or a location that never gets the task holds no ranking back for longer.
pub fn first_verdict_within(template: &HealthCheckTemplateSpec) -> std::time::Duration {
    let probes = template
        .success_threshold
        .max(template.failure_threshold)
        .max(1);
    template.interval() * (u32::from(probes) + 2)
}

/// Whether a newly measured latency differs enough from the reported one to be reported:
/// by more than [`REPORT_CHANGE_PERCENT`] and by more than 1 ms.
pub fn worth_reporting(reported: Option<u32>, measured: u32) -> bool {
    match reported {
        None => true,
        Some(r) => {
            let delta = r.abs_diff(measured);
            delta > 1 && u64::from(delta) * 100 > u64::from(r) * u64::from(REPORT_CHANGE_PERCENT)
        }
    }
}

/// The ranking of one location: the available pools with a latency, fastest first, except
/// that `held` (the pool the location answered so far) keeps the first place while it is
/// available and no pool is faster by the margins. `pools` are (pool id, latency in ms).
pub fn rank(
    pools: &[(String, u32)],
    held: Option<&str>,
    steering: &LatencySteering,
) -> Vec<String> {
    let mut ranked: Vec<&(String, u32)> = pools.iter().collect();
    ranked.sort_by_key(|(id, ms)| (*ms, id.as_str()));
    let Some(fastest) = ranked.first().map(|(_, ms)| *ms) else {
        return Vec::new();
    };
    let keep = held.and_then(|h| ranked.iter().position(|(id, _)| id == h));
    if let Some(position) = keep {
        let held_ms = ranked[position].1;
        let gain = held_ms.saturating_sub(fastest);
        let beats = gain > steering.margin_millis
            && u64::from(gain) * 100 > u64::from(held_ms) * u64::from(steering.margin_percent);
        if !beats {
            let held = ranked.remove(position);
            ranked.insert(0, held);
        }
    }
    ranked.into_iter().map(|(id, _)| id.clone()).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn steering(margin_percent: u8, margin_millis: u32) -> LatencySteering {
        LatencySteering {
            locations: Vec::new(),
            margin_percent,
            margin_millis,
        }
    }

    fn pools(list: &[(&str, u32)]) -> Vec<(String, u32)> {
        list.iter().map(|(id, ms)| (id.to_string(), *ms)).collect()
    }

    #[test]
    fn the_fastest_pool_leads_and_the_rest_follow_by_latency() {
        let s = steering(20, 5);
        assert_eq!(
            rank(&pools(&[("eu", 80), ("us", 20), ("ap", 150)]), None, &s),
            ["us", "eu", "ap"]
        );
        assert!(rank(&[], Some("eu"), &s).is_empty(), "nothing measured");
    }

    #[test]
    fn the_held_pool_stays_until_another_is_faster_by_both_margins() {
        let s = steering(20, 5);
        // 10 % faster: noise, keep.
        assert_eq!(
            rank(&pools(&[("eu", 100), ("us", 90)]), Some("eu"), &s)[0],
            "eu"
        );
        // 25 % but 3 ms: keep (absolute margin).
        assert_eq!(
            rank(&pools(&[("eu", 12), ("us", 9)]), Some("eu"), &s)[0],
            "eu"
        );
        // 40 % and 40 ms: switch.
        assert_eq!(
            rank(&pools(&[("eu", 100), ("us", 60)]), Some("eu"), &s),
            ["us", "eu"]
        );
        // A held pool that is gone (down, or no longer measured) is simply not ranked.
        assert_eq!(rank(&pools(&[("us", 60)]), Some("eu"), &s), ["us"]);
    }

    #[test]
    fn a_wobbling_latency_never_flaps_the_answer() {
        let s = steering(20, 5);
        let mut held: Option<String> = None;
        let mut switches = 0;
        for round in 0..100u32 {
            // Two pools 10 % apart whose measurements cross every other round.
            let (a, b) = if round % 2 == 0 { (50, 55) } else { (56, 50) };
            let first = rank(&pools(&[("a", a), ("b", b)]), held.as_deref(), &s)[0].clone();
            if held.as_ref().is_some_and(|h| *h != first) {
                switches += 1;
            }
            held = Some(first);
        }
        assert_eq!(switches, 0);
    }

    #[test]
    fn reports_change_only_on_a_real_move() {
        assert_eq!(quantised_millis(Duration::from_micros(1)), 1);
        assert_eq!(quantised_millis(Duration::from_micros(20_100)), 21);
        assert!(worth_reporting(None, 20));
        assert!(!worth_reporting(Some(20), 21), "5 %");
        assert!(!worth_reporting(Some(20), 22), "10 %, not more");
        assert!(worth_reporting(Some(20), 23));
        assert!(!worth_reporting(Some(5), 6), "1 ms");
        assert!(worth_reporting(Some(200), 100));
    }

    #[test]
    fn a_first_verdict_is_awaited_for_the_larger_threshold_plus_two_intervals() {
        let template = |json| -> HealthCheckTemplateSpec { serde_json::from_value(json).unwrap() };
        let seconds = template(serde_json::json!({
            "protocol": "TCP", "intervalSeconds": 1, "successThreshold": 1, "failureThreshold": 3
        }));
        assert_eq!(first_verdict_within(&seconds), Duration::from_secs(5));
        let fast = template(serde_json::json!({
            "protocol": "TCP", "intervalMillis": 100, "successThreshold": 1, "failureThreshold": 1
        }));
        assert_eq!(first_verdict_within(&fast), Duration::from_millis(300));
    }
}
