//! `HealthCheckTemplate`: how to probe an address (protocol, timing, thresholds, HTTP details).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A reusable health check. Addresses reference it together with a port; each (address,
/// template, port) is one health-check task, probed on its own schedule by the operator.
// `kube` printer columns repeat `type_ = "string"` by design.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "gtm.kubegtm.io",
    version = "v1alpha1",
    kind = "HealthCheckTemplate",
    namespaced,
    status = "HealthCheckTemplateStatus",
    derive = "PartialEq",
    shortname = "hct",
    shortname = "gtmcheck",
    category = "gtm",
    doc = "A reusable health check (protocol, interval, timeout, thresholds) that addresses reference with a port.",
    printcolumn(name = "Protocol", type_ = "string", json_path = ".spec.protocol"),
    printcolumn(
        name = "Interval",
        type_ = "integer",
        json_path = ".spec.intervalSeconds",
        description = "seconds between probes (unless Interval-Ms is set)"
    ),
    printcolumn(
        name = "Interval-Ms",
        type_ = "integer",
        json_path = ".spec.intervalMillis",
        description = "milliseconds between probes, when set: it takes the place of Interval"
    ),
    printcolumn(
        name = "Timeout",
        type_ = "integer",
        json_path = ".spec.timeoutMillis",
        description = "probe timeout in milliseconds"
    ),
    printcolumn(
        name = "Used-By",
        type_ = "integer",
        json_path = ".status.usedBy",
        description = "health-check tasks using this template"
    ),
    printcolumn(
        name = "Locations",
        type_ = "integer",
        json_path = ".status.reportingLocations",
        description = "selected probe locations reporting now"
    ),
    printcolumn(
        name = "Accepted",
        type_ = "string",
        json_path = ".status.conditions[?(@.type=='Accepted')].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = kube::core::Rule::new("has(self.intervalMillis) ? self.timeoutMillis < self.intervalMillis : self.timeoutMillis < self.intervalSeconds * 1000").message("timeoutMillis must be below the interval (intervalMillis, else intervalSeconds)"),
    validation = kube::core::Rule::new("!has(self.http) || self.protocol == 'HTTP' || self.protocol == 'HTTPS'").message("http may only be set for the HTTP and HTTPS protocols"),
    validation = kube::core::Rule::new("!has(self.icmp) || self.protocol == 'ICMP'").message("icmp may only be set for the ICMP protocol"),
    validation = kube::core::Rule::new("!has(self.http) || !has(self.http.sni) || self.protocol == 'HTTPS'").message("http.sni may only be set for the HTTPS protocol"),
    validation = kube::core::Rule::new("!has(self.http) || !has(self.http.verifyCertificate) || self.protocol == 'HTTPS'").message("http.verifyCertificate may only be set for the HTTPS protocol")
)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckTemplateSpec {
    /// What a probe does: `ICMP` echo, `TCP` connect, or an `HTTP`/`HTTPS` request.
    pub protocol: Protocol,
    /// Seconds between two probes of one task, from 1 to 3600. `intervalMillis` takes its
    /// place when set.
    #[serde(default = "default_interval")]
    #[schemars(range(min = 1, max = 3600))]
    pub interval_seconds: u32,
    /// Milliseconds between two probes of one task, from 100 to 3600000: for intervals below
    /// a second (GTM 3.0's shortest is 15 s, Route 53's 10 s, gdnsd's 2 s). When set, it takes
    /// the place of `intervalSeconds`. Each probe costs the prober a connection (or a request,
    /// or an echo) and the target as much: 10 tasks at 100 ms are 100 probes a second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 3600000))]
    pub interval_millis: Option<u32>,
    /// Milliseconds a probe may take before it counts as failed; must be below the interval.
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 10, max = 60000))]
    pub timeout_millis: u32,
    /// Consecutive failed probes that take a healthy (or new) task down, from 1 to 10.
    #[serde(default = "default_threshold")]
    #[schemars(range(min = 1, max = 10))]
    pub failure_threshold: u8,
    /// Consecutive successful probes that bring a down task back up, from 1 to 10.
    #[serde(default = "default_threshold")]
    #[schemars(range(min = 1, max = 10))]
    pub success_threshold: u8,
    /// With several probe locations (GTM's failure rate): a task is down when the share of the
    /// fresh, selected locations that judge it down exceeds this percentage, or when all of them
    /// do (so 100 means "every location"). Locations that have no verdict yet, or whose reports
    /// are stale, abstain. With one location, any value behaves the same: that location decides.
    #[serde(default = "default_failure_rate")]
    #[schemars(range(min = 1, max = 100))]
    pub failure_rate_percent: u8,
    /// Which probe locations probe this template's tasks and vote on them: the operator's
    /// embedded prober (location `local`) and every `gtm-prober --location NAME`. Unset: every
    /// location that reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locations: Option<LocationSelector>,
    /// HTTP and HTTPS settings; only for those protocols.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheck>,
    /// ICMP settings; only for the ICMP protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<IcmpCheck>,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub remark: Option<String>,
}

