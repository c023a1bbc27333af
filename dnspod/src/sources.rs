//! Request sources ("lines"): which members of a level match a client.
//!
//! The client is the EDNS Client Subnet of the query when it carries one, else the resolver's
//! address. The most specific kind that matches wins: CIDR (longest prefix) > ASN >
//! subdivision > country > continent; then members marked `default`; then all members.
//!
//! Besides the members, matching yields the ECS scope prefix (RFC 7871): the number of leading
//! address bits the decision depended on, so that a resolver may cache the answer for exactly
//! the network it holds for.

use std::cell::OnceCell;
use std::net::IpAddr;

use gtm_crds::common::RequestSources;
use ipnet::IpNet;

use crate::geoip::{GeoInfo, GeoIp};

/// The client a query is answered for.
pub struct Client<'g> {
    addr: IpAddr,
    geoip: Option<&'g GeoIp>,
    geo: OnceCell<Option<GeoInfo>>,
}

impl<'g> Client<'g> {
    /// A client at `addr` (IPv4-mapped IPv6 addresses count as IPv4), located with `geoip`
    /// when given. The database is consulted at most once, and only when a level has
    /// location sources.
    pub fn new(addr: IpAddr, geoip: Option<&'g GeoIp>) -> Self {
        Self {
            addr: addr.to_canonical(),
            geoip,
            geo: OnceCell::new(),
        }
    }

    /// The address matched on.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    fn geo(&self) -> Option<&GeoInfo> {
        self.geo
            .get_or_init(|| self.geoip.and_then(|db| db.lookup(self.addr)))
            .as_ref()
    }
}

/// The request sources of the members of one level, compiled for matching.
#[derive(Debug, Default)]
pub struct SourceTable {
    cidrs: Vec<(IpNet, usize)>,
    asns: Vec<(u32, usize)>,
    subdivisions: Vec<(String, usize)>,
    countries: Vec<(String, usize)>,
    continents: Vec<(&'static str, usize)>,
    defaults: Vec<usize>,
    all: Vec<usize>,
}

/// How a client found the members [`SourceTable::select`] gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceMatch {
    /// Its address or location matched members' sources.
    Matched,
    /// Nothing matched (or the client has no location): the members marked `default`.
    Default,
    /// Nothing matched and no member is marked `default`: all members.
    All,
}

/// A member's sources hold a CIDR that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("request source {0:?} is not a network in CIDR notation")]
pub struct BadCidr(pub String);

impl SourceTable {
    /// Compiles the sources of `members` (member index, its sources); only these members can
    /// be matched.
    pub fn new<'s>(
        members: impl IntoIterator<Item = (usize, &'s RequestSources)>,
    ) -> Result<Self, BadCidr> {
        let mut t = Self::default();
        for (m, s) in members {
            for c in &s.cidrs {
                let net: IpNet = c.0.parse().map_err(|_| BadCidr(c.0.clone()))?;
                t.cidrs.push((net.trunc(), m));
            }
            t.asns.extend(s.asns.iter().map(|a| (*a, m)));
            t.subdivisions
                .extend(s.subdivisions.iter().map(|c| (c.0.to_ascii_uppercase(), m)));
            t.countries
                .extend(s.countries.iter().map(|c| (c.0.to_ascii_uppercase(), m)));
            t.continents
                .extend(s.continents.iter().map(|c| (c.code(), m)));
            if s.default {
                t.defaults.push(m);
            }
            t.all.push(m);
        }
        Ok(t)
    }

    fn uses_geo(&self) -> bool {
        !(self.asns.is_empty()
            && self.subdivisions.is_empty()
            && self.countries.is_empty()
            && self.continents.is_empty())
    }

    /// The members that serve `client` (in member order, never empty unless the table is),
    /// the ECS scope prefix the choice depended on, and how the client found them. Without a
    /// client (no address, or ECS source prefix 0) the defaults answer, else all members.
    pub fn select(&self, client: Option<&Client<'_>>) -> (Vec<usize>, u8, SourceMatch) {
        let fallback = |scope| {
            if self.defaults.is_empty() {
                (self.all.clone(), scope, SourceMatch::All)
            } else {
                (self.defaults.clone(), scope, SourceMatch::Default)
            }
        };
        let Some(client) = client else {
            return fallback(0);
        };
        let (cidr_members, mut scope) = self.match_cidrs(client.addr);
        if !cidr_members.is_empty() {
            return (cidr_members, scope, SourceMatch::Matched);
        }
        if self.uses_geo()
            && let Some(geo) = client.geo()
        {
            scope = scope.max(geo.prefix_len);
            let found = match_all(&self.asns, |a| geo.asn == Some(*a))
                .or_else(|| {
                    match_all(&self.subdivisions, |s| {
                        geo.subdivisions.iter().any(|g| g == s)
                    })
                })
                .or_else(|| match_all(&self.countries, |c| geo.country.as_deref() == Some(c)))
                .or_else(|| match_all(&self.continents, |c| geo.continent.as_deref() == Some(*c)));
            if let Some(members) = found {
                return (members, scope, SourceMatch::Matched);
            }
        }
        fallback(scope)
    }

