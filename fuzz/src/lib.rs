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

/// Asserts that the fast path's `fast` response says what the full path's `full` says: the
/// same header, question, sections (their records' owners, types and TTLs; the data may differ
/// where a pool picks at random; owners compared without case, as the fast path points into
/// the question as asked) and OPT record.
pub fn fast_matches_full(fast: &[u8], full: Option<&[u8]>) {
    use hickory_server::proto::op::Message;
    let full = full.expect("the full path answers what the fast path answers");
    let shape = |bytes: &[u8]| {
        let m = Message::from_vec(bytes).expect("a decodable response");
        let records = |rs: &[hickory_server::proto::rr::Record]| {
            rs.iter()
                .map(|r| (r.name.to_lowercase().to_string(), r.record_type(), r.ttl))
                .collect::<Vec<_>>()
        };
        format!(
            "{:?} {:?} {:?} {:?} {:?} {:?}",
            m.metadata,
            m.queries,
            records(&m.answers),
            records(&m.authorities),
            records(&m.additionals),
            m.edns
        )
    };
    assert_eq!(shape(fast), shape(full));
}
