//! The whole GTM loop without a cluster: `gtm-operator local` and `gtm-dnspod` as processes,
//! real DNS over UDP and TCP, real HTTP health checks against real listeners on 127.0.0.x.
//! Elapsed times are printed (run with `--nocapture` to see them), never asserted: speed is
//! measured by `make bench`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use e2e::backend::Listener;
use e2e::browser::Browser;
use e2e::dig::{Dig, dig};
use e2e::dns::{Answer, Transport};
use e2e::local::{LocalGtm, failover_manifests, free_port};
use e2e::wait::{Check, Deadline, wait_for};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

/// Generous: these waits end as soon as the answer is right.
const DEADLINE: Deadline = Deadline {
    timeout: Duration::from_secs(60),
    interval: Duration::from_millis(50),
};

/// Waits until `name` answers exactly `expected` (sorted); returns how long it took.
async fn wait_answer(gtm: &LocalGtm, name: &str, rtype: RecordType, expected: &[&str]) -> Duration {
    gtm.wait_answer(name, rtype, expected, DEADLINE)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
}

fn write(dir: &Path, file: &str, text: &str) {
    let tmp = dir.join(format!(".{file}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(tmp, dir.join(file)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_are_answered_as_the_manifests_say_and_edits_apply() {
    let manifests = tempfile::tempdir().unwrap();
    let output = tempfile::tempdir().unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        // Subdirectories are examples of their own (examples/dnssec needs a key).
        if path.is_dir() {
            continue;
        }
        std::fs::copy(&path, manifests.path().join(path.file_name().unwrap())).unwrap();
    }
    let mut gtm = LocalGtm::start(manifests.path(), output.path()).unwrap();

    // No backend listens for the examples' health checks, so both app pools go down and the
    // domain fails open to its first pool, all addresses.
    wait_answer(
        &gtm,
        "app.gtm.example.com",
        RecordType::A,
        &["127.0.10.1", "127.0.10.2"],
    )
    .await;
    // AlwaysOnline addresses need no check.
    wait_answer(
        &gtm,
        "app.gtm.example.com",
        RecordType::AAAA,
        &["2001:db8:10::1", "2001:db8:20::1"],
    )
    .await;
    // The resolver address 127.0.0.1 matches the internal CIDR source.
    wait_answer(
        &gtm,
        "portal.gtm.example.com",
        RecordType::A,
        &["127.0.70.1"],
    )
    .await;
    // Without a GeoIP database, country sources never match: the default pool answers.
    wait_answer(
        &gtm,
        "video.gtm.example.com",
        RecordType::A,
        &["127.0.82.1"],
    )
    .await;

    for transport in [Transport::Udp, Transport::Tcp] {
        let www = gtm
            .query_over("WWW.gtm.example.com", RecordType::A, transport)
            .await
            .unwrap();
        assert!(www.authoritative, "{www}");
        assert_eq!(
            www.types,
            [RecordType::CNAME],
            "one CNAME for a Domain pool: {www}"
        );
        assert!(
            ["eu.cdn.example.net.", "us.cdn.example.net."].contains(&www.records[0].as_str()),
            "{www}"
        );
        let missing = gtm
            .query_over("nope.gtm.example.com", RecordType::A, transport)
            .await
            .unwrap();
        assert_eq!(missing.rcode, ResponseCode::NXDomain);
        let outside = gtm
            .query_over("example.org", RecordType::A, transport)
            .await
            .unwrap();
        assert_eq!(outside.rcode, ResponseCode::Refused);
    }

    // Sticky: each client network (here an ECS /24) keeps one address; the networks spread.
    let mut seen = std::collections::BTreeSet::new();
    for n in 0..24 {
        let subnet = format!("+subnet=10.1.{n}.0/24");
        let first = wait_dig(&gtm, "cart.gtm.example.com", "A", &[&subnet], |d| {
            d.answer.len() == 1
        })
        .await
        .answer_data();
        for _ in 0..3 {
            let again = dig(gtm.dns, "cart.gtm.example.com", "A", &[&subnet])
                .await
                .unwrap();
            assert_eq!(again.answer_data(), first, "{subnet}");
        }
        seen.extend(first);
    }
    assert!(seen.len() >= 2, "24 networks on one address: {seen:?}");

    // An edit on disk changes the answer.
    let edited = std::fs::read_to_string(manifests.path().join("source-nearest-cidr.yaml"))
        .unwrap()
        .replace("127.0.70.1", "127.0.70.9");
    let start = Instant::now();
    write(manifests.path(), "source-nearest-cidr.yaml", &edited);
    wait_answer(
        &gtm,
        "portal.gtm.example.com",
        RecordType::A,
        &["127.0.70.9"],
    )
    .await;
    println!("manifest edit to new answer: {:?}", start.elapsed());

    // An invalid edit is refused and the last good answer keeps serving.
    write(
        manifests.path(),
        "source-nearest-cidr.yaml",
        &edited.replace("127.0.70.9", "not-an-address"),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let answer: Answer = gtm
        .query("app.gtm.example.com", RecordType::A)
        .await
        .unwrap();
    assert_eq!(answer.rcode, ResponseCode::NoError, "{answer}");
    gtm.check_running().unwrap();
}

/// Two HTTP backends on 127.0.`block`.1 and .2, the [`failover_manifests`] over them, and
/// local mode serving those.
struct FailoverSet {
    primary: Listener,
    _standby: Listener,
    _manifests: tempfile::TempDir,
    _output: tempfile::TempDir,
    gtm: LocalGtm,
    /// The primary's address.
    p: String,
    /// The standby's address.
    s: String,
}

impl FailoverSet {
    async fn start(block: u8) -> Self {
        let primary_addr = SocketAddr::from(([127, 0, block, 1], free_port().unwrap()));
        let standby_addr = SocketAddr::from(([127, 0, block, 2], free_port().unwrap()));
        let primary = Listener::start(primary_addr).await.unwrap();
        let standby = Listener::start(standby_addr).await.unwrap();
        let manifests = tempfile::tempdir().unwrap();
        let output = tempfile::tempdir().unwrap();
        write(
            manifests.path(),
            "failover.yaml",
            &failover_manifests(primary_addr, standby_addr),
        );
        let gtm = LocalGtm::start(manifests.path(), output.path()).unwrap();
        Self {
            primary,
            _standby: standby,
            _manifests: manifests,
            _output: output,
            gtm,
            p: primary_addr.ip().to_string(),
            s: standby_addr.ip().to_string(),
        }
    }
}

/// The distinct addresses `name` answers over `n` queries.
async fn answers_over(gtm: &LocalGtm, name: &str, n: usize) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..n {
        for r in gtm.query(name, RecordType::A).await.unwrap().records {
            if !seen.contains(&r) {
                seen.push(r);
            }
        }
    }
    seen.sort();
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_backend_fails_over_and_recovery_follows_the_sequential_mode() {
    let FailoverSet {
        mut primary,
        mut gtm,
        p,
        s,
        // Bound, so that they live to the end of the test.
        _standby,
        _manifests,
        _output,
    } = FailoverSet::start(91).await;

    wait_answer(&gtm, "pre.gtm.example.com", RecordType::A, &[&p]).await;
    wait_answer(&gtm, "non.gtm.example.com", RecordType::A, &[&p]).await;
    assert_eq!(
        answers_over(&gtm, "weighted.gtm.example.com", 60).await,
        [p.clone(), s.clone()]
    );

    // Kill the primary: both sequential domains move to the standby, and the weighted pool
    // answers only the survivor. Budget: interval (1 s) x failure threshold (1) + 1 s.
    primary.kill().await;
    let failover = wait_answer(&gtm, "pre.gtm.example.com", RecordType::A, &[&s]).await;
    println!("primary killed to answer on standby: {failover:?}");
    wait_answer(&gtm, "non.gtm.example.com", RecordType::A, &[&s]).await;
    assert_eq!(
        answers_over(&gtm, "weighted.gtm.example.com", 40).await,
        std::slice::from_ref(&s)
    );

    // Restart it: the preemptive domain returns, the non-preemptive one stays.
    primary.restart().await.unwrap();
    let failback = wait_answer(&gtm, "pre.gtm.example.com", RecordType::A, &[&p]).await;
    println!("primary restarted to answer on primary: {failback:?}");
    assert_eq!(
        gtm.query("non.gtm.example.com", RecordType::A)
            .await
            .unwrap()
            .records,
        std::slice::from_ref(&s),
        "NonPreemptive stays on the standby after the primary recovers"
    );
    let both = [p, s];
    wait_for(
        "the weighted pool to answer both again",
        DEADLINE,
        || async {
            let seen = answers_over(&gtm, "weighted.gtm.example.com", 40).await;
            anyhow::Ok(if seen == both {
                Check::Ready(())
            } else {
                Check::Pending(format!("{seen:?}"))
            })
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    gtm.check_running().unwrap();
}

/// Waits until `dig` gets an answer for `name` `rtype` that `ready` accepts; returns it.
async fn wait_dig(
    gtm: &LocalGtm,
    name: &str,
    rtype: &str,
    options: &[&str],
    ready: impl Fn(&Dig) -> bool,
) -> Dig {
    e2e::dig::wait_dig(gtm.dns, name, rtype, options, DEADLINE, ready).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gtm_zone_makes_the_delegation_resolve_and_serves_its_records_to_dig() {
    let manifests = tempfile::tempdir().unwrap();
    let output = tempfile::tempdir().unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let zone = std::fs::read_to_string(examples.join("zone.yaml")).unwrap();
    write(manifests.path(), "zone.yaml", &zone);
    let gtm = LocalGtm::start(manifests.path(), output.path()).unwrap();

    // The apex NS answer carries the glue, over EDNS (full path) and plain UDP (fast path).
    for options in [&[][..], &["+noedns"][..], &["+tcp"][..]] {
        let ns = wait_dig(&gtm, "gtm.example.com", "NS", options, |d| {
            d.answer.len() == 2
        })
        .await;
        assert!(ns.flag("aa") && !ns.flag("tc"), "{ns:?}");
        assert_eq!(
            ns.answer,
            [
                "gtm.example.com. 3600 IN NS ns1.gtm.example.com.",
                "gtm.example.com. 3600 IN NS ns2.gtm.example.com."
            ]
        );
        assert_eq!(
            ns.additional,
            [
                "ns1.gtm.example.com. 3600 IN A 127.0.0.1",
                "ns1.gtm.example.com. 3600 IN AAAA ::1",
                "ns2.gtm.example.com. 3600 IN A 127.0.0.2"
            ],
            "{options:?}"
        );
    }
    // The name servers resolve inside their own zone, whatever the case of the question.
    let ns1 = dig(gtm.dns, "NS1.Gtm.Example.COM", "A", &[]).await.unwrap();
    assert_eq!(
        (ns1.status.as_str(), ns1.answer_data()),
        ("NOERROR", vec!["127.0.0.1".to_string()])
    );

    let soa = dig(gtm.dns, "gtm.example.com", "SOA", &[]).await.unwrap();
    let data = soa.answer_data();
    let fields: Vec<&str> = data[0].split(' ').collect();
    assert_eq!(
        fields[..2],
        ["ns1.gtm.example.com.", "hostmaster.example.com."]
    );
    assert_eq!(fields[6], "60", "SOA minimum from the GtmZone");
    let serial: u32 = fields[2].parse().unwrap();
    assert!(serial > 1_700_000_000, "a Unix-time serial: {serial}");

    let acme = dig(gtm.dns, "_acme-challenge.gtm.example.com", "TXT", &[])
        .await
        .unwrap();
    assert_eq!(
        acme.answer,
        ["_acme-challenge.gtm.example.com. 60 IN TXT \"gfj9Xq...Rg85nM\""]
    );
    let any = dig(gtm.dns, "_acme-challenge.gtm.example.com", "ANY", &[])
        .await
        .unwrap();
    assert_eq!(any.answer, acme.answer, "ANY gets the one RRset");
    let txt = dig(gtm.dns, "gtm.example.com", "TXT", &["+noedns"])
        .await
        .unwrap();
    assert_eq!(txt.answer.len(), 2);
    let mx = dig(gtm.dns, "gtm.example.com", "MX", &[]).await.unwrap();
    assert_eq!(mx.answer_data(), ["10 mail.example.com."]);
    let srv = dig(gtm.dns, "_sip._udp.gtm.example.com", "SRV", &[])
        .await
        .unwrap();
    assert_eq!(
        srv.answer_data(),
        [
            "10 60 5060 sip1.gtm.example.com.",
            "10 40 5060 sip2.example.net."
        ]
    );
    assert_eq!(
        srv.additional,
        ["sip1.gtm.example.com. 300 IN A 192.0.2.50"],
        "the in-zone target's address"
    );
    let caa = dig(gtm.dns, "gtm.example.com", "CAA", &[]).await.unwrap();
    assert_eq!(
        caa.answer_data(),
        [
            "0 issue \"letsencrypt.org\"",
            "128 iodef \"mailto:security@example.com\""
        ]
    );

    // NODATA and NXDOMAIN carry the SOA, whose TTL is the zone's negative TTL.
    for (name, status) in [
        ("ns1.gtm.example.com", "NOERROR"),
        ("_udp.gtm.example.com", "NOERROR"),
        ("nope.gtm.example.com", "NXDOMAIN"),
    ] {
        for options in [&[][..], &["+noedns"][..]] {
            let d = dig(gtm.dns, name, "TXT", options).await.unwrap();
            assert_eq!(d.status, status, "{name} {options:?}");
            assert!(d.answer.is_empty() && d.flag("aa"), "{d:?}");
            assert!(
                d.authority[0].starts_with("gtm.example.com. 60 IN SOA"),
                "{d:?}"
            );
        }
    }

    // A record set too large for UDP is truncated (TC) and comes whole over TCP; an edit of
    // the GtmZone is followed.
    let texts: Vec<String> = (0..40)
        .map(|i| format!("\"{i:02}{}\"", "t".repeat(98)))
        .collect();
    let edited = zone.replace("gfj9Xq...Rg85nM", "new-token").replace(
        "  records:\n",
        &format!(
            "  records:\n    - name: big.gtm.example.com\n      type: TXT\n      text: [{}]\n",
            texts.join(", ")
        ),
    );
    write(manifests.path(), "zone.yaml", &edited);
    wait_dig(&gtm, "_acme-challenge.gtm.example.com", "TXT", &[], |d| {
        d.answer_data() == ["\"new-token\""]
    })
    .await;
    let soa = dig(gtm.dns, "gtm.example.com", "SOA", &[]).await.unwrap();
    let edited_serial: u32 = soa.answer_data()[0]
        .split(' ')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    assert!(edited_serial > serial, "{edited_serial} follows {serial}");
    for options in [&["+noedns", "+ignore"][..], &["+ignore"][..]] {
        let cut = dig(gtm.dns, "big.gtm.example.com", "TXT", options)
            .await
            .unwrap();
        assert!(
            cut.flag("tc") && cut.answer.len() < 40,
            "{options:?}: {cut:?}"
        );
    }
    let whole = dig(gtm.dns, "big.gtm.example.com", "TXT", &["+tcp"])
        .await
        .unwrap();
    assert!(!whole.flag("tc"));
    assert_eq!(whole.answer.len(), 40);
}

/// Waits until the topology page in `browser` shows `domain` (`namespace/name`) in `state`.
async fn wait_page_state(browser: &mut Browser, domain: &str, state: &str) -> Duration {
    let start = Instant::now();
    let expression =
        format!("document.querySelector('[data-domain=\"{domain}\"]')?.dataset.state ?? null");
    let mut seen = serde_json::Value::Null;
    while start.elapsed() < DEADLINE.timeout {
        seen = browser.eval(&expression).await.unwrap();
        if seen == state {
            return start.elapsed();
        }
        browser.check_running().unwrap();
        tokio::time::sleep(DEADLINE.interval).await;
    }
    panic!(
        "the page did not show {domain} {state} within {:?}: {seen}",
        DEADLINE.timeout
    );
}

/// The operator's topology page in headless Chromium: it shows the answer the DNS pod gives,
/// and when a backend dies it shows the failover live, without a reload. With
/// `GTM_PAGE_SCREENSHOT=<path>` it also saves a screenshot of the failed-over page there (the
/// one in docs/ is made so).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_topology_page_shows_a_failover_live_in_a_real_browser() {
    let FailoverSet {
        mut primary,
        mut gtm,
        p,
        s,
        // Bound, so that they live to the end of the test.
        _standby,
        _manifests,
        _output,
    } = FailoverSet::start(92).await;
    wait_answer(&gtm, "pre.gtm.example.com", RecordType::A, &[&p]).await;

    let url = format!("http://{}/", gtm.operator_http);
    let mut browser = Browser::open(&url, 1280, 1000)
        .await
        .unwrap_or_else(|e| panic!("headless Chromium (scripts/install-test-tools.sh): {e:#}"));
    wait_page_state(&mut browser, "default/pre", "Healthy").await;
    // A reload would wipe this.
    browser.eval("window.kubeGtmNoReload = 1").await.unwrap();

    primary.kill().await;
    wait_answer(&gtm, "pre.gtm.example.com", RecordType::A, &[&s]).await;
    let shown = wait_page_state(&mut browser, "default/pre", "FailedOver").await;
    println!("answer on standby to page showing the failover: {shown:?}");
    let page = |selector: &str, property: &str| {
        format!(
            "document.querySelector('[data-domain=\"default/pre\"] {selector}')?.{property} ?? null"
        )
    };
    assert_eq!(
        browser.eval("window.kubeGtmNoReload").await.unwrap(),
        1,
        "the page updated without a reload"
    );
    for (selector, property, expected) in [
        ("[data-pool=\"standby\"]", "dataset.answering", "true"),
        (
            "[data-pool=\"primary\"]",
            "dataset.poolState",
            "Unavailable",
        ),
        ("[data-pool=\"primary\"]", "dataset.answering", "false"),
        (
            "[data-history=\"default/pre\"] li strong",
            "textContent",
            "Failover",
        ),
    ] {
        assert_eq!(
            browser.eval(&page(selector, property)).await.unwrap(),
            expected,
            "{selector} {property}"
        );
    }
    let error = browser
        .eval(&page("[data-pool=\"primary\"] .error", "textContent"))
        .await
        .unwrap();
    assert!(
        error.as_str().is_some_and(|e| !e.is_empty()),
        "the failed check's error is shown: {error}"
    );
    assert_eq!(
        browser
            .eval("document.getElementById('live').dataset.live")
            .await
            .unwrap(),
        "live"
    );
    if let Ok(path) = std::env::var("GTM_PAGE_SCREENSHOT") {
        browser
            .eval("document.querySelectorAll('details').forEach(d => d.open = true)")
            .await
            .unwrap();
        browser.screenshot(Path::new(&path)).await.unwrap();
    }
    gtm.check_running().unwrap();
    browser.check_running().unwrap();
}
