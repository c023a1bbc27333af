//! The answer engine: pure functions from (config, health, query, client) to an answer.
//!
//! [`Compiled::build`] turns a [`gtm_crds::config::GtmConfig`] and the verdicts of a health
//! payload ([`gtm_crds::config::HealthVerdicts`]) into an immutable index, and
//! [`Compiled::with_health`] lays the next health payload over the same compiled config
//! (`overlay`); [`Compiled::answer`] answers
//! one query from it without locks, I/O or more allocation than the answer list itself
//! (`SourceNearest` and GeoIP lookups allocate a little more).
//!
//! Resolution has two levels: the domain's policy picks pools, each picked pool's policy picks
//! addresses (`RoundRobin`: all available members, rotated per query; `Sequential`: one;
//! `Weighted`: one drawn by weight; `SourceNearest`: those matching the client; `Sticky`: one
//! by a weighted consistent hash of the client's network, see `sticky`). Availability
//! and fail-open are the contract's rules ([`gtm_crds::availability`]). Decisions taken here:
//!
//! - A Domain pool answers exactly one CNAME. When a level-1 pick holds several pools and the
//!   first is a Domain pool, only its CNAME is answered; Domain pools after an IP pool are
//!   skipped, so a CNAME is never mixed with A/AAAA records.
//! - Fail-open keeps known health: a pool failing open that still has available addresses
//!   (too few for its judgement) answers them by its own policy, as if it were available;
//!   only a pool with none answers every eligible address (a Domain pool: the eligible one
//!   with the lowest order).
//! - `Sequential`, `Preemptive`: the available member with the lowest order. `NonPreemptive`:
//!   the member the operator published as active while it is available in this snapshot,
//!   else the lowest order available.
//! - `SourceNearest` answers all matching members, in member order.
//! - A name with a CNAME access domain answers that CNAME for every type except A/AAAA when an
//!   access domain of that type exists at the same name. `ANY` (RFC 8482) gets one RRset: the
//!   A, AAAA or CNAME access domain's answer, in that order, or the SOA at an apex, or the
//!   name's first static record set.
//! - Static record sets (a zone's `GtmZone` records and its name servers' glue) are answered as
//!   they are; the contract guarantees no access domain of their type (nor a CNAME one) shares
//!   their name. NS answers carry the glue in the additional section, MX and SRV answers the
//!   static addresses of their targets inside the served zones (RFC 1035 section 3.3.9, RFC
//!   2782).

mod compile;
mod level;
mod overlay;
mod sticky;
#[cfg(test)]
pub(crate) mod tests;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use gtm_crds::RecordType as DomainType;
use gtm_crds::availability::MemberView;
use gtm_crds::common::LbPolicy;
use gtm_crds::config::ActiveSelections;
use gtm_crds::pool::HealthState;
use hickory_server::proto::rr::{LowerName, RData, Record, RecordType};
use rand::Rng;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

pub use compile::CompileError;
use level::Level;

use crate::record_type::{ByType, of_qtype};
use crate::shared_pools::ServedConfig;
use crate::sources::Client;
use crate::zone::Zone;

/// A config and a health snapshot compiled for answering: the config's part ([`Base`], shared
/// by every snapshot of one config) under the health's part (the overlay: verdicts, and what
/// they decide per pool and per domain). A health change rebuilds only the pools and domains
/// whose verdicts or active members changed, see [`Compiled::with_health`].
#[derive(Debug)]
pub struct Compiled {
    base: Arc<Base>,
    health_generation: u64,
    /// The verdict of every task, indexed like [`Base::tasks`].
    verdicts: Vec<HealthState>,
    /// The active members the health payload published.
    active: ActiveSelections,
    /// Per pool (indexed like the config's pools): its plan under these verdicts.
    pools: Vec<Arc<PoolPlan>>,
    /// Per pool: how the domains see it under these verdicts (order 0).
    views: Vec<MemberView>,
    /// Per access domain (indexed like [`Base::domains`]): its pick under these verdicts.
    domain_levels: Vec<Arc<DomainLevel>>,
}

