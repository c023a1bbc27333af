//! Command-line flags, each with an environment variable (`docs/configuration.md`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use clap::builder::TypedValueParser as _;

use crate::config_source::dir::FollowOptions;
use crate::readiness::StalePolicy;
use crate::rrl::{self, RrlConfig};
use crate::tcp::{self, TcpLimits};
use crate::udp_limits::{self, UdpLimits};
use crate::zone::ZoneSettings;

/// kube-gtm DNS pod: authoritative DNS for the access domains, answering by policy and health.
#[derive(Clone, Debug, Parser)]
#[command(name = "gtm-dnspod", version)]
pub struct Args {
    /// Local mode: read `config.json` and `health.json` from this directory and follow changes;
    /// unset means read ConfigMaps through the API.
    #[arg(long, env = "GTM_CONFIG_DIR", value_hint = clap::ValueHint::DirPath)]
    pub config_dir: Option<PathBuf>,
    /// Namespace of the ConfigMaps (required in a cluster).
    #[arg(long, env = "POD_NAMESPACE", required_unless_present = "config_dir")]
    pub namespace: Option<String>,
    /// Read the ConfigMaps of another cluster through this kubeconfig (an edge DNS pod reading
    /// the control cluster); unset means this pod's own cluster (its in-cluster account, or
    /// `KUBECONFIG`).
    #[arg(long, env = "GTM_KUBECONFIG", value_hint = clap::ValueHint::FilePath, conflicts_with = "config_dir")]
    pub kubeconfig: Option<PathBuf>,
    /// Readiness while the API server holding the ConfigMaps is unreachable: 0 stays ready
    /// (answers go on from the last config and health); N makes `/readyz` fail once the source
    /// has been stale for N seconds (answers still go on, for whoever still asks).
    #[arg(long, env = "GTM_UNREADY_AFTER_STALE_SECONDS", default_value_t = 0)]
    pub unready_after_stale_seconds: u64,
    /// Selects ConfigMaps labelled `gtm.kubegtm.io/instance=<instance>`.
    #[arg(long, env = "GTM_INSTANCE", default_value = "kube-gtm")]
    pub instance: String,
    /// DNS address, UDP and TCP (repeatable).
    #[arg(
        long,
        env = "GTM_DNS_LISTEN",
        value_delimiter = ',',
        default_value = "0.0.0.0:5353"
    )]
    pub dns_listen: Vec<SocketAddr>,
    /// Directory of the signed zones' keys: `<zone>.key`, a PKCS#8 PEM private key (`openssl
    /// genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`, or `-algorithm ed25519`),
    /// read at every reload; in a cluster, a Secret mounted here (chart
    /// `dns.dnssec.keysSecret`). Unset: `<config-dir>/dnssec` in local mode, none in a cluster.
    #[arg(long, env = "GTM_DNSSEC_KEYS", value_hint = clap::ValueHint::DirPath)]
    pub dnssec_keys: Option<PathBuf>,
    /// Address of `/metrics`, `/healthz`, `/readyz`.
    #[arg(long, env = "GTM_HTTP_LISTEN", default_value = "0.0.0.0:8081")]
    pub http_listen: SocketAddr,
    /// Zones served in addition to those in the config (repeatable).
    #[arg(long = "zone", env = "GTM_ZONES", value_delimiter = ',')]
    pub zones: Vec<String>,
    /// NS records at each zone apex (repeatable); default `ns1.<zone>`.
    #[arg(long = "nameserver", env = "GTM_NAMESERVERS", value_delimiter = ',')]
    pub nameservers: Vec<String>,
    /// SOA responsible mailbox; default `hostmaster.<zone>`.
    #[arg(long, env = "GTM_SOA_RNAME")]
    pub soa_rname: Option<String>,
    /// SOA refresh, seconds.
    #[arg(long, env = "GTM_SOA_REFRESH", default_value_t = 3600)]
    pub soa_refresh: i32,
    /// SOA retry, seconds.
    #[arg(long, env = "GTM_SOA_RETRY", default_value_t = 600)]
    pub soa_retry: i32,
    /// SOA expire, seconds.
    #[arg(long, env = "GTM_SOA_EXPIRE", default_value_t = 86400)]
    pub soa_expire: i32,
    /// SOA minimum: the negative-caching TTL, seconds.
    #[arg(long, env = "GTM_SOA_MINIMUM", default_value_t = 30)]
    pub soa_minimum: u32,
    /// Local mode: seconds between rescans of `--config-dir`, a safety net behind the watch.
    #[arg(long, env = "GTM_CONFIG_RESCAN_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub config_rescan_seconds: u64,
    /// Local mode: largest payload file read, bytes; a larger one is refused.
    #[arg(long, env = "GTM_MAX_PAYLOAD_BYTES", default_value_t = crate::config_source::payload_file::DEFAULT_MAX_PAYLOAD_BYTES)]
    pub max_payload_bytes: u64,
    /// TCP connections open at most; more are accepted and closed at once.
    #[arg(long, env = "GTM_TCP_MAX_CONNECTIONS", default_value_t = tcp::DEFAULT_MAX_CONNECTIONS,
        value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    pub tcp_max_connections: usize,
    /// TCP connections open at most from one source (an IPv4 address, an IPv6 /64).
    #[arg(long, env = "GTM_TCP_MAX_CONNECTIONS_PER_SOURCE", default_value_t = tcp::DEFAULT_MAX_CONNECTIONS_PER_SOURCE,
        value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    pub tcp_max_connections_per_source: usize,
    /// MaxMind-format database for continent, country, subdivision and ASN sources.
    #[arg(long, env = "GTM_GEOIP_DB", value_hint = clap::ValueHint::FilePath)]
    pub geoip_db: Option<PathBuf>,
    /// Largest UDP response, bytes: a query advertising a larger EDNS payload gets this much,
    /// and an answer that does not fit is truncated (TC) for the client to retry over TCP.
    #[arg(long, env = "GTM_UDP_MAX_PAYLOAD", default_value_t = udp_limits::DEFAULT_MAX_PAYLOAD,
        value_parser = clap::value_parser!(u16).range(i64::from(udp_limits::PLAIN_UDP_MAX)..=i64::from(udp_limits::MAX_PAYLOAD_CEILING)))]
    pub udp_max_payload: u16,
    /// Response rate limiting: UDP responses per second per source prefix (at most 1 000 000);
    /// 0 turns it off.
    #[arg(long, env = "GTM_RRL_RATE", default_value_t = rrl::DEFAULT_RATE,
        value_parser = clap::value_parser!(u32).range(0..=i64::from(rrl::MAX_RATE)))]
    pub rrl_rate: u32,
    /// Response rate limiting: responses a source prefix may get back to back above the rate.
    #[arg(long, env = "GTM_RRL_BURST", default_value_t = rrl::DEFAULT_BURST,
        value_parser = clap::value_parser!(u32).range(1..))]
    pub rrl_burst: u32,
    /// Response rate limiting: every Nth limited response is sent as an empty truncated answer
    /// (the client retries over TCP), the others are dropped; 0 drops them all.
    #[arg(long, env = "GTM_RRL_SLIP", default_value_t = rrl::DEFAULT_SLIP)]
    pub rrl_slip: u16,
    /// Response rate limiting: IPv4 sources sharing this prefix length share one rate.
    #[arg(long, env = "GTM_RRL_IPV4_PREFIX", default_value_t = rrl::DEFAULT_IPV4_PREFIX,
        value_parser = clap::value_parser!(u8).range(0..=32))]
    pub rrl_ipv4_prefix: u8,
    /// Query log: a file to append one JSON line per logged query to, or `-` for standard
    /// output; unset, nothing is logged.
    #[arg(long, env = "GTM_QUERY_LOG", value_hint = clap::ValueHint::FilePath)]
    pub query_log: Option<PathBuf>,
    /// Query log: one query in this many is logged.
    #[arg(long, env = "GTM_QUERY_LOG_SAMPLE", default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(1..))]
    pub query_log_sample: u32,
    /// Query log: entries per second at most; the rest are dropped and counted.
    #[arg(long, env = "GTM_QUERY_LOG_RATE", default_value_t = 1000,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub query_log_rate: u32,
    /// dnstap: the unix socket of a Frame Streams collector (e.g. `fstrm_capture`, Vector,
    /// dnscollector) to send every query and response to, as `AUTH_QUERY` and `AUTH_RESPONSE`
    /// messages; unset, dnstap is off.
    #[arg(long, env = "GTM_DNSTAP_SOCKET", value_hint = clap::ValueHint::FilePath)]
    pub dnstap_socket: Option<PathBuf>,
    /// dnstap: the `identity` of every message; the host name (the pod name) when unset.
    #[arg(long, env = "GTM_DNSTAP_IDENTITY")]
    pub dnstap_identity: Option<String>,
    /// Response rate limiting: IPv6 sources sharing this prefix length share one rate.
    #[arg(long, env = "GTM_RRL_IPV6_PREFIX", default_value_t = rrl::DEFAULT_IPV6_PREFIX,
        value_parser = clap::value_parser!(u8).range(0..=128))]
    pub rrl_ipv6_prefix: u8,
}

