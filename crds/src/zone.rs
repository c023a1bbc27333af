//! `GtmZone`: a served zone's own data: its name servers (with glue), its SOA fields, and its
//! static records (A, AAAA, TXT, MX, SRV, CAA), answered next to the access domains.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::HOSTNAME_PATTERN;

/// A zone the DNS pods serve, with what makes its delegation resolve and the records that are
/// not access domains: name servers with glue addresses, SOA fields, and static A, AAAA, TXT
/// (ACME DNS-01, domain verification), MX, SRV and CAA records. One per zone; the zone must
/// be one the DNS pods serve.
// `kube` printer columns repeat `type_ = "string"` by design.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "gtm.kubegtm.io",
    version = "v1alpha1",
    kind = "GtmZone",
    namespaced,
    status = "GtmZoneStatus",
    derive = "PartialEq",
    shortname = "gz",
    shortname = "gtmzone",
    category = "gtm",
    doc = "A zone served by kube-gtm: its name servers with glue, SOA fields and static records (A, AAAA, TXT, MX, SRV, CAA).",
    printcolumn(name = "Zone", type_ = "string", json_path = ".spec.zone"),
    printcolumn(
        name = "Serial",
        type_ = "integer",
        json_path = ".status.serial",
        description = "SOA serial published"
    ),
    printcolumn(
        name = "Records",
        type_ = "integer",
        json_path = ".status.records",
        description = "record sets published, glue included"
    ),
    printcolumn(
        name = "Key-Tag",
        type_ = "integer",
        json_path = ".status.dnssec.keyTag",
        description = "key tag of the DNSSEC key whose DS (status.dnssec.ds) the parent zone needs"
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
    validation = kube::core::Rule::new(records_in_zone_rule()).message("every record name must lie inside spec.zone (a fully qualified name, e.g. www.gtm.example.com for zone gtm.example.com)"),
    validation = kube::core::Rule::new(glue_required_rule()).message("a name server inside the zone needs its addresses (glue): nothing else can give it one"),
    validation = kube::core::Rule::new(glue_only_in_zone_rule()).message("addresses may only be given for name servers inside the zone; others get theirs from their own zone")
)]
#[serde(rename_all = "camelCase")]
pub struct GtmZoneSpec {
    /// The zone, e.g. `gtm.example.com`: one of the zones the DNS pods serve (the chart's
    /// `zones`); case does not matter and a trailing dot is optional.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(
        validation = kube::core::Rule::new(host_name_rule()).message("must be a DNS name: letters, digits and hyphens in dot-separated labels of 1 to 63 characters, e.g. gtm.example.com")
    )]
    pub zone: String,
    /// The zone's name servers: the NS records at its apex, in this order. A name server inside
    /// the zone needs its `addresses` (glue), which are answered as its A and AAAA records and
    /// in the additional section of NS answers. List the same names the parent zone delegates
    /// to. Unset: the DNS pods' `--nameserver` flag (chart `dns.nameservers`), else
    /// `ns1.<zone>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["name".into()]))]
    pub nameservers: Vec<Nameserver>,
    /// TTL of the NS records and of the glue addresses, in seconds (1 to 86400).
    #[serde(default = "default_nameserver_ttl")]
    #[schemars(range(min = 1, max = 86400))]
    pub nameserver_ttl: u32,
    /// SOA fields; every field left out takes the DNS pods' flag (`--soa-*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soa: Option<Soa>,
    /// Static record sets, one per name and type (at most 128). Names must lie in the zone
    /// and may not be access domains of the same type (nor of type CNAME): the zone's records
    /// take precedence and such an access domain is refused with `Conflict`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["name".into(), "type".into()]))]
    pub records: Vec<ZoneRecord>,
    /// DNSSEC online signing of every answer in the zone, dynamic ones included. Unset: the
    /// zone is not signed. The DNS pods sign with one combined signing key (CSK, DNSKEY flags
    /// 257) read from `<zone>.key` in their key directory (`--dnssec-keys`, chart
    /// `dns.dnssec.keysSecret`); give the parent zone the DS record they report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnssec: Option<Dnssec>,
}

