//! One UDP datagram through the DNS pod as `server.rs` answers it: the fast path for the
//! common queries (plain, EDNS, DO, ECS), else the full path (hickory's decoder, the handler,
//! ECS, EDNS, truncation). Whatever the fast path answers, the full path must answer alike.
#![no_main]

use hickory_server::net::xfer::Protocol;
use kube_gtm_fuzz::{client, fast_matches_full, handler, runtime};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|packet: &[u8]| {
    let handler = handler();
    let cap = usize::from(handler.udp_limits().max_payload);
    let mut response = Vec::with_capacity(512);
    let full = runtime().block_on(gtm_dnspod::server::full_path(
        handler,
        packet,
        client(),
        Protocol::Udp,
    ));
    if let Some(full) = &full {
        assert!(full.len() <= cap, "a UDP response of {} bytes", full.len());
    }
    if handler.answer_fast(packet, client(), Protocol::Udp, &mut response) {
        assert!(response.len() <= cap, "a fast-path answer of {} bytes", response.len());
        fast_matches_full(&response, full.as_deref());
    }
});
