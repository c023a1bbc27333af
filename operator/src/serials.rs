//! SOA serials: each served zone's serial changes when the zone's published content changes
//! (its `GtmZone` data, the access domains it answers and the pools they use) and never goes
//! backwards. A changed zone gets the current Unix time, or one more than its last serial if
//! that is not below it (several changes in one second, a clock set back): the same policy as
//! Knot's `serial-policy: unixtime` and PowerDNS's `SOA-EDIT: EPOCH`, so that a serial also
//! survives the loss of the published payloads (a reinstall starts above the old one). The
//! serials travel in the published config, which a restarted operator reads back. Pure.

use gtm_crds::config::{DomainConfig, GtmConfig, PoolConfig, ZoneConfig, in_zone};

/// What a zone publishes: its serial changes when this does.
#[derive(PartialEq)]
struct ZoneContent<'a> {
    data: Option<&'a ZoneConfig>,
    domains: Vec<&'a DomainConfig>,
    pools: Vec<&'a PoolConfig>,
}

/// The content `config` publishes in `zone`: its zone data, the access domains whose most
/// specific served zone it is, and the pools those use.
fn content<'a>(config: &'a GtmConfig, zone: &str) -> ZoneContent<'a> {
    let most_specific = |name: &str| {
        config
            .zones
            .iter()
            .filter(|z| in_zone(name, z))
            .max_by_key(|z| z.len())
            .is_some_and(|z| z == zone)
    };
    let domains: Vec<&DomainConfig> = config
        .domains
        .iter()
        .filter(|d| most_specific(&d.name))
        .collect();
    let pools = config
        .pools
        .iter()
        .filter(|p| {
            domains
                .iter()
                .any(|d| d.pools.iter().any(|m| m.pool == p.id))
        })
        .collect();
    ZoneContent {
        data: config.zone_data.iter().find(|d| d.name == zone),
        domains,
        pools,
    }
}

/// Gives every zone of `next` its serial: `published`'s while the zone's content is the same,
/// else `max(now, published + 1)` (`now`: Unix seconds).
pub(crate) fn assign(next: &mut GtmConfig, published: Option<&GtmConfig>, now: u32) {
    let mut serials = std::collections::BTreeMap::new();
    for zone in &next.zones {
        let last = published.and_then(|p| p.serials.get(zone).copied());
        let unchanged = published.is_some_and(|p| content(p, zone) == content(next, zone));
        let serial = match last {
            Some(last) if unchanged => last,
            Some(last) => now.max(last.wrapping_add(1)),
            None => now,
        };
        serials.insert(zone.clone(), serial);
    }
    next.serials = serials;
}

#[cfg(test)]
mod tests {
    use gtm_crds::config::{NameserverConfig, RecordData, RecordSetConfig};

    use super::*;

    const NOW: u32 = 1_800_000_000;

    fn config(zones: &[&str]) -> GtmConfig {
        GtmConfig::empty(zones.iter().map(|z| z.to_string()).collect())
    }

    fn zone_data(zone: &str, text: &str) -> ZoneConfig {
        ZoneConfig {
            name: zone.into(),
            id: "ns/z".into(),
            nameservers: vec![NameserverConfig {
                name: "ns.example.net".into(),
                addresses: vec![],
            }],
            nameserver_ttl: 3600,
            soa: Default::default(),
            records: vec![RecordSetConfig {
                name: zone.into(),
                ttl: 60,
                data: RecordData::TXT {
                    text: vec![text.into()],
                },
            }],
            dnssec: None,
        }
    }

    #[test]
    fn a_zone_keeps_its_serial_until_its_content_changes() {
        let mut first = config(&["a.example", "b.example"]);
        first.zone_data.push(zone_data("a.example", "one"));
        assign(&mut first, None, NOW);
        assert_eq!(first.serials["a.example"], NOW);
        assert_eq!(first.serials["b.example"], NOW);

        let mut same = first.clone();
        assign(&mut same, Some(&first), NOW + 100);
        assert_eq!(same.serials, first.serials, "nothing changed");

        let mut edited = first.clone();
        edited.zone_data[0] = zone_data("a.example", "two");
        assign(&mut edited, Some(&first), NOW + 100);
        assert_eq!(edited.serials["a.example"], NOW + 100);
        assert_eq!(
            edited.serials["b.example"], NOW,
            "the other zone did not change"
        );
    }

    #[test]
    fn serials_never_go_backwards_and_new_zones_start_at_now() {
        let mut first = config(&["a.example"]);
        first.zone_data.push(zone_data("a.example", "one"));
        assign(&mut first, None, NOW);
        // Two changes within a second, then a clock set back: one up each time.
        let mut second = first.clone();
        second.zone_data[0] = zone_data("a.example", "two");
        assign(&mut second, Some(&first), NOW);
        assert_eq!(second.serials["a.example"], NOW + 1);
        let mut third = second.clone();
        third.zone_data[0] = zone_data("a.example", "three");
        assign(&mut third, Some(&second), NOW - 3600);
        assert_eq!(third.serials["a.example"], NOW + 2);

        let mut grown = third.clone();
        grown.zones.push("c.example".into());
        assign(&mut grown, Some(&third), NOW + 5);
        assert_eq!(grown.serials["c.example"], NOW + 5);
        assert_eq!(grown.serials["a.example"], NOW + 2);
    }

    #[test]
    fn an_access_domain_counts_for_its_most_specific_zone_only() {
        use gtm_crds::common::{LbPolicy, SequentialMode};
        use gtm_crds::domain::{Fallback, RecordType};
        let mut first = config(&["example", "eu.example"]);
        assign(&mut first, None, NOW);
        let mut with_domain = first.clone();
        with_domain.domains.push(DomainConfig {
            id: "ns/d".into(),
            name: "app.eu.example".into(),
            record_type: RecordType::A,
            ttl: 30,
            policy: LbPolicy::RoundRobin,
            sequential_mode: SequentialMode::Preemptive,
            affinity: None,
            latency: None,
            max_answers: None,
            when_all_unavailable: Fallback::FailOpen,
            pools: vec![],
        });
        assign(&mut with_domain, Some(&first), NOW + 7);
        assert_eq!(with_domain.serials["eu.example"], NOW + 7);
        assert_eq!(with_domain.serials["example"], NOW);
    }
}
