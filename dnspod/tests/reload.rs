//! Local mode under change: a client queries without pause while the config directory is
//! rewritten 100 times, invalid payloads included. Every query must get a right answer.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gtm_crds::config::{GtmConfig, SCHEMA_VERSION};
use gtm_dnspod::config_source::dir;
use gtm_dnspod::handler::GtmHandler;
use gtm_dnspod::server::DnsServer;
use gtm_dnspod::state::{Loader, Shared};
use gtm_dnspod::udp_limits::UdpLimits;
use gtm_dnspod::zone::ZoneSettings;
use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::RecordType;
use support::files::*;
use support::fixtures::*;
use support::*;
use tokio_util::sync::CancellationToken;

const WWW: &str = "www.gtm.example.com.";

/// Generation `g` answers www with 10.0.x.y derived from `g`.
fn generation(g: u64) -> (GtmConfig, String) {
    let ip = format!("10.0.{}.{}", g / 256, g % 256);
    let c = www_only(g, &ip);
    (c, ip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_replacements_with_invalid_payloads_never_fail_a_query() {
    let tmp = tempdir();
    let dir = tmp.as_path();
    let (first, first_ip) = generation(1);
    write_atomically(dir, "config.json", &first.to_json());

    let shared = Shared::new();
    let mut dns = DnsServer::bind(
        &["127.0.0.1:0".parse().unwrap()],
        // Rate limiting off: the client queries as fast as it can from one address.
        GtmHandler::new(shared.clone(), None).with_udp_limits(UdpLimits {
            rrl: None,
            ..UdpLimits::default()
        }),
    )
    .await
    .unwrap();
    let addr = dns.addrs[0];
    let stop = CancellationToken::new();
    let source = tokio::spawn(dir::follow(
        dir.to_path_buf(),
        Loader::new(shared.clone(), ZoneSettings::default()),
        Default::default(),
        Default::default(),
        stop.clone(),
    ));
    wait_for(|| shared.is_ready()).await;

    let mut valid: HashSet<String> = HashSet::from([first_ip]);
    let mut last_ip = String::new();
    let running = Arc::new(AtomicBool::new(true));
    let (valid_tx, valid_rx) = std::sync::mpsc::channel::<String>();
    let client = {
        let running = running.clone();
        tokio::spawn(async move {
            let mut answers = Vec::new();
            let mut i = 0u64;
            while running.load(Ordering::Relaxed) {
                let t = if i % 4 == 3 {
                    Transport::Tcp
                } else {
                    Transport::Udp
                };
                let r = t.exchange(addr, &query(WWW, RecordType::A)).await;
                assert_eq!(r.metadata.response_code, ResponseCode::NoError);
                assert_eq!(r.answers.len(), 1, "{r:?}");
                answers.push(data(&r.answers).remove(0));
                i += 1;
            }
            answers
        })
    };

    for i in 0..100u64 {
        let g = i + 2;
        // Each write is waited for until the loader has judged it, so none is coalesced away.
        let (payload, result) = match i % 5 {
            1..=3 => ("config", "failure"),
            4 => ("health", "success"),
            _ => ("config", "success"),
        };
        let before = reloads(&shared, payload, result);
        match i % 5 {
            // Not JSON at all.
            1 => write_atomically(dir, "config.json", b"{\"schemaVersion\":"),
            // A future major version.
            2 => {
                let (c, _) = generation(g);
                let text = String::from_utf8(c.to_json())
                    .unwrap()
                    .replace(&format!("\"{SCHEMA_VERSION}\""), "\"9.0\"");
                write_atomically(dir, "config.json", text.as_bytes());
            }
            // Inconsistent: a domain referencing a pool that is not there.
            3 => {
                let (mut c, _) = generation(g);
                c.pools.clear();
                let text = serde_json::to_vec(&c).unwrap();
                write_atomically(dir, "config.json", &text);
            }
            // A health update (valid; nothing is down).
            4 => write_atomically(
                dir,
                "health.json",
                &serde_json::to_vec(&health_down(g, &[])).unwrap(),
            ),
            _ => {
                let (c, ip) = generation(g);
                valid.insert(ip.clone());
                valid_tx.send(ip.clone()).unwrap();
                last_ip = ip;
                write_atomically(dir, "config.json", &c.to_json());
            }
        }
        wait_for(|| reloads(&shared, payload, result) > before).await;
    }
    drop(valid_tx);
    // The last valid config ends up served.
    let want = last_ip.clone();
    let mut served = false;
    for _ in 0..500 {
        let r = udp(addr, &query(WWW, RecordType::A)).await;
        if data(&r.answers) == vec![want.clone()] {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(served, "the last valid config is served");
    running.store(false, Ordering::Relaxed);
    let answers = client.await.unwrap();
    assert!(
        answers.len() > 100,
        "the client kept querying ({})",
        answers.len()
    );
    for a in &answers {
        assert!(valid.contains(a), "{a} was never a valid answer");
    }
    assert_eq!(valid_rx.iter().count(), 20);
    let text = shared.metrics.encode();
    assert!(
        text.contains(r#"gtm_dnspod_reloads_total{payload="config",result="failure"} 60"#),
        "{text}"
    );
    stop.cancel();
    source.await.unwrap().unwrap();
    dns.server.shutdown_gracefully().await.unwrap();
}