impl Args {
    /// The TCP connection caps.
    pub fn tcp_limits(&self) -> TcpLimits {
        TcpLimits {
            max_connections: self.tcp_max_connections,
            max_connections_per_source: self.tcp_max_connections_per_source,
            ..TcpLimits::default()
        }
    }

    /// The query log's settings, when it is on.
    pub fn query_log(&self) -> Option<crate::query_log::QueryLogSettings> {
        self.query_log
            .clone()
            .map(|path| crate::query_log::QueryLogSettings {
                path,
                sample: self.query_log_sample,
                rate: self.query_log_rate,
            })
    }

    /// dnstap's settings, when it is on.
    pub fn dnstap(&self) -> Option<crate::dnstap::DnstapSettings> {
        let socket = self.dnstap_socket.clone()?;
        let identity = self
            .dnstap_identity
            .clone()
            .unwrap_or_else(|| std::env::var("HOSTNAME").unwrap_or_else(|_| "gtm-dnspod".into()));
        Some(crate::dnstap::DnstapSettings { socket, identity })
    }

    /// The UDP response cap and rate limiting.
    pub fn udp_limits(&self) -> UdpLimits {
        UdpLimits {
            max_payload: self.udp_max_payload,
            rrl: (self.rrl_rate > 0).then_some(RrlConfig {
                rate: self.rrl_rate,
                burst: self.rrl_burst,
                slip: self.rrl_slip,
                ipv4_prefix: self.rrl_ipv4_prefix,
                ipv6_prefix: self.rrl_ipv6_prefix,
            }),
        }
    }

