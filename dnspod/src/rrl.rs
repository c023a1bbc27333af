//! Response rate limiting (RRL) for UDP, per source prefix: a reflection attack spoofs its
//! victim's address, so what the victim's network receives from this server is bounded.
//!
//! Each source prefix (`/24` IPv4, `/56` IPv6 by default) is hashed, with a key chosen at
//! start-up so that no one can aim at a slot, into a fixed table of atomic words. A word is a
//! token bucket in GCRA form (the theoretical arrival time of the next response, in
//! microseconds since start-up) plus a count of limited responses; one compare-and-swap
//! updates both, so the query path takes no lock and allocates nothing. Prefixes that share a
//! slot share a budget, as in Knot's and BIND's tables.
//!
//! Over the rate, every `slip`-th response goes out as an empty truncated answer (TC=1), which
//! a real resolver retries over TCP (never limited), and the others are dropped; spoofed
//! sources get nothing bigger than their query.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Slots in the table: 512 KiB of atomics.
const SLOTS: usize = 1 << 16;
/// Bits of a slot word that count limited responses since the last slip.
const COUNT_BITS: u32 = 16;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

/// Default responses per second per source prefix.
pub const DEFAULT_RATE: u32 = 200;
/// The highest rate: one response per microsecond, the bucket's time unit.
pub const MAX_RATE: u32 = 1_000_000;
/// Default responses a prefix may send at once above its rate.
pub const DEFAULT_BURST: u32 = 200;
/// Default slip: every second limited response is a truncated answer.
pub const DEFAULT_SLIP: u16 = 2;
/// Default IPv4 source prefix length.
pub const DEFAULT_IPV4_PREFIX: u8 = 24;
/// Default IPv6 source prefix length.
pub const DEFAULT_IPV6_PREFIX: u8 = 56;

/// Response rate limiting settings (`docs/configuration.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RrlConfig {
    /// Responses per second per source prefix (at least 1).
    pub rate: u32,
    /// Responses a prefix may receive back to back before the rate applies (at least 1).
    pub burst: u32,
    /// Every `slip`-th limited response is sent truncated; 0 drops them all.
    pub slip: u16,
    /// IPv4 sources are grouped by this prefix length (0 to 32).
    pub ipv4_prefix: u8,
    /// IPv6 sources are grouped by this prefix length (0 to 128).
    pub ipv6_prefix: u8,
}

impl Default for RrlConfig {
    fn default() -> Self {
        Self {
            rate: DEFAULT_RATE,
            burst: DEFAULT_BURST,
            slip: DEFAULT_SLIP,
            ipv4_prefix: DEFAULT_IPV4_PREFIX,
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
        }
    }
}

/// What to do with one response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the rate: send the answer.
    Send,
    /// Over the rate, and this one slips: send an empty truncated answer.
    Slip,
    /// Over the rate: send nothing.
    Drop,
}

/// A point in time for [`Rrl::check`], read once per batch of queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tick(u64);

/// The rate limiter shared by every UDP thread.
pub struct Rrl {
    config: RrlConfig,
    /// Microseconds between two responses at the rate.
    interval: u64,
    /// How far the next arrival time may run ahead of now: the burst.
    tolerance: u64,
    key: std::collections::hash_map::RandomState,
    slots: Box<[AtomicU64]>,
    started: Instant,
}

impl std::fmt::Debug for Rrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rrl").field("config", &self.config).finish()
    }
}

