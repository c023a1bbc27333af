//! ConfigMap parts as the DNS pod reassembles them (`crds/src/parts.rs`): arbitrary part
//! annotations, digests and data never panic; a payload split and reassembled is itself.
#![no_main]

use gtm_crds::parts::{Part, assemble, parse_part_annotation, split};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (Vec<(String, String, String)>, String, u16)| {
    let (raw, payload, max) = input;
    let parts: Vec<Part> = raw
        .into_iter()
        .filter_map(|(annotation, digest, data)| {
            let (index, count) = parse_part_annotation(&annotation)?;
            Some(Part {
                index,
                count,
                digest,
                data,
            })
        })
        .collect();
    let _ = assemble(&parts);
    // `split` asks for room for any one character (4 bytes).
    let split = split(&payload, usize::from(max).max(4));
    assert_eq!(assemble(&split).expect("split parts assemble"), payload);
});
