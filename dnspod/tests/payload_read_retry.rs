//! A payload read that fails (here: the process is out of file descriptors) is counted and
//! retried until it succeeds, without waiting for another change of the file. Alone in its test
//! binary: it lowers the descriptor limit of the whole process.
#![cfg(target_os = "linux")]

mod support;

use std::time::Duration;

use gtm_dnspod::config_source::dir::{self, FollowOptions};
use gtm_dnspod::state::{Loader, Shared};
use gtm_dnspod::zone::ZoneSettings;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use support::files::*;
use support::fixtures::*;
use tokio_util::sync::CancellationToken;

/// Descriptors the process may have open while the test starves it.
const STARVED_LIMIT: u64 = 256;

#[tokio::test]
async fn a_failed_read_is_counted_and_retried_until_it_succeeds() {
    let tmp = tempdir();
    let dir = tmp.as_path();
    write_atomically(dir, "config.json", &www_only(1, "192.0.2.1").to_json());
    let shared = Shared::new();
    let stop = CancellationToken::new();
    let source = tokio::spawn(dir::follow(
        dir.to_path_buf(),
        Loader::new(shared.clone(), ZoneSettings::default()),
        // No rescan within the test: only the retry can read the file again.
        FollowOptions {
            rescan: Duration::from_secs(3600),
            ..FollowOptions::default()
        },
        Default::default(),
        stop.clone(),
    ));
    wait_for(|| served_generation(&shared) == Some(1)).await;

    // The next payload is written now; renaming it into place later takes no descriptor.
    let tmp_file = dir.join(".config.json.next");
    std::fs::write(&tmp_file, www_only(2, "192.0.2.2").to_json()).unwrap();
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, STARVED_LIMIT, hard).unwrap();
    let mut hogs = Vec::new();
    while let Ok(file) = std::fs::File::open("/dev/null") {
        hogs.push(file);
    }
    std::fs::rename(&tmp_file, dir.join("config.json")).unwrap();
    let read_errors = || {
        counter(
            &shared,
            r#"gtm_dnspod_payload_read_errors_total{payload="config"}"#,
        )
    };
    wait_for(|| read_errors() >= 2).await;
    assert_eq!(served_generation(&shared), Some(1));
    assert_eq!(reloads(&shared, "config", "failure"), 0);

    drop(hogs);
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();
    wait_for(|| served_generation(&shared) == Some(2)).await;
    stop.cancel();
    source.await.unwrap().unwrap();
}
