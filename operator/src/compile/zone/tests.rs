//! The zone rules on YAML fixtures; objects are created in document order (the first is the
//! oldest).

use gtm_crds::config::{RecordData, ZoneConfig};
use gtm_crds::manifest::Kind;

use crate::compile::{Compilation, Publication, RejectReason, Verdict, compile};
use crate::inventory::ObjectKey;
use crate::manifests::test_support::loaded;

const POOL: &str = "apiVersion: gtm.kubegtm.io/v1alpha1
kind: AddressPool
metadata: {name: v4}
spec: {type: IPv4, addresses: [{value: 192.0.2.1}]}
---
apiVersion: gtm.kubegtm.io/v1alpha1
kind: AddressPool
metadata: {name: names}
spec: {type: Domain, addresses: [{value: cdn.example.net}]}";

const ZONE: &str = "apiVersion: gtm.kubegtm.io/v1alpha1
kind: GtmZone
metadata: {name: z}
spec:
  zone: GTM.example.com.
  nameservers:
    - {name: NS1.gtm.example.com, addresses: [192.0.2.53, \"2001:db8::53\"]}
    - {name: ns.example.net}
  soa: {rname: ops@example.com, minimum: 60}
  records:
    - {name: _acme-challenge.gtm.example.com., type: TXT, ttl: 60, text: [token]}
    - {name: gtm.example.com, type: MX, mx: [{preference: 10, exchange: mail.example.com}]}
    - {name: www.gtm.example.com, type: TXT, text: [hello]}";

fn compile_in(zones: &[&str], yaml: &str) -> Compilation {
    let loaded = loaded(yaml);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    assert!(loaded.invalid.is_empty(), "{:?}", loaded.invalid);
    let zones: Vec<String> = zones.iter().map(|z| z.to_string()).collect();
    compile(&loaded.inventory, &zones)
}

fn verdict(c: &Compilation, kind: Kind, name: &str) -> Verdict {
    c.verdicts[&ObjectKey::new(kind, "default", name)].clone()
}

fn rejected(c: &Compilation, kind: Kind, name: &str) -> (RejectReason, String) {
    let r = verdict(c, kind, name)
        .accepted
        .expect_err("expected a rejection");
    (r.reason, r.message)
}

fn domain(name: &str, fqdn: &str, record: &str, pool: &str) -> String {
    format!(
        "apiVersion: gtm.kubegtm.io/v1alpha1\nkind: GtmAccessDomain\nmetadata: {{name: {name}}}\nspec: {{domain: {fqdn}, recordType: {record}, pools: [{{name: {pool}}}]}}"
    )
}

fn zone_data(c: &Compilation) -> &ZoneConfig {
    assert_eq!(c.config.zone_data.len(), 1, "{:?}", c.config.zone_data);
    &c.config.zone_data[0]
}

#[test]
fn a_zone_compiles_with_canonical_names_glue_and_records() {
    let c = compile_in(&["gtm.example.com"], ZONE);
    assert_eq!(
        verdict(&c, Kind::GtmZone, "z"),
        Verdict::accepted(Publication::Published)
    );
    let z = zone_data(&c);
    assert_eq!(
        (z.name.as_str(), z.id.as_str()),
        ("gtm.example.com", "default/z")
    );
    assert_eq!(z.nameservers[0].name, "ns1.gtm.example.com");
    assert_eq!(z.nameservers[0].addresses.len(), 2);
    assert!(z.nameservers[1].addresses.is_empty());
    assert_eq!(z.nameserver_ttl, 3600);
    assert_eq!(z.soa.minimum, Some(60));
    assert_eq!(z.records[0].name, "_acme-challenge.gtm.example.com");
    assert_eq!(
        z.records[0].data,
        RecordData::TXT {
            text: vec!["token".into()]
        }
    );
    assert_eq!(z.records[0].ttl, 60);
    assert_eq!(z.records[1].ttl, 300, "the default TTL");
    let glue = z.glue();
    assert_eq!(glue.len(), 2, "one A and one AAAA set for ns1");
    assert!(glue.iter().all(|s| s.name == "ns1.gtm.example.com"));
    c.config
        .check_consistency()
        .expect("compiled configs are consistent");
}

#[test]
fn a_zone_that_is_not_served_or_declared_twice_is_refused() {
    let c = compile_in(&["other.example"], ZONE);
    assert_eq!(
        rejected(&c, Kind::GtmZone, "z").0,
        RejectReason::ZoneNotServed
    );
    assert!(c.config.zone_data.is_empty());

    let second = ZONE.replace("name: z}", "name: z2}");
    let c = compile_in(&["gtm.example.com"], &format!("{ZONE}\n---\n{second}"));
    let (reason, message) = rejected(&c, Kind::GtmZone, "z2");
    assert_eq!(reason, RejectReason::Conflict);
    assert!(message.contains("older GtmZone default/z"), "{message}");
    assert_eq!(zone_data(&c).id, "default/z");
}

#[test]
fn zone_records_take_precedence_over_access_domains_of_their_type_and_cnames() {
    let yaml = [
        POOL.to_string(),
        domain("glue", "ns1.gtm.example.com", "A", "v4"),
        domain("txt-next-to-a", "www.gtm.example.com", "A", "v4"),
        domain("cname", "_acme-challenge.gtm.example.com", "CNAME", "names"),
        domain("mx-name", "gtm.example.com", "A", "v4"),
        ZONE.to_string(),
    ]
    .join("\n---\n");
    let c = compile_in(&["gtm.example.com"], &yaml);
    let (reason, message) = rejected(&c, Kind::GtmAccessDomain, "glue");
    assert_eq!(reason, RejectReason::Conflict);
    assert!(
        message.contains("GtmZone default/z declares a A record"),
        "{message}"
    );
    let (reason, message) = rejected(&c, Kind::GtmAccessDomain, "cname");
    assert_eq!(reason, RejectReason::Conflict);
    assert!(message.contains("owns its name alone"), "{message}");
    // Other types at the same name live side by side, even though the domains are older.
    for other in ["txt-next-to-a", "mx-name"] {
        assert!(
            verdict(&c, Kind::GtmAccessDomain, other).is_accepted(),
            "{other}"
        );
    }
    c.config.check_consistency().unwrap();
}

#[test]
fn records_in_a_child_zone_twice_or_over_glue_are_invalid() {
    let child = ZONE.replace(
        "records:\n",
        "records:\n    - {name: x.eu.gtm.example.com, type: TXT, text: [x]}\n",
    );
    let c = compile_in(&["gtm.example.com", "eu.gtm.example.com"], &child);
    let (reason, message) = rejected(&c, Kind::GtmZone, "z");
    assert_eq!(reason, RejectReason::InvalidRecord);
    assert!(
        message.contains("served zone eu.gtm.example.com"),
        "{message}"
    );

    let twice = ZONE.replace(
        "records:\n",
        "records:\n    - {name: WWW.gtm.example.com, type: TXT, text: [x]}\n",
    );
    let (reason, message) = rejected(
        &compile_in(&["gtm.example.com"], &twice),
        Kind::GtmZone,
        "z",
    );
    assert_eq!(reason, RejectReason::InvalidRecord);
    assert!(message.contains("declared twice"), "{message}");

    let over_glue = ZONE.replace(
        "records:\n",
        "records:\n    - {name: ns1.gtm.example.com, type: A, addresses: [192.0.2.1]}\n",
    );
    let (reason, message) = rejected(
        &compile_in(&["gtm.example.com"], &over_glue),
        Kind::GtmZone,
        "z",
    );
    assert_eq!(reason, RejectReason::InvalidRecord);
    assert!(message.contains("already give it"), "{message}");
}
