//! One probe of one target: resolve it, run the protocol's check within the template's timeout,
//! and say how it went.

mod http;
mod http_clients;
mod icmp;
mod target;
mod tcp;
mod tls;

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use gtm_crds::template::{HealthCheckTemplateSpec, HttpCheck, IcmpCheck, Protocol};

use crate::outcome::{ProbeError, ProbeOutcome};
use http_clients::HttpClients;
use icmp::IcmpClients;
use target::Target;

/// Shared probing resources: the HTTP clients (one per distinct client-level setting) with the
/// TLS trust roots, and the ICMP sockets. Build one per process and share it (`Arc`); the
/// [`Prober`](crate::Prober) does so.
pub struct ProbeContext {
    http: HttpClients,
    icmp: IcmpClients,
}

impl ProbeContext {
    /// Loads the system's trusted root certificates (`SSL_CERT_FILE` / `SSL_CERT_DIR` are
    /// honoured); ICMP sockets are opened on first use.
    pub fn new() -> Self {
        Self {
            http: HttpClients::new(None),
            icmp: IcmpClients::default(),
        }
    }

    /// The same for probe location `name`, which HTTP(S) probes name in their User-Agent
    /// (`kube-gtm-prober/VERSION (location NAME)`).
    pub fn for_location(name: &str) -> Self {
        Self {
            http: HttpClients::new(Some(name)),
            icmp: IcmpClients::default(),
        }
    }

    /// Runs one probe of `target` (an IP address or a host name) on `port` as `spec` says,
    /// within `spec.timeout_millis`. Host names are resolved first and the resolved address is
    /// probed. HTTP and HTTPS default to ports 80 and 443; TCP needs a port; ICMP ignores it.
    pub async fn probe(
        &self,
        spec: &HealthCheckTemplateSpec,
        target: &str,
        port: Option<u16>,
    ) -> ProbeOutcome {
        let started = Instant::now();
        let timeout = Duration::from_millis(spec.timeout_millis.into());
        let deadline = started + timeout;
        let checked =
            tokio::time::timeout_at(deadline.into(), self.check(spec, target, port, deadline));
        let result = match checked.await {
            Ok(result) => result,
            Err(_) => Err(ProbeError::TimedOut {
                millis: spec.timeout_millis,
            }),
        };
        match result {
            Ok(latency) => ProbeOutcome {
                latency,
                result: Ok(()),
            },
            Err(err) => ProbeOutcome {
                latency: started.elapsed(),
                result: Err(err),
            },
        }
    }

    async fn check(
        &self,
        spec: &HealthCheckTemplateSpec,
        target: &str,
        port: Option<u16>,
        deadline: Instant,
    ) -> Result<Duration, ProbeError> {
        let target = Target::parse(target);
        let ip = target.resolve().await?;
        let port = port.or(spec.protocol.default_port());
        let port = || port.ok_or_else(|| ProbeError::InvalidCheck("no port to probe".into()));
        match spec.protocol {
            Protocol::TCP => tcp::probe(ip, port()?).await,
            Protocol::HTTP | Protocol::HTTPS => {
                let check = spec.http.as_ref().unwrap_or(&DEFAULT_HTTP_CHECK);
                let request = http::HttpRequest {
                    check,
                    tls: spec.protocol == Protocol::HTTPS,
                    target: &target,
                    ip,
                    port: port()?,
                };
                http::probe(&self.http, &request).await
            }
            Protocol::ICMP => {
                let check = spec.icmp.as_ref().unwrap_or(&DEFAULT_ICMP_CHECK);
                icmp::probe(&self.icmp, ip, check, deadline).await
            }
        }
    }
}

impl Default for ProbeContext {
    fn default() -> Self {
        Self::new()
    }
}

/// The HTTP settings of a template that gives none: the CRD's own defaults.
static DEFAULT_HTTP_CHECK: LazyLock<HttpCheck> = LazyLock::new(crd_defaults);

/// The ICMP settings of a template that gives none: the CRD's own defaults.
static DEFAULT_ICMP_CHECK: LazyLock<IcmpCheck> = LazyLock::new(crd_defaults);

/// A settings struct as the API server would default an empty object.
fn crd_defaults<T: serde::de::DeserializeOwned>() -> T {
    serde_json::from_value(serde_json::json!({})).expect("every field of the struct has a default")
}