impl Rrl {
    /// A limiter with `config` (rate and burst of at least 1).
    pub fn new(config: RrlConfig) -> Self {
        let interval = 1_000_000 / u64::from(config.rate.max(1));
        Self {
            config,
            interval,
            tolerance: interval * u64::from(config.burst.max(1)),
            key: std::collections::hash_map::RandomState::new(),
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            started: Instant::now(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &RrlConfig {
        &self.config
    }

    /// Now, for [`Rrl::check`].
    pub fn now(&self) -> Tick {
        Tick(u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    /// Whether a response to `source` at `now` may go out; counts it when it does.
    pub fn check(&self, source: IpAddr, now: Tick) -> Verdict {
        let slot = &self.slots[self.slot_of(source)];
        let mut word = slot.load(Ordering::Relaxed);
        loop {
            let (verdict, next) = self.decide(word, now.0);
            match slot.compare_exchange_weak(word, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return verdict,
                Err(current) => word = current,
            }
        }
    }

    /// The verdict for a slot holding `word` at `now`, and the slot's next word.
    fn decide(&self, word: u64, now: u64) -> (Verdict, u64) {
        let arrival = (word >> COUNT_BITS).max(now);
        let limited = word & COUNT_MASK;
        if arrival + self.interval - now <= self.tolerance {
            // Within the burst: the next arrival moves one interval on.
            return (
                Verdict::Send,
                (arrival + self.interval) << COUNT_BITS | limited,
            );
        }
        let count = limited + 1;
        let keep = (word >> COUNT_BITS) << COUNT_BITS;
        if self.config.slip != 0 && count >= u64::from(self.config.slip) {
            (Verdict::Slip, keep)
        } else {
            (Verdict::Drop, keep | count.min(COUNT_MASK))
        }
    }

    /// The table slot of `source`'s prefix.
    fn slot_of(&self, source: IpAddr) -> usize {
        let prefix: (u8, u128) = match source.to_canonical() {
            IpAddr::V4(a) => (4, mask(u32::from(a).into(), 32, self.config.ipv4_prefix)),
            IpAddr::V6(a) => (6, mask(u128::from(a), 128, self.config.ipv6_prefix)),
        };
        (self.key.hash_one(prefix) as usize) & (SLOTS - 1)
    }
}

/// The first `prefix` bits of an address of `bits` bits.
fn mask(addr: u128, bits: u8, prefix: u8) -> u128 {
    let keep = u32::from(prefix.min(bits));
    if keep == 0 {
        return 0;
    }
    let ones = u128::MAX << (128 - keep) >> (128 - u32::from(bits));
    addr & ones
}

/// Writes the empty truncated answer (TC=1) that a slipped response becomes into `out`: the
/// query's id, opcode, RD and question (when it has exactly one that parses), nothing else.
/// Returns false, `out` unspecified, when `packet` is not a query.
pub fn write_slip(packet: &[u8], out: &mut Vec<u8>) -> bool {
    const QR: u8 = 0x80;
    const OPCODE_AND_RD: u8 = 0x79;
    const TC: u8 = 0x02;
    if packet.len() < 12 || packet[2] & QR != 0 {
        return false;
    }
    out.clear();
    out.extend_from_slice(&packet[..2]);
    out.push(QR | TC | (packet[2] & OPCODE_AND_RD));
    out.push(0);
    let question = if packet[4..6] == [0, 1] {
        question_end(packet).map(|end| &packet[12..end])
    } else {
        None
    };
    out.extend_from_slice(&[0, u8::from(question.is_some()), 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(question.unwrap_or_default());
    true
}

/// The end of the first question of `packet` when its name is uncompressed and it is whole.
fn question_end(packet: &[u8]) -> Option<usize> {
    let mut at = 12;
    loop {
        let len = usize::from(*packet.get(at)?);
        if len & 0xC0 != 0 {
            return None;
        }
        at += 1 + len;
        if len == 0 {
            break;
        }
    }
    (at + 4 <= packet.len()).then_some(at + 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rrl(rate: u32, burst: u32, slip: u16) -> Rrl {
        Rrl::new(RrlConfig {
            rate,
            burst,
            slip,
            ..RrlConfig::default()
        })
    }

    fn verdicts(r: &Rrl, source: &str, now: u64, n: usize) -> Vec<Verdict> {
        let ip = source.parse().unwrap();
        (0..n).map(|_| r.check(ip, Tick(now))).collect()
    }

    #[test]
    fn a_burst_passes_then_every_slip_th_response_is_truncated() {
        use Verdict::*;
        let r = rrl(10, 3, 2);
        assert_eq!(verdicts(&r, "192.0.2.1", 0, 3), [Send, Send, Send]);
        assert_eq!(verdicts(&r, "192.0.2.1", 0, 4), [Drop, Slip, Drop, Slip]);
    }

    #[test]
    fn the_rate_refills_the_bucket_over_time() {
        use Verdict::*;
        let r = rrl(10, 1, 0);
        assert_eq!(verdicts(&r, "192.0.2.1", 0, 2), [Send, Drop]);
        // 10 per second: one more after 100 ms, not before.
        assert_eq!(verdicts(&r, "192.0.2.1", 99_999, 1), [Drop]);
        assert_eq!(verdicts(&r, "192.0.2.1", 100_000, 2), [Send, Drop]);
        // Idle for long: a whole burst again, never more.
        assert_eq!(verdicts(&r, "192.0.2.1", 10_000_000, 2), [Send, Drop]);
    }

    #[test]
    fn sources_are_grouped_by_prefix() {
        use Verdict::*;
        let r = rrl(1, 1, 0);
        assert_eq!(verdicts(&r, "192.0.2.1", 0, 1), [Send]);
        assert_eq!(verdicts(&r, "192.0.2.200", 0, 1), [Drop], "same /24");
        assert_eq!(verdicts(&r, "::ffff:192.0.2.7", 0, 1), [Drop], "mapped");
        assert_eq!(verdicts(&r, "2001:db8:0:ff::1", 0, 1), [Send]);
        assert_eq!(verdicts(&r, "2001:db8:0:1::1", 0, 1), [Drop], "same /56");
    }

    #[test]
    fn masks_keep_the_prefix_bits() {
        assert_eq!(mask(0xC000_02FF, 32, 24), 0xC000_0200);
        assert_eq!(mask(0xC000_02FF, 32, 0), 0);
        assert_eq!(mask(0xC000_02FF, 32, 40), 0xC000_02FF);
        assert_eq!(mask(u128::MAX, 128, 56), u128::MAX << 72);
    }

    #[test]
    fn a_slip_echoes_id_opcode_rd_and_the_question() {
        let query = [
            0xAB, 0xCD, 0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 1, 1, b'a', 0, 0, 1, 0, 1, 0, 0, 41,
        ];
        let mut out = Vec::new();
        assert!(write_slip(&query, &mut out));
        assert_eq!(
            out,
            [
                0xAB, 0xCD, 0x83, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 1, 0, 1
            ]
        );
        // A response, a runt and a cut question.
        let mut response = query;
        response[2] |= 0x80;
        assert!(!write_slip(&response, &mut out));
        assert!(!write_slip(&query[..11], &mut out));
        assert!(write_slip(&query[..15], &mut out));
        assert_eq!(out[5], 0, "no question");
    }
}
