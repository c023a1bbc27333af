//! One level of the resolution (pools of a domain, or addresses of a pool): the members that
//! may answer and how the level's policy picks among them. Both levels share this code; only
//! what a member is differs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use gtm_crds::availability::sequential_pick;
use gtm_crds::common::{Affinity, LbPolicy, RequestSources, SequentialMode};
use gtm_crds::config::{AddressConfig, PoolMember};
use rand::{Rng, RngExt};

use super::Reason;
use super::sticky::StickyTable;
use crate::sources::{BadCidr, Client, SourceMatch, SourceTable};

/// What the policy of a level needs to know about one member.
pub(crate) struct MemberSpec<'a> {
    /// Its identity (pool id, address value), which `Sticky` hashes.
    pub key: &'a str,
    /// Sequential priority, lowest first.
    pub order: u16,
    /// Weight for `Weighted`.
    pub weight: u8,
    /// Sources for `SourceNearest`.
    pub sources: &'a RequestSources,
}

impl<'a> From<&'a PoolMember> for MemberSpec<'a> {
    fn from(m: &'a PoolMember) -> Self {
        Self {
            key: &m.pool,
            order: m.order,
            weight: m.weight,
            sources: &m.sources,
        }
    }
}

impl<'a> From<&'a AddressConfig> for MemberSpec<'a> {
    fn from(a: &'a AddressConfig) -> Self {
        Self {
            key: &a.value,
            order: a.order,
            weight: a.weight,
            sources: &a.sources,
        }
    }
}

/// A level compiled for one health snapshot: the members that may answer are fixed, so only
/// the per-query part of the policy (rotation, draw, source match) is left.
#[derive(Debug)]
pub(crate) struct Level {
    policy: LbPolicy,
    /// Member indices that may answer, in member order.
    candidates: Vec<usize>,
    /// The `Sequential` pick, as a position in `candidates`.
    sequential: usize,
    /// Why the `Sequential` pick is the one: [`Reason::FailedOver`] when a member of lower
    /// order is not a candidate.
    sequential_reason: Reason,
    /// Running sums of the candidates' weights, for `Weighted`.
    cumulative: Vec<u32>,
    /// The candidates' sources, for `SourceNearest`.
    sources: SourceTable,
    /// The candidates' hashes, for `Sticky`.
    sticky: Option<StickyTable>,
    /// `RoundRobin` position, shared with the same level of the previous and the next compile
    /// ([`super::Rotations`]).
    rotation: Arc<AtomicUsize>,
    /// The probe locations and their pool rankings, for `Latency`.
    latency: Option<LatencyTable>,
}

/// Latency steering of one domain: which clients each probe location stands for, and the
/// members each location ranks (fastest first, as the operator published).
#[derive(Debug)]
pub(crate) struct LatencyTable {
    /// The locations' sources (member index = location index).
    locations: SourceTable,
    /// Per location, member indices in ranking order.
    rankings: Vec<Vec<usize>>,
}

impl LatencyTable {
    /// A table over `locations` (their sources, and their rankings as member indices).
    pub(crate) fn new<'s>(
        locations: impl IntoIterator<Item = (&'s RequestSources, Vec<usize>)>,
    ) -> Result<Self, BadCidr> {
        let (sources, rankings): (Vec<&RequestSources>, Vec<Vec<usize>>) =
            locations.into_iter().unzip();
        Ok(Self {
            locations: SourceTable::new(sources.into_iter().enumerate())?,
            rankings,
        })
    }
}

/// The members a level picked for one query: `list` from `start` on, wrapping around.
pub(crate) struct Selection<'l> {
    list: std::borrow::Cow<'l, [usize]>,
    start: usize,
}

impl<'l> Selection<'l> {
    fn borrowed(list: &'l [usize], start: usize) -> Self {
        Self {
            list: std::borrow::Cow::Borrowed(list),
            start,
        }
    }

    /// The picked member indices, in answer order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        let (head, tail) = self.list.split_at(self.start);
        tail.iter().chain(head).copied()
    }
}

