//! `AddressPool`: a set of endpoints of one type, with the address-level policy and health rules.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    AFFINITY_MESSAGE, AFFINITY_RULE, Affinity, CheckTask, HealthJudgement, LbPolicy,
    NOT_LATENCY_MESSAGE, NOT_LATENCY_RULE, PROBE_TARGET_MESSAGE, PROBE_TARGET_RULE, RequestSources,
    SEQUENTIAL_MODE_MESSAGE, SEQUENTIAL_MODE_RULE, SequentialMode, default_order, default_true,
    default_weight,
};
use crate::history::HistoryEntry;

/// Most addresses one pool may hold (GTM 3.0 allows 50).
pub const MAX_ADDRESSES_PER_POOL: usize = 256;

/// A pool of service endpoints of one type. Access domains reference pools; the pool's own
/// policy picks which of its available addresses answer.
// `kube` printer columns repeat `type_ = "string"` by design.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "gtm.kubegtm.io",
    version = "v1alpha1",
    kind = "AddressPool",
    namespaced,
    status = "AddressPoolStatus",
    derive = "PartialEq",
    shortname = "gap",
    shortname = "gtmpool",
    category = "gtm",
    doc = "A pool of endpoints (IPv4, IPv6 or domain names) with its address-level policy and health rules.",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Policy", type_ = "string", json_path = ".spec.policy"),
    printcolumn(
        name = "Available",
        type_ = "integer",
        json_path = ".status.availableAddresses",
        description = "addresses currently answerable"
    ),
    printcolumn(
        name = "Total",
        type_ = "integer",
        json_path = ".status.totalAddresses",
        description = "enabled addresses"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type=='Available')].status"
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
    validation = kube::core::Rule::new(NOT_LATENCY_RULE).message(NOT_LATENCY_MESSAGE),
    validation = kube::core::Rule::new("self.type != 'IPv4' || self.addresses.all(a, isIP(a.value) && ip(a.value).family() == 4)").message("every address of an IPv4 pool must be an IPv4 address"),
    validation = kube::core::Rule::new("self.type != 'IPv6' || self.addresses.all(a, isIP(a.value) && ip(a.value).family() == 6)").message("every address of an IPv6 pool must be an IPv6 address"),
    validation = kube::core::Rule::new(r"self.type != 'Domain' || self.addresses.all(a, !isIP(a.value) && a.value.matches('^([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\\.)*[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\\.?$'))").message("every address of a Domain pool must be a host name"),
    validation = kube::core::Rule::new("self.type == 'Domain' || self.addresses.all(a, !isIP(a.value) || ip(a.value).isGlobalUnicast() || ip(a.value).isLoopback() || ip(a.value).isLinkLocalUnicast())").message("every address must be a unicast address: not unspecified (0.0.0.0, ::), broadcast (255.255.255.255) or multicast (224.0.0.0/4, ff00::/8)"),
    validation = kube::core::Rule::new("!has(self.minAvailable) || (has(self.endpointSources) && size(self.endpointSources) > 0) || self.minAvailable <= size(self.addresses)").message("minAvailable cannot exceed the number of addresses"),
    validation = kube::core::Rule::new("size(self.addresses) > 0 || (has(self.endpointSources) && size(self.endpointSources) > 0)").message("a pool needs addresses or endpointSources")
)]
#[serde(rename_all = "camelCase")]
pub struct AddressPoolSpec {
    /// What the addresses are: `IPv4` or `IPv6` addresses, or `Domain` names (answered as a
    /// CNAME). A records take IPv4 or Domain pools, AAAA records IPv6 or Domain pools, CNAME
    /// records Domain pools only.
    #[serde(rename = "type")]
    pub pool_type: PoolType,
    /// A disabled pool is never answered, whatever its health.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// How the pool picks among its available addresses.
    #[serde(default)]
    pub policy: LbPolicy,
    /// Recovery behaviour of the `Sequential` policy (default `Preemptive`); only with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential_mode: Option<SequentialMode>,
    /// How the `Sticky` policy groups clients (default /24 for IPv4, /56 for IPv6); only with
    /// it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// How many enabled addresses must be available for the pool to be available.
    #[serde(default)]
    pub health_judgement: HealthJudgement,
    /// Also require at least this many available addresses for the pool to be available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 256))]
    pub min_available: Option<u16>,
    /// Health checks for every address that lists none of its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub health_checks: Vec<CheckTask>,
    /// The endpoints, each listed once (at most 256). May be empty when `endpointSources`
    /// gives the addresses.
    #[serde(default)]
    #[schemars(length(max = 256))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["value".into()]))]
    pub addresses: Vec<PoolAddress>,
    /// Kubernetes objects whose current addresses join `addresses` and follow the objects'
    /// status as it changes: a `Service` of type LoadBalancer or an `Ingress`
    /// (`status.loadBalancer.ingress`), or a Gateway API `Gateway` (`status.addresses`), in the
    /// control cluster (the operator watches the kinds the chart enables,
    /// `operator.endpointDiscovery.kinds`) or in an edge cluster (`cluster`: its endpoint agent
    /// publishes them). An IPv4 or IPv6 pool takes the object's IPs of that family, a Domain
    /// pool its host names. The pool's `healthChecks` apply to discovered addresses; an address
    /// also listed in `addresses`, or by an earlier source, keeps that entry. Pool status shows
    /// each address's source, and the `EndpointsResolved` condition whether every source has
    /// addresses (a missing object, or one without an address yet, is reported there and in an
    /// event; its pool keeps serving the rest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub endpoint_sources: Vec<EndpointSource>,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub remark: Option<String>,
}