    /// How `--config-dir` is followed.
    pub fn follow_options(&self) -> FollowOptions {
        FollowOptions {
            rescan: Duration::from_secs(self.config_rescan_seconds),
            max_payload_bytes: self.max_payload_bytes,
        }
    }

    /// The readiness policy while the config source is stale.
    pub fn stale_policy(&self) -> StalePolicy {
        StalePolicy {
            unready_after: (self.unready_after_stale_seconds > 0)
                .then(|| Duration::from_secs(self.unready_after_stale_seconds)),
        }
    }

    /// The SOA and NS settings.
    pub fn zone_settings(&self) -> ZoneSettings {
        ZoneSettings {
            extra_zones: self.zones.clone(),
            nameservers: self.nameservers.clone(),
            soa_rname: self.soa_rname.clone(),
            refresh: self.soa_refresh,
            retry: self.soa_retry,
            expire: self.soa_expire,
            minimum: self.soa_minimum,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_cli_definition_is_valid() {
        Args::command().debug_assert();
    }

    #[test]
    fn flags_repeat_and_defaults_match_the_docs() {
        let a = Args::try_parse_from([
            "gtm-dnspod",
            "--config-dir",
            "/tmp/x",
            "--dns-listen",
            "127.0.0.1:5300",
            "--dns-listen",
            "[::1]:5300",
            "--zone",
            "a.example",
            "--nameserver",
            "ns1.example.net",
        ])
        .unwrap();
        assert_eq!(a.dns_listen.len(), 2);
        assert_eq!(a.instance, "kube-gtm");
        assert_eq!(a.http_listen.to_string(), "0.0.0.0:8081");
        let s = a.zone_settings();
        assert_eq!(
            (s.refresh, s.retry, s.expire, s.minimum),
            (3600, 600, 86400, 30)
        );
        assert_eq!(s.extra_zones, vec!["a.example"]);
        let f = a.follow_options();
        assert_eq!(f.rescan, Duration::from_secs(10));
        assert_eq!(f.max_payload_bytes, 64 << 20);
        assert_eq!(a.tcp_limits(), TcpLimits::default());
        assert_eq!(
            (
                TcpLimits::default().max_connections,
                TcpLimits::default().max_connections_per_source
            ),
            (512, 32)
        );
    }

    #[test]
    fn an_edge_pod_reads_through_a_kubeconfig_and_may_go_unready_when_stale() {
        let a = Args::try_parse_from(["gtm-dnspod", "--namespace", "gtm"]).unwrap();
        assert_eq!(
            (a.kubeconfig.as_deref(), a.stale_policy()),
            (None, StalePolicy::default())
        );
        let edge = Args::try_parse_from([
            "gtm-dnspod",
            "--namespace",
            "gtm",
            "--kubeconfig",
            "/var/run/kube-gtm/control/kubeconfig",
            "--unready-after-stale-seconds",
            "300",
        ])
        .unwrap();
        assert_eq!(
            edge.kubeconfig.as_deref(),
            Some(std::path::Path::new("/var/run/kube-gtm/control/kubeconfig"))
        );
        assert_eq!(
            edge.stale_policy().unready_after,
            Some(Duration::from_secs(300))
        );
        // A kubeconfig is for the API source; local mode reads files.
        assert!(
            Args::try_parse_from(["gtm-dnspod", "--config-dir", "/x", "--kubeconfig", "/k"])
                .is_err()
        );
    }

    #[test]
    fn a_namespace_is_required_without_a_config_dir() {
        assert!(Args::try_parse_from(["gtm-dnspod"]).is_err());
        assert!(Args::try_parse_from(["gtm-dnspod", "--namespace", "gtm"]).is_ok());
    }

    #[test]
    fn udp_limits_default_to_a_capped_payload_and_rate_limiting_on() {
        let a = Args::try_parse_from(["gtm-dnspod", "--config-dir", "/tmp/x"]).unwrap();
        assert_eq!(a.udp_limits(), UdpLimits::default());
        let off = Args::try_parse_from([
            "gtm-dnspod",
            "--config-dir",
            "/tmp/x",
            "--rrl-rate",
            "0",
            "--udp-max-payload",
            "4096",
        ])
        .unwrap();
        assert_eq!(
            off.udp_limits(),
            UdpLimits {
                max_payload: 4096,
                rrl: None
            }
        );
        for bad in [
            ["--udp-max-payload", "511"],
            ["--udp-max-payload", "65508"],
            ["--rrl-burst", "0"],
            ["--rrl-rate", "1000001"],
            ["--rrl-ipv4-prefix", "33"],
        ] {
            let args = ["gtm-dnspod", "--config-dir", "/tmp/x", bad[0], bad[1]];
            assert!(Args::try_parse_from(args).is_err(), "{bad:?}");
        }
    }
}
