//! Payload bytes as the DNS pod's loader takes them: `health.json`, then `config.json` (parse,
//! validate, compile, swap). A refusal is fine; a panic is not.
#![no_main]

use gtm_crds::parts::Payload;
use gtm_dnspod::state::{Loader, Shared};
use gtm_dnspod::zone::ZoneSettings;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let shared = Shared::new();
    let mut loader = Loader::new(shared, ZoneSettings::default());
    let _ = loader.offer(Payload::Health, bytes);
    let _ = loader.offer(Payload::Config, bytes);
    // And health over a config that loaded, as every update after the first.
    let mut loader = Loader::new(Shared::new(), ZoneSettings::default());
    loader
        .offer(Payload::Config, include_bytes!("../fixtures/config.json"))
        .expect("the fixture config loads");
    let _ = loader.offer(Payload::Health, bytes);
});
