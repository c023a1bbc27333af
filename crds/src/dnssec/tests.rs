//! Known answers: the DNSKEY of each key below was derived with `openssl pkey -pubout` (the
//! raw public key after the SubjectPublicKeyInfo header) and its DS computed from that DNSKEY
//! with `dnssec-dsfromkey -2` (BIND 9.18), independently of this crate (`crds/tests/keys`).

use super::*;

/// A P-256 key (`crds/tests/keys`).
const P256_PEM: &str = include_str!("../../tests/keys/p256.pem");
/// An Ed25519 key as OpenSSL writes it (PKCS#8 v1).
const ED25519_PEM: &str = include_str!("../../tests/keys/ed25519.pem");

#[test]
fn a_p256_key_gives_the_ds_bind_computes() {
    let key = ZoneSigningKey::for_zone(
        "GTM.example.com.",
        P256_PEM.as_bytes(),
        DnssecAlgorithm::ECDSAP256SHA256,
    )
    .unwrap();
    assert_eq!(
        key.status(),
        DnssecStatus {
            key_tag: 58220,
            algorithm: 13,
            digest_type: 2,
            digest: "FEE52E5B84EFDC57D29CC033AED157AE9A5F8E5F9BD6181ED9BB0658CB9971A3".into(),
            ds: "gtm.example.com. IN DS 58220 13 2 FEE52E5B84EFDC57D29CC033AED157AE9A5F8E5F9BD6181ED9BB0658CB9971A3".into(),
            dnskey: "gtm.example.com. 3600 IN DNSKEY 257 3 13 Lg6kxou4jfqeodFMNe8TGxw2Rs2APC8ajmGcd1+jng6LVPwYLq9lBnIZhmEnfE2iD3ipf533sA5Zp7wTTkILQQ==".into(),
        }
    );
    assert_eq!(key.key_tag(), 58220);
    assert_eq!(key.dnskey().flags(), CSK_FLAGS);
}

#[test]
fn an_ed25519_key_gives_the_ds_bind_computes() {
    let key = ZoneSigningKey::for_zone(
        "gtm.example.com",
        ED25519_PEM.as_bytes(),
        DnssecAlgorithm::ED25519,
    )
    .unwrap();
    let status = key.status();
    assert_eq!(
        status.ds,
        "gtm.example.com. IN DS 7704 15 2 88B06CB36D21E0283BC971EEDBCE1C98BAB5914BAF2BA35984FC8C7A399DDA3F"
    );
    assert_eq!(
        status.dnskey,
        "gtm.example.com. 3600 IN DNSKEY 257 3 15 1TLnUBwKWhv6942x7PnVo9sECcTdVHhp6sjab7Py6GQ="
    );
    assert_eq!((status.key_tag, status.algorithm), (7704, 15));
}

#[test]
fn a_key_of_the_other_algorithm_is_named_as_such() {
    let zone = "gtm.example.com";
    let error =
        ZoneSigningKey::for_zone(zone, P256_PEM.as_bytes(), DnssecAlgorithm::ED25519).unwrap_err();
    assert_eq!(
        error,
        KeyError::WrongAlgorithm {
            expected: DnssecAlgorithm::ED25519,
            found: DnssecAlgorithm::ECDSAP256SHA256
        }
    );
    let error = ZoneSigningKey::for_zone(
        zone,
        ED25519_PEM.as_bytes(),
        DnssecAlgorithm::ECDSAP256SHA256,
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("an ED25519 key but the zone's dnssec.algorithm is ECDSAP256SHA256"),
        "{error}"
    );
}

#[test]
fn junk_and_damaged_keys_are_refused_without_quoting_them() {
    let zone = "gtm.example.com";
    let alg = DnssecAlgorithm::ECDSAP256SHA256;
    assert_eq!(
        ZoneSigningKey::for_zone(zone, b"junk", alg).unwrap_err(),
        KeyError::NotPem
    );
    // A PEM private key whose body is not a key: the error names neither its lines nor its
    // bytes.
    let body = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgAAAAAAAAAAAAAAAA";
    let damaged = format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n");
    let error = ZoneSigningKey::for_zone(zone, damaged.as_bytes(), alg).unwrap_err();
    assert!(matches!(error, KeyError::Unusable { .. }), "{error:?}");
    assert!(!error.to_string().contains(&body[..16]), "{error}");
    // A line that is no PEM at all in a PEM-looking file.
    let broken = format!("-----BEGIN PRIVATE KEY-----\n{body}!!\n");
    let error = ZoneSigningKey::for_zone(zone, broken.as_bytes(), alg).unwrap_err();
    assert!(!error.to_string().contains(&body[..16]), "{error}");
    assert_eq!(
        ZoneSigningKey::for_zone("bad..name", P256_PEM.as_bytes(), alg).unwrap_err(),
        KeyError::ZoneName("bad..name".into())
    );
}

#[test]
fn key_files_are_named_after_the_zone() {
    assert_eq!(key_file_name("gtm.example.com"), "gtm.example.com.key");
}