impl Level {
    /// Compiles a level. `candidates` are the members that may answer (indices into
    /// `members`); `active` is the member the operator published as current for `Sequential`;
    /// `rotation` the level's `RoundRobin` position; `affinity` how `Sticky` groups clients.
    pub(crate) fn new(
        policy: LbPolicy,
        mode: SequentialMode,
        affinity: Option<Affinity>,
        members: &[MemberSpec<'_>],
        candidates: Vec<usize>,
        active: Option<usize>,
        rotation: Arc<AtomicUsize>,
    ) -> Result<Self, BadCidr> {
        // The contract's rule over the candidates, with the member the operator published as
        // current (so every pod answers alike). Preemptive ignores it: if the two disagree for
        // a moment, the recovered primary still wins.
        let current = active.and_then(|a| candidates.iter().position(|&m| m == a));
        let by_position = candidates
            .iter()
            .enumerate()
            .map(|(position, &m)| (position, members[m].order));
        let sequential = sequential_pick(mode, by_position, current).unwrap_or(0);
        let lowest = members.iter().map(|m| m.order).min();
        let sequential_reason = match candidates.get(sequential) {
            Some(&m) if Some(members[m].order) > lowest => Reason::FailedOver,
            _ => Reason::Preferred,
        };
        let mut sum = 0u32;
        let cumulative = candidates
            .iter()
            .map(|&m| {
                sum += u32::from(members[m].weight.max(1));
                sum
            })
            .collect();
        let sources = match policy {
            LbPolicy::SourceNearest => {
                SourceTable::new(candidates.iter().map(|&m| (m, members[m].sources)))?
            }
            LbPolicy::RoundRobin
            | LbPolicy::Sequential
            | LbPolicy::Weighted
            | LbPolicy::Sticky
            | LbPolicy::Latency => SourceTable::default(),
        };
        let sticky = (policy == LbPolicy::Sticky).then(|| {
            StickyTable::new(
                candidates
                    .iter()
                    .map(|&m| (members[m].key, members[m].weight)),
                affinity.unwrap_or_default(),
            )
        });
        Ok(Self {
            policy,
            candidates,
            sequential,
            sequential_reason,
            cumulative,
            sources,
            sticky,
            rotation,
            latency: None,
        })
    }

    /// The level's `RoundRobin` position, for the same level compiled again.
    pub(crate) fn rotation(&self) -> Arc<AtomicUsize> {
        self.rotation.clone()
    }

    /// Everything the level decided, without its `RoundRobin` position (which a compile takes
    /// over from the one before).
    #[cfg(test)]
    pub(crate) fn fingerprint(&self) -> String {
        format!(
            "{:?} {:?} {} {:?} {:?} {:?} {:?}",
            self.policy,
            self.candidates,
            self.sequential,
            self.cumulative,
            self.sources,
            self.sticky,
            self.latency
        )
    }

    /// The same level steering by `table` (`Latency`).
    pub(crate) fn with_latency(self, table: LatencyTable) -> Self {
        Self {
            latency: Some(table),
            ..self
        }
    }

    /// `Latency`: the first member of the client's location's ranking that is a candidate,
    /// as a candidate position, and the ECS scope; `None` when no location maps the client
    /// (nothing matches and none is a default) or its location ranks no candidate.
    fn fastest(&self, client: Option<&Client<'_>>) -> (Option<usize>, u8) {
        let Some(table) = &self.latency else {
            return (None, 0);
        };
        let (locations, scope, how) = table.locations.select(client);
        if how == SourceMatch::All {
            return (None, scope);
        }
        let position = locations.first().and_then(|&l| {
            table.rankings[l]
                .iter()
                .find_map(|m| self.candidates.iter().position(|c| c == m))
        });
        (position, scope)
    }

    /// Whether no member may answer.
    pub(crate) fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }

    /// A candidate position drawn with probability proportional to its weight.
    fn weighted_draw(&self, rng: &mut impl Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1);
        let draw = rng.random_range(0..total);
        self.cumulative.partition_point(|&c| c <= draw)
    }

    /// Picks the members for one query; also returns the ECS scope prefix the pick depended
    /// on, and why the policy picked them.
    pub(crate) fn select(
        &self,
        client: Option<&Client<'_>>,
        rng: &mut impl Rng,
    ) -> (Selection<'_>, u8, Reason) {
        let n = self.candidates.len();
        if n == 0 {
            return (Selection::borrowed(&[], 0), 0, Reason::Unavailable);
        }
        let one = |i: usize| Selection::borrowed(&self.candidates[i..=i], 0);
        match self.policy {
            LbPolicy::RoundRobin => {
                let start = self.rotation.fetch_add(1, Ordering::Relaxed) % n;
                (
                    Selection::borrowed(&self.candidates, start),
                    0,
                    Reason::Rotation,
                )
            }
            LbPolicy::Sequential => (one(self.sequential), 0, self.sequential_reason),
            // No location for the client, or no ranking from it: the pools' order.
            LbPolicy::Latency => match self.fastest(client) {
                (Some(position), scope) => (one(position), scope, Reason::Latency),
                (None, scope) => (one(self.sequential), scope, Reason::LatencyFallback),
            },
            LbPolicy::Weighted => (one(self.weighted_draw(rng)), 0, Reason::Weighted),
            // A client without a location (ECS source prefix 0) is drawn by weight.
            LbPolicy::Sticky => match (&self.sticky, client) {
                (Some(table), Some(client)) => {
                    let (position, scope) = table.pick(client.addr());
                    (one(position), scope, Reason::Sticky)
                }
                _ => (one(self.weighted_draw(rng)), 0, Reason::Weighted),
            },
            LbPolicy::SourceNearest => {
                let (members, scope, how) = self.sources.select(client);
                let reason = match how {
                    SourceMatch::Matched => Reason::SourceMatch,
                    SourceMatch::Default => Reason::SourceDefault,
                    SourceMatch::All => Reason::SourceFallback,
                };
                (
                    Selection {
                        list: std::borrow::Cow::Owned(members),
                        start: 0,
                    },
                    scope,
                    reason,
                )
            }
        }
    }
}