/// What a config alone decides: names, zones, records, and the indexes a health change needs
/// to find what it touches.
#[derive(Debug)]
struct Base {
    /// The config compiled, kept to recompile the pools and domains a health change touches.
    config: Arc<ServedConfig>,
    zones: Vec<Zone>,
    /// Looked up once per query: a fast hash (the keys are our own names, not an attacker's
    /// choice of keys; a query only looks up).
    names: FxHashMap<LowerName, NameEntry>,
    domains: Vec<DomainPlan>,
    statics: Vec<StaticSet>,
    rotations: Rotations,
    /// Every task id of the config's addresses with its number (its position in the config's
    /// [`gtm_crds::config::TaskList`]), sorted by id: the order in which the operator lists
    /// verdicts by id, so that reading them is a merge. Shared by the compiles of configs
    /// with the same task list.
    tasks: Arc<[(Box<str>, u32)]>,
    /// The digest of the config's task list: numbered verdicts apply only when theirs is this.
    task_list: String,
    /// Per task: the pools with an address that has it.
    task_pools: Adjacency,
    /// Per pool: the domains that have it as a member.
    pool_domains: Adjacency,
}

/// Lists of indices per index, in two flat vectors (at 100 000 tasks, one vector per task
/// would cost an allocation each).
#[derive(Debug)]
struct Adjacency {
    starts: Vec<u32>,
    targets: Vec<u32>,
}

impl Adjacency {
    /// For `n` sources, the targets of each of the `(source, target)` pairs, deduplicated.
    fn new(n: usize, mut pairs: Vec<(u32, u32)>) -> Self {
        pairs.sort_unstable();
        pairs.dedup();
        let mut starts = Vec::with_capacity(n + 1);
        let mut next = 0;
        for source in 0..n {
            starts.push(next as u32);
            while next < pairs.len() && pairs[next].0 as usize == source {
                next += 1;
            }
        }
        starts.push(next as u32);
        Self {
            starts,
            targets: pairs.into_iter().map(|(_, t)| t).collect(),
        }
    }

    /// The targets of `source`.
    fn of(&self, source: usize) -> &[u32] {
        &self.targets[self.starts[source] as usize..self.starts[source + 1] as usize]
    }
}

/// The `RoundRobin` position of every level, by level (`domain:<id>`, `pool:<id>`): a compile
/// takes the positions of the one before, so that a reload (a health change, an edit) does
/// not restart every rotation from the first member and skew the spread towards it.
#[derive(Debug, Default)]
struct Rotations(FxHashMap<String, Arc<AtomicUsize>>);

impl Rotations {
    /// The position of level `key`: the previous compile's, or a new one at 0. Every key
    /// asked for is kept in `self`, the others are left behind.
    fn take(&mut self, previous: Option<&Rotations>, key: String) -> Arc<AtomicUsize> {
        let position = previous
            .and_then(|p| p.0.get(&key).cloned())
            .unwrap_or_default();
        self.0.insert(key, position.clone());
        position
    }
}

/// What exists at one name: the access domains by record type (indices into `domains`) and
/// the static record sets (indices into `statics`). A name with neither is the apex or an
/// empty non-terminal.
#[derive(Debug, Default)]
struct NameEntry {
    domains: ByType<Option<usize>>,
    statics: Vec<(RecordType, usize)>,
    /// The served zone the name lies in (index into `zones`), found once at compile time.
    zone: Option<usize>,
}

/// One static record set, ready to answer.
#[derive(Debug)]
struct StaticSet {
    records: Vec<Record>,
    /// The additional section of its answers: the static addresses of its MX and SRV targets.
    additionals: Vec<Record>,
}

impl NameEntry {
    /// The static record set of type `t`.
    fn static_set(&self, t: RecordType) -> Option<usize> {
        self.statics.iter().find(|(s, _)| *s == t).map(|(_, i)| *i)
    }

    /// The first access domain at the name, in the order A, AAAA, CNAME.
    fn any_domain(&self) -> Option<usize> {
        self.domains.iter().find_map(|(_, d)| *d)
    }

    /// The access domain of type `t`.
    fn domain(&self, t: DomainType) -> Option<usize> {
        *self.domains.get(t)
    }
}

/// Whether an access domain of type `t` answers addresses: a CNAME access domain at the same
/// name stands in when there is none of that type, and a CNAME query gets its answer when
/// that answer is a CNAME (a Domain pool).
fn answers_addresses(t: DomainType) -> bool {
    match t {
        DomainType::A | DomainType::AAAA => true,
        DomainType::CNAME => false,
    }
}

/// What the config decides about an access domain.
#[derive(Debug)]
struct DomainPlan {
    name: String,
    /// The pool-level policy (the level's, kept for the query log).
    policy: LbPolicy,
    members: Vec<MemberPlan>,
    /// The domain's `maxAnswers`, or [`gtm_crds::config::DEFAULT_MAX_ANSWERS`].
    max_answers: usize,
}

/// What the verdicts decide about an access domain: which pools may answer, and how.
#[derive(Debug)]
struct DomainLevel {
    choice: DomainChoice,
    level: Level,
}