impl HealthCheckTemplateSpec {
    /// The time between two probes of one task: `intervalMillis` when set, else
    /// `intervalSeconds`; never below the 100 ms the schema allows (a spec that bypassed
    /// validation does not spin).
    pub fn interval(&self) -> std::time::Duration {
        let millis = self
            .interval_millis
            .unwrap_or(self.interval_seconds.saturating_mul(1000));
        std::time::Duration::from_millis(millis.max(MIN_INTERVAL_MILLIS).into())
    }
}

/// The shortest interval between two probes of one task, in milliseconds.
pub const MIN_INTERVAL_MILLIS: u32 = 100;

/// Probe locations by name or by label. A location is selected when `names` lists it or when it
/// carries every label of `matchLabels`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[x_kube(
    validation = kube::core::Rule::new("size(self.names) > 0 || size(self.matchLabels) > 0").message("locations must name a location or give matchLabels")
)]
#[serde(rename_all = "camelCase")]
pub struct LocationSelector {
    /// Location names (`local` is the operator's embedded prober).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub names: Vec<LocationName>,
    /// Labels a location must all carry (given with `gtm-prober --label key=value`), e.g.
    /// `region: eu`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
}

impl LocationSelector {
    /// Whether a location named `name` with `labels` is selected.
    pub fn selects(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        self.names.iter().any(|n| n.0 == name)
            || (!self.match_labels.is_empty()
                && self
                    .match_labels
                    .iter()
                    .all(|(k, v)| labels.get(k) == Some(v)))
    }
}

/// The name of a probe location: lower-case letters, digits and `-`, starting and ending with a
/// letter or digit, at most 63 characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct LocationName(
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub String,
);

/// The probe protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Protocol {
    /// ICMP echo (ping); needs unprivileged ICMP sockets or the NET_RAW capability.
    ICMP,
    /// A TCP connection to the port; success when the handshake completes.
    TCP,
    /// An HTTP request; success when the status (and optionally the body) is as expected.
    HTTP,
    /// An HTTP request over TLS; the certificate is verified unless told otherwise.
    HTTPS,
}

impl Protocol {
    /// The port a task probes when it names none; `None` where a port is meaningless (ICMP) or
    /// required (TCP).
    pub fn default_port(self) -> Option<u16> {
        match self {
            Self::HTTP => Some(80),
            Self::HTTPS => Some(443),
            Self::ICMP | Self::TCP => None,
        }
    }
}

/// HTTP(S) probe settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[x_kube(
    validation = kube::core::Rule::new("!has(self.bodyContains) || self.method != 'HEAD'").message("bodyContains cannot be used with method HEAD, which has no body")
)]
#[serde(rename_all = "camelCase")]
pub struct HttpCheck {
    /// Request method.
    #[serde(default)]
    pub method: HttpMethod,
    /// Request path, with an optional query string.
    #[serde(default = "default_path")]
    #[schemars(length(min = 1, max = 2048), regex(pattern = r"^/"))]
    pub path: String,
    /// Host header; defaults to the probed address (or, for a domain pool, its host name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub host: Option<String>,
    /// Status codes that count as healthy: single codes (`200`) or inclusive ranges
    /// (`200-399`). Defaults to `200-399`.
    #[serde(default = "default_expected_codes")]
    #[schemars(length(min = 1, max = 32))]
    #[x_kube(
        validation = kube::core::Rule::new("self.all(c, c.matches('^[1-5][0-9]{2}(-[1-5][0-9]{2})?$'))").message("expectedCodes entries must be a status code like 200 or a range like 200-399")
    )]
    pub expected_codes: Vec<StatusCodeRange>,
    /// When set, the response body (its first 64 KiB) must contain this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub body_contains: Option<String>,
    /// Extra request headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["name".into()]))]
    pub headers: Vec<HttpHeader>,
    /// Follow 301/302/303/307/308 redirects (at most 5) and judge the final response.
    #[serde(default)]
    pub follow_redirects: bool,
    /// HTTPS only: the server name sent in the TLS handshake and verified in the certificate;
    /// defaults to the Host header, else the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub sni: Option<String>,
    /// HTTPS only: verify the server certificate against the system roots. On unless set to
    /// false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_certificate: Option<bool>,
}