/// The kind of endpoints in a pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum PoolType {
    /// IPv4 addresses, answered as A records.
    IPv4,
    /// IPv6 addresses, answered as AAAA records.
    IPv6,
    /// Host names, answered as one CNAME record.
    Domain,
}

/// One endpoint of a pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolAddress {
    /// The endpoint: an IPv4 address, an IPv6 address or a host name, as the pool type says.
    #[schemars(length(min = 1, max = 253))]
    pub value: String,
    /// A disabled address is never answered and does not count towards the pool's judgement.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// `Auto` follows health checks; `AlwaysOnline` is answered whatever they say;
    /// `AlwaysOffline` is never answered.
    #[serde(default)]
    pub mode: AddressMode,
    /// Relative weight for the `Weighted` policy, from 1 to 100.
    #[serde(default = "default_weight")]
    #[schemars(range(min = 1, max = 100))]
    pub weight: u8,
    /// Priority for the `Sequential` policy: the lowest order answers first (ties by list
    /// position).
    #[serde(default = "default_order")]
    #[schemars(range(min = 1, max = 1000))]
    pub order: u16,
    /// Clients this address serves under the `SourceNearest` policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_sources: Option<RequestSources>,
    /// Health checks of this address; when set (even empty) they replace the pool's
    /// `healthChecks`. An address with no checks counts as healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub health_checks: Option<Vec<CheckTask>>,
    /// How many of this address's health checks must pass for it to count as healthy.
    #[serde(default)]
    pub health_judgement: HealthJudgement,
    /// Probe this IP address or host name instead of `value` in every health check of this
    /// address (a gateway in front of it, its inside address behind a NAT); answers still give
    /// `value`. A check's own `target` wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = kube::core::Rule::new(PROBE_TARGET_RULE).message(PROBE_TARGET_MESSAGE))]
    pub probe_target: Option<String>,
    /// Free text for people, e.g. the region or data centre.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub remark: Option<String>,
}

