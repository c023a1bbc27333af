use gtm_crds::config::{GtmConfig, HealthSnapshot};
use gtm_crds::manifest::Kind;
use gtm_crds::pool::HealthState;

use super::*;

const POOL: &str = "apiVersion: gtm.kubegtm.io/v1alpha1
kind: AddressPool
metadata: {name: web}
spec:
  type: IPv4
  addresses: [{value: 192.0.2.1}]
";
const DOMAIN: &str = "apiVersion: gtm.kubegtm.io/v1alpha1
kind: GtmAccessDomain
metadata: {name: web}
spec:
  domain: web.gtm.example.com
  recordType: A
  pools: [{name: web}]
";

struct Fixture {
    manifests: tempfile::TempDir,
    output: tempfile::TempDir,
    op: LocalOperator,
}

fn fixture() -> Fixture {
    let manifests = tempfile::tempdir().unwrap();
    let output = tempfile::tempdir().unwrap();
    std::fs::write(
        manifests.path().join("web.yaml"),
        format!("{POOL}---\n{DOMAIN}"),
    )
    .unwrap();
    let op = LocalOperator::new(LocalOptions {
        manifests: manifests.path().into(),
        output: output.path().into(),
        zones: vec!["gtm.example.com".into()],
        namespace: "default".into(),
        probe_concurrency: 16,
        drop_guard: DropGuardSettings::default(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        topology_page: true,
        location: Location {
            name: "local".into(),
            labels: Default::default(),
        },
        locations: output.path().join("locations"),
        stale_after: Duration::from_secs(30),
        dnssec_keys: output.path().join("dnssec"),
    })
    .unwrap();
    Fixture {
        manifests,
        output,
        op,
    }
}

fn published(f: &Fixture) -> GtmConfig {
    GtmConfig::from_json(&std::fs::read(f.output.path().join("config.json")).unwrap()).unwrap()
}

/// Rewrites the fixture's pool with a TCP check on its address, loads it, and returns the
/// check's task id.
async fn checked_web(f: &mut Fixture) -> String {
    std::fs::write(
        f.manifests.path().join("web.yaml"),
        format!(
            "apiVersion: gtm.kubegtm.io/v1alpha1
kind: HealthCheckTemplate
metadata: {{name: tcp}}
spec: {{protocol: TCP}}
---
{}---
{DOMAIN}",
            POOL.replace(
                "  type: IPv4\n",
                "  type: IPv4\n  healthChecks: [{template: tcp, port: 80}]\n"
            )
        ),
    )
    .unwrap();
    f.op.reload(&now()).await.unwrap();
    "default/tcp@192.0.2.1#80".to_string()
}

#[tokio::test]
async fn writes_payloads_and_rewrites_only_on_change() {
    let mut f = fixture();
    let table =
        f.op.reload(&now())
            .await
            .unwrap()
            .expect("first pass prints");
    assert!(table.contains("default/web"), "{table}");
    let config = published(&f);
    assert_eq!(config.generation, 1);
    assert_eq!(config.domains[0].name, "web.gtm.example.com");
    let health = std::fs::read(f.output.path().join("health.json")).unwrap();
    assert_eq!(HealthSnapshot::from_json(&health).unwrap().generation, 1);

    assert_eq!(f.op.reload(&now()).await.unwrap(), None, "nothing changed");
    assert_eq!(published(&f).generation, 1);

    std::fs::write(
        f.manifests.path().join("web.yaml"),
        format!("{}---\n{DOMAIN}", POOL.replace("192.0.2.1", "192.0.2.2")),
    )
    .unwrap();
    f.op.reload(&now()).await.unwrap();
    let config = published(&f);
    assert_eq!(config.generation, 2);
    assert_eq!(config.pools[0].addresses[0].value, "192.0.2.2");
}

#[tokio::test]
async fn invalid_manifests_get_conditions_and_the_rest_keeps_serving() {
    let mut f = fixture();
    std::fs::write(
        f.manifests.path().join("bad.yaml"),
        "apiVersion: gtm.kubegtm.io/v1alpha1
kind: AddressPool
metadata: {name: bad}
spec:
  type: IPv4
  addresses: [{value: not-an-ip}]
---
apiVersion: gtm.kubegtm.io/v1alpha1
kind: GtmAccessDomain
metadata: {name: dangling}
spec:
  domain: other.gtm.example.com
  recordType: A
  pools: [{name: nowhere}]
---
apiVersion: gtm.kubegtm.io/v1alpha1
kind: GtmAccessDomain
metadata: {name: uses-bad}
spec:
  domain: uses-bad.gtm.example.com
  recordType: A
  pools: [{name: bad}]
",
    )
    .unwrap();
    std::fs::write(f.manifests.path().join("broken.yml"), "kind: [unbalanced\n").unwrap();
    let table = f.op.reload(&now()).await.unwrap().unwrap();
    assert!(
        table.contains("Invalid: spec: ")
            && table.contains("every address of an IPv4 pool must be an IPv4 address"),
        "{table}"
    );
    assert!(table.contains("PoolNotFound"), "{table}");
    // A pool that breaks the schema exists: its users are told why it is refused.
    let uses_bad = table
        .lines()
        .find(|l| l.contains("default/uses-bad"))
        .unwrap();
    assert!(
        uses_bad.contains("PoolNotAccepted: AddressPool \"bad\" is not accepted (Invalid: ")
            && uses_bad.contains("every address of an IPv4 pool must be an IPv4 address"),
        "{table}"
    );
    assert!(
        table.contains("problem: broken.yml: not valid YAML"),
        "{table}"
    );
    let config = published(&f);
    assert_eq!(
        config.domains.len(),
        1,
        "the valid domain is still published"
    );
}

#[tokio::test]
async fn an_unreadable_manifest_directory_keeps_the_last_payloads() {
    let mut f = fixture();
    f.op.reload(&now()).await.unwrap();
    let before = published(&f);
    std::fs::remove_dir_all(f.manifests.path()).unwrap();
    assert!(f.op.reload(&now()).await.is_err());
    assert_eq!(published(&f), before);
}

#[tokio::test]
async fn a_restart_rewrites_nothing_unchanged_and_numbers_on() {
    let mut f = fixture();
    f.op.reload(&now()).await.unwrap();
    let mut again = LocalOperator::new(f.op.opts.clone()).unwrap();
    again.reload(&now()).await.unwrap();
    assert_eq!(published(&f).generation, 1, "unchanged: not rewritten");
    std::fs::write(
        f.manifests.path().join("web.yaml"),
        format!("{}---\n{DOMAIN}", POOL.replace("192.0.2.1", "192.0.2.3")),
    )
    .unwrap();
    again.reload(&now()).await.unwrap();
    assert_eq!(published(&f).generation, 2);
}

#[tokio::test]
async fn a_file_that_breaks_keeps_its_objects_served_until_it_is_fixed_or_deleted() {
    let mut f = fixture();
    f.op.reload(&now()).await.unwrap();
    let web = f.manifests.path().join("web.yaml");
    let other = f.manifests.path().join("OTHER.YAML");
    std::fs::write(
        &other,
        format!("{POOL}---\n{DOMAIN}")
            .replace("{name: web}", "{name: other}")
            .replace("web.gtm", "other.gtm"),
    )
    .unwrap();
    f.op.reload(&now()).await.unwrap();
    assert_eq!(
        published(&f).domains.len(),
        2,
        "upper-case extensions are read"
    );

    for (broken, named) in [
        (
            b"kind: [unbalanced\n".to_vec(),
            "problem: web.yaml: not valid YAML",
        ),
        (Vec::new(), "problem: web.yaml: holds no objects now"),
        (
            b"kind: AddressPool\nmetadata: {name: \xff}\n".to_vec(),
            "problem: web.yaml: not UTF-8 text",
        ),
    ] {
        // Rewritten in place, as `cat >` or an editor does.
        std::fs::write(&web, &broken).unwrap();
        let table =
            f.op.reload(&now())
                .await
                .unwrap()
                .unwrap_or_else(|| f.op.table().to_string());
        assert!(table.contains(named), "{table}");
        let names: Vec<String> = published(&f)
            .domains
            .iter()
            .map(|d| d.name.clone())
            .collect();
        assert_eq!(
            names,
            ["other.gtm.example.com", "web.gtm.example.com"],
            "{named}"
        );
    }

    std::fs::remove_file(&web).unwrap();
    let table = f.op.reload(&now()).await.unwrap().unwrap();
    assert!(!table.contains("problem:"), "{table}");
    assert_eq!(
        published(&f).domains.len(),
        1,
        "a deleted file's objects go"
    );
}

#[tokio::test]
async fn deleting_every_manifest_is_held_until_confirmed() {
    let mut f = fixture();
    f.op.reload(&now()).await.unwrap();
    let before = published(&f);
    std::fs::remove_file(f.manifests.path().join("web.yaml")).unwrap();
    let table = f.op.reload(&now()).await.unwrap().unwrap();
    assert!(
        table.contains("problem: publishing held: the change drops 1 of 1 published access domains (default/web)"),
        "{table}"
    );
    assert_eq!(published(&f), before, "the last config keeps serving");

    // A restart on the emptied directory holds too: the published config is what serves.
    let mut again = LocalOperator::new(f.op.opts.clone()).unwrap();
    let table = again.reload(&now()).await.unwrap().unwrap();
    assert!(table.contains("publishing held"), "{table}");
    assert_eq!(published(&f), before);

    let token = table
        .split("confirmed with token ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap();
    std::fs::write(
        f.manifests.path().join(".gtm-confirm-drop"),
        format!("{token}\n"),
    )
    .unwrap();
    let table = again.reload(&now()).await.unwrap().unwrap();
    assert!(!table.contains("publishing held"), "{table}");
    assert!(published(&f).domains.is_empty(), "confirmed: published");
}

#[tokio::test]
async fn while_a_drop_is_held_the_health_of_the_held_config_stays_published() {
    let mut f = fixture();
    let task = checked_web(&mut f).await;
    let down = BTreeMap::from([(
        task.clone(),
        TaskHealth::new(gtm_crds::pool::HealthState::Down, None),
    )]);
    f.op.health_changed(&down, &now()).await.unwrap();
    let health = || {
        HealthSnapshot::from_json(&std::fs::read(f.output.path().join("health.json")).unwrap())
            .unwrap()
    };
    let before = health();
    assert_eq!(before.tasks[&task], gtm_crds::pool::HealthState::Down);

    // Every manifest deleted: held. The prober then drops the task, but the held config still
    // answers with the address; its verdict stays published, or the DNS pod would take the
    // task as Unknown (healthy).
    std::fs::remove_file(f.manifests.path().join("web.yaml")).unwrap();
    let table = f.op.reload(&now()).await.unwrap().unwrap();
    assert!(table.contains("publishing held"), "{table}");
    f.op.health_changed(&BTreeMap::new(), &now()).await.unwrap();
    assert_eq!(health(), before);
}

#[tokio::test]
async fn transitions_are_kept_in_status_json_and_survive_a_restart() {
    let mut f = fixture();
    let task = checked_web(&mut f).await;
    let health = |state| BTreeMap::from([(task.clone(), TaskHealth::new(state, None))]);
    f.op.health_changed(&health(HealthState::Up), &now())
        .await
        .unwrap();
    let table =
        f.op.health_changed(&health(HealthState::Down), &now())
            .await
            .unwrap()
            .unwrap();
    assert!(
        table.contains("last transition ")
            && table.contains(": PoolUnavailable Available -> Unavailable"),
        "{table}"
    );
    let pool_history = |statuses: &BTreeMap<ObjectKey, ObjectStatus>| -> Vec<String> {
        match &statuses[&ObjectKey::new(Kind::AddressPool, "default", "web")] {
            ObjectStatus::Pool(p) => p.history.iter().map(|e| e.reason.clone()).collect(),
            other => panic!("{other:?}"),
        }
    };
    let written = status_file::read(f.output.path());
    assert_eq!(pool_history(&written), ["PoolUnavailable", "AddressDown"]);

    // A restart reads them back: the next transition goes on top, nothing is lost or repeated.
    // Its first pass, before the prober's first view, publishes the verdicts the last run
    // published, not an empty view (which would answer the dead address).
    let mut again = LocalOperator::new(f.op.opts.clone()).unwrap();
    again.reload(&now()).await.unwrap();
    let published_health =
        HealthSnapshot::from_json(&std::fs::read(f.output.path().join("health.json")).unwrap())
            .unwrap();
    assert_eq!(published_health.tasks.get(&task), Some(&HealthState::Down));
    again
        .health_changed(&health(HealthState::Down), &now())
        .await
        .unwrap();
    assert_eq!(
        pool_history(&status_file::read(f.output.path())),
        ["PoolUnavailable", "AddressDown"]
    );
    again
        .health_changed(&health(HealthState::Up), &now())
        .await
        .unwrap();
    assert_eq!(
        pool_history(&status_file::read(f.output.path())),
        [
            "PoolAvailable",
            "AddressUp",
            "PoolUnavailable",
            "AddressDown"
        ]
    );
}

#[tokio::test]
async fn a_signed_zone_shows_its_ds_once_its_key_file_is_there() {
    use crate::zone_keys::tests::{P256_DS, P256_PEM};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
    let mut f = fixture();
    std::fs::write(
        f.manifests.path().join("zone.yaml"),
        "apiVersion: gtm.kubegtm.io/v1alpha1
kind: GtmZone
metadata: {name: zone}
spec:
  zone: gtm.example.com
  dnssec: {algorithm: ECDSAP256SHA256}
",
    )
    .unwrap();
    let table = f.op.reload(&now()).await.unwrap().unwrap();
    fn zone(op: &LocalOperator) -> gtm_crds::GtmZoneStatus {
        match &op.statuses[&ObjectKey::new(Kind::GtmZone, "default", "zone")] {
            ObjectStatus::Zone(z) => z.clone(),
            other => panic!("{other:?}"),
        }
    }
    fn condition(op: &LocalOperator, type_: &str) -> Condition {
        zone(op)
            .conditions
            .into_iter()
            .find(|c| c.type_ == type_)
            .unwrap()
    }
    assert_eq!(zone(&f.op).dnssec, None);
    let key = condition(&f.op, "DnssecKeyReady");
    assert_eq!(
        (key.status.as_str(), key.reason.as_str()),
        ("False", "KeyNotFound")
    );
    let ready = condition(&f.op, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "DnssecKeyNotReady")
    );
    assert!(
        table.contains("DNSSEC key KeyNotFound: no key file"),
        "{table}"
    );
    assert_eq!(
        f.op.keys_changed(&now()).await.unwrap(),
        None,
        "nothing changed"
    );

    let keys = f.output.path().join("dnssec");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(keys.join("gtm.example.com.key"), P256_PEM).unwrap();
    let table =
        f.op.keys_changed(&now())
            .await
            .unwrap()
            .expect("the key is read");
    assert_eq!(zone(&f.op).dnssec.unwrap().ds, P256_DS);
    assert_eq!(condition(&f.op, "DnssecKeyReady").reason, "KeyLoaded");
    assert_eq!(condition(&f.op, "Ready").status, "True");
    assert!(
        table.contains(&format!("signed; parent needs {P256_DS}")),
        "{table}"
    );
    // The private key reaches neither the table nor status.json.
    let saved = std::fs::read_to_string(f.output.path().join(status_file::STATUS_FILE)).unwrap();
    assert!(saved.contains(P256_DS), "{saved}");
    for line in P256_PEM.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!saved.contains(line) && !table.contains(line));
    }
}
