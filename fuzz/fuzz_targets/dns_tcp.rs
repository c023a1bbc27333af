//! A TCP byte stream through the DNS pod: its framing (two-byte lengths) as `tcp.rs` reads it,
//! each message on the fast path or the full path with the TCP limit, which must answer alike.
#![no_main]

use hickory_server::net::xfer::Protocol;
use kube_gtm_fuzz::{client, fast_matches_full, handler, runtime};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|stream: &[u8]| {
    runtime().block_on(async {
        let mut stream = stream;
        let mut message = Vec::new();
        let mut response = Vec::new();
        while let Ok(true) = gtm_dnspod::tcp::read_message(&mut stream, &mut message).await {
            let full =
                gtm_dnspod::server::full_path(handler(), &message, client(), Protocol::Tcp).await;
            if handler().answer_fast(&message, client(), Protocol::Tcp, &mut response) {
                fast_matches_full(&response, full.as_deref());
            }
        }
    });
});
