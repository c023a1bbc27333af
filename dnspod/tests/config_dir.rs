//! Local mode against what careless operators and odd writers do to the payload directory: the
//! directory replaced, its parent replaced, a FIFO or an oversized file in place of a payload.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gtm_dnspod::config_source::dir::{self, FollowOptions};
use gtm_dnspod::state::{Loader, Shared};
use gtm_dnspod::zone::ZoneSettings;
use support::files::*;
use support::fixtures::*;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A config source following `dir`.
struct Source {
    shared: Arc<Shared>,
    reload: Arc<Notify>,
    stop: CancellationToken,
    task: JoinHandle<Result<(), dir::DirError>>,
}

impl Source {
    fn start(dir: &Path, options: FollowOptions) -> Self {
        let shared = Shared::new();
        let reload = Arc::new(Notify::new());
        let stop = CancellationToken::new();
        let task = tokio::spawn(dir::follow(
            dir.to_path_buf(),
            Loader::new(shared.clone(), ZoneSettings::default()),
            options,
            reload.clone(),
            stop.clone(),
        ));
        Self {
            shared,
            reload,
            stop,
            task,
        }
    }

    /// A source on `dir` that rescans every 100 ms, once it serves generation 1.
    async fn rescanning(dir: &Path) -> Self {
        let source = Self::start(
            dir,
            FollowOptions {
                rescan: Duration::from_millis(100),
                ..FollowOptions::default()
            },
        );
        source.wait_for_generation(1).await;
        source
    }

    async fn wait_for_generation(&self, generation: u64) {
        wait_for(|| served_generation(&self.shared) == Some(generation)).await;
    }

    /// Stops the source; it must end promptly.
    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the source stops on shutdown")
            .unwrap()
            .unwrap();
    }
}

/// Options whose rescan never comes within a test: only events are followed.
fn events_only() -> FollowOptions {
    FollowOptions {
        rescan: Duration::from_secs(3600),
        ..FollowOptions::default()
    }
}

fn config_bytes(generation: u64) -> Vec<u8> {
    www_only(generation, "192.0.2.1").to_json()
}

#[tokio::test]
async fn a_replaced_directory_is_followed() {
    let tmp = tempdir();
    let dir = tmp.as_path().join("payloads");
    std::fs::create_dir(&dir).unwrap();
    write_atomically(&dir, "config.json", &config_bytes(1));
    let source = Source::start(&dir, events_only());
    source.wait_for_generation(1).await;

    for (generation, swapped) in [(2, false), (4, true)] {
        let old = tmp.as_path().join(format!("old-{generation}"));
        if swapped {
            // Swapped in whole, as a deployment tool would.
            let new = tmp.as_path().join("payloads.new");
            std::fs::create_dir(&new).unwrap();
            write_atomically(&new, "config.json", &config_bytes(generation));
            std::fs::rename(&dir, old).unwrap();
            std::fs::rename(&new, &dir).unwrap();
        } else {
            // `mv dir dir.old; mkdir dir`, then a new payload.
            std::fs::rename(&dir, old).unwrap();
            std::fs::create_dir(&dir).unwrap();
            write_atomically(&dir, "config.json", &config_bytes(generation));
        }
        source.wait_for_generation(generation).await;
        // Then changed in place: only a watch on the new directory sees this.
        write_atomically(&dir, "config.json", &config_bytes(generation + 1));
        source.wait_for_generation(generation + 1).await;
    }
    source.stop().await;
}

#[tokio::test]
async fn a_replaced_parent_is_caught_by_the_rescan() {
    let tmp = tempdir();
    let base = tmp.as_path().join("base");
    let dir = base.join("payloads");
    std::fs::create_dir_all(&dir).unwrap();
    write_atomically(&dir, "config.json", &config_bytes(1));
    let source = Source::rescanning(&dir).await;
    // Neither watch sees this: the parent's watch follows the moved parent.
    std::fs::rename(&base, tmp.as_path().join("base.old")).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    write_atomically(&dir, "config.json", &config_bytes(2));
    source.wait_for_generation(2).await;
    // And the directory is watched again: the next change comes by event.
    write_atomically(&dir, "config.json", &config_bytes(3));
    source.wait_for_generation(3).await;
    source.stop().await;
}

