//! What the DNS targets share: a DNS pod's handler serving the examples' compiled config
//! (`fixtures/`, written by `gtm-operator local --manifests examples`), and a runtime to drive
//! its async full path.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use gtm_crds::parts::Payload;
use gtm_dnspod::handler::GtmHandler;
use gtm_dnspod::state::{Loader, Shared};
use gtm_dnspod::udp_limits::UdpLimits;
use gtm_dnspod::zone::ZoneSettings;

/// The handler, built once per process. Rate limiting is off: it would make an input's
/// outcome depend on the inputs before it.
pub fn handler() -> &'static GtmHandler {
    static HANDLER: OnceLock<GtmHandler> = OnceLock::new();
    HANDLER.get_or_init(|| {
        let shared = Shared::new();
        let mut loader = Loader::new(shared.clone(), ZoneSettings::default());
        loader
            .offer(Payload::Health, include_bytes!("../fixtures/health.json"))
            .expect("the fixture health snapshot loads");
        loader
            .offer(Payload::Config, include_bytes!("../fixtures/config.json"))
            .expect("the fixture config loads");
        GtmHandler::new(Arc::clone(&shared), None).with_udp_limits(UdpLimits {
            rrl: None,
            ..UdpLimits::default()
        })
    })
}

/// A single-threaded runtime for the handler's full path.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

/// The client address of every fuzzed query.
pub fn client() -> SocketAddr {
    "198.51.100.7:53000".parse().expect("an address")
}
