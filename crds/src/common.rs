//! Types shared by the kinds: load-balancing policies, health judgements, request sources
//! and health-check tasks. Each one appears in the generated CRDs, so every doc comment here is
//! user-facing (`kubectl explain`).

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How one level of the resolution picks its members (pools at the domain level, addresses
/// inside a pool).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum LbPolicy {
    /// Every available member, in an order that rotates with each query.
    #[default]
    RoundRobin,
    /// The available member with the lowest `order`; see `sequentialMode` for recovery.
    Sequential,
    /// One member per query, drawn with probability proportional to its `weight`.
    Weighted,
    /// The members whose `requestSources` match the client (EDNS Client Subnet, else the
    /// resolver address); then members whose sources say `default: true`; then all members.
    SourceNearest,
    /// Session affinity: one member per query, chosen by a consistent hash of the client's
    /// network (EDNS Client Subnet, else the resolver address, cut to the `affinity` prefix
    /// lengths) weighted by `weight`. A network stays on its member across TTLs while the
    /// weights hold over many networks; when a member goes down only its networks move, and
    /// they come back when it recovers.
    Sticky,
    /// Latency steering, access domains only: each client gets the available pool with the
    /// lowest latency measured from the probe location its network maps to (see `latency`),
    /// switching only when another pool is faster by the margins.
    Latency,
}

/// How `Sticky` groups clients into networks that stay on one member; only with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Affinity {
    /// IPv4 clients sharing this many leading bits share a member (1 to 32, default 24).
    #[serde(default = "default_ipv4_affinity")]
    #[schemars(range(min = 1, max = 32))]
    pub ipv4_prefix_length: u8,
    /// IPv6 clients sharing this many leading bits share a member (1 to 128, default 56).
    #[serde(default = "default_ipv6_affinity")]
    #[schemars(range(min = 1, max = 128))]
    pub ipv6_prefix_length: u8,
}

impl Default for Affinity {
    fn default() -> Self {
        Self {
            ipv4_prefix_length: default_ipv4_affinity(),
            ipv6_prefix_length: default_ipv6_affinity(),
        }
    }
}

fn default_ipv4_affinity() -> u8 {
    24
}

fn default_ipv6_affinity() -> u8 {
    56
}

/// Recovery behaviour of a `Sequential` policy when a member with a lower `order` comes back
/// (default `Preemptive`); may only be set together with `policy: Sequential`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum SequentialMode {
    /// Return to the lowest-order available member as soon as it recovers.
    #[default]
    Preemptive,
    /// Stay on the member currently answering until it fails itself.
    NonPreemptive,
}

/// How many of a set of members must be healthy for the whole to count as healthy. For an
/// address the members are its health-check tasks; for a pool, its enabled addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum HealthJudgement {
    /// At least one.
    #[default]
    AnyOk,
    /// At least 30 percent.
    P30Ok,
    /// At least 50 percent.
    P50Ok,
    /// At least 70 percent.
    P70Ok,
    /// All of them.
    AllOk,
}

/// A continent, as two-letter code in MaxMind GeoIP databases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Continent {
    /// Africa.
    AF,
    /// Antarctica.
    AN,
    /// Asia.
    AS,
    /// Europe.
    EU,
    /// North America.
    NA,
    /// Oceania.
    OC,
    /// South America.
    SA,
}

impl Continent {
    /// The two-letter code, as MaxMind databases spell it.
    pub fn code(self) -> &'static str {
        match self {
            Self::AF => "AF",
            Self::AN => "AN",
            Self::AS => "AS",
            Self::EU => "EU",
            Self::NA => "NA",
            Self::OC => "OC",
            Self::SA => "SA",
        }
    }
}

/// Where a query comes from ("lines" in GTM). A query is matched on its EDNS Client Subnet when
/// it carries one, else on the address of the resolver that sent it. When several members
/// match, the most specific wins: CIDR (longest prefix) > ASN > subdivision > country >
/// continent > default. ASN, continent, country and subdivision need a MaxMind-format database
/// mounted into the DNS pods; without one they never match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestSources {
    /// IPv4 or IPv6 networks in CIDR notation, e.g. `203.0.113.0/24` or `2001:db8::/32`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    #[x_kube(
        validation = kube::core::Rule::new("self.all(c, isCIDR(c))").message("every entry must be a network in CIDR notation, e.g. 203.0.113.0/24")
    )]
    pub cidrs: Vec<Cidr>,
    /// Autonomous system numbers of the client network, e.g. `64500`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub asns: Vec<u32>,
    /// Continents, as two-letter codes: AF, AN, AS, EU, NA, OC, SA.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 7))]
    pub continents: Vec<Continent>,
    /// Countries, as ISO 3166-1 alpha-2 codes in upper case, e.g. `DE`, `JP`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub countries: Vec<CountryCode>,
    /// Country subdivisions, as ISO 3166-2 codes in upper case, e.g. `US-CA`, `CN-GD`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub subdivisions: Vec<SubdivisionCode>,
    /// Marks this member as a fallback: it serves clients that no other member's sources match.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
}