    /// Members with the longest CIDR containing `addr`, and the prefix length that decides
    /// this over the client's network: for each CIDR, its own length when it contains the
    /// address, else one more than the bits it shares with the address (a shorter network
    /// around the client would contain part of the CIDR and so not have one answer).
    fn match_cidrs(&self, addr: IpAddr) -> (Vec<usize>, u8) {
        let mut best: Option<u8> = None;
        let mut members = Vec::new();
        let mut scope = 0;
        for (net, m) in &self.cidrs {
            let Some(common) = common_prefix(addr, net.network()) else {
                continue;
            };
            let len = net.prefix_len();
            if common >= len {
                scope = scope.max(len);
                match best {
                    Some(b) if b > len => {}
                    Some(b) if b == len => push_unique(&mut members, *m),
                    _ => {
                        best = Some(len);
                        members.clear();
                        members.push(*m);
                    }
                }
            } else {
                scope = scope.max(common + 1);
            }
        }
        members.sort_unstable();
        (members, scope)
    }
}

fn push_unique(v: &mut Vec<usize>, m: usize) {
    if !v.contains(&m) {
        v.push(m);
    }
}

/// The members of the entries satisfying `pred`, sorted, or `None` when there are none.
fn match_all<T>(entries: &[(T, usize)], pred: impl Fn(&T) -> bool) -> Option<Vec<usize>> {
    let mut members: Vec<usize> = Vec::new();
    for (v, m) in entries {
        if pred(v) {
            push_unique(&mut members, *m);
        }
    }
    members.sort_unstable();
    (!members.is_empty()).then_some(members)
}

/// Leading bits two addresses of the same family share; `None` across families.
fn common_prefix(a: IpAddr, b: IpAddr) -> Option<u8> {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => Some((u32::from(a) ^ u32::from(b)).leading_zeros() as u8),
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            Some((u128::from(a) ^ u128::from(b)).leading_zeros() as u8)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use gtm_crds::common::{Cidr, Continent, CountryCode};

    use super::*;

    fn cidrs(list: &[&str]) -> RequestSources {
        RequestSources {
            cidrs: list.iter().map(|c| Cidr((*c).into())).collect(),
            ..RequestSources::default()
        }
    }

    fn client(addr: &str) -> Client<'static> {
        Client::new(addr.parse().unwrap(), None)
    }

    #[test]
    fn longest_prefix_wins_and_scope_covers_the_deciding_bits() {
        let a = cidrs(&["10.0.0.0/8"]);
        let b = cidrs(&["10.1.0.0/16"]);
        let t = SourceTable::new([(0, &a), (1, &b)]).unwrap();
        assert_eq!(
            t.select(Some(&client("10.1.2.3"))),
            (vec![1], 16, SourceMatch::Matched)
        );
        // Outside 10.1/16 but inside 10/8: the /16 still bounds the scope (10.0/15 would
        // contain part of it), so 16 bits decide.
        assert_eq!(
            t.select(Some(&client("10.0.2.3"))),
            (vec![0], 16, SourceMatch::Matched)
        );
        // Far away: nothing matches, and 1 bit (10/8 starts with 0) already rules out both.
        let (members, scope, how) = t.select(Some(&client("192.0.2.1")));
        assert_eq!(members, vec![0, 1]);
        assert_eq!(scope, 1);
        assert_eq!(how, SourceMatch::All);
    }

    #[test]
    fn ipv4_mapped_clients_match_ipv4_networks() {
        let a = cidrs(&["192.0.2.0/24"]);
        let t = SourceTable::new([(3, &a)]).unwrap();
        assert_eq!(t.select(Some(&client("::ffff:192.0.2.9"))).0, vec![3]);
    }

    #[test]
    fn defaults_serve_unmatched_and_unknown_clients() {
        let a = cidrs(&["192.0.2.0/24"]);
        let d = RequestSources {
            default: true,
            ..RequestSources::default()
        };
        let t = SourceTable::new([(0, &a), (1, &d)]).unwrap();
        let (members, _, how) = t.select(Some(&client("198.51.100.1")));
        assert_eq!((members, how), (vec![1], SourceMatch::Default));
        assert_eq!(t.select(None), (vec![1], 0, SourceMatch::Default));
    }

    #[test]
    fn location_sources_never_match_without_a_database() {
        let de = RequestSources {
            countries: vec![CountryCode("DE".into())],
            continents: vec![Continent::EU],
            ..RequestSources::default()
        };
        let other = RequestSources::default();
        let t = SourceTable::new([(0, &de), (1, &other)]).unwrap();
        assert_eq!(
            t.select(Some(&client("192.0.2.1"))),
            (vec![0, 1], 0, SourceMatch::All)
        );
    }

    #[test]
    fn a_bad_cidr_is_refused() {
        let bad = cidrs(&["10.0.0.0/33"]);
        assert!(SourceTable::new([(0, &bad)]).is_err());
    }
}
