use super::*;

/// The test key of `crds/tests/keys` and the DS `dnssec-dsfromkey` computes for it.
pub(crate) const P256_PEM: &str = include_str!("../../../crds/tests/keys/p256.pem");
pub(crate) const P256_DS: &str = "gtm.example.com. IN DS 58220 13 2 FEE52E5B84EFDC57D29CC033AED157AE9A5F8E5F9BD6181ED9BB0658CB9971A3";
const ED25519_PEM: &str = include_str!("../../../crds/tests/keys/ed25519.pem");

const SIGNED: &[(&str, DnssecAlgorithm)] = &[("gtm.example.com", DnssecAlgorithm::ECDSAP256SHA256)];

fn problem(state: &KeyState) -> (&'static str, &str) {
    match state {
        KeyState::Problem { reason, message } => (reason, message.as_str()),
        KeyState::Ready(s) => panic!("ready: {s:?}"),
    }
}

#[test]
fn a_key_file_gives_the_ds_and_its_absence_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let states = read_dir(dir.path(), SIGNED);
    let (reason, message) = problem(&states["gtm.example.com"]);
    assert_eq!(reason, reason::KEY_NOT_FOUND);
    assert!(
        message.starts_with(&format!(
            "no key file {}/gtm.example.com.key: make the zone's key (`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out gtm.example.com.key`)",
            dir.path().display()
        )),
        "{message}"
    );
    assert!(states["gtm.example.com"].refused_by_dns_pods());

    std::fs::write(dir.path().join("gtm.example.com.key"), P256_PEM).unwrap();
    let states = read_dir(dir.path(), SIGNED);
    let KeyState::Ready(status) = &states["gtm.example.com"] else {
        panic!("{states:?}")
    };
    assert_eq!(status.ds, P256_DS);
    assert_eq!(status.key_tag, 58220);
    assert!(!states["gtm.example.com"].refused_by_dns_pods());
}

#[test]
fn a_wrong_or_broken_key_is_named_and_never_quoted() {
    let found = |pem: &str| Lookup::Found {
        from: "Secret gtm/keys item gtm.example.com.key".into(),
        pem: pem.as_bytes().to_vec(),
    };
    let states = key_states(SIGNED, |_| found(ED25519_PEM));
    let (reason, message) = problem(&states["gtm.example.com"]);
    assert_eq!(reason, reason::ALGORITHM_MISMATCH);
    assert!(
        message.starts_with("Secret gtm/keys item gtm.example.com.key: the key is an ED25519 key but the zone's dnssec.algorithm is ECDSAP256SHA256"),
        "{message}"
    );
    // A P-256 key cut short: its lines are not in the message.
    let cut: String = P256_PEM.lines().take(3).collect::<Vec<_>>().join("\n");
    let broken = format!("{cut}\n-----END PRIVATE KEY-----\n");
    let states = key_states(SIGNED, |_| found(&broken));
    let (reason, message) = problem(&states["gtm.example.com"]);
    assert_eq!(reason, reason::KEY_UNREADABLE);
    for line in P256_PEM.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!message.contains(&line[..20]), "{message}");
    }
}

#[test]
fn every_zone_is_looked_up_by_its_item_and_without_a_source_none_is_refused() {
    let signed = [
        ("a.example", DnssecAlgorithm::ED25519),
        ("b.example", DnssecAlgorithm::ECDSAP256SHA256),
    ];
    let mut asked = Vec::new();
    let states = key_states(&signed, |item| {
        asked.push(item.to_string());
        Lookup::Unreadable("reading Secret gtm/keys: forbidden".into())
    });
    assert_eq!(asked, ["a.example.key", "b.example.key"]);
    assert_eq!(problem(&states["a.example"]).0, reason::KEY_UNREADABLE);
    let unset = unset_states(&signed);
    assert_eq!(problem(&unset["b.example"]).0, reason::KEY_SOURCE_NOT_SET);
    assert!(!unset["b.example"].refused_by_dns_pods());
}