/// DNSSEC settings of a zone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Dnssec {
    /// The key's algorithm: `ECDSAP256SHA256` (13, the default) or `ED25519` (15). The key
    /// file must hold a key of this algorithm; a mismatch is refused and the last good config
    /// keeps serving.
    #[serde(default)]
    pub algorithm: DnssecAlgorithm,
}

/// A DNSSEC signing algorithm (RFC 8624 recommends both for signing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum DnssecAlgorithm {
    /// ECDSA on curve P-256 with SHA-256, algorithm 13.
    #[default]
    ECDSAP256SHA256,
    /// Ed25519, algorithm 15.
    ED25519,
}

/// One name server of the zone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Nameserver {
    /// The name server's host name, e.g. `ns1.gtm.example.com`.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(
        validation = kube::core::Rule::new(host_name_rule()).message("must be a host name, e.g. ns1.gtm.example.com")
    )]
    pub name: String,
    /// Its IPv4 and IPv6 addresses (glue), required for a name server inside the zone and not
    /// allowed for others: the addresses of your DNS Services (`dns.service`), one or more per
    /// cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 8))]
    #[x_kube(
        validation = kube::core::Rule::new("self.all(a, isIP(a) && (ip(a).isGlobalUnicast() || ip(a).isLoopback()))").message("every address must be a unicast IPv4 or IPv6 address")
    )]
    pub addresses: Vec<IpText>,
}

/// An IPv4 or IPv6 address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct IpText(#[schemars(length(min = 2, max = 45))] pub String);

/// The SOA record's fields. Each one left out takes the DNS pods' flag.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Soa {
    /// The primary name server (MNAME); default: the first name server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(
        validation = kube::core::Rule::new(host_name_rule()).message("must be a host name, e.g. ns1.gtm.example.com")
    )]
    pub mname: Option<String>,
    /// The responsible mailbox (RNAME), as a mail address (`hostmaster@example.com`) or in DNS
    /// form (`hostmaster.example.com`); default `hostmaster.<zone>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(
        validation = kube::core::Rule::new(mailbox_rule()).message("must be a mail address (hostmaster@example.com) or a DNS name (hostmaster.example.com)")
    )]
    pub rname: Option<String>,
    /// Seconds between a secondary's checks of the serial (REFRESH).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 2147483647))]
    pub refresh: Option<i32>,
    /// Seconds before a secondary retries a failed check (RETRY).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 2147483647))]
    pub retry: Option<i32>,
    /// Seconds a secondary keeps answering without reaching the primary (EXPIRE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 2147483647))]
    pub expire: Option<i32>,
    /// The negative-caching TTL (MINIMUM, RFC 2308), seconds: how long resolvers remember
    /// NXDOMAIN and NODATA answers. It is also the SOA record's own TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 86400))]
    pub minimum: Option<u32>,
}

