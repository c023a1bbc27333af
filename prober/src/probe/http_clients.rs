//! HTTP clients, one per distinct client-level setting (redirect policy, certificate
//! verification, and the host name pinned to the address probed), reused across probes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::redirect::Policy;

use super::tls::TlsConfigs;
use crate::outcome::ProbeError;

/// Redirects a probe follows at most, when the template asks it to follow them.
const MAX_REDIRECTS: usize = 5;
/// A client unused this long is dropped: twice the longest probe interval (1 h), so that only
/// clients of removed tasks (or of addresses a host name no longer resolves to) go.
const IDLE_LIFETIME: Duration = Duration::from_secs(2 * 3600);
/// How often the cache looks for idle clients.
const SWEEP_PERIOD: Duration = Duration::from_secs(60);
/// The User-Agent of HTTP(S) probes; a probe location appends ` (location NAME)`, so that a
/// backend's logs tell the locations apart.
const USER_AGENT: &str = concat!("kube-gtm-prober/", env!("CARGO_PKG_VERSION"));

/// The settings that need a client of their own.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct ClientKey {
    /// Follow redirects (up to five) or judge the first response.
    pub(super) follow_redirects: bool,
    /// Verify the server certificate (always true for plain HTTP, where it only matters for
    /// redirects to HTTPS).
    pub(super) verify_certificate: bool,
    /// The host name the URL carries (the TLS server name and default Host header), connected
    /// at the given address instead of being resolved by the client.
    pub(super) pinned: Option<(String, SocketAddr)>,
}

/// The clients, built on first use and shared by all probes with the same [`ClientKey`].
pub(super) struct HttpClients {
    user_agent: String,
    tls: TlsConfigs,
    cache: Mutex<ClientCache>,
}

struct ClientCache {
    clients: HashMap<ClientKey, CachedClient>,
    last_sweep: Instant,
}

struct CachedClient {
    client: reqwest::Client,
    last_used: Instant,
}

impl HttpClients {
    /// Clients sending the User-Agent of `location` (`None`: the plain one).
    pub(super) fn new(location: Option<&str>) -> Self {
        Self {
            user_agent: match location {
                Some(name) => format!("{USER_AGENT} (location {name})"),
                None => USER_AGENT.to_string(),
            },
            tls: TlsConfigs::load(),
            cache: Mutex::new(ClientCache {
                clients: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    /// The client for `key`, built now if no probe used it lately.
    pub(super) fn client(&self, key: ClientKey) -> Result<reqwest::Client, ProbeError> {
        let now = Instant::now();
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if now.duration_since(cache.last_sweep) >= SWEEP_PERIOD {
            cache
                .clients
                .retain(|_, cached| now.duration_since(cached.last_used) < IDLE_LIFETIME);
            cache.last_sweep = now;
        }
        if let Some(cached) = cache.clients.get_mut(&key) {
            cached.last_used = now;
            return Ok(cached.client.clone());
        }
        let client = self.build(&key)?;
        let cached = CachedClient {
            client: client.clone(),
            last_used: now,
        };
        cache.clients.insert(key, cached);
        Ok(client)
    }

    /// A client that opens a fresh connection per probe (no idle pool), as health checkers do:
    /// a probe must see a listener that stopped accepting, not an old kept-alive connection.
    /// It never goes through a proxy.
    fn build(&self, key: &ClientKey) -> Result<reqwest::Client, ProbeError> {
        let redirects = if key.follow_redirects {
            Policy::limited(MAX_REDIRECTS)
        } else {
            Policy::none()
        };
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls(self.tls.config(key.verify_certificate).clone())
            .redirect(redirects)
            .pool_max_idle_per_host(0)
            .no_proxy()
            .user_agent(self.user_agent.as_str());
        if let Some((name, addr)) = &key.pinned {
            builder = builder.resolve(name, *addr);
        }
        builder
            .build()
            .map_err(|e| ProbeError::Http(format!("cannot build the HTTP client: {e}")))
    }
}
