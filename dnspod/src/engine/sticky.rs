//! `Sticky`: weighted rendezvous hashing (highest random weight) of the client's network. Each
//! member scores `-ln(u) / weight`, `u` a hash of (network, member) in (0, 1), and the lowest
//! score wins. So a network keeps its member for as long as that member may answer, the
//! members' shares of many networks follow their weights, and a member that goes down hands
//! only its own networks to the others (and gets them back when it recovers): the minimal
//! movement of consistent hashing, as PowerDNS's `pickchashed` gives.
//!
//! The hashes are fixed functions of the network and the member's identity (its pool id or
//! address value), never of the process, so every DNS pod picks the same member.

use std::net::IpAddr;

use gtm_crds::common::Affinity;

/// The members of one `Sticky` level, ready to pick from.
#[derive(Debug)]
pub(crate) struct StickyTable {
    /// Per member, a hash of its identity.
    seeds: Vec<u64>,
    /// Per member, its weight.
    weights: Vec<f64>,
    /// All weights equal: the highest hash wins, no logarithm needed.
    uniform: bool,
    affinity: Affinity,
}

impl StickyTable {
    /// A table over `members` (identity and weight), in candidate order.
    pub(crate) fn new<'a>(
        members: impl IntoIterator<Item = (&'a str, u8)>,
        affinity: Affinity,
    ) -> Self {
        let (seeds, weights): (Vec<u64>, Vec<f64>) = members
            .into_iter()
            .map(|(key, weight)| (fnv1a(key.as_bytes()), f64::from(weight.max(1))))
            .unzip();
        let uniform = weights.windows(2).all(|w| w[0] == w[1]);
        Self {
            seeds,
            weights,
            uniform,
            affinity,
        }
    }

    /// The position of the member that answers a client at `addr`, and the prefix length of
    /// the network the choice depended on (the ECS scope).
    pub(crate) fn pick(&self, addr: IpAddr) -> (usize, u8) {
        let (network, prefix) = network(addr, self.affinity);
        let hash = |i: usize| fmix64(network ^ self.seeds[i]);
        let n = self.seeds.len();
        let best = if self.uniform {
            (0..n).max_by_key(|&i| hash(i))
        } else {
            (0..n).min_by(|&a, &b| self.score(hash(a), a).total_cmp(&self.score(hash(b), b)))
        };
        (best.unwrap_or(0), prefix)
    }

    fn score(&self, hash: u64, i: usize) -> f64 {
        // The top 53 bits as a uniform draw in (0, 1).
        let u = ((hash >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        -u.ln() / self.weights[i]
    }
}

/// The client's network (its address cut to the affinity prefix) as one hash, and the prefix.
fn network(addr: IpAddr, affinity: Affinity) -> (u64, u8) {
    match addr {
        IpAddr::V4(a) => {
            let prefix = affinity.ipv4_prefix_length.min(32);
            let bits = u32::from(a)
                .checked_shr(32 - u32::from(prefix))
                .unwrap_or(0);
            (fmix64(u64::from(bits) ^ (u64::from(prefix) << 40)), prefix)
        }
        IpAddr::V6(a) => {
            let prefix = affinity.ipv6_prefix_length.min(128);
            let bits = u128::from(a)
                .checked_shr(128 - u32::from(prefix))
                .unwrap_or(0);
            let folded = fmix64(bits as u64) ^ ((bits >> 64) as u64).rotate_left(17);
            (fmix64(folded ^ (1 << 63) ^ u64::from(prefix)), prefix)
        }
    }
}

/// FNV-1a, 64 bits: a fixed hash of a member's identity.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// MurmurHash3's 64-bit finalizer: every input bit moves every output bit.
fn fmix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn table(members: &[(&str, u8)]) -> StickyTable {
        StickyTable::new(members.iter().copied(), Affinity::default())
    }

    /// 20 000 IPv4 /24 networks.
    fn networks() -> impl Iterator<Item = IpAddr> {
        (0..20_000u32).map(|i| IpAddr::V4(Ipv4Addr::from((i + 1) << 8)))
    }

    #[test]
    fn a_network_stays_on_its_member_and_addresses_inside_it_agree() {
        let t = table(&[("a", 1), ("b", 1), ("c", 1)]);
        for net in networks().take(500) {
            let IpAddr::V4(v4) = net else { unreachable!() };
            let (pick, scope) = t.pick(net);
            assert_eq!(scope, 24);
            assert_eq!(
                t.pick(IpAddr::V4(Ipv4Addr::from(u32::from(v4) | 0xff))).0,
                pick
            );
            assert_eq!(t.pick(net).0, pick, "the same answer every time");
        }
        let v6 = |s: &str| IpAddr::V6(s.parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            t.pick(v6("2001:db8:0:100::1")).0,
            t.pick(v6("2001:db8:0:1ff:ffff::")).0,
            "one /56"
        );
        assert_eq!(t.pick(v6("2001:db8::1")).1, 56);
    }

    #[test]
    fn weights_hold_in_aggregate() {
        let t = table(&[("a", 3), ("b", 1)]);
        let a = networks().filter(|n| t.pick(*n).0 == 0).count();
        let share = a as f64 / 20_000.0;
        assert!((0.73..0.77).contains(&share), "a gets {share}, weight 3:1");
        let even = table(&[("a", 1), ("b", 1), ("c", 1), ("d", 1)]);
        for m in 0..4 {
            let n = networks().filter(|n| even.pick(*n).0 == m).count();
            assert!((4700..5300).contains(&n), "member {m}: {n} of 20000");
        }
    }

    #[test]
    fn only_the_networks_of_a_member_that_goes_down_move() {
        let all = table(&[("a", 2), ("b", 1), ("c", 1)]);
        let without_b = table(&[("a", 2), ("c", 1)]);
        let names = ["a", "b", "c"];
        let kept = ["a", "c"];
        let mut moved = 0;
        for net in networks() {
            let before = names[all.pick(net).0];
            let after = kept[without_b.pick(net).0];
            if before == "b" {
                moved += 1;
            } else {
                assert_eq!(before, after, "{net} was not on b and must stay");
            }
        }
        assert!((4500..5500).contains(&moved), "b's quarter moved: {moved}");
    }

    #[test]
    fn member_order_does_not_matter_only_identity() {
        let t = table(&[("a", 1), ("b", 1), ("c", 1)]);
        let reversed = table(&[("c", 1), ("b", 1), ("a", 1)]);
        for net in networks().take(1000) {
            assert_eq!(t.pick(net).0, 2 - reversed.pick(net).0);
        }
    }
}
