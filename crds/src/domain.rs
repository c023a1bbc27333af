//! `GtmAccessDomain`: one (name, record type) the DNS pods answer, and how it picks pools.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    AFFINITY_MESSAGE, AFFINITY_RULE, Affinity, HOSTNAME_PATTERN, LATENCY_MESSAGE, LATENCY_RULE,
    LbPolicy, RequestSources, SEQUENTIAL_MODE_MESSAGE, SEQUENTIAL_MODE_RULE, SequentialMode,
    default_order, default_true, default_weight,
};
use crate::history::HistoryEntry;
use crate::latency::LatencySteering;

/// Most pools one access domain may reference (GTM 3.0 allows 50).
pub const MAX_POOLS_PER_DOMAIN: usize = 64;

/// An access domain: a DNS name and record type that the GTM answers, and the pools that
/// serve it. Point your service name at it with a CNAME, or serve the name itself.
// `kube` printer columns repeat `type_ = "string"` by design.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "gtm.kubegtm.io",
    version = "v1alpha1",
    kind = "GtmAccessDomain",
    namespaced,
    status = "GtmAccessDomainStatus",
    derive = "PartialEq",
    shortname = "gad",
    shortname = "gtmdomain",
    category = "gtm",
    doc = "A DNS name and record type answered by kube-gtm, with the pools that serve it and the policy that picks them.",
    printcolumn(name = "Domain", type_ = "string", json_path = ".spec.domain"),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.recordType"),
    printcolumn(name = "Policy", type_ = "string", json_path = ".spec.policy"),
    printcolumn(
        name = "Active",
        type_ = "string",
        json_path = ".status.activePools",
        description = "pools currently answering"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type=='Ready')].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = kube::core::Rule::new(SEQUENTIAL_MODE_RULE).message(SEQUENTIAL_MODE_MESSAGE),
    validation = kube::core::Rule::new(AFFINITY_RULE).message(AFFINITY_MESSAGE),
    validation = kube::core::Rule::new(LATENCY_RULE).message(LATENCY_MESSAGE)
)]
#[serde(rename_all = "camelCase")]
pub struct GtmAccessDomainSpec {
    /// The fully qualified name answered, e.g. `app.gtm.example.com`; case does not matter and
    /// a trailing dot is optional. It must lie inside a zone the DNS pods serve.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(
        validation = kube::core::Rule::new(NO_WILDCARD_RULE).message("wildcards are not supported: declare each name as its own access domain"),
        validation = kube::core::Rule::new(ASCII_RULE).message("internationalized names must be given in punycode (xn--...)"),
        validation = kube::core::Rule::new(host_name_rule()).message("must be a host name: letters, digits and hyphens in dot-separated labels of 1 to 63 characters, e.g. app.gtm.example.com")
    )]
    pub domain: String,
    /// The record type answered: `A`, `AAAA` or `CNAME`. The same name may have one A and one
    /// AAAA access domain.
    pub record_type: RecordType,
    /// Time to live of the answers, in seconds (1 to 86400). Short TTLs make failover reach
    /// clients sooner.
    #[serde(default = "default_ttl")]
    #[schemars(range(min = 1, max = 86400))]
    pub ttl: u32,
    /// A disabled access domain is not published: the name is not answered.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// How the domain picks among its available pools.
    #[serde(default = "default_domain_policy")]
    pub policy: LbPolicy,
    /// Recovery behaviour of the `Sequential` policy (default `Preemptive`); only with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential_mode: Option<SequentialMode>,
    /// How the `Sticky` policy groups clients (default /24 for IPv4, /56 for IPv6); only with
    /// it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Which probe locations stand for which clients, and the margins a faster pool must beat
    /// before a location switches to it; required with `policy: Latency`, and only with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencySteering>,
    /// The pools that serve this domain (at most 64), each listed once.
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["name".into()]))]
    pub pools: Vec<PoolRef>,
    /// Most records in one answer (1 to 64); 8 when unset, as Route 53 multivalue answers,
    /// which bounds the response size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    pub max_answers: Option<u8>,
    /// What to answer when no pool is available. `FailOpen` (the default) answers the
    /// lowest-order pool that still has available addresses with those, else the lowest-order
    /// non-empty pool with all its addresses, since an empty answer during an outage of the
    /// checker is worse; `NoAnswer` answers NODATA.
    #[serde(default)]
    pub when_all_unavailable: Fallback,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub remark: Option<String>,
}

/// The DNS record type of an access domain.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum RecordType {
    /// IPv4 addresses; served by IPv4 or Domain pools.
    A,
    /// IPv6 addresses; served by IPv6 or Domain pools.
    AAAA,
    /// A canonical name; served by Domain pools only.
    CNAME,
}

/// What an access domain answers when none of its pools is available.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Fallback {
    /// Answer all addresses of the lowest-order non-empty pool.
    #[default]
    FailOpen,
    /// Answer NODATA (no records).
    NoAnswer,
}

/// A pool serving an access domain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolRef {
    /// Name of an `AddressPool` in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Priority for the `Sequential` policy (and for fail-open): lowest first.
    #[serde(default = "default_order")]
    #[schemars(range(min = 1, max = 1000))]
    pub order: u16,
    /// Relative weight for the `Weighted` policy, from 1 to 100.
    #[serde(default = "default_weight")]
    #[schemars(range(min = 1, max = 100))]
    pub weight: u8,
    /// Clients this pool serves under the `SourceNearest` policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_sources: Option<RequestSources>,
}

/// Observed state of a `GtmAccessDomain`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GtmAccessDomainStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted` (valid, no conflict), `Ready` (published to the DNS pods) and `FailedOver`
    /// (answering from other than the first-choice pools).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The pools currently answering.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active_pools: Vec<String>,
    /// When the domain last failed over or back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failover_time: Option<Time>,
    /// The last transitions of what the domain answers, newest first (at most 20):
    /// failovers, failbacks, failing open. Kept after the Events expire.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = crate::history::MAX_HISTORY))]
    pub history: Vec<HistoryEntry>,
}

/// CEL: the name holds no `*`.
const NO_WILDCARD_RULE: &str = "!self.contains('*')";
/// CEL: the name is printable ASCII (internationalized names come as punycode).
const ASCII_RULE: &str = "self.matches('^[ -~]*$')";

/// CEL: the name is a host name ([`HOSTNAME_PATTERN`]); checked only when the two rules above
/// pass, so that each mistake gets one message.
fn host_name_rule() -> String {
    format!(
        "self.contains('*') || !self.matches('^[ -~]*$') || self.matches('{}')",
        HOSTNAME_PATTERN.replace('\\', "\\\\")
    )
}

fn default_ttl() -> u32 {
    30
}

fn default_domain_policy() -> LbPolicy {
    LbPolicy::Sequential
}
