//! Payload directories for the local-mode tests: scratch directories, atomic writes, and
//! waiting on the loader's metrics.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use gtm_dnspod::state::Shared;

/// A fresh directory under the system's temporary directory, removed on drop.
pub(crate) fn tempdir() -> TempDir {
    let path = std::env::temp_dir().join(format!(
        "gtm-dnspod-test-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&path).unwrap();
    TempDir(path)
}

/// A directory removed with everything in it on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// Its path.
    pub(crate) fn as_path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes a file the way the operator does: a temporary file, then a rename.
pub(crate) fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

/// The value of a counter line of the exposition (`name{labels}`), 0 when absent.
pub(crate) fn counter(shared: &Shared, series: &str) -> u64 {
    let prefix = format!("{series} ");
    shared
        .metrics
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(|v| v.parse().unwrap()))
        .unwrap_or(0)
}

/// The value of `gtm_dnspod_reloads_total` for a payload and result.
pub(crate) fn reloads(shared: &Shared, payload: &str, result: &str) -> u64 {
    counter(
        shared,
        &format!("gtm_dnspod_reloads_total{{payload=\"{payload}\",result=\"{result}\"}}"),
    )
}

/// The generation of the config being served, if any.
pub(crate) fn served_generation(shared: &Shared) -> Option<u64> {
    shared.snapshot().map(|s| s.compiled.generation())
}

/// Waits (bounded, 5 s) until `cond` holds.
pub(crate) async fn wait_for(cond: impl Fn() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached");
}