/// One static record set: every record of one type at one name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[x_kube(
    validation = kube::core::Rule::new("(self.type == 'A' || self.type == 'AAAA') == has(self.addresses)").message("addresses is required for A and AAAA records and only for them"),
    validation = kube::core::Rule::new("(self.type == 'TXT') == has(self.text)").message("text is required for TXT records and only for them"),
    validation = kube::core::Rule::new("(self.type == 'MX') == has(self.mx)").message("mx is required for MX records and only for them"),
    validation = kube::core::Rule::new("(self.type == 'SRV') == has(self.srv)").message("srv is required for SRV records and only for them"),
    validation = kube::core::Rule::new("(self.type == 'CAA') == has(self.caa)").message("caa is required for CAA records and only for them"),
    validation = kube::core::Rule::new("!has(self.addresses) || self.type != 'A' || self.addresses.all(a, isIP(a) && ip(a).family() == 4)").message("every address of an A record must be an IPv4 address"),
    validation = kube::core::Rule::new("!has(self.addresses) || self.type != 'AAAA' || self.addresses.all(a, isIP(a) && ip(a).family() == 6)").message("every address of an AAAA record must be an IPv6 address")
)]
#[serde(rename_all = "camelCase")]
pub struct ZoneRecord {
    /// The fully qualified owner name, inside the zone, e.g. `_acme-challenge.gtm.example.com`
    /// (the zone's own name for the apex); case does not matter and a trailing dot is
    /// optional. Wildcards are not supported.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(
        validation = kube::core::Rule::new(host_name_rule()).message("must be a DNS name (underscores allowed, e.g. _acme-challenge.gtm.example.com); wildcards are not supported")
    )]
    pub name: String,
    /// The record type: `A`, `AAAA`, `TXT`, `MX`, `SRV` or `CAA`. Exactly the matching data
    /// field is set: `addresses` for A and AAAA, `text`, `mx`, `srv` or `caa`.
    #[serde(rename = "type")]
    pub record_type: ZoneRecordType,
    /// Time to live, in seconds (1 to 86400).
    #[serde(default = "default_record_ttl")]
    #[schemars(range(min = 1, max = 86400))]
    pub ttl: u32,
    /// A and AAAA: the addresses, one record each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 64))]
    pub addresses: Vec<IpText>,
    /// TXT: one record per string. A string longer than 255 bytes is sent as several
    /// character-strings of one record, which readers join (SPF, DKIM keys).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 64))]
    pub text: Vec<TxtString>,
    /// MX: the mail exchangers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 16))]
    pub mx: Vec<MxData>,
    /// SRV: the service locations (RFC 2782); the name has the form `_service._proto.<name>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 16))]
    pub srv: Vec<SrvData>,
    /// CAA: which certificate authorities may issue for the name (RFC 8659).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 16))]
    pub caa: Vec<CaaData>,
}

/// The type of a static record set.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum ZoneRecordType {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    AAAA,
    /// Text (ACME DNS-01 challenges, domain verification, SPF).
    TXT,
    /// Mail exchangers.
    MX,
    /// Service locations.
    SRV,
    /// Certification authority authorization.
    CAA,
}

/// The text of one TXT record (at most 4000 bytes).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct TxtString(#[schemars(length(max = 4000))] pub String);

/// One MX record.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MxData {
    /// Preference: lower is tried first (0 to 65535).
    pub preference: u16,
    /// The mail server's host name, or `.` for "this name accepts no mail" (RFC 7505, with
    /// preference 0).
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(
        validation = kube::core::Rule::new(target_rule()).message("must be a host name, or . for none")
    )]
    pub exchange: String,
}

/// One SRV record.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SrvData {
    /// Priority: lower is tried first (0 to 65535).
    pub priority: u16,
    /// Relative weight among records of the same priority (0 to 65535).
    pub weight: u16,
    /// The service's port (0 to 65535).
    pub port: u16,
    /// The server's host name, or `.` for "the service is not offered here".
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(
        validation = kube::core::Rule::new(target_rule()).message("must be a host name, or . for none")
    )]
    pub target: String,
}

/// One CAA record.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaaData {
    /// Flags: 0, or 128 when an authority that does not understand the tag must not issue.
    #[serde(default)]
    #[schemars(range(min = 0, max = 255))]
    pub flags: u8,
    /// The property: `issue`, `issuewild`, `iodef`, `issuemail` or another tag of letters and
    /// digits.
    #[schemars(regex(pattern = r"^[A-Za-z0-9]{1,15}$"))]
    pub tag: String,
    /// The value, e.g. `letsencrypt.org` or `letsencrypt.org; validationmethods=dns-01` for
    /// `issue`, a `mailto:` or `https:` URL for `iodef`.
    #[schemars(length(max = 1024))]
    pub value: String,
}