/// A Kubernetes object whose addresses join a pool.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSource {
    /// The object's kind: `Service` (type LoadBalancer), `Ingress`, or `Gateway`
    /// (`gateway.networking.k8s.io`).
    pub kind: EndpointKind,
    /// The object's name.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// The object's namespace; default the pool's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: Option<String>,
    /// The cluster the object lives in: unset means the control cluster; a name means the edge
    /// cluster whose endpoint agent publishes under that name (`gtm-operator endpoint-agent
    /// --cluster <name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub cluster: Option<String>,
    /// Weight of every address of this source for the `Weighted` policy, from 1 to 100.
    #[serde(default = "default_weight")]
    #[schemars(range(min = 1, max = 100))]
    pub weight: u8,
    /// Order of every address of this source for the `Sequential` policy.
    #[serde(default = "default_order")]
    #[schemars(range(min = 1, max = 1000))]
    pub order: u16,
    /// Mode of every address of this source (`Auto`, `AlwaysOnline`, `AlwaysOffline`).
    #[serde(default)]
    pub mode: AddressMode,
}

/// The kinds an endpoint source may name.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum EndpointKind {
    /// A `Service` of type LoadBalancer: `status.loadBalancer.ingress[].ip` and `.hostname`.
    Service,
    /// An `Ingress` (`networking.k8s.io/v1`): `status.loadBalancer.ingress[].ip` and
    /// `.hostname`.
    Ingress,
    /// A Gateway API `Gateway` (`gateway.networking.k8s.io/v1`): `status.addresses[].value`
    /// of type `IPAddress` or `Hostname`.
    Gateway,
}

impl EndpointKind {
    /// Every kind.
    pub const ALL: [EndpointKind; 3] = [Self::Service, Self::Ingress, Self::Gateway];

    /// The kind's name, as in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Service => "Service",
            Self::Ingress => "Ingress",
            Self::Gateway => "Gateway",
        }
    }
}

impl std::fmt::Display for EndpointKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EndpointKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("{s:?} is not Service, Ingress or Gateway"))
    }
}

/// Whether health checks decide an address's availability.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum AddressMode {
    /// Available when its health checks pass its judgement.
    #[default]
    Auto,
    /// Always available; checks still run and are reported, but only alert.
    AlwaysOnline,
    /// Never available; checks still run and are reported.
    AlwaysOffline,
}

/// Observed state of an `AddressPool`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddressPoolStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted` (valid and published), `Available` (meets its judgement) and `Degraded`
    /// (some enabled addresses unavailable).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Enabled addresses that are currently available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_addresses: Option<u32>,
    /// Enabled addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_addresses: Option<u32>,
    /// Under the `Sequential` policy: the address currently answering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_address: Option<String>,
    /// Health of each address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["value".into()]))]
    pub addresses: Vec<AddressStatus>,
    /// The last transitions of the pool and its addresses, newest first (at most 20): the
    /// pool becoming unavailable or available again, addresses going down or up, the
    /// `Sequential` policy's active address changing. Kept after the Events expire.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = crate::history::MAX_HISTORY))]
    pub history: Vec<HistoryEntry>,
}

/// Observed health of one address.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddressStatus {
    /// The address, as in the spec.
    pub value: String,
    /// Health verdict over its checks (`Unknown` until the first verdict).
    pub state: HealthState,
    /// Whether DNS answers may include the address (health, mode and enabled together).
    pub available: bool,
    /// Where a discovered address comes from (`Service apps/web`, `Gateway apps/gw in cluster
    /// eu`); unset for an address listed in `addresses`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// When `state` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
    /// Each health-check task of the address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<TaskStatus>,
}

/// Observed state of one health-check task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatus {
    /// The `HealthCheckTemplate` probed.
    pub template: String,
    /// The port probed, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The IP address or host name probed, when it is not the address itself (`probeTarget`
    /// or the check's `target`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Verdict after the template's thresholds.
    pub state: HealthState,
    /// When `state` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
    /// When the last probe finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe_time: Option<Time>,
    /// Duration of the last successful probe, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_millis: Option<u32>,
    /// Why the last failed probe failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// How many fresh probe locations see the task up (the vote of `failureRatePercent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locations_up: Option<u32>,
    /// How many fresh probe locations see the task down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locations_down: Option<u32>,
}

/// Health verdict of a task or an address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum HealthState {
    /// No verdict yet; counts as healthy so that a new or restarted checker never blackholes.
    #[default]
    Unknown,
    /// Healthy.
    Up,
    /// Failing.
    Down,
}
