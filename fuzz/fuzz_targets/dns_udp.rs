//! One UDP datagram through the DNS pod as `server.rs` answers it: the fast path for plain
//! queries, else the full path (hickory's decoder, the handler, ECS, EDNS, truncation).
#![no_main]

use hickory_server::net::xfer::Protocol;
use kube_gtm_fuzz::{client, handler, runtime};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|packet: &[u8]| {
    let handler = handler();
    let mut response = Vec::with_capacity(512);
    if handler.answer_plain_udp(packet, client(), &mut response) {
        assert!(response.len() <= 512, "a fast-path answer above 512 bytes");
        return;
    }
    if let Some(response) = runtime().block_on(gtm_dnspod::server::full_path(
        handler,
        packet,
        client(),
        Protocol::Udp,
    )) {
        let cap = usize::from(handler.udp_limits().max_payload);
        assert!(
            response.len() <= cap,
            "a UDP response of {} bytes",
            response.len()
        );
    }
});