#[derive(Debug)]
enum DomainChoice {
    /// The level picks among the available pools.
    Available,
    /// No pool is available; this member answers all its eligible addresses.
    FailOpen(usize),
    /// Nothing to answer.
    Nothing,
}

/// A pool as a member of one domain: the pool, and one record per address with the domain's
/// name and TTL (shared with the compile before when they are the same).
#[derive(Debug)]
struct MemberPlan {
    pool: usize,
    records: Arc<[Record]>,
}

#[derive(Debug)]
struct PoolPlan {
    /// A Domain pool: answers one CNAME.
    alias: bool,
    level: Level,
    /// No address is available: answer the eligible ones.
    fail_open: bool,
    eligible: Vec<usize>,
    /// The eligible address a Domain pool answers when failing open.
    alias_fallback: Option<usize>,
}

/// The response code of an [`Answer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rcode {
    /// The name exists (possibly without data of the type asked: NODATA).
    NoError,
    /// The name does not exist in a served zone.
    NxDomain,
    /// The name is outside every served zone.
    Refused,
}

/// The index of the served zone `name` lies in (the longest match).
fn zone_index(zones: &[Zone], name: &LowerName) -> Option<usize> {
    zones
        .iter()
        .enumerate()
        .filter(|(_, z)| z.name.zone_of(name))
        .max_by_key(|(_, z)| z.name.num_labels())
        .map(|(i, _)| i)
}

/// Why an access domain's answer leads with the pool it does: the policy decision the query
/// log names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Reason {
    /// `RoundRobin`: every available pool, in the rotation's order.
    Rotation,
    /// `Sequential`: the pool of the lowest order.
    Preferred,
    /// `Sequential`: a pool of lower order is not answering (down, disabled, or recovered but
    /// not yet returned to under `NonPreemptive`).
    FailedOver,
    /// `Weighted` (or `Sticky` for a client without an address): drawn by weight.
    Weighted,
    /// `SourceNearest`: the client's network or location matched the pool's sources.
    SourceMatch,
    /// `SourceNearest`: nothing matched the client; the pools marked `default`.
    SourceDefault,
    /// `SourceNearest`: nothing matched and no pool is marked `default`: all pools.
    SourceFallback,
    /// `Sticky`: the consistent hash of the client's network.
    Sticky,
    /// `Latency`: the pool the client's probe location measures fastest (or keeps, within
    /// the margins).
    Latency,
    /// `Latency`: no probe location maps the client, or its location ranks no available
    /// pool (it has not judged them yet): the pools' order, as `Sequential`.
    LatencyFallback,
    /// No pool is available: the domain fails open to its lowest-order non-empty pool.
    FailOpen,
    /// No pool is available and the domain answers none (`whenAllUnavailable: NoAnswer`).
    Unavailable,
}

/// The policy decision behind an access domain's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The domain's pool-level policy.
    pub policy: LbPolicy,
    /// Why the answer holds the pools it does.
    pub reason: Reason,
    /// The pool leading the answer (index for [`Compiled::pool_id`]); `None` when no pool
    /// answered.
    pub pool: Option<usize>,
    /// The leading pool has no available address and answered all its eligible ones.
    pub pool_fail_open: bool,
}

/// The records of an answer section.
pub type AnswerRecords<'c> = SmallVec<[&'c Record; 4]>;

/// The answer to one query.
#[derive(Debug)]
pub struct Answer<'c> {
    /// Response code.
    pub rcode: Rcode,
    /// The served zone the name lies in (`None` when refused).
    pub zone: Option<&'c Zone>,
    /// The answer section (inline up to four records: no allocation per query).
    pub records: AnswerRecords<'c>,
    /// The additional section: glue of NS answers, addresses of MX and SRV targets.
    pub additionals: &'c [Record],
    /// An access domain at the queried name (index for [`Compiled::domain_names`]).
    pub domain: Option<usize>,
    /// ECS scope prefix length: how many leading bits of the client address the answer
    /// depended on (0: none).
    pub ecs_scope: u8,
    /// The policy decision, when an access domain answered.
    pub decision: Option<Decision>,
}

impl Answer<'_> {
    /// NXDOMAIN or NODATA: the SOA belongs in the authority section.
    pub fn is_negative(&self) -> bool {
        self.rcode == Rcode::NxDomain || (self.rcode == Rcode::NoError && self.records.is_empty())
    }
}

impl Compiled {
    /// The config generation compiled.
    pub fn generation(&self) -> u64 {
        self.base.config.generation
    }

