//! The transition history an `AddressPool` or `GtmAccessDomain` keeps in its status, so that
//! `kubectl describe` still tells what happened after the Events about it expired (an hour by
//! default).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most entries one object's history keeps; older ones are dropped. Twenty transitions cover a
/// night of occasional failovers; a flapping address fills them sooner, and its Events and the
/// metrics tell the rest.
pub const MAX_HISTORY: usize = 20;

/// One transition of an object: what moved, from what to what, and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// When the operator saw the transition.
    pub time: Time,
    /// What happened. Access domains: `Failover` (answering from other than the first-choice
    /// pools), `Failback` (first choice again), `FailOpen` (no pool available: answering the
    /// available addresses of the lowest-order pool that has any, else that pool whole), `NoAnswer` (no pool available, `whenAllUnavailable:
    /// NoAnswer`). Pools: `PoolUnavailable`, `PoolAvailable`, `AddressDown`, `AddressUp`,
    /// `ActiveAddressChanged` (the `Sequential` policy answers another address).
    #[schemars(length(max = 64))]
    pub reason: String,
    /// The state before: the pools answering (domains), `Available` or `Unavailable` (pools
    /// and addresses), the active address (`ActiveAddressChanged`).
    #[schemars(length(max = 1024))]
    pub from: String,
    /// The state after, in the same terms as `from`.
    #[schemars(length(max = 1024))]
    pub to: String,
    /// Details for people: which addresses, and why they failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 1024))]
    pub message: String,
}