/// Observed state of a `GtmZone`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GtmZoneStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted` (valid, served, no older `GtmZone` for the zone), `Ready` (published to
    /// the DNS pods; `False` with reason `DnssecKeyNotReady` while the DNS pods would refuse
    /// the zone's key) and, for a zone with `dnssec`, `DnssecKeyReady` (the operator read a
    /// key of the zone's algorithm; reasons `KeyNotFound`, `KeyUnreadable`,
    /// `AlgorithmMismatch`, `KeySourceNotSet`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The SOA serial the DNS pods answer with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<u32>,
    /// Record sets published: the static records and the name servers' glue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<u32>,
    /// The zone's DNSSEC key as the operator read it, for a zone with `dnssec` whose key is
    /// ready: the DS record to give the parent zone (registrar) and the DNSKEY the DNS pods
    /// serve. Absent while the key is missing or unusable (see `DnssecKeyReady`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnssec: Option<DnssecStatus>,
}

/// What the parent zone needs to validate a signed zone: its DS record, field by field as
/// registrars ask for it and whole in presentation form, and the DNSKEY it is made from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnssecStatus {
    /// The key tag of the zone's key (RFC 4034 appendix B), e.g. `41521`.
    pub key_tag: u16,
    /// The key's algorithm number: 13 (ECDSAP256SHA256) or 15 (ED25519).
    pub algorithm: u8,
    /// The DS digest type: 2 (SHA-256).
    pub digest_type: u8,
    /// The DS digest: SHA-256 over the zone's name and its DNSKEY, upper-case hex (64
    /// characters).
    pub digest: String,
    /// The DS record in presentation form, e.g. `gtm.example.com. IN DS 41521 13 2 7954...`:
    /// add it to the parent zone (at your registrar) to make the zone validate.
    pub ds: String,
    /// The DNSKEY record the DNS pods serve at the apex (flags 257: one combined signing
    /// key), in presentation form, for registrars that take the DNSKEY and compute the DS.
    pub dnskey: String,
}

fn default_nameserver_ttl() -> u32 {
    3600
}

fn default_record_ttl() -> u32 {
    300
}

/// `HOSTNAME_PATTERN` as a CEL string literal.
fn host_name_pattern() -> String {
    HOSTNAME_PATTERN.replace('\\', "\\\\")
}

/// CEL: a host name without wildcards.
fn host_name_rule() -> String {
    format!("self.matches('{}')", host_name_pattern())
}

/// CEL: a host name, or `.` (the "none" target of MX and SRV).
fn target_rule() -> String {
    format!("self == '.' || self.matches('{}')", host_name_pattern())
}

/// CEL: a host name, or a mail address (a local part without dots, then a host name).
fn mailbox_rule() -> String {
    let host = host_name_pattern();
    let host = host.trim_start_matches('^');
    format!("self.matches('^([A-Za-z0-9_+-]{{1,63}}@)?{host}')")
}

/// CEL: `expr` in lower case with a trailing dot.
fn dotted(expr: &str) -> String {
    format!("({expr}.endsWith('.') ? {expr}.lowerAscii() : {expr}.lowerAscii() + '.')")
}

/// CEL (over the spec): whether the name `expr` lies in the zone (is it or below it).
fn in_zone(expr: &str) -> String {
    let (name, zone) = (dotted(expr), dotted("self.zone"));
    format!("({name} == {zone} || {name}.endsWith('.' + {zone}))")
}

/// CEL: every record lies in the zone.
fn records_in_zone_rule() -> String {
    format!(
        "!has(self.records) || self.records.all(r, {})",
        in_zone("r.name")
    )
}

/// CEL: name servers inside the zone have addresses.
fn glue_required_rule() -> String {
    format!(
        "!has(self.nameservers) || self.nameservers.all(n, !{} || has(n.addresses))",
        in_zone("n.name")
    )
}

/// CEL: only name servers inside the zone have addresses.
fn glue_only_in_zone_rule() -> String {
    format!(
        "!has(self.nameservers) || self.nameservers.all(n, {} || !has(n.addresses))",
        in_zone("n.name")
    )
}