impl RequestSources {
    /// True when no source of any kind is given.
    pub fn is_empty(&self) -> bool {
        self.cidrs.is_empty()
            && self.asns.is_empty()
            && self.continents.is_empty()
            && self.countries.is_empty()
            && self.subdivisions.is_empty()
            && !self.default
    }
}

/// A network in CIDR notation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Cidr(#[schemars(length(min = 2, max = 43))] pub String);

/// An ISO 3166-1 alpha-2 country code.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct CountryCode(#[schemars(regex(pattern = r"^[A-Z]{2}$"))] pub String);

/// An ISO 3166-2 subdivision code.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct SubdivisionCode(#[schemars(regex(pattern = r"^[A-Z]{2}-[A-Z0-9]{1,3}$"))] pub String);

/// One health check of an address: a `HealthCheckTemplate` probed on a port.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckTask {
    /// Name of a `HealthCheckTemplate` in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    pub template: String,
    /// Port to probe. Required for TCP templates; HTTP defaults to 80 and HTTPS to 443; must be
    /// left out for ICMP templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,
    /// Probe this IP address or host name instead of the address (a gateway in front of it,
    /// its inside address behind a NAT); answers still give the address. Wins over the
    /// address's `probeTarget`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = kube::core::Rule::new(PROBE_TARGET_RULE).message(PROBE_TARGET_MESSAGE))]
    pub target: Option<String>,
}

/// CEL rule of a probe target: an IP address or a host name.
pub(crate) const PROBE_TARGET_RULE: &str = r"isIP(self) || self.matches('^([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\\.)*[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\\.?$')";
/// Message for [`PROBE_TARGET_RULE`].
pub(crate) const PROBE_TARGET_MESSAGE: &str = "a probe target must be an IP address or a host name";

/// CEL rule, shared by domains and pools: `sequentialMode` only makes sense with `Sequential`.
pub(crate) const SEQUENTIAL_MODE_RULE: &str =
    "!has(self.sequentialMode) || self.policy == 'Sequential'";
/// CEL rule, shared by domains and pools: `affinity` only makes sense with `Sticky`.
pub(crate) const AFFINITY_RULE: &str = "!has(self.affinity) || self.policy == 'Sticky'";
/// Message for [`AFFINITY_RULE`].
pub(crate) const AFFINITY_MESSAGE: &str = "affinity may only be set when policy is Sticky";
/// CEL rule of a domain: `latency` goes with `Latency`, and only with it.
pub(crate) const LATENCY_RULE: &str = "has(self.latency) == (self.policy == 'Latency')";
/// Message for [`LATENCY_RULE`].
pub(crate) const LATENCY_MESSAGE: &str =
    "policy Latency needs latency, and latency needs policy Latency";
/// CEL rule of a pool: latency steering picks pools, not addresses.
pub(crate) const NOT_LATENCY_RULE: &str = "self.policy != 'Latency'";
/// Message for [`NOT_LATENCY_RULE`].
pub(crate) const NOT_LATENCY_MESSAGE: &str =
    "Latency picks pools: it is a GtmAccessDomain policy, not an AddressPool one";
/// Message for [`SEQUENTIAL_MODE_RULE`].
pub(crate) const SEQUENTIAL_MODE_MESSAGE: &str =
    "sequentialMode may only be set when policy is Sequential";

/// A regular expression for a DNS host name (RFC 1123 labels, underscores allowed for service
/// names), optionally with a trailing dot.
pub const HOSTNAME_PATTERN: &str = r"^(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$";

pub(crate) fn default_true() -> bool {
    true
}

pub(crate) fn default_weight() -> u8 {
    1
}

pub(crate) fn default_order() -> u16 {
    1
}