/// A status code (`200`) or an inclusive range of them (`200-399`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct StatusCodeRange(#[schemars(length(min = 3, max = 7))] pub String);

impl StatusCodeRange {
    /// The inclusive bounds, or `None` when the text is not a code or a range of codes.
    pub fn bounds(&self) -> Option<(u16, u16)> {
        let parse = |s: &str| {
            s.parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c) && s.len() == 3)
        };
        match self.0.split_once('-') {
            None => parse(&self.0).map(|c| (c, c)),
            Some((lo, hi)) => match (parse(lo), parse(hi)) {
                (Some(lo), Some(hi)) if lo <= hi => Some((lo, hi)),
                _ => None,
            },
        }
    }
}

/// An HTTP request method a probe may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum HttpMethod {
    /// GET (the default).
    #[default]
    GET,
    /// HEAD: no body is read, so `bodyContains` cannot be used with it.
    HEAD,
    /// POST with an empty body.
    POST,
}

/// One HTTP request header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HttpHeader {
    /// Header name.
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
    )]
    pub name: String,
    /// Header value.
    #[schemars(length(max = 1024))]
    pub value: String,
}

/// ICMP probe settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IcmpCheck {
    /// Echo requests sent per probe, from 1 to 100.
    #[serde(default = "default_packet_count")]
    #[schemars(range(min = 1, max = 100))]
    pub packet_count: u8,
    /// Loss, in percent of the packets sent, that a probe tolerates; more loss fails it.
    #[serde(default)]
    #[schemars(range(max = 100))]
    pub tolerated_loss_percent: u8,
}

/// Observed state of a `HealthCheckTemplate`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckTemplateStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted`: the template is valid and in use by the prober; `LocationsReporting`: some
    /// probe location it selects reports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// How many health-check tasks (address and port pairs) use this template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_by: Option<u32>,
    /// How many of the probe locations the template selects report now (fresh); the
    /// `LocationsReporting` condition names them, and the stale ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporting_locations: Option<u32>,
}

fn default_interval() -> u32 {
    5
}
fn default_timeout() -> u32 {
    2000
}
fn default_threshold() -> u8 {
    2
}
fn default_failure_rate() -> u8 {
    50
}
fn default_path() -> String {
    "/".into()
}
fn default_expected_codes() -> Vec<StatusCodeRange> {
    vec![StatusCodeRange("200-399".into())]
}
fn default_packet_count() -> u8 {
    3
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn interval_millis_takes_the_place_of_interval_seconds_never_below_100_ms() {
        let spec = |json: serde_json::Value| -> HealthCheckTemplateSpec {
            serde_json::from_value(json).unwrap()
        };
        let interval = |json| spec(json).interval();
        assert_eq!(
            interval(serde_json::json!({"protocol": "TCP"})),
            Duration::from_secs(5)
        );
        assert_eq!(
            interval(serde_json::json!({"protocol": "TCP", "intervalSeconds": 2})),
            Duration::from_secs(2)
        );
        assert_eq!(
            interval(
                serde_json::json!({"protocol": "TCP", "intervalSeconds": 2, "intervalMillis": 250})
            ),
            Duration::from_millis(250)
        );
        assert_eq!(
            interval(serde_json::json!({"protocol": "TCP", "intervalMillis": 1})),
            Duration::from_millis(100)
        );
        assert_eq!(
            interval(serde_json::json!({"protocol": "TCP", "intervalSeconds": 0})),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn status_code_ranges_parse() {
        let r = |s: &str| StatusCodeRange(s.into()).bounds();
        assert_eq!(r("200"), Some((200, 200)));
        assert_eq!(r("200-399"), Some((200, 399)));
        assert_eq!(r("399-200"), None);
        assert_eq!(r("600"), None);
        assert_eq!(r("20"), None);
        assert_eq!(r("0200"), None);
        assert_eq!(r("abc"), None);
    }

    #[test]
    fn default_ports_follow_the_protocol() {
        assert_eq!(Protocol::HTTP.default_port(), Some(80));
        assert_eq!(Protocol::HTTPS.default_port(), Some(443));
        assert_eq!(Protocol::TCP.default_port(), None);
        assert_eq!(Protocol::ICMP.default_port(), None);
    }
}