    /// The config compiled: the next config shares its unchanged pools
    /// ([`crate::shared_pools::parse`]).
    pub fn config(&self) -> &ServedConfig {
        &self.base.config
    }

    /// The health snapshot generation compiled.
    pub fn health_generation(&self) -> u64 {
        self.health_generation
    }

    /// The digest of the config's task list ([`gtm_crds::config::TaskList::digest`]): health
    /// payloads numbered by it are read by number.
    pub fn task_list(&self) -> &str {
        &self.base.task_list
    }

    /// The served zones.
    pub fn zones(&self) -> &[Zone] {
        &self.base.zones
    }

    /// The access domain names, indexed like [`Answer::domain`].
    pub fn domain_names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.base.domains.iter().map(|d| d.name.as_str())
    }

    /// The name of access domain `index` (as in [`Answer::domain`]).
    pub fn domain_name(&self, index: usize) -> Option<&str> {
        self.base.domains.get(index).map(|d| d.name.as_str())
    }

    /// The id of pool `index` (as in [`Decision::pool`]).
    pub fn pool_id(&self, index: usize) -> Option<&str> {
        self.base.config.pools.get(index).map(|p| p.id.as_str())
    }

    /// The types of the RRsets at `name` (the NSEC type bitmap of a NODATA proof): its
    /// access domains', its static sets', and at an apex SOA, NS and, in a signed zone,
    /// DNSKEY. Empty for a name that does not exist or an empty non-terminal.
    pub fn types_at(&self, name: &LowerName) -> SmallVec<[RecordType; 8]> {
        let mut types = SmallVec::new();
        if let Some(entry) = self.base.names.get(name) {
            types.extend(
                entry
                    .domains
                    .iter()
                    .filter(|(_, d)| d.is_some())
                    .map(|(t, _)| crate::record_type::qtype(t)),
            );
            types.extend(entry.statics.iter().map(|(t, _)| *t));
        }
        if let Some(zone) = self.zone_of(name).filter(|z| z.name == *name) {
            types.extend([RecordType::SOA, RecordType::NS]);
            types.extend(zone.dnssec.as_ref().map(|_| RecordType::DNSKEY));
        }
        types
    }

    /// The served zone `name` lies in (the longest match).
    fn zone_of(&self, name: &LowerName) -> Option<&Zone> {
        zone_index(&self.base.zones, name).map(|i| &self.base.zones[i])
    }

    /// Answers a query for `qname`/`qtype` from `client` (`None`: location unknown, e.g. ECS
    /// source prefix 0). `rng` drives `Weighted` draws.
    pub fn answer<'c>(
        &'c self,
        qname: &LowerName,
        qtype: RecordType,
        client: Option<&Client<'_>>,
        rng: &mut impl Rng,
    ) -> Answer<'c> {
        let entry = self.base.names.get(qname);
        let zone = match entry.and_then(|e| e.zone) {
            Some(i) => Some(&self.base.zones[i]),
            None => self.zone_of(qname),
        };
        let Some(zone) = zone else {
            return Answer {
                rcode: Rcode::Refused,
                zone: None,
                records: SmallVec::new(),
                additionals: &[],
                domain: None,
                ecs_scope: 0,
                decision: None,
            };
        };
        let Some(entry) = entry else {
            return Answer {
                rcode: Rcode::NxDomain,
                zone: Some(zone),
                records: SmallVec::new(),
                additionals: &[],
                domain: None,
                ecs_scope: 0,
                decision: None,
            };
        };
        let mut answer = Answer {
            rcode: Rcode::NoError,
            zone: Some(zone),
            records: SmallVec::new(),
            additionals: &[],
            domain: entry.any_domain(),
            ecs_scope: 0,
            decision: None,
        };
        let apex = zone.name == *qname;
        let domain = match qtype {
            RecordType::SOA if apex => {
                answer.records.push(&zone.soa);
                None
            }
            RecordType::NS if apex => {
                answer.records.extend(&zone.ns);
                answer.additionals = &zone.glue;
                None
            }
            RecordType::DNSKEY if apex && zone.dnssec.is_some() => {
                answer
                    .records
                    .extend(zone.dnssec.as_ref().map(|k| k.dnskey()));
                None
            }
            RecordType::ANY => {
                let d = entry.any_domain();
                if d.is_none() && apex {
                    answer.records.push(&zone.soa);
                } else if d.is_none()
                    && let Some((_, s)) = entry.statics.first()
                {
                    answer.records.extend(&self.base.statics[*s].records);
                }
                d
            }
            _ => match entry.static_set(qtype) {
                Some(s) => {
                    let set = &self.base.statics[s];
                    answer.records.extend(&set.records);
                    answer.additionals = &set.additionals;
                    None
                }
                None => {
                    let cname = entry.domain(DomainType::CNAME);
                    match of_qtype(qtype) {
                        Some(t @ (DomainType::A | DomainType::AAAA)) => entry.domain(t).or(cname),
                        Some(DomainType::CNAME) => {
                            if cname.is_none() {
                                self.alias_of_address_domain(entry, client, rng, &mut answer);
                            }
                            cname
                        }
                        None => cname,
                    }
                }
            },
        };
        if let Some(d) = domain {
            let (scope, decision) = self.answer_domain(d, client, rng, &mut answer.records);
            answer.ecs_scope = scope;
            answer.decision = Some(decision);
        }
        answer
    }

    /// A CNAME query at a name with only A/AAAA access domains: their answer when it is a
    /// CNAME (a Domain pool), else nothing.
    fn alias_of_address_domain<'c>(
        &'c self,
        entry: &NameEntry,
        client: Option<&Client<'_>>,
        rng: &mut impl Rng,
        answer: &mut Answer<'c>,
    ) {
        let address_domains = entry
            .domains
            .iter()
            .filter(|(t, _)| answers_addresses(*t))
            .filter_map(|(_, d)| *d);
        for d in address_domains {
            let mut records = SmallVec::new();
            let (scope, decision) = self.answer_domain(d, client, rng, &mut records);
            if records
                .first()
                .is_some_and(|r| matches!(r.data, RData::CNAME(_)))
            {
                answer.records = records;
                answer.ecs_scope = scope;
                answer.decision = Some(decision);
                return;
            }
        }
    }

    /// Appends the answer of access domain `index` to `out`; returns the ECS scope it
    /// depended on and the policy decision.
    fn answer_domain<'c>(
        &'c self,
        index: usize,
        client: Option<&Client<'_>>,
        rng: &mut impl Rng,
        out: &mut AnswerRecords<'c>,
    ) -> (u8, Decision) {
        let d = &self.base.domains[index];
        let pick = &*self.domain_levels[index];
        let mut scope = 0;
        let mut decision = Decision {
            policy: d.policy,
            reason: Reason::Unavailable,
            pool: None,
            pool_fail_open: false,
        };
        let lead = |member: &MemberPlan, decision: &mut Decision| {
            if decision.pool.is_none() {
                let pool = &self.pools[member.pool];
                decision.pool = Some(member.pool);
                decision.pool_fail_open = pool.fail_open || pool.level.is_empty();
            }
        };
        match pick.choice {
            DomainChoice::Nothing => {}
            DomainChoice::FailOpen(m) => {
                decision.reason = Reason::FailOpen;
                lead(&d.members[m], &mut decision);
                scope = self.answer_pool(&d.members[m], client, rng, out);
            }
            DomainChoice::Available => {
                let (selection, s, reason) = pick.level.select(client, rng);
                scope = s;
                decision.reason = reason;
                for (i, m) in selection.iter().enumerate() {
                    let member = &d.members[m];
                    if self.pools[member.pool].alias && i > 0 {
                        continue;
                    }
                    lead(member, &mut decision);
                    scope = scope.max(self.answer_pool(member, client, rng, out));
                    if self.pools[member.pool].alias {
                        break;
                    }
                }
            }
        }
        out.truncate(d.max_answers);
        (scope, decision)
    }

    /// A picked pool's addresses by its policy; returns the ECS scope the pick depended on.
    fn answer_pool<'c>(
        &'c self,
        member: &'c MemberPlan,
        client: Option<&Client<'_>>,
        rng: &mut impl Rng,
        out: &mut AnswerRecords<'c>,
    ) -> u8 {
        let pool = &self.pools[member.pool];
        if pool.fail_open || pool.level.is_empty() {
            self.answer_eligible(member, out);
            return 0;
        }
        let (selection, scope, _) = pool.level.select(client, rng);
        let picked = selection.iter().map(|a| &member.records[a]);
        if pool.alias {
            out.extend(picked.take(1));
        } else {
            out.extend(picked);
        }
        scope
    }

    /// A pool without an available address: every eligible address (for a Domain pool, the
    /// one with the lowest order).
    fn answer_eligible<'c>(&'c self, member: &'c MemberPlan, out: &mut AnswerRecords<'c>) {
        let pool = &self.pools[member.pool];
        if pool.alias {
            out.extend(pool.alias_fallback.map(|a| &member.records[a]));
        } else {
            out.extend(pool.eligible.iter().map(|&a| &member.records[a]));
        }
    }
}
