//! DNSSEC online signing end to end, in local mode over real sockets: the signed `GtmZone` of
//! `examples/dnssec` answered by `gtm-dnspod`, checked by two validators holding the zone's trust anchor:
//! `unbound` resolving through a stub zone (the AD bit says "secure") and `delv`. A dynamic
//! answer, a failover answer, a name that does not exist and a type a name lacks all
//! validate; queries without DO stay unsigned.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use e2e::backend::Listener;
use e2e::dig::{Dig, dig};
use e2e::local::{LocalGtm, failover_manifests, free_port};
use e2e::validators::{Unbound, delv};
use e2e::wait::{Check, Deadline, wait_for};

const DEADLINE: Deadline = Deadline {
    timeout: Duration::from_secs(60),
    interval: Duration::from_millis(100),
};

const ZONE: &str = "gtm.example.com";

/// The zone's key: a P-256 key as `openssl genpkey -algorithm EC -pkeyopt
/// ec_paramgen_curve:P-256` writes it.
const KEY: &str = include_str!("../../crds/tests/keys/p256.pem");

/// Asks `server` with `dig` until `ready` holds.
async fn wait_dig(
    server: SocketAddr,
    name: &str,
    rtype: &str,
    options: &[&str],
    ready: impl Fn(&Dig) -> bool,
) -> Dig {
    e2e::dig::wait_dig(server, name, rtype, options, DEADLINE, ready).await
}

/// The records of `section` of type `rtype` (`name ttl class type data` lines).
fn of_type<'d>(section: &'d [String], rtype: &str) -> Vec<&'d str> {
    section
        .iter()
        .filter(|l| l.split(' ').nth(3) == Some(rtype))
        .map(String::as_str)
        .collect()
}

/// A secure positive answer through the validating resolver: NOERROR, AD, the records of
/// `rtype` and their signature.
fn secure_answer(d: &Dig, rtype: &str) -> bool {
    d.status == "NOERROR"
        && d.flag("ad")
        && !of_type(&d.answer, rtype).is_empty()
        && !of_type(&d.answer, "RRSIG").is_empty()
}

/// A secure negative answer: NOERROR (compact denial), AD, nothing in the answer, the
/// signed SOA and the NSEC at the name in the authority section.
fn secure_denial(d: &Dig, name: &str) -> bool {
    d.status == "NOERROR"
        && d.flag("ad")
        && d.answer.is_empty()
        && of_type(&d.authority, "NSEC")
            .iter()
            .any(|l| l.starts_with(&format!("{name}. ")))
}

/// `status.dnssec.ds` of the example's `GtmZone` in local mode's `status.json`, once there.
fn zone_ds(output: &Path) -> Option<String> {
    let text = std::fs::read_to_string(output.join("status.json")).ok()?;
    let file: serde_json::Value = serde_json::from_str(&text).ok()?;
    file["objects"]
        .as_array()?
        .iter()
        .find(|o| o["kind"] == "GtmZone")?["status"]["dnssec"]["ds"]
        .as_str()
        .map(str::to_string)
}

