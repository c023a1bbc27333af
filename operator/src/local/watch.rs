//! Following the manifest directory by its path, not its inode: the directory and its parent
//! are watched, so a directory replaced under the same name (`mv dir dir.old; mkdir dir`, a
//! ConfigMap-style symlink swap, a restored backup) is noticed and watched again, and a
//! periodic rescan catches whatever a watch misses (network file systems, dropped events).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio::time::{Instant, Interval, MissedTickBehavior};

/// How long the directory must be quiet before it is read: editors and copies write in
/// several steps.
const SETTLE: Duration = Duration::from_millis(30);
/// Longest wait for quiet while something keeps writing.
const SETTLE_AT_MOST: Duration = Duration::from_secs(1);

/// Device and inode: which directory the path names right now.
type DirId = (u64, u64);

fn dir_id(path: &Path) -> Option<DirId> {
    std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_dir())
        .map(|m| (m.dev(), m.ino()))
}

/// True when an event may change what `dir` holds: the directory itself (created, moved,
/// removed) or an entry in it, but not its parent's other entries.
fn concerns(dir: &Path, event: &notify::Event) -> bool {
    !event.kind.is_access()
        && event
            .paths
            .iter()
            .any(|p| p == dir || p.parent() == Some(dir))
}

/// Watches a manifest directory by path and rescans it periodically.
pub(super) struct ManifestWatch {
    dir: PathBuf,
    watcher: RecommendedWatcher,
    events: mpsc::UnboundedReceiver<()>,
    watched: Option<DirId>,
    rescan: Interval,
    /// An event was received and the wait for quiet did not finish (the caller dropped it).
    pending: bool,
}

impl ManifestWatch {
    /// Starts watching `dir` (which must exist) and its parent; `rescan` is the safety-net
    /// period.
    pub(super) fn new(dir: &Path, rescan: Duration) -> anyhow::Result<Self> {
        let dir =
            std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))?;
        let (tx, events) = mpsc::unbounded_channel();
        let target = dir.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok_and(|e| concerns(&target, &e)) {
                    let _ = tx.send(());
                }
            })
            .context("starting the manifest watcher")?;
        if let Some(parent) = dir.parent() {
            watcher
                .watch(parent, RecursiveMode::NonRecursive)
                .with_context(|| format!("watching {}", parent.display()))?;
        }
        let mut rescan = tokio::time::interval_at(Instant::now() + rescan, rescan);
        rescan.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut watch = Self {
            dir,
            watcher,
            events,
            watched: None,
            rescan,
            pending: false,
        };
        watch.rearm();
        if watch.watched.is_none() {
            anyhow::bail!("watching {}: not a readable directory", watch.dir.display());
        }
        Ok(watch)
    }

    /// Waits until the directory may have changed (an event, then quiet; or a rescan tick),
    /// and watches the directory the path names now.
    /// Cancel-safe: an event received by a dropped call is answered by the next one.
    pub(super) async fn changed(&mut self) {
        if !self.pending {
            tokio::select! {
                Some(()) = self.events.recv() => self.pending = true,
                _ = self.rescan.tick() => {}
            }
        }
        if self.pending {
            let deadline = Instant::now() + SETTLE_AT_MOST;
            loop {
                tokio::time::sleep(SETTLE).await;
                let mut more = false;
                while self.events.try_recv().is_ok() {
                    more = true;
                }
                if !more || Instant::now() >= deadline {
                    break;
                }
            }
            self.pending = false;
        }
        self.rearm();
    }

    /// Moves the watch to the directory the path names, when that is another one.
    fn rearm(&mut self) {
        let now = dir_id(&self.dir);
        if now == self.watched {
            return;
        }
        // The old inode may be gone or moved away; its watch is dropped either way.
        let _ = self.watcher.unwatch(&self.dir);
        self.watched = match now {
            Some(id) => match self.watcher.watch(&self.dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    tracing::info!(dir = %self.dir.display(), "watching the manifest directory");
                    Some(id)
                }
                Err(e) => {
                    tracing::warn!(dir = %self.dir.display(), "watching the manifest directory failed: {e}");
                    None
                }
            },
            None => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOREVER: Duration = Duration::from_secs(3600);

    async fn next(watch: &mut ManifestWatch) {
        tokio::time::timeout(Duration::from_secs(30), watch.changed())
            .await
            .expect("a change is noticed");
    }

    #[tokio::test]
    async fn a_replaced_directory_is_followed_by_its_path() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("manifests");
        std::fs::create_dir(&dir).unwrap();
        let mut watch = ManifestWatch::new(&dir, FOREVER).unwrap();

        std::fs::write(dir.join("a.yaml"), "a").unwrap();
        next(&mut watch).await;

        std::fs::rename(&dir, root.path().join("manifests.old")).unwrap();
        std::fs::create_dir(&dir).unwrap();
        next(&mut watch).await;
        // Drain what the swap produced, then a write into the new directory must be seen.
        while watch.events.try_recv().is_ok() {}
        std::fs::write(dir.join("b.yaml"), "b").unwrap();
        next(&mut watch).await;
    }

    #[tokio::test]
    async fn a_quiet_directory_is_still_rescanned() {
        let root = tempfile::tempdir().unwrap();
        let mut watch = ManifestWatch::new(root.path(), Duration::from_millis(20)).unwrap();
        next(&mut watch).await;
        next(&mut watch).await;
    }

    #[test]
    fn only_the_directory_and_its_entries_concern_it() {
        let dir = Path::new("/srv/manifests");
        let event = |path: &str| {
            notify::Event::new(notify::EventKind::Create(notify::event::CreateKind::Any))
                .add_path(path.into())
        };
        assert!(concerns(dir, &event("/srv/manifests")));
        assert!(concerns(dir, &event("/srv/manifests/a.yaml")));
        assert!(!concerns(dir, &event("/srv/unrelated.txt")));
        assert!(!concerns(dir, &event("/srv/manifests.old/a.yaml")));
    }
}