#[tokio::test]
async fn a_reload_request_reads_what_no_watch_saw() {
    let tmp = tempdir();
    let base = tmp.as_path().join("base");
    let dir = base.join("payloads");
    std::fs::create_dir_all(&dir).unwrap();
    write_atomically(&dir, "config.json", &config_bytes(1));
    let source = Source::start(&dir, events_only());
    source.wait_for_generation(1).await;
    std::fs::rename(&base, tmp.as_path().join("base.old")).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    write_atomically(&dir, "config.json", &config_bytes(2));
    source.reload.notify_one();
    source.wait_for_generation(2).await;
    source.stop().await;
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_fifo_is_refused_without_blocking_the_source() {
    use nix::sys::stat::Mode;

    let tmp = tempdir();
    let dir = tmp.as_path();
    write_atomically(dir, "config.json", &config_bytes(1));
    let source = Source::start(dir, events_only());
    source.wait_for_generation(1).await;

    for payload in ["health", "config"] {
        let before = reloads(&source.shared, payload, "failure");
        let fifo = dir.join(format!(".{payload}.fifo"));
        nix::unistd::mkfifo(&fifo, Mode::S_IRUSR | Mode::S_IWUSR).unwrap();
        std::fs::rename(&fifo, dir.join(format!("{payload}.json"))).unwrap();
        wait_for(|| reloads(&source.shared, payload, "failure") == before + 1).await;
    }
    // The source still follows the directory, and the last good config kept serving.
    assert_eq!(served_generation(&source.shared), Some(1));
    write_atomically(dir, "config.json", &config_bytes(2));
    source.wait_for_generation(2).await;
    // With the FIFO still there as health.json, shutdown does not hang.
    source.stop().await;
}

#[tokio::test]
async fn a_payload_larger_than_the_limit_is_refused() {
    let tmp = tempdir();
    let dir = tmp.as_path();
    write_atomically(dir, "config.json", &config_bytes(1));
    let limit = 64 * 1024;
    let source = Source::start(
        dir,
        FollowOptions {
            max_payload_bytes: limit,
            ..events_only()
        },
    );
    source.wait_for_generation(1).await;
    // Valid JSON, only too large: trailing white space.
    let mut big = config_bytes(2);
    big.resize(limit as usize + 1, b' ');
    write_atomically(dir, "config.json", &big);
    wait_for(|| reloads(&source.shared, "config", "failure") == 1).await;
    assert_eq!(served_generation(&source.shared), Some(1));
    // At the limit exactly it is read.
    big.truncate(limit as usize);
    write_atomically(dir, "config.json", &big);
    source.wait_for_generation(2).await;
    source.stop().await;
}

#[tokio::test]
async fn a_write_in_place_no_event_reports_is_caught_by_the_rescan() {
    let tmp = tempdir();
    let dir = tmp.as_path().join("payloads");
    let elsewhere = tmp.as_path().join("elsewhere");
    std::fs::create_dir(&dir).unwrap();
    std::fs::create_dir(&elsewhere).unwrap();
    write_atomically(&dir, "config.json", &config_bytes(1));
    // The same file under a path no watch covers: writes through it raise no event here.
    let link = elsewhere.join("config.json");
    std::fs::hard_link(dir.join("config.json"), &link).unwrap();
    let source = Source::rescanning(&dir).await;
    // In place (the same inode), another size and time: only the rescan's stamps tell.
    std::fs::write(&link, config_bytes(12)).unwrap();
    source.wait_for_generation(12).await;
    source.stop().await;
}