fn write(dir: &Path, file: &str, text: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(file), text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_zone_validates_through_unbound_and_delv_across_a_failover() {
    let primary_addr = SocketAddr::from(([127, 0, 73, 1], free_port().unwrap()));
    let standby_addr = SocketAddr::from(([127, 0, 73, 2], free_port().unwrap()));
    let mut primary = Listener::start(primary_addr).await.unwrap();
    let _standby = Listener::start(standby_addr).await.unwrap();
    let manifest_dir = tempfile::tempdir().unwrap();
    let output = tempfile::tempdir().unwrap();
    let validators = tempfile::tempdir().unwrap();
    // The example's signed zone and its round-robin domain, and a failover domain (`pre`).
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/dnssec/zone.yaml");
    write(
        manifest_dir.path(),
        "zone.yaml",
        &std::fs::read_to_string(example).unwrap(),
    );
    write(
        manifest_dir.path(),
        "failover.yaml",
        &failover_manifests(primary_addr, standby_addr),
    );
    // The DNS pod reads `<config-dir>/dnssec/<zone>.key` in local mode.
    write(&output.path().join("dnssec"), &format!("{ZONE}.key"), KEY);
    let gtm = LocalGtm::start(manifest_dir.path(), output.path()).unwrap();
    let (p, s) = (primary_addr.ip().to_string(), standby_addr.ip().to_string());

    // The DNSKEY at the apex, signed; the trust anchor of both validators.
    let keys = wait_dig(gtm.dns, ZONE, "DNSKEY", &["+dnssec"], |d| {
        d.flag("aa") && of_type(&d.answer, "RRSIG").len() == 1
    })
    .await;
    let dnskey = of_type(&keys.answer, "DNSKEY")[0]
        .splitn(5, ' ')
        .nth(4)
        .unwrap()
        .to_string();
    assert!(dnskey.starts_with("257 3 13 "), "a CSK: {dnskey}");
    // The operator shows the DS of the served DNSKEY in the zone's status (status.json here).
    let ds = e2e::ds::ds_of_dnskey(ZONE, &dnskey).unwrap();
    wait_for(
        "status.dnssec.ds of the served DNSKEY",
        DEADLINE,
        || async {
            Ok::<_, std::convert::Infallible>(match zone_ds(output.path()) {
                Some(shown) if shown == ds => Check::Ready(()),
                shown => Check::Pending(format!("status.dnssec.ds {shown:?}, served {ds}")),
            })
        },
    )
    .await
    .unwrap();
    let unbound = Unbound::start(validators.path(), ZONE, &dnskey, gtm.dns)
        .await
        .unwrap();
    let secure = ["+rec", "+dnssec"];

    // A dynamic answer (two of three addresses per query) and the health-driven one.
    wait_dig(unbound.addr, &format!("www.{ZONE}"), "A", &secure, |d| {
        secure_answer(d, "A") && of_type(&d.answer, "A").len() == 2
    })
    .await;
    wait_dig(unbound.addr, &format!("pre.{ZONE}"), "A", &secure, |d| {
        secure_answer(d, "A") && of_type(&d.answer, "A")[0].ends_with(&p)
    })
    .await;
    // Static data, the apex NS with its glue.
    wait_dig(unbound.addr, &format!("txt.{ZONE}"), "TXT", &secure, |d| {
        secure_answer(d, "TXT")
    })
    .await;
    wait_dig(unbound.addr, ZONE, "NS", &secure, |d| {
        secure_answer(d, "NS")
    })
    .await;
    // Denial: a name that does not exist, and a type a name lacks.
    let nope = format!("nope.{ZONE}");
    wait_dig(unbound.addr, &nope, "A", &secure, |d| {
        secure_denial(d, &nope)
    })
    .await;
    let www = format!("www.{ZONE}");
    wait_dig(unbound.addr, &www, "AAAA", &secure, |d| {
        secure_denial(d, &www)
    })
    .await;
    // The DNS pod's own proof of the missing name: NXNAME in the NSEC's types.
    let direct = dig(gtm.dns, &nope, "A", &["+dnssec"]).await.unwrap();
    assert!(
        of_type(&direct.authority, "NSEC")[0].ends_with("RRSIG NSEC TYPE128"),
        "{direct:?}"
    );

    // Failover: the primary stops answering its health check, the signed answer moves.
    primary.kill().await;
    wait_dig(unbound.addr, &format!("pre.{ZONE}"), "A", &secure, |d| {
        secure_answer(d, "A") && of_type(&d.answer, "A")[0].ends_with(&s)
    })
    .await;

    // delv, BIND's validator, agrees on every kind of answer.
    for (name, rtype, verdict) in [
        (format!("pre.{ZONE}"), "A", "fully validated"),
        (format!("www.{ZONE}"), "A", "fully validated"),
        (ZONE.to_string(), "DNSKEY", "fully validated"),
        (nope.clone(), "A", "negative response, fully validated"),
        (www.clone(), "AAAA", "negative response, fully validated"),
    ] {
        let checked = delv(validators.path(), gtm.dns, ZONE, &dnskey, &name, rtype)
            .await
            .unwrap();
        assert_eq!(
            checked.verdict, verdict,
            "delv {name} {rtype}:\n{}",
            checked.output
        );
    }

    // Without DO nothing is signed, and the DO bit is echoed only when set (RFC 3225).
    let plain = dig(gtm.dns, &www, "A", &[]).await.unwrap();
    assert!(of_type(&plain.answer, "RRSIG").is_empty(), "{plain:?}");
    let unsigned_denial = dig(gtm.dns, &nope, "A", &[]).await.unwrap();
    assert_eq!(unsigned_denial.status, "NXDOMAIN");
    assert!(of_type(&unsigned_denial.authority, "NSEC").is_empty());
}
