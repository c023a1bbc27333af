//! A probe location's reports as the operator reads them (`crds/src/location.rs`): arbitrary
//! bytes as verdicts and as a heartbeat never panic; verdicts that parse survive a round trip.
#![no_main]

use gtm_crds::location::{Heartbeat, Verdicts};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = Heartbeat::from_json(bytes);
    if let Ok(verdicts) = Verdicts::from_json(bytes) {
        let again = Verdicts::from_json(verdicts.to_json().as_bytes()).expect("its own JSON parses");
        assert_eq!(again, verdicts);
    }
});
