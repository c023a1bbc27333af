use gtm_prober::{ProbeContext, ProbeError};
use serde_json::json;

use crate::support::spec;

/// Whether this process may open an unprivileged ICMP socket (its group lies in
/// `net.ipv4.ping_group_range`) or a raw one (it holds `CAP_NET_RAW`).
fn icmp_allowed() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    let net_raw =
        u64::from_str_radix(&field("CapEff:"), 16).is_ok_and(|caps| caps & (1 << 13) != 0);
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap_or_default();
    let bounds: Vec<u64> = range
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    let groups: Vec<u64> = field("Groups:")
        .split_whitespace()
        .chain(field("Gid:").split_whitespace().take(1))
        .filter_map(|g| g.parse().ok())
        .collect();
    let unprivileged =
        matches!(bounds[..], [lo, hi] if groups.iter().any(|g| (lo..=hi).contains(g)));
    net_raw || unprivileged
}

#[tokio::test]
async fn echo_to_loopback_passes_or_says_icmp_is_unavailable() {
    let check =
        spec(json!({ "protocol": "ICMP", "timeoutMillis": 2000, "icmp": { "packetCount": 3 } }));
    let outcome = ProbeContext::new().probe(&check, "127.0.0.1", None).await;
    if icmp_allowed() {
        assert_eq!(outcome.result, Ok(()));
    } else {
        let Err(err @ ProbeError::IcmpUnavailable(_)) = &outcome.result else {
            panic!("expected IcmpUnavailable, got {outcome:?}");
        };
        assert!(err.to_string().contains("ping_group_range"), "{err}");
    }
}
