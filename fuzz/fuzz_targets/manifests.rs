//! A manifest file's bytes as the operator's local mode loads them: objects, rejections or
//! problems named after the file, never a panic.
#![no_main]

use std::sync::OnceLock;

use gtm_crds::manifest::ManifestValidator;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    static VALIDATOR: OnceLock<ManifestValidator> = OnceLock::new();
    let validator = VALIDATOR.get_or_init(ManifestValidator::new);
    let now = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
    let _ = gtm_operator::manifests::load_file("fuzz.yaml", bytes, "default", validator, &now);
});
